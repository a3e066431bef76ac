"""Scale: many pairs over many exchange accounts in one daemon process, against the emulator.

Default: 200 pairs over 10 Binance accounts (20 pairs each), a 1-second cadence, 5 minutes.
One child process serves 10 Binance emulators (one per account, each on its own port);
each answers 429 (-1003) once a rolling minute's request weight passes the account's
limit. Weights are ccxt's own cost table for Binance (the futures API's costs are its
documented request weights, 2400 a minute; the spot API's are a fifth of them, so its
6000 a minute is 1200 in those units).

Prints: this process's CPU use and peak memory, cycle wall time and lag p50/p99 (how late a
cycle starts against the cadence), and per account the requests sent, the limiter's rate,
the peak weight in any minute against the limit and the count of 429 answers.

Run: `make bench-scale` (or `.venv/bin/python bench/bench_scale.py --duration 300`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from machine import machine_line

from bot.clock import SystemClock
from bot.config import Settings
from bot.exchange.ccxt_gateway import CcxtGateway
from bot.logging import configure_logging
from bot.service.daemon import CycleReport, HedgeDaemon
from bot.store.migrate import upgrade
from bot.store.repository import Repository, create_engine

# The emulator lives in tests/support/ (it is not installed with the bot): this process and
# the emulator's child process import it from the project root.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVER = """
import asyncio, json, sys, time
from collections import deque
from decimal import Decimal
from aiohttp import web
from tests.support.emulators.binance import BinanceEmulator
from tests.support.emulators.binance._binance_models import EmulatedMarket
from tests.support.emulators.binance.binance_emulator import BinanceError, RATE_LIMIT_MSG

COSTS = json.loads(sys.argv[2])  # "METHOD path" -> [cost, cost without symbol]
LIMITS = {"fapi": 2400.0, "api": 1200.0}

class LimitedEmulator(BinanceEmulator):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.window = {kind: deque() for kind in LIMITS}
        self.used = dict.fromkeys(LIMITS, 0.0)
        self.peak = dict.fromkeys(LIMITS, 0.0)
        self.requests = 0
        self.rejected = 0
        self.paths = {}

    async def _dispatch(self, request):
        kind = "fapi" if request.path.startswith("/fapi") else "api"
        key = f"{request.method} {request.path}"
        cost, no_symbol = COSTS.get(key, [1, 1])
        weight = cost if "symbol" in request.query else no_symbol
        now = time.monotonic()
        window = self.window[kind]
        window.append((now, weight))
        self.used[kind] += weight
        while window and window[0][0] < now - 60:
            self.used[kind] -= window.popleft()[1]
        self.peak[kind] = max(self.peak[kind], self.used[kind])
        self.requests += 1
        self.paths[key] = self.paths.get(key, 0) + 1
        if self.used[kind] > LIMITS[kind]:
            self.rejected += 1
            return self._error(BinanceError(429, -1003, RATE_LIMIT_MSG), {"Retry-After": "1"})
        return await super()._dispatch(request)

    async def stats(self, request):
        return web.json_response({
            "requests": self.requests, "rejected": self.rejected, "peak": self.peak,
            "limits": LIMITS, "paths": self.paths,
        })

