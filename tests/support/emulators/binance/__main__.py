"""``python -m tests.support.emulators.binance``: the Binance emulator in its own process,
steered over HTTP. Run it from the project root: it belongs to the tests, not to the
installed bot.

Serves the emulated Binance REST API on ``127.0.0.1:PORT`` (``--port 0`` picks a free
port), prints its URL as the first line on stdout, and runs until SIGTERM or SIGINT.
A JSON control API lives on the same server under ``/_control/``:

=====================================  ==============================================
``GET  /_control/health``              ``{"ok": true}``
``GET  /_control/ccxt_config``         ``ccxt_config(production_error_classes=False)``
``POST /_control/price``               ``{"base": "BTC", "price": "61000"}``
                                       (optional ``spread_bps``)
``POST /_control/spot_balance``        ``{"asset": "BTC", "amount": "1.2"}``
``POST /_control/futures_balance``     ``{"asset": "USDT", "amount": "100000"}``
``POST /_control/lag``                 ``{"seconds": 1}``: the position/balance view lag
``POST /_control/fault``               ``{"fault": "timeout", "path": "/fapi/v1/order",
                                       "method": "POST", "count": 1,
                                       "params": {"accept": true, "delay_s": 1}}``
``POST /_control/clear_faults``        drops every pending fault
``GET  /_control/order_log``           every order request: client_order_id, side, qty,
                                       reduce_only, outcome, …
``GET  /_control/orders``              the orders the exchange holds, with their state
``GET  /_control/requests?since=N``    every API request from index N: time, method,
                                       path and the client order id its query names
``GET  /_control/position?symbol=S``   the true (unlagged) signed perp position
``GET  /_control/spot_balance?asset=A``  the true free spot balance
=====================================  ==============================================

Numbers are decimal strings both ways. A bad control request answers 400 with
``{"error": "..."}``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
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
from tests.support.emulators.binance._binance_models import (
    DEFAULT_MARKETS,
    EmulatedMarket,
    EmulatedOrder,
    Fault,
    OrderLogEntry,
)
from tests.support.emulators.binance._binance_weights import WEIGHT_LIMIT
from tests.support.emulators.binance.binance_emulator import BinanceEmulator


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request the emulated API received."""

    time: float  # epoch seconds
    method: str
    path: str
    client_order_id: str | None  # the order a query names (origClientOrderId), if any


class RecordingEmulator(BinanceEmulator):
    """The emulator, also recording when each request came and which order it names."""

    def __init__(self, markets: Sequence[EmulatedMarket] | None = None) -> None:
        super().__init__(markets=markets)
        self.requests: list[RequestRecord] = []

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        # Only the query: reading a form body here would hide it from the emulator.
        # Order creation is in ``order_log`` with its client id.
        query = request.query
        client_id = query.get("origClientOrderId") or query.get("newClientOrderId")
        self.requests.append(RequestRecord(time.time(), request.method, request.path, client_id))
        return await super()._dispatch(request)


