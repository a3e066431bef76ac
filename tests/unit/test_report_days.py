"""A report over whole days summed (``ReportDay``) is the report over their observations,
every field to the last digit: random series over several UTC days (observations with
and without a spot price, spot and perp fills inside the intervals, on the observations
and on midnight, funding), any subset of the days summed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import groupby

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.report import (
    ReportFill,
    ReportFunding,
    ReportPoint,
    SeriesItem,
    pair_report,
    summarize_day,
)
from tests.unit.test_report_streamed import prices, quantities

D = Decimal
T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY_S = 86400

# Times over four days, midnight and its neighbours drawn often.
moments = st.one_of(
    st.integers(min_value=0, max_value=4 * DAY_S - 1),
    st.sampled_from([DAY_S - 1, DAY_S, 2 * DAY_S, 2 * DAY_S + 1, 3 * DAY_S]),
).map(lambda s: T0 + timedelta(seconds=s))


@st.composite
def history(draw: st.DrawFn) -> tuple[list[ReportPoint], list[ReportFill], list[ReportFunding]]:
    times = sorted(draw(st.lists(moments, max_size=30)))
    points = [
        ReportPoint(at, draw(quantities), draw(quantities), draw(prices), draw(st.none() | prices))
        for at in times
    ]
    fill_times = st.one_of(moments, st.sampled_from(times)) if times else moments
    fills = [
        ReportFill(at, q, p, fee, spot=spot)
        for at, q, p, fee, spot in draw(
            st.lists(st.tuples(fill_times, quantities, prices, quantities, st.booleans()))
        )
        if q
    ]
    funding = [
        ReportFunding(at, amount, None, price)
        for at, amount, price in draw(st.lists(st.tuples(moments, quantities, prices), max_size=4))
    ]
    return points, fills, funding


@settings(max_examples=300)
@given(history(), st.sets(st.integers(min_value=0, max_value=3)))
def test_summed_days_give_the_report_of_their_observations(
    drawn: tuple[list[ReportPoint], list[ReportFill], list[ReportFunding]], summed: set[int]
) -> None:
    points, fills, funding = drawn
    until = T0 + timedelta(days=5)
    items: list[SeriesItem] = []
    for day, run in groupby(points, key=lambda p: p.at.date()):
        group = list(run)
        if (day - T0.date()).days in summed:
            items.append(summarize_day(day, group, fills))
        else:
            items.extend(group)
    plain = pair_report("BTC", points, fills, funding, None, until)
    assert repr(pair_report("BTC", items, fills, funding, None, until)) == repr(plain)


def test_the_widest_stored_figures_sum_exactly() -> None:
    """38 digits, 18 of them places (NUMERIC(38,18)): the days summed apart still add up
    to the digits of one running sum."""
    wide = [
        D("12345678901234567890.123456789012345678"),
        D("98765432109876543210.987654321098765432"),
    ]
    points = [
        ReportPoint(T0 + timedelta(hours=h), wide[h % 2], -wide[(h + 1) % 2], wide[h % 2] - h)
        for h in range(96)
    ]
    fills = [ReportFill(T0 + timedelta(hours=24), wide[0], wide[1], D(0))]
    items: list[SeriesItem] = [
        summarize_day(day, list(run), fills)
        for day, run in groupby(points, key=lambda p: p.at.date())
    ]
    until = T0 + timedelta(days=5)
    plain = pair_report("BTC", points, fills, [], None, until)
    assert repr(pair_report("BTC", items, fills, [], None, until)) == repr(plain)
