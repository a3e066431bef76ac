"""The stored series a report reads, in the report's units (``hedgebot report``).

Observations are stored in coins; orders and fills in the venue's unit, contracts for a
contract (a spot order's amount is coins). A perp fill becomes coins here, with the
contract size stored with the observation its order was decided on (NULL on rows stored
before revision 0007: taken as 1, what every earlier report assumed).

Given the report's time, whole days already summed are taken from ``report_days``
(bot/store/report_days.py) instead of their observations, and the days computed from
rows are kept in ``ReportSeries.days`` for the caller to store after the read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Dialect, Select, Text, cast, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import NullType

from bot.domain.models import ONE
from bot.domain.report import (
    PRICE_WINDOW,
    PairAssets,
    PairReport,
    PriceBook,
    ReportFill,
    ReportFunding,
    ReportPoint,
    SeriesItem,
    pair_report,
)
from bot.domain.symbols import Symbol
from bot.store.report_days import DayPlan, blocked_days, day_window, fill_prints, plan_days
from bot.store.tables import FillRow, FundingPaymentRow, Money, ObservationRow, OrderRow

_Query = TypeVar("_Query", bound=Select[*tuple[Any, ...]])  # each loader's own row type


@dataclass
class ReportSeries:
    """Per pair: observations (or whole days summed), fills (coins) and funding; the
    pair's coin and quote; per quote the stored prices of other assets its fees or
    funding were paid in; and the stored days taken or to store."""

    points: dict[str, list[SeriesItem]] = field(default_factory=dict)
    fills: dict[str, list[ReportFill]] = field(default_factory=dict)
    funding: dict[str, list[ReportFunding]] = field(default_factory=dict)
    assets: dict[str, PairAssets] = field(default_factory=dict)
    books: dict[str, PriceBook] = field(default_factory=dict)
    days: DayPlan | None = None
    fill_ids: list[tuple[str, datetime, int]] = field(default_factory=list)  # (pair, at, id)

    def reports(self, since: datetime | None, until: datetime) -> list[PairReport]:
        names = sorted(set(self.points) | set(self.fills) | set(self.funding))
        return [self._report(name, since, until) for name in names]

    def _report(self, name: str, since: datetime | None, until: datetime) -> PairReport:
        assets = self.assets.get(name)
        return pair_report(
            name,
            self.points.get(name, []),
            self.fills.get(name, []),
            self.funding.get(name, []),
            since,
            until,
            assets=assets,
            prices=self.books.get(assets.quote) if assets else None,
        )

    def foreign_assets(self) -> set[tuple[str, str]]:
        """(asset, quote) of every fee or payment in neither the pair's coin nor quote."""
        wanted: set[tuple[str, str]] = set()
        for name, assets in self.assets.items():
            used = [f.fee_asset for f in self.fills.get(name, [])]
            used += [p.asset for p in self.funding.get(name, [])]
            wanted |= {(a, assets.quote) for a in used if a not in (None, *_codes(assets))}
        return wanted


def _in_period(
    query: _Query,
    at: InstrumentedAttribute[datetime],
    pair_of: InstrumentedAttribute[str],
    pair: str | None,
    since: datetime | None,
) -> _Query:
    """``query`` of ``pair`` (or every pair) since ``since`` (or ever)."""
    if since is not None:
        query = query.where(at >= since)
    if pair is not None:
        query = query.where(pair_of == pair)
    return query


def _codes(assets: PairAssets) -> tuple[str, str]:
    return assets.base, assets.quote


def _assets(symbol: str) -> PairAssets:
    parsed = Symbol.parse(symbol)
    return PairAssets(parsed.base, parsed.quote, parsed.inverse)


def _pair_assets(spot_symbol: str, perp_symbol: str) -> PairAssets:
    """The pair's coin and quote (its spot's), and whether its contract is inverse."""
    spot = Symbol.parse(spot_symbol)
    return PairAssets(spot.base, spot.quote, Symbol.parse(perp_symbol).inverse)


class _RawValues:
    """The observations' columns as the driver gives them, made the store's types once per
    distinct value (quantities and prices repeat from one observation to the next): the
    per-value type processing of a month of rows would cost more than the report itself."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._money = Money()
        self.numbers: dict[Any, Decimal] = {}  # raw value -> its Decimal

    def number(self, raw: Any) -> Decimal:
        found = self.numbers.get(raw)
        if found is None:
            found = self._money.process_result_value(raw, self._dialect)
            if found is None:
                raise ValueError("NULL in a column that holds a number")
            self.numbers[raw] = found
        return found

    def optional(self, raw: Any) -> Decimal | None:
        return None if raw is None else self.number(raw)

    @staticmethod
    def moment(raw: str | datetime) -> datetime:
        """SQLite's text (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC) or the driver's datetime."""
        if isinstance(raw, str):
            # Parsed with its zone: several times faster than adding it with replace().
            return datetime.fromisoformat(raw + "+00:00")
        if raw.tzinfo is UTC:  # asyncpg's timestamptz
            return raw
        return raw.replace(tzinfo=UTC) if raw.tzinfo is None else raw.astimezone(UTC)


def _raw(column: Any) -> Any:
    """``column`` without its type's per-value processing (done by ``_RawValues``)."""
    return type_coerce(column, NullType())


