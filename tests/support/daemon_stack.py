"""A started daemon over a repository, run cycle by cycle: the scaffold of the end-to-end
tests on the venues' emulators (tests/integration/test_daemon_emulator.py and
test_daemon_venues.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from bot.clock import SystemClock
from bot.config import Settings
from bot.exchange.ccxt_gateway import CcxtGateway
from bot.service.daemon import HedgeDaemon
from bot.service.wiring import BuiltDaemon, build_daemon
from bot.store.repository import Repository


class DaemonStack:
    """One started daemon; its cycles are numbered on from the repository's last."""

    def __init__(self, built: BuiltDaemon, repository: Repository, cycle: int) -> None:
        self.built = built
        self.daemon: HedgeDaemon = built.daemon
        self.repository = repository
        self.cycle = cycle

    @property
    def gateway(self) -> CcxtGateway:
        """The gateway of the account ``main``."""
        gateway = self.built.gateways["main"]
        assert isinstance(gateway, CcxtGateway)
        return gateway

    async def cycles(self, count: int, pause_s: float = 0.0) -> list[dict[str, str]]:
        """Run ``count`` cycles (``pause_s`` apart); each cycle's pair errors."""
        errors = []
        for _ in range(count):
            self.cycle += 1
            report = await self.daemon.run_cycle(self.cycle)
            errors.append(report.errors)
            if pause_s:
                await asyncio.sleep(pause_s)
        return errors


@asynccontextmanager
async def daemon_stacks(
    repository: Repository,
) -> AsyncIterator[Callable[[Settings], Awaitable[DaemonStack]]]:
    """``start(settings)`` builds and starts a daemon (a restart when one ran before on
    the repository); every gateway opened is closed on exit."""
    opened: list[BuiltDaemon] = []

    async def start(settings: Settings) -> DaemonStack:
        built = await build_daemon(settings, repository, SystemClock())
        opened.append(built)
        await built.daemon.start()
        return DaemonStack(built, repository, await repository.last_cycle())

    try:
        yield start
    finally:
        for built in opened:
            await built.close_gateways()
