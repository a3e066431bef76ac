"""The report's stored days (``report_days``): per pair and whole UTC day, the sums of
its intervals' changes, its first and last observation and its counts
(``bot.domain.report.ReportDay``), so a month's report reads about 30 rows a pair plus
the observations of the days not stored.

A cache, never the truth: an empty table gives the same reports (the figures are exact,
see bot/domain/report.py). Only whole days are stored, wholly inside the report's period
and over at least an hour before the report's time, and each with what it was computed
from: the count and max id of the day's observations and of the fills in that day. A
read checks them (one grouped query per table) and recomputes a day that changed (a
late fill, a prune, a backfill); it writes what it computed after the read, and a
failed write (a read-only or locked file) only means nothing was stored. The days
around a funding payment in the pair's coin without its mark price are never stored:
that payment is converted at the nearest observation, which the report must see.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from heapq import merge
from itertools import groupby
from typing import Any

from sqlalchemy import Date, Dialect, and_, cast, delete, func, or_, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import NullType

from bot.domain.report import (
    PRICE_WINDOW,
    ChangeSums,
    PairAssets,
    ReportDay,
    ReportFill,
    ReportFunding,
    ReportPoint,
    SeriesItem,
    summarize_day,
)
from bot.store.tables import FillRow, ObservationRow, OrderRow, ReportDayRow

DAY = timedelta(days=1)
# A day is stored once it has been over this long (late rows of the day come before).
SETTLED = timedelta(hours=1)

Key = tuple[str, date]  # (pair, UTC day)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What a stored day was computed from: its observations' and fills' count and max id."""

    obs_count: int
    obs_max_id: str
    fill_count: int = 0
    fill_max_id: int = 0


@dataclass(frozen=True, slots=True)
class DayWindow:
    """The days a report may take stored: from ``start`` (None: the first) to ``end``."""

    start: datetime | None
    end: datetime

    def holds(self, day: date) -> bool:
        begin = _midnight(day)
        return (self.start is None or begin >= self.start) and begin + DAY <= self.end


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def day_window(since: datetime | None, until: datetime) -> DayWindow | None:
    """The whole days inside ``[since, until)`` over ``SETTLED`` before ``until``."""
    end = _midnight((until - SETTLED).astimezone(UTC).date())
    if since is None:
        return DayWindow(None, end)
    start = _midnight(since.astimezone(UTC).date())
    if start < since:
        start += DAY
    return DayWindow(start, end) if start < end else None


@dataclass
class DayPlan:
    """Which days of which pairs a report takes stored, reads, and stores afterwards."""

    window: DayWindow
    found: dict[Key, Fingerprint]  # every day in the window with observations
    cached: dict[Key, ReportDay]  # stored and still what the rows give
    stale: set[Key]  # stored but no longer right (replaced or deleted after the read)
    blocked: set[Key] = field(default_factory=set)  # never stored (see the module)
    fresh: list[tuple[Key, ReportDay, Fingerprint]] = field(default_factory=list)

    def rows_wanted(self) -> ColumnElement[bool] | None:
        """The observations still to read: outside the window, or in its days not taken
        stored, as ranges the (pair, observed_at) index serves; None: every one."""
        if not self.cached:
            return None
        at = ObservationRow.observed_at
        ranges: list[ColumnElement[bool]] = [at >= self.window.end]
        if self.window.start is not None:
            ranges.append(at < self.window.start)
        unread = sorted(key for key in self.found if key not in self.cached)
        for pair, days in groupby(unread, key=lambda key: key[0]):
            for first, last in _runs([day for _, day in days]):
                span = and_(at >= _midnight(first), at < _midnight(last) + DAY)
                ranges.append(and_(ObservationRow.pair == pair, span))
        return or_(*ranges)

    def fold(
        self, pair: str, points: Sequence[ReportPoint], fills: Sequence[ReportFill]
    ) -> list[SeriesItem]:
        """``points`` read (oldest first) with the pair's stored days in their places; the
        days in the window computed from them are kept in ``fresh`` to be stored."""
        pieces: list[SeriesItem] = []
        for day, run in groupby(points, key=lambda p: p.at.date()):
            key = (pair, day)
            print_ = self.found.get(key)
            if print_ is None or key in self.blocked or not self.window.holds(day):
                pieces.extend(run)
                continue
            summary = summarize_day(day, list(run), fills)
            if summary.observations == print_.obs_count:  # else it changed while read
                self.fresh.append((key, summary, print_))
            pieces.append(summary)
        stored = [d for (name, _), d in sorted(self.cached.items()) if name == pair]
        return list(merge(pieces, stored, key=_start))

    def pairs(self) -> set[str]:
        return {pair for pair, _ in self.cached}


def _start(item: SeriesItem) -> datetime:
    return item.at if isinstance(item, ReportPoint) else item.first.at


def _runs(days: Sequence[date]) -> Iterable[tuple[date, date]]:
    """Consecutive days as (first, last) runs."""
    first = last = None
    for day in days:
        if last is not None and day == last + DAY:
            last = day
            continue
        if first is not None and last is not None:
            yield first, last
        first = last = day
    if first is not None and last is not None:
        yield first, last


