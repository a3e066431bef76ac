"""The real ccxt bybit client against the Bybit emulator's inverse perpetual (``BTCUSD``,
ccxt ``BTC/USD:BTC``, category ``inverse``) on a unified account.

An inverse contract is 1 USD of face; ccxt counts contracts (``contractSize`` is the
instrument's ``minOrderQty``, 1). Margin, fees, PnL and funding are in BTC, in the same
unified wallet row as the spot BTC: the wallet's BTC ``equity`` is the coins once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest_asyncio

from tests.support.emulators.bybit import BybitEmulator
from tests.support.emulators.bybit._bybit_models import EmulatedMarket
from tests.support.emulators.bybit.bybit_emulator import ccxt_client

INVERSE = "BTC/USD:BTC"
TYPES = {"fetchMarkets": {"types": ["spot", "linear", "inverse"]}}


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[BybitEmulator]:
    """BTC with spot, a linear perp and the inverse perp; 1 BTC in the unified wallet."""
    async with BybitEmulator(markets=[EmulatedMarket(base="BTC", inverse=True)]) as emu:
        emu.set_balance("BTC", Decimal(1))
        emu.set_balance("USDT", Decimal(0))
        yield emu


@pytest_asyncio.fixture
async def bybit(emulator: BybitEmulator) -> AsyncIterator[Any]:
    async with ccxt_client(emulator, rateLimit=1, options=TYPES) as client:
        await client.load_markets()
        await client.set_leverage(1, INVERSE)
        yield client


def btc_row(balance: Any) -> dict[str, str]:
    rows = balance["info"]["result"]["list"][0]["coin"]
    return next(r for r in rows if r["coin"] == "BTC")


async def test_inverse_market_is_one_usd_contracts_settled_in_btc(bybit: Any) -> None:
    market = bybit.market(INVERSE)
    assert (market["id"], market["type"], market["inverse"], market["settle"]) == (
        "BTCUSD",
        "swap",
        True,
        "BTC",
    )
    assert market["contractSize"] == 1
    assert market["precision"]["amount"] == 1
    assert market["limits"]["amount"]["min"] == 1


async def test_inverse_ticker_carries_mark_and_funding_rate(bybit: Any) -> None:
    answer = await bybit.publicGetV5MarketTickers({"category": "inverse"})
    row = answer["result"]["list"][0]
    assert (row["symbol"], row["markPrice"], row["fundingRate"]) == ("BTCUSD", "60000", "0.0001")
    rate = await bybit.fetch_funding_rate(INVERSE)
    assert rate["fundingRate"] == 0.0001


async def test_short_inverse_fill_charges_its_fee_in_btc_and_locks_btc_margin(
    emulator: BybitEmulator, bybit: Any
) -> None:
    await bybit.create_order(INVERSE, "market", "sell", 30000, None, {"clientOrderId": "inv-1"})
    [order] = await bybit.fetch_open_orders(INVERSE, None, None, {"orderLinkId": "inv-1"})
    assert (order["status"], order["filled"], order["average"]) == ("closed", 30000, 59994)
    fee = Decimal(30000) / Decimal(59994) * Decimal("0.00055")
    assert Decimal(order["info"]["cumExecFee"]) == fee
    [position] = await bybit.fetch_positions(None, {"settleCoin": "BTC", "subType": "inverse"})
    assert (position["symbol"], position["side"], position["contracts"]) == (
        INVERSE,
        "short",
        30000,
    )
    row = btc_row(await bybit.fetch_balance())
    assert Decimal(row["walletBalance"]) == 1 - fee
    assert Decimal(row["totalPositionIM"]) == Decimal(30000) / Decimal(59994)


async def test_inverse_pnl_and_funding_land_in_the_btc_row_of_the_one_wallet(
    emulator: BybitEmulator, bybit: Any
) -> None:
    """Short 60,000 USD face against 1 BTC and the price doubles: the short loses
    0.5 BTC of coin PnL, the wallet's BTC equity is about 0.5, still 60,000 USD."""
    await bybit.create_order(INVERSE, "market", "sell", 59000, None, {"clientOrderId": "inv-2"})
    emulator.set_price("BTC", Decimal(120000))
    row = btc_row(await bybit.fetch_balance())
    upnl = Decimal(row["unrealisedPnl"])
    assert Decimal(row["equity"]) == Decimal(row["walletBalance"]) + upnl
    assert emulator.coin_equity("BTC") == Decimal(row["equity"])
    usd = Decimal(row["equity"]) * 120000
    assert abs(usd - (60000 + Decimal(1000))) < 200  # the unhedged 1,000 USD doubled
    before = Decimal(row["walletBalance"])
    emulator.settle_funding()  # a short receives a positive rate, in BTC
    [payment] = await bybit.fetch_funding_history(INVERSE)
    received = Decimal(59000) / 120000 * Decimal("0.0001")
    assert Decimal(payment["info"]["execFee"]) == -received
    after = Decimal(btc_row(await bybit.fetch_balance())["walletBalance"])
    assert abs(after - before - received) < Decimal("1e-20")  # 28 digits of Decimal


async def test_inverse_order_is_found_by_client_id_in_history_after_a_venue_restart(
    emulator: BybitEmulator, bybit: Any
) -> None:
    await bybit.create_order(INVERSE, "market", "sell", 100, None, {"clientOrderId": "inv-3"})
    emulator.restart_order_cache()
    params = {"orderLinkId": "inv-3"}
    assert await bybit.fetch_open_orders(INVERSE, None, None, params) == []
    [found] = await bybit.fetch_canceled_and_closed_orders(INVERSE, None, None, params)
    assert (found["clientOrderId"], found["filled"]) == ("inv-3", 100)
    trades = await bybit.fetch_my_trades(INVERSE, None, None, {"orderId": found["id"]})
    assert [t["amount"] for t in trades] == [100]
    assert trades[0]["fee"]["currency"] == "BTC"


async def test_inverse_cancel_by_client_id_of_a_resting_limit(bybit: Any) -> None:
    await bybit.create_order(INVERSE, "limit", "sell", 100, 70000, {"clientOrderId": "inv-4"})
    await bybit.cancel_order(None, INVERSE, {"orderLinkId": "inv-4"})
    [order] = await bybit.fetch_canceled_and_closed_orders(
        INVERSE, None, None, {"orderLinkId": "inv-4"}
    )
    assert (order["status"], order["filled"]) == ("canceled", 0)


async def test_one_x_short_of_all_the_coins_is_never_liquidated(
    emulator: BybitEmulator, bybit: Any
) -> None:
    await bybit.create_order(INVERSE, "market", "sell", 59000, None, {"clientOrderId": "inv-5"})
    for price in (120000, 600000):
        emulator.set_price("BTC", Decimal(price))
        [position] = await bybit.fetch_positions([INVERSE])
        assert position["liquidationPrice"] is None  # liqPrice 0: no price gets there
        assert emulator.coin_equity("BTC") > 0
