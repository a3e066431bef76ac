"""The composition root: from Settings to a running daemon.

``hedgebot run`` and ``hedgebot plan``, the backtest and the tests all build a daemon
through :func:`open_daemon` (or, where the caller keeps the pieces open itself,
:func:`build_daemon`): the gateways per account (the paper venue, or one ccxt client per
account), the :class:`HedgeDaemon` over them and, for a served daemon, the runtime beside
it (HTTP endpoints, metrics, alerts, systemd). Closing goes in the reverse order.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.config_view import PAPER_ACCOUNT
from bot.domain.paper_account import InMemoryPaperAccountStore, PaperAccountStore
from bot.domain.words import plural
from bot.exchange.gateway import ExchangeGateway, FatalError
from bot.execution.executor import Executor
from bot.service.cycle.accounts import Accounts
from bot.service.cycle.observe import load_listed_markets
from bot.service.daemon import Assessment, HedgeDaemon, default_instance_id
from bot.service.database import open_existing, open_for_reading, prepare_database
from bot.service.errors import ServiceSetupError
from bot.service.runtime import ServiceRuntime, check_http_port
from bot.service.venues import open_exchange_gateways, open_gateways
from bot.store.instance import InstanceLockedError, runs_alone, single_instance
from bot.store.repository import Repository

if TYPE_CHECKING:  # the paper venue and its feeds: imported in paper mode only (venues.py)
    from bot.exchange.feeds import PriceFeed
    from bot.exchange.paper import PaperVenue

log = structlog.get_logger("hedgebot")

SHUTDOWN_GRACE_S = 3.5  # leaves time to record, close and exit inside 5 s


@dataclass(slots=True)
class BuiltDaemon:
    """A daemon and what it was built over."""

    daemon: HedgeDaemon
    repository: Repository
    gateways: dict[str, ExchangeGateway] = field(default_factory=dict)
    runtime: ServiceRuntime | None = None

    @property
    def venue(self) -> PaperVenue:
        """The paper account's venue (paper mode)."""
        from bot.exchange.paper import PaperVenue

        gateway = self.gateways.get(PAPER_ACCOUNT)
        if not isinstance(gateway, PaperVenue):
            raise TypeError(f"no paper venue: the accounts are {sorted(self.gateways)}")
        return gateway

    async def close_gateways(self) -> None:
        """Close every gateway (the paper venue saves its account)."""
        for gateway in self.gateways.values():
            await gateway.close()


async def build_daemon(
    settings: Settings,
    repository: Repository,
    clock: Clock,
    *,
    paper_store: PaperAccountStore | None = None,
    feed: PriceFeed | None = None,
    venue_class: type[PaperVenue] | None = None,
    executor: Executor | None = None,
    instance_id: str | None = None,
    runtime: ServiceRuntime | None = None,
    gateways: dict[str, ExchangeGateway] | None = None,
) -> BuiltDaemon:
    """The gateways ``settings`` asks for (or ``gateways``, opened already) and a daemon
    over them; nothing started.

    The paper account is kept in ``paper_store`` (default: the repository); ``feed`` and
    ``venue_class`` replace the paper venue's price source and class. With a ``runtime``
    the daemon reports its cycles to it and the runtime reads the gateways' limiters."""
    if gateways is None:
        gateways = await open_gateways(
            settings, paper_store or repository, clock, feed=feed, venue_class=venue_class
        )
    daemon = HedgeDaemon(
        settings,
        repository,
        gateways,
        clock,
        executor=executor,
        instance_id=instance_id,
        observer=None if runtime is None else runtime.observer,
    )
    if runtime is not None:
        runtime.watch_gateways(gateways)
    return BuiltDaemon(daemon, repository, gateways, runtime)


@asynccontextmanager
async def open_daemon(
    settings: Settings,
    *,
    clock: Clock,
    repository: Repository,
    paper_store: PaperAccountStore | None = None,
    feed: PriceFeed | None = None,
    venue_class: type[PaperVenue] | None = None,
    instance_id: str | None = None,
    runtime: ServiceRuntime | None = None,
    start: bool = True,
    gateways: dict[str, ExchangeGateway] | None = None,
) -> AsyncIterator[BuiltDaemon]:
    """A started daemon over ``repository``; on exit the runtime, then the gateways close.

    With a ``runtime`` (a served daemon) its HTTP endpoints listen before the gateways
    open and its alerts start before the daemon; once started systemd is told it is
    ready, and a :class:`FatalError` is recorded (``daemon.fatal``) before anything
    closes. ``start=False`` only loads the markets (for a plan, which writes nothing)."""
    built: BuiltDaemon | None = None
    try:
        if runtime is not None:
            await runtime.start_http()
        built = await build_daemon(
            settings,
            repository,
            clock,
            paper_store=paper_store,
            feed=feed,
            venue_class=venue_class,
            instance_id=instance_id,
            runtime=runtime,
            gateways=gateways,
        )
        await _start(built, start)
        yield built
    except FatalError as exc:
        if runtime is not None:
            await repository.append_audit("daemon.fatal", f"hedgebot cannot run: {exc}")
        raise
    finally:
        if runtime is not None:
            await runtime.close()
        if built is not None:
            await built.close_gateways()


async def _start(built: BuiltDaemon, start: bool) -> None:
    if not start:
        await built.daemon.load_markets()
        return
    if built.runtime is not None:
        await built.runtime.start_alerts()
    await built.daemon.start()
    if built.runtime is not None:
        built.runtime.ready()


