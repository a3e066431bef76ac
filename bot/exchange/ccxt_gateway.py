"""ExchangeGateway over ``ccxt.async_support``: one client, one limiter, one retry policy
per exchange account.

Everything ccxt returns is mapped here to the domain models (floats become
``Decimal(str(x))``); no ccxt dict or exception leaves this module.
"""

from __future__ import annotations

import decimal
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async
import structlog
from asyncio_throttle.throttler import Throttler
from ccxt.base import errors as ccxt_errors
from ccxt.base.decimal_to_precision import DECIMAL_PLACES, SIGNIFICANT_DIGITS

from bot.clock import Clock
from bot.config import AccountConfig, Mode
from bot.domain.models import (
    ONE,
    ZERO,
    Balance,
    BookLevel,
    Candle,
    Fill,
    FundingPayment,
    FundingRate,
    Market,
    MarketStats,
    OrderBook,
    OrderRequest,
    OrderResult,
    OrderStatus,
    Position,
    Side,
    Ticker,
)
from bot.domain.symbols import Symbol, SymbolError
from bot.exchange.gateway import (
    DuplicateOrderError,
    FatalError,
    GatewayError,
    OrderRejectedError,
    RateLimitedError,
    RetryableError,
)
from bot.exchange.retry import RetryPolicy, with_retries

log = structlog.get_logger(__name__)

FUNDING_LOOKBACK = timedelta(days=7)
FUNDING_POLL = timedelta(seconds=60)
LIMITER_WAIT_S = 0.001  # a request held longer than this by the limiter counts as a wait
_QUERY = re.compile(r"\?\S*")
_DUPLICATE = re.compile(r"duplicat|-4116|-2010.*duplicate", re.IGNORECASE)


def dec(value: Any) -> Decimal:
    """A ccxt number (float, int or str) as an exact Decimal of its shortest repr."""
    if value is None:
        raise ValueError("missing number")
    return Decimal(str(value))


def dec_or_none(value: Any) -> Decimal | None:
    return None if value is None or value == "" else Decimal(str(value))


def _interval_hours(value: Any) -> Decimal | None:
    """ccxt's funding ``interval`` ("8h", "4h", "60m") in hours; None when absent or odd."""
    match = re.fullmatch(r"(\d+)([hm])", str(value or ""))
    if match is None:
        return None
    amount = Decimal(match.group(1))
    hours = amount if match.group(2) == "h" else amount / 60
    return hours if hours > 0 else None


def _ms(value: Any) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(int(value) / 1000, tz=UTC)


class _Secrets:
    """Strings that must never reach a log line or an exception message."""

    def __init__(self, account: AccountConfig | None) -> None:
        secrets = () if account is None else (account.api_key, account.secret, account.password)
        self._values = [s.get_secret_value() for s in secrets if s and s.get_secret_value()]

    def scrub(self, text: str) -> str:
        # ccxt messages carry the request URL; its query has the signature and params.
        text = _QUERY.sub("?…", text)
        for secret in self._values:
            text = text.replace(secret, "***")
        return text[:500]


def _symbol(text: str) -> Symbol:
    """The parsed symbol; a malformed one is a config problem (Fatal)."""
    try:
        return Symbol.parse(text)
    except SymbolError as exc:
        raise FatalError(f"unknown symbol {text!r}: {exc.reason}") from None


def _is_contract(text: str) -> bool:
    return _symbol(text).is_contract


def translate(
    exc: Exception,
    what: str,
    for_order: bool,
    scrub: Callable[[str], str],
    retry_after_s: float | None = None,
) -> GatewayError:
    """Map a ccxt exception to the bot's taxonomy, most specific class first."""
    message = f"{what}: {type(exc).__name__}: {scrub(str(exc))}"
    if isinstance(exc, ccxt_errors.AuthenticationError):
        return FatalError(
            f"{what}: the exchange refused the API credentials; check api_key, "
            f"secret and their permissions ({type(exc).__name__})"
        )
    if isinstance(exc, ccxt_errors.DuplicateOrderId) or (
        isinstance(exc, ccxt_errors.InvalidOrder) and _DUPLICATE.search(str(exc))
    ):
        return DuplicateOrderError(message)
    if isinstance(exc, ccxt_errors.InsufficientFunds | ccxt_errors.InvalidOrder):
        return OrderRejectedError(message)
    if isinstance(exc, ccxt_errors.RateLimitExceeded | ccxt_errors.DDoSProtection):
        return RateLimitedError(message, retry_after_s)
    if isinstance(exc, ccxt_errors.OperationFailed):
        # Timeouts, 5xx (Binance's -1001 "unknown execution status" too), dropped
        # connections: the request may or may not have been executed.
        return RetryableError(message)
    if isinstance(
        exc,
        ccxt_errors.BadSymbol
        | ccxt_errors.NotSupported
        | ccxt_errors.ArgumentsRequired
        | ccxt_errors.PermissionDenied,
    ):
        return FatalError(message)
    if isinstance(exc, ccxt_errors.OperationRejected):
        return OrderRejectedError(message)
    if for_order:
        return OrderRejectedError(message)
    return RetryableError(message)


