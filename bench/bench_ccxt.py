"""The real ccxt client against the Binance emulator on loopback.

Prints ccxt's own cost per call (fetch_balance, fetch_positions, create_order: median and
p99 of wall and CPU time), the daemon's own CPU per cycle per pair beside it, and how a
cycle's wall time grows from 1 to 50 pairs on one account with the rate limiter on.
The emulator runs in a child process, so this process's CPU is the bot's and ccxt's.

Run: `.venv/bin/python bench/bench_ccxt.py`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.clock import SystemClock
from bot.config import Settings
from bot.exchange.ccxt_gateway import CcxtGateway
from bot.logging import configure_logging
from bot.service.daemon import HedgeDaemon
from bot.store.migrate import upgrade
from bot.store.repository import Repository, create_engine

# The emulator lives in tests/support/ (it is not installed with the bot): this process and
# the emulator's child process import it from the project root.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COINS = [f"C{i:02d}" for i in range(50)]

SERVER = """
import asyncio, sys
from decimal import Decimal
from tests.support.emulators.binance import BinanceEmulator
from tests.support.emulators.binance._binance_models import EmulatedMarket

async def main():
    coins = sys.argv[1].split(",")
    markets = [EmulatedMarket(base="BTC")] + [
        EmulatedMarket(base=c, price=Decimal(100), tick_size=Decimal("0.01"),
                       min_notional=Decimal(5), level_qty=Decimal(1000)) for c in coins]
    emu = BinanceEmulator(markets=markets)
    await emu.start()
    for c in ["BTC", *coins]:
        emu.set_spot_balance(c, Decimal(10))
    emu.set_futures_balance("USDT", Decimal(10_000_000))
    print(emu.url, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def emulator_config(url: str) -> dict[str, Any]:
    # The same overrides BinanceEmulator.ccxt_config() builds, for a server in another process.
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


def settings(url: str, pairs: int, rate: str | None) -> Settings:
    account: dict[str, Any] = {
        "exchange": "binance",
        "api_key": "k",
        "secret": "s",
        "ccxt_config": emulator_config(url),
    }
    if rate is not None:
        account["rate_limit_per_s"] = rate
    return Settings(
        mode="testnet",
        pairs=[
            {
                "name": c,
                "spot_symbol": f"{c}/USDT",
                "perp_symbol": f"{c}/USDT:USDT",
                "target_ratio": "1",
                "band": "0.05",
                "max_order_notional": "100000",
            }
            for c in COINS[:pairs]
        ],
        accounts={"main": account},
    )


async def timed(call: Callable[[], Awaitable[Any]], runs: int) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        await call()
        walls.append((time.perf_counter() - w0) * 1000)
        cpus.append((time.process_time() - c0) * 1000)
    return walls, cpus


async def ccxt_costs(url: str) -> None:
    config = settings(url, 1, "1000")  # limiter well above the calls: measure ccxt itself
    gateway = CcxtGateway.from_config("main", config.accounts["main"], "testnet", SystemClock())
    client = gateway._client
    try:
        await client.load_markets()
        symbol = "BTC/USDT:USDT"
        counter = iter(range(10**9))
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "fetch_balance": lambda: client.fetch_balance({"type": "swap"}),
            "fetch_positions": lambda: client.fetch_positions([symbol]),
            "create_order": lambda: client.create_order(
                symbol, "market", "sell" if next(counter) % 2 else "buy", 0.01
            ),
        }
        for name, call in calls.items():
            await timed(call, 10)  # warm-up
            walls, cpus = await timed(call, 200)
            print(
                f"ccxt {name:<16} wall median {statistics.median(walls):.2f} ms, "
                f"p99 {pct(walls, 0.99):.2f} ms; CPU median {statistics.median(cpus):.2f} ms, "
                f"p99 {pct(cpus, 0.99):.2f} ms (200 calls)"
            )
    finally:
        await gateway.close()


async def cycles(url: str, pairs: int, runs: int, rate: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        engine = create_engine(db)
        await upgrade(engine, db)
        config = settings(url, pairs, rate)
        clock = SystemClock()
        gateway = CcxtGateway.from_config("main", config.accounts["main"], "testnet", clock)
        daemon = HedgeDaemon(config, Repository(engine, clock), {"main": gateway}, clock)
        try:
            await daemon.start()
            await daemon.run_cycle(1)  # the hedging orders; measure the steady state after
            walls, cpus, requests = [], [], []
            for cycle in range(2, runs + 2):
                before = gateway.requests
                w0, c0 = time.perf_counter(), time.process_time()
                await daemon.run_cycle(cycle)
                walls.append((time.perf_counter() - w0) * 1000)
                cpus.append((time.process_time() - c0) * 1000)
                requests.append(gateway.requests - before)
            # The observation is all exchange calls (ccxt's parsing grows with the symbols);
            # what the cycle costs beyond it is the daemon's own work.
            _, observe_cpus = await timed(daemon.observe, runs)
            wall, cpu = statistics.median(walls), statistics.median(cpus)
            reqs, observe_cpu = statistics.median(requests), statistics.median(observe_cpus)
            own = max(cpu - observe_cpu, 0.0)
            print(
                f"cycle {pairs:>2} pair(s), limiter {gateway.requests_per_s} req/s: wall median "
                f"{wall:7.1f} ms (p99 {pct(walls, 0.99):7.1f}), {reqs:.0f} requests; CPU "
                f"{cpu:6.1f} ms of which exchange calls {observe_cpu:6.1f} ms; "
                f"daemon's own CPU {own / pairs:.2f} ms per pair"
            )
        finally:
            await gateway.close()
            await engine.dispose()


async def main(url: str) -> None:
    configure_logging("json", level=logging.WARNING)
    await ccxt_costs(url)
    for pairs in (1, 10, 50):
        await cycles(url, pairs, 5, None)


if __name__ == "__main__":
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, ",".join(COINS)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        asyncio.run(main(base_url))
    finally:
        server.terminate()
        server.wait(timeout=10)
