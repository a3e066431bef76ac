"""The ccxt client of one exchange account (keys, ``ccxt_config``) and
the way every request goes through it (``CcxtCalls``: one limiter, a private decimal
context, ccxt's exceptions translated, one bounded retry policy)."""

from __future__ import annotations

import asyncio
import decimal
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async
import structlog
from asyncio_throttle.throttler import Throttler
from ccxt.base import errors as ccxt_errors

from bot.config import AccountConfig
from bot.exchange.ccxt_translate import Secrets, translate
from bot.exchange.gateway import FatalError, GatewayError, RetryableError
from bot.exchange.retry import RetryPolicy, with_retries

log = structlog.get_logger(__name__)

LIMITER_WAIT_S = 0.001  # a request held longer than this by the limiter counts as a wait

#: How a ccxt exception becomes the bot's: (exception, what, for_order, scrub, retry_after).
Translator = Callable[[Exception, str, bool, Callable[[str], str], "float | None"], GatewayError]


class SlidingWindow(Throttler):
    """asyncio-throttle's sliding window (``rate_limit`` entries a ``period``) that, when
    full, sleeps once until its oldest entry leaves it. asyncio-throttle's own ``acquire``
    wakes every ``retry_interval`` (10 ms) to look again: a held request cost a loop
    iteration every 10 ms, each waiting request its own."""

    def __init__(
        self,
        rate_limit: int,
        period: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(rate_limit, period)
        self._monotonic = monotonic
        self._sleep = sleep

    def flush(self) -> None:
        now = self._monotonic()
        while self._task_logs and now - self._task_logs[0] > self.period:
            self._task_logs.popleft()

    def take(self, slots: int) -> bool:
        """Take ``slots`` at once if the window has room for all of them now (what as many
        ``acquire`` calls would do without waiting); False, and none taken, if not."""
        self.flush()
        if len(self._task_logs) + slots > self.rate_limit:
            return False
        now = self._monotonic()
        self._task_logs.extend(now for _ in range(slots))
        return True

    async def acquire(self) -> None:
        while True:
            self.flush()
            if len(self._task_logs) < self.rate_limit:
                break
            # The oldest entry leaves the window just after ``period`` (``flush`` drops
            # it when strictly older); a wake a hair early looks once more.
            await self._sleep(self._task_logs[0] + self.period - self._monotonic() + 1e-6)
        self._task_logs.append(self._monotonic())


def make_throttler(requests_per_s: Decimal) -> SlidingWindow:
    """A sliding window for a (possibly fractional) request rate."""
    if requests_per_s >= 1:
        return SlidingWindow(rate_limit=int(requests_per_s), period=1.0)
    return SlidingWindow(rate_limit=1, period=float(1 / requests_per_s))


def build_client(account: AccountConfig, *, with_keys: bool = True) -> Any:
    """A ccxt client for the account: keys and ``ccxt_config`` (the testnet switch is the
    venue module's, ``CcxtVenue.enable_testnet``)."""
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
    return getattr(ccxt_async, account.exchange)(config)


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
    while it waits, so its throttle hook is routed through ours. ``requests`` and
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
    ) -> None:
        self._name = name
        self._translate = translator
        self._client = client
        self._policy = policy or RetryPolicy()
        self._secrets = Secrets(account)
        self._sleep = sleep
        rate = requests_per_s or Decimal(1000) / Decimal(str(client.rateLimit or 100))
        self.throttler = make_throttler(rate)
        self.requests_per_s = rate
        self.limiter_waits = 0
        self.requests = 0
        client.enableRateLimit = True
        client.throttle = self._throttle

    async def _throttle(self, cost: Any = None) -> None:
        slots = max(1, math.ceil(float(cost or 1)))
        started = time.monotonic()
        if not self.throttler.take(slots):  # a call weighs several slots: one at a time
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
