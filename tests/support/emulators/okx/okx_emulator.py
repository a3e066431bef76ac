"""An emulator of OKX's v5 REST API (trading account, spot, USDT swaps and coin-margined
swaps) on 127.0.0.1.

The real, unmodified ``ccxt.async_support.okx`` client talks to it through constructor
URL overrides (``OkxEmulator.ccxt_config()``), so tests exercise ccxt's request signing,
parsing and error mapping without any network access. Requests are signed and checked
as OKX checks them (``_okx_guard``), and each endpoint has OKX's rate limit. Tests steer
it with ``set_price``, ``set_balance``, ``set_account_level``, ``set_position_mode``,
``inject`` (faults) and ``position_view_lag_s``, and assert on ``order_log``,
``request_log``, ``orders()``, ``position()``, ``balance()`` and ``equity()``.

Coin-margined (inverse) swaps, ``BTC-USD-SWAP`` (ctVal 100 USD) and ``ETH-USD-SWAP`` (10
USD), ``ctType`` inverse, ``settleCcy`` the coin, ``uly``/``instFamily`` ``BTC-USD``: listed
with instType SWAP (instruments, tickers, mark price, funding ``instId=ANY``), orders in
contracts, margin, fees, PnL and funding (bills type 8) in the coin, held in the one
trading account: the BTC ``cashBal`` is the spot coins and the swap's cash at once,
``eq`` adds the swap's ``upl``, ``frozenBal`` its margin (isolated) or ``imr`` (cross)
and open orders' margin, ``availEq`` is ``eq`` minus ``frozenBal``. Account level 2
(spot and futures mode): each order names cross or isolated (``tdMode``). The
liquidation price is the one-position inverse formula ``(face + mmr x |face|) /
(collateral + face / entry)`` (face signed), empty when no price liquidates it (a short
whose coins cover its face). Account level 3 (multi-currency margin; 4 alike): every
coin backs the cross positions at its tiered discount rate, the balance's account-level
figures and a cross position's liqPx are the account's, and the venue liquidates at a
margin ratio of 100 % (``_okx_collateral``; ``set_discount_tiers``, ``account_figures``,
``liquidations``). Not emulated: coin-margined dated futures, auto-borrow, position
tiers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from tests.support.emulators.okx._okx_collateral import DiscountApi, MultiFigures, Tiers
from tests.support.emulators.okx._okx_engine import Engine
from tests.support.emulators.okx._okx_guard import Credentials, RateLimiter, authenticate
from tests.support.emulators.okx._okx_models import (
    DEFAULT_MARKETS,
    RATE_LIMIT_MSG,
    ZERO,
    EmulatedOrder,
    Fault,
    OkxError,
    OkxMarket,
    OrderLogEntry,
    generate_markets,
)
from tests.support.emulators.okx._okx_private import AccountApi
from tests.support.emulators.okx._okx_public import JSON, PublicApi, RequestContext, Route
from tests.support.emulators.okx._okx_trade import BatchFailed, TradeApi

log = logging.getLogger(__name__)
TIMEOUT_MSG = "Endpoint request timeout. "


@dataclass
class _FaultRule:
    fault: Fault
    path: str | None
    method: str | None
    remaining: int
    params: dict[str, Any]

    def matches(self, method: str, path: str, creates_order: bool) -> bool:
        if self.remaining <= 0 or (self.method is not None and self.method.upper() != method):
            return False
        if self.path is not None:
            return path == self.path
        if self.fault in (Fault.PARTIAL_FILL, Fault.DROP_AFTER_ACCEPT, Fault.REJECT):
            return creates_order
        return True


def _json(status: int, body: JSON, headers: dict[str, str] | None = None) -> web.Response:
    text = json.dumps(body, separators=(",", ":"))
    return web.Response(status=status, text=text, content_type="application/json", headers=headers)


def _error(exc: OkxError) -> web.Response:
    return _json(exc.status, {"code": exc.code, "data": [], "msg": exc.msg})


class OkxEmulator:
    """OKX v5 REST emulator served by aiohttp on loopback."""

    def __init__(
        self,
        *,
        markets: Sequence[OkxMarket] | int | None = None,
        clock: Callable[[], float] | None = None,
        credentials: Credentials | None = None,
        demo: bool = False,
    ) -> None:
        """Create the emulator; ``markets`` lists the coins, or is a count of spot pairs and
        perpetuals to make up (``generate_markets``: 600 is real-sized); ``clock`` returns
        epoch seconds (default wall clock); ``demo`` makes the key a demo-trading one
        (``x-simulated-trading: 1``)."""
        if isinstance(markets, int):
            markets = generate_markets(markets)
        self._clock = clock or time.time
        self.credentials = credentials or Credentials(demo=demo)
        self._engine = Engine(markets or DEFAULT_MARKETS, self._clock)
        self._routes: dict[tuple[str, str], Route] = {
            **PublicApi(self._engine).routes,
            **AccountApi(self._engine).routes,
            **TradeApi(self._engine).routes,
            ("GET", "/api/v5/public/discount-rate-interest-free-quota"): Route(
                DiscountApi(self._engine.multi).discount_rates, False, 2
            ),
        }
        self.limiter = RateLimiter()
        self.url = ""
        self.order_log: list[OrderLogEntry] = []
        self.request_log: list[tuple[str, str]] = []
        self.request_queries: list[dict[str, str]] = []
        self.unknown_requests: list[tuple[str, str]] = []
        self._faults: list[_FaultRule] = []
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._extra_routes: list[web.AbstractRouteDef] = []

    # ------------------------------------------------------------------ lifecycle
    def add_routes(self, routes: Iterable[web.AbstractRouteDef]) -> None:
        """Serve ``routes`` beside the emulated API (matched first); call before start()."""
        if self._runner is not None:
            raise RuntimeError("add_routes() must be called before start()")
        self._extra_routes.extend(routes)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on ``host:port`` (port 0 picks a free one) and set ``url``."""
        if host != "127.0.0.1":
            raise ValueError("the emulator only listens on 127.0.0.1")
        app = web.Application()
        app.router.add_routes(self._extra_routes)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner = runner
        self._closing = asyncio.Event()
        self.url = f"http://{host}:{int(runner.addresses[0][1])}"

    async def stop(self) -> None:
        """Stop serving; held (TIMEOUT) answers are released at once."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> OkxEmulator:
        """Start on a free port."""
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop."""
        await self.stop()

    def ccxt_config(self) -> dict[str, Any]:
        """ccxt okx constructor config: both the live and the sandbox (demo) URL point
        here, and the emulated key's credentials (``password`` is OKX's passphrase)."""
        if not self.url:
            raise RuntimeError("start() the emulator first")
        creds = self.credentials
        return {
            "urls": {"api": {"rest": self.url}, "test": {"rest": self.url}},
            "apiKey": creds.api_key,
            "secret": creds.secret,
            "password": creds.passphrase,
        }

    # ------------------------------------------------------------------ state control
    @property
    def position_view_lag_s(self) -> float:
        """Seconds before /account/positions and /account/balance show a fill."""
        return self._engine.account.lag_s

    @position_view_lag_s.setter
    def position_view_lag_s(self, value: float) -> None:
        self._engine.account.lag_s = value

    @property
    def client_order_id_scope(self) -> str:
        """``open`` (default): a clOrdId is refused (51016) only while an order with it is
        live; ``all``: never reused."""
        return self._engine.client_order_id_scope

    @client_order_id_scope.setter
    def client_order_id_scope(self, value: str) -> None:
        if value not in ("all", "open"):
            raise ValueError("client_order_id_scope is 'all' or 'open'")
        self._engine.client_order_id_scope = value

    def set_price(self, base_or_id: str, price: Decimal, spread_bps: Decimal = Decimal(2)) -> None:
        """Set last/mark and bid/ask of a coin's instruments; fills crossing limits."""
        self._engine.set_price(base_or_id, Decimal(price), Decimal(spread_bps))
        self._engine.multi.liquidate_if_due()

    def set_balance(self, ccy: str, amount: Decimal) -> None:
        """Set the trading account's cash balance (cashBal) of ``ccy``."""
        self._engine.account.set_cash(ccy, Decimal(amount))

    def set_account_level(self, level: str) -> None:
        """acctLv: ``1`` spot mode (no contracts, 51010), ``2`` spot and futures, ``3``
        multi-currency margin (the coins as collateral; 4 alike)."""
        self._engine.account.acct_lv = str(level)

    def set_discount_tiers(self, ccy: str, tiers: Tiers) -> None:
        """A coin's discount-rate tiers at level 3: (from this many coins, the rate)."""
        self._engine.multi.tier_overrides[ccy] = tiers

    def account_figures(self) -> MultiFigures:
        """The account's level-3 figures now (unlagged): adjEq, imr, mmr, fees."""
        return self._engine.multi.figures(lagged=False)

    def total_eq(self) -> Decimal:
        """True (unlagged) totalEq: every coin's equity at its full USD value."""
        account, multi = self._engine.account, self._engine.multi
        snap = account.view(lagged=False)
        return sum(((snap.cash[c] + account.upl(c, snap)) * multi.usd(c) for c in snap.cash), ZERO)

    def liquidations(self) -> list[tuple[int, Decimal, Decimal]]:
        """The account's liquidations at level 3: (time ms, adjEq, mmr + fees)."""
        return list(self._engine.multi.liquidations)

    def set_position_mode(self, mode: str) -> None:
        """``net_mode`` or ``long_short_mode``, without OKX's 59000 check."""
        self._engine.set_position_mode(mode, strict=False)

    def set_leverage(
        self, inst_id: str, lever: int, mgn_mode: str = "cross", pos_side: str = "net"
    ) -> None:
        """Set an instrument's leverage directly."""
        inst = self._engine.inst(inst_id)
        self._engine.account.set_lever(inst, mgn_mode, pos_side, lever)

    def set_market(self, base_or_id: str, **changes: Any) -> OkxMarket:
        """Change a coin's market from now on, e.g. ``ct_lot_sz=Decimal(1)``,
        ``state="suspend"``."""
        return self._engine.replace_market(base_or_id, **changes)

    def set_funding_rate(self, inst_id: str, rate: Decimal) -> None:
        """Set the rate /public/funding-rate reports and ``settle_funding`` applies."""
        self._engine.funding_rates[self._engine.inst(inst_id).inst_id] = Decimal(rate)

    def settle_funding(self) -> None:
        """Pay/charge funding on open swap positions (bills type 8, subType 173/174)."""
        self._engine.settle_funding()

    def set_rate_limit(self, path: str, limit: int, window_s: float) -> None:
        """Replace OKX's limit of one endpoint (e.g. to trip it in a test)."""
        self.limiter.overrides[path] = (limit, window_s)

    def inject(
        self,
        fault: Fault,
        *,
        path: str | None = None,
        method: str | None = None,
        count: int = 1,
        **params: Any,
    ) -> None:
        """Make the next ``count`` matching requests fail with ``fault``.

        ``path`` matches exactly; without it, PARTIAL_FILL, DROP_AFTER_ACCEPT and REJECT
        match order placement and the rest match any request.
        """
        self._faults.append(_FaultRule(fault, path, method, count, dict(params)))

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        self._faults.clear()

    # ------------------------------------------------------------------ assertions
    def orders(self) -> list[EmulatedOrder]:
        """Orders the exchange accepted, oldest first."""
        return sorted(self._engine.orders.values(), key=lambda o: int(o.ord_id))

    def order(self, cl_ord_id: str) -> EmulatedOrder | None:
        """The newest accepted order with this clOrdId, if any."""
        found = [o for o in self.orders() if o.cl_ord_id == cl_ord_id]
        return found[-1] if found else None

    def position(self, inst_id: str, pos_side: str | None = None) -> Decimal:
        """True (unlagged) position in contracts, signed, over margin modes and sides
        unless ``pos_side`` names one (then unsigned, as OKX shows it)."""
        total = ZERO
        for state in self._engine.account.positions.values():
            if state.inst_id != inst_id:
                continue
            if pos_side is not None:
                total += state.pos if state.pos_side == pos_side else ZERO
            else:
                total += -state.pos if state.pos_side == "short" else state.pos
        return total

    def balance(self, ccy: str) -> Decimal:
        """True (unlagged) cashBal of ``ccy``."""
        return self._engine.account.cash.get(ccy, ZERO)

    def equity(self, ccy: str) -> Decimal:
        """True (unlagged) ``eq`` of ``ccy``: cashBal plus the unrealized PnL of the
        positions it settles (the coin's, for an inverse swap)."""
        account = self._engine.account
        snap = account.view(lagged=False)
        return snap.cash.get(ccy, ZERO) + account.upl(ccy, snap)

    def requests_to(self, path: str, method: str | None = None) -> int:
        """How many requests hit ``path`` (and ``method``)."""
        return sum(1 for m, p in self.request_log if p == path and method in (None, m))

    # ------------------------------------------------------------------ HTTP
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        method, path = request.method, request.path
        self.request_log.append((method, path))
        self.request_queries.append(dict(request.query))
        route = self._routes.get((method, path))
        if route is None:
            self.unknown_requests.append((method, path))
            log.warning("okx emulator: no route for %s %s", method, path)
            return _json(404, {"code": "50000", "data": [], "msg": f"{path} is not emulated"})
        raw_body = await request.text() if request.can_read_body else ""
        ctx = RequestContext()
        try:
            params = self._params(request, raw_body, ctx)
        except OkxError as exc:
            return _error(exc)
        rule = self._take_fault(method, path, route.creates_order)
        if rule is not None:
            early = await self._early_fault(rule, route, ctx)
            if early is not None:
                return early
        response = self._process(route, params, ctx, request, raw_body)
        if rule is not None and rule.fault is Fault.DROP_AFTER_ACCEPT:
            if request.transport is not None:
                request.transport.abort()
            return response
        if rule is not None and rule.fault is Fault.TIMEOUT:
            await self._hold(float(rule.params.get("delay_s", 2.0)))
        return response

    @staticmethod
    def _params(request: web.Request, raw_body: str, ctx: RequestContext) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST":
            if not raw_body:
                raise OkxError("50000", "Body can not be empty.", 400)
            try:
                ctx.body = json.loads(raw_body)
            except ValueError:
                raise OkxError("50002", "Json data format error.", 400) from None
            if isinstance(ctx.body, dict):
                params.update(ctx.body)
        return params

    def _take_fault(self, method: str, path: str, creates_order: bool) -> _FaultRule | None:
        for rule in self._faults:
            if rule.matches(method, path, creates_order):
                rule.remaining -= 1
                self._faults = [r for r in self._faults if r.remaining > 0]
                return rule
        return None

    async def _early_fault(
        self, rule: _FaultRule, route: Route, ctx: RequestContext
    ) -> web.StreamResponse | None:
        """Answer a fault that pre-empts processing, or set flags and return None."""
        p = rule.params
        if rule.fault is Fault.RATE_LIMIT:
            self._log_orders(route, ctx, "rejected:50011")
            return _error(OkxError("50011", RATE_LIMIT_MSG, 429))
        if rule.fault is Fault.SERVER_ERROR:
            status = int(p.get("status", 503))
            self._log_orders(route, ctx, f"rejected:http-{status}")
            if "code" in p:
                return _error(OkxError(str(p["code"]), str(p.get("msg", "")), status))
            return web.Response(status=status, text=str(p.get("body", "Service Unavailable")))
        if rule.fault is Fault.REJECT:
            return self._reject(route, ctx, p)
        if rule.fault is Fault.TIMEOUT and not p.get("accept", False):
            self._log_orders(route, ctx, "rejected:timeout")
            await self._hold(float(p.get("delay_s", 2.0)))
            return _error(OkxError("50004", TIMEOUT_MSG, 400))
        if rule.fault is Fault.PARTIAL_FILL:
            try:
                ctx.partial = Decimal(str(p.get("fraction", "0.5")))
            except InvalidOperation:
                raise ValueError("PARTIAL_FILL fraction must be a decimal") from None
        return None

    def _reject(self, route: Route, ctx: RequestContext, p: dict[str, Any]) -> web.Response:
        code = str(p.get("code", "51008"))
        msg = str(p.get("msg", "Order failed. Insufficient USDT margin in account"))
        self._log_orders(route, ctx, f"rejected:{code}")
        if not route.creates_order:
            return _error(OkxError(code, msg, int(p.get("status", 200))))
        items = ctx.body if isinstance(ctx.body, list) else [ctx.body]
        rows = [
            {
                "clOrdId": str(i.get("clOrdId", "")) if isinstance(i, dict) else "",
                "ordId": "",
                "sCode": code,
                "sMsg": msg,
                "tag": "",
                "ts": str(int(self._clock() * 1000)),
            }
            for i in items
        ]
        return _json(200, {"code": "1", "data": rows, "msg": "All operations failed"})

    async def _hold(self, delay_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), timeout=delay_s)

    def _limit_keys(self, route: Route, params: dict[str, Any], ctx: RequestContext) -> list[str]:
        if route.scope == "ip":
            return ["ip"]
        if route.scope == "user" or not route.creates_order:
            inst = str(params.get("instId", "")) if route.scope == "inst" else ""
            return [f"user:{inst}"]
        items = ctx.body if isinstance(ctx.body, list) else [ctx.body]
        return [f"user:{i.get('instId', '')}" for i in items if isinstance(i, dict)]

    def _process(
        self,
        route: Route,
        params: dict[str, Any],
        ctx: RequestContext,
        request: web.Request,
        raw_body: str,
    ) -> web.StreamResponse:
        try:
            if route.signed:
                authenticate(
                    request.headers, request.method, request.raw_path, raw_body,
                    self._clock(), self.credentials,
                )  # fmt: skip
            keys = self._limit_keys(route, params, ctx)
            self.limiter.check(request.path, route.limit, route.window_s, keys, self._clock())
            data = route.handler(params, ctx)
        except OkxError as exc:
            self._log_orders(route, ctx, f"rejected:{exc.code}")
            return _error(exc)
        except BatchFailed as failed:
            self._log_orders(route, ctx, "")
            return _json(200, {"code": "1", "data": failed.rows, "msg": "All operations failed"})
        self._log_orders(route, ctx, "")
        if route.creates_order and any(o is None for o in ctx.orders):
            return _json(
                200, {"code": "2", "data": data, "msg": "Bulk operation partially succeeded"}
            )
        return _json(200, {"code": "0", "data": data, "msg": ""})

    def _log_orders(self, route: Route, ctx: RequestContext, outcome: str) -> None:
        """One entry per order of a placing request; ``outcome`` overrides per-order ones."""
        if not route.creates_order:
            return
        items = ctx.body if isinstance(ctx.body, list) else [ctx.body]
        for index, item in enumerate(items):
            raw = item if isinstance(item, dict) else {}
            order = ctx.orders[index] if index < len(ctx.orders) else None
            result = outcome or ("accepted" if order is not None else "rejected")
            self.order_log.append(_log_entry(self._clock(), raw, result, order))