def _raw_number(column: InstrumentedAttribute[Decimal | None], dialect: Dialect) -> Any:
    """A Money column as text (SQLite stores text; Postgres' numeric cast to text is
    cheaper for the driver than a Decimal per value, and repeats: one Decimal per text)."""
    return _raw(column) if dialect.name == "sqlite" else _raw(cast(column, Text))


_POINT_NUMBERS = (
    ObservationRow.spot_qty,
    ObservationRow.perp_qty,
    ObservationRow.price,
    ObservationRow.spot_price,
)


async def _load_points(
    session: AsyncSession,
    series: ReportSeries,
    pair: str | None,
    since: datetime | None,
    wanted: ColumnElement[bool] | None = None,
) -> tuple[dict[str, list[ReportPoint]], dict[str, list[str]]]:
    """The observations per pair, oldest first, and their ids."""
    # Through the connection (Core) with raw values: ORM result handling and per-value
    # type processing would cost more than the report of a month of observations.
    connection = await session.connection()
    dialect = connection.dialect
    read: dict[str, list[ReportPoint]] = {}
    ids: dict[str, list[str]] = {}
    values = _RawValues(dialect)
    # ``known(raw) or number(raw)``: the cached Decimal without a call (a zero, falsy,
    # takes the call and gets the same).
    known, number, optional, moment = (
        values.numbers.get,
        values.number,
        values.optional,
        values.moment,
    )
    current: str | None = None
    points: list[ReportPoint] = []  # the rows come pair by pair
    unused: list[str] = []
    keep: Callable[[str], None] = unused.append
    rows = await connection.execute(_points_query(dialect, pair, since, wanted))
    for name, row_id, at, spot, perp, price, spot_price, spot_symbol, perp_symbol in rows:
        if name != current:
            current, points = name, read.setdefault(name, [])
            keep = ids.setdefault(name, []).append
            # The observations name both legs: they say what the pair is, over the
            # fills' or payments' symbol read before them.
            series.assets[name] = _pair_assets(spot_symbol, perp_symbol)
        spot, perp, price = (
            known(spot) or number(spot),
            known(perp) or number(perp),
            known(price) or number(price),
        )
        points.append(ReportPoint(moment(at), spot, perp, price, optional(spot_price)))
        keep(row_id)
    return read, ids


def _points_query(
    dialect: Dialect,
    pair: str | None,
    since: datetime | None,
    wanted: ColumnElement[bool] | None,
) -> Select[Any]:
    """The observations' columns a report reads, raw, pair by pair and oldest first."""
    query = select(
        ObservationRow.pair,
        ObservationRow.id,
        _raw(ObservationRow.observed_at),
        *(_raw_number(c, dialect) for c in _POINT_NUMBERS),
        ObservationRow.spot_symbol,
        ObservationRow.perp_symbol,
    )
    # With ``wanted``, its ranges bound the period (with ``since`` too, SQLite walks the
    # time index from ``since`` instead of the ranges).
    after = since if wanted is None else None
    query = _in_period(query, ObservationRow.observed_at, ObservationRow.pair, pair, after)
    order: tuple[Any, ...] = (ObservationRow.pair, ObservationRow.observed_at, ObservationRow.id)
    if wanted is not None:
        # Ordered by an expression: ordered by the index's columns, SQLite walks the
        # whole index in order rather than the wanted ranges and a sort of what they hold.
        query = query.where(wanted)
        order = (ObservationRow.pair.concat(""), *order[1:])
    return query.order_by(*order)


