"""The read-only web dashboard: one static page (``bot/service/dashboard_assets/``) and
the JSON it polls under ``/api/``, served by the daemon's HTTP server or, over a database
alone, by ``hedgebot dashboard``.

Nothing here writes: pause, resume and set-target stay in the CLI. Every read is bounded
(a window and a limit; series thinned in the database, bot/store/dashboard_reads.py) and
runs one at a time, answers kept for a few seconds, so any number of open pages costs the
cycle at most one short read session now and then. The page is served with a
Content-Security-Policy that allows only its own script and style, and its script writes
every stored string as text, never as markup.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from importlib import resources
from typing import Any

import structlog
from aiohttp import web

from bot.clock import Clock, SystemClock
from bot.domain.report import PairReport
from bot.service.describe import PairStatus, pair_statuses
from bot.store.audit_log import AuditEvent
from bot.store.dashboard_reads import DashboardReads, SeriesPoint
from bot.store.repository import Repository

log = structlog.get_logger(__name__)

# The windows the page offers; a series is thinned to at most SERIES_POINTS points.
WINDOWS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DEFAULT_WINDOW = "6h"
SERIES_POINTS = 400
AUDIT_LIMIT = 25
AUDIT_LIMIT_MAX = 500
# How long an answer is reused: the page polls every few seconds, the report less often.
FRESH_S = 2.0
REPORT_FRESH_S = 10.0
ASSETS = {
    "index.html": "text/html",
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

Json = dict[str, Any]
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def allowed_hosts(bind_host: str) -> frozenset[str] | None:
    """The Host names the dashboard answers to: on a loopback address only loopback names,
    so that a web page elsewhere cannot read it through DNS rebinding; None (any name)
    on another address, where the network in front decides who reaches it."""
    if bind_host in LOOPBACK_NAMES or bind_host.startswith("127."):
        return LOOPBACK_NAMES | {bind_host}
    return None


def _num(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:f}"


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def pair_json(row: PairStatus) -> Json:
    """A pair's status for the page: figures as exact strings, words as they are."""
    return {
        "pair": row.pair,
        "mode": row.mode,
        "price": _num(row.price),
        "spot_qty": _num(row.spot_qty),
        "hedge_qty": _num(row.hedge_qty),
        "ratio": _num(None if row.ratio is None else round(row.ratio, 4)),
        "target_ratio": _num(row.target_ratio),
        "band": _num(row.band),
        "target": row.target_text,
        "in_band": row.ratio is not None and abs(row.ratio - row.target_ratio) <= row.band,
        "drift_qty": _num(row.drift_qty),
        "health": row.health,
        "paused": row.paused,
        "daemon": row.daemon,
        "last_action": row.last_action,
        "last_action_at": None if row.last_action_at is None else row.last_action_at.isoformat(),
        "decided_at": row.decided_at.isoformat(),
    }


def point_json(point: SeriesPoint) -> Json:
    """One chart point; floats are fine for drawing (the exact figures are in status)."""
    spot_value = point.spot_value
    hedged = point.hedged_value
    return {
        "t": point.at.isoformat(),
        "ratio": _float(point.ratio),
        "target": float(point.target_ratio),
        "band": float(point.band),
        "hedged": float(hedged),
        "unhedged": float(spot_value - hedged),
    }


def report_json(row: PairReport) -> Json:
    return {
        "pair": row.pair,
        "observations": row.observations,
        "spot_pnl": _num(round(row.spot_pnl, 2)),
        "perp_pnl": _num(round(row.perp_pnl, 2)),
        "funding": _num(round(row.funding, 2)),
        "fees": _num(round(row.fees, 2)),
        "net": _num(round(row.net, 2)),
        "hedge_effectiveness": _num(
            None if row.hedge_effectiveness is None else round(row.hedge_effectiveness, 4)
        ),
    }


def audit_json(event: AuditEvent) -> Json:
    return {
        "id": event.id,
        "ts": event.ts.isoformat(),
        "pair": event.pair,
        "kind": event.kind,
        "summary": event.summary,
    }


class BadQuery(ValueError):
    """A query parameter the API does not take; answered 400 with the reason."""


def _window(request: web.Request) -> str:
    window = request.query.get("window", DEFAULT_WINDOW)
    if window not in WINDOWS:
        raise BadQuery(f"window must be one of {', '.join(WINDOWS)}")
    return window


def _limit(request: web.Request) -> int:
    text = request.query.get("limit", str(AUDIT_LIMIT))
    if not text.isdigit() or not 1 <= int(text) <= AUDIT_LIMIT_MAX:
        raise BadQuery(f"limit must be a whole number from 1 to {AUDIT_LIMIT_MAX}")
    return int(text)


def _optional(request: web.Request, name: str) -> str | None:
    value = request.query.get(name, "").strip()
    if len(value) > 64:
        raise BadQuery(f"{name} is longer than 64 characters")
    return value or None


