"""An emulator of the Binance spot and USDⓈ-M futures REST API on 127.0.0.1.

The real, unmodified ``ccxt.async_support.binance`` client talks to it through
constructor URL overrides (``BinanceEmulator.ccxt_config()``), so tests exercise
ccxt's request signing, parsing and error mapping without any network access.
Tests steer it with ``set_price``, ``set_*_balance``, ``inject`` (faults) and
``position_view_lag_s``, and assert on ``order_log``, ``request_log``,
``orders()`` and ``position()``.

COIN-M (coin-margined) perpetuals under /dapi are listed when ``coinm_markets`` are given
(``_binance_coinm``): their wallet is apart from spot and USDⓈ-M, reached with
``/sapi/v1/asset/transfer`` types ``MAIN_CMFUTURE`` and ``CMFUTURE_MAIN``; the
``coinm_*`` methods steer and read it.

Rate limits (``_binance_weights``): /fapi and /dapi requests each count their documented
request weight in a minute of their own (2,400, ``X-MBX-USED-WEIGHT-1M``); a request over
it is answered 429 -1003 with ``Retry-After``. A new futures order takes no weight and
counts in the order windows (USDⓈ-M 300 per 10 s and 1,200 a minute; COIN-M 1,200 a
minute): over them, 429 -1015. ``fapi_limits.refused`` lists what was refused. Spot
(/api) is not limited.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.support.emulators._common import (
    FaultRule,
    LoopbackServer,
    decimal_or_none,
    partial_fraction,
)
from tests.support.emulators.binance import _binance_coinm_api as coinm_api
from tests.support.emulators.binance import _binance_weights as weights
from tests.support.emulators.binance._binance_api import BinanceApi, Params, RequestContext, Route
from tests.support.emulators.binance._binance_coinm import CoinmEngine, CoinmMarket, Liquidation
from tests.support.emulators.binance._binance_coinm_api import CoinmApi
from tests.support.emulators.binance._binance_engine import Engine
from tests.support.emulators.binance._binance_models import (
    DEFAULT_MARKETS,
    BinanceError,
    EmulatedMarket,
    EmulatedOrder,
    Fault,
    MarginChange,
    OrderLogEntry,
    Venue,
)

log = logging.getLogger(__name__)

# Every base-URL key of ccxt's binance ``urls['api']`` and the path prefix behind it.
CCXT_API_PREFIXES: dict[str, str] = {
    "public": "/api/v3",
    "private": "/api/v3",
    "v1": "/api/v1",
    "sapi": "/sapi/v1",
    "sapiV2": "/sapi/v2",
    "sapiV3": "/sapi/v3",
    "sapiV4": "/sapi/v4",
    "fapiPublic": "/fapi/v1",
    "fapiPublicV2": "/fapi/v2",
    "fapiPublicV3": "/fapi/v3",
    "fapiPrivate": "/fapi/v1",
    "fapiPrivateV2": "/fapi/v2",
    "fapiPrivateV3": "/fapi/v3",
    "fapiData": "/futures/data",
    "dapiPublic": "/dapi/v1",
    "dapiPrivate": "/dapi/v1",
    "dapiPrivateV2": "/dapi/v2",
    "dapiData": "/dapi/futures/data",
    "eapiPublic": "/eapi/v1",
    "eapiPrivate": "/eapi/v1",
    "papi": "/papi/v1",
    "papiV2": "/papi/v2",
}
ORDER_PATHS = ("/api/v3/order", "/fapi/v1/order")
RATE_LIMIT_MSG = weights.TOO_MUCH_WEIGHT  # -1003's message (bench_scale's too)


@functools.cache
def _linear_error_classes() -> dict[str, Any]:
    """ccxt's USDⓈ-M error table (``exceptions['linear']['exact']``), code → class."""
    import ccxt.async_support as ccxt_async  # heavy import, only when asked

    client = ccxt_async.binance()
    table: dict[str, Any] = dict(client.exceptions["linear"]["exact"])
    return table


@functools.cache
def _futures_error_classes() -> dict[str, Any]:
    """ccxt's COIN-M table (``exceptions['inverse']['exact']``) under the USDⓈ-M one."""
    import ccxt.async_support as ccxt_async  # heavy import, only when asked

    client = ccxt_async.binance()
    return {**client.exceptions["inverse"]["exact"], **_linear_error_classes()}