async def _load_fills(
    session: AsyncSession, series: ReportSeries, pair: str | None, since: datetime | None
) -> None:
    connection = await session.connection()  # raw values, as the points (above)
    dialect = connection.dialect
    query = (
        select(
            OrderRow.pair,
            FillRow.id,
            OrderRow.symbol,
            _raw(FillRow.filled_at),
            FillRow.side,
            *(_raw_number(c, dialect) for c in (FillRow.amount, FillRow.price, FillRow.fee)),
            FillRow.fee_asset,
            _raw_number(ObservationRow.contract_size, dialect),
        )
        .join(OrderRow, OrderRow.id == FillRow.order_id)
        .outerjoin(ObservationRow, ObservationRow.id == OrderRow.decision_id)
        .order_by(FillRow.filled_at, FillRow.id)
    )
    query = _in_period(query, FillRow.filled_at, OrderRow.pair, pair, since)
    values = _RawValues(dialect)
    spot_symbols: dict[str, bool] = {}
    rows = await connection.execute(query)
    for name, fill_id, symbol, at, side, amount, price, fee, fee_asset, size in rows:
        spot = spot_symbols.get(symbol)
        if spot is None:
            spot = spot_symbols[symbol] = Symbol.parse(symbol).is_spot
        coins = values.number(amount)
        if not spot:
            coins *= values.optional(size) or ONE
        signed = coins if side == "buy" else -coins
        fill = ReportFill(
            values.moment(at), signed, values.number(price), values.number(fee), fee_asset, spot
        )
        series.fills.setdefault(name, []).append(fill)
        series.fill_ids.append((name, fill.at, fill_id))
        if name not in series.assets:
            series.assets[name] = _assets(symbol)


async def _load_funding(
    session: AsyncSession, series: ReportSeries, pair: str | None, since: datetime | None
) -> None:
    query = select(
        FundingPaymentRow.pair,
        FundingPaymentRow.paid_at,
        FundingPaymentRow.amount,
        FundingPaymentRow.asset,
        FundingPaymentRow.mark_price,
        FundingPaymentRow.symbol,
    ).order_by(FundingPaymentRow.paid_at, FundingPaymentRow.id)
    query = _in_period(query, FundingPaymentRow.paid_at, FundingPaymentRow.pair, pair, since)
    for name, at, amount, asset, mark, symbol in await session.execute(query):
        series.funding.setdefault(name, []).append(ReportFunding(at, amount, asset, mark))
        if name not in series.assets:
            series.assets[name] = _assets(symbol)


async def _load_books(
    session: AsyncSession, series: ReportSeries, wanted: Iterable[tuple[str, str]]
) -> None:
    """The observed prices of the other assets fees or funding were paid in: those of a
    pair whose spot is ``asset/quote``, near the period."""
    symbols = {f"{asset}/{quote}": (asset, quote) for asset, quote in wanted}
    if not symbols:
        return
    times = [f.at for fills in series.fills.values() for f in fills]
    times += [p.at for payments in series.funding.values() for p in payments]
    query = (
        select(
            ObservationRow.spot_symbol,
            ObservationRow.observed_at,
            ObservationRow.price,
            ObservationRow.spot_price,
        )
        .where(
            ObservationRow.spot_symbol.in_(symbols),
            ObservationRow.observed_at >= min(times) - PRICE_WINDOW,
            ObservationRow.observed_at <= max(times) + PRICE_WINDOW,
        )
        .order_by(ObservationRow.observed_at, ObservationRow.id)
    )
    prices: dict[str, dict[str, list[tuple[datetime, Decimal]]]] = {}
    for spot_symbol, at, price, spot_price in await session.execute(query):
        asset, quote = symbols[spot_symbol]
        book = prices.setdefault(quote, {}).setdefault(asset, [])
        book.append((at, price if spot_price is None else spot_price))
    series.books = {quote: PriceBook(assets) for quote, assets in prices.items()}


async def load_report_series(
    session: AsyncSession,
    pair: str | None,
    since: datetime | None,
    until: datetime | None = None,
) -> ReportSeries:
    """What a report of ``pair`` (or every pair) since ``since`` reads, in coins; with
    the report's time ``until``, the whole days before it taken stored where they are."""
    series = ReportSeries()
    await _load_fills(session, series, pair, since)
    await _load_funding(session, series, pair, since)
    window = None if until is None else day_window(since, until)
    if window is None:
        read, _ = await _load_points(session, series, pair, since)
        series.points.update((name, list(points)) for name, points in read.items())
    else:
        blocked = set().union(
            *(blocked_days(n, pays, series.assets.get(n)) for n, pays in series.funding.items())
        )
        fills = fill_prints(series.fill_ids)
        plan = series.days = await plan_days(session, pair, window, blocked, fills)
        read, ids = await _load_points(session, series, pair, since, plan.rows_wanted(since))
        for name in sorted(set(read) | {name for name, _ in plan.cached}):
            found = read.get(name, [])
            assets = series.assets.get(name)
            series.points[name] = plan.fold(
                name,
                found,
                ids.get(name, []),
                series.fills.get(name, []),
                assets.base if assets is not None else None,
            )
    await _load_books(session, series, series.foreign_assets())
    return series
