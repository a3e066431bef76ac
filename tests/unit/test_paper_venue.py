"""The paper venue: fills, fees, positions, funding, liquidation, persistence.

Fakes only: FakeClock, ManualFeed (or a seeded SimFeed) and InMemoryPaperAccountStore.
Defaults below: spread 2 bps (price 60000 -> bid 59994, ask 60006), taker fee 0.05 %.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bot.clock import FakeClock
from bot.config import PaperConfig, PaperMarketConfig, SimFeedConfig
from bot.domain.models import OrderRequest, OrderStatus, Side
from bot.domain.paper_account import InMemoryPaperAccountStore
from bot.exchange.feeds import ManualFeed, SimFeed
from bot.exchange.gateway import ExchangeGateway, FatalError, OrderRejectedError
from bot.exchange.paper import PaperVenue, funding_times, ledger, next_funding_time

D = Decimal
T0 = datetime(2026, 1, 1, tzinfo=UTC)  # a funding boundary (00:00 UTC)
BTC_PERP = "BTC/USDT:USDT"
BTC_SPOT = "BTC/USDT"
ETH_PERP = "ETH/USDT:USDT"
ETH_SPOT = "ETH/USDT"
FEE_RATE = D("0.0005")


@dataclass
class Rig:
    venue: PaperVenue
    feed: ManualFeed
    clock: FakeClock
    store: InMemoryPaperAccountStore
    config: PaperConfig


def _config(balances: Mapping[str, Decimal] | None = None, **overrides: object) -> PaperConfig:
    values: dict[str, object] = {
        "balances": dict(balances or {"USDT": D(200_000)}),
        "spread_bps": D(2),
        "taker_fee_rate": FEE_RATE,
        "maintenance_margin_rate": D("0.005"),
    }
    values.update(overrides)
    return PaperConfig.model_validate(values)


async def _rig(
    balances: Mapping[str, Decimal] | None = None,
    *,
    start: datetime = T0,
    store: InMemoryPaperAccountStore | None = None,
    **overrides: object,
) -> Rig:
    config = _config(balances, **overrides)
    feed = ManualFeed({"BTC": D(60000), "ETH": D(3000)})
    clock = FakeClock(start)
    store = store or InMemoryPaperAccountStore()
    venue = await PaperVenue.open(config, feed, clock, store, account="test")
    return Rig(venue=venue, feed=feed, clock=clock, store=store, config=config)


def _order(
    symbol: str, side: Side, amount: str, cid: str, *, reduce_only: bool = False
) -> OrderRequest:
    return OrderRequest(
        symbol=symbol, side=side, amount=D(amount), client_order_id=cid, reduce_only=reduce_only
    )


# -- gateway surface ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_paper_venue_is_an_exchange_gateway() -> None:
    rig = await _rig()
    assert isinstance(rig.venue, ExchangeGateway)
    assert rig.venue.name == "paper"


@pytest.mark.asyncio
async def test_markets_come_from_config_or_default_and_perps_have_a_colon() -> None:
    rig = await _rig(markets={BTC_PERP: PaperMarketConfig(amount_step=D("0.0001"))})
    markets = await rig.venue.load_markets([BTC_PERP, ETH_SPOT])
    assert markets[BTC_PERP].is_perp
    assert (markets[BTC_PERP].base, markets[BTC_PERP].quote) == ("BTC", "USDT")
    assert markets[BTC_PERP].amount_step == D("0.0001")
    assert not markets[ETH_SPOT].is_perp
    assert markets[ETH_SPOT].amount_step == rig.config.default_market.amount_step


@pytest.mark.asyncio
async def test_malformed_symbol_is_fatal() -> None:
    rig = await _rig()
    with pytest.raises(FatalError, match="unknown symbol 'BTCUSDT'"):
        await rig.venue.load_markets(["BTCUSDT"])


@pytest.mark.asyncio
async def test_ticker_is_feed_price_minus_and_plus_half_spread_on_the_price_step() -> None:
    rig = await _rig()
    rig.feed.set_price("BTC", D("60000.123"))
    ticker = (await rig.venue.fetch_tickers([BTC_PERP]))[BTC_PERP]
    # half spread = 6.0000123: bid rounded down, ask rounded up to 0.01
    assert (ticker.bid, ticker.ask) == (D("59994.12"), D("60006.13"))
    assert ticker.last == D("60000.12")
    assert ticker.timestamp == T0


@pytest.mark.asyncio
async def test_funding_rate_names_the_next_8_hour_boundary() -> None:
    rig = await _rig(start=T0 + timedelta(hours=9))
    rig.feed.set_funding_rate("BTC", D("0.0001"))
    rates = await rig.venue.fetch_funding_rates([BTC_PERP, BTC_SPOT])
    assert list(rates) == [BTC_PERP]
    assert rates[BTC_PERP].rate == D("0.0001")
    assert rates[BTC_PERP].next_funding_at == T0 + timedelta(hours=16)


def test_funding_boundaries_are_on_the_utc_clock() -> None:
    assert next_funding_time(T0, 8) == T0 + timedelta(hours=8)
    assert next_funding_time(T0 + timedelta(hours=23), 8) == T0 + timedelta(days=1)
    # 5 hours does not divide 24: the schedule restarts at midnight
    assert next_funding_time(T0 + timedelta(hours=21), 5) == T0 + timedelta(days=1)
    assert list(funding_times(T0, T0 + timedelta(hours=16), 8)) == [
        T0 + timedelta(hours=8),
        T0 + timedelta(hours=16),
    ]


# -- fills and fees -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_spot_buy_fills_at_ask_and_sell_at_bid_with_taker_fee() -> None:
    rig = await _rig({"USDT": D(10_000), "ETH": D(0)})
    buy = await rig.venue.create_order(_order(ETH_SPOT, Side.BUY, "1", "b1"))
    assert buy.status is OrderStatus.FILLED
    assert buy.average_price == D("3000.30")
    assert buy.fee == D("3000.30") * FEE_RATE
    assert buy.fee_asset == "USDT"
    assert buy.filled == D(1)
    assert len(buy.fills) == 1
    assert buy.fills[0].price == D("3000.30")

    sell = await rig.venue.create_order(_order(ETH_SPOT, Side.SELL, "1", "s1"))
    assert sell.average_price == D("2999.70")
    assert sell.fee == D("2999.70") * FEE_RATE

    balances = await rig.venue.fetch_balances()
    assert balances["ETH"].total == D(0)
    expected = D(10_000) - D("3000.30") - buy.fee + D("2999.70") - sell.fee
    assert balances["USDT"].total == balances["USDT"].free == expected
    assert rig.venue.state.fees_paid == buy.fee + sell.fee


@pytest.mark.asyncio
async def test_trade_ids_count_up_and_fetch_order_finds_the_order_by_client_id() -> None:
    rig = await _rig()
    first = await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "0.1", "a"))
    second = await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "0.1", "b"))
    assert (first.fills[0].trade_id, second.fills[0].trade_id) == ("1", "2")
    assert await rig.venue.fetch_order(BTC_PERP, "a") == first
    assert await rig.venue.fetch_order(BTC_PERP, "missing") is None
    assert await rig.venue.fetch_order(ETH_PERP, "a") is None


@pytest.mark.asyncio
async def test_short_perp_locks_margin_and_reduces_free_balance() -> None:
    rig = await _rig({"USDT": D(100_000)})
    result = await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "1", "s"))
    assert result.average_price == D(59994)
    positions = await rig.venue.fetch_positions([BTC_PERP])
    position = positions[BTC_PERP]
    assert position.qty == D(-1)
    assert position.entry_price == D(59994)
    assert position.mark_price == D(60000)
    assert position.unrealized_pnl == D(-6)
    assert position.leverage == D(1)
    assert position.margin == D(59994)
    usdt = (await rig.venue.fetch_balances())["USDT"]
    assert usdt.total == D(100_000) - result.fee
    assert usdt.free == usdt.total - D(59994)


@pytest.mark.asyncio
async def test_increasing_a_position_averages_the_entry_price() -> None:
    rig = await _rig()
    await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "1", "s1"))  # bid 59994
    rig.feed.set_price("BTC", D(62000))
    await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "1", "s2"))  # bid 61993.80
    position = (await rig.venue.fetch_positions([BTC_PERP]))[BTC_PERP]
    assert position.qty == D(-2)
    assert position.entry_price == (D(59994) + D("61993.80")) / 2
    assert position.margin == D(59994) + D("61993.80")


@pytest.mark.asyncio
async def test_reducing_realizes_pnl_and_releases_margin_pro_rata() -> None:
    rig = await _rig({"USDT": D(100_000)})
    await rig.venue.set_leverage(BTC_PERP, D(2))
    opened = await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "2", "s"))  # 2 @ 59994
    rig.feed.set_price("BTC", D(50000))
    closed = await rig.venue.create_order(
        _order(BTC_PERP, Side.BUY, "1", "b", reduce_only=True)
    )  # 1 @ ask 50005
    realized = D(59994) - D(50005)
    position = (await rig.venue.fetch_positions([BTC_PERP]))[BTC_PERP]
    assert position.qty == D(-1)
    assert position.entry_price == D(59994)
    assert position.margin == D(59994) / 2  # half of 2 * 59994 / 2
    assert rig.venue.state.realized_pnl == realized
    usdt = (await rig.venue.fetch_balances())["USDT"]
    assert usdt.total == D(100_000) - opened.fee - closed.fee + realized


@pytest.mark.asyncio
async def test_closing_the_whole_position_leaves_it_absent_and_margin_free() -> None:
    rig = await _rig({"USDT": D(100_000)})
    await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "1", "s"))
    await rig.venue.create_order(_order(BTC_PERP, Side.BUY, "1", "b", reduce_only=True))
    assert await rig.venue.fetch_positions([BTC_PERP]) == {}
    usdt = (await rig.venue.fetch_balances())["USDT"]
    assert usdt.free == usdt.total
    assert rig.venue.state.realized_pnl == D(59994) - D(60006)


@pytest.mark.asyncio
async def test_order_without_reduce_only_can_flip_the_position() -> None:
    rig = await _rig()
    await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "1", "s"))
    await rig.venue.create_order(_order(BTC_PERP, Side.BUY, "3", "b"))
    position = (await rig.venue.fetch_positions([BTC_PERP]))[BTC_PERP]
    assert position.qty == D(2)
    assert position.entry_price == D(60006)
    assert position.margin == 2 * D(60006)


# -- rejections ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_reduce_only_cannot_flip_increase_or_open_a_position() -> None:
    rig = await _rig()
    with pytest.raises(OrderRejectedError, match="no open position to reduce"):
        await rig.venue.create_order(_order(BTC_PERP, Side.BUY, "1", "r0", reduce_only=True))
    await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "1", "s"))
    with pytest.raises(OrderRejectedError, match="would flip the position -1"):
        await rig.venue.create_order(_order(BTC_PERP, Side.BUY, "1.5", "r1", reduce_only=True))
    with pytest.raises(OrderRejectedError, match="would increase the position -1"):
        await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "0.5", "r2", reduce_only=True))
    position = (await rig.venue.fetch_positions([BTC_PERP]))[BTC_PERP]
    assert position.qty == D(-1)
    assert await rig.venue.fetch_order(BTC_PERP, "r1") is None


@pytest.mark.asyncio
async def test_duplicate_client_order_id_is_rejected_and_the_first_order_kept() -> None:
    rig = await _rig()
    first = await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "0.1", "same"))
    with pytest.raises(OrderRejectedError, match="duplicate client order id 'same'"):
        await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "0.2", "same"))
    assert await rig.venue.fetch_order(BTC_PERP, "same") == first
    assert (await rig.venue.fetch_positions([BTC_PERP]))[BTC_PERP].qty == D("-0.1")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        ("0.0015", "not a multiple of the amount step 0.001"),
        ("0.001", "below the min amount 0.01"),
        ("0.02", "below the min notional 100"),  # 0.02 * 3000 = 60
        ("0", "must be positive"),
    ],
)
async def test_amount_off_step_below_min_amount_or_min_notional_is_rejected(
    amount: str, reason: str
) -> None:
    rules = PaperMarketConfig(amount_step=D("0.001"), min_amount=D("0.01"), min_notional=D(100))
    rig = await _rig(markets={ETH_PERP: rules})
    with pytest.raises(OrderRejectedError, match=reason):
        await rig.venue.create_order(_order(ETH_PERP, Side.SELL, amount, "x"))


@pytest.mark.asyncio
async def test_perp_order_without_quote_for_fee_and_margin_is_rejected() -> None:
    rig = await _rig({"USDT": D(60_030)})
    # 1 BTC short at 1x needs 59994 margin + 29.997 fee: 60030 is enough, 2 BTC is not.
    with pytest.raises(OrderRejectedError, match="insufficient USDT"):
        await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "2", "too-big"))
    await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "1", "fits"))
    with pytest.raises(OrderRejectedError, match="insufficient USDT"):
        await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "0.01", "no-more"))


@pytest.mark.asyncio
async def test_spot_orders_beyond_the_balances_are_rejected() -> None:
    rig = await _rig({"USDT": D(1000), "ETH": D(1)})
    with pytest.raises(OrderRejectedError, match="insufficient USDT"):
        await rig.venue.create_order(_order(ETH_SPOT, Side.BUY, "1", "b"))
    with pytest.raises(OrderRejectedError, match="insufficient ETH"):
        await rig.venue.create_order(_order(ETH_SPOT, Side.SELL, "2", "s"))
    with pytest.raises(OrderRejectedError, match="perp orders only"):
        await rig.venue.create_order(_order(ETH_SPOT, Side.SELL, "1", "r", reduce_only=True))


@pytest.mark.asyncio
async def test_ioc_limit_beyond_the_touch_expires_unfilled_and_within_it_fills_at_the_touch() -> (
    None
):
    rig = await _rig()

    def limit(cid: str, price: str) -> OrderRequest:
        return OrderRequest(
            symbol=BTC_PERP,
            side=Side.SELL,
            amount=D(1),
            client_order_id=cid,
            order_type="limit",
            price=D(price),
        )

    expired = await rig.venue.create_order(limit("far", "61000"))
    assert expired.status is OrderStatus.CANCELED
    assert expired.filled == 0
    assert BTC_PERP not in await rig.venue.fetch_positions([BTC_PERP])
    filled = await rig.venue.create_order(limit("near", "59000"))
    assert filled.status is OrderStatus.FILLED
    bid = (await rig.venue.fetch_tickers([BTC_PERP]))[BTC_PERP].bid
    assert filled.average_price == bid


# -- funding ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_short_receives_funding_at_each_8_hour_boundary() -> None:
    rig = await _rig({"USDT": D(100_000)})
    rig.feed.set_funding_rate("BTC", D("0.0001"))
    opened = await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "1", "s"))
    rig.clock.advance(8 * 3600 - 1)  # 07:59:59
    assert await rig.venue.fetch_funding_payments([BTC_PERP]) == []
    rig.clock.advance(1)  # 08:00:00
    payments = await rig.venue.fetch_funding_payments([BTC_PERP])
    assert [(p.amount, p.timestamp) for p in payments] == [
        (D(6), T0 + timedelta(hours=8))  # -(-1) * 60000 * 0.0001
    ]
    assert payments[0].asset == "USDT"
    assert payments[0].position_qty == D(-1)
    assert payments[0].mark_price == D(60000)
    # handed out again until committed (stored), then no more
    assert await rig.venue.fetch_funding_payments([BTC_PERP]) == payments
    await rig.venue.commit_funding()
    assert await rig.venue.fetch_funding_payments([BTC_PERP]) == []
    rig.clock.advance(16 * 3600)  # 16:00 and 00:00 next day
    later = await rig.venue.fetch_funding_payments([BTC_PERP])
    assert [p.timestamp for p in later] == [T0 + timedelta(hours=16), T0 + timedelta(days=1)]
    assert rig.venue.state.funding_total == D(18)
    usdt = (await rig.venue.fetch_balances())["USDT"]
    assert usdt.total == D(100_000) - opened.fee + D(18)


@pytest.mark.asyncio
async def test_short_pays_funding_when_the_rate_is_negative() -> None:
    rig = await _rig()
    rig.feed.set_funding_rate("BTC", D("-0.0002"))
    await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "0.5", "s"))
    rig.clock.advance(8 * 3600)
    payments = await rig.venue.fetch_funding_payments([BTC_PERP])
    assert [p.amount for p in payments] == [D(-6)]  # -(-0.5) * 60000 * -0.0002


@pytest.mark.asyncio
async def test_every_boundary_missed_while_stopped_is_settled_on_the_next_call() -> None:
    rig = await _rig()
    rig.feed.set_funding_rate("BTC", D("0.0001"))
    await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "1", "s"))
    rig.clock.advance(3 * 86400 + 60)
    payments = await rig.venue.fetch_funding_payments([BTC_PERP])
    assert len(payments) == 9
    assert rig.venue.state.last_funding_at == T0 + timedelta(days=3)


@pytest.mark.asyncio
async def test_new_account_is_not_back_paid_for_boundaries_before_it_started() -> None:
    start = T0 + timedelta(hours=10)
    rig = await _rig(start=start)
    assert rig.venue.state.last_funding_at == start
    rig.feed.set_funding_rate("BTC", D("0.0001"))
    await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "1", "s"))
    rig.clock.advance(6 * 3600 - 1)  # 15:59:59
    assert await rig.venue.fetch_funding_payments([BTC_PERP]) == []
    rig.clock.advance(1)
    payments = await rig.venue.fetch_funding_payments([BTC_PERP])
    assert [p.timestamp for p in payments] == [T0 + timedelta(hours=16)]


@pytest.mark.asyncio
async def test_funding_payments_of_other_symbols_stay_pending() -> None:
    rig = await _rig()
    rig.feed.set_funding_rate("BTC", D("0.0001"))
    rig.feed.set_funding_rate("ETH", D("0.0001"))
    await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "1", "b"))
    await rig.venue.create_order(_order(ETH_PERP, Side.SELL, "1", "e"))
    rig.clock.advance(8 * 3600)
    assert [p.symbol for p in await rig.venue.fetch_funding_payments([BTC_PERP])] == [BTC_PERP]
    assert [p.symbol for p in await rig.venue.fetch_funding_payments([ETH_PERP])] == [ETH_PERP]


# -- liquidation --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_position_reports_the_isolated_liquidation_price() -> None:
    rig = await _rig()
    await rig.venue.set_leverage(BTC_PERP, D(5))
    await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "1", "s"))
    position = (await rig.venue.fetch_positions([BTC_PERP]))[BTC_PERP]
    assert position.leverage == D(5)
    assert position.margin == D(59994) / 5
    # Binance's short: (margin + amount + qty x entry) / (qty x (1 + rate)), in BTCUSDT's
    # second tier (the notional at ~71700 is above 50000): rate 0.5 %, amount 50.
    assert position.liquidation_price == (D(59994) / 5 + 50 + D(59994)) / D("1.005")


@pytest.mark.asyncio
async def test_short_is_liquidated_when_the_mark_crosses_its_liquidation_price() -> None:
    rig = await _rig({"USDT": D(100_000)})
    await rig.venue.set_leverage(BTC_PERP, D(5))
    opened = await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "1", "s"))
    liquidation = (D(59994) / 5 + 50 + D(59994)) / D("1.005")  # 71684.378
    rig.feed.set_price("BTC", D("71684.37"))
    assert BTC_PERP in await rig.venue.fetch_positions([BTC_PERP])
    assert rig.venue.liquidations() == []

    rig.feed.set_price("BTC", D("71684.38"))
    assert await rig.venue.fetch_positions([BTC_PERP]) == {}
    margin = D(59994) / 5
    usdt = (await rig.venue.fetch_balances())["USDT"]
    assert usdt.total == usdt.free == D(100_000) - opened.fee - margin
    assert rig.venue.state.realized_pnl == -margin
    [record] = rig.venue.liquidations()
    assert record.side is Side.BUY
    assert record.average_price == liquidation
    assert record.reason is not None
    assert "liquidated: mark 71684.38 crossed liquidation price" in record.reason
    assert await rig.venue.fetch_order(BTC_PERP, record.client_order_id) == record


@pytest.mark.asyncio
async def test_long_is_liquidated_when_the_mark_falls_to_its_liquidation_price() -> None:
    rig = await _rig()
    await rig.venue.set_leverage(ETH_PERP, D(10))
    await rig.venue.create_order(_order(ETH_PERP, Side.BUY, "1", "l"))  # ask 3000.30
    rig.feed.set_price("ETH", D(2700))  # liquidation 3000.30 * 0.905 = 2715.27
    summary = await rig.venue.account_summary()
    assert summary.unrealized_pnl == 0
    assert len(rig.venue.liquidations()) == 1


@pytest.mark.asyncio
async def test_raising_leverage_releases_margin_and_lowering_it_needs_free_balance() -> None:
    rig = await _rig({"USDT": D(50_000)})
    await rig.venue.set_leverage(BTC_PERP, D(2))
    await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "1", "s"))
    await rig.venue.set_leverage(BTC_PERP, D(4))
    assert (await rig.venue.fetch_positions([BTC_PERP]))[BTC_PERP].margin == D(59994) / 4
    await rig.venue.set_leverage(BTC_PERP, D(2))
    with pytest.raises(OrderRejectedError, match=r"needs .* more USDT margin"):
        await rig.venue.set_leverage(BTC_PERP, D(1))
    with pytest.raises(FatalError, match="between 1 and 125"):
        await rig.venue.set_leverage(BTC_PERP, D("0.5"))


# -- persistence --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_state_survives_a_save_and_load_round_trip() -> None:
    rig = await _rig({"USDT": D(100_000), "ETH": D(2)})
    rig.feed.set_funding_rate("BTC", D("0.0001"))
    await rig.venue.set_leverage(BTC_PERP, D(3))
    await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "1", "s"))
    await rig.venue.create_order(_order(ETH_SPOT, Side.SELL, "1", "e"))
    rig.clock.advance(8 * 3600)
    before_positions = await rig.venue.fetch_positions([BTC_PERP])
    before_balances = await rig.venue.fetch_balances()
    await rig.venue.close()

    reopened = await PaperVenue.open(rig.config, rig.feed, rig.clock, rig.store, account="test")
    assert await reopened.fetch_positions([BTC_PERP]) == before_positions
    assert await reopened.fetch_balances() == before_balances
    assert await reopened.fetch_order(BTC_PERP, "s") == await rig.venue.fetch_order(BTC_PERP, "s")
    assert reopened.state.fees_paid == rig.venue.state.fees_paid
    assert reopened.state.funding_total == D(6)
    assert [p.amount for p in await reopened.fetch_funding_payments([BTC_PERP])] == [D(6)]
    # the trade sequence and the duplicate check carry on
    with pytest.raises(OrderRejectedError, match="duplicate"):
        await reopened.create_order(_order(BTC_PERP, Side.SELL, "1", "s"))
    nxt = await reopened.create_order(_order(BTC_PERP, Side.BUY, "1", "c", reduce_only=True))
    assert nxt.fills[0].trade_id == "3"


@pytest.mark.asyncio
async def test_an_order_is_saved_before_create_order_returns() -> None:
    rig = await _rig()
    result = await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "1", "s"))
    # no close(): a crash right after the fill loses nothing
    reopened = await PaperVenue.open(rig.config, rig.feed, rig.clock, rig.store, account="test")
    assert await reopened.fetch_order(BTC_PERP, "s") == result
    assert (await reopened.fetch_positions([BTC_PERP]))[BTC_PERP].qty == D(-1)


@pytest.mark.asyncio
async def test_orders_older_than_the_cache_are_still_found_and_never_reused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ledger, "MAX_REMEMBERED_ORDERS", 3)
    rig = await _rig()
    for n in range(5):
        await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "0.1", f"o{n}"))
    assert list(rig.venue.state.orders) == ["o2", "o3", "o4"]
    oldest = await rig.venue.fetch_order(BTC_PERP, "o0")
    assert oldest is not None
    assert oldest.filled == D("0.1")
    with pytest.raises(OrderRejectedError, match="duplicate"):
        await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "0.1", "o0"))


@pytest.mark.asyncio
async def test_other_accounts_in_the_same_store_are_separate() -> None:
    store = InMemoryPaperAccountStore()
    rig = await _rig(store=store)
    await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "1", "s"))
    other = await PaperVenue.open(rig.config, rig.feed, rig.clock, store, account="other")
    assert await other.fetch_positions([BTC_PERP]) == {}


@pytest.mark.asyncio
async def test_restart_continues_the_sim_feed_where_it_stopped() -> None:
    config = _config()
    sim = SimFeedConfig(step_seconds=D(1))

    async def run(restart: bool) -> Decimal:
        store = InMemoryPaperAccountStore()
        clock = FakeClock(T0)
        venue = await PaperVenue.open(config, SimFeed(sim, seed=5), clock, store)
        await venue.create_order(_order(BTC_PERP, Side.SELL, "0.1", "s"))
        clock.advance(120)
        await venue.fetch_positions([BTC_PERP])
        if restart:
            await venue.close()
            venue = await PaperVenue.open(config, SimFeed(sim, seed=5), clock, store)
        clock.advance(120)
        return (await venue.fetch_positions([BTC_PERP]))[BTC_PERP].mark_price

    assert await run(restart=True) == await run(restart=False)


# -- the playbook's worked examples, at the venue --------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("move", [D("-0.10"), D("0.10")])
async def test_fully_hedged_eth_keeps_its_value_within_fees_when_price_moves(
    move: Decimal,
) -> None:
    # 10 ETH spot at 3000 with a 10 ETH short.
    rig = await _rig({"USDT": D(40_000), "ETH": D(10)})
    start = await rig.venue.account_summary()
    await rig.venue.create_order(_order(ETH_PERP, Side.SELL, "10", "hedge"))
    rig.feed.set_price("ETH", D(3000) * (1 + move))
    after = await rig.venue.account_summary()

    hedged_before = start.spot_value + start.unrealized_pnl
    hedged_after = after.spot_value + after.unrealized_pnl
    assert abs(hedged_after - hedged_before) <= after.fees_paid
    assert abs(after.equity - start.equity) <= 2 * after.fees_paid


@pytest.mark.asyncio
async def test_half_hedged_btc_loses_about_5_percent_of_spot_value_on_a_10_percent_drop() -> None:
    rig = await _rig({"USDT": D(60_000), "BTC": D(1)})
    start = await rig.venue.account_summary()
    await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "0.5", "hedge"))
    rig.feed.set_price("BTC", D(54000))
    after = await rig.venue.account_summary()
    loss = start.equity - after.equity
    # 5 % of 60000, plus the fee and half the spread on 0.5 BTC
    assert start.spot_value == D(60000)
    assert loss - after.fees_paid == pytest.approx(D(3000), abs=D("0.5") * D(6))


@pytest.mark.asyncio
async def test_double_short_loses_about_10_percent_of_spot_value_on_a_10_percent_rise() -> None:
    rig = await _rig({"USDT": D(80_000), "BTC": D(1)})
    await rig.venue.set_leverage(BTC_PERP, D(2))
    start = await rig.venue.account_summary()
    await rig.venue.create_order(_order(BTC_PERP, Side.SELL, "2", "hedge"))
    rig.feed.set_price("BTC", D(66000))
    after = await rig.venue.account_summary()
    assert await rig.venue.fetch_positions([BTC_PERP])  # not liquidated at 2x
    loss = start.equity - after.equity
    # 10 % of 60000, plus the fee and half the spread on 2 BTC
    assert start.spot_value == D(60000)
    assert loss - after.fees_paid == pytest.approx(D(6000), abs=D(2) * D(6))
