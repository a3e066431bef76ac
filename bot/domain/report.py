"""What a pair's hedge earned and cost over a period, and how well it hedged (pure).

From the stored series only: observations (spot and perp quantity in coins, the
contract's price and, where observed, the spot's), the pair's fills (perp and spot, in
coins: contracts x contract size) and its funding payments. Every figure is in the pair's
quote asset.

* spot PnL: per interval between two observations, the spot held times the *spot* price
  change, less what a spot sale inside the interval did not earn after it
  (``sold x (price after - sale price)``). An observation without a spot price (a
  perpetual pair's, or a basis pair's stored before the spot price was kept) values the
  spot at the contract's price; ``unpriced_spot`` counts them so the report can say so.
* perp PnL: average-cost accounting of the perp fills on top of the position at the first
  observation (valued at its price): realized on reductions, unrealized at the last price.
* fees and funding: converted to the quote at their own time, a coin's at the fill's price
  (a fee) or the payment's mark price (funding), another asset's (BNB) at the nearest
  stored observation of it within ``PRICE_WINDOW``; what cannot be converted is kept per
  asset (``fees_unconverted``, ``funding_unconverted``) and left out of ``net``.
* net = spot PnL + perp PnL + funding - fees (the fees of spot sales included).
* hedge effectiveness: ``1 - var(hedged changes) / var(unhedged changes)`` over the
  intervals, where the unhedged change is the spot leg's value change (above) and the
  hedged change adds the hedge leg's: position x contract price change, plus each perp
  fill inside the interval marked from its own price to the interval's end. Funding and
  fees are carry and costs, shown on their own lines, not price risk: left out. 1 for a
  full hedge whose contract moves with the spot, 0 for none, 0.75 for a half hedge only
  when both legs move alike; None when the spot's value never changed.

Exactness: the intervals' changes and their sums and sums of squares are computed in
``EXACT`` (200 significant digits), where every product and addition of the stored
figures is exact (a stored figure has at most 38 digits, 18 of them places: a change has
at most about 80, its square 160, a sum of millions of them a few more), so the sums do
not depend on the order they are added in: a whole day's sums stored once
(``ReportDay``, bot/store/report_days.py) plus the other days' give the same digits as
one running sum over every interval. Only the effectiveness' final division rounds (at
the ambient precision). The money figures (spot PnL, perp PnL, funding, fees) are the
same with and without stored days.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Context, Decimal, localcontext

from bot.domain.models import ONE, ZERO

# How far from a fee's or a payment's time a stored price of its asset may be taken.
PRICE_WINDOW = timedelta(hours=1)
# Where the intervals' changes and their sums are exact (see the module docstring).
EXACT = Context(prec=200)


@dataclass(frozen=True, slots=True)
class ReportPoint:
    """One stored observation: spot and signed perp quantity (coins) at the contract's
    price, and the spot's price where it was observed."""

    at: datetime
    spot_qty: Decimal
    perp_qty: Decimal
    price: Decimal
    spot_price: Decimal | None = None

    @property
    def spot_value_price(self) -> Decimal:
        """The price the spot is valued at: its own, else the contract's."""
        return self.price if self.spot_price is None else self.spot_price


@dataclass(frozen=True, slots=True)
class ReportFill:
    """One fill: signed quantity in coins (negative = sold), price, fee in ``fee_asset``
    (None: the quote); ``spot`` for a spot order (a sell-down), else the hedge's."""

    at: datetime
    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str | None = None
    spot: bool = False


@dataclass(frozen=True, slots=True)
class ReportFunding:
    """One funding payment (positive = received) in ``asset`` (None: the quote)."""

    at: datetime
    amount: Decimal
    asset: str | None = None
    mark_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PriceBook:
    """Stored prices in the quote of assets other than the pair's, oldest first."""

    series: Mapping[str, Sequence[tuple[datetime, Decimal]]] = field(default_factory=dict)

    def near(self, asset: str, at: datetime) -> Decimal | None:
        """The stored price nearest ``at`` within ``PRICE_WINDOW``; None without one."""
        return _nearest(self.series.get(asset, ()), at)


