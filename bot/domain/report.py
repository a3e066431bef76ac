"""What a pair's hedge earned and cost over a period, and how well it hedged (pure).

From the stored series only: observations (spot and perp quantity, price), the perp's
fills and the funding payments. Every figure is in the quote asset.

* spot PnL: the spot held between two observations times the price change, summed.
* perp PnL: average-cost accounting of the fills on top of the position at the first
  observation (valued at its price): realized on reductions, unrealized at the last price.
* net = spot PnL + perp PnL + funding - fees.
* hedge effectiveness: ``1 - var(hedged value changes) / var(spot value changes)`` between
  consecutive observations, where a change is ``qty x price change`` with the spot
  quantity (unhedged) or spot + signed perp quantity (hedged): 1 for a full hedge, 0.75
  for a half hedge, 0 for none; None when the spot value never changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import pairwise

from bot.domain.models import ONE, ZERO


@dataclass(frozen=True, slots=True)
class ReportPoint:
    """One stored observation: spot and signed perp quantity (base) at a price."""

    at: datetime
    spot_qty: Decimal
    perp_qty: Decimal
    price: Decimal


@dataclass(frozen=True, slots=True)
class ReportFill:
    """One perp fill: signed base quantity (negative = sold), price, fee in quote."""

    at: datetime
    qty: Decimal
    price: Decimal
    fee: Decimal


@dataclass(frozen=True, slots=True)
class PairReport:
    pair: str
    since: datetime | None
    until: datetime
    observations: int
    start_price: Decimal | None
    end_price: Decimal | None
    spot_pnl: Decimal
    perp_realized_pnl: Decimal
    perp_unrealized_pnl: Decimal
    funding: Decimal
    fees: Decimal
    hedge_effectiveness: Decimal | None

    @property
    def perp_pnl(self) -> Decimal:
        return self.perp_realized_pnl + self.perp_unrealized_pnl

    @property
    def net(self) -> Decimal:
        return self.spot_pnl + self.perp_pnl + self.funding - self.fees


def _scaled_variance(values: Sequence[Decimal]) -> Decimal:
    # n^2 x the variance, without dividing: the ratio of two is then exact for exact inputs.
    total = sum(values, ZERO)
    return len(values) * sum((v * v for v in values), ZERO) - total * total


def hedge_effectiveness(points: Sequence[ReportPoint]) -> Decimal | None:
    """``1 - var(hedged changes) / var(unhedged changes)``; None without spot variance."""
    unhedged: list[Decimal] = []
    hedged: list[Decimal] = []
    for before, after in pairwise(points):
        move = after.price - before.price
        unhedged.append(before.spot_qty * move)
        hedged.append((before.spot_qty + before.perp_qty) * move)
    if not unhedged:
        return None
    spot_variance = _scaled_variance(unhedged)
    if spot_variance == ZERO:
        return None
    return ONE - _scaled_variance(hedged) / spot_variance


def _perp_pnl(
    start_qty: Decimal, start_price: Decimal, fills: Sequence[ReportFill], end_price: Decimal
) -> tuple[Decimal, Decimal]:
    """(realized, unrealized) of the position at the start plus the fills, average cost."""
    qty, entry, realized = start_qty, start_price, ZERO
    for fill in sorted(fills, key=lambda f: f.at):
        if qty == ZERO or (qty > ZERO) == (fill.qty > ZERO):
            total = abs(qty) + abs(fill.qty)
            entry = (abs(qty) * entry + abs(fill.qty) * fill.price) / total
            qty += fill.qty
            continue
        closing = min(abs(fill.qty), abs(qty))
        direction = ONE if qty > ZERO else -ONE
        realized += closing * (fill.price - entry) * direction
        qty += fill.qty
        if qty == ZERO:
            entry = ZERO
        elif (qty > ZERO) != (direction > ZERO):
            entry = fill.price  # flipped: the rest opened at this fill
    return realized, qty * (end_price - entry)


def pair_report(
    pair: str,
    points: Sequence[ReportPoint],
    fills: Sequence[ReportFill],
    funding: Sequence[Decimal],
    since: datetime | None,
    until: datetime,
) -> PairReport:
    """The pair's PnL, costs and hedge effectiveness over ``points`` (oldest first)."""
    spot_pnl = ZERO
    for before, after in pairwise(points):
        spot_pnl += before.spot_qty * (after.price - before.price)
    realized = unrealized = ZERO
    if points:
        first, last = points[0], points[-1]
        # The first observation's position is the starting point: fills before it are in it.
        later = [f for f in fills if f.at >= first.at]
        realized, unrealized = _perp_pnl(first.perp_qty, first.price, later, last.price)
    return PairReport(
        pair=pair,
        since=since,
        until=until,
        observations=len(points),
        start_price=points[0].price if points else None,
        end_price=points[-1].price if points else None,
        spot_pnl=spot_pnl,
        perp_realized_pnl=realized,
        perp_unrealized_pnl=unrealized,
        funding=sum(funding, ZERO),
        fees=sum((f.fee for f in fills), ZERO),
        hedge_effectiveness=hedge_effectiveness(points),
    )
