"""Hedge effectiveness is ``1 - var(hedged value changes) / var(unhedged value changes)``
from each leg's own value changes: the spot at the spot price, the hedge at its contract's
price (with the fills inside each interval). A half hedge is 0.75 only when both legs move
alike; a basis that moves gives another figure."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from itertools import pairwise

from hypothesis import assume, given
from hypothesis import strategies as st

from bot.domain.report import (
    ReportFill,
    ReportPoint,
    hedge_effectiveness,
    pair_report,
    value_changes,
)
from bot.store.repository import Repository
from tests.support.report_records import T0, observe_basis

D = Decimal

prices = st.integers(min_value=1000, max_value=100000).map(D)
quantities = st.integers(min_value=1, max_value=1000).map(lambda n: D(n) / 100)


def moves_unevenly(path: list[Decimal]) -> bool:
    """The path's changes vary (a variance to remove): not one constant step."""
    return len({after - before for before, after in pairwise(path)}) > 1


paths = st.lists(prices, min_size=3, max_size=12).filter(moves_unevenly)


def points(
    spot: list[Decimal], future: list[Decimal], spot_qty: Decimal, perp_qty: Decimal
) -> list[ReportPoint]:
    return [
        ReportPoint(T0 + timedelta(minutes=i), spot_qty, perp_qty, f, spot_price=s)
        for i, (s, f) in enumerate(zip(spot, future, strict=True))
    ]


@given(paths, quantities)
def test_a_full_hedge_on_identical_prices_is_one(path: list[Decimal], qty: Decimal) -> None:
    assert hedge_effectiveness(points(path, path, qty, -qty)) == 1


@given(paths, paths, quantities)
def test_no_hedge_is_zero_whatever_the_contract_does(
    spot: list[Decimal], future: list[Decimal], qty: Decimal
) -> None:
    n = min(len(spot), len(future))
    assume(moves_unevenly(spot[:n]))  # without spot variance it is undefined (below)
    assert hedge_effectiveness(points(spot[:n], future[:n], qty, D(0))) == 0


@given(paths, quantities)
def test_a_half_hedge_on_identical_moves_is_three_quarters(
    path: list[Decimal], qty: Decimal
) -> None:
    assert hedge_effectiveness(points(path, path, qty, -qty / 2)) == D("0.75")


def test_a_half_hedge_with_a_moving_basis_is_computed_from_both_legs() -> None:
    spot = [D(60000), D(61000), D(59000), D(62000)]
    future = [D(61000), D(61500), D(60500), D(62200)]
    # Spot changes 1000, -2000, 3000; the short half future's -250, 500, -850; hedged
    # 750, -1500, 2150. n x sum of squares - square of the sum: 38,000,000 unhedged,
    # 20,345,000 hedged.
    figure = hedge_effectiveness(points(spot, future, D(1), D("-0.5")))
    assert figure == 1 - D(20345000) / D(38000000)
    assert figure != D("0.75")


def test_it_is_unknown_without_a_varying_spot_move() -> None:
    flat = [D(60000), D(60000), D(60000)]
    assert hedge_effectiveness(points(flat, [D(61000), D(60000), D(60500)], D(1), D(-1))) is None
    steady = [D(60000), D(61000), D(62000)]  # one change, repeated: no variance either
    assert hedge_effectiveness(points(steady, steady, D(1), D(0))) is None
    assert hedge_effectiveness(points(flat[:1], flat[:1], D(1), D(-1))) is None


def test_a_fill_inside_an_interval_counts_from_its_own_price() -> None:
    # Unhedged at the first observation, 1 BTC sold at 60500 inside the first interval.
    path = [D(60000), D(61000), D(59000)]
    series = points(path, path, D(1), D(-1))
    series[0] = ReportPoint(T0, D(1), D(0), D(60000), spot_price=D(60000))
    fill = ReportFill(T0 + timedelta(seconds=30), D(-1), D(60500), D(0))
    # Spot 1000, -2000; hedge -500 (sold at 60500, 61000 at the end), 2000: hedged 500, 0.
    # Scaled variances: 2 x 5,000,000 - 1,000,000 = 9,000,000 and 2 x 250,000 - 250,000.
    assert hedge_effectiveness(series, [fill]) == 1 - D(250000) / D(9000000)


@given(st.lists(st.tuples(prices, st.integers(-300, 300).map(lambda n: D(n) / 100)), max_size=6))
def test_the_hedge_legs_changes_sum_to_its_pnl(trades: list[tuple[Decimal, Decimal]]) -> None:
    # Whatever is traded inside the observed span, the hedge leg's changes interval by
    # interval add up to the perp PnL the report shows: one accounting, two views.
    path = [D(60000), D(61000), D(59000), D(62000)]
    fills = [
        ReportFill(T0 + timedelta(seconds=1 + i), qty, price, D(0))
        for i, (price, qty) in enumerate(trades)
        if qty
    ]
    held = D(-1) + sum((f.qty for f in fills), D(0))
    series = points(path, path, D(1), held)
    series[0] = ReportPoint(T0, D(1), D(-1), path[0], spot_price=path[0])
    report = pair_report("BTC", series, fills, [], None, T0)
    _, hedge = value_changes(series, fills)
    # Equal but for the last of Decimal's 28 digits of an average entry price.
    assert abs(sum(hedge, D(0)) - report.perp_pnl) < D("1e-18")


async def test_the_report_measures_a_basis_pair_on_both_of_its_prices(
    repository: Repository,
) -> None:
    moves = [(60000, 61000), (61000, 61500), (59000, 60500), (62000, 62200)]
    await observe_basis(repository, moves, perp="-0.5")
    [report] = await repository.report()
    assert report.hedge_effectiveness == 1 - D(20345000) / D(38000000)
