"""The read commands' cost on a month of history for 20 pairs (issue 16 item 6).

Builds, with raw inserts into a migrated SQLite file, what the daemon stores in 30 days
for 20 pairs at the default storage settings: per pair a heartbeat every 300 s and
about 50 change points a day (observation, decision, audit event each), an order with a
fill every 2 hours, funding every 8 hours. Then times what ``status``, ``audit -n 50`` and
``report`` read (the store's read functions the CLI and the dashboard call) and the
dashboard's ``/api/*`` answers (a fresh API each time: no answer kept), the median of 3.
``--postgres URL`` builds the same rows (COPY) in a fresh database on that server, times
the same, and drops it. The every-pair month report and ``/api/report?window=30d`` are
timed cold (no stored day: ``report_days`` emptied before each run) and warm.

Run: `make bench` (or `.venv/bin/python bench/bench_reads.py [--days N] [--pairs N]
[--postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test]`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp.test_utils import make_mocked_request
from machine import machine_line
from sqlalchemy import delete, make_url
from ulid import ULID

from bot.clock import FakeClock
from bot.service.dashboard import DashboardApi
from bot.store.migrate import upgrade
from bot.store.repository import Repository, create_engine
from bot.store.tables import DecisionRow, ObservationRow, OrderRow, ReportDayRow

START = datetime(2026, 1, 1, tzinfo=UTC)
HEARTBEAT_S = 300
CHANGES_PER_DAY = 50
INPUTS = json.dumps(
    {"observation": {"price": "60000"}, "steps": {"price": "0.1"}}
    | {"params": {"target_ratio": "1", "band": "0.02"}, "strategy": {"name": "fixed"}}
)


# The columns each table is written with (the observations' and decisions' are all).
COLUMNS = {
    "observations": [c.name for c in ObservationRow.__table__.columns],
    "decisions": [c.name for c in DecisionRow.__table__.columns],
    "audit_events": "ts pair kind summary decision_id data prev_hash hash".split(),
    "orders": [c.name for c in OrderRow.__table__.columns],
    "fills": "order_id trade_id symbol side amount price fee fee_asset filled_at".split(),
    "funding_payments": (
        "pair venue symbol amount asset rate position_qty mark_price paid_at".split()
    ),
}
Rows = dict[str, list[tuple[Any, ...]]]


def ts(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")


def _pair_rows(p: int, days: int, first_order: int) -> Rows:
    """What the daemon stores for one pair in ``days`` (SQLite's values: text, 0/1)."""
    name = f"C{p:02d}"
    step = timedelta(seconds=86400 / (86400 / HEARTBEAT_S + CHANGES_PER_DAY))
    count = int(timedelta(days=days) / step)
    order_every = int(timedelta(hours=2) / step)
    rows: Rows = {table: [] for table in COLUMNS}
    for i in range(count):
        at = START + i * step
        did = str(ULID.from_datetime(at))
        price = f"{60000 + (i % 500)}"
        rows["observations"].append(
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
        rows["decisions"].append(
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
        rows["audit_events"].append(
            (ts(at), name, kind, "fixed target 1; within band", did, "{}", "0" * 64, "0" * 64)
        )
        if action == "order":
            order_id = first_order + len(rows["orders"])
            symbol = f"{name}/USDT:USDT"
            rows["orders"].append(
                (
                    order_id,
                    f"hb{did}",
                    did,
                    name,
                    "paper",
                    symbol,
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
            rows["fills"].append(
                (order_id, f"t{order_id}", symbol, "sell", "0.01", price, "0.01", "USDT", ts(at))
            )
    rows["funding_payments"] = [
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
    return rows


def pair_batches(pairs: int, days: int) -> Iterator[Rows]:
    """Each pair's rows, one pair at a time (orders numbered across pairs)."""
    first_order = 1
    for p in range(pairs):
        rows = _pair_rows(p, days, first_order)
        first_order += len(rows["orders"])
        yield rows


def build_sqlite(path: Path, pairs: int, days: int) -> int:
    db = sqlite3.connect(path)
    count = 0
    for rows in pair_batches(pairs, days):
        for table, columns in COLUMNS.items():
            marks = ",".join("?" * len(columns))
            db.executemany(
                f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})",  # noqa: S608
                rows[table],
            )
        db.commit()
        count = len(rows["observations"])
    db.execute("ANALYZE")
    db.close()
    return count


def _postgres_value(kind: str) -> Callable[[Any], Any]:
    """SQLite's value (text, 0/1) as asyncpg's COPY takes a column of ``kind``."""
    if kind == "numeric":
        return lambda v: None if v is None else Decimal(v)
    if kind.startswith("timestamp"):
        return lambda v: None if v is None else datetime.fromisoformat(v + "+00:00")
    if kind == "boolean":
        return lambda v: None if v is None else bool(v)
    return lambda v: v


async def build_postgres(dsn: str, pairs: int, days: int) -> int:
    connection = await asyncpg.connect(dsn)
    count = 0
    try:
        kinds = dict(
            await connection.fetch(
                "SELECT table_name || '.' || column_name, data_type FROM"
                " information_schema.columns WHERE table_schema = 'public'"
            )
        )
        for rows in pair_batches(pairs, days):
            for table, columns in COLUMNS.items():
                convert = [_postgres_value(kinds[f"{table}.{c}"]) for c in columns]
                records = [
                    tuple(f(v) for f, v in zip(convert, row, strict=True)) for row in rows[table]
                ]
                await connection.copy_records_to_table(table, records=records, columns=columns)
            count = len(rows["observations"])
        await connection.execute(
            "SELECT setval(pg_get_serial_sequence('orders', 'id'), max(id)) FROM orders"
        )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return count


async def timed(
    label: str,
    work: Callable[[], Awaitable[Any]],
    runs: int = 3,
    before: Callable[[], Awaitable[Any]] | None = None,
) -> None:
    """The median of ``runs`` timings of ``work`` (each after ``before``, not timed) and
    the size of what it answered."""
    times = []
    size = 0
    for _ in range(runs):
        if before is not None:
            await before()
        start = time.perf_counter()
        result = await work()
        times.append(time.perf_counter() - start)
        size = len(result)
    print(
        f"  {label:<30} {statistics.median(times) * 1000:8.0f} ms  ({size} rows, median of {runs})"
    )


def _get(api: DashboardApi, handler: str, query: str, key: str) -> Callable[[], Awaitable[Any]]:
    """One dashboard request on a fresh API (no answer kept from an earlier run)."""

    async def answer() -> Any:
        fresh = DashboardApi(api._repo, api._clock)
        request = make_mocked_request("GET", f"/api/{handler}?{query}")
        body = await getattr(fresh, handler)(request)
        return body[key]

    return answer


async def measure(url: str, pairs: int) -> None:
    engine = create_engine(url)
    now = START + timedelta(days=31)
    repository = Repository(engine, FakeClock(now))

    async def no_stored_days() -> None:
        async with engine.begin() as connection:
            await connection.execute(delete(ReportDayRow))

    await timed("status", repository.pair_status)
    await timed("audit -n 50", lambda: repository.audit_events(limit=50))
    await timed("audit -n 50 --pair C07", lambda: repository.audit_events(pair="C07", limit=50))
    await timed("report (one pair)", lambda: repository.report("C07"))
    await timed("report --since 1 day", lambda: repository.report(since=START + timedelta(days=29)))
    # Cold: no stored day (each run computes and stores them); warm: every whole day stored.
    await timed("report (every pair), cold", repository.report, before=no_stored_days)
    await timed("report (every pair), warm", repository.report)
    api = DashboardApi(repository, FakeClock(now - timedelta(days=1)))  # the last day stored
    await timed(
        "/api/report?window=30d, cold",
        _get(api, "report", "window=30d", "pairs"),
        before=no_stored_days,
    )
    await timed("/api/pairs", _get(api, "pairs", "", "pairs"))
    await timed("/api/audit", _get(api, "audit", "limit=25", "events"))
    await timed("/api/report?window=24h", _get(api, "report", "window=24h", "pairs"))
    await timed("/api/report?window=30d, warm", _get(api, "report", "window=30d", "pairs"))
    await timed(
        "/api/series?window=30d (C07)", _get(api, "series", "window=30d&pair=C07", "points")
    )

    async def every_series() -> list[Any]:
        each = [_get(api, "series", f"window=30d&pair=C{p:02d}", "points") for p in range(pairs)]
        return [point for get in each for point in await get()]

    await timed("/api/series?window=30d (each)", every_series)
    await engine.dispose()


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    await upgrade(engine, url)
    await engine.dispose()


def on_sqlite(pairs: int, days: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reads.db"
        url = f"sqlite+aiosqlite:///{path}"
        asyncio.run(_migrate(url))
        start = time.perf_counter()
        per_pair = build_sqlite(path, pairs, days)
        size = path.stat().st_size / 1e6
        print(
            f"reads (SQLite): {pairs} pairs x {days} days, {per_pair} decisions per pair, "
            f"{size:.0f} MB (built in {time.perf_counter() - start:.0f} s)"
        )
        asyncio.run(measure(url, pairs))


async def _on_server(dsn: str, statement: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def on_postgres(server_url: str, pairs: int, days: int) -> None:
    """The same rows in a fresh database on ``server_url``'s server, dropped after."""
    server = make_url(server_url)
    name = f"bench_reads_{uuid.uuid4().hex[:12]}"
    url = server.set(database=name).render_as_string(hide_password=False)
    server_dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    asyncio.run(_on_server(server_dsn, f'CREATE DATABASE "{name}"'))
    try:
        asyncio.run(_migrate(url))
        start = time.perf_counter()
        per_pair = asyncio.run(build_postgres(dsn, pairs, days))
        print(
            f"reads (Postgres): {pairs} pairs x {days} days, {per_pair} decisions per pair "
            f"(built in {time.perf_counter() - start:.0f} s)"
        )
        asyncio.run(measure(url, pairs))
    finally:
        asyncio.run(_on_server(server_dsn, f'DROP DATABASE "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="also on Postgres: a fresh database on this URL's server (dropped after), "
        "e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test",
    )
    args = parser.parse_args()
    print(machine_line())
    on_sqlite(args.pairs, args.days)
    if args.postgres:
        on_postgres(args.postgres, args.pairs, args.days)


if __name__ == "__main__":
    main()