@dataclass(frozen=True, slots=True)
class PairAssets:
    """The pair's coin and the quote its figures are in; ``inverse``: its contract is
    coin-margined (its size in coins moves with the price: see ``pair_report``)."""

    base: str
    quote: str
    inverse: bool = False


@dataclass(frozen=True, slots=True)
class PairReport:
    pair: str
    since: datetime | None
    until: datetime
    observations: int
    start_price: Decimal | None
    end_price: Decimal | None
    spot_pnl: Decimal
    perp_realized_pnl: Decimal
    perp_unrealized_pnl: Decimal
    funding: Decimal
    fees: Decimal
    hedge_effectiveness: Decimal | None
    unpriced_spot: int = 0  # observations whose spot is valued at the contract's price
    fees_unconverted: Mapping[str, Decimal] = field(default_factory=dict)
    funding_unconverted: Mapping[str, Decimal] = field(default_factory=dict)

    @property
    def perp_pnl(self) -> Decimal:
        return self.perp_realized_pnl + self.perp_unrealized_pnl

    @property
    def net(self) -> Decimal:
        return self.spot_pnl + self.perp_pnl + self.funding - self.fees


def _nearest(series: Sequence[tuple[datetime, Decimal]], at: datetime) -> Decimal | None:
    index = bisect_left(series, at, key=lambda item: item[0])
    near = [series[i] for i in (index - 1, index) if 0 <= i < len(series)]
    if not near:
        return None
    when, price = min(near, key=lambda item: abs(item[0] - at))
    return price if abs(when - at) <= PRICE_WINDOW else None


@dataclass(frozen=True, slots=True)
class ChangeSums:
    """What the effectiveness needs of the intervals' value changes: their count and,
    unhedged (the spot leg) and hedged (spot + hedge leg), the sum and the sum of squares."""

    count: int = 0
    unhedged: Decimal = ZERO
    unhedged_squares: Decimal = ZERO
    hedged: Decimal = ZERO
    hedged_squares: Decimal = ZERO

    def effectiveness(self) -> Decimal | None:
        """``1 - var(hedged) / var(unhedged)``; None without spot variance. Each variance
        is n^2 x the variance, exact (``EXACT``), without dividing: only their ratio rounds."""
        if not self.count:
            return None
        with localcontext(EXACT):
            spot_variance = self.count * self.unhedged_squares - self.unhedged * self.unhedged
            hedged_variance = self.count * self.hedged_squares - self.hedged * self.hedged
        if spot_variance == ZERO:
            return None
        return ONE - hedged_variance / spot_variance


@dataclass(frozen=True, slots=True)
class ReportDay:
    """A whole UTC day of a pair's observations, summed: its first and last observation,
    how many there were (and without a spot price), and the sums of the changes of the
    intervals between them (the fills inside included). In a series it stands for those
    observations; the intervals from the day before and to the day after are the
    report's to compute (from ``first`` and ``last``)."""

    day: date
    first: ReportPoint
    last: ReportPoint
    observations: int
    unpriced_spot: int
    sums: ChangeSums


# What a report walks, oldest first: observations and whole days standing for theirs.
SeriesItem = ReportPoint | ReportDay


def summarize_day(
    day: date,
    points: Sequence[ReportPoint],
    fills: Sequence[ReportFill] = (),
    coin: str | None = None,
) -> ReportDay:
    """``points`` (one day's, oldest first, at least one) as a ``ReportDay``."""
    unpriced = sum(1 for p in points if p.spot_price is None)
    sums = change_sums(points, fills, coin)
    return ReportDay(day, points[0], points[-1], len(points), unpriced, sums)


def _ends(item: SeriesItem) -> tuple[ReportPoint, ReportPoint]:
    return (item, item) if isinstance(item, ReportPoint) else (item.first, item.last)


def _steps(items: Sequence[SeriesItem]) -> Iterator[tuple[ReportPoint, ReportPoint]]:
    """The intervals to walk: between consecutive observations, except those inside a
    ``ReportDay`` (already summed)."""
    before: ReportPoint | None = None
    for item in items:
        first, last = _ends(item)
        if before is not None:
            yield before, first
        before = last


