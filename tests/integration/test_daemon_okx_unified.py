"""Spot as collateral on OKX (issue 15 items 2 and 4): the daemon hedging 1 BTC held in a
multi-currency margin trading account (account level 3) with little USDT, shorting
``BTC/USDT:USDT`` (OKX ``BTC-USDT-SWAP``) cross, through the real ccxt client against
the OKX emulator.

The coins back their own short at BTC's discount rate (0.95, illustrative), so 2x needs
only a few hundred USDT beside them; at 1x the initial margin is the whole notional, of
which the coins carry 95 %: a 1x hedge needs the other 5 % (3,000 USDT) beside them. The
daemon reads the account's ``availEq`` and ``adjEq`` from the one balance request of the
cycle and the position's account-level ``liqPx``. Through +50 % and +100 % within a day
and -50 % (``tests.support.unified_scenarios``): no liquidation, the ratio back in the
band after every cycle, the short never cut, the report's net equal to the account's
change in value. The same account at level 2 (single-currency margin: the USDT-only
view) cannot open the hedge, and with USDT enough for the short's margin alone the guard
cuts it on the rally that the coins, counted at level 3, carry untouched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import SystemClock
from bot.exchange.ccxt_gateway import CcxtGateway
from bot.store.repository import Repository
from tests.support.emulators.okx import OkxEmulator
from tests.support.unified_scenarios import (
    BAND,
    PERP,
    START,
    UnifiedAccount,
    guard_decisions,
    rides_through_the_moves,
    settings,
    stack_builder,
)
from tests.support.venue_harness import OkxHarness

D = Decimal
SWAP = "BTC-USDT-SWAP"
CONTRACT = D("0.01")  # BTC a contract
USDT = D(300)  # little quote: 60,000 of short at 2x margined by the coins


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[OkxEmulator]:
    async with OkxEmulator(demo=True) as emu:  # testnet mode: OKX's demo trading
        emu.set_account_level("3")
        emu.set_balance("BTC", D(1))
        emu.set_balance("USDT", USDT)
        yield emu


def account(emulator: OkxEmulator) -> dict[str, Any]:
    return OkxHarness(emulator).account()


@pytest_asyncio.fixture
async def open_stack(emulator: OkxEmulator, engine: AsyncEngine) -> AsyncIterator[Any]:
    async with stack_builder(Repository(engine, SystemClock()), account(emulator)) as build:
        yield build


def short(emulator: OkxEmulator) -> Decimal:
    return -emulator.position(SWAP) * CONTRACT


def venue(emulator: OkxEmulator) -> UnifiedAccount:
    return UnifiedAccount(
        set_price=lambda price: emulator.set_price("BTC", price),
        settle_funding=emulator.settle_funding,
        short=lambda: short(emulator),
        coins=lambda: emulator.balance("BTC"),
        value=emulator.total_eq,
        liquidations=emulator.liquidations,
    )


@pytest.mark.parametrize(("leverage", "usdt"), [("2", USDT), ("1", D(3500))])
async def test_the_coins_back_their_short_through_plus_100_and_minus_50_percent(
    open_stack: Any, emulator: OkxEmulator, leverage: str, usdt: Decimal
) -> None:
    emulator.set_balance("USDT", usdt)
    stack = await open_stack(leverage)
    distances = await rides_through_the_moves(stack, venue(emulator))
    # Nearest at the top (120,000): (USDT - fee + 59,994) / 0.0545, over 7x the price away.
    assert min(distances) > 7, distances


async def test_the_usdt_only_view_refuses_the_hedge_the_coins_carry(
    open_stack: Any, emulator: OkxEmulator
) -> None:
    emulator.set_account_level("2")  # single-currency margin: USDT alone margins
    stack = await open_stack("2")
    await stack.cycles(2)
    assert short(emulator) < D("0.01")  # 300 USDT pays no hedge worth the name
    assert await stack.repository.audit_events(kind="risk.denied") != []
    emulator.set_account_level("3")
    assert await stack.cycles(2) == [{}, {}]
    assert abs(short(emulator) / emulator.balance("BTC") - 1) <= BAND


async def test_the_margin_view_is_the_accounts_from_the_one_balance_request(
    emulator: OkxEmulator,
) -> None:
    config = settings(account(emulator), "1").accounts["main"]
    gateway = CcxtGateway.from_config("main", config, "testnet", SystemClock())
    try:
        await gateway.load_markets(["BTC/USDT", PERP])
        before = emulator.requests_to("/api/v5/account/balance")
        spot = await gateway.fetch_balances()
        margin = await gateway.fetch_margin_balances()
        assert emulator.requests_to("/api/v5/account/balance") == before + 1
        emulator.set_account_level("2")
        single = (await gateway.fetch_margin_balances())["USDT"]
    finally:
        await gateway.close()
    assert spot["BTC"].total == 1
    collateral = D("0.95") * START + USDT
    assert (margin["USDT"].free, margin["USDT"].total, margin["USDT"].equity) == (
        collateral,
        USDT,
        collateral,
    )
    assert (single.free, single.total, single.equity) == (USDT, USDT, USDT)  # as before


@pytest.mark.parametrize("level", ["2", "3"])
async def test_the_usdt_only_view_cuts_the_short_on_a_rally_the_coins_carry(
    open_stack: Any, emulator: OkxEmulator, level: str
) -> None:
    # Enough USDT for the 2x short's margin alone: 31,000 liquidates near 90,600 at
    # level 2, beyond 1,600,000 with the coins counted (level 3).
    emulator.set_balance("USDT", D(31000))
    emulator.set_account_level(level)
    stack = await open_stack("2")
    assert await stack.cycles(2) == [{}, {}]
    assert short(emulator) == 1
    for price in (D(75000), D(85000)):
        emulator.set_price("BTC", price)
        await stack.cycles(1)
    if level == "3":
        assert await guard_decisions(stack) == []
        assert short(emulator) == 1
    else:
        assert await guard_decisions(stack) != []
        assert short(emulator) < 1  # the guard cut the hedge
    assert emulator.liquidations() == []
