"""Pieces every venue emulator shares: decimal rendering and rounding, the loopback server.

Nothing here knows a venue's protocol: each emulator keeps its own routes, errors and
request checks, and subclasses ``LoopbackServer`` for the aiohttp plumbing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal, InvalidOperation
from typing import Any, Self

from aiohttp import web

HOST = "127.0.0.1"


def fmt(value: Decimal) -> str:
    """Render a Decimal as venues' JSON strings do: plain notation, no exponent."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def fmt_fixed(value: Decimal, places: int = 8) -> str:
    """Render a Decimal with a fixed number of places (some fields are padded)."""
    return format(value.quantize(Decimal(1).scaleb(-places)), "f")


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    """Round ``value`` down to a multiple of ``step``."""
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def ceil_to(value: Decimal, step: Decimal) -> Decimal:
    """Round ``value`` up to a multiple of ``step``."""
    return (value / step).to_integral_value(rounding=ROUND_UP) * step


def is_multiple(value: Decimal, step: Decimal) -> bool:
    """Whether ``value`` is an exact multiple of ``step``."""
    return (value / step) == (value / step).to_integral_value()


def decimals_of(step: Decimal) -> int:
    """Number of decimal places a step allows (0.001 → 3, 1 → 0)."""
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


class LoopbackServer:
    """An aiohttp server on 127.0.0.1 that sends every request to ``_dispatch``.

    Subclasses implement ``_dispatch``; ``add_routes`` serves extra routes (a control
    API) that are matched first. ``_hold`` waits, but returns at once on ``stop()``.
    """

    def __init__(self) -> None:
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._extra_routes: list[web.AbstractRouteDef] = []
        self._faults = FaultQueue()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    def add_routes(self, routes: Iterable[web.AbstractRouteDef]) -> None:
        """Serve ``routes`` beside the emulated API (matched first); call before start()."""
        if self._runner is not None:
            raise RuntimeError("add_routes() must be called before start()")
        self._extra_routes.extend(routes)

    async def start(self, host: str = HOST, port: int = 0) -> None:
        """Serve on ``host:port`` (port 0 picks a free one) and set ``url``."""
        if host != HOST:
            raise ValueError("the emulator only listens on 127.0.0.1")
        app = web.Application()
        app.router.add_routes(self._extra_routes)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = int(runner.addresses[0][1])
        self._runner = runner
        self._closing = asyncio.Event()
        self.url = f"http://{host}:{bound_port}"

    async def stop(self) -> None:
        """Stop serving; held (TIMEOUT) answers are released at once."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        """Start on a free port."""
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop."""
        await self.stop()

    async def _hold(self, delay_s: float) -> None:
        try:
            await asyncio.wait_for(self._closing.wait(), timeout=delay_s)
        except TimeoutError:
            pass

    # ------------------------------------------------------------------ faults
    def inject(
        self,
        fault: Any,
        *,
        path: str | None = None,
        method: str | None = None,
        count: int = 1,
        **params: Any,
    ) -> None:
        """Make the next ``count`` matching requests fail with ``fault`` (a venue's Fault).

        ``path`` matches exactly or as a prefix of path segments; without it,
        PARTIAL_FILL and DROP_AFTER_ACCEPT match order creation and the rest match
        any request. Rules are consumed in the order they were injected.
        """
        self._faults.add(fault, path, method, count, params)

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        self._faults.clear()

    async def _after_processing(
        self, rule: FaultRule | None, request: web.Request, response: web.StreamResponse
    ) -> web.StreamResponse:
        """Faults that strike once the request ran: cut the connection, or answer late."""
        if rule is not None and rule.fault.name == "DROP_AFTER_ACCEPT":
            if request.transport is not None:
                request.transport.abort()
            return response
        if rule is not None and rule.fault.name == "TIMEOUT":
            await self._hold(float(rule.params.get("delay_s", 2.0)))
        return response


ORDER_FAULTS = ("PARTIAL_FILL", "DROP_AFTER_ACCEPT")


@dataclass
class FaultRule:
    """One injected fault: which requests it hits and how many times more."""

    fault: Any  # a venue's Fault enum member
    path: str | None
    method: str | None
    remaining: int
    params: dict[str, Any]

    def matches(self, method: str, path: str, creates_order: bool) -> bool:
        """``path`` matches exactly or as a prefix of path segments; without a path,
        PARTIAL_FILL and DROP_AFTER_ACCEPT hit order creation and the rest any request."""
        if self.remaining <= 0:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        if self.path is not None:
            return path == self.path or path.startswith(self.path.rstrip("/") + "/")
        if self.fault.name in ORDER_FAULTS:
            return creates_order
        return True


class FaultQueue:
    """Injected faults, consumed in the order they were injected."""

    def __init__(self) -> None:
        self.rules: list[FaultRule] = []

    def add(
        self, fault: Any, path: str | None, method: str | None, count: int, params: dict[str, Any]
    ) -> None:
        """Make the next ``count`` matching requests fail with ``fault``."""
        self.rules.append(FaultRule(fault, path, method, count, dict(params)))

    def clear(self) -> None:
        """Drop every pending fault."""
        self.rules.clear()

    def take(self, method: str, path: str, creates_order: bool) -> FaultRule | None:
        """The first rule this request matches, one use of it spent."""
        for rule in self.rules:
            if rule.matches(method, path, creates_order):
                rule.remaining -= 1
                self.rules = [r for r in self.rules if r.remaining > 0]
                return rule
        return None


def decimal_or_none(params: Mapping[str, Any], name: str) -> Decimal | None:
    """A request parameter as a Decimal, None when absent or malformed (for logs)."""
    try:
        return Decimal(str(params[name])) if params.get(name) else None
    except InvalidOperation:
        return None


def partial_fraction(params: Mapping[str, Any]) -> Decimal:
    """The ``fraction`` of a PARTIAL_FILL fault (default one half)."""
    try:
        return Decimal(str(params.get("fraction", "0.5")))
    except InvalidOperation:
        raise ValueError("PARTIAL_FILL fraction must be a decimal") from None


def json_body(value: Any) -> str:
    """Compact JSON, as venues send it."""
    return json.dumps(value, separators=(",", ":"))