def interval_changes(
    points: Sequence[SeriesItem], fills: Sequence[ReportFill] = (), coin: str | None = None
) -> Iterator[tuple[Decimal, Decimal]]:
    """Per interval between consecutive observations (those inside a ``ReportDay``
    excepted), the spot leg's and the hedge leg's value change: quantity held x its own
    price change, plus each fill of that leg inside the interval (``[before, after)``)
    marked from its price to the interval's end. A fee paid in the pair's ``coin`` (an
    inverse contract's) leaves the coins held at its fill: it is marked out of the spot
    leg from the fill's price to the interval's end. Exact when run in ``EXACT``."""
    ordered = sorted(fills, key=lambda f: f.at)
    first, last = 0, len(ordered)  # the fills before ``first`` were before every interval
    for before, after in _steps(points):
        hedge_start, hedge_end = before.price, after.price
        spot_start = hedge_start if before.spot_price is None else before.spot_price
        spot_end = hedge_end if after.spot_price is None else after.spot_price
        spot_change = before.spot_qty * (spot_end - spot_start)
        hedge_change = before.perp_qty * (hedge_end - hedge_start)
        while first < last and ordered[first].at < before.at:
            first += 1
        index = first
        while index < last and ordered[index].at < after.at:
            fill = ordered[index]
            if fill.spot:
                spot_change += fill.qty * (spot_end - fill.price)
            else:
                hedge_change += fill.qty * (hedge_end - fill.price)
            if coin is not None and fill.fee_asset == coin:
                spot_change -= fill.fee * (spot_end - fill.price)
            index += 1
        yield spot_change, hedge_change


def change_sums(
    points: Sequence[SeriesItem], fills: Sequence[ReportFill] = (), coin: str | None = None
) -> ChangeSums:
    """The sums of ``interval_changes(points, fills, coin)`` as they come, without keeping
    the changes, plus each ``ReportDay``'s: exact (``EXACT``), so in any order the same."""
    count, unhedged, unhedged_squares, hedged, hedged_squares = 0, ZERO, ZERO, ZERO, ZERO
    with localcontext(EXACT):
        for day in points:
            if isinstance(day, ReportDay):
                count += day.sums.count
                unhedged += day.sums.unhedged
                unhedged_squares += day.sums.unhedged_squares
                hedged += day.sums.hedged
                hedged_squares += day.sums.hedged_squares
        for spot_change, hedge_change in interval_changes(points, fills, coin):
            both = spot_change + hedge_change
            count += 1
            unhedged += spot_change
            unhedged_squares += spot_change * spot_change
            hedged += both
            hedged_squares += both * both
    return ChangeSums(count, unhedged, unhedged_squares, hedged, hedged_squares)


def value_changes(
    points: Sequence[ReportPoint], fills: Sequence[ReportFill] = ()
) -> tuple[list[Decimal], list[Decimal]]:
    """``interval_changes`` as two lists: the spot leg's changes and the hedge leg's."""
    spot: list[Decimal] = []
    hedge: list[Decimal] = []
    with localcontext(EXACT):
        for spot_change, hedge_change in interval_changes(points, fills):
            spot.append(spot_change)
            hedge.append(hedge_change)
    return spot, hedge


def hedge_effectiveness(
    points: Sequence[ReportPoint], fills: Sequence[ReportFill] = ()
) -> Decimal | None:
    """``1 - var(hedged changes) / var(unhedged changes)``; None without spot variance."""
    return change_sums(points, fills).effectiveness()


def _perp_pnl(
    start_qty: Decimal, start_price: Decimal, fills: Sequence[ReportFill], end_price: Decimal
) -> tuple[Decimal, Decimal]:
    """(realized, unrealized) of the position at the start plus the fills, average cost."""
    qty, entry, realized = start_qty, start_price, ZERO
    for fill in sorted(fills, key=lambda f: f.at):
        if qty == ZERO or (qty > ZERO) == (fill.qty > ZERO):
            total = abs(qty) + abs(fill.qty)
            entry = (abs(qty) * entry + abs(fill.qty) * fill.price) / total
            qty += fill.qty
            continue
        closing = min(abs(fill.qty), abs(qty))
        direction = ONE if qty > ZERO else -ONE
        realized += closing * (fill.price - entry) * direction
        qty += fill.qty
        if qty == ZERO:
            entry = ZERO
        elif (qty > ZERO) != (direction > ZERO):
            entry = fill.price  # flipped: the rest opened at this fill
    return realized, qty * (end_price - entry)


