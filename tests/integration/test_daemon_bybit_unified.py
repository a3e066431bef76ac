"""Spot as collateral through ccxt (issue 15 items 2 and 4): the daemon hedging 1 BTC held
on a Bybit unified account with little USDT, shorting ``BTC/USDT:USDT`` in cross margin,
through the real ccxt client against the Bybit emulator.

The coins back their own short at BTC's collateral value ratio (0.95), so 2x needs only
a few hundred USDT beside them; at 1x the initial margin is the whole notional, of which
the coins carry 95 %: a 1x hedge needs the other 5 % (3,000 USDT) in quote or other
collateral, and Bybit refuses it (110007) without: the daemon caps the short to what the
available balance pays and says so, then denies the rest until the margin is there. The daemon reads
the account's available balance and margin balance (``totalAvailableBalance``,
``totalMarginBalance``) from the one wallet request of the cycle and the position's
account-level ``liqPrice``. Through +50 % and +100 % within a day and -50 %: no
liquidation, the ratio back in the band after every cycle, the short never cut, and the
report's spot + perp + funding - fees equal to the account's change in value. The same
account with BTC's collateral switched off (the USDT-only view) cannot open the hedge,
and with USDT enough for the short's margin alone the guard cuts it on the rally that
the coins, counted, carry untouched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import SystemClock
from bot.config import Settings
from bot.exchange.ccxt_gateway import CcxtGateway
from bot.store.repository import Repository
from tests.support import unified_scenarios as unified
from tests.support.emulators.bybit import BybitEmulator
from tests.support.unified_scenarios import BAND, PERP, START, UnifiedAccount

D = Decimal
USDT = D(300)  # little quote: 60,000 of short at 2x margined by the coins


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[BybitEmulator]:
    async with BybitEmulator() as emu:
        emu.set_balance("BTC", D(1))
        emu.set_balance("USDT", USDT)
        yield emu


def settings(emulator: BybitEmulator, leverage: str) -> Settings:
    return unified.settings(emulator.daemon_account(), leverage)


@pytest_asyncio.fixture
async def open_stack(emulator: BybitEmulator, engine: AsyncEngine) -> AsyncIterator[Any]:
    repository = Repository(engine, SystemClock())
    async with unified.stack_builder(repository, emulator.daemon_account()) as build:
        yield build


def ratio(emulator: BybitEmulator) -> Decimal:
    return -emulator.position("BTCUSDT") / emulator.balance("BTC")


def venue(emulator: BybitEmulator) -> UnifiedAccount:
    return UnifiedAccount(
        set_price=lambda price: emulator.set_price("BTC", price),
        settle_funding=emulator.settle_funding,
        short=lambda: -emulator.position("BTCUSDT"),
        coins=lambda: emulator.balance("BTC"),
        value=lambda: emulator.account_figures().equity,
        liquidations=emulator.liquidations,
    )


@pytest.mark.parametrize(("leverage", "usdt"), [("2", USDT), ("1", D(3500))])
async def test_the_coins_back_their_short_through_plus_100_and_minus_50_percent(
    open_stack: Any, emulator: BybitEmulator, leverage: str, usdt: Decimal
) -> None:
    emulator.set_balance("USDT", usdt)
    stack = await open_stack(leverage)
    distances = await unified.rides_through_the_moves(stack, venue(emulator))
    # Nearest at the top (120,000): (USDT - fee + 59,994) / 0.055, over 7x the price away.
    assert min(distances) > 7, distances


async def test_the_usdt_only_view_refuses_the_hedge_the_coins_carry(
    open_stack: Any, emulator: BybitEmulator
) -> None:
    emulator.set_collateral("BTC", False)  # as if the coins backed nothing
    stack = await open_stack("2")
    assert await stack.cycles(2) == [{}, {}]
    # 300 USDT pays 0.009 BTC of short at 2x with the fee, no more; then nothing is sent.
    assert emulator.position("BTCUSDT") == D("-0.009")
    assert await stack.repository.audit_events(kind="order.rejected") == []
    [denied] = await stack.repository.audit_events(kind="risk.denied")
    assert "cannot pay the smallest order" in denied.summary, denied.summary
    emulator.set_collateral("BTC", True)
    assert await stack.cycles(2) == [{}, {}]
    assert abs(ratio(emulator) - 1) <= BAND


async def test_the_margin_view_is_the_accounts_from_the_one_wallet_request(
    emulator: BybitEmulator,
) -> None:
    account = settings(emulator, "1").accounts["main"]
    gateway = CcxtGateway.from_config("main", account, "testnet", SystemClock())
    try:
        await gateway.load_markets(["BTC/USDT", PERP])
        before = emulator.requests_to("/v5/account/wallet-balance")
        spot = await gateway.fetch_balances()
        margin = await gateway.fetch_margin_balances()
        assert emulator.requests_to("/v5/account/wallet-balance") == before + 1
        emulator.set_collateral("BTC", False)
        usdt_only = (await gateway.fetch_margin_balances())["USDT"]
        emulator.set_collateral("BTC", True)
        await gateway.set_margin_mode(PERP, "isolated")  # the account-wide fields empty
        isolated = (await gateway.fetch_margin_balances())["USDT"]
    finally:
        await gateway.close()
    assert spot["BTC"].total == 1
    collateral = D("0.95") * START + USDT
    assert (margin["USDT"].free, margin["USDT"].total, margin["USDT"].equity) == (
        collateral,
        USDT,
        collateral,
    )
    assert (usdt_only.free, usdt_only.equity) == (USDT, USDT)
    assert (isolated.total, isolated.equity) == (USDT, USDT)  # the USDT row, as before


@pytest.mark.parametrize("coins_count", [False, True])
async def test_the_usdt_only_view_cuts_the_short_on_a_rally_the_coins_carry(
    open_stack: Any, emulator: BybitEmulator, coins_count: bool
) -> None:
    # Enough USDT for the 2x short's margin alone: 31,000 liquidates near 90,500 without
    # the coins, beyond 1,000,000 with them.
    emulator.set_balance("USDT", D(31000))
    emulator.set_collateral("BTC", coins_count)
    stack = await open_stack("2")
    assert await stack.cycles(2) == [{}, {}]
    short = emulator.position("BTCUSDT")
    assert short == -1
    for price in (D(75000), D(85000)):
        emulator.set_price("BTC", price)
        await stack.cycles(1)
    guard = [
        e
        for e in await stack.repository.audit_events(kind="decision")
        if e.summary.startswith("liquidation guard")
    ]
    if coins_count:
        assert guard == []
        assert emulator.position("BTCUSDT") == short
    else:
        assert guard != []
        assert emulator.position("BTCUSDT") > short  # the guard cut the hedge
    assert emulator.liquidations() == []


async def test_a_1x_hedge_the_margin_cannot_pay_is_capped_not_refused_every_cycle(
    open_stack: Any, emulator: BybitEmulator
) -> None:
    # 1 BTC and 300 USDT at 1x: the coins carry 95 % of the short's initial margin, so
    # the available balance (57,300) pays about 0.95 BTC of short with its taker fee.
    stack = await open_stack("1")
    assert await stack.cycles(3) == [{}, {}, {}]
    assert await stack.repository.audit_events(kind="order.rejected") == []
    short = -emulator.position("BTCUSDT")
    assert D("0.95") <= short < D("0.96"), short
    decisions = await stack.repository.audit_events(kind="decision")
    capped = [e for e in decisions if "capped by free margin" in e.summary]
    assert capped, [e.summary for e in decisions]
    assert "USDT at 1x" in capped[0].summary, capped[0].summary
    # What is left cannot pay one more amount step: denied, saying what to do.
    denied = await stack.repository.audit_events(kind="risk.denied")
    assert denied, [e.summary for e in await stack.repository.audit_events()]
    assert "free margin" in denied[-1].summary, denied[-1].summary
    assert "raise the leverage" in denied[-1].summary, denied[-1].summary
    assert emulator.position("BTCUSDT") == -short  # nothing more was sent
