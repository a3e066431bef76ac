"""Binance's request weight and order counts in the emulator, through the real ccxt client:
2,400 weight per minute (429, -1003, ``Retry-After``), 300 new orders per 10 seconds
(-1015), and a new futures order that takes no weight ("0 on IP rate limit")."""

from __future__ import annotations

from decimal import Decimal

import ccxt.async_support as ccxt
import pytest

from tests.support.emulators.binance import BinanceEmulator
from tests.support.emulators.binance.binance_emulator import ccxt_client

PERP = "BTC/USDT:USDT"


async def test_the_request_past_2400_weight_a_minute_is_refused_with_retry_after(
    emulator: BinanceEmulator,
) -> None:
    async with ccxt_client(emulator, enableRateLimit=False) as client:
        # every contract's open orders: weight 40 each; 60 of them are the minute's 2,400
        for _ in range(60):
            await client.fapiPrivateGetOpenOrders()
        assert emulator.fapi_limits.used_weight == 2400
        # ccxt raises DDoSProtection on HTTP 429 (RateLimitExceeded is one)
        with pytest.raises(ccxt.DDoSProtection, match="-1003"):
            await client.fapiPrivateGetOpenOrders()
        retry_after = client.last_response_headers.get("Retry-After")
        assert retry_after is not None
        assert 1 <= int(retry_after) <= 60
        # a light request is refused too while the minute is full
        with pytest.raises(ccxt.DDoSProtection, match="-1003"):
            await client.fapiPrivateGetOrder({"symbol": "BTCUSDT", "origClientOrderId": "x"})
    assert emulator.fapi_limits.refused == [
        ("GET", "/fapi/v1/openOrders", -1003),
        ("GET", "/fapi/v1/order", -1003),
    ]


async def test_new_orders_take_no_weight_and_the_301st_in_10_seconds_is_refused(
    emulator: BinanceEmulator,
) -> None:
    emulator.set_futures_balance("USDT", Decimal(1_000_000))
    async with ccxt_client(emulator, enableRateLimit=False) as client:
        await client.load_markets()
        used = emulator.fapi_limits.used_weight
        for i in range(300):
            side = "sell" if i % 2 == 0 else "buy"
            await client.create_order(PERP, "market", side, 0.01, None, {"clientOrderId": f"o{i}"})
        assert emulator.fapi_limits.used_weight == used  # 300 orders, no weight
        with pytest.raises(ccxt.BaseError, match=r"-1015.*300 orders per 10 SECOND"):
            await client.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "o300"})
    placed = [e for e in emulator.order_log if e.outcome == "accepted"]
    assert len(placed) == 300
    assert emulator.order_log[-1].outcome == "rejected:-1015"
