"""The real ccxt bybit client against the emulator's unified account in cross margin:
spot as collateral (issue 15 item 2).

Every coin whose ``collateralSwitch`` is on backs the USDT contracts at its tiered
collateral value ratio (BTC: 0.95 up to 1,000 coins, 0.9 up to 5,000, 0 beyond), USDT
at 1. /v5/account/wallet-balance carries the account-wide figures; a cross position's
``liqPrice`` is the account's; an order the available balance cannot carry is refused
with 110007; at an account MM rate of 100 % the venue closes every position.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest
import pytest_asyncio

from tests.support.emulators.bybit import BybitEmulator
from tests.support.emulators.bybit.bybit_emulator import ccxt_client

D = Decimal
PERP = "BTC/USDT:USDT"
BID = D(59994)  # the short's fill: 60,000 less 1 bp


@pytest_asyncio.fixture
async def bybit(bybit_emulator: BybitEmulator) -> AsyncIterator[Any]:
    async with ccxt_client(bybit_emulator, rateLimit=1) as client:
        await client.load_markets()
        yield client


def account(balance: Any) -> dict[str, Any]:
    """The account row ccxt keeps in ``info`` (its unified parse drops the totals)."""
    row: dict[str, Any] = balance["info"]["result"]["list"][0]
    return row


def coin(balance: Any, name: str) -> dict[str, Any]:
    return next(r for r in account(balance)["coin"] if r["coin"] == name)


def hold(emulator: BybitEmulator, btc: int, usdt: int) -> None:
    emulator.set_balance("BTC", D(btc))
    emulator.set_balance("USDT", D(usdt))


async def short(bybit: Any, amount: float, leverage: int = 10) -> None:
    if leverage != 10:  # the default
        await bybit.set_leverage(leverage, PERP)
    await bybit.create_order(PERP, "market", "sell", amount, None)


async def test_the_coins_count_at_their_collateral_ratio_in_the_account_figures(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    hold(bybit_emulator, 1, 1000)
    row = account(await bybit.fetch_balance())
    assert D(row["totalEquity"]) == 61000  # no haircut
    assert D(row["totalWalletBalance"]) == D("0.95") * 60000 + 1000
    assert D(row["totalMarginBalance"]) == D(row["totalAvailableBalance"]) == 58000
    assert (row["totalInitialMargin"], row["accountMMRate"]) == ("0", "0")
    btc = coin(await bybit.fetch_balance(), "BTC")
    assert (btc["collateralSwitch"], btc["marginCollateral"], btc["usdValue"]) == (
        True,
        True,
        "60000",
    )


async def test_the_ratio_is_tiered_by_coin_quantity(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    hold(bybit_emulator, 2000, 0)
    row = account(await bybit.fetch_balance())
    # 1,000 coins at 0.95, the next 1,000 at 0.9
    assert D(row["totalWalletBalance"]) == (D(950) + D(900)) * 60000
    answer = await bybit.publicGetV5SpotMarginTradeCollateral({"currency": "BTC"})
    [btc] = answer["result"]["list"]
    assert [
        (t["minQty"], t["maxQty"], t["collateralRatio"]) for t in btc["collateralRatioList"]
    ] == [
        ("0", "1000", "0.95"),
        ("1000", "5000", "0.9"),
        ("5000", "", "0"),
    ]


async def test_the_coins_carry_a_short_the_usdt_alone_cannot_and_not_once_switched_off(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    hold(bybit_emulator, 1, 100)
    bybit_emulator.set_collateral("BTC", False)
    info = await bybit.privateGetV5AccountCollateralInfo({"currency": "BTC"})
    assert info["result"]["list"][0]["collateralSwitch"] is False
    with pytest.raises(ccxt.InsufficientFunds, match="110007"):
        await short(bybit, 0.5)  # 3,000 of margin against 100 USDT
    bybit_emulator.set_collateral("BTC", True)
    await short(bybit, 0.5)
    assert bybit_emulator.position("BTCUSDT") == D("-0.5")
    row = account(await bybit.fetch_balance())
    initial = D("0.5") * BID / 10
    assert D(row["totalInitialMargin"]) == initial
    margin_balance = D(row["totalMarginBalance"])
    assert D(row["totalAvailableBalance"]) == margin_balance - initial
    assert D(row["accountIMRate"]) == (initial / margin_balance).quantize(D(row["accountIMRate"]))


async def test_a_cross_short_the_coins_back_has_the_accounts_liquidation_price(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    hold(bybit_emulator, 1, 100)
    await short(bybit, 1, leverage=2)
    [position] = await bybit.fetch_positions(None, {"settleCoin": "USDT"})
    # 0.95 p + (100 - fee) - (p - entry) = 0.005 p: p = (100 - fee + entry) / 0.055
    fee = BID * D("0.00055")
    expected = (D(100) - fee + BID) / D("0.055")
    assert abs(D(str(position["liquidationPrice"])) - expected) < 1, expected
    # A quarter of the coins hedged: the account gains as the price rises, loses
    # nothing to a fall it cannot pay: no liquidation price at all.
    await bybit.create_order(
        PERP, "market", "buy", 0.75, None, {"clientOrderId": "b1", "reduceOnly": True}
    )
    [position] = await bybit.fetch_positions(None, {"settleCoin": "USDT"})
    assert position["liquidationPrice"] is None


async def test_the_venue_closes_every_position_when_the_mm_rate_reaches_100_percent(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    hold(bybit_emulator, 1, 100)
    await short(bybit, 3)  # three times the coins: the account is short 2 BTC net
    [position] = await bybit.fetch_positions(None, {"settleCoin": "USDT"})
    liquidation = D(str(position["liquidationPrice"]))
    assert 80000 < liquidation < 90000
    bybit_emulator.set_price("BTC", liquidation - 100)
    assert bybit_emulator.liquidations() == []
    row = account(await bybit.fetch_balance())
    assert D("0.8") < D(row["accountMMRate"]) < 1  # 100 below the price: near
    bybit_emulator.set_price("BTC", liquidation + 100)
    [(_, margin_balance, maintenance)] = bybit_emulator.liquidations()
    assert margin_balance <= maintenance
    assert bybit_emulator.position("BTCUSDT") == 0
    trades = await bybit.privateGetV5ExecutionList({"category": "linear", "execType": "BustTrade"})
    [bust] = trades["result"]["list"]
    assert (bust["side"], bust["execQty"]) == ("Buy", "3")
    assert await bybit.fetch_positions(None, {"settleCoin": "USDT"}) == []


async def test_isolated_margin_leaves_the_account_figures_empty_and_usdt_alone_margins(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    hold(bybit_emulator, 1, 100)
    await bybit.set_margin_mode("isolated", PERP)
    row = account(await bybit.fetch_balance())
    assert (row["totalMarginBalance"], row["totalAvailableBalance"], row["accountMMRate"]) == (
        "",
        "",
        "",
    )
    with pytest.raises(ccxt.InsufficientFunds, match="110007"):
        await short(bybit, 0.5)
