"""Coin-margined (inverse) contracts: the pure arithmetic of bot.domain.inverse."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.inverse import (
    average_entry,
    coin_funding,
    coin_pnl,
    coins_held,
    coins_of,
    contracts_for,
    drift_contracts,
    face_value,
    hedge_ratio,
    in_coins,
    initial_margin,
    liquidation_price,
    position_in_coins,
    usd_value,
)
from bot.domain.margin import MaintenanceTier, MaintenanceTiers
from bot.domain.models import HedgeParams, Market, Observation, Position, Side
from bot.domain.quantize import base_to_contracts, contracts_to_base
from bot.domain.rebalance import decide

D = Decimal
BTCUSD = Market(
    symbol="BTC/USD:BTC",
    base="BTC",
    quote="USD",
    amount_step=D(1),
    price_step=D("0.1"),
    min_amount=D(1),
    contract_size=D(100),
    is_perp=True,
    inverse=True,
)
FLAT = MaintenanceTiers.flat(D("0.005"))
# Binance COIN-M BTCUSD's first brackets, in coin notional.
TIERS = MaintenanceTiers(
    (
        MaintenanceTier(D(0), D(5), D("0.004"), D(0)),
        MaintenanceTier(D(5), D(10), D("0.005"), D("0.005")),
        MaintenanceTier(D(10), None, D("0.01"), D("0.055")),
    )
)

prices = st.decimals(min_value=D(100), max_value=D(1_000_000), places=2)
coins = st.decimals(min_value=D("0.01"), max_value=D(100), places=4)
rates = st.decimals(min_value=D("-0.003"), max_value=D("0.003"), places=6)
# Up to a full hedge: an over-hedge (target > 1) can lose all the coins to a rally.
targets = st.decimals(min_value=D(0), max_value=D(1), places=2)


def test_face_value_and_coins_of_btcusd() -> None:
    assert face_value(D(600), BTCUSD) == D(60000)
    assert coins_of(D(60000), D(60000)) == D(1)
    assert contracts_for(D(1), D(60000), BTCUSD) == D(600)
    assert contracts_for(D("0.99999"), D(60000), BTCUSD) == D(599)  # rounded down


def test_coin_pnl_of_a_short_after_the_price_doubles() -> None:
    # 600 contracts of 100 USD shorted at 60,000, marked at 120,000: lose half a coin.
    assert coin_pnl(D(-60000), D(60000), D(120000)) == D("-0.5")
    assert coin_pnl(D(60000), D(60000), D(30000)) == D(-1)


def test_a_short_receives_positive_funding_in_coin() -> None:
    assert coin_funding(D(-60000), D(60000), D("0.0001")) == D("0.0001")


@given(start=prices, held=coins, path=st.lists(prices, min_size=1, max_size=20), paid=rates)
def test_a_1x_short_keeps_the_usd_value_of_the_coins_on_any_price_path(
    start: Decimal, held: Decimal, path: list[Decimal], paid: Decimal
) -> None:
    face = -usd_value(held, start)  # shorted at 1x: the margin is all the coins
    margin = initial_margin(face, start, D(1))
    assert margin == held
    funding = D(0)
    for mark in path:
        funding += coin_funding(face, mark, paid)
        now = coins_held(D(0), margin + funding, coin_pnl(face, start, mark))
        # What is left beside the funding is worth what the coins were worth at the start.
        kept = usd_value(now, mark) - usd_value(funding, mark)
        assert abs(kept - usd_value(held, start)) <= usd_value(held, start) * D("1e-20")


@given(entry=prices, face=st.decimals(min_value=D(1), max_value=D(10**9), places=0))
def test_a_1x_short_is_never_liquidated(entry: Decimal, face: Decimal) -> None:
    margin = initial_margin(-face, entry, D(1))
    assert liquidation_price(-face, entry, margin, FLAT) is None
    assert liquidation_price(-face, entry, margin, TIERS) is None


def test_a_leveraged_short_liquidates_where_its_margin_meets_maintenance() -> None:
    # 2x short of 60,000 USD at 60,000 holds 0.5 BTC: LP = 60000 x 0.995 / (1 - 0.5)
    price = liquidation_price(D(-60000), D(60000), D("0.5"), FLAT)
    assert price == D(60000) * D("0.995") / D("0.5")
    assert price is not None
    # At that price the margin balance equals the maintenance margin.
    balance = D("0.5") + coin_pnl(D(-60000), D(60000), price)
    assert abs(balance - D(60000) / price * D("0.005")) < D("1e-20")


@given(entry=prices, leverage=st.integers(min_value=1, max_value=50))
def test_a_long_liquidates_below_its_entry(entry: Decimal, leverage: int) -> None:
    margin = initial_margin(D(10000), entry, D(leverage))
    price = liquidation_price(D(10000), entry, margin, TIERS)
    assert price is not None
    assert price < entry


@given(start=prices, moved=prices, held=coins, target=targets)
def test_the_ratio_drifts_off_a_target_other_than_1_and_the_drift_order_restores_it(
    start: Decimal, moved: Decimal, held: Decimal, target: Decimal
) -> None:
    face = contracts_for(held * target, start, BTCUSD) * BTCUSD.contract_size
    now = coins_held(held, D(0), coin_pnl(-face, start, moved))
    ratio = hedge_ratio(face, now, moved)
    assert ratio is not None
    exact = target * usd_value(held, start) == face
    if exact and target not in (D(0), D(1)) and moved != start:
        assert ratio != target
    contracts, reduce_only = drift_contracts(face, now, moved, target, BTCUSD)
    assert reduce_only == (contracts < 0)
    after = face + contracts * BTCUSD.contract_size
    assert after >= 0  # never crosses to a long
    # Within one contract of the target, rounded toward the smaller order.
    assert abs(target * usd_value(now, moved) - after) < BTCUSD.contract_size


def test_average_entry_adds_coin_pnls() -> None:
    entry = average_entry(D(-60000), D(60000), D(-30000), D(30000))
    assert entry == D(90000) / D(2)
    assert coin_pnl(D(-90000), entry, D(40000)) == coin_pnl(
        D(-60000), D(60000), D(40000)
    ) + coin_pnl(D(-30000), D(30000), D(40000))


@given(price=prices, held=coins)
def test_in_coins_makes_the_linear_conversions_inverse_ones(price: Decimal, held: Decimal) -> None:
    linear = in_coins(BTCUSD, price)
    assert not linear.inverse
    # The same contracts either way, up to the last digit of a division at a step's edge.
    contracts = base_to_contracts(held, linear)
    assert abs(contracts - contracts_for(held, price, BTCUSD)) <= BTCUSD.amount_step
    assert contracts_to_base(contracts, linear) <= held
    assert abs(contracts_to_base(D(7), linear) - coins_of(D(700), price)) < D("1e-20")
    assert in_coins(linear, price) is linear


def test_position_in_coins_is_the_face_over_the_mark() -> None:
    position = Position("BTC/USD:BTC", D(-60000), D(60000), D(120000), D("-0.5"), D(1), None)
    assert position_in_coins(position, BTCUSD).qty == D("-0.5")
    linear = Market("BTC/USDT:USDT", "BTC", "USDT", D("0.001"), D("0.1"), is_perp=True)
    assert position_in_coins(position, linear) is position


def test_coins_of_refuses_a_price_of_zero() -> None:
    with pytest.raises(ValueError, match="price must be positive"):
        coins_of(D(1), D(0))


def _observation(coins: Decimal, face: Decimal, price: Decimal) -> Observation:
    return Observation(
        pair="BTC",
        spot_symbol="BTC/USDT",
        perp_symbol="BTC/USD:BTC",
        spot_qty=coins,
        perp_qty=coins_of(-face, price),
        price=price,
        bid=price,
        ask=price,
        funding_rate=D(0),
        observed_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_decide_on_the_coin_view_sizes_the_inverse_short_in_contracts() -> None:
    params = HedgeParams(D(1), D("0.02"), D(0), D(10**6))
    opened = decide(_observation(D(1), D(0), D(60000)), params, in_coins(BTCUSD, D(60000)))
    assert opened.intent is not None
    assert (opened.intent.side, opened.intent.amount) == (Side.SELL, D(600))
    # +100%: the short lost half a coin, the coins left are worth its face: no order.
    held = decide(_observation(D("0.5"), D(60000), D(120000)), params, in_coins(BTCUSD, D(120000)))
    assert held.intent is None
    assert held.ratio == D(1)


def test_decide_on_the_coin_view_rebalances_a_half_hedge_after_a_rally() -> None:
    # 300 contracts short at 60,000 on 1 BTC; at 120,000 the coins are 0.75 (ratio 1/3).
    params = HedgeParams(D("0.5"), D("0.02"), D(0), D(10**6))
    coins = D(1) + coin_pnl(D(-30000), D(60000), D(120000))
    assert coins == D("0.75")
    decision = decide(_observation(coins, D(30000), D(120000)), params, in_coins(BTCUSD, D(120000)))
    assert decision.intent is not None
    # 0.5 x 0.75 x 120,000 = 45,000 USD of face wanted: 150 more contracts.
    assert (decision.intent.side, decision.intent.amount) == (Side.SELL, D(150))
    assert drift_contracts(D(30000), coins, D(120000), D("0.5"), BTCUSD) == (D(150), False)
