"""The daemon hedging coins with Binance COIN-M's inverse perpetual (``BTC/USD:BTC``,
``BTCUSD_PERP``, 100 USD contracts) through the real ccxt client against the Binance
emulator: the coins sit in the COIN-M wallet, apart from spot, and margin the short.

~1 BTC hedged 1x: the first cycles bring the ratio into the band; through 60,000 ->
120,000 -> 30,000 the USD value of the coins holds within fees and funding, no
liquidation, nothing sent twice; a restart finds an order of unknown outcome by its
client id and never resends it; funding is recorded in BTC. Coins left in spot only stop
the start in one line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import SystemClock
from bot.exchange.ccxt_gateway import CcxtGateway
from bot.exchange.gateway import FatalError
from bot.store.repository import Repository
from tests.support.daemon_stack import DaemonStack, daemon_stacks
from tests.support.emulators.binance import BinanceEmulator, Fault
from tests.support.emulators.binance._binance_coinm import DEFAULT_COINM_MARKETS
from tests.support.inverse_binance import (
    COINM_ID,
    INVERSE,
    START,
    CoinmBook,
    assert_in_band,
    coinm_settings,
    lost_order_found_after_restart,
    rally_and_crash,
)

D = Decimal
COINS = D("1.002")  # the coins; a thousandth or two beside the short pays its fees


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[BinanceEmulator]:
    async with BinanceEmulator(coinm_markets=DEFAULT_COINM_MARKETS) as emu:
        emu.set_coinm_balance("BTC", COINS)  # moved spot -> COIN-M by the user
        yield emu


@pytest_asyncio.fixture
async def open_stack(emulator: BinanceEmulator, engine: AsyncEngine) -> AsyncIterator[Any]:
    async with daemon_stacks(Repository(engine, SystemClock())) as start:

        async def build(**pair: Any) -> DaemonStack:
            return await start(coinm_settings(emulator, **pair))

        yield build


async def test_one_btc_hedged_1x_on_coinm_keeps_its_usd_value_through_a_rally_and_a_crash(
    open_stack: Any, emulator: BinanceEmulator
) -> None:
    stack = await open_stack()
    assert await stack.cycles(2) == [{}, {}]
    book = CoinmBook(emulator)
    assert_in_band(book, START)
    assert book.short_face() == 60100  # 601 contracts: ~1.002 BTC at 60,000, no more
    await rally_and_crash(stack, book, COINS)
    assert book.short_face() == 60100  # the short was never cut
    assert emulator.coinm_liquidations == []
    stored = {o.client_order_id for o in await stack.repository.orders()}
    assert set(book.accepted()) <= stored
    assert not emulator.unknown_requests


async def test_a_restart_finds_a_coinm_order_of_unknown_outcome_by_client_id(
    open_stack: Any, emulator: BinanceEmulator
) -> None:
    def add_half_a_coin() -> None:
        emulator.set_coinm_balance("BTC", emulator.coinm_balance("BTC") + D("0.5"))

    def lose_answers() -> None:
        emulator.inject(Fault.DROP_AFTER_ACCEPT)
        emulator.inject(Fault.SERVER_ERROR, path="/dapi/v1/order", method="GET", count=50)

    await lost_order_found_after_restart(
        open_stack, CoinmBook(emulator), add_half_a_coin, lose_answers, emulator.clear_faults
    )


async def test_coinm_funding_is_recorded_once_in_btc(
    open_stack: Any, emulator: BinanceEmulator
) -> None:
    stack = await open_stack()
    stack.gateway.funding_poll = timedelta(0)
    await stack.cycles(2)
    emulator.settle_funding()  # 601 contracts short at a 0.0001 rate: BTC received
    await stack.cycles(2)
    [event] = await stack.repository.audit_events(kind="funding")
    assert event.summary.startswith("funding received")
    assert "BTC" in event.summary
    received = D(60100) / START * D("0.0001")
    assert abs(await stack.repository.funding_total("BTC-coin") - received) < D("1e-12")


async def test_coins_in_spot_only_stop_the_start_in_one_line(
    open_stack: Any, emulator: BinanceEmulator
) -> None:
    emulator.set_coinm_balance("BTC", D(0))
    emulator.set_spot_balance("BTC", COINS)
    with pytest.raises(FatalError, match="coin-margined futures wallet") as refused:
        await open_stack()
    assert "\n" not in str(refused.value)
    assert "transfer the BTC" in str(refused.value)
    assert not [e for e in emulator.order_log if e.venue == "coinm"]


async def test_coins_split_between_spot_and_coinm_are_all_hedged(
    open_stack: Any, emulator: BinanceEmulator
) -> None:
    """Spot's coins count with COIN-M's (the pair's coins, wherever the user keeps them):
    0.5 BTC left in spot beside 1.002 in COIN-M is hedged at 2x of the COIN-M wallet."""
    emulator.set_spot_balance("BTC", D("0.5"))
    stack = await open_stack()
    assert await stack.cycles(2) == [{}, {}]
    book = CoinmBook(emulator)
    assert_in_band(book, START)
    assert book.short_face() > D("1.45") * START


async def test_binance_loads_coinm_as_100_usd_contracts_and_reads_its_wallet_apart(
    emulator: BinanceEmulator,
) -> None:
    account = coinm_settings(emulator).accounts["main"]
    gateway = CcxtGateway.from_config("main", account, "testnet", SystemClock())
    try:
        markets = await gateway.load_markets(["BTC/USDT", INVERSE, "BTC/USDT:USDT"])
        assert not gateway.one_wallet
        margin = await gateway.fetch_margin_balances()
        positions = await gateway.fetch_positions([INVERSE, "BTC/USDT:USDT"])
    finally:
        await gateway.close()
    market = markets[INVERSE]
    assert (market.inverse, market.contract_size, market.amount_step) == (True, D(100), D(1))
    assert margin["BTC"].total == COINS  # COIN-M's row, not USDⓈ-M's
    assert positions == {}
    assert emulator.requests_to("/dapi/v1/account") == 1
    assert emulator.requests_to("/dapi/v1/positionRisk") == 1
    assert emulator.coinm_position(COINM_ID) == 0
