from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.margin import MaintenanceTiers
from bot.domain.models import Market, Observation, OrderIntent, Position, Side
from bot.domain.risk import (
    RiskLimits,
    Verdict,
    check,
    check_margin_transfer,
    check_spot_sell,
    liquidation_after,
    liquidation_distance,
    liquidation_guard,
)

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


# -- pause, caps, liquidation distance --------------------------------------------------


def positioned(perp: str = "-1", price: str = "60000", liquidation: str = "71700") -> Observation:
    obs = observe(perp=perp, price=price)
    position = Position(
        symbol=BTC,
        qty=D(perp),
        entry_price=D(60000),
        mark_price=D(price),
        unrealized_pnl=D(0),
        leverage=D(5),
        liquidation_price=D(liquidation),
        margin=D(12000),
    )
    return replace(obs, position=position)


def test_paused_pair_is_denied_even_reduce_only() -> None:
    limits = replace(LIMITS, paused="paused by the user: maintenance")
    for intent in (order(), order(Side.BUY, reduce_only=True)):
        assert check(intent, observe(), limits, NOW) == Verdict(
            False, "pair is paused: paused by the user: maintenance"
        )


def test_position_notional_cap_denies_the_order_that_passes_it() -> None:
    limits = replace(LIMITS, max_position_notional=D(33000))
    # short 0.5 + 0.1 = 0.6 x 60000 = 36000 > 33000
    verdict = check(order(), observe(), limits, NOW)
    assert verdict == Verdict(
        False, "position notional after the order 36000.00 > max_position_notional 33000"
    )
    assert check(order(), observe(), replace(limits, max_position_notional=D(36000)), NOW).approved


def test_daily_notional_counts_what_was_traded_today() -> None:
    limits = replace(LIMITS, max_daily_notional=D(20000), daily_traded_notional=D(15000))
    verdict = check(order(), observe(), limits, NOW)
    assert verdict == Verdict(
        False, "traded today 15000.00 + order 6000.00 > max_daily_notional 20000"
    )
    assert check(order(), observe(), replace(limits, daily_traded_notional=D(14000)), NOW).approved


def test_orders_adding_to_a_position_near_liquidation_are_denied_but_reduce_only_passes() -> None:
    # mark 66000, liquidation 71700: 5700 / 66000 = 0.0864 < 0.1
    near = positioned(price="66000")
    limits = replace(LIMITS, min_liquidation_distance=D("0.1"), account_equity=None)
    verdict = check(order(), near, limits, NOW)
    assert not verdict.approved
    assert verdict.reason.startswith("mark is 0.0864 from the liquidation price")
    assert check(order(Side.BUY, reduce_only=True), near, limits, NOW).approved


def test_an_order_that_would_open_a_short_inside_the_guard_distance_is_denied() -> None:
    # A 5x short of 0.1 at 60000, flat 0.5 %: liquidation 60000 x 1.2 / 1.005 = 71641.79,
    # 0.1940 from the mark.
    limits = replace(
        LIMITS, pair_leverage=D(5), min_liquidation_distance=D("0.195"), maintenance=FLAT
    )
    verdict = check(order(), observe(perp="0"), limits, NOW)
    assert verdict == Verdict(
        False,
        "estimated liquidation price 71641.79 after the order is 0.1940 from the mark 60000 "
        "< min_liquidation_distance 0.195: the guard would close the position at once; "
        "lower the leverage or the distance",
    )
    assert check(order(), observe(perp="0"), replace(limits, venue_leverage=D(4)), NOW).approved
    assert check(order(), observe(perp="0"), replace(limits, maintenance=None), NOW).approved


def test_an_order_that_grows_a_short_is_estimated_with_the_margin_it_holds() -> None:
    # 1 BTC short at 60000, liquidation 90000 (margin added earlier), mark 66000: 0.364.
    obs = positioned(price="66000", liquidation="90000")
    limits = replace(
        LIMITS,
        pair_leverage=D(5),
        maintenance=FLAT,
        account_equity=None,
        max_order_notional=D(10**6),
    )
    # Held: 90000 x 1.005 - 60000 = 30450; selling 1 at 66000 and 5x adds 13200:
    # (43650 + 126000) / (2 x 1.005) = 84402.99, 0.2788 from the mark.
    estimate = liquidation_after(D(-1), D(66000), obs, limits)
    assert estimate == (D(-2), D(169650) / D("2.010"))
    strict = replace(limits, min_liquidation_distance=D("0.3"))
    sell = OrderIntent(BTC, Side.SELL, D(1), False, D(66000))
    verdict = check(sell, obs, strict, NOW)
    assert not verdict.approved
    assert "estimated liquidation price 84402.99 after the order is 0.2788" in verdict.reason
    assert check(sell, obs, replace(strict, min_liquidation_distance=D("0.27")), NOW).approved


