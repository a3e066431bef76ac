"""The daemon hedging coins with Bybit's inverse perpetual (``BTC/USD:BTC``, 1 USD
contracts) through the real ccxt client against the Bybit emulator, a unified account:
the coins and the short's BTC margin are one wallet row, counted once.

1 BTC hedged 1x: the first cycles bring the ratio into the band; through +100 % and
-50 % the USD value of the coins holds within fees and funding, nothing is sent twice,
the ratio is back in the band after each cycle; a restart finds an order of unknown
outcome by its client id. The scenarios are shared with Binance COIN-M
(``tests/support/inverse_binance.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import SystemClock
from bot.config import AccountConfig, Settings
from bot.exchange.ccxt_gateway import CcxtGateway
from bot.exchange.gateway import FatalError
from bot.store.repository import Repository
from tests.support.daemon_stack import DaemonStack, daemon_stacks
from tests.support.emulators.bybit import BybitEmulator, Fault
from tests.support.emulators.bybit._bybit_models import EmulatedMarket
from tests.support.inverse_binance import (
    INVERSE,
    START,
    assert_in_band,
    inverse_settings,
    lost_order_found_after_restart,
    rally_and_crash,
)
from tests.support.venue_harness import open_harness

D = Decimal
COINS = D("1.002")  # the coins; a thousandth or two beside the short pays its fees


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[BybitEmulator]:
    async with BybitEmulator(markets=[EmulatedMarket(base="BTC", inverse=True)]) as emu:
        emu.set_balance("BTC", COINS)
        emu.set_balance("USDT", D(0))
        yield emu


def settings(emulator: BybitEmulator) -> Settings:
    return inverse_settings("bybit", emulator.ccxt_config())


@pytest_asyncio.fixture
async def open_stack(emulator: BybitEmulator, engine: AsyncEngine) -> AsyncIterator[Any]:
    async with daemon_stacks(Repository(engine, SystemClock())) as start:

        async def build() -> DaemonStack:
            return await start(settings(emulator))

        yield build


@dataclass
class BybitBook:
    """The inverse BTCUSD on the Bybit emulator: 1 USD contracts, the coins being the
    unified wallet's BTC equity (wallet + the short's PnL), counted once."""

    emulator: BybitEmulator

    def set_price(self, price: Decimal) -> None:
        self.emulator.set_price("BTC", price)

    def short_face(self) -> Decimal:
        return -self.emulator.position("BTCUSD")

    def coins(self) -> Decimal:
        return self.emulator.coin_equity("BTC")

    def fees(self) -> Decimal:
        return sum((f.fee for o in self.emulator.orders() for f in o.fills), D(0))

    def settle_funding(self) -> None:
        self.emulator.settle_funding()

    def accepted(self) -> list[str]:
        return [
            e.order_link_id or ""
            for e in self.emulator.order_log
            if e.outcome == "accepted" and e.category == "inverse"
        ]


async def test_one_btc_hedged_1x_with_inverse_contracts_keeps_its_usd_value(
    open_stack: Any, emulator: BybitEmulator
) -> None:
    stack = await open_stack()
    assert await stack.cycles(2) == [{}, {}]
    book = BybitBook(emulator)
    # Counted once: about 60,000 contracts for the 1.002 BTC, not twice as many.
    assert_in_band(book, START)
    # Measured: within 31 USD of 60,081 (0.05 %) at every price.
    await rally_and_crash(stack, book, COINS)
    assert book.short_face() == 60120  # one order: the short was never cut
    stored = {o.client_order_id for o in await stack.repository.orders()}
    assert set(book.accepted()) <= stored
    assert emulator.coin_equity("BTC") > 0


async def test_a_restart_finds_an_inverse_order_of_unknown_outcome_by_client_id(
    open_stack: Any, emulator: BybitEmulator
) -> None:
    def add_half_a_coin() -> None:
        emulator.set_balance("BTC", emulator.balance("BTC") + D("0.5"))

    def lose_answers() -> None:
        emulator.inject(Fault.DROP_AFTER_ACCEPT)
        for path in ("/v5/order/realtime", "/v5/order/history"):
            emulator.inject(Fault.SERVER_ERROR, path=path, count=50)

    await lost_order_found_after_restart(
        open_stack, BybitBook(emulator), add_half_a_coin, lose_answers, emulator.clear_faults
    )


@pytest.mark.parametrize("name", ["okx"])
async def test_an_inverse_pair_is_refused_in_one_line_where_the_venue_module_reads_no_coin_wallet(
    name: str,
) -> None:
    harness = await open_harness(name)
    harness.fund()
    account = AccountConfig(**harness.account())
    gateway = CcxtGateway.from_config("main", account, "testnet", SystemClock())
    try:
        with pytest.raises(FatalError, match=rf"inverse \(coin-margined\).*not on {name}") as no:
            await gateway.load_markets(["BTC/USDT", INVERSE])
    finally:
        await gateway.close()
        await harness.close()
    assert "\n" not in str(no.value)
    assert "use a linear contract" in str(no.value)


async def test_bybit_loads_the_inverse_market_as_one_usd_contracts_settled_in_the_coin(
    emulator: BybitEmulator,
) -> None:
    account = settings(emulator).accounts["main"]
    gateway = CcxtGateway.from_config("main", account, "testnet", SystemClock())
    try:
        markets = await gateway.load_markets(["BTC/USDT", INVERSE])
        assert gateway.one_wallet
    finally:
        await gateway.close()
    market = markets[INVERSE]
    assert (market.inverse, market.contract_size, market.amount_step) == (True, D(1), D(1))


async def test_inverse_funding_is_recorded_once_in_the_coin(
    open_stack: Any, emulator: BybitEmulator
) -> None:
    stack = await open_stack()
    stack.gateway.funding_poll = timedelta(0)
    await stack.cycles(2)
    emulator.settle_funding()  # 60,120 contracts short at a 0.0001 rate: BTC received
    await stack.cycles(2)
    [event] = await stack.repository.audit_events(kind="funding")
    assert event.summary.startswith("funding received")
    received = D(60120) / START * D("0.0001")
    assert abs(await stack.repository.funding_total("BTC-coin") - received) < D("1e-12")
    assert "BTC" in event.summary
