"""One suite, every venue: the paper venue and the ccxt adapter on the Binance, Bybit and
OKX emulators (each through its venue module, in testnet mode) must behave the same
wherever the daemon relies on them. Client ids are letters and digits, as the daemon's
are (OKX takes nothing else)."""

from __future__ import annotations

import decimal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import pytest_asyncio

from bot.clock import FakeClock, SystemClock
from bot.config import AccountConfig, PaperConfig
from bot.domain.margin_transfers import MarginChange
from bot.domain.models import OrderRequest, OrderStatus, Side
from bot.domain.paper_account import InMemoryPaperAccountStore
from bot.exchange.ccxt_gateway import CcxtGateway
from bot.exchange.feeds import ManualFeed
from bot.exchange.gateway import (
    DuplicateOrderError,
    ExchangeGateway,
    FatalError,
    OrderRejectedError,
)
from bot.exchange.paper import PaperVenue
from tests.support.venue_harness import HARNESSES, open_harness

D = Decimal
PERP = "BTC/USDT:USDT"
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


@dataclass
class Venue:
    gateway: ExchangeGateway
    set_price: Callable[[Decimal], None]


@pytest_asyncio.fixture(params=["paper", *HARNESSES])
async def venue(request: pytest.FixtureRequest) -> AsyncIterator[Venue]:
    if request.param == "paper":
        feed = ManualFeed({"BTC": D(60000)})
        config = PaperConfig(balances={"BTC": D(1), "USDT": D(100000)})
        paper = await PaperVenue.open(config, feed, FakeClock(), InMemoryPaperAccountStore())
        yield Venue(paper, lambda price: feed.set_price("BTC", price))
        await paper.close()
        return
    harness = await open_harness(request.param)
    harness.fund()
    account = AccountConfig(**harness.account())
    gateway = CcxtGateway.from_config("main", account, "testnet", SystemClock())
    try:
        yield Venue(gateway, harness.set_price)
    finally:
        await gateway.close()
        await harness.close()


def sell(amount: str, coid: str, **extra: object) -> OrderRequest:
    return OrderRequest(
        symbol=PERP, side=Side.SELL, amount=D(amount), client_order_id=coid, **extra
    )  # type: ignore[arg-type]


async def prepared(venue: Venue) -> ExchangeGateway:
    gateway = venue.gateway
    await gateway.load_markets([PERP])
    await gateway.set_margin_mode(PERP, "isolated")
    await gateway.set_leverage(PERP, D(2))
    return gateway


async def test_venue_implements_the_gateway_protocol(venue: Venue) -> None:
    assert isinstance(venue.gateway, ExchangeGateway)


async def test_markets_carry_steps_and_limits_for_the_perp(venue: Venue) -> None:
    markets = await venue.gateway.load_markets([PERP])
    market = markets[PERP]
    assert market.is_perp
    assert market.amount_step > 0
    assert market.price_step > 0
    assert market.contract_size == 1


async def test_ticker_bid_below_ask_with_an_aware_timestamp(venue: Venue) -> None:
    gateway = await prepared(venue)
    ticker = (await gateway.fetch_tickers([PERP]))[PERP]
    assert ticker.bid < ticker.ask
    assert ticker.timestamp.tzinfo is not None


async def test_order_book_sides_are_sorted_best_first(venue: Venue) -> None:
    gateway = await prepared(venue)
    book = await gateway.fetch_order_book(PERP, 5)
    assert book.bids[0].price < book.asks[0].price
    assert [b.price for b in book.bids] == sorted((b.price for b in book.bids), reverse=True)
    assert [a.price for a in book.asks] == sorted(a.price for a in book.asks)


async def test_balances_show_the_spot_coin_and_the_margin_asset(venue: Venue) -> None:
    gateway = await prepared(venue)
    assert (await gateway.fetch_balances())["BTC"].total == D(1)
    assert (await gateway.fetch_margin_balances())["USDT"].total > 0


async def test_margin_wallet_total_leaves_out_the_unrealized_pnl_its_equity_counts_it_once(
    venue: Venue,
) -> None:
    gateway = await prepared(venue)
    await gateway.create_order(sell("0.5", "cequity"))
    before = (await gateway.fetch_margin_balances())["USDT"]
    venue.set_price(D(63000))  # the 0.5 BTC short loses about 1,500
    unrealized = (await gateway.fetch_positions([PERP]))[PERP].unrealized_pnl
    after = (await gateway.fetch_margin_balances())["USDT"]
    assert unrealized < D(-1400)
    assert after.total == before.total
    assert after.equity == after.total + unrealized


async def test_funding_rate_is_reported_for_the_perp(venue: Venue) -> None:
    gateway = await prepared(venue)
    rates = await gateway.fetch_funding_rates([PERP])
    assert PERP in rates


