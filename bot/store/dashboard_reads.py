"""Bounded reads for the dashboard (bot/service/dashboard.py): a pair's stored decisions
over a window, thinned in the database to at most a given number of points.

Read-only; each call is one short read session apart from the daemon's writes, and its
answer never grows with the window: the database numbers the window's rows and returns
every ``stride``-th one (and the last), so a month of ten-second cycles still sends only
``points`` rows to Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, or_, select

from bot.store.database import StoreBase
from bot.store.tables import DecisionRow, ObservationRow


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One stored decision with the observation it was made on."""

    at: datetime
    ratio: Decimal | None
    target_ratio: Decimal
    band: Decimal
    spot_qty: Decimal
    hedge_qty: Decimal  # the short perp position in coins (positive when short)
    price: Decimal  # the contract's
    spot_price: Decimal | None  # the spot's own, where it was observed

    @property
    def spot_value(self) -> Decimal:
        return self.spot_qty * (self.price if self.spot_price is None else self.spot_price)

    @property
    def hedged_value(self) -> Decimal:
        """The part of the spot's value the short covers (all of it when over-hedged)."""
        covered = min(max(self.hedge_qty, Decimal(0)), max(self.spot_qty, Decimal(0)))
        return covered * (self.price if self.spot_price is None else self.spot_price)


@dataclass(frozen=True, slots=True)
class Series:
    pair: str
    points: list[SeriesPoint]
    total: int  # decisions in the window
    stride: int  # every stride-th was returned


class DashboardReads(StoreBase):
    """What the dashboard reads beyond ``pair_status``, ``report`` and the audit log."""

    async def decision_series(self, pair: str, since: datetime, points: int) -> Series:
        """The pair's decisions since ``since``, oldest first, thinned to about ``points``."""
        window = (DecisionRow.pair == pair, DecisionRow.created_at >= since)
        async with self._read() as session:
            counted = select(func.count()).select_from(DecisionRow).where(*window)
            total = int((await session.execute(counted)).scalar_one())
            stride = max(1, -(-total // max(1, points)))
            numbered = (
                select(
                    DecisionRow.created_at,
                    DecisionRow.ratio,
                    DecisionRow.target_ratio,
                    DecisionRow.band,
                    ObservationRow.spot_qty,
                    ObservationRow.perp_qty,
                    ObservationRow.price,
                    ObservationRow.spot_price,
                    func.row_number()
                    .over(order_by=(DecisionRow.created_at, DecisionRow.id))
                    .label("n"),
                )
                .join(ObservationRow, ObservationRow.id == DecisionRow.observation_id)
                .where(*window)
                .subquery()
            )
            n = numbered.c.n
            rows = await session.execute(
                select(numbered)
                .where(or_((n - 1) % stride == 0, n == total))
                .order_by(n)
                .limit(points + 2)
            )
            found = [
                SeriesPoint(at, ratio, target, band, spot, -perp, price, spot_price)
                for at, ratio, target, band, spot, perp, price, spot_price, _ in rows
            ]
        return Series(pair, found, total, stride)
