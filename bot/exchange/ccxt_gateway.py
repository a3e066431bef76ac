"""ExchangeGateway over ``ccxt.async_support``: one client, one limiter, one retry policy
per exchange account.

The generic ccxt path: this class places and looks up orders and makes every call through
``_call`` (the limiter, the retry policy, a private decimal context, the translation of
ccxt's exceptions). What ccxt answers is turned into domain values by ``ccxt_parse`` (floats
become ``Decimal(str(x))``) and ``ccxt_markets``; its exceptions into the error taxonomy by
``ccxt_translate``; the client is built by ``ccxt_client``. No ccxt dict or exception
leaves ``bot/exchange/``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog

from bot.clock import Clock
from bot.config import AccountConfig, Mode
from bot.domain.margin_transfers import MarginChange
from bot.domain.models import (
    ZERO,
    Balance,
    Candle,
    FundingPayment,
    FundingRate,
    Market,
    MarketStats,
    OrderBook,
    OrderRequest,
    OrderResult,
    Position,
    Ticker,
)
from bot.exchange import ccxt_margin, ccxt_markets, ccxt_parse
from bot.exchange.ccxt_client import LIMITER_WAIT_S, CcxtCalls, build_client, make_throttler
from bot.exchange.ccxt_markets import is_contract
from bot.exchange.ccxt_parse import dec, dec_or_none
from bot.exchange.ccxt_parse import interval_hours as _interval_hours
from bot.exchange.ccxt_translate import Secrets, order_not_found, translate
from bot.exchange.gateway import FatalError, OrderRejectedError, RetryableError, parse_symbol
from bot.exchange.retry import RetryPolicy

# Importable from here as before the split (tests, bench, bot.exchange.live_feed).
__all__ = [
    "FUNDING_LOOKBACK",
    "FUNDING_POLL",
    "LIMITER_WAIT_S",
    "CcxtGateway",
    "_Secrets",
    "_interval_hours",
    "build_client",
    "dec",
    "dec_or_none",
    "make_throttler",
    "translate",
]

_Secrets = Secrets

log = structlog.get_logger(__name__)

FUNDING_LOOKBACK = timedelta(days=7)
FUNDING_POLL = timedelta(seconds=60)


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
        self._calls = CcxtCalls(
            name, client, requests_per_s=requests_per_s, policy=policy, account=account, sleep=sleep
        )
        self._call = self._calls.call
        self._markets: dict[str, Market] = {}
        self._hedge_mode: bool | None = None
        self.funding_poll = FUNDING_POLL
        self._funding_cursor: datetime | None = None
        self._funding_fetched: datetime | None = None  # the cursor once those are stored
        self._funding_polled_at: datetime | None = None

    @classmethod
    def from_config(
        cls, name: str, account: AccountConfig, mode: Mode, clock: Clock
    ) -> CcxtGateway:
        """A gateway for ``[accounts.NAME]`` in ``mode`` (testnet switches the client)."""
        client = build_client(account, mode)
        return cls(name, client, clock, requests_per_s=account.rate_limit_per_s, account=account)

    @property
    def requests_per_s(self) -> Decimal:
        """The limiter's rate."""
        return self._calls.requests_per_s

    @property
    def requests(self) -> int:
        """Requests sent through the limiter."""
        return self._calls.requests

    @property
    def limiter_waits(self) -> int:
        """Requests the limiter held back before sending."""
        return self._calls.limiter_waits

    # -- markets ---------------------------------------------------------------------------

    async def load_markets(
        self, symbols: Iterable[str], reload: bool = False
    ) -> Mapping[str, Market]:
        """Load only the market types the symbols need; precision and limits from ccxt.
        ccxt answers from its cache once loaded: ``reload`` makes it ask the exchange. A
        symbol the exchange does not list is absent from the answer."""
        wanted = list(symbols)
        ccxt_markets.load_only_types(self._client, wanted)
        await self._call("load_markets", self._client.load_markets, reload)
        result = ccxt_markets.markets(self._client, wanted)
        self._markets.update(result)
        # Position mode is account data: a keyless client (the live price feed) skips it.
        listed = [s for s in wanted if is_contract(s) and s in result]
        if listed and self._hedge_mode is None and self._client.apiKey:
            await self._detect_position_mode(listed[0])
        return result

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

    async def fetch_balances(self) -> Mapping[str, Balance]:
        """Spot wallet balances."""
        raw = await self._call("fetch_balance(spot)", self._client.fetch_balance, {"type": "spot"})
        return ccxt_parse.balances(raw)

    async def fetch_margin_balances(self) -> Mapping[str, Balance]:
        """The linear-perp wallet: the wallet balance and the equity (with uPnL) per asset."""
        raw = await self._call(
            "fetch_balance(swap)", self._client.fetch_balance, {"type": "swap", "subType": "linear"}
        )
        return ccxt_parse.margin_balances(raw, self._client.id)

    async def fetch_positions(self, symbols: Iterable[str]) -> Mapping[str, Position]:
        """Signed base quantity per symbol; in hedge mode, the short side (our hedge)."""
        wanted = list(symbols)
        raw_positions = await self._call("fetch_positions", self._client.fetch_positions, wanted)
        return ccxt_parse.positions(raw_positions, wanted, self.hedge_mode)

    async def fetch_tickers(self, symbols: Iterable[str]) -> Mapping[str, Ticker]:
        """Best bid and ask (bookTicker where the exchange has it) per symbol; a symbol the
        answer has no bid/ask for is absent (its pair reports it, the others go on)."""
        wanted = list(symbols)
        if self._client.has.get("fetchBidsAsks"):
            raw = await self._call("fetch_bids_asks", self._client.fetch_bids_asks, wanted)
        else:
            raw = await self._call("fetch_tickers", self._client.fetch_tickers, wanted)
        return ccxt_parse.tickers(raw, wanted, self._clock.now())

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: datetime | None = None, limit: int | None = None
    ) -> list[Candle]:
        """ccxt ``fetch_ohlcv``: ``[ms, open, high, low, close, volume]`` rows as Candles."""
        since_ms = None if since is None else int(since.timestamp() * 1000)
        raw = await self._call(
            "fetch_ohlcv", self._client.fetch_ohlcv, symbol, timeframe, since_ms, limit
        )
        return ccxt_parse.candles(raw)

    async def fetch_order_book(self, symbol: str, depth: int = 20) -> OrderBook:
        """The top ``depth`` levels of each side."""
        raw = await self._call("fetch_order_book", self._client.fetch_order_book, symbol, depth)
        return ccxt_parse.order_book(symbol, raw, depth, self._clock.now())

    async def fetch_funding_rates(self, symbols: Iterable[str]) -> Mapping[str, FundingRate]:
        """Current funding rate per perp symbol (dated futures pay no funding)."""
        wanted = [s for s in symbols if parse_symbol(s).is_perpetual]
        if not wanted:
            return {}
        raw = await self._call("fetch_funding_rates", self._client.fetch_funding_rates, wanted)
        return ccxt_parse.funding_rates(raw, wanted, self._clock.now())

    async def fetch_funding_payments(self, symbols: Iterable[str]) -> list[FundingPayment]:
        """Funding income since the last committed payment, all symbols in one request (the
        first call looks back a week); polled at most once a minute, as funding comes every
        few hours."""
        wanted = {s for s in symbols if is_contract(s)}
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
        payments, self._funding_fetched = ccxt_parse.funding_history(
            raw, wanted, since, self._markets
        )
        return payments

    async def commit_funding(self) -> None:
        """The fetched payments are stored: the next look starts after them."""
        if self._funding_fetched is not None:
            self._funding_cursor, self._funding_fetched = self._funding_fetched, None

    async def fetch_market_stats(self, symbol: str) -> MarketStats:
        """24h quote volume (fetch_ticker) and open interest (fetch_open_interest), in quote;
        two requests, so the daemon asks at most every few minutes per symbol."""
        ticker = await self._call("fetch_ticker", self._client.fetch_ticker, symbol)
        interest = None
        if self._client.has.get("fetchOpenInterest"):
            interest = await self._call(
                "fetch_open_interest", self._client.fetch_open_interest, symbol
            )
        market = self._markets.get(symbol)
        return ccxt_parse.market_stats(symbol, ticker, interest, market, self._clock.now())

    async def add_margin(self, symbol: str, amount: Decimal) -> None:
        """Move margin into the isolated position (``ccxt_margin``); sent once."""
        await ccxt_margin.add_margin(self._calls, self._client, symbol, amount, self.hedge_mode)

    async def fetch_margin_history(self, symbol: str, since: datetime) -> list[MarginChange]:
        """The symbol's isolated-margin changes since ``since`` (``ccxt_margin``)."""
        return await ccxt_margin.margin_history(self._calls, self._client, symbol, since)

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
        with self._calls.translated("create_order", for_order=True):
            return self._on_grid(request)

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
        is_perp = is_contract(request.symbol)
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
        result = confirmed or ccxt_parse.order(ack, request.symbol, [], self._clock.now())
        if sent is not None and sent != request.amount:
            note = f"the exchange took amount {sent}, not {request.amount}"
            result = ccxt_parse.with_reason(result, note)
        if result.amount != request.amount and result.reason is None:
            result = ccxt_parse.with_reason(
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
            if order_not_found(exc):
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
        return ccxt_parse.order(raw, symbol, trades, self._clock.now())

    async def fetch_open_orders(self, symbols: Iterable[str]) -> list[OrderResult]:
        """Open perp orders on these symbols, in one request for the whole account."""
        wanted = {s for s in symbols if is_contract(s)}
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
        now = self._clock.now()
        return [
            ccxt_parse.order(item, item["symbol"], [], now)
            for item in raw
            if item.get("symbol") in wanted
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
            if not order_not_found(exc):
                raise
        return await self.fetch_order(symbol, client_order_id)

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._client.close()