def _num(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _order_log_json(entry: OrderLogEntry) -> dict[str, Any]:
    return {
        "time_ms": entry.time_ms,
        "venue": entry.venue,
        "client_order_id": entry.client_order_id,
        "symbol": entry.symbol,
        "side": entry.side,
        "type": entry.type,
        "qty": _num(entry.qty),
        "price": _num(entry.price),
        "reduce_only": entry.reduce_only,
        "outcome": entry.outcome,
        "fills": [[str(price), str(qty)] for price, qty in entry.fills],
    }


def _order_json(order: EmulatedOrder) -> dict[str, Any]:
    return {
        "venue": order.venue,
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side,
        "type": order.type,
        "status": order.status,
        "orig_qty": str(order.orig_qty),
        "executed_qty": str(order.executed_qty),
        "avg_price": str(order.avg_price),
        "reduce_only": order.reduce_only,
        "time_ms": order.time_ms,
    }


class _ControlApi:
    """The handlers of the ``/_control/`` routes that steer and inspect an self.emulator."""

    def __init__(self, emulator: RecordingEmulator) -> None:
        self.emulator = emulator

    async def health(self, _: web.Request) -> web.StreamResponse:
        return web.json_response({"ok": True})

    async def ccxt_config(self, _: web.Request) -> web.StreamResponse:
        # Without ccxt's error classes, which are not JSON: only what a config file holds.
        return web.json_response(self.emulator.ccxt_config(production_error_classes=False))

    async def price(self, request: web.Request) -> web.StreamResponse:
        body = await json_object(request)
        spread = decimal_field(body, "spread_bps") if "spread_bps" in body else Decimal(2)
        self.emulator.set_price(text_field(body, "base"), decimal_field(body, "price"), spread)
        return web.json_response({"ok": True})

    async def spot_balance(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            asset = request.query.get("asset", "")
            if not asset:
                raise ControlError("asset is required")
            return web.json_response(
                {"asset": asset, "amount": str(self.emulator.spot_balance(asset))}
            )
        body = await json_object(request)
        self.emulator.set_spot_balance(text_field(body, "asset"), decimal_field(body, "amount"))
        return web.json_response({"ok": True})

    async def futures_balance(self, request: web.Request) -> web.StreamResponse:
        body = await json_object(request)
        self.emulator.set_futures_balance(text_field(body, "asset"), decimal_field(body, "amount"))
        return web.json_response({"ok": True})

    async def lag(self, request: web.Request) -> web.StreamResponse:
        seconds = decimal_field(await json_object(request), "seconds")
        if seconds < 0:
            raise ControlError("seconds must be >= 0")
        self.emulator.position_view_lag_s = float(seconds)
        return web.json_response({"ok": True})

    async def fault(self, request: web.Request) -> web.StreamResponse:
        await inject_fault(self.emulator, Fault, request)
        return web.json_response({"ok": True})

    async def clear_faults(self, _: web.Request) -> web.StreamResponse:
        self.emulator.clear_faults()
        return web.json_response({"ok": True})

    async def order_log(self, _: web.Request) -> web.StreamResponse:
        return web.json_response({"entries": [_order_log_json(e) for e in self.emulator.order_log]})

    async def orders(self, _: web.Request) -> web.StreamResponse:
        return web.json_response({"orders": [_order_json(o) for o in self.emulator.orders()]})

    async def requests(self, request: web.Request) -> web.StreamResponse:
        since = int(request.query.get("since", "0"))
        records = self.emulator.requests[since:]
        return web.json_response(
            {
                "next": since + len(records),
                "requests": [
                    {
                        "time": r.time,
                        "method": r.method,
                        "path": r.path,
                        "client_order_id": r.client_order_id,
                    }
                    for r in records
                ],
            }
        )

    async def position(self, request: web.Request) -> web.StreamResponse:
        symbol = request.query.get("symbol", "")
        if not symbol:
            raise ControlError("symbol is required")
        return web.json_response(
            {"symbol": symbol, "position": str(self.emulator.position(symbol))}
        )


def control_routes(emulator: RecordingEmulator) -> list[web.RouteDef]:
    """The ``/_control/`` routes that steer and inspect ``emulator``."""
    api = _ControlApi(emulator)
    p = CONTROL_PREFIX
    return [
        web.get(f"{p}/health", guarded(api.health)),
        web.get(f"{p}/ccxt_config", guarded(api.ccxt_config)),
        web.post(f"{p}/price", guarded(api.price)),
        web.get(f"{p}/spot_balance", guarded(api.spot_balance)),
        web.post(f"{p}/spot_balance", guarded(api.spot_balance)),
        web.post(f"{p}/futures_balance", guarded(api.futures_balance)),
        web.post(f"{p}/lag", guarded(api.lag)),
        web.post(f"{p}/fault", guarded(api.fault)),
        web.post(f"{p}/clear_faults", guarded(api.clear_faults)),
        web.get(f"{p}/order_log", guarded(api.order_log)),
        web.get(f"{p}/orders", guarded(api.orders)),
        web.get(f"{p}/requests", guarded(api.requests)),
        web.get(f"{p}/position", guarded(api.position)),
    ]


def markets_with(extra_bases: Sequence[str]) -> list[EmulatedMarket]:
    """BTC and ETH, plus a market priced at 100 for each extra base coin."""
    known = {m.base for m in DEFAULT_MARKETS}
    extra = [
        EmulatedMarket(base=b, price=Decimal(100), min_notional=Decimal(20))
        for b in extra_bases
        if b not in known
    ]
    return [*DEFAULT_MARKETS, *extra]


async def serve(
    port: int, lag_s: float, extra_bases: Sequence[str] = (), weight_limit: int = WEIGHT_LIMIT
) -> None:
    """Serve until SIGTERM/SIGINT; the URL is the first stdout line."""
    emulator = RecordingEmulator(markets_with(extra_bases))
    emulator.position_view_lag_s = lag_s
    emulator.fapi_limits.weight_limit = emulator.dapi_limits.weight_limit = weight_limit
    emulator.add_routes(control_routes(emulator))
    await serve_until_signalled(emulator, port)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.emulators.binance",
        description="The Binance REST emulator on 127.0.0.1, with a JSON control API.",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument(
        "--lag", type=float, default=0.0, help="seconds before positions/balances show a fill"
    )
    parser.add_argument(
        "--bases",
        default="",
        help="comma-separated extra base coins (beside BTC and ETH), each priced at 100",
    )
    parser.add_argument(
        "--weight-limit",
        type=int,
        default=WEIGHT_LIMIT,
        help="request weight a minute per futures API (Binance: 2400); a test that plays "
        "hours of cycles in seconds may raise it",
    )
    args = parser.parse_args(argv)
    bases = [b for b in args.bases.upper().split(",") if b]
    if any(not b.isalnum() for b in bases):
        parser.error(f"--bases takes coin names separated by commas, got {args.bases!r}")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be 0-65535")
    if args.lag < 0:
        parser.error("--lag must be >= 0")
    if args.weight_limit < 1:
        parser.error("--weight-limit must be >= 1")
    asyncio.run(serve(args.port, args.lag, bases, args.weight_limit))


if __name__ == "__main__":
    main(sys.argv[1:])
