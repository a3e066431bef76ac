"""``python -m tests.support.emulators.okx``: the OKX emulator in its own process,
steered over HTTP. Run it from the project root: it belongs to the tests, not to the
installed bot.

Serves the emulated OKX v5 REST API on ``127.0.0.1:PORT`` (``--port 0`` picks a free
port), prints its URL as the first line on stdout, and runs until SIGTERM or SIGINT.
``--markets N`` lists N spot pairs and N perpetuals (a real-sized list for benchmarks);
``--demo`` makes the key a demo-trading one (ccxt's sandbox mode). A JSON control API
lives on the same server under ``/_control/``, in the shape of the Binance emulator's:

=====================================  ==============================================
``GET  /_control/health``              ``{"ok": true}``
``GET  /_control/ccxt_config``         ``ccxt_config()``: URLs and the key
``POST /_control/price``               ``{"base": "BTC", "price": "61000"}``
                                       (optional ``spread_bps``)
``POST /_control/balance``             ``{"ccy": "USDT", "amount": "100000"}``
``POST /_control/account``             ``{"acctLv": "2", "posMode": "net_mode"}``
                                       (either or both)
``POST /_control/lag``                 ``{"seconds": 1}``: the position/balance view lag
``POST /_control/fault``               ``{"fault": "timeout",
                                       "path": "/api/v5/trade/batch-orders",
                                       "method": "POST", "count": 1,
                                       "params": {"accept": true, "delay_s": 1}}``
``POST /_control/clear_faults``        drops every pending fault
``POST /_control/funding``             settles funding on open positions
``GET  /_control/order_log``           every order request: clOrdId, side, sz, outcome …
``GET  /_control/orders``              the orders the exchange holds, with their state
``GET  /_control/requests?since=N``    every API request from index N: time, method,
                                       path and the clOrdId its query names
``GET  /_control/position?instId=I``   the true (unlagged) signed position, contracts
``GET  /_control/balance?ccy=C``       the true cashBal
=====================================  ==============================================

Numbers are decimal strings both ways. A bad control request answers 400 with
``{"error": "..."}``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.support.emulators._control import (
    ControlError,
    decimal_field,
    guarded,
    json_object,
    text_field,
)
from tests.support.emulators.binance.__main__ import RequestRecord, _num
from tests.support.emulators.okx._okx_models import (
    DEFAULT_MARKETS,
    EmulatedOrder,
    Fault,
    OkxMarket,
    OrderLogEntry,
    generate_markets,
)
from tests.support.emulators.okx.okx_emulator import OkxEmulator

HOST = "127.0.0.1"
CONTROL_PREFIX = "/_control"


class RecordingEmulator(OkxEmulator):
    """The emulator, also recording when each request came and which order it names."""

    def __init__(self, markets: Sequence[OkxMarket] | None = None, *, demo: bool = False) -> None:
        super().__init__(markets=markets, demo=demo)
        self.requests: list[RequestRecord] = []

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        client_id = request.query.get("clOrdId")
        self.requests.append(RequestRecord(time.time(), request.method, request.path, client_id))
        return await super()._dispatch(request)


def _order_log_json(entry: OrderLogEntry) -> dict[str, Any]:
    return {
        "time_ms": entry.time_ms,
        "cl_ord_id": entry.cl_ord_id,
        "inst_id": entry.inst_id,
        "side": entry.side,
        "ord_type": entry.ord_type,
        "sz": _num(entry.size),
        "px": _num(entry.price),
        "td_mode": entry.td_mode,
        "pos_side": entry.pos_side,
        "reduce_only": entry.reduce_only,
        "outcome": entry.outcome,
        "fills": [[str(price), str(size)] for price, size in entry.fills],
    }


def _order_json(order: EmulatedOrder) -> dict[str, Any]:
    return {
        "ord_id": order.ord_id,
        "cl_ord_id": order.cl_ord_id,
        "inst_id": order.inst.inst_id,
        "side": order.side,
        "pos_side": order.pos_side,
        "td_mode": order.td_mode,
        "ord_type": order.ord_type,
        "state": order.state,
        "sz": str(order.size),
        "acc_fill_sz": str(order.filled),
        "avg_px": str(order.avg_price),
        "reduce_only": order.reduce_only,
        "time_ms": order.time_ms,
    }


class _ControlApi:
    """The handlers of the ``/_control/`` routes that steer and inspect an emulator."""

    def __init__(self, emulator: RecordingEmulator) -> None:
        self.emulator = emulator

    async def health(self, _: web.Request) -> web.StreamResponse:
        return web.json_response({"ok": True})

    async def ccxt_config(self, _: web.Request) -> web.StreamResponse:
        return web.json_response(self.emulator.ccxt_config())

    async def price(self, request: web.Request) -> web.StreamResponse:
        body = await json_object(request)
        spread = decimal_field(body, "spread_bps") if "spread_bps" in body else Decimal(2)
        self.emulator.set_price(text_field(body, "base"), decimal_field(body, "price"), spread)
        return web.json_response({"ok": True})

    async def balance(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            ccy = request.query.get("ccy", "")
            if not ccy:
                raise ControlError("ccy is required")
            return web.json_response({"ccy": ccy, "amount": str(self.emulator.balance(ccy))})
        body = await json_object(request)
        self.emulator.set_balance(text_field(body, "ccy"), decimal_field(body, "amount"))
        return web.json_response({"ok": True})

    async def account(self, request: web.Request) -> web.StreamResponse:
        body = await json_object(request)
        if "acctLv" in body:
            level = text_field(body, "acctLv")
            if level not in ("1", "2", "3", "4"):
                raise ControlError("acctLv is 1, 2, 3 or 4")
            self.emulator.set_account_level(level)
        if "posMode" in body:
            mode = text_field(body, "posMode")
            if mode not in ("net_mode", "long_short_mode"):
                raise ControlError("posMode is net_mode or long_short_mode")
            self.emulator.set_position_mode(mode)
        return web.json_response({"ok": True})

    async def lag(self, request: web.Request) -> web.StreamResponse:
        seconds = decimal_field(await json_object(request), "seconds")
        if seconds < 0:
            raise ControlError("seconds must be >= 0")
        self.emulator.position_view_lag_s = float(seconds)
        return web.json_response({"ok": True})

    async def fault(self, request: web.Request) -> web.StreamResponse:
        body = await json_object(request)
        try:
            kind = Fault(text_field(body, "fault"))
        except ValueError:
            allowed = ", ".join(f.value for f in Fault)
            raise ControlError(f"fault must be one of {allowed}") from None
        params, count = body.get("params", {}), body.get("count", 1)
        if not isinstance(params, dict) or not isinstance(count, int) or count < 1:
            raise ControlError("params must be an object and count an integer >= 1")
        path, method = body.get("path"), body.get("method")
        if not all(v is None or isinstance(v, str) for v in (path, method)):
            raise ControlError("path and method must be strings")
        self.emulator.inject(kind, path=path, method=method, count=count, **params)
        return web.json_response({"ok": True})

    async def clear_faults(self, _: web.Request) -> web.StreamResponse:
        self.emulator.clear_faults()
        return web.json_response({"ok": True})

    async def funding(self, _: web.Request) -> web.StreamResponse:
        self.emulator.settle_funding()
        return web.json_response({"ok": True})

    async def order_log(self, _: web.Request) -> web.StreamResponse:
        return web.json_response({"entries": [_order_log_json(e) for e in self.emulator.order_log]})

    async def orders(self, _: web.Request) -> web.StreamResponse:
        return web.json_response({"orders": [_order_json(o) for o in self.emulator.orders()]})

    async def requests(self, request: web.Request) -> web.StreamResponse:
        since = int(request.query.get("since", "0"))
        records = self.emulator.requests[since:]
        rows = [
            {
                "time": r.time,
                "method": r.method,
                "path": r.path,
                "client_order_id": r.client_order_id,
            }
            for r in records
        ]
        return web.json_response({"next": since + len(records), "requests": rows})

    async def position(self, request: web.Request) -> web.StreamResponse:
        inst_id = request.query.get("instId", "")
        if not inst_id:
            raise ControlError("instId is required")
        amount = self.emulator.position(inst_id)
        return web.json_response({"instId": inst_id, "position": str(amount)})


def control_routes(emulator: RecordingEmulator) -> list[web.RouteDef]:
    """The ``/_control/`` routes that steer and inspect ``emulator``."""
    api = _ControlApi(emulator)
    p = CONTROL_PREFIX
    return [
        web.get(f"{p}/health", guarded(api.health)),
        web.get(f"{p}/ccxt_config", guarded(api.ccxt_config)),
        web.post(f"{p}/price", guarded(api.price)),
        web.get(f"{p}/balance", guarded(api.balance)),
        web.post(f"{p}/balance", guarded(api.balance)),
        web.post(f"{p}/account", guarded(api.account)),
        web.post(f"{p}/lag", guarded(api.lag)),
        web.post(f"{p}/fault", guarded(api.fault)),
        web.post(f"{p}/clear_faults", guarded(api.clear_faults)),
        web.post(f"{p}/funding", guarded(api.funding)),
        web.get(f"{p}/order_log", guarded(api.order_log)),
        web.get(f"{p}/orders", guarded(api.orders)),
        web.get(f"{p}/requests", guarded(api.requests)),
        web.get(f"{p}/position", guarded(api.position)),
    ]


async def serve(port: int, lag_s: float, markets: int, *, demo: bool = False) -> None:
    """Serve until SIGTERM/SIGINT; the URL is the first stdout line."""
    listed = generate_markets(markets) if markets > len(DEFAULT_MARKETS) else None
    emulator = RecordingEmulator(listed, demo=demo)
    emulator.position_view_lag_s = lag_s
    emulator.add_routes(control_routes(emulator))
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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.emulators.okx",
        description="The OKX v5 REST emulator on 127.0.0.1, with a JSON control API.",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument(
        "--lag", type=float, default=0.0, help="seconds before positions/balances show a fill"
    )
    parser.add_argument(
        "--markets",
        type=int,
        default=len(DEFAULT_MARKETS),
        help="spot pairs and perpetuals to list (BTC, ETH and made-up coins; 600 is real-sized)",
    )
    parser.add_argument("--demo", action="store_true", help="a demo-trading key (sandbox)")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("--port must be 0-65535")
    if args.lag < 0:
        parser.error("--lag must be >= 0")
    if args.markets < 1:
        parser.error("--markets must be >= 1")
    asyncio.run(serve(args.port, args.lag, args.markets, demo=args.demo))


if __name__ == "__main__":
    main(sys.argv[1:])
