"""The funding cursor moves only after the payments are committed: when the store fails
while writing them, the next cycle collects the same payments again — none lost, none
counted twice — on the paper venue and through ccxt against the Binance emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import Clock, FakeClock, SystemClock
from bot.domain.models import FundingPayment
from bot.exchange.ccxt_gateway import CcxtGateway
from bot.exchange.feeds import ManualFeed
from bot.service.wiring import BuiltDaemon, build_daemon
from bot.store.errors import StoreUnavailable
from bot.store.repository import Repository
from tests.scenarios.on_binance import binance_settings
from tests.support.builders import open_daemon, pair, settings
from tests.support.emulators.binance import BinanceEmulator

D = Decimal
PERP = "BTC/USDT:USDT"


class FundingOutage(Repository):
    """A repository whose funding write fails while ``down`` (the database went away in
    the middle of the cycle); every other write goes through."""

    down = False

    async def record_fundings(
        self, venue: str, payments: Sequence[tuple[str, FundingPayment]]
    ) -> list[tuple[str, FundingPayment]]:
        if self.down and payments:
            raise StoreUnavailable("database unavailable while storing funding payments")
        return await super().record_fundings(venue, payments)


async def test_paper_funding_survives_a_failed_write(engine: AsyncEngine) -> None:
    clock = FakeClock()  # 2026-01-01 00:00 UTC; funding every 8 h
    repository = FundingOutage(engine, clock)
    feed = ManualFeed({"BTC": D(60000)}, funding_rates={"BTC": D("0.0001")})
    daemon, _ = await open_daemon(settings([pair("BTC")]), repository, clock, feed)
    await daemon.run_cycle(1)  # 1 BTC short at 60,000

    clock.advance(8 * 3600)  # 08:00: the short receives 1 x 60,000 x 0.0001 = 6 USDT
    repository.down = True
    with pytest.raises(StoreUnavailable):  # the daemon's loop skips such a cycle
        await daemon.run_cycle(2)
    assert await repository.funding_total("BTC") == D(0)

    repository.down = False
    clock.advance(10)
    await daemon.run_cycle(3)
    clock.advance(10)
    await daemon.run_cycle(4)

    assert await repository.funding_total("BTC") == D(6)
    assert len(await repository.audit_events(kind="funding")) == 1


@pytest_asyncio.fixture
async def on_emulator(
    emulator: BinanceEmulator, engine: AsyncEngine
) -> AsyncIterator[tuple[Any, FundingOutage, CcxtGateway]]:
    clock: Clock = SystemClock()
    repository = FundingOutage(engine, clock)
    built: BuiltDaemon = await build_daemon(binance_settings(emulator), repository, clock)
    gateway = built.gateways["main"]
    assert isinstance(gateway, CcxtGateway)
    gateway.funding_poll = timedelta(0)
    await built.daemon.start()
    try:
        yield built.daemon, repository, gateway
    finally:
        await built.close_gateways()


async def test_ccxt_funding_survives_a_failed_write(
    on_emulator: tuple[Any, FundingOutage, CcxtGateway], emulator: BinanceEmulator
) -> None:
    daemon, repository, _ = on_emulator
    await daemon.run_cycle(1)
    emulator.set_funding_rate("BTC", D("0.0001"))
    emulator.settle_funding()

    repository.down = True
    with pytest.raises(StoreUnavailable):  # the daemon's loop skips such a cycle
        await daemon.run_cycle(2)
    assert await repository.funding_total("BTC") == D(0)

    repository.down = False
    await daemon.run_cycle(3)
    await daemon.run_cycle(4)

    assert await repository.funding_total("BTC") > D(0)
    assert len(await repository.audit_events(kind="funding")) == 1