def make_throttler(requests_per_s: Decimal) -> Throttler:
    """asyncio-throttle's sliding window for a (possibly fractional) request rate."""
    if requests_per_s >= 1:
        return Throttler(rate_limit=int(requests_per_s), period=1.0)
    return Throttler(rate_limit=1, period=float(1 / requests_per_s))


def build_client(account: AccountConfig, mode: Mode, *, with_keys: bool = True) -> Any:
    """A ccxt client for the account: keys, ccxt_config, testnet switch."""
    if account.exchange not in ccxt_async.exchanges:
        raise FatalError(f"exchange {account.exchange!r} is not a ccxt exchange id")
    config: dict[str, Any] = {"enableRateLimit": True, "options": {"fetchCurrencies": False}}
    if with_keys:
        for key, secret in (
            ("apiKey", account.api_key),
            ("secret", account.secret),
            ("password", account.password),
        ):
            if secret is not None:
                config[key] = secret.get_secret_value()
    config = _deep_merge(config, account.ccxt_config)
    client = getattr(ccxt_async, account.exchange)(config)
    if mode == "testnet":
        _enable_testnet(client, account)
    return client


def _enable_testnet(client: Any, account: AccountConfig) -> None:
    has_demo = callable(getattr(client, "enable_demo_trading", None)) and bool(
        client.urls.get("demo")
    )
    has_sandbox = bool(client.urls.get("test"))
    choice: str = account.testnet
    if choice == "auto":
        choice = "demo" if has_demo else "sandbox" if has_sandbox else "sandbox or demo trading"
    if choice == "demo" and has_demo:
        client.enable_demo_trading(True)
    elif choice == "sandbox" and has_sandbox:
        client.set_sandbox_mode(True)
    else:
        raise FatalError(
            f"exchange {account.exchange!r} offers no {choice} in ccxt, so testnet mode "
            "cannot use it; choose another exchange, or set testnet = 'sandbox'/'demo'"
        )


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class CcxtGateway:
    """One exchange account through ccxt."""

    def __init__(
        self,
        name: str,
        client: Any,
        clock: Clock,
        *,
        requests_per_s: Decimal | None = None,
        policy: RetryPolicy | None = None,
        account: AccountConfig | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self._client = client
        self._clock = clock
        self._policy = policy or RetryPolicy()
        self._secrets = _Secrets(account)
        self._sleep = sleep
        rate = requests_per_s or Decimal(1000) / Decimal(str(client.rateLimit or 100))
        self.throttler = make_throttler(rate)
        self.requests_per_s = rate
        self.limiter_waits = 0
        self.requests = 0
        # One limiter, ours, per account: ccxt's own would space calls again and
        # busy-poll while it waits, so its throttle hook is routed through ours.
        client.enableRateLimit = True
        client.throttle = self._throttle
        self._markets: dict[str, Market] = {}
        self._hedge_mode: bool | None = None
        self.funding_poll = FUNDING_POLL
        self._funding_cursor: datetime | None = None
        self._funding_polled_at: datetime | None = None

    @classmethod
    def from_config(
        cls, name: str, account: AccountConfig, mode: Mode, clock: Clock
    ) -> CcxtGateway:
        """A gateway for ``[accounts.NAME]`` in ``mode`` (testnet switches the client)."""
        client = build_client(account, mode)
        return cls(name, client, clock, requests_per_s=account.rate_limit_per_s, account=account)

    async def _throttle(self, cost: Any = None) -> None:
        slots = max(1, math.ceil(float(cost or 1)))
        started = time.monotonic()
        for _ in range(slots):
            async with self.throttler:
                pass
        if time.monotonic() - started > LIMITER_WAIT_S:
            self.limiter_waits += 1
        self.requests += 1

    def _retry_after(self) -> float | None:
        headers = getattr(self._client, "last_response_headers", None) or {}
        for key, value in headers.items():
            if key.lower() == "retry-after":
                try:
                    return float(value)
                except ValueError:
                    return None
        return None

    async def _call(
        self,
        what: str,
        fn: Callable[..., Awaitable[Any]],
        *args: Any,
        retry: bool = True,
        for_order: bool = False,
        **kwargs: Any,
    ) -> Any:
        async def once() -> Any:
            try:
                # ccxt sets rounding and traps on the decimal context it finds; give it a
                # copy, so the domain's arithmetic never depends on which calls ran.
                with decimal.localcontext():
                    return await fn(*args, **kwargs)
            except ccxt_errors.BaseError as exc:
                raise translate(
                    exc, what, for_order, self._secrets.scrub, self._retry_after()
                ) from exc

        if not retry:
            return await once()

        def on_retry(attempt: int, exc: RetryableError, wait: float) -> None:
            log.warning(
                "exchange.retry",
                account=self.name,
                call=what,
                attempt=attempt,
                wait_s=round(wait, 3),
                error=str(exc),
            )

        if self._sleep is None:
            return await with_retries(once, self._policy, on_retry=on_retry)
        return await with_retries(once, self._policy, on_retry=on_retry, sleep=self._sleep)

    # -- markets ---------------------------------------------------------------------------

    async def load_markets(
        self, symbols: Iterable[str], reload: bool = False
    ) -> Mapping[str, Market]:
        """Load only the market types the symbols need; precision and limits from ccxt."""
        wanted = list(symbols)
        contracts = [s for s in wanted if _is_contract(s)]
        types = sorted({"linear" if _is_contract(s) else "spot" for s in wanted})
        options = self._client.options.setdefault("fetchMarkets", {})
        if isinstance(options, dict):
            options["types"] = types
        await self._call("load_markets", self._client.load_markets, reload)
        result: dict[str, Market] = {}
        for symbol in wanted:
            raw = self._client.markets.get(symbol)
            if raw is None:
                raise FatalError(f"{self.name}: {self._client.id} has no market {symbol!r}")
            if raw.get("inverse"):
                raise FatalError(
                    f"{symbol} is an inverse contract; hedgebot trades linear ones only"
                )
            result[symbol] = self._market(raw)
        self._markets.update(result)
        # Position mode is account data: a keyless client (the live price feed) skips it.
        if contracts and self._hedge_mode is None and self._client.apiKey:
            await self._detect_position_mode(contracts[0])
        return result

    def _step(self, value: Any) -> Decimal:
        if value is None:
            return Decimal(0)
        mode = self._client.precisionMode
        if mode == DECIMAL_PLACES:
            return Decimal(1).scaleb(-int(value))
        if mode == SIGNIFICANT_DIGITS:
            raise FatalError(f"{self._client.id} uses significant-digit precision; not supported")
        return dec(value)  # TICK_SIZE: the step itself

    def _market(self, raw: Mapping[str, Any]) -> Market:
        precision = raw.get("precision") or {}
        limits = raw.get("limits") or {}
        amount_limits = limits.get("amount") or {}
        cost_limits = limits.get("cost") or {}
        return Market(
            symbol=raw["symbol"],
            base=raw["base"],
            quote=raw["quote"],
            amount_step=self._step(precision.get("amount")),
            price_step=self._step(precision.get("price")),
            min_amount=dec_or_none(amount_limits.get("min")) or ZERO,
            max_amount=dec_or_none(amount_limits.get("max")),
            min_notional=dec_or_none(cost_limits.get("min")) or ZERO,
            contract_size=dec_or_none(raw.get("contractSize")) or Decimal(1),
            is_perp=bool(raw.get("swap") or raw.get("future")),
            # Dated futures (type "future") carry their delivery time; "linear" loads them
            # with the perpetuals on Binance USDⓈ-M (contractType CURRENT_QUARTER...).
            expiry=_ms(raw.get("expiry")) if raw.get("future") else None,
        )

    async def _detect_position_mode(self, symbol: str) -> None:
        if not self._client.has.get("fetchPositionMode"):
            self._hedge_mode = False
            return
        answer = await self._call("fetch_position_mode", self._client.fetch_position_mode, symbol)
        self._hedge_mode = bool(answer.get("hedged"))
        log.info(
            "exchange.position_mode",
            account=self.name,
            mode="hedge" if self._hedge_mode else "one-way",
        )

    @property
    def hedge_mode(self) -> bool:
        """True when the account holds separate long and short positions per symbol."""
        return bool(self._hedge_mode)

    # -- account ---------------------------------------------------------------------------

    def _balances(self, raw: Mapping[str, Any]) -> dict[str, Balance]:
        totals = raw.get("total") or {}
        frees = raw.get("free") or {}
        return {
            asset: Balance(
                asset=asset, free=dec_or_none(frees.get(asset)) or ZERO, total=dec(total)
            )
            for asset, total in totals.items()
            if total is not None
        }

    async def fetch_balances(self) -> Mapping[str, Balance]:
        """Spot wallet balances."""
        raw = await self._call("fetch_balance(spot)", self._client.fetch_balance, {"type": "spot"})
        return self._balances(raw)

    async def fetch_margin_balances(self) -> Mapping[str, Balance]:
        """The linear-perp wallet."""
        raw = await self._call(
            "fetch_balance(swap)", self._client.fetch_balance, {"type": "swap", "subType": "linear"}
        )
        return self._balances(raw)

    async def fetch_positions(self, symbols: Iterable[str]) -> Mapping[str, Position]:
        """Signed base quantity per symbol; in hedge mode, the short side (our hedge)."""
        wanted = list(symbols)
        raw_positions = await self._call("fetch_positions", self._client.fetch_positions, wanted)
        result: dict[str, Position] = {}
        for raw in raw_positions:
            symbol = raw.get("symbol")
            if symbol not in wanted:
                continue
            contracts = dec_or_none(raw.get("contracts")) or ZERO
            if contracts == ZERO:
                continue
            side = raw.get("side")
            if self.hedge_mode and side != "short":
                continue  # the long side of a hedge-mode account is not ours to steer
            size = contracts * (dec_or_none(raw.get("contractSize")) or Decimal(1))
            qty = -size if side == "short" else size
            result[symbol] = Position(
                symbol=symbol,
                qty=qty,
                entry_price=dec_or_none(raw.get("entryPrice")) or ZERO,
                mark_price=dec_or_none(raw.get("markPrice")) or ZERO,
                unrealized_pnl=dec_or_none(raw.get("unrealizedPnl")) or ZERO,
                leverage=dec_or_none(raw.get("leverage")) or Decimal(1),
                liquidation_price=dec_or_none(raw.get("liquidationPrice")),
                margin=dec_or_none(raw.get("initialMargin") or raw.get("collateral")) or ZERO,
                updated_at=_ms(raw.get("timestamp")),
            )
        return result

    async def fetch_tickers(self, symbols: Iterable[str]) -> Mapping[str, Ticker]:
        """Best bid and ask (bookTicker where the exchange has it) per symbol."""
        wanted = list(symbols)
        if self._client.has.get("fetchBidsAsks"):
            raw = await self._call("fetch_bids_asks", self._client.fetch_bids_asks, wanted)
        else:
            raw = await self._call("fetch_tickers", self._client.fetch_tickers, wanted)
        now = self._clock.now()
        result: dict[str, Ticker] = {}
        for symbol in wanted:
            item = raw.get(symbol)
            if not item or item.get("bid") is None or item.get("ask") is None:
                raise RetryableError(f"{self.name}: no bid/ask for {symbol} in the answer")
            bid, ask = dec(item["bid"]), dec(item["ask"])
            last = dec_or_none(item.get("last")) or (bid + ask) / 2
            result[symbol] = Ticker(
                symbol=symbol,
                bid=bid,
                ask=ask,
                last=last,
                timestamp=_ms(item.get("timestamp")) or now,
            )
        return result

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: datetime | None = None, limit: int | None = None
    ) -> list[Candle]:
        """ccxt ``fetch_ohlcv``: ``[ms, open, high, low, close, volume]`` rows as Candles."""
        since_ms = None if since is None else int(since.timestamp() * 1000)
        raw = await self._call(
            "fetch_ohlcv", self._client.fetch_ohlcv, symbol, timeframe, since_ms, limit
        )
        candles: list[Candle] = []
        for row in raw or []:
            opened_at = _ms(row[0])
            if opened_at is None:
                continue
            candles.append(
                Candle(
                    opened_at=opened_at,
                    open=dec(row[1]),
                    high=dec(row[2]),
                    low=dec(row[3]),
                    close=dec(row[4]),
                    volume=dec_or_none(row[5]) or Decimal(0),
                )
            )
        return candles

    async def fetch_order_book(self, symbol: str, depth: int = 20) -> OrderBook:
        """The top ``depth`` levels of each side."""
        raw = await self._call("fetch_order_book", self._client.fetch_order_book, symbol, depth)

        def levels(side: Any) -> tuple[BookLevel, ...]:
            return tuple(BookLevel(price=dec(p), amount=dec(a)) for p, a, *_ in side[:depth])

        return OrderBook(
            symbol=symbol,
            bids=levels(raw.get("bids") or []),
            asks=levels(raw.get("asks") or []),
            timestamp=_ms(raw.get("timestamp")) or self._clock.now(),
        )

    async def fetch_funding_rates(self, symbols: Iterable[str]) -> Mapping[str, FundingRate]:
        """Current funding rate per perp symbol (dated futures pay no funding)."""
        wanted = [s for s in symbols if _symbol(s).is_perpetual]
        if not wanted:
            return {}
        raw = await self._call("fetch_funding_rates", self._client.fetch_funding_rates, wanted)
        now = self._clock.now()
        return {
            symbol: FundingRate(
                symbol=symbol,
                rate=dec_or_none(item.get("fundingRate")) or ZERO,
                next_funding_at=_ms(
                    item.get("fundingTimestamp") or item.get("nextFundingTimestamp")
                ),
                timestamp=_ms(item.get("timestamp")) or now,
                interval_hours=_interval_hours(item.get("interval")),
            )
            for symbol, item in raw.items()
            if symbol in wanted
        }

    async def fetch_funding_payments(self, symbols: Iterable[str]) -> list[FundingPayment]:
        """Funding income since the last call, all symbols in one request (the first call
        looks back a week); polled at most once a minute, as funding comes every few hours."""
        wanted = {s for s in symbols if _is_contract(s)}
        now = self._clock.now()
        if not wanted or not self._client.has.get("fetchFundingHistory"):
            return []
        if (
            self._funding_polled_at is not None
            and now - self._funding_polled_at < self.funding_poll
        ):
            return []
        since = self._funding_cursor or now - FUNDING_LOOKBACK
        raw = await self._call(
            "fetch_funding_history",
            self._client.fetch_funding_history,
            None,
            int(since.timestamp() * 1000),
            None,
            {"type": "swap", "subType": "linear"},
        )
        self._funding_polled_at = now
        payments: list[FundingPayment] = []
        for item in raw:
            paid_at = _ms(item.get("timestamp"))
            symbol = item.get("symbol")
            if paid_at is None:
                continue
            since = max(since, paid_at + timedelta(milliseconds=1))
            if symbol not in wanted:
                continue
            market = self._markets.get(symbol)
            payments.append(
                FundingPayment(
                    symbol=symbol,
                    amount=dec(item.get("amount")),
                    asset=item.get("code") or (market.quote if market else "USDT"),
                    rate=None,  # the income history reports amounts only
                    position_qty=None,
                    mark_price=None,
                    timestamp=paid_at,
                )
            )
        self._funding_cursor = since
        return payments

    async def fetch_market_stats(self, symbol: str) -> MarketStats:
        """24h quote volume (fetch_ticker) and open interest (fetch_open_interest), in quote;
        two requests, so the daemon asks at most every few minutes per symbol."""
        ticker = await self._call("fetch_ticker", self._client.fetch_ticker, symbol)
        open_interest: Decimal | None = None
        if self._client.has.get("fetchOpenInterest"):
            raw = await self._call("fetch_open_interest", self._client.fetch_open_interest, symbol)
            open_interest = dec_or_none(raw.get("openInterestValue"))
            amount = dec_or_none(raw.get("openInterestAmount"))
            last = dec_or_none(ticker.get("last"))
            if open_interest is None and amount is not None and last is not None:
                # Binance reports the amount (in contracts) only: value it at the last price.
                market = self._markets.get(symbol)
                open_interest = amount * (market.contract_size if market else ONE) * last
        return MarketStats(
            symbol=symbol,
            open_interest_value=open_interest,
            quote_volume_24h=dec_or_none(ticker.get("quoteVolume")),
            timestamp=_ms(ticker.get("timestamp")) or self._clock.now(),
        )

    async def add_margin(self, symbol: str, amount: Decimal) -> None:
        """Move margin into the isolated position (ccxt add_margin; Binance
        /fapi/v1/positionMargin); sent once, never retried, as a repeat would add twice."""
        params: dict[str, Any] = {}
        if self.hedge_mode:
            params["positionSide"] = "SHORT"
        await self._call(
            "add_margin",
            self._client.add_margin,
            symbol,
            float(amount),
            params,
            retry=False,
            for_order=True,
        )

    # -- set-up ----------------------------------------------------------------------------

    async def set_leverage(self, symbol: str, leverage: Decimal) -> None:
        """Set and verify the symbol's leverage (Binance takes whole numbers only)."""
        if leverage != leverage.to_integral_value():
            raise FatalError(
                f"{symbol}: leverage {leverage} must be a whole number on {self._client.id}"
            )
        await self._call("set_leverage", self._client.set_leverage, int(leverage), symbol)
        if self._client.has.get("fetchLeverage"):
            raw = await self._call("fetch_leverage", self._client.fetch_leverage, symbol)
            seen = raw.get("longLeverage") or raw.get("shortLeverage")
            if seen is not None and dec(seen) != leverage:
                raise FatalError(
                    f"{symbol}: leverage set to {leverage} but the exchange reports {seen}"
                )

    async def set_margin_mode(self, symbol: str, margin_mode: str) -> None:
        """Set and verify isolated/cross margin for the symbol."""
        try:
            await self._call("set_margin_mode", self._client.set_margin_mode, margin_mode, symbol)
        except OrderRejectedError as exc:
            # "No need to change margin type": already as asked.
            if "-4046" not in str(exc) and "no need" not in str(exc).lower():
                raise FatalError(f"{symbol}: cannot set margin mode {margin_mode}: {exc}") from exc
        if self._client.has.get("fetchMarginMode"):
            raw = await self._call("fetch_margin_mode", self._client.fetch_margin_mode, symbol)
            seen = raw.get("marginMode")
            if seen is not None and seen != margin_mode:
                raise FatalError(
                    f"{symbol}: margin mode set to {margin_mode} but the exchange reports {seen}"
                )

    # -- orders ----------------------------------------------------------------------------

    def _check_precision(self, request: OrderRequest) -> tuple[str, str | None]:
        try:
            with decimal.localcontext():  # see _call: ccxt changes the context it finds
                return self._on_grid(request)
        except ccxt_errors.BaseError as exc:
            raise translate(exc, "create_order", True, self._secrets.scrub) from exc

    def _on_grid(self, request: OrderRequest) -> tuple[str, str | None]:
        # ccxt truncates silently to the step; refuse instead of sending something else.
        amount = self._client.amount_to_precision(request.symbol, str(request.amount))
        if Decimal(amount) != request.amount:
            raise OrderRejectedError(
                f"amount {request.amount} of {request.symbol} is not on the exchange's step; "
                f"ccxt would send {amount}: not sent"
            )
        price = None
        if request.price is not None:
            price = self._client.price_to_precision(request.symbol, str(request.price))
            if Decimal(price) != request.price:
                raise OrderRejectedError(
                    f"price {request.price} of {request.symbol} is not on the exchange's tick; "
                    f"ccxt would send {price}: not sent"
                )
        return amount, price

    async def create_order(self, request: OrderRequest) -> OrderResult:
        """Send once (never retried: a lost answer is looked up), then confirm the fill."""
        amount, price = self._check_precision(request)
        params: dict[str, Any] = {"clientOrderId": request.client_order_id}
        is_perp = _is_contract(request.symbol)
        if is_perp and self.hedge_mode:
            params["positionSide"] = "SHORT"  # hedge mode: our hedge is the short side
        elif request.reduce_only:
            params["reduceOnly"] = True
        if request.order_type == "limit":
            params["timeInForce"] = "IOC"
        ack = await self._call(
            "create_order",
            self._client.create_order,
            request.symbol,
            request.order_type,
            request.side.value,
            amount,
            price,
            params,
            retry=False,
            for_order=True,
        )
        sent = dec_or_none(ack.get("amount"))
        try:
            confirmed = await self.fetch_order(request.symbol, request.client_order_id)
        except RetryableError as exc:
            log.warning(
                "order.confirm_failed", client_order_id=request.client_order_id, error=str(exc)
            )
            confirmed = None
        result = confirmed or self._order(ack, request.symbol, [])
        if sent is not None and sent != request.amount:
            note = f"the exchange took amount {sent}, not {request.amount}"
            result = _with_reason(result, note)
        if result.amount != request.amount and result.reason is None:
            result = _with_reason(
                result, f"the exchange holds amount {result.amount} (asked {request.amount})"
            )
        return result

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderResult | None:
        """The order and its fills by client order id; None when the exchange has none."""
        try:
            raw = await self._call(
                "fetch_order",
                self._client.fetch_order,
                None,
                symbol,
                {"clientOrderId": client_order_id},
            )
        except OrderRejectedError as exc:
            if isinstance(exc.__cause__, ccxt_errors.OrderNotFound):
                return None
            raise
        trades: list[Any] = []
        if (dec_or_none(raw.get("filled")) or ZERO) > ZERO and raw.get("id") is not None:
            trades = await self._call(
                "fetch_my_trades",
                self._client.fetch_my_trades,
                symbol,
                None,
                None,
                {"orderId": raw["id"]},
            )
        return self._order(raw, symbol, trades)

    async def fetch_open_orders(self, symbols: Iterable[str]) -> list[OrderResult]:
        """Open perp orders on these symbols, in one request for the whole account."""
        wanted = {s for s in symbols if _is_contract(s)}
        if not wanted:
            return []
        # One call without a symbol costs more weight than one with, but far less than
        # one per pair; ccxt warns about it unless told this is deliberate.
        self._client.options["warnOnFetchOpenOrdersWithoutSymbol"] = False
        raw = await self._call(
            "fetch_open_orders",
            self._client.fetch_open_orders,
            None,
            None,
            None,
            {"type": "swap", "subType": "linear"},
        )
        return [
            self._order(item, item["symbol"], []) for item in raw if item.get("symbol") in wanted
        ]

    async def cancel_order(self, symbol: str, client_order_id: str) -> OrderResult | None:
        """Cancel by client order id and return the order's final state."""
        try:
            await self._call(
                "cancel_order",
                self._client.cancel_order,
                None,
                symbol,
                {"clientOrderId": client_order_id},
                retry=False,
                for_order=True,
            )
        except OrderRejectedError as exc:
            if not isinstance(exc.__cause__, ccxt_errors.OrderNotFound):
                raise
        return await self.fetch_order(symbol, client_order_id)

    def _order(self, raw: Mapping[str, Any], symbol: str, trades: list[Any]) -> OrderResult:
        filled = dec_or_none(raw.get("filled")) or ZERO
        amount = dec_or_none(raw.get("amount")) or filled
        status = raw.get("status")
        if status == "closed":
            state = OrderStatus.FILLED
        elif status in ("canceled", "expired"):
            state = OrderStatus.CANCELED
        elif status == "rejected":
            state = OrderStatus.REJECTED
        else:
            state = OrderStatus.PARTIALLY_FILLED if filled > ZERO else OrderStatus.ACCEPTED
        fills = tuple(self._fill(t, symbol) for t in trades)
        fee = sum((f.fee for f in fills), ZERO)
        fee_asset = fills[0].fee_asset if fills else None
        average = dec_or_none(raw.get("average"))
        if average is None and fills:
            total = sum((f.amount for f in fills), ZERO)
            average = sum((f.amount * f.price for f in fills), ZERO) / total if total else None
        return OrderResult(
            client_order_id=raw.get("clientOrderId") or "",
            exchange_order_id=None if raw.get("id") is None else str(raw["id"]),
            symbol=symbol,
            side=Side(raw.get("side") or "buy"),
            status=state,
            amount=amount,
            filled=filled,
            average_price=average if filled > ZERO else None,
            fee=fee,
            fee_asset=fee_asset,
            fills=fills,
        )

    def _fill(self, raw: Mapping[str, Any], symbol: str) -> Fill:
        fee = raw.get("fee") or {}
        return Fill(
            trade_id=str(raw.get("id")),
            symbol=symbol,
            side=Side(raw.get("side") or "buy"),
            amount=dec(raw.get("amount")),
            price=dec(raw.get("price")),
            fee=dec_or_none(fee.get("cost")) or ZERO,
            fee_asset=fee.get("currency") or "",
            timestamp=_ms(raw.get("timestamp")) or self._clock.now(),
        )

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._client.close()


def _with_reason(result: OrderResult, reason: str) -> OrderResult:
    return replace(result, reason=reason if result.reason is None else f"{result.reason}; {reason}")
