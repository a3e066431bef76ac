"""The report's stored days (``report_days``, issue 16 item 6) are only an optimisation:
on random histories over several days (observations with and without a spot price, spot
and perp fills inside intervals and on midnight, funding, a payment in the coin without
its mark price), the report from an empty table, from the stored days, and after a late
fill, an observation inserted into a stored day, a deleted observation and a prune is
the report read from every row, every field; a period starting mid-day; a read-only
SQLite file still reports; a warm report reads only the observations of the days not
stored. On SQLite and Postgres."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from bot.clock import FakeClock
from bot.domain.models import Side
from bot.domain.report import PairReport
from bot.store import report_series
from bot.store.engine import create_engine
from bot.store.report_series import load_report_series
from bot.store.repository import Repository
from bot.store.tables import DecisionRow, ObservationRow, OrderRow, ReportDayRow
from tests.support.report_records import PERP, SPOT, T0, observe, pay_funding, trade

DAYS = 4
NOW = T0 + timedelta(days=DAYS, hours=3)  # day 4 is today: never stored


def _moment(rng: random.Random) -> timedelta:
    if rng.random() < 0.15:  # on midnight
        return timedelta(days=rng.randrange(DAYS + 1))
    return timedelta(seconds=rng.randrange((DAYS + 1) * 86400 - 4 * 3600))


async def history(
    repository: Repository, seed: int, pairs: tuple[str, ...] = ("BTC",), unmarked: bool = True
) -> None:
    """Per pair: random observations over DAYS days and today, fills, funding (some in the
    coin without a mark price when ``unmarked``: the days around those are never stored)."""
    rng = random.Random(seed)
    for pair in pairs:
        times = sorted({_moment(rng) for _ in range(rng.randrange(10, 24))})
        ids = [f"{pair}{n:03d}" for n in range(len(times))]
        for decision_id, offset in zip(ids, times, strict=True):
            priced = rng.random() < 0.7
            await observe(
                repository,
                decision_id,
                T0 + offset,
                spot=str(rng.randrange(1, 300) / 100),
                perp=str(-rng.randrange(0, 300) / 100),
                price=str(60000 + rng.randrange(-5000, 5000) / 10),
                spot_price=str(60000 + rng.randrange(-5000, 5000) / 10) if priced else None,
                pair=pair,
            )
        for decision_id in rng.sample(ids, k=min(len(ids), 6)):
            await _fill(repository, rng, decision_id, pair, T0 + _moment(rng))
        for _ in range(3):
            mark = None if unmarked and rng.random() < 0.3 else "60000"
            asset = "BTC" if mark is None or rng.random() < 0.5 else "USDT"
            await pay_funding(
                repository, T0 + _moment(rng), "0.001", asset, mark_price=mark, pair=pair
            )


async def _fill(
    repository: Repository, rng: random.Random, decision_id: str, pair: str, when: Any
) -> None:
    spot = rng.random() < 0.4
    await trade(
        repository,
        decision_id,
        when,
        symbol=SPOT if spot else PERP,
        side=Side.SELL if spot or rng.random() < 0.5 else Side.BUY,
        amount=str(rng.randrange(1, 50) / 100),
        price=str(60000 + rng.randrange(-5000, 5000) / 10),
        fee="0.01",
        pair=pair,
    )


async def reference(repository: Repository, since: Any = None) -> list[str]:
    """The report read from every row (no stored day), each report's every field."""
    async with repository._read() as session:
        series = await load_report_series(session, None, since)
    return _fields(series.reports(since, NOW))


def _fields(reports: list[PairReport]) -> list[str]:
    return [repr(report) for report in reports]


async def remove_observations(repository: Repository, where: Any, limit: int | None = None) -> None:
    """Delete observations (with their decisions) that no order was made on."""
    async with repository._write() as session:
        query = select(ObservationRow.id).where(
            where, ObservationRow.id.not_in(select(OrderRow.decision_id))
        )
        ids = (
            (await session.execute(query.order_by(ObservationRow.id).limit(limit))).scalars().all()
        )
        assert ids
        await session.execute(delete(DecisionRow).where(DecisionRow.id.in_(ids)))
        await session.execute(delete(ObservationRow).where(ObservationRow.id.in_(ids)))


async def stored(repository: Repository) -> int:
    async with repository._read() as session:
        count = (await session.execute(select(func.count()).select_from(ReportDayRow))).scalar()
    return int(count or 0)