async def serve(settings: Settings, max_cycles: int | None = None, migrate: bool = False) -> None:
    """``hedgebot run``: the daemon with its runtime until SIGINT/SIGTERM or ``max_cycles``.

    Raises :class:`ServiceSetupError` (one line) when it cannot start as configured."""
    clock = SystemClock()
    instance_id = default_instance_id()
    # What can refuse the start is checked before the database is created or migrated.
    check_http_port(settings.http)
    try:
        gateways = await checked_exchange_gateways(settings, clock)
    except ServiceSetupError as exc:
        await _audit_refused_start(settings.database_url, clock, str(exc))
        raise
    try:
        engine = await prepare_database(settings.database_url, migrate)
    except BaseException:
        await _close(gateways)
        raise
    try:
        async with single_instance(
            engine,
            settings.database_url,
            shared=not runs_alone(settings.database_url, settings.mode),
            instance_id=instance_id,
        ):
            repository = Repository(engine, clock)
            await _serve_locked(settings, repository, clock, instance_id, max_cycles, gateways)
    except InstanceLockedError as exc:
        raise ServiceSetupError(str(exc)) from None
    finally:
        await _close(gateways)  # closed by the daemon when it ran; closing again is harmless
        await engine.dispose()


async def checked_exchange_gateways(
    settings: Settings, clock: Clock
) -> dict[str, ExchangeGateway] | None:
    """Testnet or live: the accounts' gateways with every pair's market loaded, the keys
    and the venue's capabilities checked (the first load with keys does that); a symbol
    no venue lists is a :class:`ServiceSetupError`. None in paper mode (its pairs are
    checked with the config). The daemon then starts on these gateways, from the
    markets their clients hold."""
    if settings.mode == "paper":
        return None
    try:
        gateways = await open_exchange_gateways(settings, clock)
    except FatalError as exc:  # the config asks for what the venue cannot do
        raise ServiceSetupError(str(exc)) from None
    try:
        await load_listed_markets(Accounts(settings, gateways), clock)
    except FatalError as exc:  # keys refused, a capability missing: the config's to fix
        await _close(gateways)
        raise ServiceSetupError(str(exc)) from None
    except BaseException:
        await _close(gateways)
        raise
    return gateways


async def _audit_refused_start(url: str, clock: Clock, reason: str) -> None:
    """An exchange that refuses the start (keys refused, a market it does not list) is
    audited as ``daemon.fatal`` in a database that holds hedgebot's schema already, where
    its operator reads why the daemon is not running; no database is created for it."""
    try:
        engine = await open_existing(url)
    except ServiceSetupError:
        return  # no database yet, or one this daemon cannot use: nothing is written
    try:
        await Repository(engine, clock).append_audit(
            "daemon.fatal", f"hedgebot cannot run: {reason}"
        )
    except Exception as exc:  # the refusal is said on stderr all the same
        log.warning("daemon.fatal_not_audited", error=str(exc))
    finally:
        await engine.dispose()


async def _close(gateways: Mapping[str, ExchangeGateway] | None) -> None:
    for gateway in (gateways or {}).values():
        await gateway.close()


async def _serve_locked(
    settings: Settings,
    repository: Repository,
    clock: Clock,
    instance_id: str,
    max_cycles: int | None,
    gateways: dict[str, ExchangeGateway] | None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    reason = "stopped"
    try:
        async with open_daemon(
            settings,
            clock=clock,
            repository=repository,
            instance_id=instance_id,
            runtime=ServiceRuntime(settings, repository),
            gateways=gateways,
        ) as built:
            reason = await run_until_stopped(built, stop, max_cycles)
    except FatalError as exc:
        reason = f"fatal: {exc}"
        raise ServiceSetupError(str(exc)) from None
    finally:
        log.info("daemon.exit", reason=reason)


async def run_until_stopped(built: BuiltDaemon, stop: asyncio.Event, max_cycles: int | None) -> str:
    """Run cycles until ``stop`` or ``max_cycles``, then stop the daemon; returns why.

    A signal lets the cycle in flight finish (an order's answer is awaited and recorded),
    but not for longer than the grace: systemd and Docker kill later."""
    first_cycle = await built.repository.last_cycle() + 1
    running = asyncio.create_task(built.daemon.run(stop, max_cycles, first_cycle=first_cycle))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    try:
        cycles = await asyncio.wait_for(asyncio.shield(running), timeout=SHUTDOWN_GRACE_S)
        reason = "signal" if stop.is_set() else f"ran {plural(cycles, 'cycle')}"
    except TimeoutError:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        reason = f"signal; the cycle in flight was cut after {SHUTDOWN_GRACE_S:g} s"
    if built.runtime is not None:
        built.runtime.stopping(reason)
    await built.daemon.stop(reason)
    return reason


async def plan(settings: Settings) -> list[Assessment]:
    """``hedgebot plan``: what every pair would do now; sends nothing, writes nothing.

    Without a database yet it plans from a throw-away one; a paper account is read into
    a copy, so planning moves neither its feed nor its state."""
    clock = SystemClock()
    engine = await open_for_reading(settings.database_url)
    try:
        repository = Repository(engine, clock)
        store: PaperAccountStore = repository
        if settings.mode == "paper":
            store = InMemoryPaperAccountStore()
            saved = await repository.load_paper_account(PAPER_ACCOUNT)
            if saved is not None:
                await store.save_paper_account(PAPER_ACCOUNT, saved)
        async with open_daemon(
            settings, clock=clock, repository=repository, paper_store=store, start=False
        ) as built:
            return await built.daemon.plan()
    finally:
        await engine.dispose()
