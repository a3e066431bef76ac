"""The paper venue's coin-margined (inverse) contracts: coin margin, coin PnL and funding,
the inverse liquidation, and the books surviving a restart.

Fakes only: FakeClock, ManualFeed, InMemoryPaperAccountStore. Spread 2 bps (price 60000:
bid 59994, ask 60006, grid 0.1), taker fee 0.05 %, contracts of 100 USD.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bot.clock import FakeClock
from bot.config import PaperConfig
from bot.domain.inverse import coin_pnl
from bot.domain.models import OrderRequest, Side
from bot.domain.paper_account import (
    InMemoryPaperAccountStore,
    PaperAccountState,
    state_from_json,
    state_to_json,
)
from bot.exchange.feeds import ManualFeed
from bot.exchange.gateway import OrderRejectedError
from bot.exchange.paper import PaperVenue

D = Decimal
T0 = datetime(2026, 1, 1, tzinfo=UTC)
BTCUSD = "BTC/USD:BTC"
FEE = D("0.0005")


async def _venue(
    coins: str = "1", store: InMemoryPaperAccountStore | None = None, leverage: str = "1"
) -> tuple[PaperVenue, ManualFeed, FakeClock]:
    config = PaperConfig.model_validate(
        {
            "balances": {"USDT": D(0)},
            "coin_margin_balances": {"BTC": D(coins)},
            "spread_bps": D(2),
            "taker_fee_rate": FEE,
            "maintenance_margin_rate": D("0.005"),
        }
    )
    feed = ManualFeed({"BTC": D(60000)})
    clock = FakeClock(T0)
    venue = await PaperVenue.open(
        config,
        feed,
        clock,
        store or InMemoryPaperAccountStore(),
        account="inv",
        leverage={BTCUSD: D(leverage)},
    )
    return venue, feed, clock


def _order(side: Side, contracts: int, cid: str, reduce_only: bool = False) -> OrderRequest:
    return OrderRequest(BTCUSD, side, D(contracts), cid, reduce_only=reduce_only)


@pytest.mark.asyncio
async def test_an_inverse_market_counts_contracts_of_100_usd() -> None:
    venue, _, _ = await _venue()
    market = (await venue.load_markets([BTCUSD]))[BTCUSD]
    assert market.inverse
    assert market.contract_size == D(100)
    assert market.amount_step == D(1)


@pytest.mark.asyncio
async def test_a_short_locks_coins_as_margin_and_pays_its_fee_in_coin() -> None:
    venue, _, _ = await _venue(coins="1.01")
    result = await venue.create_order(_order(Side.SELL, 599, "s1"))
    assert result.average_price == D(59994)
    fee = D(59900) / D(59994) * FEE
    assert result.fee == fee
    assert result.fee_asset == "BTC"
    wallet = (await venue.fetch_margin_balances())["BTC"]
    margin = D(59900) / D(59994)
    assert wallet.total == D("1.01") - fee
    assert wallet.free == wallet.total - margin
    position = (await venue.fetch_positions([BTCUSD]))[BTCUSD]
    assert position.qty == D(-59900)  # the signed face value in USD
    assert position.margin == margin
    assert position.liquidation_price is None  # a 1x short: no price liquidates it
    assert venue.state.balances["USDT"] == D(0)  # the spot wallet is not touched


@pytest.mark.asyncio
async def test_a_short_without_coins_in_the_coin_margin_wallet_is_rejected() -> None:
    venue, _, _ = await _venue(coins="0.5")
    with pytest.raises(OrderRejectedError, match="insufficient BTC in the coin-margin wallet"):
        await venue.create_order(_order(Side.SELL, 600, "s1"))
    assert venue.state.inverse_positions == {}


@pytest.mark.asyncio
async def test_the_short_pnl_is_in_coin_and_the_wallet_keeps_its_usd_value() -> None:
    venue, feed, _ = await _venue(coins="1.01")
    await venue.create_order(_order(Side.SELL, 599, "s1"))
    for price in (D(120000), D(30000)):
        feed.set_price("BTC", price)
        wallet = (await venue.fetch_margin_balances())["BTC"]
        position = (await venue.fetch_positions([BTCUSD]))[BTCUSD]
        assert position.unrealized_pnl == coin_pnl(D(-59900), D(59994), price)
        assert wallet.equity == wallet.total + position.unrealized_pnl
        # The hedged part (59,900 USD of face) keeps its USD value; the rest floats.
        unhedged = wallet.total - D(59900) / D(59994)
        kept = wallet.equity * price - unhedged * price
        assert abs(kept - D(59900)) < D("1e-18")


@pytest.mark.asyncio
async def test_buying_back_realizes_the_coin_pnl_and_frees_the_margin() -> None:
    venue, feed, _ = await _venue(coins="1.01")
    await venue.create_order(_order(Side.SELL, 600, "s1"))
    feed.set_price("BTC", D(120000))
    await venue.create_order(_order(Side.BUY, 600, "b1", reduce_only=True))
    assert venue.state.inverse_positions == {}
    sold_fee = D(60000) / D(59994) * FEE
    bought_fee = D(60000) / D(120012) * FEE
    realized = coin_pnl(D(-60000), D(59994), D(120012))
    wallet = (await venue.fetch_margin_balances())["BTC"]
    assert abs(wallet.total - (D("1.01") - sold_fee - bought_fee + realized)) < D("1e-25")
    assert wallet.free == wallet.total


@pytest.mark.asyncio
async def test_a_reduce_only_buy_past_the_short_is_rejected() -> None:
    venue, _, _ = await _venue(coins="1.01")
    await venue.create_order(_order(Side.SELL, 100, "s1"))
    with pytest.raises(OrderRejectedError, match="would flip the position"):
        await venue.create_order(_order(Side.BUY, 101, "b1", reduce_only=True))


@pytest.mark.asyncio
async def test_adding_to_a_short_averages_the_entry_harmonically() -> None:
    venue, feed, _ = await _venue(coins="3")
    await venue.create_order(_order(Side.SELL, 600, "s1"))
    feed.set_price("BTC", D(30000))
    await venue.create_order(_order(Side.SELL, 300, "s2"))
    position = venue.state.inverse_positions[BTCUSD]
    assert position.qty == D(-90000)
    assert position.entry_price == D(90000) / (D(60000) / D(59994) + D(30000) / D(29997))


@pytest.mark.asyncio
async def test_funding_is_paid_in_coin_at_the_funding_time() -> None:
    venue, feed, clock = await _venue(coins="1.01")
    await venue.create_order(_order(Side.SELL, 600, "s1"))
    total = (await venue.fetch_margin_balances())["BTC"].total
    feed.set_funding_rate("BTC", D("0.0001"))
    clock.advance(8 * 3600)
    payments = await venue.fetch_funding_payments([BTCUSD])
    assert [(p.amount, p.asset) for p in payments] == [(D(60000) / D(60000) * D("0.0001"), "BTC")]
    assert (await venue.fetch_margin_balances())["BTC"].total == total + D("0.0001")


@pytest.mark.asyncio
async def test_a_leveraged_short_is_liquidated_at_the_coin_m_price() -> None:
    venue, feed, _ = await _venue(coins="1", leverage="2")
    await venue.create_order(_order(Side.SELL, 600, "s1"))
    position = (await venue.fetch_positions([BTCUSD]))[BTCUSD]
    margin = D(60000) / D(59994) / 2
    expected = D(60000) * (D("0.005") - 1) / (margin - D(60000) / D(59994))
    assert position.liquidation_price == expected
    total = (await venue.fetch_margin_balances())["BTC"].total
    feed.set_price("BTC", expected + 1)
    assert await venue.fetch_positions([BTCUSD]) == {}
    assert (await venue.fetch_margin_balances())["BTC"].total == total - margin
    (liquidation,) = venue.liquidations()
    assert liquidation.filled == D(600)  # contracts
    assert liquidation.average_price == expected


@pytest.mark.asyncio
async def test_the_inverse_books_survive_a_restart() -> None:
    store = InMemoryPaperAccountStore()
    venue, _, _ = await _venue(coins="1.01", store=store)
    await venue.create_order(_order(Side.SELL, 600, "s1"))
    before = venue.state
    again_state = state_from_json(state_to_json(before))
    assert again_state.coin_margin == before.coin_margin
    assert again_state.inverse_positions == before.inverse_positions
    again, _, _ = await _venue(coins="9", store=store)
    assert again.state.coin_margin == before.coin_margin
    assert again.state.inverse_positions == before.inverse_positions


def test_an_account_saved_before_inverse_books_loads_empty_ones() -> None:
    raw = state_to_json(PaperAccountState())
    old = raw.replace('"coin_margin": {}, ', "").replace('"inverse_positions": {}, ', "")
    assert "coin_margin" not in old
    loaded = state_from_json(old)
    assert loaded.coin_margin == {}
    assert loaded.inverse_positions == {}
