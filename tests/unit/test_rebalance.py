from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.models import ONE, Decision, HedgeParams, Market, Observation, Side
from bot.domain.quantize import round_down
from bot.domain.rebalance import decide, drift, hedge_ratio

D = Decimal
AT = datetime(2024, 1, 1, tzinfo=UTC)
BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


def market(symbol: str = BTC, **overrides: object) -> Market:
    fields: dict[str, object] = {
        "symbol": symbol,
        "base": symbol.split("/")[0],
        "quote": "USDT",
        "amount_step": D("0.001"),
        "price_step": D("0.1"),
        "min_amount": D("0.001"),
        "min_notional": D(5),
        "is_perp": True,
    }
    fields.update(overrides)
    return Market(**fields)  # type: ignore[arg-type]


def observe(
    spot: str | Decimal,
    perp: str | Decimal,
    price: str | Decimal = "60000",
    symbol: str = BTC,
    bid: str | Decimal | None = None,
    ask: str | Decimal | None = None,
) -> Observation:
    mid = D(price)
    return Observation(
        pair="btc",
        spot_symbol=symbol.split(":")[0],
        perp_symbol=symbol,
        spot_qty=D(spot),
        perp_qty=D(perp),
        price=mid,
        bid=mid if bid is None else D(bid),
        ask=mid if ask is None else D(ask),
        funding_rate=D("0.0001"),
        observed_at=AT,
    )


def params(
    target: str = "1",
    band: str = "0.05",
    min_notional: str = "10",
    max_order_notional: str = "1000000",
) -> HedgeParams:
    return HedgeParams(D(target), D(band), D(min_notional), D(max_order_notional))


def filled(obs: Observation, decision: Decision, contract_size: Decimal = ONE) -> Decimal:
    """The perp position after the decision's order fills completely."""
    if decision.intent is None:
        return obs.perp_qty
    base = decision.intent.amount * contract_size
    return obs.perp_qty - base if decision.intent.side is Side.SELL else obs.perp_qty + base


# --- helpers -----------------------------------------------------------------------------


def test_hedge_ratio_counts_a_short_as_a_positive_hedge() -> None:
    assert hedge_ratio(D(2), D(-1)) == D("0.5")
    assert hedge_ratio(D(2), D(1)) == D("-0.5")


def test_hedge_ratio_is_none_without_spot() -> None:
    assert hedge_ratio(D(0), D(-1)) is None


def test_drift_is_what_to_sell_to_reach_the_target() -> None:
    assert drift(D(1), D("-0.41"), D("0.5")) == D("0.09")
    assert drift(D(1), D("-0.6"), D("0.5")) == D("-0.1")


# --- the playbook's worked cases ---------------------------------------------------------


def test_unhedged_10_eth_with_full_target_sells_10_eth_perp() -> None:
    obs = observe("10", "0", price="3000", symbol=ETH, bid="2999.9", ask="3000.1")
    decision = decide(obs, params(target="1.0"), market(ETH))
    assert decision.action == "order"
    assert decision.intent is not None
    assert (decision.intent.side, decision.intent.amount) == (Side.SELL, D(10))
    assert decision.intent.reduce_only is False
    assert decision.intent.reference_price == D("2999.9")
    assert decision.ratio == 0
    assert decision.drift_qty == D(10)


def test_half_hedge_on_1_btc_sells_half_a_btc() -> None:
    decision = decide(observe("1", "0"), params(target="0.5"), market())
    assert decision.intent is not None
    assert (decision.intent.side, decision.intent.amount) == (Side.SELL, D("0.5"))


def test_target_2_shorts_twice_the_spot() -> None:
    decision = decide(observe("1", "0"), params(target="2.0"), market())
    assert decision.intent is not None
    assert (decision.intent.side, decision.intent.amount) == (Side.SELL, D(2))


# --- band and rounding ---------------------------------------------------------------------


def test_reason_states_ratio_target_band_order_and_drift() -> None:
    decision = decide(observe("0.1", "-0.0377"), params(target="0.5"), market())
    assert decision.reason == (
        "ratio 0.3770 < target 0.5000 - band 0.0500: sell 0.012 BTC/USDT:USDT (drift 0.0123)"
    )


def test_order_rounds_down_to_amount_step() -> None:
    decision = decide(observe("0.1", "-0.0377"), params(target="0.5"), market())
    assert decision.intent is not None
    assert decision.intent.amount == D("0.012")


