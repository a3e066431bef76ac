"""The report's stored days (``report_days``): per pair and whole UTC day, the sums of
its intervals' changes, its first and last observation and its counts
(``bot.domain.report.ReportDay``), so a month's report reads about 30 rows a pair plus
the observations of the days not stored.

A cache, never the truth: an empty table gives the same reports (the figures are exact,
see bot/domain/report.py). Only whole days are stored, wholly inside the report's period
and over at least an hour before the report's time, and each with what it was computed
from: the count and max id of the day's observations and of the fills in that day. A
read checks them — the observations' in the query that loads the stored days (an index
range of (pair, observed_at, id) per day), the fills' from the fills the report reads
anyway — and recomputes a day that changed (a late fill, a prune, a backfill) from the
rows it reads, with the fingerprint of those very rows. The caller stores what was
computed after the read; a failed write (a read-only or locked file) only means nothing
was stored. ``db prune`` deletes the stored days up to its cutoff's day. The days
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

from sqlalchemy import String, and_, cast, delete, func, insert, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

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
from bot.store.tables import ObservationRow, ReportDayRow

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
    pairs: list[str]  # every pair with observations
    cached: dict[Key, ReportDay]  # stored and still what the rows give
    stale: set[Key]  # stored but no longer right (replaced or deleted after the read)
    fills: dict[Key, Fingerprint]  # per pair and day, its fills' count and max id
    blocked: set[Key] = field(default_factory=set)  # never stored (see the module)
    fresh: list[tuple[Key, ReportDay, Fingerprint]] = field(default_factory=list)

    def rows_wanted(self, since: datetime | None) -> ColumnElement[bool] | None:
        """The observations since ``since`` still to read: per pair the ranges between
        its stored days, each bounded (one range of the (pair, observed_at) index, not a
        walk of the time index from ``since``); None: every one since ``since``."""
        if not self.cached:
            return None
        at = ObservationRow.observed_at
        stored: dict[str, list[date]] = {}
        for name, day in sorted(self.cached):
            stored.setdefault(name, []).append(day)
        ranges: list[ColumnElement[bool]] = []
        for name in self.pairs:
            low = since
            for first, last in _runs(stored.get(name, [])):
                ranges.append(and_(ObservationRow.pair == name, *_between(at, low, first)))
                low = _midnight(last) + DAY
            ranges.append(and_(ObservationRow.pair == name, *_between(at, low, None)))
        return or_(*ranges)

    def fold(
        self,
        pair: str,
        points: Sequence[ReportPoint],
        ids: Sequence[str],
        fills: Sequence[ReportFill],
        coin: str | None = None,
    ) -> list[SeriesItem]:
        """``points`` read (oldest first, ``ids`` theirs) with the pair's stored days in
        their places; the whole days of the window among them are summed and kept in
        ``fresh`` with what they were computed from, to be stored."""
        pieces: list[SeriesItem] = []
        start = 0
        for day, run in groupby(points, key=lambda p: p.at.date()):
            group = list(run)
            end = start + len(group)
            key = (pair, day)
            if key in self.blocked or not self.window.holds(day):
                pieces.extend(group)
            else:
                summary = summarize_day(day, group, fills, coin)
                # max() of ULIDs (digits, capitals) orders as the database's max(id); a
                # collation ordering them otherwise would only recompute the day each time.
                made_of = replace(
                    self.fills.get(key, Fingerprint(0, "")),
                    obs_count=len(group),
                    obs_max_id=max(ids[start:end]),
                )
                self.fresh.append((key, summary, made_of))
                pieces.append(summary)
            start = end
        stored = [d for (name, _), d in sorted(self.cached.items()) if name == pair]
        return list(merge(pieces, stored, key=_start))


def _between(at: Any, low: datetime | None, before: date | None) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if low is not None:
        clauses.append(at >= low)
    if before is not None:
        clauses.append(at < _midnight(before))
    return clauses


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


def fill_prints(fills: Iterable[tuple[str, datetime, int]]) -> dict[Key, Fingerprint]:
    """Per pair and day, the count and max id of the (pair, time, id) fills."""
    counts: dict[Key, list[int]] = {}
    for name, at, fill_id in fills:
        known = counts.setdefault((name, at.date()), [0, 0])
        known[0] += 1
        known[1] = max(known[1], fill_id)
    return {key: Fingerprint(0, "", count, top) for key, (count, top) in counts.items()}


async def _pairs(session: AsyncSession, pair: str | None) -> list[str]:
    """Every pair with observations: one index probe per pair (a skip scan)."""
    if pair is not None:
        return [pair]
    rows = await session.execute(
        text(
            "WITH RECURSIVE p(pair) AS (SELECT min(pair) FROM observations UNION ALL"
            " SELECT (SELECT min(pair) FROM observations WHERE pair > p.pair) FROM p"
            " WHERE p.pair IS NOT NULL) SELECT pair FROM p WHERE pair IS NOT NULL"
        )
    )
    return [str(name) for (name,) in rows]


async def plan_days(
    session: AsyncSession,
    pair: str | None,
    window: DayWindow,
    blocked: set[Key],
    fills: dict[Key, Fingerprint],
) -> DayPlan:
    """The stored days of the window checked against what their rows are now: with each
    stored day, the count and max id of its observations now, a correlated index range
    per day (cheaper than grouping every row by its day); its fills' from ``fills``."""
    at = ObservationRow.observed_at
    made_of = (
        select(cast(func.count(), String) + " " + func.max(ObservationRow.id))
        .where(
            ObservationRow.pair == ReportDayRow.pair,
            at >= ReportDayRow.starts_at,
            at < ReportDayRow.ends_at,
        )
        .scalar_subquery()
    )
    query = select(ReportDayRow, made_of).where(ReportDayRow.day < window.end.date())
    if window.start is not None:
        query = query.where(ReportDayRow.day >= window.start.date())
    if pair is not None:
        query = query.where(ReportDayRow.pair == pair)
    cached: dict[Key, ReportDay] = {}
    stale: set[Key] = set()
    for row, now in await session.execute(query):
        key = (row.pair, row.day)
        print_ = fills.get(key, Fingerprint(0, ""))
        stored = f"{row.obs_count} {row.obs_max_id}", row.fill_count, row.fill_max_id
        if key not in blocked and (now, print_.fill_count, print_.fill_max_id) == stored:
            cached[key] = _day(row)
        else:
            stale.add(key)
    return DayPlan(window, await _pairs(session, pair), cached, stale, fills, blocked)


