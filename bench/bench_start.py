"""Start-up: from the daemon's start to its first completed cycle, per venue emulator.

Each venue's emulator runs in a child process with a real-sized market list (about 600
spot and 600 linear markets) and one account holding ``--pairs`` coins on spot, each a
pair whose leverage and margin mode differ from the venue's defaults. The daemon is
built, started and runs one cycle (a fresh account: it sets every pair's leverage and
margin mode, then hedges); then it is built and started again on the same account (a
restart: everything already holds, the hedges are open). The client uses ccxt's own rate
(the account sets no ``rate_limit_per_s``).

Prints per venue and run: the wall time of start (gateways, markets, start checks,
leverage) and of the first cycle, this process's CPU time over both (the emulator's work
is in the child), the requests the account's limiter held back (waits), those the
emulator refused for its rate limits and the start's requests by endpoint.

Run: `.venv/bin/python bench/bench_start.py --venues binance,bybit,okx --pairs 200`.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from machine import machine_line

from bot.clock import SystemClock
from bot.config import Settings
from bot.store.migrate import upgrade
from bot.store.repository import Repository, create_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MARKETS = 600
MARGIN = Decimal(10_000_000)


def _emulator(venue: str) -> tuple[Any, list[str], Any]:
    """The emulator with ~600+600 markets, the coins that have both, and how to fund one."""
    if venue == "binance":
        from tests.support.emulators.binance import BinanceEmulator
        from tests.support.emulators.binance._binance_models import DEFAULT_MARKETS
        from tests.support.emulators.binance.binance_emulator import made_up_markets

        made = made_up_markets(MARKETS - len(DEFAULT_MARKETS))
        emulator = BinanceEmulator(markets=[*DEFAULT_MARKETS, *made])
        emulator.set_futures_balance("USDT", MARGIN)
        return emulator, [m.base for m in made], emulator.set_spot_balance
    if venue == "bybit":
        from tests.support.emulators.bybit import BybitEmulator
        from tests.support.emulators.bybit.bybit_emulator import generated_markets

        markets = generated_markets(MARKETS)
        emulator = BybitEmulator(markets=markets)
        emulator.set_balance("USDT", MARGIN)
        both = [m for m in markets if m.spot and m.perp and m.base.startswith("C")]
        prices = {m.base: m.price for m in both}

        def fund(coin: str, amount: Decimal) -> None:
            # Bybit's made-up prices vary: the same notional as at 100.
            emulator.set_balance(coin, (amount * 100 / prices[coin]).quantize(Decimal("0.1")))

        return emulator, [m.base for m in both], fund
    from tests.support.emulators.okx import OkxEmulator
    from tests.support.emulators.okx._okx_models import generate_markets

    markets = generate_markets(MARKETS)
    emulator = OkxEmulator(markets=markets, demo=True)  # testnet mode: demo trading
    emulator.set_balance("USDT", MARGIN)
    return emulator, [m.base for m in markets if m.base.startswith("C")], emulator.set_balance


def _serve(venue: str, pairs: int, conn: Connection) -> None:
    asyncio.run(_serve_async(venue, pairs, conn))


async def _serve_async(venue: str, pairs: int, conn: Connection) -> None:
    emulator, coins, fund = _emulator(venue)
    coins = coins[:pairs]
    for coin in coins:
        # 10 coins at 100 (Bybit's prices vary): a hedge of about 1,000 USDT.
        fund(coin, Decimal(10))
    await emulator.start()
    config = (
        emulator.ccxt_config(production_error_classes=False)
        if venue == "binance"
        else emulator.ccxt_config()
    )
    conn.send((config, coins))
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "log":
            conn.send(list(emulator.request_log))
        elif command == "refused":
            conn.send(_refused(venue, emulator))
        else:
            break
    await emulator.stop()


def _refused(venue: str, emulator: Any) -> int:
    """The requests the emulator refused for its rate limits so far."""
    if venue == "binance":
        return len(emulator.fapi_limits.refused) + len(emulator.dapi_limits.refused)
    if venue == "bybit":
        return len(emulator.uid_limiter.refused)
    return len(emulator.limiter.refused)


def _account(venue: str, config: dict[str, Any]) -> dict[str, Any]:
    config = dict(config)
    account: dict[str, Any] = {"exchange": venue, "api_key": "k", "secret": "s"}
    if venue == "okx":
        account["api_key"] = config.pop("apiKey")
        account["secret"] = config.pop("secret")
        account["password"] = config.pop("password")
    for key in ("apiKey", "secret", "production_error_classes"):
        config.pop(key, None)
    account["ccxt_config"] = {**config, "timeout": 10000}
    return account


def _settings(venue: str, config: dict[str, Any], coins: list[str], url: str) -> Settings:
    from tests.support.builders import emulator_pair

    return Settings(
        mode="testnet",
        database_url=url,
        poll_interval_s=1,
        # A first cycle of 200 order books outlasts the default lease (10 s): the pairs'
        # orders would be refused for a lapsed lease, which is not what this measures.
        lease_s=600,
        pairs=[emulator_pair(coin, margin_mode="isolated") for coin in coins],
        accounts={"main": _account(venue, config)},
        risk={"max_data_age_s": "60", "order_settle_s": "2"},
    )


def _log(conn: Connection) -> list[tuple[str, str]]:
    conn.send("log")
    return list(conn.recv())


@dataclass
class Run:
    start_s: float
    cycle_s: float
    cpu_s: float
    waits: int
    refused: int
    errors: int
    start_log: list[tuple[str, str]]
    cycle_log: list[tuple[str, str]]


async def _one_start(settings: Settings, repository: Repository, conn: Connection) -> Run:
    from bot.service.wiring import build_daemon

    before = _log(conn)
    began, cpu = time.perf_counter(), time.process_time()
    built = await build_daemon(settings, repository, SystemClock())
    try:
        await built.daemon.start()
        started, cpu_start = time.perf_counter(), time.process_time() - cpu
        middle = _log(conn)
        resumed, cpu = time.perf_counter(), time.process_time()
        report = await built.daemon.run_cycle(await repository.last_cycle() + 1)
        cycled, cpu_cycle = time.perf_counter(), time.process_time() - cpu
        waits = sum(getattr(g, "limiter_waits", 0) for g in built.gateways.values())
    finally:
        await built.close_gateways()
    after = _log(conn)
    conn.send("refused")
    refused = int(conn.recv())
    return Run(
        started - began,
        cycled - resumed,
        cpu_start + cpu_cycle,
        waits,
        refused,
        len(report.errors),
        middle[len(before) :],
        after[len(middle) :],
    )


def _by_endpoint(log: list[tuple[str, str]]) -> str:
    counts = Counter(f"{m} {p}" for m, p in log)
    return ", ".join(f"{k} {n}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))


async def _bench(
    venue: str, pairs: int, conn: Connection, config: dict[str, Any], coins: list[str]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'start.db'}"
        engine = create_engine(url)
        await upgrade(engine, url)
        repository = Repository(engine, SystemClock())
        settings = _settings(venue, config, coins, url)
        for kind in ("fresh account", "restart"):
            run = await _one_start(settings, repository, conn)
            print(
                f"{venue} {pairs} pairs, {kind}: start {run.start_s:.2f} s + first cycle "
                f"{run.cycle_s:.2f} s = {run.start_s + run.cycle_s:.2f} s to the first "
                f"completed cycle (CPU {run.cpu_s:.2f} s, limiter waits {run.waits}, "
                f"refused by the venue so far {run.refused}); "
                f"{run.errors} pair errors; requests: start {len(run.start_log)}, "
                f"cycle {len(run.cycle_log)}"
            )
            print(f"  start's requests by endpoint: {_by_endpoint(run.start_log)}")
            print(f"  first cycle's requests by endpoint: {_by_endpoint(run.cycle_log)}")
        await engine.dispose()


def run(venue: str, pairs: int) -> None:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(venue, pairs, child), daemon=True
    )
    process.start()
    config, coins = parent.recv()
    try:
        asyncio.run(_bench(venue, pairs, parent, config, coins))
    finally:
        parent.send("stop")
        process.join(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venues", default="binance,bybit,okx")
    parser.add_argument("--pairs", type=int, default=200)
    args = parser.parse_args()
    print(machine_line())
    for venue in args.venues.split(","):
        run(venue, args.pairs)


if __name__ == "__main__":
    main()
