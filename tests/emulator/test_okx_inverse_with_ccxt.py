"""The real ccxt okx client against the OKX emulator's coin-margined swaps
(``BTC-USD-SWAP``, ccxt ``BTC/USD:BTC``; ``ETH-USD-SWAP``) on the trading account.

A contract is ``ctVal`` USD of face (100 for BTC, 10 for ETH), ccxt's ``contractSize``;
ccxt counts contracts. Margin, fees, PnL and funding are in the coin, in the same
trading-account row as the spot coins: the BTC ``eq`` (``cashBal`` + the swap's ``upl``)
is the coins once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest
import pytest_asyncio

from tests.support.emulators.okx import Fault, OkxEmulator
from tests.support.emulators.okx.okx_emulator import ccxt_client

D = Decimal
INVERSE = "BTC/USD:BTC"
INVERSE_ID = "BTC-USD-SWAP"
BID = D(59994)  # 60,000 less 1 bp: where a market sell fills
MMR = D("0.004")  # the emulated BTC maintenance rate
TAKER = D("0.0005")


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[OkxEmulator]:
    """BTC and ETH with their linear and coin-margined swaps; 1 BTC in the account."""
    async with OkxEmulator() as emu:
        emu.set_balance("BTC", D(1))
        emu.set_balance("USDT", D(0))
        yield emu


@pytest_asyncio.fixture
async def okx(emulator: OkxEmulator) -> AsyncIterator[Any]:
    async with ccxt_client(emulator, rateLimit=1) as client:
        await client.load_markets()
        await client.set_leverage(1, INVERSE, {"marginMode": "cross"})
        yield client


async def sell(okx: Any, contracts: int, cl_id: str, mode: str = "cross") -> Any:
    params = {"clOrdId": cl_id, "marginMode": mode}
    return await okx.create_order(INVERSE, "market", "sell", contracts, None, params)


async def btc_row(okx: Any) -> dict[str, str]:
    balance = await okx.fetch_balance()
    return next(r for r in balance["info"]["data"][0]["details"] if r["ccy"] == "BTC")


async def test_coin_margined_swaps_are_listed_as_ccxt_inverse_markets(okx: Any) -> None:
    for symbol, inst_id, face in (
        ("BTC/USD:BTC", INVERSE_ID, 100),
        ("ETH/USD:ETH", "ETH-USD-SWAP", 10),
    ):
        market = okx.market(symbol)
        assert (market["id"], market["type"], market["inverse"], market["linear"]) == (
            inst_id,
            "swap",
            True,
            False,
        )
        assert (market["settle"], market["contractSize"]) == (symbol[-3:], face)
        assert market["precision"]["amount"] == 1
        assert market["limits"]["amount"]["min"] == 1
        info = market["info"]
        assert (info["ctType"], info["ctValCcy"], info["uly"], info["instFamily"]) == (
            "inverse",
            "USD",
            symbol[:3] + "-USD",
            symbol[:3] + "-USD",
        )
    assert okx.market("BTC/USDT:USDT")["inverse"] is False  # the linear swap unchanged


async def test_swap_tickers_mark_prices_and_funding_rates_include_the_inverse_swaps(
    okx: Any,
) -> None:
    tickers = await okx.publicGetMarketTickers({"instType": "SWAP"})
    ids = {row["instId"] for row in tickers["data"]}
    assert {"BTC-USDT-SWAP", INVERSE_ID, "ETH-USD-SWAP"} <= ids
    marks = await okx.publicGetPublicMarkPrice({"instType": "SWAP", "instId": INVERSE_ID})
    assert marks["data"][0]["markPx"] == "60000"
    rates = await okx.publicGetPublicFundingRate({"instId": "ANY"})
    assert INVERSE_ID in {row["instId"] for row in rates["data"]}
    rate = await okx.fetch_funding_rate(INVERSE)
    assert rate["fundingRate"] == 0.0001


async def test_short_inverse_fill_charges_its_fee_in_btc_and_margins_with_the_coins(
    okx: Any,
) -> None:
    await sell(okx, 300, "inv1")  # 30,000 USD of face
    order = await okx.fetch_order(None, INVERSE, {"clOrdId": "inv1"})
    assert (order["status"], order["filled"], order["average"]) == ("closed", 300, 59994)
    fee = D(30000) / BID * TAKER
    assert D(order["info"]["fee"]) == -fee
    assert order["info"]["feeCcy"] == "BTC"
    [position] = await okx.fetch_positions([INVERSE])
    assert (position["side"], position["contracts"], position["contractSize"]) == (
        "short",
        300,
        100,
    )
    assert position["info"]["ccy"] == "BTC"
    assert position["info"]["notionalUsd"] == "30000"
    row = await btc_row(okx)
    assert D(row["cashBal"]) == 1 - fee  # the spot coins are the margin
    upl = -D(30000) * (1 / BID - D(1) / 60000)
    assert abs(D(row["upl"]) - upl) < D("1e-20")
    assert D(row["eq"]) == D(row["cashBal"]) + D(row["upl"])
    imr = D(30000) / 60000  # 1x cross, at the mark
    assert D(row["frozenBal"]) == imr
    assert D(row["availEq"]) == D(row["eq"]) - imr


async def test_an_order_beyond_the_coins_is_refused_for_btc_margin(okx: Any) -> None:
    with pytest.raises(ccxt.InsufficientFunds, match="Insufficient BTC margin"):
        await sell(okx, 700, "inv2")  # 70,000 USD at 1x needs 1.17 BTC


async def test_inverse_pnl_and_funding_land_in_the_btc_row(emulator: OkxEmulator, okx: Any) -> None:
    """Short 59,000 USD of face against 1 BTC and the price doubles: the short loses
    about half a coin, the coins' USD value holds (the unhedged 1,000 USD doubles)."""
    await sell(okx, 590, "inv3")
    emulator.set_price("BTC", D(120000))
    row = await btc_row(okx)
    assert emulator.equity("BTC") == D(row["eq"])
    usd = D(row["eq"]) * 120000
    assert abs(usd - (60000 + 1000)) < 100, usd
    before = D(row["cashBal"])
    emulator.settle_funding()  # a short receives a positive rate, in BTC
    [payment] = await okx.fetch_funding_history(INVERSE)
    received = D(59000) / 120000 * D("0.0001")
    assert payment["code"] == "BTC"
    assert abs(D(str(payment["amount"])) - received) < D("1e-12")
    assert payment["info"]["instId"] == INVERSE_ID
    assert abs(D((await btc_row(okx))["cashBal"]) - before - received) < D("1e-20")


