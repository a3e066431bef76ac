"""Bytes stored per pair-day at a 1 s cadence (issue 16 item 1), holding and trading,
before (every cycle stored: ``storage.record_every_s = 0``) and after (the defaults).

Runs the paper daemon in process on a fake clock for ``--cycles`` 1 s cycles, then
measures the SQLite file (after VACUUM) less the empty schema's, per pair and day.
Holding: two pairs hedged from the start on the simulated random walk. Trading: the
same, with each pair's target moved between 1 and 0.9 every minute (an order a minute).

Run: `make bench` (or `.venv/bin/python bench/bench_storage.py [--cycles N]`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sqlite3
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from machine import machine_line

from bot.clock import FakeClock
from bot.config import Settings, StorageConfig
from bot.exchange.feeds import SimFeed
from bot.exchange.paper import PaperVenue
from bot.logging import configure_logging
from bot.service.daemon import HedgeDaemon
from bot.store.migrate import upgrade
from bot.store.repository import Repository, create_engine

PAIRS = ("BTC", "ETH")
DAY = 86400


def settings_for(url: str, storage: StorageConfig) -> Settings:
    return Settings(
        database_url=url,
        poll_interval_s=1,
        pairs=[
            {
                "name": c,
                "spot_symbol": f"{c}/USDT",
                "perp_symbol": f"{c}/USDT:USDT",
                "target_ratio": "1",
                "band": "0.02",
                "max_order_notional": "1000000",
                "leverage": "2",
            }
            for c in PAIRS
        ],
        paper={"balances": {"BTC": "1", "ETH": "10", "USDT": "200000"}},
        storage=storage,
    )


def vacuumed_size(path: Path) -> int:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db = sqlite3.connect(path)
    db.execute("VACUUM")
    db.close()
    return path.stat().st_size


async def run(cycles: int, storage: StorageConfig, trading: bool) -> tuple[float, dict[str, int]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        url = f"sqlite+aiosqlite:///{path}"
        config = settings_for(url, storage)
        engine = create_engine(url)
        await upgrade(engine, url)
        empty = vacuumed_size(path)
        clock = FakeClock()
        repository = Repository(engine, clock)
        venue = await PaperVenue.open(
            config.paper,
            SimFeed(config.paper.sim, 1),
            clock,
            repository,
            leverage={p.perp_symbol: p.leverage for p in config.pairs},
        )
        daemon = HedgeDaemon(config, repository, venue, clock)
        await daemon.start()
        for cycle in range(1, cycles + 1):
            if trading and cycle % 60 == 0:
                ratio = Decimal("0.9") if cycle % 120 else Decimal(1)
                for name in PAIRS:
                    await repository.set_pair_target(name, ratio, None, "bench")
            await daemon.run_cycle(cycle)
            clock.advance(1)
        await engine.dispose()
        db = sqlite3.connect(path)
        counts = {
            table: int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
            for table in ("observations", "decisions", "audit_events", "orders")
        }
        db.close()
        grown = vacuumed_size(path) - empty
    return grown / len(PAIRS) / (cycles / DAY), counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=1800, help="1 s cycles to run")
    args = parser.parse_args()
    configure_logging("json", level=logging.WARNING)
    print(machine_line())
    print(f"storage: {len(PAIRS)} pairs, {args.cycles} cycles of 1 s, SQLite after VACUUM")
    for trading in (False, True):
        scenario = "trading" if trading else "holding"
        for label, storage in (
            ("before (every cycle)", StorageConfig(record_every_s=0)),
            ("after (defaults)", StorageConfig()),
        ):
            start = time.perf_counter()
            per_day, counts = asyncio.run(run(args.cycles, storage, trading))
            took = time.perf_counter() - start
            rows = ", ".join(f"{n} {t}" for t, n in counts.items())
            print(
                f"  {scenario}, {label:<21} {per_day / 1e6:9.2f} MB per pair-day "
                f"({rows}; {took:.0f} s)"
            )


if __name__ == "__main__":
    main()