@pytest.fixture
def now_clock(clock: FakeClock) -> FakeClock:
    clock.advance((NOW - clock.now()).total_seconds())
    return clock


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_cold_warm_and_changed_days_give_the_report_of_every_row(
    repository: Repository, now_clock: FakeClock, seed: int
) -> None:
    await history(repository, seed, ("BTC", "ETH"))
    expected = await reference(repository)
    assert _fields(await repository.report()) == expected  # cold: computes and stores
    assert await stored(repository) > 0
    assert _fields(await repository.report()) == expected  # warm

    # A late fill in a stored day, an observation inserted into one, one deleted.
    await _fill(repository, random.Random(seed), "BTC001", "BTC", T0 + timedelta(hours=30))
    await observe(
        repository, "BTC999", T0 + timedelta(days=2, hours=5), spot="1", perp="-1", price="61000"
    )
    await remove_observations(repository, ObservationRow.pair == "ETH", limit=1)
    changed = await reference(repository)
    assert changed != expected
    assert _fields(await repository.report()) == changed
    assert _fields(await repository.report()) == changed


async def test_a_prune_leaves_no_stored_day_of_what_it_removed(
    repository: Repository, now_clock: FakeClock
) -> None:
    await history(repository, 7, unmarked=False)
    await repository.report()
    await repository.prune(T0 + timedelta(days=2, hours=12), vacuum=False)
    async with repository._read() as session:
        days = (await session.execute(select(ReportDayRow.day))).scalars().all()
    assert all(day > (T0 + timedelta(days=2)).date() for day in days)
    assert _fields(await repository.report()) == await reference(repository)


async def test_rows_removed_behind_the_stored_days_are_caught_by_their_fingerprint(
    repository: Repository, now_clock: FakeClock
) -> None:
    """A prune of another version (or by hand) that leaves the stored days."""
    await history(repository, 8, unmarked=False)
    await repository.report()
    await remove_observations(repository, ObservationRow.observed_at < T0 + timedelta(days=2))
    assert _fields(await repository.report()) == await reference(repository)


@pytest.mark.parametrize("hours", [0, 30, 54])
async def test_a_period_from_midnight_or_mid_day(
    repository: Repository, now_clock: FakeClock, hours: int
) -> None:
    await history(repository, 11)
    since = T0 + timedelta(hours=hours)
    await repository.report()  # every whole day stored
    expected = await reference(repository, since)
    assert _fields(await repository.report(since=since)) == expected
    assert _fields(await repository.report(since=since)) == expected
    assert _fields(await repository.report("BTC", since)) == expected


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many observations each report reads (what the loader yields)."""
    read: list[int] = []
    load: Callable[..., Any] = report_series._load_points

    async def counted(*args: Any, **kwargs: Any) -> Any:
        points, ids = await load(*args, **kwargs)
        read.append(sum(len(p) for p in points.values()))
        return points, ids

    monkeypatch.setattr(report_series, "_load_points", counted)
    return read


async def test_a_warm_report_reads_only_the_days_not_stored(
    repository: Repository, now_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await history(repository, 5, ("BTC", "ETH"), unmarked=False)
    async with repository._read() as session:
        total = (await session.execute(select(func.count()).select_from(ObservationRow))).scalar()
        today = (
            await session.execute(
                select(func.count()).where(ObservationRow.observed_at >= T0 + timedelta(days=DAYS))
            )
        ).scalar()
    read = _counting(monkeypatch)
    await repository.report()
    await repository.report()
    assert read == [total, today]

    # From mid-day 1: the rest of day 1 and today; days 2 and 3 stored.
    since = T0 + timedelta(hours=30)
    async with repository._read() as session:
        at = ObservationRow.observed_at
        head = select(func.count()).where(at >= since, at < T0 + timedelta(days=2))
        rest = (await session.execute(head)).scalar()
    await repository.report(since=since)
    assert read[2:] == [(rest or 0) + (today or 0)]


async def test_a_read_only_sqlite_file_still_reports(tmp_path: Any, now_clock: FakeClock) -> None:
    from bot.store.migrate import upgrade

    path = tmp_path / "hedgebot.db"
    url = f"sqlite+aiosqlite:///{path}"
    writer = create_engine(url)
    await upgrade(writer, url)
    repository = Repository(writer, now_clock)
    await history(repository, 3)
    expected = await reference(repository)
    readonly = create_engine(f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true")
    try:
        reader = Repository(readonly, now_clock)
        assert _fields(await reader.report()) == expected
        assert _fields(await reader.report()) == expected
        assert await stored(repository) == 0
    finally:
        await readonly.dispose()
        await writer.dispose()