async def test_isolated_1x_short_has_no_liquidation_price_and_2x_the_inverse_one(
    okx: Any,
) -> None:
    await okx.set_leverage(1, INVERSE, {"marginMode": "isolated"})
    await sell(okx, 500, "inv4", "isolated")
    [position] = await okx.fetch_positions([INVERSE])
    assert position["marginMode"] == "isolated"
    assert D(position["info"]["margin"]) == D(50000) / BID
    assert position["info"]["liqPx"] == ""  # the margin is the face: no price gets there
    # ccxt estimates one from the margin and the maintenance margin: far out of reach.
    assert position["liquidationPrice"] is None or position["liquidationPrice"] > 1_000_000
    await okx.create_order(
        INVERSE, "market", "buy", 500, None, {"marginMode": "isolated", "reduceOnly": True}
    )
    await okx.set_leverage(2, INVERSE, {"marginMode": "isolated"})
    await sell(okx, 500, "inv5", "isolated")
    [position] = await okx.fetch_positions([INVERSE])
    # collateral + face x (1/entry - 1/P) = mmr x face / P, with half the face as margin
    expected = 2 * BID * (1 - MMR)
    assert abs(D(str(position["liquidationPrice"])) - expected) < 1


async def test_cross_liquidation_price_counts_every_coin_of_the_account(okx: Any) -> None:
    await okx.set_leverage(5, INVERSE, {"marginMode": "cross"})
    await sell(okx, 1200, "inv6")  # 120,000 USD of face on 1 BTC: 2x
    [position] = await okx.fetch_positions([INVERSE])
    cash = D((await btc_row(okx))["cashBal"])
    face = D(120000)
    expected = face * (1 - MMR) / (face / BID - cash)
    assert abs(D(position["info"]["liqPx"]) - expected) < D("0.01")
    assert 110000 < expected < 125000


async def test_an_inverse_order_of_lost_answer_is_found_by_client_id(
    emulator: OkxEmulator, okx: Any
) -> None:
    emulator.inject(Fault.DROP_AFTER_ACCEPT)
    with pytest.raises(ccxt.NetworkError):
        await sell(okx, 100, "hb0123456789abcdef0123456789abcd")  # 32 letters and digits
    found = await okx.fetch_order(None, INVERSE, {"clOrdId": "hb0123456789abcdef0123456789abcd"})
    assert (found["filled"], found["clientOrderId"]) == (100, "hb0123456789abcdef0123456789abcd")
    trades = await okx.fetch_my_trades(INVERSE, None, None, {"ordId": found["id"]})
    assert [t["amount"] for t in trades] == [100]
    assert trades[0]["fee"]["currency"] == "BTC"
    assert emulator.position(INVERSE_ID) == -100
