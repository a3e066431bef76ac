from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.margin import (
    MaintenanceTier,
    MaintenanceTiers,
    initial_margin,
    isolated_liquidation_price,
    isolated_liquidation_price_with_margin,
    lowest_leverage,
    margin_at_liquidation_price,
    margin_to_move_liquidation,
    position_after_fill,
)

D = Decimal


FLAT = MaintenanceTiers.flat(D("0.005"))


def test_short_liquidates_above_entry() -> None:
    # 10x short of 2 at 3000 holds 600: (600 + 2 x 3000) / (2 x 1.005)
    assert isolated_liquidation_price(D("-2"), D(3000), D(10), FLAT) == D(6600) / D("2.010")


def test_long_liquidates_below_entry() -> None:
    # 5x long of 0.5 at 60000 holds 6000: (0.5 x 60000 - 6000) / (0.5 x 0.995)
    assert isolated_liquidation_price(D("0.5"), D(60000), D(5), FLAT) == D(24000) / D("0.4975")


def test_unleveraged_short_liquidates_near_double_entry() -> None:
    assert isolated_liquidation_price(D(-1), D(100), D(1), FLAT) == D(200) / D("1.005")


def test_unleveraged_long_liquidates_only_at_maintenance_margin() -> None:
    assert isolated_liquidation_price(D(1), D(100), D(1), FLAT) == D(0)


def test_long_liquidation_price_is_floored_at_zero() -> None:
    assert isolated_liquidation_price(D(1), D(100), D("0.9"), MaintenanceTiers.flat(D(0))) == D(0)


def test_flat_position_has_no_liquidation_price() -> None:
    assert isolated_liquidation_price(D(0), D(100), D(5), FLAT) is None


def test_initial_margin_is_notional_over_leverage_for_either_side() -> None:
    assert initial_margin(D("-0.5"), D(60000), D(5)) == D(6000)
    assert initial_margin(D("0.5"), D(60000), D(5)) == D(6000)


@pytest.mark.parametrize("leverage", [D(0), D(-1)])
def test_non_positive_leverage_is_an_error(leverage: Decimal) -> None:
    with pytest.raises(ValueError, match="leverage"):
        initial_margin(D(1), D(100), leverage)
    with pytest.raises(ValueError, match="leverage"):
        isolated_liquidation_price(D(1), D(100), leverage, FLAT)


def test_liquidation_price_from_the_initial_margin_matches_the_leverage_formula() -> None:
    assert isolated_liquidation_price_with_margin(
        D(-1), D(60000), D(12000), FLAT
    ) == isolated_liquidation_price(D(-1), D(60000), D(5), FLAT)


def test_added_margin_moves_a_short_liquidation_price_by_margin_over_qty_times_one_plus_rate() -> (
    None
):
    before = isolated_liquidation_price_with_margin(D("-0.5"), D(60000), D(6000), FLAT)
    after = isolated_liquidation_price_with_margin(D("-0.5"), D(60000), D(9000), FLAT)
    assert before is not None
    assert after is not None
    assert abs(after - before - D(3000) / (D("0.5") * D("1.005"))) < D("1e-18")


BTC = MaintenanceTiers(
    (
        MaintenanceTier(D(0), D(50_000), D("0.004"), D(0)),
        MaintenanceTier(D(50_000), D(250_000), D("0.005"), D(50)),
        MaintenanceTier(D(250_000), None, D("0.01"), D(1300)),
    )
)


def test_flat_tiers_are_one_rate_for_every_notional() -> None:
    assert MaintenanceTiers.flat(D("0.004")).margin(D(-(10**9))) == D(4 * 10**6)


def test_the_tier_is_the_one_of_the_notional_at_the_liquidation_price() -> None:
    # 0.5 BTC 5x short at 60000: ~35800 at liquidation, first tier.
    assert isolated_liquidation_price(D("-0.5"), D(60000), D(5), BTC) == D(36000) / D("0.502")
    # 1 BTC: ~71700 at liquidation, second tier (0.5 %, amount 50).
    assert isolated_liquidation_price(D(-1), D(60000), D(5), BTC) == D(72050) / D("1.005")
    # 5 BTC: ~358000, third tier (1 %, amount 1300).
    assert isolated_liquidation_price(D(-5), D(60000), D(5), BTC) == D(361300) / D("5.05")