async def test_market_sell_fills_completely_with_fee_and_opens_a_short(venue: Venue) -> None:
    gateway = await prepared(venue)
    ticker = (await gateway.fetch_tickers([PERP]))[PERP]
    result = await gateway.create_order(sell("0.5", "cfill"))
    assert result.status is OrderStatus.FILLED
    assert result.filled == D("0.5")
    assert result.average_price == ticker.bid
    assert result.fee > 0
    assert sum(f.amount for f in result.fills) == D("0.5")
    position = (await gateway.fetch_positions([PERP]))[PERP]
    assert position.qty == D("-0.5")
    assert position.liquidation_price is not None
    assert position.liquidation_price > position.entry_price


async def test_order_is_found_by_client_id_and_unknown_ids_are_none(venue: Venue) -> None:
    gateway = await prepared(venue)
    sent = await gateway.create_order(sell("0.2", "cfind"))
    found = await gateway.fetch_order(PERP, "cfind")
    assert found is not None
    assert (found.status, found.filled, found.average_price) == (
        sent.status,
        sent.filled,
        sent.average_price,
    )
    assert await gateway.fetch_order(PERP, "cneversent") is None


async def test_a_client_id_cannot_be_used_twice(venue: Venue) -> None:
    gateway = await prepared(venue)
    await gateway.create_order(sell("0.1", "cdup"))
    with pytest.raises(DuplicateOrderError):
        await gateway.create_order(sell("0.1", "cdup"))
    assert (await gateway.fetch_positions([PERP]))[PERP].qty == D("-0.1")


async def test_reduce_only_cannot_open_or_grow_a_position(venue: Venue) -> None:
    gateway = await prepared(venue)
    with pytest.raises(OrderRejectedError):
        await gateway.create_order(sell("0.1", "cro", reduce_only=True))
    assert PERP not in await gateway.fetch_positions([PERP])


async def test_amount_off_the_step_is_refused_and_not_sent(venue: Venue) -> None:
    gateway = await prepared(venue)
    step = (await gateway.load_markets([PERP]))[PERP].amount_step
    with pytest.raises(OrderRejectedError):
        await gateway.create_order(sell(str(step / 2), "cstep"))
    assert await gateway.fetch_order(PERP, "cstep") is None


async def test_ioc_limit_beyond_the_touch_fills_nothing(venue: Venue) -> None:
    gateway = await prepared(venue)
    ticker = (await gateway.fetch_tickers([PERP]))[PERP]
    far = ticker.ask + 1000
    result = await gateway.create_order(sell("0.1", "cioc", order_type="limit", price=far))
    assert result.status is OrderStatus.CANCELED
    assert result.filled == 0
    assert PERP not in await gateway.fetch_positions([PERP])


async def test_position_is_marked_to_the_new_price(venue: Venue) -> None:
    gateway = await prepared(venue)
    await gateway.create_order(sell("0.5", "cmark"))
    venue.set_price(D(54000))
    position = (await gateway.fetch_positions([PERP]))[PERP]
    assert position.mark_price == D(54000)
    assert position.unrealized_pnl > D(2900)  # 0.5 short gains about 3000 on a 6000 fall


async def test_ohlcv_candles_are_decimal_aligned_ordered_and_end_at_the_current_price(
    venue: Venue,
) -> None:
    gateway = await prepared(venue)
    venue.set_price(D(60000))
    await gateway.fetch_ohlcv(PERP, "1m", limit=5)
    venue.set_price(D(61000))
    candles = await gateway.fetch_ohlcv(PERP, "1m", limit=5)
    assert 1 <= len(candles) <= 5
    opened = [c.opened_at for c in candles]
    assert opened == sorted(set(opened))
    for candle in candles:
        assert candle.opened_at.tzinfo is not None
        assert candle.opened_at.second == 0
        assert candle.opened_at.microsecond == 0
        assert isinstance(candle.close, Decimal)
        assert candle.low <= min(candle.open, candle.close)
        assert candle.high >= max(candle.open, candle.close)
    assert candles[-1].close == D(61000)  # the forming candle: the last price so far
    assert candles[-1].high >= D(61000)


async def test_ohlcv_since_starts_at_the_bar_holding_since(venue: Venue) -> None:
    gateway = await prepared(venue)
    venue.set_price(D(60000))
    now = (await gateway.fetch_tickers([PERP]))[PERP].timestamp
    since = now - timedelta(minutes=3)
    candles = await gateway.fetch_ohlcv(PERP, "1m", since=since, limit=10)
    assert candles
    assert all(c.opened_at >= since.replace(second=0, microsecond=0) for c in candles)
    assert candles[-1].opened_at <= now


