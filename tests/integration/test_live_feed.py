"""Paper trading on live prices: public data through ccxt (from the emulator), fills simulated."""

from __future__ import annotations

from decimal import Decimal

from bot.clock import SystemClock
from bot.config import PaperConfig
from bot.domain.models import OrderRequest, OrderStatus, Side
from bot.domain.paper_account import InMemoryPaperAccountStore
from bot.exchange.live_feed import LiveFeed
from bot.exchange.paper import PaperVenue
from tests.support.emulators.binance import BinanceEmulator

D = Decimal
PERP = "BTC/USDT:USDT"


async def test_paper_venue_quotes_the_exchange_prices_and_fills_without_keys(
    emulator: BinanceEmulator,
) -> None:
    emulator.set_price("BTC", D("61234.5"))
    emulator.set_funding_rate("BTC", D("0.0003"))
    config = PaperConfig(
        feed="live",
        live_exchange="binance",
        live_ccxt_config=emulator.ccxt_config(),
        balances={"BTC": D(1), "USDT": D(100000)},
        spread_bps=D(0),
    )
    clock = SystemClock()
    venue = await PaperVenue.open(
        config, LiveFeed.from_config(config, clock), clock, InMemoryPaperAccountStore()
    )
    try:
        ticker = (await venue.fetch_tickers([PERP]))[PERP]
        assert abs(ticker.last - D("61234.5")) <= D("0.1")  # the mid of the exchange's touch
        rates = await venue.fetch_funding_rates([PERP])
        assert rates[PERP].rate == D("0.0003")
        result = await venue.create_order(
            OrderRequest(symbol=PERP, side=Side.SELL, amount=D("0.1"), client_order_id="p1")
        )
        assert result.status is OrderStatus.FILLED
        assert emulator.order_log == []  # fills are simulated: nothing reached the exchange
        assert all(path.startswith(("/fapi/v1/", "/api/v3/")) for _, path in emulator.request_log)
        private = [p for _, p in emulator.request_log if "account" in p or "order" in p]
        assert private == []
    finally:
        await venue.close()
