from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bot.domain.models import Observation, OrderIntent, Side
from bot.domain.risk import RiskLimits, Verdict, check

D = Decimal
AT = datetime(2024, 1, 1, tzinfo=UTC)
NOW = AT + timedelta(seconds=5)
BTC = "BTC/USDT:USDT"

LIMITS = RiskLimits(
    max_data_age_s=D(60),
    max_leverage=D(5),
    pair_leverage=D(2),
    kill_switch=False,
    max_order_notional=D(10000),
    account_equity=D(20000),
)


def observe(perp: str = "-0.5", price: str = "60000") -> Observation:
    return Observation(
        pair="btc",
        spot_symbol="BTC/USDT",
        perp_symbol=BTC,
        spot_qty=D(1),
        perp_qty=D(perp),
        price=D(price),
        bid=D(price),
        ask=D(price),
        funding_rate=D("0.0001"),
        observed_at=AT,
    )


def order(side: Side = Side.SELL, amount: str = "0.1", reduce_only: bool = False) -> OrderIntent:
    return OrderIntent(BTC, side, D(amount), reduce_only, D(60000))


def test_order_within_every_limit_is_approved() -> None:
    verdict = check(order(), observe(), LIMITS, NOW)
    assert verdict == Verdict(True, "order notional 6000.00 within limits")


def test_kill_switch_denies_everything_even_reduce_only() -> None:
    limits = replace(LIMITS, kill_switch=True)
    for intent in (order(), order(Side.BUY, reduce_only=True)):
        assert check(intent, observe(), limits, NOW) == Verdict(False, "kill switch is on")


@pytest.mark.parametrize("reduce_only", [False, True])
def test_stale_observation_is_denied_even_reduce_only(reduce_only: bool) -> None:
    later = AT + timedelta(seconds=75, milliseconds=200)
    verdict = check(order(Side.BUY, reduce_only=reduce_only), observe(), LIMITS, later)
    assert verdict == Verdict(False, "observation is 75.2s old > max_data_age_s 60")


def test_observation_exactly_max_age_old_is_still_fresh() -> None:
    assert check(order(), observe(), LIMITS, AT + timedelta(seconds=60)).approved


def test_pair_leverage_above_max_is_denied() -> None:
    verdict = check(order(), observe(), replace(LIMITS, pair_leverage=D(10)), NOW)
    assert verdict == Verdict(False, "pair leverage 10 > max_leverage 5")


def test_order_notional_above_max_is_denied() -> None:
    verdict = check(
        order(amount="0.2"), observe(), replace(LIMITS, max_order_notional=D(5000)), NOW
    )
    assert verdict == Verdict(False, "order notional 12000.00 > max_order_notional 5000")


def test_order_notional_counts_contract_size() -> None:
    intent = order(amount="20")  # 20 contracts of 0.01 BTC = 0.2 BTC = 12000
    assert not check(intent, observe(), LIMITS, NOW, contract_size=D("0.01")).approved
    assert check(intent, observe(), LIMITS, NOW, contract_size=D("0.001")).approved


def test_exposure_above_equity_times_max_leverage_is_denied() -> None:
    # short 1.6 after selling 0.1 more: 96000 > 15000 x 5
    limits = replace(LIMITS, account_equity=D(15000))
    verdict = check(order(), observe(perp="-1.5"), limits, NOW)
    assert verdict == Verdict(
        False,
        "position notional after the order 96000.00 > equity 15000.00 x max_leverage 5 = 75000.00",
    )


def test_exposure_is_not_checked_when_equity_is_unknown() -> None:
    limits = replace(LIMITS, account_equity=None)
    assert check(order(), observe(perp="-100"), limits, NOW).approved


def test_reduce_only_order_skips_leverage_and_notional_checks() -> None:
    limits = replace(LIMITS, pair_leverage=D(20), max_order_notional=D(1), account_equity=D(1))
    verdict = check(order(Side.BUY, amount="0.5", reduce_only=True), observe(), limits, NOW)
    assert verdict == Verdict(True, "reduce-only order: only cuts risk")


def test_order_that_shrinks_exposure_without_reduce_only_is_measured_after_the_fill() -> None:
    # buying 0.1 against a 1.5 short leaves 1.4 short = 84000 <= 20000 x 5
    assert check(order(Side.BUY), observe(perp="-1.5"), LIMITS, NOW).approved