def test_ratio_inside_band_gives_no_order() -> None:
    decision = decide(observe("1", "-0.46"), params(target="0.5"), market())
    assert decision.action == "none"
    assert decision.intent is None
    assert decision.reason == (
        "ratio 0.4600 within target 0.5000 +/- band 0.0500: no order (drift 0.04)"
    )


def test_ratio_on_the_band_edge_gives_no_order() -> None:
    assert decide(observe("1", "-0.45"), params(target="0.5"), market()).action == "none"


def test_over_hedge_buys_back_reduce_only_at_the_ask() -> None:
    obs = observe("1", "-0.6", bid="59990", ask="60010")
    decision = decide(obs, params(target="0.5"), market())
    assert decision.intent is not None
    assert decision.intent.side is Side.BUY
    assert decision.intent.amount == D("0.1")
    assert decision.intent.reduce_only is True
    assert decision.intent.reference_price == D(60010)
    assert decision.reason.startswith("ratio 0.6000 > target 0.5000 + band 0.0500: buy 0.100")


def test_reference_price_falls_back_to_mark_without_quotes() -> None:
    obs = observe("1", "0", bid="0", ask="0")
    decision = decide(obs, params(), market())
    assert decision.intent is not None
    assert decision.intent.reference_price == D(60000)


def test_amount_is_in_contracts_for_a_non_unit_contract_size() -> None:
    contracts = market(contract_size=D("0.01"), amount_step=D(1), min_amount=D(1))
    decision = decide(observe("1", "0"), params(target="0.5"), contracts)
    assert decision.intent is not None
    assert decision.intent.amount == D(50)


# --- minimums ----------------------------------------------------------------------------


def test_amount_below_market_min_amount_gives_no_order_with_figures() -> None:
    decision = decide(observe("1", "-0.9"), params(min_notional="0"), market(min_amount=D("0.5")))
    assert decision.action == "none"
    assert decision.intent is None
    assert "sell 0.100 BTC/USDT:USDT: amount 0.100 below min amount 0.5" in decision.reason


def test_notional_below_pair_min_notional_gives_no_order() -> None:
    obs = observe("0.01", "0", price="100")
    decision = decide(obs, params(min_notional="10"), market())
    assert decision.action == "none"
    assert "notional 1.00 below min notional 10" in decision.reason


def test_market_min_notional_applies_when_stricter_than_the_pair() -> None:
    obs = observe("0.01", "0", price="1000")
    decision = decide(obs, params(min_notional="5"), market(min_notional=D(20)))
    assert decision.action == "none"
    assert "notional 10.00 below min notional 20" in decision.reason


def test_drift_smaller_than_one_step_gives_no_order() -> None:
    obs = observe("0.0005", "0")
    decision = decide(obs, params(min_notional="0"), market(min_amount=D(0)))
    assert decision.action == "none"
    assert "below one amount step" in decision.reason


# --- caps --------------------------------------------------------------------------------


def test_order_is_capped_at_max_order_notional() -> None:
    obs = observe("10", "0", price="3000", symbol=ETH)
    decision = decide(obs, params(max_order_notional="10000"), market(ETH))
    assert decision.intent is not None
    assert decision.intent.amount == D("3.333")
    assert "capped by max_order_notional 10000; rest next cycle" in decision.reason


def test_capped_orders_reach_the_target_over_cycles() -> None:
    obs = observe("10", "0", price="3000", symbol=ETH)
    rules, policy = market(ETH), params(max_order_notional="10000")
    cycles = 0
    while (decision := decide(obs, policy, rules)).intent is not None:
        obs = replace(obs, perp_qty=filled(obs, decision))
        cycles += 1
    # 3.333 + 3.333 + 3.333 = 9.999 short: ratio 0.9999, inside the band
    assert cycles == 3
    assert obs.perp_qty == D("-9.999")


def test_order_is_capped_at_market_max_amount() -> None:
    decision = decide(observe("5", "0"), params(), market(max_amount=D(2)))
    assert decision.intent is not None
    assert decision.intent.amount == D(2)
    assert "capped by max amount 2" in decision.reason


# --- position side -------------------------------------------------------------------------