def _decimal(raw: Any) -> Decimal | None:
    try:
        return Decimal(str(raw)) if raw not in (None, "") else None
    except InvalidOperation:
        return None


def _log_entry(
    now: float, item: dict[str, Any], outcome: str, order: EmulatedOrder | None
) -> OrderLogEntry:
    return OrderLogEntry(
        time_ms=int(now * 1000),
        cl_ord_id=item.get("clOrdId"),
        inst_id=item.get("instId"),
        side=item.get("side"),
        ord_type=item.get("ordType"),
        size=_decimal(item.get("sz")),
        price=_decimal(item.get("px")),
        td_mode=item.get("tdMode"),
        pos_side=item.get("posSide"),
        reduce_only=str(item.get("reduceOnly", "false")).lower() == "true",
        outcome=outcome,
        fills=tuple((f.price, f.size) for f in order.fills) if order else (),
    )


@contextlib.asynccontextmanager
async def ccxt_client(emulator: OkxEmulator, **extra: Any) -> AsyncIterator[Any]:
    """A real ``ccxt.async_support.okx`` wired to ``emulator``; closed on exit.

    ``extra`` overrides constructor settings (``options`` are merged, not replaced);
    ``sandbox=True`` turns on ccxt's demo mode (header ``x-simulated-trading: 1``).
    ``timeout_on_exit`` defaults to 0: ccxt's 250 ms pause on close is for TLS sockets.
    """
    import ccxt.async_support as ccxt_async  # heavy import, only when asked

    sandbox = bool(extra.pop("sandbox", False))
    config = emulator.ccxt_config()
    options = {**config.get("options", {}), **extra.pop("options", {})}
    settings = {"timeout_on_exit": 0, **config, **extra, "options": options}
    client = ccxt_async.okx(settings)
    if sandbox:
        client.set_sandbox_mode(True)
    try:
        yield client
    finally:
        await client.close()
