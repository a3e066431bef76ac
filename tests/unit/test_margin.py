from decimal import Decimal

import pytest

from bot.domain.margin import initial_margin, isolated_liquidation_price

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
