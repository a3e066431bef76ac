"""The free-margin cap (bot/domain/margin_cap.py) and the rebalance policy using it."""

from dataclasses import replace
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.inverse import in_coins
from bot.domain.margin_cap import (
    MarginBudget,
    cost_per_contract,
    growing_part,
    margin_capped,
    margin_price,
    smallest_order,
)
from bot.domain.models import Market, Side
from bot.domain.quantize import ioc_limit_price
from bot.domain.rebalance import decide
from tests.unit.test_inverse_hedge import BTCUSD as LISTED_BTCUSD
from tests.unit.test_rebalance import market, observe, params

D = Decimal
BTCUSD = "BTC/USD:BTC"


def usdt(free: str, leverage: str = "1", fee: str = "0.0005") -> MarginBudget:
    return MarginBudget(D(free), "USDT", D(leverage), D(fee))


def inverse_market(price: Decimal) -> Market:
    return in_coins(LISTED_BTCUSD, price)


def paid(amount: Decimal, price: Decimal, rules: Market, budget: MarginBudget) -> Decimal:
    return amount * cost_per_contract(price, rules, budget)


# --- examples ------------------------------------------------------------------------------


def test_a_1x_short_is_capped_to_what_the_free_margin_pays_with_the_fee() -> None:
    decision = decide(observe("1", "0"), params(), market(), usdt("57300"))
    assert decision.intent is not None
    # 57,300 / (60,000 x 1.0005) = 0.9545...: 0.954 BTC.
    assert decision.intent.amount == D("0.954")
    assert "capped by free margin 57300.00 USDT at 1x; rest next cycle" in decision.reason


def test_an_order_the_free_margin_pays_is_unchanged() -> None:
    without = decide(observe("1", "0"), params(), market())
    # 1 BTC at 5x: 12,000 of margin and 30 of fee.
    decision = decide(observe("1", "0"), params(), market(), usdt("12030", leverage="5"))
    assert decision == without
    decision = decide(observe("1", "0"), params(), market(), usdt("12029", leverage="5"))
    assert decision.intent is not None
    assert decision.intent.amount == D("0.999")


def test_when_the_smallest_order_cannot_be_paid_the_decision_is_denied_saying_what_to_do() -> None:
    decision = decide(
        observe("1", "-0.954"), params(band="0.02", min_notional="0"), market(), usdt("28.52")
    )
    assert decision.action == "denied"
    assert decision.intent is None
    assert "free margin 28.52 USDT cannot pay" in decision.reason
    assert "0.001 BTC at 1x: 60.03 USDT" in decision.reason
    assert "add USDT or other collateral to the perp wallet, or raise the leverage" in (
        decision.reason
    )


def test_the_smallest_order_counts_the_min_notional() -> None:
    # 5 USDT of min notional at 60,000: 0.0001 BTC, so one step of 0.001 is the smallest.
    assert smallest_order(D(60000), market()) == D("0.001")
    assert smallest_order(D(60000), market(), D(100)) == D("0.002")
    decision = decide(
        observe("1", "-0.954"), params(band="0.02", min_notional="100"), market(), usdt("100")
    )
    assert decision.action == "denied"
    assert "(0.002 BTC at 1x: 120.06 USDT)" in decision.reason


def test_a_reduce_only_order_is_never_capped_even_without_margin() -> None:
    obs = observe("1", "-1.5")  # over-hedged: buy 0.5 back, reduce-only
    decision = decide(obs, params(), market(), usdt("0"))
    assert decision.intent is not None
    assert decision.intent.reduce_only
    assert decision == decide(obs, params(), market())


def test_an_inverse_short_is_capped_in_coins_at_the_fill_price() -> None:
    # 1 BTC at 1x, 600 contracts of 100 USD at the mid; at the bid 59,994 they lock
    # 1.0001 BTC, and the fee is on top: 599 contracts.
    rules = inverse_market(D(60000))
    budget = MarginBudget(D(1), "BTC", D(1), D("0.0005"), inverse_at=D(60000))
    obs = replace(observe("1", "0", symbol=BTCUSD), bid=D(59994), ask=D(60006))
    decision = decide(obs, params(min_notional="0"), rules, budget)
    assert decision.intent is not None
    assert decision.intent.amount == D(599)
    assert paid(D(599), D(59994), rules, budget) <= 1 < paid(D(600), D(59994), rules, budget)
    assert "capped by free margin 1 BTC at 1x" in decision.reason


def test_an_inverse_short_is_paid_at_its_ioc_limit_where_the_venue_checks_its_margin() -> None:
    price = D(60000)
    rules = inverse_market(price)
    touch_only = MarginBudget(D("1.002"), "BTC", D(1), D("0.00055"), inverse_at=price)
    budget = replace(touch_only, slippage_bps=D(20))
    limit = ioc_limit_price(Side.SELL, price, D(20), rules.price_step)
    assert limit == D("59880.0")
    assert margin_price(price, Side.SELL, rules, budget) == limit
    before = margin_capped(D(70000), Side.SELL, D(0), price, rules, touch_only)
    after = margin_capped(D(70000), Side.SELL, D(0), price, rules, budget)
    # Sized at the bid, the short's coins at its limit price are more than the 1.002 BTC
    # free: the venue refused it (110007) every cycle. Sized at the limit, they are not.
    assert paid(before, limit, rules, budget) > D("1.002")
    assert paid(after, limit, rules, budget) <= D("1.002") < paid(after + 1, limit, rules, budget)
    assert (before, after) == (D(600), D(599))  # 100 USD contracts


