"""The venue interface every adapter implements, and the error taxonomy.

Errors are classified by what the caller does next:

* ``RetryableError``: transient (network, timeout, 5xx, rate limit); retry later.
* ``OrderRejectedError``: the venue said no to an order; audit it, do not retry
  it in this cycle.
* ``FatalError``: configuration or credentials are wrong; stop the pair.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Protocol, runtime_checkable

from bot.domain.models import (
    Balance,
    FundingPayment,
    FundingRate,
    Market,
    OrderRequest,
    OrderResult,
    Position,
    Ticker,
)


class GatewayError(Exception):
    """Base of every error a gateway raises."""


class RetryableError(GatewayError):
    """Transient failure; the bot retries on a later attempt or cycle."""


class OrderRejectedError(GatewayError):
    """The venue refused the order; the bot audits it and waits a cycle."""


class FatalError(GatewayError):
    """Bad keys, unknown symbol or bad config; the bot stops the pair."""


@runtime_checkable
class ExchangeGateway(Protocol):
    """One exchange account, as the daemon sees it."""

    name: str

    async def load_markets(self, symbols: Iterable[str]) -> Mapping[str, Market]:
        """Return the trading rules of the given symbols."""
        ...

    async def fetch_balances(self) -> Mapping[str, Balance]:
        """Return spot balances by asset."""
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

    async def set_leverage(self, symbol: str, leverage: Decimal) -> None:
        """Set the perp's leverage (isolated margin) before trading it."""
        ...

    async def create_order(self, request: OrderRequest) -> OrderResult:
        """Send an order; raise OrderRejectedError when the venue refuses it."""
        ...

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderResult | None:
        """Look an order up by its client order id; None when the venue has none."""
        ...

    async def fetch_funding_payments(self, symbols: Iterable[str]) -> list[FundingPayment]:
        """Return funding payments not yet handed out by this call."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