@dataclass(frozen=True, slots=True)
class _Converter:
    """Amounts in any asset to the quote, at their time, with the prices the store has."""

    points: Sequence[ReportPoint]
    assets: PairAssets | None
    prices: PriceBook

    def price(self, asset: str, at: datetime, own: Decimal | None) -> Decimal | None:
        """``asset``'s price in the quote at ``at``: 1 for the quote; the pair's coin at
        ``own`` (the fill's or the payment's price) or its nearest observation; another
        asset at its nearest stored observation."""
        if self.assets is None or asset == self.assets.quote:
            return ONE
        if asset == self.assets.base:
            if own is not None:
                return own
            return _nearest([(p.at, p.spot_value_price) for p in self.points], at)
        return self.prices.near(asset, at)

    def total(
        self, items: Sequence[tuple[Decimal, str | None, datetime, Decimal | None]]
    ) -> tuple[Decimal, dict[str, Decimal]]:
        """The sum in the quote of what converts, and per asset what does not."""
        converted = ZERO
        left: dict[str, Decimal] = {}
        for amount, asset, at, own in items:
            price = ONE if asset is None else self.price(asset, at, own)
            if price is None:
                left[str(asset)] = left.get(str(asset), ZERO) + amount
            else:
                converted += amount * price
        return converted, left


def pair_report(
    pair: str,
    points: Sequence[SeriesItem],
    fills: Sequence[ReportFill],
    funding: Sequence[ReportFunding],
    since: datetime | None,
    until: datetime,
    *,
    assets: PairAssets | None = None,
    prices: PriceBook | None = None,
) -> PairReport:
    """The pair's PnL, costs and hedge effectiveness over ``points`` (oldest first;
    a ``ReportDay`` stands for its day's observations).

    ``assets`` names the pair's coin and quote (without it every fee and payment is taken
    as quote); ``prices`` holds other assets' stored prices to convert fees paid in them.
    A payment in the pair's coin without its mark price is converted at the nearest
    observation given as a point: the days around it must not be given summed.
    """
    sums = change_sums(points, fills, assets.base if assets is not None else None)
    realized = unrealized = ZERO
    start_price = end_price = None
    if points:
        first, last = _ends(points[0])[0], _ends(points[-1])[1]
        start_price, end_price = first.price, last.price
        # The first observation's position is the starting point: fills before it are in it.
        later = [f for f in fills if f.at >= first.at and not f.spot]
        realized, unrealized = _perp_pnl(first.perp_qty, first.price, later, last.price)
        if assets is not None and assets.inverse:
            # An inverse short's size in coins grows as the price falls without a fill,
            # so average cost in coins misses most of its PnL. Its total is the hedge
            # leg's marked changes, exact; the split keeps the unrealized at average cost.
            with localcontext(EXACT):
                realized = sums.hedged - sums.unhedged - unrealized
    plain = [p for p in points if isinstance(p, ReportPoint)]
    days = [d for d in points if isinstance(d, ReportDay)]
    convert = _Converter(plain, assets, prices or PriceBook())
    fees, fees_left = convert.total([(f.fee, f.fee_asset, f.at, f.price) for f in fills])
    paid, paid_left = convert.total([(p.amount, p.asset, p.at, p.mark_price) for p in funding])
    return PairReport(
        pair=pair,
        since=since,
        until=until,
        observations=len(plain) + sum(d.observations for d in days),
        start_price=start_price,
        end_price=end_price,
        spot_pnl=sums.unhedged,
        perp_realized_pnl=realized,
        perp_unrealized_pnl=unrealized,
        funding=paid,
        fees=fees,
        hedge_effectiveness=sums.effectiveness(),
        unpriced_spot=sum(1 for p in plain if p.spot_price is None)
        + sum(d.unpriced_spot for d in days),
        fees_unconverted=fees_left,
        funding_unconverted=paid_left,
    )