@given(
    qty=st.decimals(D("-50"), D("50"), places=3).filter(lambda q: q != 0),
    entry=st.decimals(D(100), D(100_000), places=2),
    margin_rate=st.decimals(D("0.02"), D(1), places=3),
)
def test_margin_balance_equals_maintenance_margin_at_the_liquidation_price(
    qty: Decimal, entry: Decimal, margin_rate: Decimal
) -> None:
    margin = abs(qty) * entry * margin_rate
    price = isolated_liquidation_price_with_margin(qty, entry, margin, BTC)
    assert price is not None
    if price == 0:  # a long that no price can liquidate
        assert margin + qty * (0 - entry) >= 0
        return
    balance = margin + qty * (price - entry)
    assert abs(balance - BTC.margin(abs(qty) * price)) < D("1e-18") * abs(qty) * entry


@given(
    qty=st.decimals(D("-50"), D("50"), places=3).filter(lambda q: q != 0),
    target=st.decimals(D(1000), D(200_000), places=2),
)
def test_the_margin_for_a_liquidation_price_puts_it_there_exactly(
    qty: Decimal, target: Decimal
) -> None:
    margin = margin_at_liquidation_price(qty, D(60000), target, BTC)
    assert isolated_liquidation_price_with_margin(qty, D(60000), margin, BTC) == target


def test_moving_a_liquidation_price_within_one_tier_costs_qty_times_one_plus_rate() -> None:
    assert margin_to_move_liquidation(D(-1), D(71700), D(75210), BTC) == D(3510) * D("1.005")


@pytest.mark.parametrize(
    ("tiers", "problem"),
    [
        ((), "at least one tier"),
        (((1, 10, "0.01", 0),), "tier 1: the first tier starts at floor 0 with amount 0"),
        (((0, 10, "0.01", 0), (20, None, "0.02", 0)), "tier 2: floor 20 must be the cap 10"),
        (((0, None, "0.01", 0), (10, 20, "0.02", 0)), "tier 1: only the last tier may have"),
        (((0, 10, "0.01", 0), (10, None, "0.02", 5)), "tier 2: amount 5 must be 0.10"),
    ],
)
def test_a_maintenance_table_that_is_not_contiguous_or_continuous_is_refused(
    tiers: tuple[tuple[int, int | None, str, int], ...], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        MaintenanceTiers(
            tuple(
                MaintenanceTier(D(f), None if c is None else D(c), D(r), D(a))
                for f, c, r, a in tiers
            )
        )


@pytest.mark.parametrize(
    ("fill", "expected"),
    [
        ("-1", ("-2", "61000", "24400")),  # grown: entry averaged, new margin at 5x
        ("0.5", ("-0.5", "60000", "6000")),  # reduced: margin released pro rata
        ("1", ("0", "0", "0")),  # closed
        ("1.5", ("0.5", "62000", "6200")),  # flipped: the rest opens at the fill price
    ],
)
def test_position_after_a_fill(fill: str, expected: tuple[str, str, str]) -> None:
    after = position_after_fill(D(-1), D(60000), D(12000), D(fill), D(62000), D(5))
    assert after == tuple(D(v) for v in expected)


@pytest.mark.parametrize(
    ("notional", "available", "cap", "expected"),
    [
        ("60000", "100000", "5", "1"),  # 1x covers it: the default
        ("60000", "11700", "5", "5"),  # 60000 / 11700 = 5.13 -> 6, capped at 5
        ("60000", "14400", "5", "5"),  # 4.17 -> 5
        ("60000", "20000", "5", "3"),
        ("0", "1000", "5", "1"),
        ("60000", "0", "3", "3"),
    ],
)
def test_lowest_leverage_covers_the_margin_need(
    notional: str, available: str, cap: str, expected: str
) -> None:
    assert lowest_leverage(D(notional), D(available), D(cap)) == D(expected)
