"""The account limiter's window (bot/exchange/ccxt_limits.py): asyncio-throttle's sliding
window that, when full, sleeps once until a slot frees instead of waking every 10 ms to
look, and takes a weighted request's units at once when there is room."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from asyncio_throttle.throttler import Throttler

from bot.exchange.ccxt_limits import Window, rate_window


class FakeTime:
    """A monotonic clock that moves only when the window sleeps."""

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
    window = Window(2, 1.0, time.monotonic, time.sleep)
    granted = []

    async def run() -> None:
        for _ in range(6):
            await window.take()
            granted.append(time.now)

    asyncio.run(run())
    # Two a second: the third request waits for the first to leave the window.
    assert [round(t - 100.0, 3) for t in granted] == [0, 0, 1, 1, 2, 2]
    # One sleep per wait (the 3rd and the 5th request's; the 4th and 6th find room), not
    # one every 10 ms (asyncio-throttle's own acquire: about 100 a wait of a second).
    assert len(time.sleeps) == 2


def test_a_window_with_room_never_sleeps() -> None:
    time = FakeTime()
    window = Window(5, 1.0, time.monotonic, time.sleep)

    async def run() -> list[bool]:
        return [await window.take() for _ in range(5)]

    assert asyncio.run(run()) == [False] * 5
    assert time.sleeps == []


def test_the_window_is_asyncio_throttles_at_the_rate_asked() -> None:
    time = FakeTime()
    every_second = rate_window(Decimal(20), time.monotonic, time.sleep)
    slow = rate_window(Decimal("0.5"), time.monotonic, time.sleep)

    assert isinstance(every_second, Throttler)
    assert (every_second.rate_limit, every_second.period) == (20, 1.0)
    assert (slow.rate_limit, slow.period) == (1, 2.0)


def test_a_weighted_request_takes_its_units_at_once_when_there_is_room() -> None:
    time = FakeTime()
    window = Window(5, 1.0, time.monotonic, time.sleep)

    async def run() -> list[bool]:
        return [await window.take(3), await window.take(2), await window.take(3)]

    held = asyncio.run(run())
    # 3 and 2 fit at once; the next 3 wait one second for the window to empty, once.
    assert held == [False, False, True]
    assert len(time.sleeps) == 1
    assert time.now == 101.0