def test_liquidation_distance_of_a_short_and_of_a_long() -> None:
    assert liquidation_distance(positioned(price="65000")) == D(6700) / D(65000)
    long = positioned(perp="1", price="50000", liquidation="45000")
    assert liquidation_distance(long) == D("0.1")
    assert liquidation_distance(observe()) is None  # no position


# -- the liquidation guard ----------------------------------------------------------------

MARKET = Market(
    symbol=BTC,
    base="BTC",
    quote="USDT",
    amount_step=D("0.001"),
    price_step=D("0.1"),
    is_perp=True,
)
FLAT = MaintenanceTiers.flat(D("0.005"))


def test_guard_does_nothing_while_the_distance_is_kept() -> None:
    assert (
        liquidation_guard(positioned(price="65000"), D("0.1"), "reduce", MARKET, D(0), FLAT) is None
    )


def test_guard_reduce_closes_the_short_reduce_only() -> None:
    action = liquidation_guard(
        positioned(price="65400"), D("0.1"), "reduce", MARKET, D(10**6), FLAT
    )
    assert action is not None
    assert action.add_margin is None
    assert action.intent == OrderIntent(BTC, Side.BUY, D(1), True, D(65400))
    assert "reduce-only to close it" in action.reason


def test_guard_add_margin_moves_the_liquidation_price_to_one_and_a_half_times_the_minimum() -> None:
    action = liquidation_guard(
        positioned(price="65400"), D("0.1"), "add_margin", MARKET, D(5000), FLAT
    )
    assert action is not None
    assert action.intent is None
    # target 65400 x 1.15 = 75210; a short's liquidation price moves 1 / (qty x (1 + mmr))
    # per unit of margin: (75210 - 71700) x 1 x 1.005 = 3527.55
    assert action.add_margin == D("3527.55")


def test_guard_add_margin_falls_back_to_reduce_when_the_margin_is_not_free() -> None:
    action = liquidation_guard(
        positioned(price="65400"), D("0.1"), "add_margin", MARKET, D(3000), FLAT
    )
    assert action is not None
    assert action.add_margin is None
    assert action.intent is not None
    assert action.intent.reduce_only
    assert "adding 3527.55 margin is not possible (3000 free)" in action.reason


def test_margin_transfer_obeys_kill_switch_pause_and_stale_data() -> None:
    assert check_margin_transfer(observe(), LIMITS, NOW).approved
    assert not check_margin_transfer(observe(), replace(LIMITS, kill_switch=True), NOW).approved
    assert not check_margin_transfer(observe(), replace(LIMITS, paused="x"), NOW).approved
    later = AT + timedelta(seconds=61)
    assert not check_margin_transfer(observe(), LIMITS, later).approved


# -- property: no approved order breaks a configured limit ---------------------------------

money = st.decimals(min_value=D("0.01"), max_value=D(10**6), places=2)
qty = st.decimals(min_value=D("0.001"), max_value=D(100), places=3)


@st.composite
def gate_inputs(draw: st.DrawFn) -> tuple[OrderIntent, Observation, RiskLimits, datetime]:
    price = draw(st.decimals(min_value=D(1), max_value=D(100000), places=2))
    perp = draw(st.decimals(min_value=D(-100), max_value=D(100), places=3))
    liquidation = draw(st.none() | st.decimals(min_value=D(1), max_value=D(200000), places=2))
    obs = replace(observe(perp=str(perp), price=str(price)))
    if perp != 0 and liquidation is not None:
        position = Position(BTC, perp, price, price, D(0), D(5), liquidation)
        obs = replace(obs, position=position)
    intent = OrderIntent(BTC, draw(st.sampled_from(Side)), draw(qty), draw(st.booleans()), price)
    limits = RiskLimits(
        max_data_age_s=D(60),
        max_leverage=draw(st.decimals(min_value=D(1), max_value=D(20), places=0)),
        pair_leverage=draw(st.decimals(min_value=D(1), max_value=D(20), places=0)),
        kill_switch=draw(st.booleans()),
        max_order_notional=draw(money),
        account_equity=draw(st.none() | money),
        paused=draw(st.none() | st.just("paused by the user: test")),
        max_position_notional=draw(st.none() | money),
        max_daily_notional=draw(st.none() | money),
        daily_traded_notional=draw(money),
        min_liquidation_distance=draw(
            st.none() | st.decimals(min_value=D("0.01"), max_value=D("0.5"), places=2)
        ),
        maintenance=draw(
            st.none()
            | st.decimals(min_value=D(0), max_value=D("0.1"), places=3).map(MaintenanceTiers.flat)
        ),
    )
    now = AT + timedelta(seconds=draw(st.integers(min_value=0, max_value=120)))
    return intent, obs, limits, now