class _Answers:
    """Answers kept for a while, computed one at a time (the store sees one reader)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._kept: dict[tuple[str, ...], tuple[float, Any]] = {}
        self._lock = asyncio.Lock()

    async def get(
        self, key: tuple[str, ...], fresh_s: float, compute: Callable[[], Awaitable[Any]]
    ) -> Any:
        async with self._lock:
            kept = self._kept.get(key)
            now = self._monotonic()
            if kept is not None and now - kept[0] < fresh_s:
                return kept[1]
            value = await compute()
            if len(self._kept) > 256:
                self._kept.clear()
            self._kept[key] = (self._monotonic(), value)
            return value


class DashboardApi:
    """The page and its JSON over one repository (read only)."""

    def __init__(
        self, repository: Repository, clock: Clock | None = None, bind_host: str = "127.0.0.1"
    ) -> None:
        self._repo = repository
        self._clock = clock or SystemClock()
        self._hosts = allowed_hosts(bind_host)
        self._reads = DashboardReads(repository.engine, self._clock)
        self._answers = _Answers()
        folder = resources.files("bot.service").joinpath("dashboard_assets")
        self._assets = {name: folder.joinpath(name).read_bytes() for name in ASSETS}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self._root)
        app.router.add_get("/dashboard/", self._page)
        app.router.add_get("/dashboard/{name}", self._asset)
        app.router.add_get("/api/pairs", self._json(self.pairs))
        app.router.add_get("/api/series", self._json(self.series))
        app.router.add_get("/api/report", self._json(self.report))
        app.router.add_get("/api/audit", self._json(self.audit))

    async def pairs(self, _request: web.Request) -> Json:
        async def compute() -> Json:
            rows = await pair_statuses(self._repo)
            return {"pairs": [pair_json(r) for r in rows], "now": self._clock.now().isoformat()}

        result: Json = await self._answers.get(("pairs",), FRESH_S, compute)
        return result

    async def series(self, request: web.Request) -> Json:
        window = _window(request)
        pair = _optional(request, "pair")
        if pair is None:
            raise BadQuery("pair is required")

        async def compute() -> Json:
            since = self._clock.now() - WINDOWS[window]
            found = await self._reads.decision_series(pair, since, SERIES_POINTS)
            return {
                "pair": pair,
                "window": window,
                "decisions": found.total,
                "stride": found.stride,
                "points": [point_json(p) for p in found.points],
            }

        result: Json = await self._answers.get(("series", pair, window), FRESH_S, compute)
        return result

    async def report(self, request: web.Request) -> Json:
        window = _window(request)

        async def compute() -> Json:
            since = self._clock.now() - WINDOWS[window]
            rows = await self._repo.report(None, since)
            return {"window": window, "pairs": [report_json(r) for r in rows]}

        result: Json = await self._answers.get(("report", window), REPORT_FRESH_S, compute)
        return result

    async def audit(self, request: web.Request) -> Json:
        pair, kind, limit = _optional(request, "pair"), _optional(request, "kind"), _limit(request)

        async def compute() -> Json:
            events = await self._repo.audit_events(pair=pair, kind=kind, limit=limit)
            return {"events": [audit_json(e) for e in reversed(events)]}

        key = ("audit", pair or "", kind or "", str(limit))
        result: Json = await self._answers.get(key, FRESH_S, compute)
        return result

    def _json(
        self, handler: Callable[[web.Request], Awaitable[Json]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def respond(request: web.Request) -> web.Response:
            self._check_host(request)
            try:
                body = await handler(request)
            except BadQuery as exc:
                return web.json_response({"error": str(exc)}, status=400, headers=SECURITY_HEADERS)
            except Exception as exc:
                log.warning("dashboard.read_failed", path=request.path, error=str(exc))
                problem = {"error": f"{type(exc).__name__}: {exc}"}
                return web.json_response(problem, status=503, headers=SECURITY_HEADERS)
            return web.json_response(body, headers=SECURITY_HEADERS)

        return respond

    def _check_host(self, request: web.Request) -> None:
        if self._hosts is not None and request.url.host not in self._hosts:
            raise web.HTTPMisdirectedRequest(text="this dashboard answers on loopback names only")

    async def _root(self, request: web.Request) -> web.Response:
        self._check_host(request)
        raise web.HTTPFound("/dashboard/")

    async def _page(self, request: web.Request) -> web.Response:
        self._check_host(request)
        return self._serve("index.html")

    async def _asset(self, request: web.Request) -> web.Response:
        self._check_host(request)
        name = request.match_info["name"]
        if name not in ASSETS:
            raise web.HTTPNotFound()
        return self._serve(name)

    def _serve(self, name: str) -> web.Response:
        return web.Response(
            body=self._assets[name],
            content_type=ASSETS[name],
            charset="utf-8",
            headers=SECURITY_HEADERS,
        )


class DashboardServer:
    """The dashboard alone over a database (``hedgebot dashboard``): no daemon needed."""

    def __init__(self, repository: Repository, host: str, port: int) -> None:
        self._api = DashboardApi(repository, bind_host=host)
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        """Listen; the bound port. Raises OSError when the address cannot be bound."""
        app = web.Application()
        self._api.add_routes(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        address: Any = runner.addresses[0]
        return int(address[1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
