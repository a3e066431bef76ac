"""``python -m tests.support.emulators.bybit``: the Bybit v5 emulator in its own process,
steered over HTTP. Run it from the project root: it belongs to the tests, not to the
installed bot.

Serves the emulated Bybit REST API on ``127.0.0.1:PORT`` (``--port 0`` picks a free
port), prints its URL as the first line on stdout, and runs until SIGTERM or SIGINT.
``--markets N`` lists about N spot and N linear symbols (benchmarks). A JSON control
API lives on the same server under ``/_control/``:

=====================================  ==============================================
``GET  /_control/health``              ``{"ok": true}``
``GET  /_control/ccxt_config``         ``ccxt_config()`` (``?environment=testnet``)
``POST /_control/price``               ``{"base": "BTC", "price": "61000"}``
                                       (optional ``spread_bps``)
``POST /_control/balance``             ``{"coin": "USDT", "amount": "100000"}``: the
                                       unified wallet
``GET  /_control/balance?coin=C``      the true (unlagged) wallet balance
``POST /_control/funding``             ``{"base": "BTC", "rate": "0.0001"}``; with
                                       ``"settle": true`` funding is paid now
``POST /_control/lag``                 ``{"seconds": 1}``: the position/wallet view lag
``POST /_control/fault``               ``{"fault": "timeout", "path": "/v5/order/create",
                                       "method": "POST", "count": 1,
                                       "params": {"accept": true, "delay_s": 1}}``
``POST /_control/clear_faults``        drops every pending fault
``POST /_control/restart``             closed orders leave /v5/order/realtime
``GET  /_control/order_log``           every order request: orderLinkId, side, qty,
                                       reduce_only, outcome, …
``GET  /_control/orders``              the orders the exchange holds, with their state
``GET  /_control/requests?since=N``    every API request from index N: environment,
                                       method, path and the orderLinkId its query names
``GET  /_control/unknown_requests``    ``["METHOD /path", ...]``: requests with no route
``GET  /_control/position?symbol=S``   the true (unlagged) signed position
=====================================  ==============================================

Numbers are decimal strings both ways. A bad control request answers 400 with
``{"error": "..."}``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.support.emulators._control import (
    CONTROL_PREFIX,
    ControlError,
    decimal_field,
    guarded,
    inject_fault,
    json_object,
    serve_until_signalled,
    text_field,
)
from tests.support.emulators.bybit._bybit_models import EmulatedOrder, Fault, OrderLogEntry
from tests.support.emulators.bybit.bybit_emulator import BybitEmulator


def _num(value: Any) -> str | None:
    return None if value is None else str(value)


def _order_log_json(entry: OrderLogEntry) -> dict[str, Any]:
    return {
        "time_ms": entry.time_ms,
        "category": entry.category,
        "order_link_id": entry.order_link_id,
        "symbol": entry.symbol,
        "side": entry.side,
        "order_type": entry.order_type,
        "qty": _num(entry.qty),
        "price": _num(entry.price),
        "reduce_only": entry.reduce_only,
        "outcome": entry.outcome,
        "fills": [[str(price), str(qty)] for price, qty in entry.fills],
    }


def _order_json(order: EmulatedOrder) -> dict[str, Any]:
    return {
        "category": order.category,
        "order_id": order.order_id,
        "order_link_id": order.order_link_id,
        "symbol": order.symbol,
        "side": order.side,
        "order_type": order.order_type,
        "status": order.status,
        "qty": str(order.qty),
        "cum_exec_qty": str(order.cum_qty),
        "avg_price": str(order.avg_price),
        "reduce_only": order.reduce_only,
        "created_ms": order.created_ms,
    }


def _ok() -> web.StreamResponse:
    return web.json_response({"ok": True})


class _ControlApi:
    """The handlers of the ``/_control/`` routes that steer and inspect the emulator."""

    def __init__(self, emulator: BybitEmulator) -> None:
        self.emulator = emulator

    async def health(self, _: web.Request) -> web.StreamResponse:
        return _ok()

    async def ccxt_config(self, request: web.Request) -> web.StreamResponse:
        environment = request.query.get("environment", "mainnet")
        if environment not in ("mainnet", "testnet", "demo"):
            raise ControlError("environment is mainnet, testnet or demo")
        return web.json_response(self.emulator.ccxt_config(environment))

    async def price(self, request: web.Request) -> web.StreamResponse:
        body = await json_object(request)
        spread = decimal_field(body, "spread_bps") if "spread_bps" in body else Decimal(2)
        self.emulator.set_price(text_field(body, "base"), decimal_field(body, "price"), spread)
        return _ok()

    async def balance(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            coin = request.query.get("coin", "")
            if not coin:
                raise ControlError("coin is required")
            return web.json_response({"coin": coin, "amount": str(self.emulator.balance(coin))})
        body = await json_object(request)
        self.emulator.set_balance(text_field(body, "coin"), decimal_field(body, "amount"))
        return _ok()

    async def funding(self, request: web.Request) -> web.StreamResponse:
        body = await json_object(request)
        self.emulator.set_funding_rate(text_field(body, "base"), decimal_field(body, "rate"))
        if body.get("settle") is True:
            self.emulator.settle_funding()
        return _ok()

    async def lag(self, request: web.Request) -> web.StreamResponse:
        seconds = decimal_field(await json_object(request), "seconds")
        if seconds < 0:
            raise ControlError("seconds must be >= 0")
        self.emulator.position_view_lag_s = float(seconds)
        return _ok()

    async def fault(self, request: web.Request) -> web.StreamResponse:
        await inject_fault(self.emulator, Fault, request)
        return _ok()

    async def clear_faults(self, _: web.Request) -> web.StreamResponse:
        self.emulator.clear_faults()
        return _ok()

    async def restart(self, _: web.Request) -> web.StreamResponse:
        self.emulator.restart_order_cache()
        return _ok()

    async def order_log(self, _: web.Request) -> web.StreamResponse:
        entries = [_order_log_json(e) for e in self.emulator.order_log]
        return web.json_response({"entries": entries})

    async def orders(self, _: web.Request) -> web.StreamResponse:
        return web.json_response({"orders": [_order_json(o) for o in self.emulator.orders()]})

    async def requests(self, request: web.Request) -> web.StreamResponse:
        since = int(request.query.get("since", "0"))
        emulator = self.emulator
        records = list(zip(emulator.env_log, emulator.request_log, emulator.link_log, strict=True))
        rows = [
            {"environment": env, "method": m, "path": p, "client_order_id": link}
            for env, (m, p), link in records[since:]
        ]
        return web.json_response({"next": since + len(rows), "requests": rows})

    async def unknown_requests(self, _: web.Request) -> web.StreamResponse:
        unknown = [f"{method} {path}" for method, path in self.emulator.unknown_requests]
        return web.json_response(unknown)

    async def position(self, request: web.Request) -> web.StreamResponse:
        symbol = request.query.get("symbol", "")
        if not symbol:
            raise ControlError("symbol is required")
        return web.json_response(
            {"symbol": symbol, "position": str(self.emulator.position(symbol))}
        )


def control_routes(emulator: BybitEmulator) -> list[web.RouteDef]:
    """The ``/_control/`` routes that steer and inspect ``emulator``."""
    api = _ControlApi(emulator)
    p = CONTROL_PREFIX
    gets = {
        "health": api.health,
        "ccxt_config": api.ccxt_config,
        "balance": api.balance,
        "order_log": api.order_log,
        "orders": api.orders,
        "requests": api.requests,
        "unknown_requests": api.unknown_requests,
        "position": api.position,
    }
    posts = {
        "price": api.price,
        "balance": api.balance,
        "funding": api.funding,
        "lag": api.lag,
        "fault": api.fault,
        "clear_faults": api.clear_faults,
        "restart": api.restart,
    }
    return [
        *(web.get(f"{p}/{name}", guarded(h)) for name, h in gets.items()),
        *(web.post(f"{p}/{name}", guarded(h)) for name, h in posts.items()),
    ]


async def serve(port: int, lag_s: float, markets: int | None = None) -> None:
    """Serve until SIGTERM/SIGINT; the URL is the first stdout line."""
    emulator = BybitEmulator(markets=markets)
    emulator.position_view_lag_s = lag_s
    emulator.add_routes(control_routes(emulator))
    await serve_until_signalled(emulator, port)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.emulators.bybit",
        description="The Bybit v5 REST emulator on 127.0.0.1, with a JSON control API.",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument(
        "--lag", type=float, default=0.0, help="seconds before positions/wallet show a fill"
    )
    parser.add_argument(
        "--markets", type=int, default=None, help="about N spot and N linear symbols"
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("--port must be 0-65535")
    if args.lag < 0:
        parser.error("--lag must be >= 0")
    if args.markets is not None and args.markets < 2:
        parser.error("--markets must be >= 2")
    asyncio.run(serve(args.port, args.lag, args.markets))


if __name__ == "__main__":
    main(sys.argv[1:])