@settings(max_examples=400, deadline=None)
@given(gate_inputs())
def test_no_approved_order_breaks_a_configured_limit(
    inputs: tuple[OrderIntent, Observation, RiskLimits, datetime],
) -> None:
    intent, obs, limits, now = inputs
    verdict = check(intent, obs, limits, now)
    if not verdict.approved:
        return
    assert not limits.kill_switch
    assert limits.paused is None
    assert now - obs.observed_at <= timedelta(seconds=float(limits.max_data_age_s))
    if intent.reduce_only:
        return  # only cuts risk: the size limits do not apply
    notional = intent.amount * intent.reference_price
    signed = intent.amount if intent.side is Side.BUY else -intent.amount
    exposure = abs(obs.perp_qty + signed) * obs.price
    assert limits.pair_leverage <= limits.max_leverage
    assert notional <= limits.max_order_notional
    if limits.max_daily_notional is not None:
        assert limits.daily_traded_notional + notional <= limits.max_daily_notional
    if limits.max_position_notional is not None:
        assert exposure <= limits.max_position_notional
    if limits.account_equity is not None:
        assert exposure <= limits.account_equity * limits.max_leverage
    distance = liquidation_distance(obs)
    if limits.min_liquidation_distance is not None and distance is not None:
        assert distance >= limits.min_liquidation_distance
    after = liquidation_after(signed, intent.reference_price, obs, limits)
    if limits.min_liquidation_distance is not None and after is not None:
        qty, price = after
        gap = (price - obs.price if qty < 0 else obs.price - price) / obs.price
        assert gap >= limits.min_liquidation_distance


# -- spot sells (the bearish sell-down) ---------------------------------------------------


def spot_sell(amount: str = "0.1") -> OrderIntent:
    return OrderIntent("BTC/USDT", Side.SELL, D(amount), False, D(60000))


def test_spot_sell_within_limits_is_approved_even_with_a_position_cap_it_does_not_touch() -> None:
    # A spot sell leaves the perp position alone: the position cap does not apply to it.
    limits = replace(LIMITS, max_position_notional=D(1))
    assert check_spot_sell(spot_sell(), observe(), limits, NOW).approved


@pytest.mark.parametrize(
    ("limits", "intent", "observed_at", "why"),
    [
        (replace(LIMITS, kill_switch=True), spot_sell(), AT, "kill switch is on"),
        (replace(LIMITS, paused="user"), spot_sell(), AT, "pair is paused: user"),
        (LIMITS, spot_sell(), AT - timedelta(minutes=5), "old > max_data_age_s 60"),
        (
            replace(LIMITS, max_order_notional=D(5000)),
            spot_sell(),
            AT,
            "order notional 6000.00 > max_order_notional 5000",
        ),
        (
            replace(LIMITS, max_daily_notional=D(10000), daily_traded_notional=D(5000)),
            spot_sell(),
            AT,
            "max_daily_notional 10000",
        ),
        (LIMITS, spot_sell("1.5"), AT, "spot held 1"),
        (LIMITS, replace(spot_sell(), side=Side.BUY), AT, "may only sell"),
    ],
)
def test_spot_sell_is_denied_by_each_limit(
    limits: RiskLimits, intent: OrderIntent, observed_at: datetime, why: str
) -> None:
    observation = replace(observe(), observed_at=observed_at)
    verdict = check_spot_sell(intent, observation, limits, NOW)
    assert not verdict.approved
    assert why in verdict.reason
