"""The ccxt client of one exchange account (keys, ``ccxt_config``) and
the way every request goes through it (``CcxtCalls``: one limiter, a private decimal
context, ccxt's exceptions translated, one bounded retry policy)."""

from __future__ import annotations

import decimal
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import structlog
from ccxt.base import errors as ccxt_errors

from bot.config import AccountConfig
from bot.exchange.ccxt_lazy import exchange_class
from bot.exchange.ccxt_limits import Limiter, RateLimits
from bot.exchange.ccxt_translate import Secrets, translate
from bot.exchange.gateway import FatalError, GatewayError, RetryableError
from bot.exchange.retry import RetryPolicy, with_retries

log = structlog.get_logger(__name__)

#: How a ccxt exception becomes the bot's: (exception, what, for_order, scrub, retry_after).
Translator = Callable[[Exception, str, bool, Callable[[str], str], "float | None"], GatewayError]


def build_client(account: AccountConfig, *, with_keys: bool = True) -> Any:
    """A ccxt client for the account: keys and ``ccxt_config`` (the testnet switch is the
    venue module's, ``CcxtVenue.enable_testnet``)."""
    exchange = exchange_class(account.exchange)
    if exchange is None:
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
    return exchange(config)


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class CcxtCalls:
    """Every request of one account's ``client``.

    One limiter, ours, per account: ccxt's own would space calls again and busy-poll
    while it waits, so its throttle hook is routed through ours, sized from the venue's
    documented ``limits`` (``bot.exchange.ccxt_limits``). ``requests`` and
    ``limiter_waits`` count what went through it and what it held back.
    """

    def __init__(
        self,
        name: str,
        client: Any,
        *,
        requests_per_s: Decimal | None = None,
        policy: RetryPolicy | None = None,
        account: AccountConfig | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        translator: Translator = translate,
        limits: RateLimits | None = None,
    ) -> None:
        self._name = name
        self._translate = translator
        self._client = client
        self._policy = policy or RetryPolicy()
        self._secrets = Secrets(account)
        self._sleep = sleep
        self.limiter = Limiter(client, limits or RateLimits(), requests_per_s)
        self.requests_per_s = self.limiter.requests_per_s
        self.limiter_waits = 0
        self.requests = 0
        client.enableRateLimit = True
        self.limiter.watch(client)
        client.throttle = self._throttle

    async def _throttle(self, cost: Any = None) -> None:
        if await self.limiter.wait(cost):
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

    @contextmanager
    def translated(self, what: str, for_order: bool) -> Iterator[None]:
        """Run ccxt code under a copy of the decimal context; its exceptions become the
        bot's taxonomy (``for_order``: an unknown one is a rejection, else retryable)."""
        try:
            # ccxt sets rounding and traps on the decimal context it finds; give it a
            # copy, so the domain's arithmetic never depends on which calls ran.
            with decimal.localcontext():
                yield
        except ccxt_errors.BaseError as exc:
            raise self._translate(
                exc, what, for_order, self._secrets.scrub, self._retry_after()
            ) from exc

    async def call(
        self,
        what: str,
        fn: Callable[..., Awaitable[Any]],
        *args: Any,
        retry: bool = True,
        for_order: bool = False,
        **kwargs: Any,
    ) -> Any:
        """``await fn(*args, **kwargs)`` translated, and retried when ``retry``."""

        async def once() -> Any:
            with self.translated(what, for_order):
                return await fn(*args, **kwargs)

        if not retry:
            return await once()

        def on_retry(attempt: int, exc: RetryableError, wait: float) -> None:
            log.warning(
                "exchange.retry",
                account=self._name,
                call=what,
                attempt=attempt,
                wait_s=round(wait, 3),
                error=str(exc),
            )

        if self._sleep is None:
            return await with_retries(once, self._policy, on_retry=on_retry)
        return await with_retries(once, self._policy, on_retry=on_retry, sleep=self._sleep)