def test_a_linear_sell_is_paid_at_the_touch_its_costlier_price() -> None:
    budget = replace(usdt("57300"), slippage_bps=D(20))
    assert margin_price(D(60000), Side.SELL, market(), budget) == D(60000)
    assert margin_price(D(60000), Side.BUY, market(), budget) == D("60120.0")


def test_only_the_growing_part_of_a_flipping_order_is_capped() -> None:
    rules = market()
    # Long 0.5, selling 1.5: 0.5 closes the long, 1 opens a short.
    assert growing_part(D("1.5"), Side.SELL, D("0.5"), rules) == D(1)
    capped = margin_capped(D("1.5"), Side.SELL, D("0.5"), D(60000), rules, usdt("30015"))
    assert capped == D("1.0")  # the 0.5 that closes and 0.5 the margin pays
    assert margin_capped(D("1.5"), Side.SELL, D("0.5"), D(60000), rules, usdt("0")) == D("0.5")


# --- properties ----------------------------------------------------------------------------

steps = st.sampled_from([D("0.001"), D("0.01"), D(1), D("0.3")])
sizes = st.sampled_from([D(1), D("0.01"), D(100), D("0.0016667")])
prices = st.decimals(min_value=D("0.01"), max_value=D(200000), places=2)
amounts = st.integers(min_value=0, max_value=100000)
leverages = st.sampled_from([D(1), D(2), D(3), D("12.5"), D(100)])
fees = st.sampled_from([D(0), D("0.0002"), D("0.00055"), D("0.001")])
frees = st.decimals(min_value=D(-100), max_value=D(10) ** 7, places=8)
positions = st.decimals(min_value=D(-1000), max_value=D(1000), places=4)


@settings(max_examples=300, deadline=None)
@given(
    steps=steps,
    size=sizes,
    price=prices,
    count=amounts,
    side=st.sampled_from(Side),
    perp=positions,
    leverage=leverages,
    fee=fees,
    free=frees,
    inverse=st.booleans(),
    slippage=st.sampled_from([D(0), D(20), D(150)]),
)
def test_the_capped_orders_growing_part_never_costs_more_than_the_free_margin(
    steps: Decimal,
    size: Decimal,
    price: Decimal,
    count: int,
    side: Side,
    perp: Decimal,
    leverage: Decimal,
    fee: Decimal,
    free: Decimal,
    inverse: bool,
    slippage: Decimal,
) -> None:
    rules = market(amount_step=steps, contract_size=size)
    price = (price // rules.price_step) * rules.price_step or rules.price_step  # on the grid
    at = price * D("1.0003") if inverse else None
    budget = MarginBudget(free, "X", leverage, fee, at, slippage)
    amount = count * steps
    capped = margin_capped(amount, side, perp, price, rules, budget)
    assert capped <= amount
    grows = growing_part(capped, side, perp, rules)
    # Paid at the touch and at the IOC limit alike, wherever the venue checks it.
    limit = ioc_limit_price(side, price, slippage, rules.price_step)
    price = margin_price(price, side, rules, budget)
    if grows > 0:
        assert paid(grows, price, rules, budget) <= budget.free
        if limit > 0:
            assert paid(grows, limit, rules, budget) <= budget.free
    # The part that reduces the position is kept (to the step).
    reducing = amount - growing_part(amount, side, perp, rules)
    assert capped >= reducing - steps
    # Not more cut than one step beyond what the margin pays.
    if capped < amount:
        assert paid(grows + steps, price, rules, budget) > budget.free


@settings(max_examples=200, deadline=None)
@given(
    spot=st.decimals(min_value=D("0.01"), max_value=D(100), places=3),
    short=st.decimals(min_value=D("0.01"), max_value=D(300), places=3),
    price=st.decimals(min_value=D(100), max_value=D(200000), places=1),
    free=frees,
    leverage=leverages,
)
def test_a_reduce_only_order_is_never_changed_by_the_cap(
    spot: Decimal, short: Decimal, price: Decimal, free: Decimal, leverage: Decimal
) -> None:
    obs = observe(spot, -short, price)
    policy = params(min_notional="0")
    budget = MarginBudget(free, "USDT", leverage, D("0.0005"))
    plain = decide(obs, policy, market())
    capped = decide(obs, policy, market(), budget)
    if plain.intent is not None and plain.intent.reduce_only:
        assert capped == plain
    intent = capped.intent
    if intent is not None and not intent.reduce_only:
        assert paid(intent.amount, intent.reference_price, market(), budget) <= free
