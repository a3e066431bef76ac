"""Margin moves like orders (issue 12, item 8): the liquidation guard's margin transfer has a
client id derived from its decision and is stored as an intent before it is sent; a lost
answer, or a daemon that dies between the intent and the outcome, is resolved by looking
the transfer up in the venue's margin history (Binance GET /fapi/v1/positionMargin/history),
never by sending it again.

The daemon runs on the Binance emulator through the real ccxt client. A "crash" is a
``ProcessKilled`` raised inside the gateway call, before or after the request reaches the
exchange: nothing of the dead daemon runs after it; a new daemon is built on the same
database, as a restart would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import SystemClock
from bot.config import Settings
from bot.exchange.ccxt_gateway import CcxtGateway
from bot.service.daemon import CycleReport, HedgeDaemon
from bot.service.wiring import BuiltDaemon, build_daemon
from bot.store.repository import Repository
from tests.support.builders import emulator_pair, emulator_settings
from tests.support.emulators.binance import BinanceEmulator
from tests.support.emulators.binance._binance_models import Fault

D = Decimal
PERP = "BTC/USDT:USDT"
MARGIN_PATH = "/fapi/v1/positionMargin"


class ProcessKilled(BaseException):
    """The daemon's process dies here: no handler of the daemon's runs after it."""


def guarded_settings(emulator: BinanceEmulator) -> Settings:
    # The emulator shows a margin change in its history at once: a transfer it has not
    # shown order_settle_s (1 s) after its intent was stored was never sent.
    return emulator_settings(emulator, [emulator_pair()], {"on_liquidation_risk": "add_margin"})


class Restarts:
    """Daemons on one database and one emulator, as successive starts of ``hedgebot run``."""

    def __init__(self, emulator: BinanceEmulator, repository: Repository) -> None:
        self.emulator = emulator
        self.repository = repository
        self.built: list[BuiltDaemon] = []

    async def start(self) -> tuple[HedgeDaemon, CcxtGateway]:
        built = await build_daemon(guarded_settings(self.emulator), self.repository, SystemClock())
        self.built.append(built)
        await built.daemon.start()
        gateway = built.gateways["main"]
        assert isinstance(gateway, CcxtGateway)
        return built.daemon, gateway

    async def close(self) -> None:
        for built in self.built:
            await built.close_gateways()


@pytest_asyncio.fixture
async def restarts(emulator: BinanceEmulator, engine: AsyncEngine) -> AsyncIterator[Restarts]:
    emulator.set_spot_balance("BTC", D(1))
    # A wallet large enough that every start picks leverage 1: a restart that changed the
    # leverage of the open isolated position would move its liquidation price by itself.
    emulator.set_futures_balance("USDT", D(1000000))
    runs = Restarts(emulator, Repository(engine, SystemClock()))
    yield runs
    await runs.close()


async def hedged_near_liquidation(
    emulator: BinanceEmulator, daemon: HedgeDaemon, gateway: CcxtGateway
) -> None:
    """Cycle 1 opens the 1 BTC short (at 1x); then the mark rises to 8 % under its
    liquidation price, inside min_liquidation_distance 0.1: the guard adds margin."""
    await daemon.run_cycle(1)
    assert emulator.position(PERP) == D(-1)
    liquidation = (await gateway.fetch_positions([PERP]))[PERP].liquidation_price
    assert liquidation is not None
    emulator.set_price("BTC", (liquidation / D("1.08")).quantize(D("0.1")))


async def killed_while_adding_margin(
    restarts: Restarts, monkeypatch: pytest.MonkeyPatch, *, after_sending: bool
) -> CycleReport:
    """A daemon hedges, the guard decides a margin transfer in its cycle 2, and the process
    dies inside the gateway's add_margin: before the request leaves, or after the exchange
    applied it (its answer never read)."""
    daemon, gateway = await restarts.start()
    await hedged_near_liquidation(restarts.emulator, daemon, gateway)
    send = gateway.add_margin

    async def add_margin(symbol: str, amount: Decimal) -> None:
        if after_sending:
            await send(symbol, amount)
        raise ProcessKilled

    monkeypatch.setattr(gateway, "add_margin", add_margin)
    return await daemon.run_cycle(2)


async def margin_audit(repository: Repository) -> list[str]:
    return [e.kind for e in await repository.audit_events() if e.kind.startswith("margin.")]


async def test_a_dropped_answer_is_looked_up_and_the_margin_moves_once(
    restarts: Restarts, emulator: BinanceEmulator
) -> None:
    daemon, gateway = await restarts.start()
    await hedged_near_liquidation(emulator, daemon, gateway)
    emulator.inject(Fault.DROP_AFTER_ACCEPT, path=MARGIN_PATH, method="POST")

    report = await daemon.run_cycle(2)
    await daemon.run_cycle(3)

    assert len(emulator.margin_log) == 1
    assert emulator.requests_to(MARGIN_PATH, "POST") == 1
    [transfer] = await restarts.repository.margin_transfers()
    assert transfer.state == "done"
    assert transfer.amount == emulator.margin_log[0].amount
    assert report.actions["BTC"] == "add_margin done"
    assert await margin_audit(restarts.repository) == [
        "margin.intent",
        "margin.sent",
        "margin.unknown",
        "margin.done",
    ]


async def test_a_daemon_killed_after_sending_finds_the_transfer_at_restart_and_sends_nothing(
    restarts: Restarts, emulator: BinanceEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = await killed_while_adding_margin(restarts, monkeypatch, after_sending=True)
    assert "ProcessKilled" in report.errors["BTC"]
    assert len(emulator.margin_log) == 1

    restarted, _ = await restarts.start()
    await restarted.run_cycle(1)
    await restarted.run_cycle(2)

    assert len(emulator.margin_log) == 1
    assert emulator.requests_to(MARGIN_PATH, "POST") == 1
    [transfer] = await restarts.repository.margin_transfers()
    assert transfer.state == "done"
    assert transfer.venue_time is not None
    assert await margin_audit(restarts.repository) == [
        "margin.intent",
        "margin.sent",
        "margin.done",
    ]


async def test_a_daemon_killed_before_sending_moves_nothing_and_the_next_start_decides_again(
    restarts: Restarts, emulator: BinanceEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    await killed_while_adding_margin(restarts, monkeypatch, after_sending=False)
    assert emulator.margin_log == []
    await asyncio.sleep(1.1)  # past order_settle_s: the history would show it by now

    restarted, _ = await restarts.start()
    report = await restarted.run_cycle(1)

    lost, fresh = await restarts.repository.margin_transfers()
    assert lost.state == "failed"
    assert "not sent" in (lost.reason or "")
    assert fresh.state == "done"
    assert fresh.client_id != lost.client_id
    assert report.actions["BTC"] == "add_margin done"
    assert len(emulator.margin_log) == 1  # the fresh decision's, once
    assert emulator.margin_log[0].amount == fresh.amount
