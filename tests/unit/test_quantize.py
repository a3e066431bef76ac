from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.models import Market, Side
from bot.domain.quantize import (
    amount_problem,
    base_to_contracts,
    contracts_to_base,
    round_down,
    round_price,
)

D = Decimal


def market(**overrides: object) -> Market:
    fields: dict[str, object] = {
        "symbol": "BTC/USDT:USDT",
        "base": "BTC",
        "quote": "USDT",
        "amount_step": D("0.001"),
        "price_step": D("0.1"),
        "min_amount": D("0.001"),
        "min_notional": D(5),
        "is_perp": True,
    }
    fields.update(overrides)
    return Market(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "step", "expected"),
    [
        (D("0.0129"), D("0.001"), D("0.012")),
        (D("0.012"), D("0.001"), D("0.012")),
        (D("0.0009"), D("0.001"), D(0)),
        (D("17"), D("5"), D("15")),
        (D("3.3333333"), D("0.01"), D("3.33")),
        (D("-0.0129"), D("0.001"), D("-0.012")),
    ],
)
def test_round_down_goes_toward_zero_to_a_step_multiple(
    value: Decimal, step: Decimal, expected: Decimal
) -> None:
    assert round_down(value, step) == expected


@given(
    st.integers(min_value=0, max_value=10**12),
    st.integers(min_value=0, max_value=8),
    st.sampled_from([D("0.001"), D("0.01"), D("0.5"), D(1), D(10)]),
)
def test_round_down_is_a_non_negative_step_multiple_within_one_step(
    units: int, places: int, step: Decimal
) -> None:
    value = D(units).scaleb(-places)
    rounded = round_down(value, step)
    assert rounded >= 0
    assert rounded <= value < rounded + step
    assert rounded % step == 0


@pytest.mark.parametrize("step", [D(0), D("-0.1")])
def test_round_down_rejects_a_non_positive_step(step: Decimal) -> None:
    with pytest.raises(ValueError, match="step"):
        round_down(D(1), step)


def test_round_price_never_worsens_a_limit_price() -> None:
    assert round_price(D("100.07"), D("0.1"), Side.BUY) == D("100.0")
    assert round_price(D("100.01"), D("0.1"), Side.SELL) == D("100.1")
    assert round_price(D("100.06"), D("0.1")) == D("100.1")
    assert round_price(D("100.1"), D("0.1"), Side.SELL) == D("100.1")


def test_base_to_contracts_divides_by_contract_size_and_rounds_down() -> None:
    assert base_to_contracts(D("0.0129"), market()) == D("0.012")
    assert base_to_contracts(D("0.129"), market(contract_size=D("0.01"), amount_step=D(1))) == 12
    assert contracts_to_base(D(12), market(contract_size=D("0.01"))) == D("0.12")


def test_amount_within_all_limits_has_no_problem() -> None:
    assert amount_problem(D("0.012"), D(60000), market(), D(10)) is None


@pytest.mark.parametrize(
    ("contracts", "overrides", "pair_min", "expected"),
    [
        (D(0), {}, D(0), "amount 0 below one amount step 0.001"),
        (D("0.0125"), {}, D(0), "amount 0.0125 is not a multiple of the amount step 0.001"),
        (D("0.002"), {"min_amount": D("0.005")}, D(0), "amount 0.002 below min amount 0.005"),
        (D(2), {"max_amount": D(1)}, D(0), "amount 2 above max amount 1"),
        (D("0.001"), {"min_notional": D(100)}, D(0), "notional 60.00 below min notional 100"),
        (D("0.001"), {"min_notional": D(5)}, D(100), "notional 60.00 below min notional 100"),
    ],
)
def test_amount_problem_names_the_broken_limit(
    contracts: Decimal, overrides: dict[str, object], pair_min: Decimal, expected: str
) -> None:
    assert amount_problem(contracts, D(60000), market(**overrides), pair_min) == expected


def test_notional_counts_contract_size() -> None:
    # 3 contracts of 0.01 BTC at 60000 = 1800 notional, above a 1000 floor
    small = market(contract_size=D("0.01"), amount_step=D(1), min_amount=D(1))
    assert amount_problem(D(3), D(60000), small, D(1000)) is None
    assert amount_problem(D(1), D(60000), small, D(1000)) == (
        "notional 600.00 below min notional 1000"
    )


def test_ioc_limit_is_the_slippage_bound_rounded_inward() -> None:
    from bot.domain.quantize import ioc_limit_price

    # 20 bps above an ask of 60000.05 is 60120.0501: a buy limit rounds down.
    assert ioc_limit_price(Side.BUY, D("60000.05"), D(20), D("0.1")) == D("60120.0")
    # 20 bps below a bid of 60000.05 is 59880.0499: a sell limit rounds up.
    assert ioc_limit_price(Side.SELL, D("60000.05"), D(20), D("0.1")) == D("59880.1")