def _point_text(point: ReportPoint) -> str:
    spot_price = "" if point.spot_price is None else str(point.spot_price)
    numbers = (point.spot_qty, point.perp_qty, point.price)
    return "|".join([point.at.isoformat(), *map(str, numbers), spot_price])


def _point(stored: str) -> ReportPoint:
    at, spot, perp, price, spot_price = stored.split("|")
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


def _row(pair: str, day: ReportDay, print_: Fingerprint) -> dict[str, Any]:
    sums = day.sums
    return {
        "pair": pair,
        "day": day.day,
        "starts_at": _midnight(day.day),
        "ends_at": _midnight(day.day) + DAY,
        "obs_count": print_.obs_count,
        "obs_max_id": print_.obs_max_id,
        "fill_count": print_.fill_count,
        "fill_max_id": print_.fill_max_id,
        "unpriced_spot": day.unpriced_spot,
        "intervals": sums.count,
        "unhedged": str(sums.unhedged),
        "unhedged_squares": str(sums.unhedged_squares),
        "hedged": str(sums.hedged),
        "hedged_squares": str(sums.hedged_squares),
        "first_point": _point_text(day.first),
        "last_point": _point_text(day.last),
    }


async def store_days(session: AsyncSession, plan: DayPlan) -> None:
    """Replace the stale days and store the fresh ones (in the caller's transaction)."""
    keys = plan.stale | {key for key, _, _ in plan.fresh}
    for name, days in groupby(sorted(keys), key=lambda key: key[0]):
        doomed = [day for _, day in days]
        await session.execute(
            delete(ReportDayRow).where(ReportDayRow.pair == name, ReportDayRow.day.in_(doomed))
        )
    if plan.fresh:  # Core's many-rows insert: the ORM's unit of work costs more
        rows = [_row(name, day, print_) for (name, _), day, print_ in plan.fresh]
        await session.execute(insert(ReportDayRow), rows)
