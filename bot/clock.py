"""Time as an injected dependency, so tests and backtests control it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait; a fake clock advances instead."""
        ...

    async def wait_or_stop(self, seconds: float, stop: asyncio.Event) -> None:
        """Wait ``seconds`` or until ``stop`` is set, whichever comes first."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait_or_stop(self, seconds: float, stop: asyncio.Event) -> None:
        if seconds <= 0 or stop.is_set():
            return
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        except TimeoutError:
            pass


class FakeClock:
    """A clock that moves only when told to (or when slept on)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)

    async def wait_or_stop(self, seconds: float, stop: asyncio.Event) -> None:
        if not stop.is_set():
            self.advance(max(seconds, 0))
        await asyncio.sleep(0)
