"""ExchangeGateway over ``ccxt.async_support``: one client, one limiter, one retry policy
per exchange account.

The generic ccxt path: this class places and looks up orders and makes every call through
``_call`` (the limiter, the retry policy, a private decimal context, the translation of
ccxt's exceptions). What ccxt answers is turned into domain values by ``ccxt_parse`` (floats
become ``Decimal(str(x))``) and ``ccxt_markets``; its exceptions into the error taxonomy by
``ccxt_translate``; the client is built by ``ccxt_client``. What one exchange means by a
call (order look-up by client id, error codes, balances, hedge-mode and margin calls,
testnet, the quantity unit) is its venue module's (``bot.exchange.venues``): this class
asks no question about which exchange it talks to. No ccxt dict or exception leaves
``bot/exchange/``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog

from bot.clock import Clock
from bot.config import AccountConfig, Mode
from bot.domain.margin_transfers import MarginChange, WalletTransfer
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
from bot.exchange import ccxt_margin, ccxt_markets, ccxt_parse, ccxt_wallets
from bot.exchange.ccxt_client import CcxtCalls, build_client
from bot.exchange.ccxt_markets import is_contract
from bot.exchange.ccxt_parse import dec, dec_or_none
from bot.exchange.ccxt_parse import interval_hours as _interval_hours
from bot.exchange.ccxt_translate import Secrets, translate
from bot.exchange.gateway import (
    ContractSetting,
    FatalError,
    RetryableError,
)
from bot.exchange.rate_poll import FundingRatePoll
from bot.exchange.retry import RetryPolicy
from bot.exchange.venues import CcxtVenue, venue_class
from bot.exchange.venues.base import perpetuals

# Importable from here as before the split (tests, bench, bot.exchange.live_feed).
__all__ = [
    "FUNDING_LOOKBACK",
    "FUNDING_POLL",
    "CcxtGateway",
    "_Secrets",
    "_interval_hours",
    "build_client",
    "dec",
    "dec_or_none",
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
        venue: type[CcxtVenue] | None = None,
    ) -> None:
        self.name = name
        self._client = client
        self._clock = clock
        venue = venue or venue_class(client.id)
        self._calls = CcxtCalls(
            name,
            client,
            requests_per_s=requests_per_s,
            policy=policy,
            account=account,
            sleep=sleep,
            translator=venue.translator(),
            limits=venue.rate_limits,
        )
        self._call = self._calls.call
        self.venue = venue(client, self._calls)
        self._checked = False
        self._markets: dict[str, Market] = {}
        self._hedge_mode: bool | None = None
        self.funding_poll = FUNDING_POLL
        self._funding_cursor: datetime | None = None
        self._funding_fetched: datetime | None = None  # the cursor once those are stored
        self._funding_polled_at: datetime | None = None
        self.funding_rates_kept = FundingRatePoll()

    @classmethod
    def from_config(
        cls, name: str, account: AccountConfig, mode: Mode, clock: Clock
    ) -> CcxtGateway:
        """A gateway for ``[accounts.NAME]`` in ``mode`` (testnet: the venue's test site)."""
        client = build_client(account)
        gateway = cls(name, client, clock, requests_per_s=account.rate_limit_per_s, account=account)
        if mode == "testnet":
            gateway.venue.enable_testnet(account.testnet)
        return gateway

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
        """Load only the market types the symbols need; precision and limits from ccxt, in
        coins. ccxt answers from its cache once loaded: ``reload`` asks the exchange. The
        first load with keys checks what the venue can do and reads its position mode."""
        wanted = list(symbols)
        if self.venue.inverse_type is None:
            ccxt_markets.refuse_inverse(wanted, self._client.id)
        ccxt_markets.load_only_types(self._client, self.venue.market_types(wanted))
        await self._call("load_markets", self._client.load_markets, reload)
        result = ccxt_markets.markets(
            self._client,
            wanted,
            self.venue.coins_per_unit,
            self.venue.reduce_only_below_min_notional,
            inverse_ok=self.venue.inverse_type is not None,
        )
        self._markets.update(result)
        # A symbol the exchange does not list is absent from the answer.
        contracts = [s for s in wanted if is_contract(s) and s in result]
        # Account data: a keyless client (the live price feed) skips it.
        if self._client.apiKey and not self._checked:
            await self.venue.check_capabilities(contracts[0] if contracts else None)
            self._checked = True
        if contracts and self._hedge_mode is None and self._client.apiKey:
            self._hedge_mode = await self.venue.position_mode(contracts[0])
            log.info(
                "exchange.position_mode",
                account=self.name,
                mode="hedge" if self._hedge_mode else "one-way",
            )
        return result

    @property
    def hedge_mode(self) -> bool:
        """True when the account holds separate long and short positions per symbol."""
        return bool(self._hedge_mode)

    @property
    def has_margin_history(self) -> bool:
        """Whether the venue module can read the margin history (Bybit: not in ccxt)."""
        return self.venue.has_margin_history

    @property
    def one_wallet(self) -> bool:
        """Whether the spot and the margin balances are one wallet (a unified account)."""
        return self.venue.shared_wallet

    # -- account ---------------------------------------------------------------------------

    async def fetch_balances(self) -> Mapping[str, Balance]:
        """Spot wallet balances."""
        return await self.venue.spot_balances()

    async def fetch_margin_balances(self) -> Mapping[str, Balance]:
        """The linear-contract wallet: the wallet balance and the equity (with uPnL)."""
        return await self.venue.margin_balances()

    async def fetch_positions(self, symbols: Iterable[str]) -> Mapping[str, Position]:
        """Signed base quantity per symbol; in hedge mode, the short side (our hedge)."""
        wanted = list(symbols)
        raw_positions = await self.venue.positions(wanted)
        return ccxt_parse.positions(raw_positions, wanted, self.hedge_mode)

    async def fetch_tickers(self, symbols: Iterable[str]) -> Mapping[str, Ticker]:
        """Best bid and ask per symbol; a symbol the answer has no bid/ask for is absent
        (its pair reports it, the others go on)."""
        wanted = list(symbols)
        raw = await self.venue.tickers(wanted)
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
        """The top ``depth`` levels of each side, amounts in coins."""
        raw = await self._call("fetch_order_book", self._client.fetch_order_book, symbol, depth)
        return ccxt_parse.order_book(
            symbol, raw, depth, self._clock.now(), self.venue.coins_per_unit(symbol)
        )

    async def fetch_funding_rates(self, symbols: Iterable[str]) -> Mapping[str, FundingRate]:
        """Current funding rate per perp symbol (dated futures pay no funding)."""
        wanted = perpetuals(symbols)
        if not wanted:
            return {}
        raw = await self.venue.funding_rates(wanted)
        return ccxt_parse.funding_rates(raw, wanted, self._clock.now())

    async def fetch_contract_quotes(
        self, symbols: Iterable[str]
    ) -> tuple[Mapping[str, Ticker], Mapping[str, FundingRate]]:
        """Tickers and funding rates of an account's contracts, each endpoint asked once for
        every symbol (one request where the tickers carry the rate; the rates, where a request
        of their own, once a minute: :mod:`bot.exchange.rate_poll`); the symbols' rows only."""
        wanted, kept = list(symbols), self.funding_rates_kept
        perps = perpetuals(wanted)
        due = kept.due(perps, self._clock.now())
        raw_tickers, raw_funding = await self.venue.contract_quotes(wanted, funding=due)
        now = self._clock.now()
        rates = kept.took(raw_funding, perps, now, asked=due)
        return ccxt_parse.tickers(raw_tickers, wanted, now), rates

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
        if self.venue.funding_window is not None:  # the venue answers no further back
            since = max(since, now - self.venue.funding_window)
        raw: list[Any] = []
        for params in self.venue.funding_history_params(sorted(wanted)):
            raw += await self._call(
                "fetch_funding_history",
                self._client.fetch_funding_history,
                None,
                int(since.timestamp() * 1000),
                None,
                params,
            )
        self._funding_polled_at = now
        payments, self._funding_fetched = ccxt_parse.funding_history(
            raw, wanted, since, self._markets, self.venue.funding_sign
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
        volume = self.venue.quote_volume_24h(symbol, ticker)
        return ccxt_parse.market_stats(symbol, ticker, interest, market, self._clock.now(), volume)

    async def add_margin(self, symbol: str, amount: Decimal) -> None:
        """Move margin into the isolated position (the venue module's call) after checking
        ccxt would send the exact amount; sent once, never retried, as a repeat would add
        twice."""
        ccxt_margin.check_precision(self._calls, self._client, symbol, amount)
        await self.venue.add_margin(symbol, amount, self.hedge_mode)

    async def remove_margin(self, symbol: str, amount: Decimal) -> None:
        """Take margin out of the isolated position (ccxt ``reduce_margin``: Binance ``POST
        /fapi/v1/positionMargin`` type 2), the amount checked as for ``add_margin``; sent
        once, never retried."""
        ccxt_margin.check_precision(self._calls, self._client, symbol, amount)
        await self._calls.call(
            "remove_margin",
            self._client.reduce_margin,
            symbol,
            float(amount),
            self.venue.add_margin_params(self.hedge_mode),
            retry=False,
            for_order=True,
        )

    @property
    def separate_wallets(self) -> bool:
        """Whether the venue module keeps spot and futures wallets apart (Binance)."""
        return self.venue.separate_wallets

    async def transfer(
        self, asset: str, amount: Decimal, source: str, destination: str, client_id: str
    ) -> None:
        """Move quote between the wallets (``ccxt_wallets``); the venue takes no client id,
        so a lost answer is matched in ``fetch_transfers``. Sent once."""
        if not self.separate_wallets:
            raise FatalError(f"{self.name}: no separate wallets to transfer between")
        await ccxt_wallets.transfer(self._calls, self._client, asset, amount, source, destination)

    async def fetch_transfers(self, asset: str, since: datetime) -> list[WalletTransfer]:
        """The transfers of ``asset`` between the wallets since ``since``, oldest first."""
        if not self.separate_wallets:
            return []
        return await ccxt_wallets.transfers(self._calls, self._client, asset, since)

    async def fetch_margin_history(self, symbol: str, since: datetime) -> list[MarginChange]:
        """The symbol's isolated-margin changes since ``since`` (``ccxt_margin``), no
        further back than the venue answers."""
        window = self.venue.margin_history_window
        if window is not None:
            since = max(since, self._clock.now() - window)
        return await self.venue.margin_history(symbol, since)

    # -- set-up ----------------------------------------------------------------------------

    async def apply_settings(self, wanted: Mapping[str, ContractSetting]) -> None:
        """Each contract's margin mode and leverage, read in as few requests as the venue
        allows and set only where they differ (the venue module's)."""
        await self.venue.apply_settings(wanted)

    async def set_leverage(self, symbol: str, leverage: Decimal) -> None:
        """Set the symbol's leverage ("already so" is done; the answer is the proof)."""
        await self.venue.set_leverage(symbol, leverage)

    async def set_margin_mode(self, symbol: str, margin_mode: str) -> None:
        """Set isolated/cross margin for the symbol ("already so" is done)."""
        await self.venue.set_margin_mode(symbol, margin_mode)

    # -- orders ----------------------------------------------------------------------------

    def _check_precision(self, request: OrderRequest) -> tuple[str, str | None]:
        with self._calls.translated("create_order", for_order=True):
            unit = self.venue.coins_per_unit(request.symbol)
            return ccxt_markets.order_on_grid(self._client, request, unit)

    async def create_order(self, request: OrderRequest) -> OrderResult:
        """Send once (never retried: a lost answer is looked up), then confirm the fill."""
        self.venue.check_client_order_id(request.client_order_id)
        amount, price = self._check_precision(request)
        await self.venue.before_send(request)
        ack = await self._call(
            "create_order",
            self._client.create_order,
            request.symbol,
            request.order_type,
            request.side.value,
            amount,
            price,
            self.venue.order_params(request, self.hedge_mode),
            retry=False,
            for_order=True,
        )
        unit = self.venue.coins_per_unit(request.symbol)
        sent = dec_or_none(ack.get("amount"))
        sent = None if sent is None else sent * unit
        if ccxt_parse.is_final(ack, request.client_order_id):
            # The answer is the order's end state (Binance's RESULT for an IOC or market
            # order): its trades are all that is left to read. If they can't be, the
            # order is looked up by client id, as a lost answer is: never sent again.
            return ccxt_parse.with_notes(
                request, sent, await self._with_trades(request.symbol, ack)
            )
        try:
            confirmed = await self.fetch_order(request.symbol, request.client_order_id)
        except RetryableError as exc:
            log.warning(
                "order.confirm_failed", client_order_id=request.client_order_id, error=str(exc)
            )
            confirmed = None
        result = confirmed or ccxt_parse.order(ack, request.symbol, [], self._clock.now(), unit)
        return ccxt_parse.with_notes(request, sent, result)

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderResult | None:
        """The order and its fills by client order id; None when the exchange has none."""
        raw = await self.venue.find_order(symbol, client_order_id)
        if raw is None:
            return None
        return await self._with_trades(symbol, raw)

    async def _with_trades(self, symbol: str, raw: Mapping[str, Any]) -> OrderResult:
        """A ccxt order with its fills (read when something filled)."""
        trades: list[Any] = []
        if (dec_or_none(raw.get("filled")) or ZERO) > ZERO and raw.get("id") is not None:
            trades = await self.venue.order_trades(symbol, raw)
        unit = self.venue.coins_per_unit(symbol)
        return ccxt_parse.order(raw, symbol, trades, self._clock.now(), unit)

    async def fetch_open_orders(self, symbols: Iterable[str]) -> list[OrderResult]:
        """Open perp orders on these symbols, in one request for the whole account."""
        wanted = {s for s in symbols if is_contract(s)}
        if not wanted:
            return []
        # One call without a symbol costs more weight than one with, but far less than
        # one per pair; ccxt warns about it unless told this is deliberate.
        self._client.options["warnOnFetchOpenOrdersWithoutSymbol"] = False
        raw: list[Any] = []
        for params in self.venue.open_orders_requests(sorted(wanted)):
            raw += await self._call(
                "fetch_open_orders", self._client.fetch_open_orders, None, None, None, params
            )
        now = self._clock.now()
        unit = self.venue.coins_per_unit
        return [
            ccxt_parse.order(item, item["symbol"], [], now, unit(item["symbol"]))
            for item in raw
            if item.get("symbol") in wanted
        ]

    async def cancel_order(self, symbol: str, client_order_id: str) -> OrderResult | None:
        """Cancel by client order id and return the order's final state."""
        await self.venue.cancel(symbol, client_order_id)
        return await self.fetch_order(symbol, client_order_id)

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._client.close()
