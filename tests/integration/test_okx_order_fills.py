"""An OKX order's trades through the gateway and the real ccxt client: read from
/trade/fills (the last 3 days, 60 requests per 2 s), where ccxt's own ``fetch_my_trades``
asks /trade/fills-history (3 months, 10 per 2 s: 200 orders' fills took about 50 s of a
fresh account's first cycle); an order whose fills are older is read from the history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal

import pytest_asyncio

from bot.domain.models import OrderRequest, OrderResult, OrderStatus, Side
from bot.exchange.ccxt_gateway import CcxtGateway
from tests.support.inverse_scenarios import keyed_gateway
from tests.support.venue_harness import PERP, OkxHarness, open_harness

D = Decimal
FILLS = "/api/v5/trade/fills"
HISTORY = "/api/v5/trade/fills-history"
DAY_MS = 24 * 3600 * 1000


@pytest_asyncio.fixture
async def okx() -> AsyncIterator[OkxHarness]:
    harness = await open_harness("okx")
    assert isinstance(harness, OkxHarness)
    harness.fund()
    try:
        yield harness
    finally:
        await harness.close()


async def sell(gateway: CcxtGateway, client_order_id: str) -> OrderResult:
    """A market sell of 0.5 BTC of the perpetual (50 contracts), through the gateway."""
    await gateway.load_markets([PERP])
    request = OrderRequest(PERP, Side.SELL, D("0.5"), client_order_id, order_type="market")
    return await gateway.create_order(request)


def reads(okx: OkxHarness, path: str) -> int:
    return sum(1 for method, p in okx.emulator.request_log if (method, p) == ("GET", path))


async def test_an_okx_order_s_trades_are_read_from_the_recent_fills_not_the_history(
    okx: OkxHarness,
) -> None:
    async with keyed_gateway(okx) as gateway:
        result = await sell(gateway, "hbfills1")
    assert result.status is OrderStatus.FILLED
    assert result.filled == D("0.5")
    assert result.fills
    assert result.fee > 0
    assert sum(f.amount for f in result.fills) == D("0.5")
    assert (reads(okx, FILLS), reads(okx, HISTORY)) == (1, 0)


async def test_the_trades_of_an_order_filled_over_three_days_ago_come_from_the_history(
    okx: OkxHarness,
) -> None:
    async with keyed_gateway(okx) as gateway:
        await sell(gateway, "hbfills2")
        [order] = okx.emulator.orders()
        order.fills[:] = [replace(f, time_ms=f.time_ms - 4 * DAY_MS) for f in order.fills]
        found = await gateway.fetch_order(PERP, "hbfills2")
    assert found is not None
    assert found.status is OrderStatus.FILLED
    assert sum(f.amount for f in found.fills) == D("0.5")
    assert found.fee > 0
    assert reads(okx, HISTORY) == 1  # after /trade/fills answered none of them