def blocked_days(
    pair: str, funding: Sequence[ReportFunding], assets: PairAssets | None
) -> set[Key]:
    """The days around each payment in the pair's coin without its mark price."""
    if assets is None:
        return set()
    return {
        (pair, moment.date())
        for p in funding
        if p.mark_price is None and p.asset == assets.base
        for moment in (p.at - PRICE_WINDOW, p.at + PRICE_WINDOW)
    }


def _day_of(column: Any, dialect: Dialect) -> Any:
    """The UTC day of a time column: SQLite's text starts with it; Postgres casts."""
    if dialect.name == "sqlite":
        return func.substr(type_coerce(column, NullType()), 1, 10)
    return cast(func.timezone("UTC", column), Date)


def _as_date(value: str | date) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


async def fingerprints(
    session: AsyncSession, pair: str | None, window: DayWindow
) -> dict[Key, Fingerprint]:
    """Per pair and day of the window with observations, what a stored day is checked by."""
    dialect = (await session.connection()).dialect
    day = _day_of(ObservationRow.observed_at, dialect)
    query = (
        select(ObservationRow.pair, day, func.count(), func.max(ObservationRow.id))
        .where(*_inside(ObservationRow.observed_at, window))
        .group_by(ObservationRow.pair, day)
    )
    if pair is not None:
        query = query.where(ObservationRow.pair == pair)
    found = {
        (name, _as_date(when)): Fingerprint(count, str(top))
        for name, when, count, top in await session.execute(query)
    }
    day = _day_of(FillRow.filled_at, dialect)
    fills = (
        select(OrderRow.pair, day, func.count(), func.max(FillRow.id))
        .join(OrderRow, OrderRow.id == FillRow.order_id)
        .where(*_inside(FillRow.filled_at, window))
        .group_by(OrderRow.pair, day)
    )
    if pair is not None:
        fills = fills.where(OrderRow.pair == pair)
    for name, when, count, top in await session.execute(fills):
        key = (name, _as_date(when))
        if key in found:
            found[key] = replace(found[key], fill_count=count, fill_max_id=int(top))
    return found


def _inside(column: Any, window: DayWindow) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = [column < window.end]
    if window.start is not None:
        clauses.append(column >= window.start)
    return clauses


async def plan_days(
    session: AsyncSession, pair: str | None, window: DayWindow, blocked: set[Key]
) -> DayPlan:
    """The stored days of the window checked against the rows' fingerprints."""
    found = await fingerprints(session, pair, window)
    query = select(ReportDayRow).where(ReportDayRow.day < window.end.date())
    if window.start is not None:
        query = query.where(ReportDayRow.day >= window.start.date())
    if pair is not None:
        query = query.where(ReportDayRow.pair == pair)
    cached: dict[Key, ReportDay] = {}
    stale: set[Key] = set()
    for row in (await session.execute(query)).scalars():
        key = (row.pair, row.day)
        if found.get(key) == _fingerprint(row) and key not in blocked:
            cached[key] = _day(row)
        else:
            stale.add(key)
    return DayPlan(window, found, cached, stale, blocked)


def _fingerprint(row: ReportDayRow) -> Fingerprint:
    return Fingerprint(row.obs_count, row.obs_max_id, row.fill_count, row.fill_max_id)


def _point_text(point: ReportPoint) -> str:
    spot_price = "" if point.spot_price is None else str(point.spot_price)
    numbers = (point.spot_qty, point.perp_qty, point.price)
    return "|".join([point.at.isoformat(), *map(str, numbers), spot_price])


def _point(text: str) -> ReportPoint:
    at, spot, perp, price, spot_price = text.split("|")
    return ReportPoint(
        datetime.fromisoformat(at),
        Decimal(spot),
        Decimal(perp),
        Decimal(price),
        Decimal(spot_price) if spot_price else None,
    )


def _day(row: ReportDayRow) -> ReportDay:
    sums = ChangeSums(
        row.intervals,
        Decimal(row.unhedged),
        Decimal(row.unhedged_squares),
        Decimal(row.hedged),
        Decimal(row.hedged_squares),
    )
    first, last = _point(row.first_point), _point(row.last_point)
    return ReportDay(row.day, first, last, row.obs_count, row.unpriced_spot, sums)


def _row(pair: str, day: ReportDay, print_: Fingerprint) -> ReportDayRow:
    sums = day.sums
    return ReportDayRow(
        pair=pair,
        day=day.day,
        obs_count=print_.obs_count,
        obs_max_id=print_.obs_max_id,
        fill_count=print_.fill_count,
        fill_max_id=print_.fill_max_id,
        unpriced_spot=day.unpriced_spot,
        intervals=sums.count,
        unhedged=str(sums.unhedged),
        unhedged_squares=str(sums.unhedged_squares),
        hedged=str(sums.hedged),
        hedged_squares=str(sums.hedged_squares),
        first_point=_point_text(day.first),
        last_point=_point_text(day.last),
    )


async def store_days(session: AsyncSession, plan: DayPlan) -> None:
    """Replace the stale days and store the fresh ones (in the caller's transaction)."""
    keys = plan.stale | {key for key, _, _ in plan.fresh}
    for name, days in groupby(sorted(keys), key=lambda key: key[0]):
        doomed = [day for _, day in days]
        await session.execute(
            delete(ReportDayRow).where(ReportDayRow.pair == name, ReportDayRow.day.in_(doomed))
        )
    session.add_all(_row(name, day, print_) for (name, _), day, print_ in plan.fresh)