async def test_added_margin_moves_the_short_liquidation_price_up_and_leaves_less_free(
    venue: Venue,
) -> None:
    gateway = await prepared(venue)
    await gateway.create_order(sell("0.5", "cmargin"))
    before = (await gateway.fetch_positions([PERP]))[PERP]
    free_before = (await gateway.fetch_margin_balances())["USDT"].free
    await gateway.add_margin(PERP, D(3000))
    after = (await gateway.fetch_positions([PERP]))[PERP]
    assert before.liquidation_price is not None
    assert after.liquidation_price is not None
    # 3000 USDT on a 0.5 BTC short moves its liquidation price about 6000 up.
    moved = after.liquidation_price - before.liquidation_price
    assert D(5900) <= moved <= D(6000)
    assert (await gateway.fetch_margin_balances())["USDT"].free == free_before - D(3000)


async def test_adding_margin_without_a_position_is_rejected(venue: Venue) -> None:
    gateway = await prepared(venue)
    with pytest.raises(OrderRejectedError):
        await gateway.add_margin(PERP, D(100))
    if gateway.has_margin_history:
        assert await gateway.fetch_margin_history(PERP, LONG_AGO) == []


async def test_a_venue_without_margin_history_says_so_in_one_line(venue: Venue) -> None:
    # Bybit: ccxt reads no margin history, so a lost transfer's answer could not be looked
    # up; the daemon refuses on_liquidation_risk = "add_margin" there at start.
    gateway = await prepared(venue)
    if gateway.has_margin_history:
        assert isinstance(await gateway.fetch_margin_history(PERP, LONG_AGO), list)
        return
    with pytest.raises(FatalError) as raised:
        await gateway.fetch_margin_history(PERP, LONG_AGO)
    assert "\n" not in str(raised.value)
    assert "cannot be looked up" in str(raised.value)


async def test_added_margin_is_listed_in_the_margin_history_once_with_its_exact_amount(
    venue: Venue,
) -> None:
    gateway = await prepared(venue)
    if not gateway.has_margin_history:  # proven by the test above
        return
    await gateway.create_order(sell("0.5", "chistory"))
    assert await gateway.fetch_margin_history(PERP, LONG_AGO) == []
    await gateway.add_margin(PERP, D("1234.56"))
    [change] = await gateway.fetch_margin_history(PERP, LONG_AGO)
    assert change == MarginChange(PERP, D("1234.56"), "USDT", True, change.at)
    assert change.at.tzinfo is not None
    # ``since`` is the first instant listed: the change itself, and nothing after it.
    assert await gateway.fetch_margin_history(PERP, change.at) == [change]
    assert await gateway.fetch_margin_history(PERP, change.at + timedelta(milliseconds=1)) == []


async def test_market_stats_report_open_interest_and_24h_volume_in_quote(venue: Venue) -> None:
    gateway = await prepared(venue)
    stats = await gateway.fetch_market_stats(PERP)
    assert stats.symbol == PERP
    assert stats.open_interest_value is not None
    assert stats.open_interest_value > 0
    assert stats.quote_volume_24h is not None
    assert stats.quote_volume_24h >= 0
    assert stats.timestamp.tzinfo is not None


async def test_orders_and_lookups_leave_the_decimal_context_as_they_found_it(
    venue: Venue,
) -> None:
    # ccxt sets ROUND_HALF_UP and the Underflow trap on the context it finds.
    gateway = await prepared(venue)
    before = decimal.getcontext().copy()
    await gateway.create_order(sell("0.5", "ccontext"))
    await gateway.fetch_order(PERP, "ccontext")
    await gateway.fetch_positions([PERP])
    after = decimal.getcontext()
    assert after.rounding == before.rounding
    assert after.traps == before.traps
    assert after.prec == before.prec


SPOT = "BTC/USDT"


async def test_a_spot_ioc_sell_fills_from_the_spot_wallet_and_is_found_by_client_id(
    venue: Venue,
) -> None:
    # The bearish sell-down's order: a limit IOC sell on the spot market.
    gateway = venue.gateway
    market = (await gateway.load_markets([PERP, SPOT]))[SPOT]
    assert not market.is_perp
    ticker = (await gateway.fetch_tickers([SPOT]))[SPOT]
    request = OrderRequest(
        symbol=SPOT,
        side=Side.SELL,
        amount=D("0.4"),
        client_order_id="cspot",
        order_type="limit",
        price=ticker.bid - 100,
    )
    result = await gateway.create_order(request)
    assert result.status is OrderStatus.FILLED
    assert result.filled == D("0.4")
    assert (await gateway.fetch_balances())["BTC"].total == D("0.6")
    found = await gateway.fetch_order(SPOT, "cspot")
    assert found is not None
    assert (found.status, found.filled) == (OrderStatus.FILLED, D("0.4"))
    assert await gateway.fetch_order(SPOT, "cspotneversent") is None
    assert PERP not in await gateway.fetch_positions([PERP])
