"""Health, readiness and metrics over HTTP (aiohttp): ``/healthz``, ``/readyz``, ``/metrics``.

The read-only dashboard (bot/service/dashboard.py: ``/dashboard/`` and ``/api/…``) is
served beside them unless ``[http] dashboard = false``.

``/healthz`` answers 200 while the process runs (Docker's HEALTHCHECK, a liveness probe).
``/readyz`` answers 200 only when the daemon is doing its job — a recent cycle without
errors, the database answering, no pair failing — and 503 with the reasons in JSON
otherwise. ``/metrics`` is Prometheus' text format.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.config import HttpConfig
from bot.domain.controls import PairControl
from bot.service.daemon import CycleReport
from bot.service.dashboard import DashboardApi
from bot.service.metrics import DaemonMetrics
from bot.store.errors import StoreUnavailable

log = structlog.get_logger(__name__)

DATABASE_PING_TIMEOUT_S = 2.0
# A cycle may run this long on top of the poll interval before the data counts as stale.
FRESHNESS_GRACE_S = 30.0


class Database(Protocol):
    """What readiness asks of the store."""

    async def ping(self) -> None:
        """Return when the database answers; raise StoreUnavailable when it cannot."""
        ...

    async def pair_controls(self) -> Mapping[str, PairControl]:
        """The stored pauses and resumes, by pair ("*": every pair)."""
        ...


class ServiceHealth:
    """What ``/readyz`` judges from: the cycles' outcomes; a CycleObserver."""

    def __init__(
        self,
        pairs: Sequence[str],
        poll_interval_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pairs = list(pairs)
        self._monotonic = monotonic
        # Two missed cycles and a slow one: the data is stale.
        self.stale_after_s = 2 * poll_interval_s + FRESHNESS_GRACE_S
        self._last_ok: float | None = None
        self._last_cycle: int | None = None
        self._failed: dict[str, str] = {}
        self.pairs: tuple[str, ...] = tuple(pairs)
        self._auto_paused: dict[str, str] = {}

    def cycle_started(self, cycle: int) -> None:
        """Readiness changes only when a cycle ends."""

    def cycle_finished(self, report: CycleReport, duration_s: float) -> None:
        """Remember when the last clean cycle ended and which pairs failed in this one."""
        self._last_cycle = report.cycle
        self._failed = dict(report.errors)
        self._auto_paused = dict(report.auto_paused)
        if not report.errors:
            self._last_ok = self._monotonic()

    def reasons(self) -> list[str]:
        """Why the daemon is not ready; empty when it is."""
        reasons: list[str] = []
        if self._last_ok is None:
            reasons.append(
                "no cycle has finished without errors yet"
                + (f" (last cycle {self._last_cycle})" if self._last_cycle is not None else "")
            )
        else:
            age = self._monotonic() - self._last_ok
            if age > self.stale_after_s:
                reasons.append(
                    f"data stale: last cycle without errors ended {age:.0f} s ago "
                    f"(limit {self.stale_after_s:.0f} s)"
                )
        for pair, error in sorted(self._failed.items()):
            name = "every pair" if pair == "*" else f"pair {pair}"
            reasons.append(f"{name} failed in the last cycle: {error}")
        for pair, why in sorted(self._auto_paused.items()):
            reasons.append(f"pair {pair} paused itself: {why}; `hedgebot resume {pair}`")
        return reasons


class HttpService:
    """The aiohttp server; :meth:`start` binds, :meth:`stop` closes it."""

    def __init__(
        self,
        config: HttpConfig,
        health: ServiceHealth,
        metrics: DaemonMetrics,
        database: Database,
        dashboard: DashboardApi | None = None,
    ) -> None:
        self._config = config
        self._health = health
        self._metrics = metrics
        self._database = database
        self._dashboard = dashboard
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_page)
        if self._dashboard is not None:
            self._dashboard.add_routes(app)
        return app

    async def start(self) -> int:
        """Listen on the configured host and port; returns the bound port.

        Raises OSError when the address cannot be bound (a port in use).
        """
        runner = web.AppRunner(self.application(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self._config.host, self._config.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        address: Any = runner.addresses[0]
        self.port = int(address[1])
        log.info("http.listening", host=self._config.host, port=self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def _database_problem(self) -> str | None:
        try:
            async with asyncio.timeout(DATABASE_PING_TIMEOUT_S):
                await self._database.ping()
        except TimeoutError:
            return f"database did not answer within {DATABASE_PING_TIMEOUT_S:g} s"
        except StoreUnavailable as exc:
            return f"database unreachable: {exc}"
        except Exception as exc:
            return f"database unreachable: {type(exc).__name__}: {exc}"
        return None

    async def _readyz(self, _request: web.Request) -> web.Response:
        reasons = self._health.reasons()
        problem = await self._database_problem()
        if problem is not None:
            reasons.append(problem)
        if reasons:
            return web.json_response({"status": "not ready", "reasons": reasons}, status=503)
        return web.json_response({"status": "ready", "reasons": []})

    async def _scrape_database(self) -> None:
        """``hedgebot_database_up`` and ``hedgebot_pair_paused``, read now."""
        up = await self._database_problem() is None
        controls: Mapping[str, PairControl] | None = None
        if up:
            try:
                async with asyncio.timeout(DATABASE_PING_TIMEOUT_S):
                    controls = await self._database.pair_controls()
            except Exception as exc:
                log.warning("metrics.controls_unread", error=f"{type(exc).__name__}: {exc}")
        self._metrics.scraped(self._health.pairs, up, controls)

    async def _metrics_page(self, _request: web.Request) -> web.Response:
        await self._scrape_database()
        response = web.Response(body=self._metrics.render())
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        response.charset = "utf-8"
        return response
