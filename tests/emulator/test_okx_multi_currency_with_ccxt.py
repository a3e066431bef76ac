"""The real ccxt okx client against the OKX emulator's multi-currency margin account
(account level 3): the coins as the cross short's collateral (issue 15 item 2).

Every coin counts at its tiered discount rate (BTC, illustratively: 0.95 up to 1,000
coins, 0.9 up to 5,000, ...), USDT at 1. /account/balance carries the account-level
figures (``adjEq``, ``availEq``, ``imr``, ``mmr``, ``mgnRatio``) that level 2 leaves
empty; a linear cross position's ``liqPx`` is the account's; a cross order the account's
available equity cannot carry is refused with 51008; at a margin ratio of 100 % the venue
closes every cross position.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest
import pytest_asyncio

from tests.support.emulators.okx import OkxEmulator
from tests.support.emulators.okx.okx_emulator import ccxt_client

D = Decimal
PERP = "BTC/USDT:USDT"
BID = D(59994)  # the short's fill: 60,000 less 1 bp
NEEDED = D("0.004") + D("0.0005")  # BTC's maintenance rate and the taker fee, per coin


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[OkxEmulator]:
    async with OkxEmulator() as emu:
        emu.set_account_level("3")
        yield emu


@pytest_asyncio.fixture
async def okx(emulator: OkxEmulator) -> AsyncIterator[Any]:
    async with ccxt_client(emulator, rateLimit=1) as client:
        await client.load_markets()
        yield client


def hold(emulator: OkxEmulator, btc: int, usdt: int) -> None:
    emulator.set_balance("BTC", D(btc))
    emulator.set_balance("USDT", D(usdt))


async def account(okx: Any) -> dict[str, Any]:
    """The account row ccxt keeps in ``info`` (its unified parse drops the totals)."""
    row: dict[str, Any] = (await okx.fetch_balance())["info"]["data"][0]
    return row


def detail(row: dict[str, Any], ccy: str) -> dict[str, str]:
    return next(d for d in row["details"] if d["ccy"] == ccy)


async def short(okx: Any, btc: str, leverage: int = 10, cl_id: str = "s1") -> None:
    await okx.set_leverage(leverage, PERP, {"marginMode": "cross"})
    contracts = float(D(btc) * 100)  # 0.01 BTC a contract
    params = {"marginMode": "cross", "clOrdId": cl_id}
    await okx.create_order(PERP, "market", "sell", contracts, None, params)


async def test_the_coins_count_at_their_discount_rate_in_the_account_figures(
    emulator: OkxEmulator, okx: Any
) -> None:
    hold(emulator, 1, 1000)
    row = await account(okx)
    assert D(row["totalEq"]) == 61000  # no discount
    assert D(row["adjEq"]) == D(row["availEq"]) == D("0.95") * 60000 + 1000
    assert (row["imr"], row["mmr"], row["mgnRatio"]) == ("0", "0", "")
    assert (detail(row, "BTC")["disEq"], detail(row, "BTC")["eqUsd"]) == ("57000", "60000")
    emulator.set_account_level("2")  # single-currency margin: OKX leaves them empty
    row = await account(okx)
    assert (row["adjEq"], row["availEq"], row["imr"], row["mmr"]) == ("", "", "", "")


async def test_the_discount_rate_is_tiered_by_coin_quantity(
    emulator: OkxEmulator, okx: Any
) -> None:
    hold(emulator, 2000, 0)
    row = await account(okx)
    # 1,000 coins at 0.95, the next 1,000 at 0.9
    assert D(row["adjEq"]) == (D(950) + D(900)) * 60000
    answer = await okx.publicGetPublicDiscountRateInterestFreeQuota({"ccy": "BTC"})
    [btc] = answer["data"]
    assert [(t["minAmt"], t["maxAmt"], t["discountRate"]) for t in btc["details"]] == [
        ("0", "1000", "0.95"),
        ("1000", "5000", "0.9"),
        ("5000", "10000", "0.5"),
        ("10000", "", "0"),
    ]


async def test_the_coins_carry_a_short_the_usdt_alone_cannot_and_not_at_level_2(
    emulator: OkxEmulator, okx: Any
) -> None:
    hold(emulator, 1, 100)
    emulator.set_account_level("2")
    with pytest.raises(ccxt.InsufficientFunds, match="51008"):
        await short(okx, "0.5")  # 3,000 of margin against 100 USDT
    emulator.set_account_level("3")
    await short(okx, "0.5")
    assert emulator.position("BTC-USDT-SWAP") == -50
    row = await account(okx)
    initial = D("0.5") * 60000 / 10  # at the mark
    assert D(row["imr"]) == initial
    assert D(row["availEq"]) == D(row["adjEq"]) - initial
    ratio = D(row["adjEq"]) / (D(row["mmr"]) + D("0.5") * 60000 * D("0.0005"))
    assert D(row["mgnRatio"]) == ratio.quantize(D("1e-8"))
    [position] = await okx.fetch_positions([PERP])
    assert position["info"]["mgnRatio"] == row["mgnRatio"]  # the account's


async def test_a_cross_order_beyond_the_accounts_available_equity_is_refused(
    emulator: OkxEmulator, okx: Any
) -> None:
    hold(emulator, 1, 0)
    # 1x: the initial margin is the whole notional, the coins carry 95 % of it
    with pytest.raises(ccxt.InsufficientFunds, match="51008"):
        await short(okx, "1", leverage=1)
    emulator.set_balance("USDT", D(3500))
    await short(okx, "1", leverage=1, cl_id="s2")
    assert emulator.position("BTC-USDT-SWAP") == -100


async def test_a_cross_short_the_coins_back_has_the_accounts_liquidation_price(
    emulator: OkxEmulator, okx: Any
) -> None:
    hold(emulator, 1, 100)
    await short(okx, "1", leverage=2)
    [position] = await okx.fetch_positions([PERP])
    # 0.95 p + (100 - fee) + (entry - p) = (mmr + fee) p
    fee = BID * D("0.0005")
    expected = (D(100) - fee + BID) / (D("0.05") + NEEDED)
    assert abs(D(str(position["liquidationPrice"])) - expected) < 1, expected
    # A quarter of the coins hedged: no price of BTC alone liquidates the account.
    params = {"marginMode": "cross", "reduceOnly": True, "clOrdId": "b1"}
    await okx.create_order(PERP, "market", "buy", 75, None, params)
    [position] = await okx.fetch_positions([PERP])
    assert position["liquidationPrice"] is None


async def test_the_venue_closes_every_cross_position_at_a_margin_ratio_of_100_percent(
    emulator: OkxEmulator, okx: Any
) -> None:
    hold(emulator, 1, 100)
    await short(okx, "3")  # three times the coins: the account is short 2 BTC net
    [position] = await okx.fetch_positions([PERP])
    liquidation = D(str(position["liquidationPrice"]))
    assert 80000 < liquidation < 95000
    emulator.set_price("BTC", liquidation - 100)
    assert emulator.liquidations() == []
    assert 1 < D((await account(okx))["mgnRatio"]) < D("1.2")  # near: 100 below it
    emulator.set_price("BTC", liquidation + 100)
    [(_, adj_eq, needed)] = emulator.liquidations()
    assert adj_eq <= needed
    assert emulator.position("BTC-USDT-SWAP") == 0
    assert await okx.fetch_positions([PERP]) == []
    bills = await okx.privateGetAccountBills({"type": "5"})
    [bill] = bills["data"]
    assert (bill["subType"], bill["instId"], bill["mgnMode"]) == ("105", "BTC-USDT-SWAP", "cross")
