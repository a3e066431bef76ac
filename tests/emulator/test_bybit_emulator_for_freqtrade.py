"""What freqtrade asks of the Bybit emulator beyond hedgebot's calls (``bench_freqtrade``):
every linear contract's risk limit tiers, page by page, through the real ccxt client;
and the control API's list of the requests the emulator has no route for."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.support.emulators.bybit import BybitEmulator
from tests.support.emulators.bybit.__main__ import control_routes
from tests.support.emulators.bybit._bybit_risk_limit import PAGE_ROWS, TIERS
from tests.support.emulators.bybit.bybit_emulator import ccxt_client

PERP = "BTC/USDT:USDT"
RISK_LIMIT = "/v5/market/risk-limit"


async def test_leverage_tiers_of_every_contract_follow_the_cursor_over_pages() -> None:
    async with BybitEmulator(markets=600) as emulator, ccxt_client(emulator) as client:
        await client.load_markets()
        tiers = await client.fetch_leverage_tiers()
        linear = [s for s, m in client.markets.items() if m["linear"] and m["swap"]]
        rows = len(linear) * TIERS
        assert rows > PAGE_ROWS  # the list needs more than one page
        assert emulator.requests_to(RISK_LIMIT) == -(-rows // PAGE_ROWS)
        assert set(linear) <= set(tiers)
        btc = tiers[PERP]
    assert [t["tier"] for t in btc] == [1, 2, 3]
    assert (btc[0]["maxLeverage"], btc[0]["maintenanceMarginRate"]) == (100, 0.005)
    assert btc[0]["minNotional"] == 0
    assert btc[1]["minNotional"] == btc[0]["maxNotional"]
    assert btc[2]["maxLeverage"] < btc[1]["maxLeverage"] < btc[0]["maxLeverage"]


async def test_leverage_tiers_of_one_contract() -> None:
    async with BybitEmulator() as emulator, ccxt_client(emulator) as client:
        await client.load_markets()
        tiers = await client.fetch_leverage_tiers([PERP])
    assert list(tiers) == [PERP]
    assert len(tiers[PERP]) == TIERS


async def test_control_api_lists_the_requests_without_a_route() -> None:
    emulator = BybitEmulator()
    emulator.add_routes(control_routes(emulator))
    async with emulator, aiohttp.ClientSession() as session:
        async with session.get(f"{emulator.url}/v5/market/no-such-thing") as answer:
            body: Any = await answer.json()
        async with session.get(f"{emulator.url}/_control/unknown_requests") as answer:
            unknown = await answer.json()
    assert body["retCode"] == 10017
    assert unknown == ["GET /v5/market/no-such-thing"]
