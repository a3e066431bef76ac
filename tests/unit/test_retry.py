"""The retry policy: bounded, backing off, honouring Retry-After, never retrying the rest."""

from __future__ import annotations

import asyncio
import random

import pytest

from bot.exchange.gateway import OrderRejectedError, RateLimitedError, RetryableError
from bot.exchange.retry import RetryPolicy, with_retries


class Flaky:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


async def test_retryable_errors_are_retried_until_success_with_growing_waits() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    call = Flaky([RetryableError("a"), RetryableError("b"), RetryableError("c")])
    policy = RetryPolicy(attempts=4, base_delay_s=1.0, max_delay_s=100)
    assert await with_retries(call, policy, sleep=sleep, rng=random.Random(1)) == "ok"
    assert call.calls == 4
    assert 0.5 <= waits[0] <= 1
    assert 1 <= waits[1] <= 2
    assert 2 <= waits[2] <= 4


async def test_gives_up_after_the_policy_attempts() -> None:
    async def sleep(_: float) -> None:
        return None

    call = Flaky([RetryableError(str(i)) for i in range(10)])
    with pytest.raises(RetryableError):
        await with_retries(call, RetryPolicy(attempts=3), sleep=sleep)
    assert call.calls == 3


async def test_retry_after_from_the_venue_is_honoured() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    call = Flaky([RateLimitedError("429", retry_after_s=7.0)])
    await with_retries(call, RetryPolicy(), sleep=sleep)
    assert waits == [7.0]


async def test_rejections_are_not_retried() -> None:
    call = Flaky([OrderRejectedError("insufficient")])
    with pytest.raises(OrderRejectedError):
        await with_retries(call, RetryPolicy())
    assert call.calls == 1


async def test_cancellation_propagates_at_once() -> None:
    call = Flaky([asyncio.CancelledError()])  # type: ignore[list-item]
    with pytest.raises(asyncio.CancelledError):
        await with_retries(call, RetryPolicy())
    assert call.calls == 1