def test_long_perp_is_closed_reduce_only_before_a_short_is_opened() -> None:
    obs = observe("1", "0.5")
    decision = decide(obs, params(target="1"), market())
    assert decision.intent is not None
    assert (decision.intent.side, decision.intent.amount) == (Side.SELL, D("0.5"))
    assert decision.intent.reduce_only is True
    assert "capped at position 0.5 to avoid flipping" in decision.reason

    after = decide(replace(obs, perp_qty=filled(obs, decision)), params(target="1"), market())
    assert after.intent is not None
    assert (after.intent.side, after.intent.amount) == (Side.SELL, D(1))
    assert after.intent.reduce_only is False


def test_adding_to_a_short_is_not_reduce_only() -> None:
    decision = decide(observe("1", "-0.2"), params(), market())
    assert decision.intent is not None
    assert decision.intent.reduce_only is False


def test_zero_spot_and_no_position_gives_no_order() -> None:
    decision = decide(observe("0", "0"), params(), market())
    assert decision.action == "none"
    assert decision.ratio is None
    assert decision.reason == "no spot and no position: no order"


def test_zero_target_and_no_position_gives_no_order() -> None:
    assert decide(observe("1", "0"), params(target="0"), market()).action == "none"


def test_leftover_short_without_spot_is_closed_reduce_only() -> None:
    decision = decide(observe("0", "-0.3"), params(), market())
    assert decision.intent is not None
    assert (decision.intent.side, decision.intent.amount) == (Side.BUY, D("0.3"))
    assert decision.intent.reduce_only is True
    assert decision.reason.startswith("no spot, position -0.3: buy 0.300")


def test_zero_target_closes_an_existing_short_reduce_only() -> None:
    decision = decide(observe("1", "-0.4"), params(target="0"), market())
    assert decision.intent is not None
    assert (decision.intent.side, decision.intent.amount) == (Side.BUY, D("0.4"))
    assert decision.intent.reduce_only is True


# --- bad input -----------------------------------------------------------------------------


def test_market_of_another_symbol_is_an_error() -> None:
    with pytest.raises(ValueError, match="is not the perp"):
        decide(observe("1", "0"), params(), market(ETH))


def test_negative_spot_is_an_error() -> None:
    with pytest.raises(ValueError, match="spot_qty"):
        decide(observe("-1", "0"), params(), market())


# --- properties --------------------------------------------------------------------------


def decimals(low: int, high: int, places: int) -> st.SearchStrategy[Decimal]:
    """Decimals with ``places`` digits after the point, from integers (never floats)."""
    return st.integers(low, high).map(lambda i: D(i).scaleb(-places))


@st.composite
def markets(draw: st.DrawFn) -> Market:
    step = draw(st.sampled_from([D("0.001"), D("0.01"), D("0.1"), D(1)]))
    max_steps = draw(st.none() | st.integers(1, 10**5))
    return market(
        amount_step=step,
        contract_size=draw(st.sampled_from([D(1), D("0.01"), D(10), D("0.3")])),
        min_amount=step * draw(st.integers(0, 5)),
        min_notional=draw(decimals(0, 2000, 2)),
        max_amount=None if max_steps is None else step * max_steps,
    )


def magnitudes(high: int, places: int) -> st.SearchStrategy[Decimal]:
    """Non-negative decimals over several orders of magnitude, zero one time in ten."""
    return st.builds(
        lambda zero, m, p: D(0) if zero == 0 else D(m).scaleb(-p),
        st.integers(0, 9),
        st.integers(1, high),
        st.integers(0, places),
    )


@st.composite
def observations(draw: st.DrawFn) -> Observation:
    price = draw(st.builds(lambda m, e: D(m).scaleb(e), st.integers(1, 9999), st.integers(-2, 2)))
    spread = draw(decimals(0, 50, 4))
    perp = draw(magnitudes(10**6, 4))
    return observe(
        spot=draw(magnitudes(10**6, 4)),
        perp=perp if draw(st.booleans()) else -perp,
        price=price,
        bid=price * (1 - spread),
        ask=price * (1 + spread),
    )


@st.composite
def hedge_params(draw: st.DrawFn) -> HedgeParams:
    min_notional = draw(decimals(0, 5000, 2))
    return HedgeParams(
        target_ratio=draw(st.sampled_from([D(0), D(1), D(2)]) | decimals(0, 200, 2)),
        band=draw(decimals(1, 100, 2)),
        min_notional=min_notional,
        max_order_notional=min_notional
        + draw(st.builds(lambda m, e: D(m).scaleb(e), st.integers(1, 9999), st.integers(0, 8))),
    )


