"""Pieces of the emulators' JSON control APIs (``python -m tests.support.emulators.<venue>``).

Request parsing that answers 400 on a malformed body, the fault-injection handler
every venue shares, and the serve-until-signalled loop.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from tests.support.emulators._common import HOST, LoopbackServer

CONTROL_PREFIX = "/_control"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ControlError(Exception):
    """A malformed control request (answered 400)."""


def decimal_field(body: dict[str, Any], name: str) -> Decimal:
    """A required decimal field (numbers may come as JSON numbers or strings)."""
    raw = body.get(name)
    if raw is None or isinstance(raw, bool):
        raise ControlError(f"{name} is required")
    try:
        return Decimal(str(raw))
    except InvalidOperation:
        raise ControlError(f"{name} must be a decimal, got {raw!r}") from None


def text_field(body: dict[str, Any], name: str) -> str:
    """A required non-empty string field."""
    raw = body.get(name)
    if not isinstance(raw, str) or not raw:
        raise ControlError(f"{name} must be a non-empty string")
    return raw


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request body, which must be a JSON object."""
    try:
        body = await request.json()
    except ValueError:
        raise ControlError("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ControlError("the body must be a JSON object")
    return body


def guarded(handler: Handler) -> Handler:
    """Answer 400 ``{"error": ...}`` when the handler finds the request malformed."""

    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except (ControlError, KeyError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)

    return run


async def inject_fault(emulator: LoopbackServer, fault_enum: Any, request: web.Request) -> None:
    """Parse ``{"fault", "path", "method", "count", "params"}`` and inject it."""
    body = await json_object(request)
    try:
        kind = fault_enum(text_field(body, "fault"))
    except ValueError:
        allowed = ", ".join(f.value for f in fault_enum)
        raise ControlError(f"fault must be one of {allowed}") from None
    params = body.get("params", {})
    count = body.get("count", 1)
    if not isinstance(params, dict) or not isinstance(count, int) or count < 1:
        raise ControlError("params must be an object and count an integer >= 1")
    path, method = body.get("path"), body.get("method")
    if (path is not None and not isinstance(path, str)) or (
        method is not None and not isinstance(method, str)
    ):
        raise ControlError("path and method must be strings")
    emulator.inject(kind, path=path, method=method, count=count, **params)


async def serve_until_signalled(emulator: LoopbackServer, port: int) -> None:
    """Start, print the URL as the first stdout line, run until SIGTERM/SIGINT, stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await emulator.start(HOST, port)
    try:
        print(emulator.url, flush=True)
        await stop.wait()
    finally:
        await emulator.stop()
