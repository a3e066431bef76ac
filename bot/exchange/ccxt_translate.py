"""ccxt's exceptions as the bot's error taxonomy, translated once, at the adapter.

The caller's next step decides the class: ``RetryableError`` (network, timeout, 5xx, rate
limit), ``OrderRejectedError`` (the exchange said no), ``FatalError`` (bad keys, unknown
symbol, an unsupported call). Messages are scrubbed of the request's query string and the
account's secrets before they reach a log line.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ccxt.base import errors as ccxt_errors

from bot.config import AccountConfig
from bot.exchange.gateway import (
    DuplicateOrderError,
    FatalError,
    GatewayError,
    OrderRejectedError,
    RateLimitedError,
    RetryableError,
)

_QUERY = re.compile(r"\?\S*")
_DUPLICATE = re.compile(r"duplicat", re.IGNORECASE)  # venue codes: bot.exchange.venues


class Secrets:
    """Strings that must never reach a log line or an exception message."""

    def __init__(self, account: AccountConfig | None) -> None:
        secrets = () if account is None else (account.api_key, account.secret, account.password)
        self._values = [s.get_secret_value() for s in secrets if s and s.get_secret_value()]

    def scrub(self, text: str) -> str:
        """``text`` without the URL query (signature, params) and secrets, at most 500 chars."""
        # ccxt messages carry the request URL; its query has the signature and params.
        text = _QUERY.sub("?…", text)
        for secret in self._values:
            text = text.replace(secret, "***")
        return text[:500]


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


def order_not_found(exc: GatewayError) -> bool:
    """Whether ``exc`` was translated from ccxt's OrderNotFound (a look-up, not a failure)."""
    return isinstance(exc.__cause__, ccxt_errors.OrderNotFound)
