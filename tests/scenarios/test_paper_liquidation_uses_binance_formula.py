"""The paper venue liquidates by Binance's USDⓈ-M formula with maintenance tiers, and the
liquidation guard and the pre-trade check compute with the same formula.

Binance, one isolated position in one-way mode: liquidated where the margin balance
(isolated wallet + unrealized PnL) meets the maintenance margin, ``notional x rate -
amount`` of the tier the notional is in; for a short of ``qty`` at ``entry`` holding
``margin``: ``(margin + amount + qty x entry) / (qty x (1 + rate))``.

Before: the paper venue used ``entry x (1 + 1/leverage - mmr)`` with one rate, 0.005, for
every size: a 1 BTC 5x short at 60000 liquidated at 71700 (Binance: 71691.54), and a
100 BTC one also at 71700 (Binance: 70402.93, 1297 USDT per BTC closer, in the 2.5 % tier).
The guard's top-up added ``(target - liquidation) x qty``, 0.5 % short of what moves the
liquidation price to its target.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot.clock import FakeClock
from bot.config import PaperConfig
from bot.domain.margin import (
    isolated_liquidation_price_with_margin,
    margin_at_liquidation_price,
)
from bot.domain.models import ZERO, Market, Observation, OrderRequest, Position, Side
from bot.domain.paper_account import InMemoryPaperAccountStore, PaperAccountState
from bot.domain.risk import RiskLimits, liquidation_after, liquidation_guard
from bot.exchange.feeds import ManualFeed
from bot.exchange.paper import PaperVenue

D = Decimal
T0 = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)  # between funding times
PERP = "BTC/USDT:USDT"
BTC_TIERS = PaperConfig().maintenance(PERP)[1]
CENT = D("0.01")


def _venue(price: Decimal, leverage: Decimal) -> tuple[PaperVenue, ManualFeed]:
    """A paper venue at ``price`` with ``leverage`` on BTC, plenty of USDT, no spread or fee
    (built without a running loop, so a hypothesis example can drive it), and its feed."""
    config = PaperConfig.model_validate(
        {"balances": {"USDT": 10**9}, "spread_bps": 0, "taker_fee_rate": 0}
    )
    feed = ManualFeed({"BTC": price})
    state = PaperAccountState(balances=dict(config.balances), last_funding_at=T0)
    store = InMemoryPaperAccountStore()
    venue = PaperVenue(config, feed, FakeClock(T0), store, state, leverage={PERP: leverage})
    return venue, feed


def _sell(amount: Decimal, cid: str) -> OrderRequest:
    return OrderRequest(symbol=PERP, side=Side.SELL, amount=amount, client_order_id=cid)


async def _short(venue: PaperVenue, amount: Decimal) -> Position:
    await venue.create_order(_sell(amount, "open"))
    return (await venue.fetch_positions([PERP]))[PERP]


def _margin_balance_less_maintenance(position: Position, price: Decimal) -> Decimal:
    """At ``price``: isolated wallet + unrealized PnL - maintenance margin (the tier table's)."""
    pnl = position.qty * (price - position.entry_price)
    return position.margin + pnl - BTC_TIERS.margin(abs(position.qty) * price)


# -- the formula, on numbers worked by hand ------------------------------------------------


async def test_a_1_btc_5x_short_liquidates_where_binance_does() -> None:
    position = await _short(_venue(D(60000), D(5))[0], D(1))
    # 12000 margin; at the liquidation price the notional (~71700) is in BTCUSDT's second
    # tier, 0.5 % less an amount of 50: (12000 + 50 + 60000) / 1.005.
    assert position.liquidation_price == (D(12000) + 50 + 60000) / D("1.005")
    assert position.liquidation_price.quantize(CENT) == D("71691.54")


async def test_a_100_btc_5x_short_liquidates_in_the_2_5_percent_tier() -> None:
    position = await _short(_venue(D(60000), D(5))[0], D(100))
    # Notional at liquidation ~7.04 M: the 1 M - 10 M tier, 2.5 % less 16300.
    expected = (D(1_200_000) + 16_300 + 6_000_000) / (100 * D("1.025"))
    assert position.liquidation_price == expected
    assert expected.quantize(CENT) == D("70402.93")


async def test_the_venue_liquidates_the_short_when_the_mark_reaches_binances_price() -> None:
    venue, feed = _venue(D(60000), D(5))
    position = await _short(venue, D(1))
    assert position.liquidation_price is not None
    feed.set_price("BTC", D("71691.50"))
    assert venue.settle_due() is False
    feed.set_price("BTC", D("71691.55"))
    assert venue.settle_due() is True
    [liquidation] = venue.liquidations()
    assert liquidation.average_price == position.liquidation_price


# -- properties ----------------------------------------------------------------------------

quantities = st.decimals(D("0.01"), D(400), places=3)  # 0.01 x 900 > min notional 5
prices = st.decimals(D(1000), D(200_000), places=2)
leverages = st.integers(1, 20).map(D)


def _allowed(notional: Decimal, leverage: Decimal) -> bool:
    """Whether Binance lets a position of ``notional`` (up to its size at liquidation) run
    at ``leverage``: a tier's highest leverage is 1 / (2 x its rate). Above it the paper
    venue (which does not refuse) would liquidate the position at once."""
    return 2 * BTC_TIERS.tier(notional * (1 + 1 / leverage)).rate * leverage <= 1


@settings(max_examples=40, deadline=None)
@given(qty=quantities, price=prices, leverage=leverages)
def test_at_the_venues_liquidation_price_margin_balance_equals_maintenance_margin(
    qty: Decimal, price: Decimal, leverage: Decimal
) -> None:
    assume(_allowed(qty * price, leverage))
    position = asyncio.run(_short(_venue(price, leverage)[0], qty))
    liquidation = position.liquidation_price
    assert liquidation is not None
    # Zero up to the 28 digits Decimal divides to.
    assert abs(_margin_balance_less_maintenance(position, liquidation)) < D("1e-15") * (qty * price)


def _observed(position: Position | None, mark: Decimal) -> Observation:
    """The venue's ``position`` (None: flat) marked at ``mark``, bid and ask there too."""
    qty = position.qty if position is not None else ZERO
    return Observation(
        pair="BTC",
        spot_symbol="BTC/USDT",
        perp_symbol=PERP,
        spot_qty=abs(qty),
        perp_qty=qty,
        price=mark,
        bid=mark,
        ask=mark,
        funding_rate=ZERO,
        observed_at=T0,
        position=position,
    )


MARKET = Market(
    symbol=PERP, base="BTC", quote="USDT", amount_step=D("0.001"), price_step=CENT, is_perp=True
)


async def _top_up(qty: Decimal, leverage: Decimal, rise: Decimal) -> tuple[Decimal, Decimal]:
    """Open a short at 60000, mark it ``rise`` closer to liquidation than the guard
    allows, add the guard's margin; (target, the venue's liquidation price after)."""
    venue, feed = _venue(D(60000), leverage)
    position = await _short(venue, qty)
    assert position.liquidation_price is not None
    # The mark past the guard's trigger (distance 0.05) by ``rise``.
    mark = (position.liquidation_price / D("1.05") * (1 + rise)).quantize(CENT)
    feed.set_price("BTC", mark)
    position = (await venue.fetch_positions([PERP]))[PERP]
    observed = _observed(position, mark)
    action = liquidation_guard(observed, D("0.05"), "add_margin", MARKET, D(10**9), BTC_TIERS)
    assert action is not None
    assert action.add_margin is not None, action.reason
    await venue.add_margin(PERP, action.add_margin)
    after = (await venue.fetch_positions([PERP]))[PERP].liquidation_price
    assert after is not None
    return mark * D("1.075"), after


@settings(max_examples=40, deadline=None)
@given(
    qty=quantities,
    leverage=st.integers(3, 15).map(D),
    rise=st.decimals(D("0.001"), D("0.04"), places=3),
)
def test_the_guards_top_up_puts_the_venues_liquidation_price_at_the_target(
    qty: Decimal, leverage: Decimal, rise: Decimal
) -> None:
    assume(_allowed(qty * 60000, leverage))
    target, after = asyncio.run(_top_up(qty, leverage, rise))
    # The top-up is rounded up to a cent: the price lands at the target or past it (away
    # from the mark) by at most what one cent of margin moves it, 0.01 / (qty x (1 + rate)):
    # within a tick (0.01) from 1 BTC up.
    step = CENT / qty
    assert target <= after <= target + step, (target, after)


def test_the_unrounded_top_up_puts_the_liquidation_price_exactly_at_the_target() -> None:
    for qty, target in [(D(-1), D("75210")), (D(-100), D("76000.5")), (D(-3), D("123456.78"))]:
        margin = margin_at_liquidation_price(qty, D(60000), target, BTC_TIERS)
        assert isolated_liquidation_price_with_margin(qty, D(60000), margin, BTC_TIERS) == target


async def _estimate_and_fill(
    held: Decimal, order: Decimal, price: Decimal, move: Decimal, leverage: Decimal
) -> tuple[Decimal, Decimal]:
    """(the pre-trade estimate, the venue's liquidation price after the fill) of selling
    ``order`` at ``price`` x ``move`` on a short of ``held`` opened at ``price``."""
    venue, feed = _venue(price, leverage)
    if held > ZERO:
        await venue.create_order(_sell(held, "held"))
    fill_at = (price * move).quantize(CENT)
    feed.set_price("BTC", fill_at)
    observation = _observed((await venue.fetch_positions([PERP])).get(PERP), fill_at)
    limits = RiskLimits(
        max_data_age_s=D(60),
        max_leverage=D(20),
        pair_leverage=leverage,
        kill_switch=False,
        max_order_notional=D(10**12),
        maintenance=BTC_TIERS,
    )
    estimate = liquidation_after(-order, fill_at, observation, limits)
    assert estimate is not None
    await venue.create_order(_sell(order, "grow"))
    after = (await venue.fetch_positions([PERP]))[PERP]
    assert after.liquidation_price is not None
    assert estimate[0] == after.qty
    return estimate[1], after.liquidation_price


@settings(max_examples=40, deadline=None)
@given(
    held=st.one_of(st.just(ZERO), quantities),
    order=quantities,
    price=prices,
    move=st.decimals(D("0.9"), D("1.1"), places=3),
    leverage=leverages,
)
def test_the_pre_trade_estimate_is_the_venues_liquidation_price_after_the_fill(
    held: Decimal, order: Decimal, price: Decimal, move: Decimal, leverage: Decimal
) -> None:
    assume(_allowed((held + order) * price * move, leverage) and _allowed(held * price, leverage))
    estimate, venue = asyncio.run(_estimate_and_fill(held, order, price, move, leverage))
    # Equal up to the 28 digits Decimal divides to (the margin held is the one the
    # reported liquidation price implies).
    assert abs(estimate - venue) <= D("1e-18") * venue, (estimate, venue)
