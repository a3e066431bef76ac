"""A dated future through the real ccxt client: the emulator lists a quarterly in its
exchangeInfo (contractType CURRENT_QUARTER, deliveryDate), the gateway reads its expiry."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from bot.clock import SystemClock
from bot.config import AccountConfig
from bot.exchange.ccxt_gateway import CcxtGateway
from tests.support.emulators.binance import BinanceEmulator, EmulatedMarket

DELIVERY = datetime(2026, 12, 25, 8, tzinfo=UTC)
QUARTERLY = "BTC/USDT:USDT-261225"


async def test_the_gateway_loads_a_quarterly_with_its_expiry_beside_the_perp() -> None:
    markets = [EmulatedMarket(base="BTC", quarterly_delivery=DELIVERY)]
    async with BinanceEmulator(markets=markets) as emulator:
        account = AccountConfig(
            exchange="binance",
            api_key="test-key",
            secret="test-secret",
            ccxt_config={**emulator.ccxt_config(), "timeout": 1000},
        )
        gateway = CcxtGateway.from_config("main", account, "testnet", SystemClock())
        try:
            loaded = await gateway.load_markets([QUARTERLY, "BTC/USDT:USDT", "BTC/USDT"])
            funding = await gateway.fetch_funding_rates([QUARTERLY])
        finally:
            await gateway.close()
    quarterly = loaded[QUARTERLY]
    assert (quarterly.expiry, quarterly.is_perp, quarterly.base) == (DELIVERY, True, "BTC")
    assert quarterly.amount_step == Decimal("0.001")
    assert loaded["BTC/USDT:USDT"].expiry is None
    assert loaded["BTC/USDT"].expiry is None
    assert funding == {}  # a dated future pays no funding: not even asked for
