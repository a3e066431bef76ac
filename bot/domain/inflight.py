"""Fills the venue's position view does not show yet (pure).

A fill reaches the order endpoints at once but the position endpoint seconds later;
a bot that trusts the stale position sends the same hedge again. Until the view
shows a fill, or a settle time passes, the fill is added to the observed position.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from bot.domain.models import ZERO


@dataclass(frozen=True, slots=True)
class RecentFill:
    """One of our fills on the perp, as the store knows it."""

    delta_qty: Decimal  # signed base quantity the fill adds to the position
    filled_at: datetime  # the venue's time of the fill
    position_before: Decimal | None  # the reported position when the order was decided


def unreflected_qty(
    position_qty: Decimal,
    position_updated_at: datetime | None,
    fills: list[RecentFill],
    now: datetime,
    settle: timedelta,
) -> Decimal:
    """The signed quantity of recent fills the position view does not include yet.

    With the venue's position update time, a fill after it is not included. Without
    it, a view still equal to the position before a fill has not seen that fill (nor
    the later ones). Fills older than ``settle`` count as included either way.
    """
    pending = sorted((f for f in fills if now - f.filled_at < settle), key=lambda f: f.filled_at)
    if not pending:
        return ZERO
    if position_updated_at is not None:
        return sum((f.delta_qty for f in pending if f.filled_at > position_updated_at), ZERO)
    for index, fill in enumerate(pending):
        if fill.position_before is not None and fill.position_before == position_qty:
            return sum((f.delta_qty for f in pending[index:]), ZERO)
    return ZERO