@settings(max_examples=300)
@given(observations(), hedge_params(), markets())
def test_order_shape_holds_for_any_input(
    obs: Observation, policy: HedgeParams, rules: Market
) -> None:
    decision = decide(obs, policy, rules)
    assert decision.drift_qty == drift(obs.spot_qty, obs.perp_qty, policy.target_ratio)
    intent = decision.intent
    assert (decision.action == "order") is (intent is not None)
    if intent is None:
        return
    before, after = obs.perp_qty, filled(obs, decision, rules.contract_size)
    # the order closes the drift, never more
    assert (intent.side is Side.SELL) is (decision.drift_qty > 0)
    assert intent.amount * rules.contract_size <= abs(decision.drift_qty)
    # (b) never flips the position's side in one order
    assert before * after >= 0
    # (c) reduce-only exactly when it shrinks the position, and then it never grows it
    assert intent.reduce_only is (abs(after) < abs(before))
    # (e) on the step grid, within every cap and above every floor
    assert intent.amount % rules.amount_step == 0
    assert intent.amount >= max(rules.min_amount, rules.amount_step)
    assert rules.max_amount is None or intent.amount <= rules.max_amount
    notional = intent.amount * rules.contract_size * intent.reference_price
    assert notional <= policy.max_order_notional
    # A reduce-only order closing the whole position is exempt from the pair's floor, and
    # from the market's where the venue allows it: no naked residual short remains.
    closes = intent.reduce_only and after == 0
    if not closes:
        assert notional >= max(rules.min_notional, policy.min_notional)
    elif not rules.reduce_only_below_min_notional:
        assert notional >= rules.min_notional
    assert intent.reference_price == (obs.bid if intent.side is Side.SELL else obs.ask)


@settings(max_examples=300)
@given(observations(), hedge_params(), markets())
def test_uncapped_order_leaves_drift_within_band_plus_one_step(
    obs: Observation, policy: HedgeParams, rules: Market
) -> None:
    decision = decide(obs, policy, rules)
    intent = decision.intent
    step_base = rules.amount_step * rules.contract_size
    uncapped = round_down(abs(decision.drift_qty) / rules.contract_size, rules.amount_step)
    if intent is None or intent.amount != uncapped:
        return
    hedge_after = -filled(obs, decision, rules.contract_size)
    residual = abs(policy.target_ratio * obs.spot_qty - hedge_after)
    assert residual <= policy.band * obs.spot_qty + step_base


@settings(max_examples=300)
@given(observations(), hedge_params(), markets())
def test_without_caps_or_floors_every_cycle_ends_within_band_plus_one_step(
    obs: Observation, policy: HedgeParams, rules: Market
) -> None:
    # no caps, no minimums and no long position: nothing but the band and the step can
    # stop the order, so the bound must hold after every decision
    obs = replace(obs, perp_qty=-abs(obs.perp_qty))
    policy = replace(policy, min_notional=D(0), max_order_notional=D(10) ** 20)
    rules = replace(rules, min_amount=D(0), min_notional=D(0), max_amount=None)
    decision = decide(obs, policy, rules)
    hedge_after = -filled(obs, decision, rules.contract_size)
    residual = abs(policy.target_ratio * obs.spot_qty - hedge_after)
    assert residual <= policy.band * obs.spot_qty + rules.amount_step * rules.contract_size


@given(observations(), hedge_params(), markets())
def test_ratio_inside_the_band_never_orders(
    obs: Observation, policy: HedgeParams, rules: Market
) -> None:
    ratio = hedge_ratio(obs.spot_qty, obs.perp_qty)
    decision = decide(obs, policy, rules)
    if ratio is not None and abs(ratio - policy.target_ratio) <= policy.band:
        assert decision.action == "none"


@given(observations(), hedge_params(), markets())
def test_nothing_to_hedge_and_nothing_held_never_orders(
    obs: Observation, policy: HedgeParams, rules: Market
) -> None:
    flat = replace(obs, perp_qty=D(0))
    assert decide(replace(flat, spot_qty=D(0)), policy, rules).action == "none"
    assert decide(flat, replace(policy, target_ratio=D(0)), rules).action == "none"
