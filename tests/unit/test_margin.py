from decimal import Decimal

import pytest

from bot.domain.margin import (
    initial_margin,
    isolated_liquidation_price,
    isolated_liquidation_price_with_margin,
    lowest_leverage,
)

D = Decimal


def test_short_liquidates_above_entry() -> None:
    # 10x short at 3000, mmr 0.5 %: 3000 * (1 + 0.1 - 0.005)
    assert isolated_liquidation_price(D("-2"), D(3000), D(10), D("0.005")) == D("3285.000")


def test_long_liquidates_below_entry() -> None:
    # 5x long at 60000, mmr 0.5 %: 60000 * (1 - 0.2 + 0.005)
    assert isolated_liquidation_price(D("0.5"), D(60000), D(5), D("0.005")) == D("48300.000")


def test_unleveraged_short_liquidates_near_double_entry() -> None:
    assert isolated_liquidation_price(D(-1), D(100), D(1), D("0.005")) == D("199.500")


def test_unleveraged_long_liquidates_only_at_maintenance_margin() -> None:
    assert isolated_liquidation_price(D(1), D(100), D(1), D("0.005")) == D("0.500")


def test_long_liquidation_price_is_floored_at_zero() -> None:
    assert isolated_liquidation_price(D(1), D(100), D("0.9"), D(0)) == D(0)


def test_flat_position_has_no_liquidation_price() -> None:
    assert isolated_liquidation_price(D(0), D(100), D(5), D("0.005")) is None


def test_initial_margin_is_notional_over_leverage_for_either_side() -> None:
    assert initial_margin(D("-0.5"), D(60000), D(5)) == D(6000)
    assert initial_margin(D("0.5"), D(60000), D(5)) == D(6000)


@pytest.mark.parametrize("leverage", [D(0), D(-1)])
def test_non_positive_leverage_is_an_error(leverage: Decimal) -> None:
    with pytest.raises(ValueError, match="leverage"):
        initial_margin(D(1), D(100), leverage)
    with pytest.raises(ValueError, match="leverage"):
        isolated_liquidation_price(D(1), D(100), leverage, D("0.005"))


def test_liquidation_price_from_the_initial_margin_matches_the_leverage_formula() -> None:
    # 5x short of 1 at 60000 holds 12000: 60000 x (1 - 0.005) + 12000 = 71700
    assert isolated_liquidation_price_with_margin(
        D(-1), D(60000), D(12000), D("0.005")
    ) == isolated_liquidation_price(D(-1), D(60000), D(5), D("0.005"))


def test_added_margin_moves_a_short_liquidation_price_up_by_margin_over_quantity() -> None:
    before = isolated_liquidation_price_with_margin(D("-0.5"), D(60000), D(6000), D("0.005"))
    after = isolated_liquidation_price_with_margin(D("-0.5"), D(60000), D(9000), D("0.005"))
    assert before is not None
    assert after is not None
    assert after - before == D(6000)


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
