"""One bounded retry policy: exponential backoff with full jitter, honouring Retry-After."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from bot.exchange.gateway import RetryableError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry a transient failure."""

    attempts: int = 4  # including the first
    base_delay_s: float = 0.2
    max_delay_s: float = 8.0

    def delay(self, attempt: int, retry_after_s: float | None, rng: random.Random) -> float:
        """Seconds to wait before ``attempt`` (1-based retry number)."""
        if retry_after_s is not None:
            # The venue said how long; waiting less would only earn another 429.
            return min(max(retry_after_s, 0.0), self.max_delay_s * 4)
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return rng.uniform(ceiling / 2, ceiling)


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_retry: Callable[[int, RetryableError, float], None] | None = None,
    rng: random.Random | None = None,
) -> T:
    """Run ``call``; retry it on RetryableError up to the policy's attempts.

    Anything else (including CancelledError) propagates at once.
    """
    rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
    attempt = 1
    while True:
        try:
            return await call()
        except RetryableError as exc:
            if attempt >= policy.attempts:
                raise
            wait = policy.delay(attempt, exc.retry_after_s, rng)
            if on_retry is not None:
                on_retry(attempt, exc, wait)
            await sleep(wait)
            attempt += 1
