"""The account's request limiter (bot/exchange/ccxt_client.py): a sliding window that,
when full, sleeps once until a slot frees instead of waking every 10 ms to look."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from asyncio_throttle.throttler import Throttler

from bot.exchange.ccxt_client import SlidingWindow, make_throttler


class FakeTime:
    """A monotonic clock that moves only when the limiter sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(seconds, 0.0)


def test_a_full_window_waits_once_per_request_held_and_keeps_the_rate() -> None:
    time = FakeTime()
    limiter = SlidingWindow(2, 1.0, monotonic=time.monotonic, sleep=time.sleep)
    granted = []

    async def run() -> None:
        for _ in range(6):
            await limiter.acquire()
            granted.append(time.now)

    asyncio.run(run())
    # Two a second, as before: the third request waits for the first to leave the window.
    assert [round(t - 100.0, 3) for t in granted] == [0, 0, 1, 1, 2, 2]
    # One sleep per wait (the 3rd and the 5th request's; the 4th and 6th find room), not
    # one every 10 ms (asyncio-throttle's: about 100 a wait of a second).
    assert len(time.sleeps) == 2


def test_a_window_with_room_never_sleeps() -> None:
    time = FakeTime()
    limiter = SlidingWindow(5, 1.0, monotonic=time.monotonic, sleep=time.sleep)

    async def run() -> None:
        for _ in range(5):
            async with limiter:
                pass

    asyncio.run(run())
    assert time.sleeps == []


def test_the_account_limiter_is_the_sliding_window_at_the_configured_rate() -> None:
    every_second = make_throttler(Decimal(20))
    slow = make_throttler(Decimal("0.5"))
    assert isinstance(every_second, SlidingWindow)
    assert isinstance(every_second, Throttler)  # what venues/settings.py paces with
    assert (every_second.rate_limit, every_second.period) == (20, 1.0)
    assert (slow.rate_limit, slow.period) == (1, 2.0)


def test_a_weighted_call_takes_its_slots_at_once_when_there_is_room_else_one_by_one() -> None:
    time = FakeTime()
    limiter = SlidingWindow(5, 1.0, monotonic=time.monotonic, sleep=time.sleep)
    assert limiter.take(3)
    assert not limiter.take(3)  # 2 left: none taken
    assert limiter.take(2)
    assert time.sleeps == []
    assert len(limiter._task_logs) == 5