async def main():
    accounts = json.loads(sys.argv[1])
    urls = []
    for coins in accounts:
        markets = [EmulatedMarket(base=c, price=Decimal(100), tick_size=Decimal("0.01"),
                   min_notional=Decimal(5), level_qty=Decimal(1000)) for c in coins]
        emu = LimitedEmulator(markets=markets)
        emu.add_routes([web.get("/_bench/stats", emu.stats)])
        await emu.start()
        for c in coins:
            emu.set_spot_balance(c, Decimal(10))
        emu.set_futures_balance("USDT", Decimal(10_000_000))
        urls.append(emu.url)
    print(json.dumps(urls), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def ccxt_costs() -> dict[str, list[float]]:
    """ccxt's cost of every Binance endpoint the emulator serves, by 'METHOD /path'."""
    import ccxt

    from tests.support.emulators.binance.binance_emulator import CCXT_API_PREFIXES

    api = ccxt.binance().api
    costs: dict[str, list[float]] = {}
    for section, prefix in CCXT_API_PREFIXES.items():
        for method, paths in api.get(section, {}).items():
            for path, spec in paths.items():
                cost = float(spec.get("cost", 1)) if isinstance(spec, dict) else 1.0
                no_symbol = float(spec.get("noSymbol", cost)) if isinstance(spec, dict) else cost
                costs[f"{method.upper()} {prefix}/{path}"] = [cost, no_symbol]
    return costs


def emulator_config(url: str) -> dict[str, Any]:
    from tests.support.emulators.binance.binance_emulator import (
        CCXT_API_PREFIXES,
        _linear_error_classes,
    )

    urls = {name: f"{url}{prefix}" for name, prefix in CCXT_API_PREFIXES.items()}
    return {
        "urls": {"api": dict(urls), "test": dict(urls), "demo": dict(urls)},
        "options": {
            "fetchCurrencies": False,
            "fetchMargins": False,
            "fetchMarkets": {"types": ["spot", "linear"]},
        },
        "exceptions": {"exact": _linear_error_classes()},
    }


def settings(urls: list[str], accounts: list[list[str]], database_url: str) -> Settings:
    return Settings(
        mode="testnet",
        database_url=database_url,
        poll_interval_s=1.0,
        pairs=[
            {
                "name": coin,
                "spot_symbol": f"{coin}/USDT",
                "perp_symbol": f"{coin}/USDT:USDT",
                "target_ratio": "1",
                "band": "0.05",
                "max_order_notional": "100000",
                "spot_account": f"acct{index}",
                "perp_account": f"acct{index}",
            }
            for index, coins in enumerate(accounts)
            for coin in coins
        ],
        accounts={
            f"acct{index}": {
                "exchange": "binance",
                "api_key": "k",
                "secret": "s",
                "ccxt_config": emulator_config(url),
            }
            for index, url in enumerate(urls)
        },
    )


class TimedDaemon(HedgeDaemon):
    """The daemon, noting when each cycle starts and how long it takes."""

    starts: list[float]
    walls: list[float]
    errors: int

    async def run_cycle(self, cycle: int) -> CycleReport:
        started = time.perf_counter()
        self.starts.append(started)
        report = await super().run_cycle(cycle)
        self.walls.append(time.perf_counter() - started)
        self.errors += len(report.errors)
        return report


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def run(urls: list[str], accounts: list[list[str]], duration: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'scale.db'}"
        engine = create_engine(url)
        await upgrade(engine, url)
        config = settings(urls, accounts, url)
        clock = SystemClock()
        gateways = {
            name: CcxtGateway.from_config(name, account, "testnet", clock)
            for name, account in config.accounts.items()
        }
        daemon = TimedDaemon(config, Repository(engine, clock), gateways, clock)
        daemon.starts, daemon.walls, daemon.errors = [], [], 0
        stop = asyncio.Event()
        try:
            await daemon.start()
            wall0, cpu0 = time.perf_counter(), time.process_time()
            asyncio.get_running_loop().call_later(duration, stop.set)
            cycles = await daemon.run(stop)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        finally:
            for gateway in gateways.values():
                await gateway.close()
            await engine.dispose()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    interval = config.poll_interval_s
    lags = [
        max(0.0, (b - a) - interval) * 1000
        for a, b in zip(daemon.starts, daemon.starts[1:], strict=False)
    ]
    walls = [w * 1000 for w in daemon.walls] or [0.0]
    lags = lags or [0.0]
    print(
        f"{len(config.pairs)} pairs on {len(accounts)} accounts, cadence {interval:.0f} s, "
        f"{wall:.0f} s: {cycles} cycles, {daemon.errors} pair errors; the first cycle (the "
        f"hedging orders) took {walls[0] / 1000:.1f} s"
    )
    walls = walls[1:] or walls  # the steady state
    print(
        f"  daemon process: CPU {cpu / wall:.1%} of one core ({cpu:.1f} s), "
        f"peak memory (max RSS) {peak_mb:.0f} MB"
    )
    print(
        f"  cycle wall: median {statistics.median(walls):.0f} ms, p99 {pct(walls, 0.99):.0f} ms; "
        f"cycle lag (start later than the cadence): median {statistics.median(lags):.0f} ms, "
        f"p99 {pct(lags, 0.99):.0f} ms, max {max(lags, default=0.0):.0f} ms"
    )
    slowest = sorted(enumerate(daemon.walls, start=1), key=lambda kv: -kv[1])[:5]
    print(
        "  slowest cycles: "
        + ", ".join(
            f"#{n} {w * 1000:.0f} ms at {daemon.starts[n - 1] - wall0:.0f} s" for n, w in slowest
        )
    )
    async with aiohttp.ClientSession() as session:
        for index, base in enumerate(urls):
            name = f"acct{index}"
            async with session.get(f"{base}/_bench/stats") as response:
                stats = await response.json()
            gateway = gateways[name]
            sent = gateway.requests
            peak, limits = stats["peak"], stats["limits"]
            print(
                f"  {name}: {sent} requests ({sent / wall:.1f}/s against the limiter's "
                f"{gateway.requests_per_s}/s), peak weight in a minute: futures "
                f"{peak['fapi']:.0f}/{limits['fapi']:.0f}, spot {peak['api']:.0f}/"
                f"{limits['api']:.0f}; 429 answers: {stats['rejected']}"
            )
            if index == 0:
                top = sorted(stats["paths"].items(), key=lambda kv: -kv[1])
                print("    acct0 requests by endpoint: " + ", ".join(f"{p} {n}" for p, n in top))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds (default 300)")
    parser.add_argument("-v", action="store_true", help="log every event (info)")
    args = parser.parse_args()
    configure_logging("json", level=logging.DEBUG if "-v" in sys.argv else logging.WARNING)
    print(machine_line())
    coins = [f"C{i:03d}" for i in range(args.pairs)]
    per = -(-args.pairs // args.accounts)
    accounts = [coins[i : i + per] for i in range(0, args.pairs, per)]
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, json.dumps(accounts), json.dumps(ccxt_costs())],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        urls = json.loads(server.stdout.readline())
        child = psutil.Process(server.pid)
        child.cpu_percent()
        asyncio.run(run(urls, accounts, args.duration))
        print(
            f"  emulator process (10 accounts): CPU {child.cpu_percent() / 100:.1%} of one core "
            f"on average, memory {child.memory_info().rss / 2**20:.0f} MB; "
            f"{machine_line().split('; ')[-1]} at the end"
        )
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
