"""The venue interface every adapter implements, and the error taxonomy.

Errors are classified by what the caller does next:

* ``RetryableError``: transient (network, timeout, 5xx, rate limit); retry later.
* ``OrderRejectedError``: the venue said no to an order; audit it, do not retry
  it in this cycle.
* ``FatalError``: configuration or credentials are wrong; stop the pair.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from bot.domain.margin_transfers import MarginChange, WalletTransfer
from bot.domain.models import (
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
from bot.domain.symbols import Symbol, SymbolError


class GatewayError(Exception):
    """Base of every error a gateway raises."""


class RetryableError(GatewayError):
    """Transient failure; the bot retries on a later attempt or cycle."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RateLimitedError(RetryableError):
    """The venue throttled us; the request was not executed. Wait ``retry_after_s``."""


class OrderRejectedError(GatewayError):
    """The venue refused the order; the bot audits it and waits a cycle."""


class DuplicateOrderError(OrderRejectedError):
    """The client order id was used before: the earlier order exists; look it up."""


class FatalError(GatewayError):
    """Bad keys, unknown symbol or bad config; the bot stops the pair."""


@dataclass(frozen=True, slots=True)
class ContractSetting:
    """How a contract is to be traded: ``margin_mode`` ('isolated' or 'cross') and the
    leverage."""

    margin_mode: str
    leverage: Decimal


def parse_symbol(symbol: str) -> Symbol:
    """The parsed symbol; a malformed one is a configuration problem (FatalError)."""
    try:
        return Symbol.parse(symbol)
    except SymbolError as exc:
        raise FatalError(f"unknown symbol {symbol!r}: {exc.reason}") from None


@runtime_checkable
class ExchangeGateway(Protocol):
    """One exchange account, as the daemon sees it."""

    name: str

    @property
    def hedge_mode(self) -> bool:
        """True when the account holds separate long and short positions per symbol
        (known once the markets are loaded); hedgebot then trades only the short side."""
        ...

    @property
    def has_margin_history(self) -> bool:
        """Whether ``fetch_margin_history`` can answer: without it a margin transfer whose
        answer was lost cannot be looked up, so the guard may not move margin."""
        ...

    @property
    def one_wallet(self) -> bool:
        """True when ``fetch_balances`` and ``fetch_margin_balances`` read one wallet (a
        unified account): its coins are the spot coins and the inverse margin at once."""
        ...

    async def load_markets(
        self, symbols: Iterable[str], reload: bool = False
    ) -> Mapping[str, Market]:
        """Return the trading rules of the given symbols; ``reload`` asks the venue again
        instead of answering from what it loaded before."""
        ...

    async def fetch_balances(self) -> Mapping[str, Balance]:
        """Return spot balances by asset."""
        ...

    async def fetch_margin_balances(self) -> Mapping[str, Balance]:
        """Return the perp (margin) wallet's balances by asset."""
        ...

    async def fetch_order_book(self, symbol: str, depth: int = 20) -> OrderBook:
        """Return the best ``depth`` levels of each side."""
        ...

    async def fetch_positions(self, symbols: Iterable[str]) -> Mapping[str, Position]:
        """Return open perp positions by symbol (absent symbol = flat)."""
        ...

    async def fetch_tickers(self, symbols: Iterable[str]) -> Mapping[str, Ticker]:
        """Return best bid/ask and last price per symbol."""
        ...

    async def fetch_funding_rates(self, symbols: Iterable[str]) -> Mapping[str, FundingRate]:
        """Return the current funding rate per perp symbol."""
        ...

    async def fetch_contract_quotes(
        self, symbols: Iterable[str]
    ) -> tuple[Mapping[str, Ticker], Mapping[str, FundingRate]]:
        """``fetch_tickers`` and ``fetch_funding_rates`` of one observation's contracts,
        each endpoint asked once for all of them (one request where the venue's tickers
        carry the funding rate); the funding rates may be a read of the last minute."""
        ...

    async def set_leverage(self, symbol: str, leverage: Decimal) -> None:
        """Set the perp's leverage before trading it; FatalError if it does not take."""
        ...

    async def set_margin_mode(self, symbol: str, margin_mode: str) -> None:
        """Set 'isolated' or 'cross' margin; FatalError if the venue cannot."""
        ...

    async def apply_settings(self, wanted: Mapping[str, ContractSetting]) -> None:
        """Make each contract's margin mode and leverage as ``wanted``, setting only what
        the venue holds otherwise (safe to repeat); FatalError if the venue cannot."""
        ...

    async def add_margin(self, symbol: str, amount: Decimal) -> None:
        """Move ``amount`` of the settle asset into the isolated position of ``symbol``;
        OrderRejectedError when the venue refuses (no position, not enough free). Sent
        once: a lost answer is looked up in ``fetch_margin_history``, never resent."""
        ...

    async def fetch_margin_history(self, symbol: str, since: datetime) -> list[MarginChange]:
        """The isolated-margin changes of ``symbol`` the venue made since ``since`` (ours
        and anyone's, additions and reductions), oldest first."""
        ...

    async def remove_margin(self, symbol: str, amount: Decimal) -> None:
        """Take ``amount`` of the settle asset out of the isolated position of ``symbol``
        (into the futures wallet); sent once, a lost answer looked up in
        ``fetch_margin_history`` (a reduction there)."""
        ...

    @property
    def separate_wallets(self) -> bool:
        """Whether the account keeps spot and futures in separate wallets, between which
        ``transfer`` moves quote (the collateral keeper's condition)."""
        ...

    async def transfer(
        self, asset: str, amount: Decimal, source: str, destination: str, client_id: str
    ) -> None:
        """Move ``amount`` of ``asset`` from wallet ``source`` to ``destination`` ("spot"
        or "futures"); OrderRejectedError when refused. Sent once: a lost answer is looked
        up in ``fetch_transfers`` (by ``client_id`` where the venue keeps it), never resent."""
        ...

    async def fetch_transfers(self, asset: str, since: datetime) -> list[WalletTransfer]:
        """The transfers of ``asset`` between the spot and futures wallets since ``since``
        (ours and anyone's, both ways), oldest first."""
        ...

    async def fetch_market_stats(self, symbol: str) -> MarketStats:
        """Open interest and 24h traded volume of a perp, both in the quote asset."""
        ...

    async def fetch_open_orders(self, symbols: Iterable[str]) -> list[OrderResult]:
        """Orders still open on these symbols, ours or anyone's."""
        ...

    async def cancel_order(self, symbol: str, client_order_id: str) -> OrderResult | None:
        """Cancel an open order; returns its final state, None if the venue has none."""
        ...

    async def create_order(self, request: OrderRequest) -> OrderResult:
        """Send an order; raise OrderRejectedError when the venue refuses it."""
        ...

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderResult | None:
        """Look an order up by its client order id; None when the venue has none."""
        ...

    async def fetch_funding_payments(self, symbols: Iterable[str]) -> list[FundingPayment]:
        """Return funding payments not yet committed: the same ones again (and any newer)
        until ``commit_funding`` says they are stored."""
        ...

    async def commit_funding(self) -> None:
        """The payments the last ``fetch_funding_payments`` returned are stored: move the
        cursor past them. Called only after the store's transaction committed, so a failed
        write loses nothing (the store skips a payment it already has)."""
        ...

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: datetime | None = None, limit: int | None = None
    ) -> list[Candle]:
        """OHLCV bars oldest first, from ``since`` (or the latest ``limit``); the last one
        may still be forming: callers keep only closed candles."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
