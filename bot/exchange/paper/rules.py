"""The paper venue's fixed rules: symbols, the price grid, the funding and delivery calendar.

Pure functions of their arguments.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from bot.domain.symbols import Symbol
from bot.exchange.gateway import parse_symbol

# Binance delivers its quarterly futures at 08:00 UTC of the date in the symbol.
DELIVERY_TIME = timedelta(hours=8)


def settle_asset(symbol: str) -> str:
    """The asset a contract's margin, PnL and fees are kept in (the quote of a spot pair)."""
    return parse_symbol(symbol).margin_asset


def delivery(symbol: Symbol) -> datetime | None:
    """A dated future's delivery: its expiry date at DELIVERY_TIME (UTC); None otherwise."""
    if symbol.expiry is None:
        return None
    return datetime.combine(symbol.expiry, time(), UTC) + DELIVERY_TIME


def to_step(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    """``value`` on the grid of ``step``, rounded as ``rounding`` says."""
    return (value / step).to_integral_value(rounding=rounding) * step


def next_funding_time(after: datetime, interval_hours: int) -> datetime:
    """The first funding boundary strictly after ``after``.

    Boundaries are every ``interval_hours`` from UTC midnight (00:00, 08:00, 16:00 for 8);
    an interval that does not divide 24 restarts at each midnight.
    """
    after = after.astimezone(UTC)
    midnight = after.replace(hour=0, minute=0, second=0, microsecond=0)
    interval = timedelta(hours=interval_hours)
    candidate = midnight + ((after - midnight) // interval + 1) * interval
    return min(candidate, midnight + timedelta(days=1))


def funding_times(after: datetime, until: datetime, interval_hours: int) -> Iterator[datetime]:
    """Funding boundaries in ``(after, until]``, oldest first."""
    boundary = next_funding_time(after, interval_hours)
    while boundary <= until:
        yield boundary
        boundary = next_funding_time(boundary, interval_hours)
