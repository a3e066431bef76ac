"""Start-up reads the store while the venue answers its first snapshot (issue 14 item 6):
the two are independent, so neither waits for the other's round trips. A store read that
can only finish once the venue's read has begun would hang a start that did them one
after the other; a venue's error is still raised as is, the store's read stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import FakeClock
from bot.domain.models import Position
from bot.exchange.gateway import FatalError
from bot.exchange.paper import PaperVenue
from bot.service.wiring import build_daemon
from bot.store.repository import Repository
from tests.support import builders

DEADLOCK_GUARD_S = 10  # a start that waits for itself never ends: fail instead of hanging


class Gates:
    """Set by the venue's positions read; what the store's read waits for."""

    venue_read: asyncio.Event
    venue_error: Exception | None
    store_cancelled: bool

    def reset(self) -> None:
        self.venue_read = asyncio.Event()
        self.venue_error: Exception | None = None
        self.store_cancelled = False


GATES = Gates()  # the venue and the store are built by the wiring: they find it here


class GatedVenue(PaperVenue):
    async def fetch_positions(self, symbols: Iterable[str]) -> Mapping[str, Position]:
        GATES.venue_read.set()
        return await super().fetch_positions(symbols)


class GatedRepository(Repository):
    async def last_seen(self) -> dict[str, tuple[Decimal, Decimal]]:
        try:
            await GATES.venue_read.wait()
        except asyncio.CancelledError:
            GATES.store_cancelled = True
            raise
        return await super().last_seen()


@pytest.fixture
def gates() -> Gates:
    GATES.reset()
    return GATES


async def test_the_start_reads_the_store_while_the_venue_answers(
    engine: AsyncEngine, clock: FakeClock, gates: Gates
) -> None:
    config = builders.settings([builders.pair("BTC")])
    built = await build_daemon(
        config, GatedRepository(engine, clock), clock, venue_class=GatedVenue
    )
    try:
        await asyncio.wait_for(built.daemon.start(), DEADLOCK_GUARD_S)
    finally:
        await built.close_gateways()
    assert gates.venue_read.is_set()
    assert not gates.store_cancelled


async def test_a_venue_error_at_start_is_raised_as_is_and_stops_the_store_read(
    engine: AsyncEngine, clock: FakeClock, gates: Gates
) -> None:
    # The store's read waits on the gate the failing venue read never opens.
    gates.venue_error = FatalError("account paper: keys refused")
    config = builders.settings([builders.pair("BTC")])
    built = await build_daemon(
        config, GatedRepository(engine, clock), clock, venue_class=StalledVenue
    )
    try:
        with pytest.raises(FatalError, match="keys refused"):
            await asyncio.wait_for(built.daemon.start(), DEADLOCK_GUARD_S)
    finally:
        await built.close_gateways()
    assert gates.store_cancelled


class StalledVenue(PaperVenue):
    """Fails its positions read without letting the store's read past its gate."""

    async def fetch_positions(self, symbols: Iterable[str]) -> Mapping[str, Position]:
        await asyncio.sleep(0)
        assert GATES.venue_error is not None
        raise GATES.venue_error