def made_up_markets(count: int) -> list[EmulatedMarket]:
    """``count`` made-up coins (C0000, C0001, …), each a spot pair and a perp at 100 with
    0.01 steps and a min notional of 5, for real-sized market lists (the coins beside
    :data:`DEFAULT_MARKETS`)."""
    return [
        EmulatedMarket(
            base=f"C{i:04d}",
            price=Decimal(100),
            step_size=Decimal("0.01"),
            tick_size=Decimal("0.01"),
            min_qty=Decimal("0.01"),
            min_notional=Decimal(5),
            level_qty=Decimal(1000),
        )
        for i in range(count)
    ]


class BinanceEmulator(LoopbackServer):
    """Binance spot + USDⓈ-M futures REST emulator served by aiohttp on loopback."""

    def __init__(
        self,
        *,
        markets: Sequence[EmulatedMarket] | None = None,
        quote_asset: str = "USDT",
        clock: Callable[[], float] | None = None,
        coinm_markets: Sequence[CoinmMarket] = (),
    ) -> None:
        """Create the emulator; ``clock`` returns epoch seconds (default wall clock);
        ``coinm_markets``: the COIN-M perpetuals listed under /dapi (none by default)."""
        super().__init__()
        self._clock = clock or time.time
        self._engine = Engine(markets or DEFAULT_MARKETS, quote_asset, self._clock)
        self._api = BinanceApi(self._engine)
        self._coinm: CoinmEngine | None = None
        # Request weight and new orders per API, as Binance counts them (_binance_weights).
        self.fapi_limits = weights.FuturesLimits(weights.weight, weights.ORDER_PATHS)
        self.dapi_limits = weights.FuturesLimits(
            coinm_api.weight,
            frozenset({("POST", "/dapi/v1/order"), ("PUT", "/dapi/v1/order")}),
            order_windows=((weights.ORDERS_1M, 60.0, "1 MINUTE"),),
        )
        self._used_weight = 0
        if coinm_markets:
            self._coinm = CoinmEngine(self._engine, coinm_markets)
            self._add_coinm_routes(CoinmApi(self._coinm))
        self.order_log: list[OrderLogEntry] = []
        self.request_log: list[tuple[str, str]] = []
        self.request_queries: list[dict[str, str]] = []  # each request's query, in order
        self.unknown_requests: list[tuple[str, str]] = []
        self._recent: deque[float] = deque()

    # ------------------------------------------------------------------ ccxt
    def ccxt_config(self, *, production_error_classes: bool = True) -> dict[str, Any]:
        """ccxt binance constructor config that points every API at this emulator.

        ccxt chooses its per-market error table by the URL's host name, which a
        loopback URL never matches; ``production_error_classes`` merges the USDⓈ-M
        table into the generic one so futures errors map as they do against Binance.
        """
        if not self.url:
            raise RuntimeError("start() the emulator first")
        urls = {name: f"{self.url}{prefix}" for name, prefix in CCXT_API_PREFIXES.items()}
        types = ["spot", "linear", "inverse"] if self._coinm else ["spot", "linear"]
        config: dict[str, Any] = {
            "urls": {"api": dict(urls), "test": dict(urls), "demo": dict(urls)},
            "options": {
                "fetchCurrencies": False,
                "fetchMargins": False,
                "fetchMarkets": {"types": types},
            },
        }
        if production_error_classes:
            table = _futures_error_classes() if self._coinm else _linear_error_classes()
            config["exceptions"] = {"exact": table}
        return config

    # ------------------------------------------------------------------ COIN-M
    def _add_coinm_routes(self, api: CoinmApi) -> None:
        """The /dapi routes, in the emulator's Route shape (faults, order log, signing)."""

        def route(handler: Callable[[Params], Any], creates: bool) -> Callable[..., Any]:
            def run(params: Params, ctx: RequestContext) -> Any:
                api.partial = ctx.partial if creates else None
                body = handler(params)
                if creates:
                    ctx.order = api.last_order
                return body

            return run

        for key, (handler, signed, creates) in api.routes.items():
            self._api.routes[key] = Route(
                route(handler, creates), signed=signed, creates_order="coinm" if creates else None
            )

    @property
    def coinm(self) -> CoinmEngine:
        """The COIN-M engine (listed only with ``coinm_markets``)."""
        if self._coinm is None:
            raise RuntimeError("no COIN-M markets: pass coinm_markets")
        return self._coinm

    def set_coinm_balance(self, asset: str, amount: Decimal) -> None:
        """Set the COIN-M wallet balance of ``asset`` (a coin)."""
        self.coinm.set_balance(asset, Decimal(amount))

    def coinm_balance(self, asset: str) -> Decimal:
        """The COIN-M wallet balance of ``asset`` (realized PnL, fees and funding in)."""
        return self.coinm.state.wallet.get(asset, Decimal(0))

    def coinm_equity(self, asset: str) -> Decimal:
        """The COIN-M margin balance of ``asset``: wallet + unrealized PnL, in the coin."""
        return self.coinm.wallet_view(asset).margin_balance

    def coinm_position(self, symbol: str, position_side: str | None = None) -> Decimal:
        """Signed contracts of a COIN-M symbol (``BTCUSD_PERP``), netted over sides."""
        return self.coinm.true_position(symbol, position_side)

    def set_coinm_funding_rate(self, base: str, rate: Decimal) -> None:
        """The rate COIN-M premiumIndex reports and ``settle_funding`` applies."""
        self.coinm.funding_rates[base] = Decimal(rate)

    def set_coinm_leverage(self, symbol: str, leverage: int) -> None:
        """Set a COIN-M symbol's leverage directly."""
        self.coinm.leverage[symbol] = leverage

    @property
    def coinm_liquidations(self) -> list[Liquidation]:
        """COIN-M positions the emulator closed at their liquidation price."""
        return list(self.coinm.liquidations)

    # ------------------------------------------------------------------ state control
    @property
    def position_view_lag_s(self) -> float:
        """Seconds before positionRisk/account/balance views show a fill."""
        return self._engine.lag_s

    @position_view_lag_s.setter
    def position_view_lag_s(self, value: float) -> None:
        self._engine.lag_s = value

    @property
    def client_order_id_scope(self) -> str:
        """``all``: a client id may never be reused; ``open``: only among open orders."""
        return self._engine.client_order_id_scope

    @client_order_id_scope.setter
    def client_order_id_scope(self, value: str) -> None:
        if value not in ("all", "open"):
            raise ValueError("client_order_id_scope is 'all' or 'open'")
        self._engine.client_order_id_scope = value

    def set_price(
        self, symbol_or_base: str, price: Decimal, spread_bps: Decimal = Decimal(2)
    ) -> None:
        """Set last/mark/index and bid/ask of a coin's spot and perp; fills crossing limits."""
        self._engine.set_price(symbol_or_base, Decimal(price), Decimal(spread_bps))

    def set_step_size(self, symbol_or_base: str, step: Decimal) -> None:
        """Change a coin's LOT_SIZE stepSize (exchangeInfo and order checks) from now on."""
        self._engine.set_step_size(symbol_or_base, Decimal(step))

    def suspend(
        self,
        symbol_or_base: str,
        venue: Venue = "futures",
        status: str = "",
        *,
        quoted: bool = False,
    ) -> None:
        """Suspend a coin's market on ``venue``: exchangeInfo shows ``status`` (futures
        SETTLING, spot BREAK by default), its ticker is gone from the ticker endpoints
        (``quoted``: still there, stale), and orders are refused (futures -4140 "Invalid
        symbol status for opening position.", spot -1013 "Market is closed."). ``resume``
        undoes it."""
        market = self._engine.markets[self._engine.resolve_base(symbol_or_base)]
        default = "SETTLING" if venue == "futures" else "BREAK"
        self._engine.status[(venue, market.symbol_id)] = status or default
        if quoted:
            self._engine.quoted_while_suspended.add((venue, market.symbol_id))

    def resume(self, symbol_or_base: str, venue: Venue = "futures") -> None:
        """Trade a suspended market again."""
        market = self._engine.markets[self._engine.resolve_base(symbol_or_base)]
        self._engine.status.pop((venue, market.symbol_id), None)
        self._engine.quoted_while_suspended.discard((venue, market.symbol_id))

    def delist(self, symbol_or_base: str, venue: Venue = "futures") -> None:
        """Delist a coin's market on ``venue``: gone from exchangeInfo and the tickers;
        every request naming it is -1121 "Invalid symbol."."""
        market = self._engine.markets[self._engine.resolve_base(symbol_or_base)]
        self._engine.delisted.add((venue, market.symbol_id))

    def set_funding_rate(self, base: str, rate: Decimal) -> None:
        """Set the funding rate premiumIndex reports and ``settle_funding`` applies."""
        self._engine.set_funding_rate(base, Decimal(rate))

    def set_spot_balance(self, asset: str, amount: Decimal) -> None:
        """Set the free spot balance of ``asset``."""
        self._engine.set_spot_balance(asset, Decimal(amount))

    def set_futures_balance(self, asset: str, amount: Decimal) -> None:
        """Set the futures wallet balance of ``asset``."""
        self._engine.set_futures_balance(asset, Decimal(amount))

    def set_dual_side_position(self, dual: bool) -> None:
        """Switch hedge mode (dualSidePosition) without Binance's checks."""
        self._engine.set_dual_side(dual, strict=False)

    def set_leverage(self, symbol_or_base: str, leverage: int) -> None:
        """Set a perp's leverage directly."""
        market = self._engine.markets[self._engine.resolve_base(symbol_or_base)]
        self._engine.leverage[market.symbol_id] = leverage

    def settle_funding(self) -> None:
        """Pay/charge funding on open positions at the current rates (income FUNDING_FEE);
        COIN-M positions too, in their coin."""
        self._engine.settle_funding()
        if self._coinm is not None:
            self._coinm.settle_funding()

    # ------------------------------------------------------------------ assertions
    def orders(self) -> list[EmulatedOrder]:
        """Orders the exchange accepted, oldest first (status, executed qty, avg price)."""
        return sorted(self._engine.orders.values(), key=lambda o: o.order_id)

    def order(self, client_order_id: str, venue: Venue = "futures") -> EmulatedOrder | None:
        """The accepted order with this client id, if any."""
        order_id = self._engine.client_ids.get((venue, client_order_id))
        return self._engine.orders.get(order_id) if order_id is not None else None

    def position(self, symbol: str, position_side: str | None = None) -> Decimal:
        """True signed perp position (no lag), netted over hedge sides unless one is named."""
        return self._engine.true_position(symbol, position_side)

    def spot_balance(self, asset: str) -> Decimal:
        """True free spot balance (no lag)."""
        return self._engine.spot_free.get(asset, Decimal(0))

    def futures_balance(self, asset: str) -> Decimal:
        """True futures wallet balance (no lag)."""
        return self._engine.acct.wallet.get(asset, Decimal(0))

    @property
    def liquidations(self) -> list[tuple[str, Decimal, Decimal, int]]:
        """Positions the emulator liquidated: (symbol id, signed amount, price, time ms)."""
        return self._engine.liquidations

    @property
    def margin_log(self) -> list[MarginChange]:
        """Every isolated-margin change the exchange applied, oldest first."""
        return list(self._engine.margin_history)

    def requests_to(self, path: str, method: str | None = None) -> int:
        """How many requests hit ``path`` (and ``method``)."""
        return sum(1 for m, p in self.request_log if p == path and method in (None, m))

    # ------------------------------------------------------------------ HTTP
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        method, path = request.method, request.path
        self.request_log.append((method, path))
        self.request_queries.append(dict(request.query))
        now = self._clock()
        self._recent.append(now)
        while self._recent and self._recent[0] < now - 60:
            self._recent.popleft()
        params: dict[str, str] = dict(request.query)
        if request.can_read_body:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        self._used_weight = len(self._recent)
        limits = self._futures_limits(path)
        if limits is not None:  # the documented weights and order counts of that API
            try:
                limits.take(method, path, params)
            except weights.Refused as exc:
                self._used_weight = limits.used_weight
                self._log_order(self._creates(method, path), params, f"rejected:{exc.code}", None)
                after = {} if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}
                return self._error(BinanceError(429, exc.code, exc.msg), headers=after)
            self._used_weight = limits.used_weight
        route = self._api.routes.get((method, path))
        if route is None:
            self.unknown_requests.append((method, path))
            log.warning("binance emulator: no route for %s %s", method, path)
            return self._error(BinanceError(404, -5000, f"{method} {path} is not emulated."))
        venue = route.creates_order
        rule = self._faults.take(method, path, venue is not None)
        ctx = RequestContext()
        if rule is not None:
            early = await self._early_fault(rule, route, params, ctx)
            if early is not None:
                return early
        response = self._process(route, params, ctx, request)
        return await self._after_processing(rule, request, response)

    async def _early_fault(
        self, rule: FaultRule, route: Route, params: Params, ctx: RequestContext
    ) -> web.StreamResponse | None:
        """Answer a fault that pre-empts processing, or set flags and return None."""
        venue = route.creates_order
        p = rule.params
        if rule.fault is Fault.RATE_LIMIT:
            retry_after = str(p.get("retry_after", 1))
            self._log_order(venue, params, "rejected:-1003", None)
            return self._error(
                BinanceError(429, -1003, RATE_LIMIT_MSG), headers={"Retry-After": retry_after}
            )
        if rule.fault is Fault.SERVER_ERROR:
            status = int(p.get("status", 503))
            self._log_order(venue, params, f"rejected:http-{status}", None)
            if "code" in p:
                return self._error(BinanceError(status, int(p["code"]), str(p.get("msg", ""))))
            return web.Response(status=status, text=str(p.get("body", "Service Unavailable")))
        if rule.fault is Fault.REJECT:
            code = int(p.get("code", -2019))
            self._log_order(venue, params, f"rejected:{code}", None)
            msg = str(p.get("msg", "Margin is insufficient."))
            return self._error(BinanceError(int(p.get("status", 400)), code, msg))
        if rule.fault is Fault.TIMEOUT and not p.get("accept", False):
            self._log_order(venue, params, "rejected:timeout", None)
            await self._hold(float(p.get("delay_s", 2.0)))
            return self._error(
                BinanceError(
                    503,
                    -1007,
                    "Timeout waiting for response from backend server. "
                    "Send status unknown; execution status unknown.",
                )
            )
        if rule.fault is Fault.PARTIAL_FILL:
            ctx.partial = partial_fraction(p)
        return None

    def _process(
        self, route: Route, params: Params, ctx: RequestContext, request: web.Request
    ) -> web.StreamResponse:
        venue = route.creates_order
        try:
            if route.signed:
                self._authenticate(request, params)
            body = route.handler(params, ctx)
        except BinanceError as exc:
            self._log_order(venue, params, f"rejected:{exc.code}", None)
            return self._error(exc)
        self._log_order(venue, params, "accepted", ctx.order)
        return web.Response(
            status=200,
            text=json.dumps(body, separators=(",", ":")),
            content_type="application/json",
            headers=self._weight_headers(),
        )

    @staticmethod
    def _authenticate(request: web.Request, params: Params) -> None:
        if not request.headers.get("X-MBX-APIKEY"):
            raise BinanceError(401, -2014, "API-key format invalid.")
        if not params.get("signature"):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")
        if not params.get("timestamp"):
            raise BinanceError(
                400,
                -1102,
                "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
            )

    def _futures_limits(self, path: str) -> weights.FuturesLimits | None:
        """The limits a path counts in: USDⓈ-M's, COIN-M's, or none (spot)."""
        if path.startswith("/fapi/"):
            return self.fapi_limits
        if path.startswith("/dapi/"):
            return self.dapi_limits
        return None

    def _creates(self, method: str, path: str) -> Venue | None:
        route = self._api.routes.get((method, path))
        return None if route is None else route.creates_order

    def _weight_headers(self) -> dict[str, str]:
        return {"X-MBX-USED-WEIGHT-1M": str(self._used_weight)}

    def _error(self, exc: BinanceError, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(
            status=exc.status,
            text=json.dumps({"code": exc.code, "msg": exc.msg}),
            content_type="application/json",
            headers={**self._weight_headers(), **(headers or {})},
        )

    def _log_order(
        self, venue: Venue | None, params: Params, outcome: str, order: EmulatedOrder | None
    ) -> None:
        if venue is None:
            return

        self.order_log.append(
            OrderLogEntry(
                time_ms=int(self._clock() * 1000),
                venue=venue,
                client_order_id=params.get("newClientOrderId"),
                symbol=params.get("symbol"),
                side=params.get("side"),
                type=params.get("type"),
                qty=decimal_or_none(params, "quantity"),
                price=decimal_or_none(params, "price"),
                reduce_only=params.get("reduceOnly", "false").lower() == "true",
                outcome=outcome,
                fills=tuple((f.price, f.qty) for f in order.fills) if order else (),
            )
        )


@contextlib.asynccontextmanager
async def ccxt_client(emulator: BinanceEmulator, **extra: Any) -> AsyncIterator[Any]:
    """A real ``ccxt.async_support.binance`` wired to ``emulator``; closed on exit.

    ``extra`` overrides constructor settings (``options`` are merged, not replaced).
    ``timeout_on_exit`` defaults to 0: ccxt's 250 ms pause on close is for TLS sockets.
    """
    import ccxt.async_support as ccxt_async  # heavy import, only when asked

    config = emulator.ccxt_config()
    options = {**config["options"], **extra.pop("options", {})}
    settings = {"apiKey": "k", "secret": "s", "timeout_on_exit": 0, **extra}
    client = ccxt_async.binance({**config, **settings, "options": options})
    try:
        yield client
    finally:
        await client.close()
