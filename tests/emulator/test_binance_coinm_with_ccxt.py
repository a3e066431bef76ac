"""The real ccxt binance client against the Binance emulator's COIN-M perpetuals
(``BTCUSD_PERP``, ccxt ``BTC/USD:BTC``: 100 USD contracts margined in BTC).

COIN-M is a wallet of its own, apart from spot and USDⓈ-M: coins reach it by a transfer
(``MAIN_CMFUTURE``). Margin, fees, PnL and funding are in the coin; ccxt counts contracts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest
import pytest_asyncio

from tests.support.emulators.binance import BinanceEmulator, Fault
from tests.support.emulators.binance._binance_coinm import DEFAULT_COINM_MARKETS
from tests.support.emulators.binance._binance_coinm_api import WEIGHTS
from tests.support.emulators.binance.binance_emulator import ccxt_client

D = Decimal
INVERSE = "BTC/USD:BTC"
ETH_INVERSE = "ETH/USD:ETH"
INVERSE_PARAMS = {"type": "swap", "subType": "inverse"}


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[BinanceEmulator]:
    """BTC and ETH spot, USDⓈ-M and COIN-M; 1 BTC in spot, nothing in COIN-M."""
    async with BinanceEmulator(coinm_markets=DEFAULT_COINM_MARKETS) as emu:
        emu.set_spot_balance("BTC", D(1))
        yield emu


@pytest_asyncio.fixture
async def binance(emulator: BinanceEmulator) -> AsyncIterator[Any]:
    async with ccxt_client(emulator, rateLimit=1) as client:
        await client.load_markets()
        yield client


async def fund_coinm(binance: Any, amount: float = 1.0) -> None:
    await binance.transfer("BTC", amount, "spot", "inverse")


async def test_coinm_markets_are_100_and_10_usd_contracts_settled_in_the_coin(
    binance: Any,
) -> None:
    btc, eth = binance.market(INVERSE), binance.market(ETH_INVERSE)
    assert (btc["id"], btc["type"], btc["inverse"], btc["settle"]) == (
        "BTCUSD_PERP",
        "swap",
        True,
        "BTC",
    )
    assert (btc["contractSize"], eth["contractSize"]) == (100, 10)
    assert btc["precision"]["amount"] == 1
    assert btc["limits"]["amount"]["min"] == 1
    assert btc["precision"]["price"] == 0.1


async def test_the_coinm_wallet_is_apart_from_spot_and_filled_by_a_transfer(
    emulator: BinanceEmulator, binance: Any
) -> None:
    wallet = await binance.fetch_balance(INVERSE_PARAMS)
    assert wallet["BTC"]["total"] == 0
    await fund_coinm(binance, 0.75)
    assert emulator.spot_balance("BTC") == D("0.25")
    wallet = await binance.fetch_balance(INVERSE_PARAMS)
    assert (wallet["BTC"]["total"], wallet["BTC"]["free"]) == (0.75, 0.75)
    await binance.transfer("BTC", 0.25, "inverse", "spot")
    assert (emulator.spot_balance("BTC"), emulator.coinm_balance("BTC")) == (D("0.5"), D("0.5"))
    with pytest.raises(ccxt.ExchangeError, match="-5013"):
        await binance.transfer("BTC", 2, "spot", "inverse")


async def test_a_short_charges_its_fee_in_btc_and_its_pnl_is_in_btc(
    emulator: BinanceEmulator, binance: Any
) -> None:
    await fund_coinm(binance)
    await binance.set_leverage(1, INVERSE)
    await binance.create_order(INVERSE, "market", "sell", 590, None, {"clientOrderId": "cm-1"})
    order = await binance.fetch_order(None, INVERSE, {"origClientOrderId": "cm-1"})
    assert (order["status"], order["filled"], order["clientOrderId"]) == ("closed", 590, "cm-1")
    bid = D("59994")
    fee = D(59000) / bid * D("0.0005")
    assert emulator.coinm_balance("BTC") == 1 - fee
    [position] = await binance.fetch_positions([INVERSE], INVERSE_PARAMS)
    assert (position["side"], position["contracts"], position["contractSize"]) == (
        "short",
        590,
        100,
    )
    assert position["liquidationPrice"] is None  # 1x short of its coins: none
    emulator.set_price("BTC", D(120000))
    [position] = await binance.fetch_positions([INVERSE], INVERSE_PARAMS)
    loss = D(59000) * (1 / bid - 1 / D(120000))
    assert abs(D(position["info"]["unRealizedProfit"]) + loss) < D("1e-20")
    wallet = await binance.fetch_balance(INVERSE_PARAMS)
    row = next(r for r in wallet["info"]["assets"] if r["asset"] == "BTC")
    assert abs(D(row["marginBalance"]) - (D(row["walletBalance"]) - loss)) < D("1e-20")
    assert emulator.coinm_equity("BTC") == D(row["marginBalance"])
    # Hedged: about 60,000 USD whatever the price (the unhedged 1,000 USD doubled).
    assert abs(D(row["marginBalance"]) * 120000 - 61000) < 100


async def test_funding_is_paid_in_the_coin_and_listed_as_income(
    emulator: BinanceEmulator, binance: Any
) -> None:
    await fund_coinm(binance)
    await binance.create_order(INVERSE, "market", "sell", 500, None, {"clientOrderId": "cm-2"})
    before = emulator.coinm_balance("BTC")
    emulator.settle_funding()  # a short receives a positive rate
    received = D(50000) / D(60000) * D("0.0001")
    assert abs(emulator.coinm_balance("BTC") - before - received) < D("1e-20")
    [payment] = await binance.fetch_funding_history(None, None, None, INVERSE_PARAMS)
    assert (payment["symbol"], payment["code"]) == (INVERSE, "BTC")
    assert abs(D(payment["info"]["income"]) - received) < D("1e-20")
    rates = await binance.fetch_funding_rate(INVERSE)
    assert rates["fundingRate"] == 0.0001


async def test_an_order_is_found_by_client_id_and_canceled_by_it(binance: Any) -> None:
    await fund_coinm(binance)
    await binance.create_order(
        INVERSE, "limit", "sell", 10, 70000, {"clientOrderId": "cm-3", "timeInForce": "GTC"}
    )
    [open_order] = await binance.fetch_open_orders(INVERSE)
    assert (open_order["clientOrderId"], open_order["amount"]) == ("cm-3", 10)
    await binance.cancel_order(None, INVERSE, {"origClientOrderId": "cm-3"})
    order = await binance.fetch_order(None, INVERSE, {"origClientOrderId": "cm-3"})
    assert (order["status"], order["filled"]) == ("canceled", 0)
    with pytest.raises(ccxt.OrderNotFound):
        await binance.fetch_order(None, INVERSE, {"origClientOrderId": "never-sent"})


async def test_a_lost_answer_leaves_the_order_to_be_found_by_client_id_with_its_trades(
    emulator: BinanceEmulator, binance: Any
) -> None:
    await fund_coinm(binance)
    emulator.inject(Fault.DROP_AFTER_ACCEPT)
    with pytest.raises(ccxt.NetworkError):
        await binance.create_order(INVERSE, "market", "sell", 100, None, {"clientOrderId": "cm-4"})
    order = await binance.fetch_order(None, INVERSE, {"origClientOrderId": "cm-4"})
    assert order["filled"] == 100
    trades = await binance.fetch_my_trades(INVERSE, None, None, {"orderId": order["id"]})
    assert [t["amount"] for t in trades] == [100]
    assert trades[0]["fee"]["currency"] == "BTC"
    with pytest.raises(ccxt.ExchangeError, match="-4116"):  # a client id is never reused
        await binance.create_order(INVERSE, "market", "sell", 100, None, {"clientOrderId": "cm-4"})


async def test_margin_insufficient_margin_type_and_reduce_only(
    emulator: BinanceEmulator, binance: Any
) -> None:
    with pytest.raises(ccxt.InsufficientFunds, match="-2019"):  # nothing in COIN-M yet
        await binance.create_order(INVERSE, "market", "sell", 100, None)
    await fund_coinm(binance, 0.1)
    await binance.set_margin_mode("isolated", INVERSE)
    with pytest.raises(ccxt.MarginModeAlreadySet):  # -4046 "No need to change margin type."
        await binance.set_margin_mode("isolated", INVERSE)
    with pytest.raises(ccxt.ExchangeError, match="-2022"):
        await binance.create_order(INVERSE, "market", "buy", 1, None, {"reduceOnly": True})
    leverages = await binance.fetch_leverages([INVERSE], INVERSE_PARAMS)
    assert leverages[INVERSE]["marginMode"] == "isolated"
    assert (await binance.fetch_position_mode(INVERSE))["hedged"] is False


async def test_an_isolated_2x_short_is_liquidated_when_the_price_doubles(
    emulator: BinanceEmulator, binance: Any
) -> None:
    await fund_coinm(binance, 0.6)
    await binance.set_margin_mode("isolated", INVERSE)
    await binance.set_leverage(2, INVERSE)
    await binance.create_order(INVERSE, "market", "sell", 600, None)
    [position] = await binance.fetch_positions([INVERSE], INVERSE_PARAMS)
    liquidation = D(str(position["liquidationPrice"]))
    assert D(110000) < liquidation < D(120000)  # about 2x the entry, less the maintenance
    emulator.set_price("BTC", D(125000))
    [liquidated] = emulator.coinm_liquidations
    assert (liquidated.symbol, liquidated.amount) == ("BTCUSD_PERP", -600)
    assert await binance.fetch_positions([INVERSE], INVERSE_PARAMS) == []
    assert emulator.coinm_balance("BTC") < D("0.6")


async def test_coinm_answers_carry_their_documented_request_weight(
    emulator: BinanceEmulator, binance: Any
) -> None:
    answer = await binance.dapiPublicGetPremiumIndex({"symbol": "BTCUSD_PERP"})
    assert isinstance(answer, list)  # COIN-M answers a list even for one symbol
    # COIN-M's exchangeInfo at load (weight 1), then premiumIndex (10), in the minute.
    assert binance.last_response_headers["X-MBX-USED-WEIGHT-1M"] == "11"
    assert WEIGHTS[("GET", "/dapi/v1/premiumIndex")] == (10, 10)
    assert not emulator.unknown_requests
