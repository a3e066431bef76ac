"""The read commands' cost on a month of history for 20 pairs (issue 16 item 6).

Builds, with raw inserts into a migrated SQLite file, what the daemon stores in 30 days
for 20 pairs at the default storage settings: per pair a heartbeat every 300 s and
about 50 change points a day (observation, decision, audit event each), an order with a
fill every 2 hours, funding every 8 hours. Then times what ``status``, ``audit -n 50`` and
``report`` read (the store's read functions the CLI and the dashboard call).

Run: `make bench` (or `.venv/bin/python bench/bench_reads.py [--days N] [--pairs N]`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from machine import machine_line
from ulid import ULID

from bot.clock import FakeClock
from bot.store.migrate import upgrade
from bot.store.repository import Repository, create_engine

START = datetime(2026, 1, 1, tzinfo=UTC)
HEARTBEAT_S = 300
CHANGES_PER_DAY = 50
INPUTS = json.dumps(
    {"observation": {"price": "60000"}, "steps": {"price": "0.1"}}
    | {"params": {"target_ratio": "1", "band": "0.02"}, "strategy": {"name": "fixed"}}
)


def ts(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")


def build(path: Path, pairs: int, days: int) -> int:
    db = sqlite3.connect(path)
    step = timedelta(seconds=86400 / (86400 / HEARTBEAT_S + CHANGES_PER_DAY))
    count = int(timedelta(days=days) / step)
    order_every = int(timedelta(hours=2) / step)
    audit_id = 0
    for p in range(pairs):
        name = f"C{p:02d}"
        obs, dec, aud, orders, fills = [], [], [], [], []
        for i in range(count):
            at = START + i * step
            did = str(ULID.from_datetime(at))
            price = f"{60000 + (i % 500)}"
            obs.append(
                (
                    did,
                    name,
                    i,
                    ts(at),
                    f"{name}/USDT",
                    f"{name}/USDT:USDT",
                    "1",
                    "-1",
                    "0",
                    price,
                    price,
                    price,
                    "0.0001",
                    price,
                    None,
                    None,
                    "2",
                    price,
                    "1",
                )
            )
            action = "order" if i % order_every == 0 else "none"
            dec.append(
                (
                    did,
                    name,
                    i,
                    "paper",
                    ts(at),
                    did,
                    "1",
                    "1",
                    "0",
                    "0.02",
                    action,
                    "fixed target 1; within band",
                    None,
                    INPUTS,
                )
            )
            kind = "decision" if action == "order" or i % 7 == 0 else "decision.heartbeat"
            aud.append(
                (ts(at), name, kind, "fixed target 1; within band", did, "{}", "0" * 64, "0" * 64)
            )
            if action == "order":
                orders.append(
                    (
                        f"hb{did}",
                        did,
                        name,
                        "paper",
                        f"{name}/USDT:USDT",
                        "sell",
                        "limit",
                        "0.01",
                        0,
                        "filled",
                        "x",
                        "0.01",
                        price,
                        "0.01",
                        "USDT",
                        None,
                        ts(at),
                        ts(at),
                    )
                )
        db.executemany(f"INSERT INTO observations VALUES ({','.join('?' * 19)})", obs)  # noqa: S608
        db.executemany(f"INSERT INTO decisions VALUES ({','.join('?' * 14)})", dec)  # noqa: S608
        db.executemany(
            "INSERT INTO audit_events (ts, pair, kind, summary, decision_id, data, prev_hash,"
            " hash) VALUES (?,?,?,?,?,?,?,?)",
            aud,
        )
        audit_id += len(aud)
        for row in orders:
            cur = db.execute(
                "INSERT INTO orders (client_order_id, decision_id, pair, venue, symbol, side,"  # noqa: S608
                " order_type, amount, reduce_only, status, exchange_order_id, filled,"
                " average_price, fee, fee_asset, reason, created_at, updated_at)"
                f" VALUES ({','.join('?' * 18)})",
                row,
            )
            fills.append(
                (
                    cur.lastrowid,
                    f"t{cur.lastrowid}",
                    row[4],
                    "sell",
                    "0.01",
                    row[12],
                    "0.01",
                    "USDT",
                    row[16],
                )
            )
        db.executemany(
            "INSERT INTO fills (order_id, trade_id, symbol, side, amount, price, fee,"
            " fee_asset, filled_at) VALUES (?,?,?,?,?,?,?,?,?)",
            fills,
        )
        funding = [
            (
                name,
                "paper",
                f"{name}/USDT:USDT",
                "0.5",
                "USDT",
                "0.0001",
                "-1",
                "60000",
                ts(START + timedelta(hours=8 * k)),
            )
            for k in range(days * 3)
        ]
        db.executemany(
            "INSERT INTO funding_payments (pair, venue, symbol, amount, asset, rate,"
            " position_qty, mark_price, paid_at) VALUES (?,?,?,?,?,?,?,?,?)",
            funding,
        )
        db.commit()
    db.execute("ANALYZE")
    db.close()
    return count


async def timed(label: str, work: Callable[[], Awaitable[Any]], runs: int = 3) -> None:
    best = float("inf")
    size = 0
    for _ in range(runs):
        start = time.perf_counter()
        result = await work()
        best = min(best, time.perf_counter() - start)
        size = len(result)
    print(f"  {label:<22} {best * 1000:8.0f} ms  ({size} rows)")


async def measure(path: Path) -> None:
    url = f"sqlite+aiosqlite:///{path}"
    engine = create_engine(url)
    repository = Repository(engine, FakeClock(START + timedelta(days=31)))
    await timed("status", repository.pair_status)
    await timed("audit -n 50", lambda: repository.audit_events(limit=50))
    await timed("audit -n 50 --pair C07", lambda: repository.audit_events(pair="C07", limit=50))
    await timed("report (one pair)", lambda: repository.report("C07"))
    await timed("report --since 1 day", lambda: repository.report(since=START + timedelta(days=29)))
    await timed("report (every pair)", repository.report, runs=1)
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--pairs", type=int, default=20)
    args = parser.parse_args()
    print(machine_line())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reads.db"
        url = f"sqlite+aiosqlite:///{path}"

        async def migrate() -> None:
            engine = create_engine(url)
            await upgrade(engine, url)
            await engine.dispose()

        asyncio.run(migrate())
        start = time.perf_counter()
        per_pair = build(path, args.pairs, args.days)
        size = path.stat().st_size / 1e6
        print(
            f"reads: {args.pairs} pairs x {args.days} days, {per_pair} decisions per pair, "
            f"{size:.0f} MB (built in {time.perf_counter() - start:.0f} s)"
        )
        asyncio.run(measure(path))


if __name__ == "__main__":
    main()
