"""An emulator of Bybit's v5 REST API (unified trading account) on 127.0.0.1.

The real, unmodified ``ccxt.async_support.bybit`` client talks to it through
constructor URL overrides (``BybitEmulator.ccxt_config()``). Tests steer it with
``set_price``, ``set_balance``, ``inject`` (faults), ``position_view_lag_s`` and the
limiters, and assert on ``order_log``, ``request_log``, ``orders()`` and ``position()``.

What ccxt (4.5.90) does against a unified account, for whoever writes the venue module
(each point is a test in ``tests/emulator/test_bybit_emulator_with_ccxt.py``):

- ``load_markets``: with keys, first the *signed* /v5/asset/coin/query-info
  (``fetchCurrencies``, cost 28 in ccxt's limiter), so a bad key or a skewed clock
  fails market loading; ``{"has": {"fetchCurrencies": False}}`` keeps it public. Then
  /v5/market/instruments-info: ``category=spot`` once (Bybit does not page spot), and
  ``category=linear`` twice (``limit=1000``; ``status=PreLaunch``), walking
  ``nextPageCursor``. ccxt's default types add ``inverse`` and six ``option`` calls
  (answered empty); ``ccxt_config()`` asks for ``spot`` and ``linear`` only. Symbols:
  ``BTC/USDT`` (spot), ``BTC/USDT:USDT`` (perp, contractSize 1), dated
  ``BTC/USDT:USDT-270326`` (id ``BTCUSDT-26MAR27``); a market built with
  ``inverse=True`` also lists ``BTC/USD:BTC`` (id ``BTCUSD``, category ``inverse``,
  contractSize 1 from ``minOrderQty``), margined by the coin's row of the one wallet
  (``tests/emulator/test_bybit_inverse_with_ccxt.py``).
- The first private call also asks /v5/user/query-api and /v5/account/info (``uta:
  1``, ``unifiedMarginStatus`` 6); ccxt then sends UTA requests
  (``accountType=UNIFIED``, ``category`` on order calls). In demo mode
  (``enable_demo_trading``) it skips both and the currency call.
- ``create_order`` returns ids only (status, filled: None): Bybit answers
  ``{orderId, orderLinkId}``. ``clientOrderId`` is sent as ``orderLinkId``.
- Looking an order up by client id: ``fetch_open_orders(symbol,
  params={"orderLinkId": cid})`` — /v5/order/realtime asked by ``orderLinkId`` finds
  the order open *or* recently closed (the last 500 a category) — then, for an
  order gone from that cache (a venue restart), ``fetch_canceled_and_closed_orders(
  symbol, params={"orderLinkId": cid})`` (/v5/order/history). Not ``fetch_order``,
  ``fetch_open_order`` or ``fetch_closed_order`` with ``id=None``: ccxt sends
  ``orderId=None``, which Bybit looks up first, so OrderNotFound; ``fetch_order`` by
  the venue id also needs ``params={"acknowledged": True}``. Not
  ``fetch_closed_orders`` either: it adds ``orderStatus=Filled``, so a partly
  filled IOC (Cancelled) is missing. ``cancel_order(None, symbol,
  params={"orderLinkId": cid})`` works.
- A partly filled spot IOC is ``PartiallyFilledCanceled``, which ccxt does not map:
  it reports ``closed`` with ``filled < amount``; a linear one is ``canceled``.
- ``set_margin_mode`` is account-wide (/v5/account/set-margin-mode; the symbol is
  ignored); ``set_leverage`` to the current value raises ``BadRequest`` (110043
  "leverage not modified"), which a caller should treat as done; ``fetch_positions``
  refuses more than one symbol and without one lists by ``settleCoin`` (USDT);
  ccxt has no ``add_margin`` for Bybit: ``privatePostV5PositionAddMargin``
  (isolated margin mode only); hedge mode needs ``params={"hedged": True}``.
- Errors are HTTP 200 with ``retCode`` ≠ 0. 10002 (timestamp/recvWindow) is
  ``InvalidNonce``, a ccxt *NetworkError*; 10003/10004 ``AuthenticationError``;
  10006 ``RateLimitExceeded``; the per-IP HTTP 403 is ``RateLimitExceeded`` too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.support.emulators._common import (
    FaultRule,
    LoopbackServer,
    decimal_or_none,
    json_body,
    partial_fraction,
)
from tests.support.emulators.bybit._bybit_account_api import AccountApi
from tests.support.emulators.bybit._bybit_collateral import AccountFigures, CollateralApi
from tests.support.emulators.bybit._bybit_engine import Engine
from tests.support.emulators.bybit._bybit_http import (
    WRITE_LIMIT,
    IpLimiter,
    LimitExceeded,
    RequestContext,
    Route,
    UidLimiter,
    split_environment,
    verify_signature,
)
from tests.support.emulators.bybit._bybit_market_api import MarketApi
from tests.support.emulators.bybit._bybit_models import (
    DEFAULT_MARKETS,
    BybitError,
    Category,
    EmulatedMarket,
    EmulatedOrder,
    Fault,
    OrderLogEntry,
)
from tests.support.emulators.bybit._bybit_order_api import OrderApi
from tests.support.emulators.bybit._bybit_risk_limit import risk_limit

log = logging.getLogger(__name__)

CCXT_API_KEYS = ("spot", "futures", "v2", "public", "private")
ENV_PREFIX = {"mainnet": "", "testnet": "/testnet", "demo": "/demo"}
ORDER_CREATE = "/v5/order/create"


def generated_markets(count: int) -> list[EmulatedMarket]:
    """BTC and ETH plus ``count`` made-up coins: about ``count`` spot and linear symbols.

    Most coins list both a spot pair and a perp; one in twelve is spot-only and one in
    twelve perp-only, as on the real venue.
    """
    extra = []
    for i in range(max(0, round((count - len(DEFAULT_MARKETS)) * 12 / 11))):
        kind = i % 12
        extra.append(
            EmulatedMarket(
                base=f"C{i:04d}",
                spot=kind != 1,
                perp=kind != 2,
                price=Decimal(1 + i % 250),
                tick_size=Decimal("0.001"),
                qty_step=Decimal("0.1"),
                min_qty=Decimal("0.1"),
                spot_base_precision=Decimal("0.01"),
                spot_tick_size=Decimal("0.001"),
                level_qty=Decimal(1000),
            )
        )
    return [*DEFAULT_MARKETS, *extra]


class BybitEmulator(LoopbackServer):
    """Bybit v5 REST emulator (unified account: spot, linear, inverse) on loopback."""

    def __init__(
        self,
        *,
        markets: Sequence[EmulatedMarket] | int | None = None,
        clock: Callable[[], float] | None = None,
        credentials: dict[str, dict[str, str]] | None = None,
    ) -> None:
        """Create the emulator.

        ``markets``: the markets, or a count for ``generated_markets`` (benchmarks).
        ``clock``: epoch seconds (default wall clock). ``credentials``: per environment
        (``mainnet``, ``testnet``, ``demo``) the API keys it accepts, key → secret
        (default ``{"k": "s"}`` everywhere).
        """
        super().__init__()
        self._clock = clock or time.time
        chosen = generated_markets(markets) if isinstance(markets, int) else markets
        self._engine = Engine(chosen or DEFAULT_MARKETS, self._clock)
        self.credentials = credentials or {env: {"k": "s"} for env in ENV_PREFIX}
        first_key = next(iter(self.credentials.get("mainnet", {"k": "s"})))
        self.market_api = MarketApi(self._engine)
        self.account_api = AccountApi(self._engine, first_key)
        self.order_api = OrderApi(self._engine)
        self.collateral_api = CollateralApi(self._engine)
        self.routes = self._route_table()
        self.uid_limiter = UidLimiter()
        self.ip_limiter = IpLimiter()
        self.order_log: list[OrderLogEntry] = []
        self.request_log: list[tuple[str, str]] = []
        self.request_queries: list[dict[str, str]] = []  # each request's query, in order
        self.env_log: list[str] = []
        self.link_log: list[str | None] = []  # the orderLinkId a request's query names
        self.unknown_requests: list[tuple[str, str]] = []

    def _route_table(self) -> dict[tuple[str, str], Route]:
        m, a, o = self.market_api, self.account_api, self.order_api
        public = {
            "time": m.time,
            "instruments-info": m.instruments_info,
            "tickers": m.tickers,
            "orderbook": m.orderbook,
            "kline": m.kline,
            "mark-price-kline": m.price_kline,
            "index-price-kline": m.price_kline,
            "funding/history": m.funding_history,
            "open-interest": m.open_interest,
            "risk-limit": lambda params: risk_limit(self._engine.book, params),
        }
        reads = {
            "/v5/user/query-api": a.query_api,
            "/v5/account/info": a.account_info,
            "/v5/asset/coin/query-info": a.coin_info,
            "/v5/account/fee-rate": a.fee_rate,
            "/v5/account/wallet-balance": a.wallet_balance,
            "/v5/account/collateral-info": self.collateral_api.collateral_info,
            "/v5/account/transaction-log": a.transaction_log,
            "/v5/position/list": a.position_list,
            "/v5/order/realtime": o.realtime,
            "/v5/order/history": o.history,
            "/v5/execution/list": o.executions,
        }
        writes = {
            "/v5/order/cancel": o.cancel,
            "/v5/order/cancel-all": o.cancel_all,
            "/v5/position/set-leverage": a.set_leverage,
            "/v5/position/switch-mode": a.switch_mode,
            "/v5/position/add-margin": a.add_margin,
            "/v5/account/set-margin-mode": a.set_margin_mode,
        }
        table = {("GET", f"/v5/market/{k}"): Route(_plain(h), False) for k, h in public.items()}
        table[("GET", "/v5/spot-margin-trade/collateral")] = Route(
            _plain(self.collateral_api.tiered_collateral), False
        )
        table.update({("GET", p): Route(_plain(h), True) for p, h in reads.items()})
        table.update(
            {("POST", p): Route(_plain(h), True, limit=WRITE_LIMIT) for p, h in writes.items()}
        )
        table[("POST", ORDER_CREATE)] = Route(self._create, True, True, WRITE_LIMIT)
        return table

    def _create(self, params: dict[str, Any], ctx: RequestContext) -> Any:
        body, ctx.order = self.order_api.create(params, ctx.partial)
        return body

    # ------------------------------------------------------------------ ccxt
    def ccxt_config(self, environment: str = "mainnet") -> dict[str, Any]:
        """ccxt bybit constructor config that points every base URL at this emulator.

        ``urls['api']`` serves ``environment``; ``urls['test']`` (set_sandbox_mode) the
        ``/testnet`` prefix and ``urls['demotrading']`` (enable_demo_trading) ``/demo``,
        so a test can tell which environment ccxt switched to (``env_log``).
        """
        if not self.url:
            raise RuntimeError("start() the emulator first")

        def urls(env: str) -> dict[str, str]:
            return {key: f"{self.url}{ENV_PREFIX[env]}" for key in CCXT_API_KEYS}

        return {
            "urls": {
                "api": urls(environment),
                "test": urls("testnet"),
                "demotrading": urls("demo"),
            },
            "options": {"fetchMarkets": {"types": ["spot", "linear"]}},
        }

    # ------------------------------------------------------------------ steering
    def daemon_account(self) -> dict[str, Any]:
        """A daemon account (``Settings.accounts`` entry) on this emulator's mainnet URLs
        (testnet mode), 1 s requests, a generous limiter."""
        return {
            "exchange": "bybit",
            "api_key": "k",
            "secret": "s",
            "ccxt_config": {**self.ccxt_config(), "timeout": 1000},
            "rate_limit_per_s": "500",
        }

    @property
    def position_view_lag_s(self) -> float:
        """Seconds before wallet-balance and position/list show a fill."""
        return self._engine.account.lag_s

    @position_view_lag_s.setter
    def position_view_lag_s(self, value: float) -> None:
        self._engine.account.lag_s = value

    def set_price(self, base: str, price: Decimal, spread_bps: Decimal = Decimal(2)) -> None:
        """Set last/mark/index and bid/ask of a coin's instruments; fills crossing limits."""
        self._engine.book.set_price(base, Decimal(price), Decimal(spread_bps))
        self._engine.match_resting(self._engine.book.resolve_base(base))
        self._engine.margin.liquidate_if_due()

    def set_collateral(self, coin: str, on: bool) -> None:
        """A coin's collateralSwitch on the unified account (on by default)."""
        off = self._engine.margin.collateral_off
        if on:
            off.discard(coin)
        else:
            off.add(coin)

    def liquidations(self) -> list[tuple[int, Decimal, Decimal]]:
        """The account's liquidations: (time ms, margin balance, maintenance margin)."""
        return list(self._engine.margin.liquidations)

    def account_figures(self) -> AccountFigures:
        """The account-wide figures now (no lag), in USD."""
        return self._engine.margin.figures(lagged=False)

    def set_balance(self, coin: str, amount: Decimal) -> None:
        """Set a coin's balance in the unified wallet (spot and margin share it)."""
        self._engine.account.set_balance(coin, Decimal(amount))

    def set_funding_rate(self, base: str, rate: Decimal) -> None:
        """Set the funding rate tickers report and ``settle_funding`` applies."""
        self._engine.book.funding_rates[self._engine.book.resolve_base(base)] = Decimal(rate)

    def settle_funding(self) -> None:
        """Charge/pay funding on open perp positions (execution list, execType Funding)."""
        self._engine.settle_funding()

    def set_market(self, base: str, **changes: Any) -> None:
        """Change a coin's market spec (``qty_step``, ``min_notional``…) from now on."""
        self._engine.book.replace_market(base, **changes)

    def set_leverage(self, symbol: str, leverage: Decimal) -> None:
        """Set a linear symbol's leverage directly."""
        self._engine.account.leverage[symbol] = Decimal(leverage)

    def restart_order_cache(self) -> None:
        """A venue restart: closed orders leave /v5/order/realtime (history keeps them)."""
        self._engine.forgotten.update(o for o, v in self._engine.orders.items() if not v.is_open)

    def set_instruments_page_cap(self, rows: int) -> None:
        """Serve at most ``rows`` linear instruments a page (Bybit: 1000)."""
        self.market_api.page_cap = rows

    # ------------------------------------------------------------------ assertions
    @property
    def margin_mode(self) -> str:
        """The account-wide margin mode (REGULAR_MARGIN, ISOLATED_MARGIN, …)."""
        return self._engine.account.margin_mode

    def orders(self) -> list[EmulatedOrder]:
        """Orders the exchange accepted, oldest first."""
        return list(self._engine.orders.values())

    def order(self, order_link_id: str, category: Category = "linear") -> EmulatedOrder | None:
        """The accepted order with this orderLinkId, if any."""
        found = self._engine.link_ids.get((category, order_link_id))
        return self._engine.orders.get(found) if found else None

    def coin_equity(self, coin: str) -> Decimal:
        """A coin's true wallet balance plus the uPnL of the inverse contracts settled in
        it (no lag): the coins the unified wallet is worth in that coin."""
        engine = self._engine
        views = engine.account.views(engine.marks(), lagged=False)
        upnl = sum((v.unrealised for v in views if v.coin == coin), Decimal(0))
        return engine.account.live.wallet.get(coin, Decimal(0)) + upnl

    def position(self, symbol: str, idx: int | None = None) -> Decimal:
        """True signed position (no lag), summed over hedge sides unless one is named."""
        return sum(
            (
                s.size
                for (sym, i), s in self._engine.account.live.positions.items()
                if sym == symbol and idx in (None, i)
            ),
            Decimal(0),
        )

    def balance(self, coin: str) -> Decimal:
        """True wallet balance of ``coin`` (no lag)."""
        return self._engine.account.live.wallet.get(coin, Decimal(0))

    def requests_to(self, path: str, method: str | None = None) -> int:
        """How many requests hit ``path`` (and ``method``)."""
        return sum(1 for m, p in self.request_log if p == path and method in (None, m))

    # ------------------------------------------------------------------ HTTP
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        env, path = split_environment(request.path)
        method = request.method
        self.request_log.append((method, path))
        self.request_queries.append(dict(request.query))
        self.env_log.append(env)
        self.link_log.append(request.query.get("orderLinkId"))
        if not self.ip_limiter.allow(self._clock()):
            return web.Response(status=403, text="access too frequent")
        route = self.routes.get((method, path))
        if route is None:
            self.unknown_requests.append((method, path))
            log.warning("bybit emulator: no route for %s %s", method, path)
            return self._answer(BybitError(10017, "route not found", status=404))
        payload = request.rel_url.raw_query_string if method == "GET" else await request.text()
        try:
            params = self._params(request, payload)
        except BybitError as exc:
            return self._answer(exc)
        rule = self._faults.take(method, path, route.creates_order)
        ctx = RequestContext()
        if rule is not None:
            early = await self._early_fault(rule, route, params, ctx)
            if early is not None:
                return early
        response = self._process(env, path, route, params, payload, ctx, request)
        return await self._after_processing(rule, request, response)

    @staticmethod
    def _params(request: web.Request, payload: str) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and payload:
            try:
                body = json.loads(payload)
            except ValueError:
                raise BybitError(10001, "params error: request body is not JSON") from None
            if not isinstance(body, dict):
                raise BybitError(10001, "params error: request body is not a JSON object")
            params.update(body)
        return params

    async def _early_fault(
        self, rule: FaultRule, route: Route, params: dict[str, Any], ctx: RequestContext
    ) -> web.StreamResponse | None:
        """Answer a fault that pre-empts processing, or set flags and return None."""
        p, fault = rule.params, rule.fault
        if fault is Fault.RATE_LIMIT:
            self._log_order(route, params, "rejected:10006", None)
            reset = self._engine.now_ms() + int(float(p.get("retry_after", 1)) * 1000)
            headers = UidLimiter.headers(route.limit, 0, reset)
            return self._answer(BybitError(10006, "Too many visits!"), headers)
        if fault is Fault.IP_BAN:
            self._log_order(route, params, "rejected:http-403", None)
            return web.Response(status=403, text="access too frequent")
        if fault is Fault.SERVER_ERROR:
            if "code" in p:
                self._log_order(route, params, f"rejected:{p['code']}", None)
                return self._answer(
                    BybitError(int(p["code"]), str(p.get("msg", "Internal system error.")))
                )
            status = int(p.get("status", 503))
            self._log_order(route, params, f"rejected:http-{status}", None)
            return web.Response(status=status, text=str(p.get("body", "Service Unavailable")))
        if fault is Fault.REJECT:
            code = int(p.get("code", 110007))
            self._log_order(route, params, f"rejected:{code}", None)
            return self._answer(BybitError(code, str(p.get("msg", "ab not enough for new order"))))
        if fault is Fault.TIMEOUT and not p.get("accept", False):
            self._log_order(route, params, "rejected:timeout", None)
            await self._hold(float(p.get("delay_s", 2.0)))
            return self._answer(BybitError(10016, "Server Timeout"))
        if fault is Fault.PARTIAL_FILL:
            ctx.partial = partial_fraction(p)
        return None

    def _process(
        self,
        env: str,
        path: str,
        route: Route,
        params: dict[str, Any],
        payload: str,
        ctx: RequestContext,
        request: web.Request,
    ) -> web.StreamResponse:
        headers: dict[str, str] = {}
        try:
            if route.signed:
                now = self._engine.now_ms()
                verify_signature(request.headers, payload, self.credentials.get(env, {}), now)
                headers = self.uid_limiter.take(path, route.limit, now)
            result = route.handler(params, ctx)
        except LimitExceeded as exc:
            self._log_order(route, params, "rejected:10006", None)
            return self._answer(BybitError(10006, "Too many visits!"), exc.headers)
        except BybitError as exc:
            self._log_order(route, params, f"rejected:{exc.code}", None)
            return self._answer(exc, headers)
        self._log_order(route, params, "accepted", ctx.order)
        body = {
            "retCode": 0,
            "retMsg": "OK",
            "result": result,
            "retExtInfo": {},
            "time": self._engine.now_ms(),
        }
        return web.Response(text=json_body(body), content_type="application/json", headers=headers)

    def _answer(self, exc: BybitError, headers: dict[str, str] | None = None) -> web.Response:
        body = {
            "retCode": exc.code,
            "retMsg": exc.msg,
            "result": exc.result,
            "retExtInfo": {},
            "time": self._engine.now_ms(),
        }
        return web.Response(
            status=exc.status,
            text=json_body(body),
            content_type="application/json",
            headers=headers,
        )

    def _log_order(
        self, route: Route, params: dict[str, Any], outcome: str, order: EmulatedOrder | None
    ) -> None:
        if not route.creates_order:
            return

        self.order_log.append(
            OrderLogEntry(
                time_ms=self._engine.now_ms(),
                category=params.get("category"),
                order_link_id=params.get("orderLinkId"),
                symbol=params.get("symbol"),
                side=params.get("side"),
                order_type=params.get("orderType"),
                qty=decimal_or_none(params, "qty"),
                price=decimal_or_none(params, "price"),
                reduce_only=str(params.get("reduceOnly", False)).lower() == "true",
                outcome=outcome,
                fills=tuple((f.price, f.qty) for f in order.fills) if order else (),
            )
        )


def _plain(
    handler: Callable[[dict[str, Any]], Any],
) -> Callable[[dict[str, Any], RequestContext], Any]:
    """Adapt a handler that needs only the parameters to the route signature."""
    return lambda params, _ctx: handler(params)


@contextlib.asynccontextmanager
async def ccxt_client(emulator: BybitEmulator, **extra: Any) -> AsyncIterator[Any]:
    """A real ``ccxt.async_support.bybit`` wired to ``emulator``; closed on exit.

    ``extra`` overrides constructor settings (``options`` are merged, not replaced).
    ``timeout_on_exit`` defaults to 0: ccxt's 250 ms pause on close is for TLS sockets.
    """
    import ccxt.async_support as ccxt_async  # heavy import, only when asked

    config = emulator.ccxt_config(extra.pop("environment", "mainnet"))
    options = {**config["options"], **extra.pop("options", {})}
    settings = {"apiKey": "k", "secret": "s", "timeout_on_exit": 0, **extra}
    client = ccxt_async.bybit({**config, **settings, "options": options})
    try:
        yield client
    finally:
        await client.close()
