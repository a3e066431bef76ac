"""Candles for the paper venue, built from its feed's price path.

A feed that can tell the prices it walked through (``PricePath``) gets OHLC bars cut from
that path; a live feed asks its exchange instead (``CandleSource``). Bars are aligned to the
epoch like an exchange's (a 4h bar opens at 00:00, 04:00, … UTC); the last one returned may
still be forming, as on a real venue.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Protocol, runtime_checkable

from bot.domain.models import ZERO, Candle

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Bars older than this many are never asked for (the slowest MA is at most 1000 long).
MAX_CANDLES = 1500


@runtime_checkable
class PricePath(Protocol):
    """A feed that remembers the prices it went through."""

    def price_path(
        self, symbol: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, Decimal]]:
        """Price points in ``[start, end]`` oldest first, led by the last one before ``start``."""
        ...


@runtime_checkable
class CandleSource(Protocol):
    """A feed that can fetch real candles (the live feed)."""

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: datetime | None = None, limit: int | None = None
    ) -> list[Candle]:
        """OHLCV bars oldest first."""
        ...


def bar_start(at: datetime, timeframe: timedelta) -> datetime:
    """The opening time of the bar that contains ``at``."""
    return _EPOCH + ((at - _EPOCH) // timeframe) * timeframe


def candles_from_path(
    points: Sequence[tuple[datetime, Decimal]],
    timeframe: timedelta,
    first: datetime,
    now: datetime,
    limit: int,
) -> list[Candle]:
    """Bars from ``first``'s bar to ``now``'s (the forming one), at most ``limit``.

    A bar opens at the last price before it (so consecutive bars join up) and a bar with no
    price inside is flat at that price. Bars before the path's first point are left out.
    """
    if not points:
        return []
    opened_at = max(bar_start(first, timeframe), bar_start(points[0][0], timeframe))
    candles: list[Candle] = []
    index = 0
    previous: Decimal | None = None
    while opened_at <= now and len(candles) < limit:
        closes_at = opened_at + timeframe
        while index < len(points) and points[index][0] < opened_at:
            previous = points[index][1]
            index += 1
        inside: list[Decimal] = []
        while index < len(points) and points[index][0] < closes_at:
            inside.append(points[index][1])
            index += 1
        prices = ([previous] if previous is not None else []) + inside
        if prices:
            candles.append(
                Candle(
                    opened_at=opened_at,
                    open=prices[0],
                    high=max(prices),
                    low=min(prices),
                    close=prices[-1],
                    volume=ZERO,
                )
            )
            previous = prices[-1]
        opened_at = closes_at
    return candles
