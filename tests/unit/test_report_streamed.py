"""The report's statistics, summed as the intervals come, are the figures of the plain
formula over lists of every interval's changes, to the last digit: random series of
observations (with and without a spot price), spot and perp fills inside, on and between
the intervals' ends, and funding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.report import (
    EXACT,
    ReportFill,
    ReportFunding,
    ReportPoint,
    pair_report,
    value_changes,
)

D = Decimal
T0 = datetime(2026, 1, 1, tzinfo=UTC)

# Eight decimals on prices and quantities: the squares pass Decimal's 28 digits, so the
# sums are exact only in the report's ``EXACT`` precision.
prices = st.integers(min_value=100_000_000, max_value=10_000_000_000_000).map(
    lambda n: D(n) / 10**8
)
quantities = st.integers(min_value=-(10**10), max_value=10**10).map(lambda n: D(n) / 10**8)
seconds = st.integers(min_value=-30, max_value=700)


@st.composite
def series(draw: st.DrawFn) -> tuple[list[ReportPoint], list[ReportFill], list[ReportFunding]]:
    gaps = draw(st.lists(st.integers(min_value=0, max_value=60), min_size=0, max_size=12))
    points = []
    when = T0
    for gap in gaps:
        when += timedelta(seconds=gap)
        spot_price = draw(st.one_of(st.none(), prices))
        points.append(
            ReportPoint(when, draw(quantities), draw(quantities), draw(prices), spot_price)
        )
    fills = [
        ReportFill(T0 + timedelta(seconds=s), q, p, fee, spot=spot)
        for s, q, p, fee, spot in draw(
            st.lists(st.tuples(seconds, quantities, prices, quantities, st.booleans()), max_size=8)
        )
        if q
    ]
    funding = [
        ReportFunding(T0 + timedelta(seconds=s), amount, None, price)
        for s, amount, price in draw(st.lists(st.tuples(seconds, quantities, prices), max_size=3))
    ]
    return points, fills, funding


def reference_changes(
    points: list[ReportPoint], fills: list[ReportFill]
) -> tuple[list[Decimal], list[Decimal]]:
    """Each interval's changes, looked up the plain way: every fill inside ``[before, after)``."""
    spot, hedge = [], []
    ordered = sorted(fills, key=lambda f: f.at)
    for before, after in pairwise(points):
        spot_change = before.spot_qty * (after.spot_value_price - before.spot_value_price)
        hedge_change = before.perp_qty * (after.price - before.price)
        for fill in ordered:
            if before.at <= fill.at < after.at:
                if fill.spot:
                    spot_change += fill.qty * (after.spot_value_price - fill.price)
                else:
                    hedge_change += fill.qty * (after.price - fill.price)
        spot.append(spot_change)
        hedge.append(hedge_change)
    return spot, hedge


def reference_variance(values: list[Decimal]) -> Decimal:
    """n^2 x the variance, exact (the report's ``EXACT`` precision)."""
    with localcontext(EXACT):
        total = sum(values, D(0))
        return len(values) * sum((v * v for v in values), D(0)) - total * total


def reference_effectiveness(spot: list[Decimal], hedge: list[Decimal]) -> Decimal | None:
    if not spot or reference_variance(spot) == 0:
        return None
    hedged = [s + h for s, h in zip(spot, hedge, strict=True)]
    return 1 - reference_variance(hedged) / reference_variance(spot)


@settings(max_examples=300)
@given(series())
def test_the_streamed_report_is_the_reference_formula_to_the_last_digit(
    drawn: tuple[list[ReportPoint], list[ReportFill], list[ReportFunding]],
) -> None:
    points, fills, funding = drawn
    spot, hedge = reference_changes(points, fills)
    report = pair_report("BTC", points, fills, funding, None, T0 + timedelta(days=1))
    assert value_changes(points, fills) == (spot, hedge)
    assert report.observations == len(points)
    assert str(report.spot_pnl) == str(sum(spot, D(0)))
    assert str(report.hedge_effectiveness) == str(reference_effectiveness(spot, hedge))
    assert report.unpriced_spot == sum(1 for p in points if p.spot_price is None)
