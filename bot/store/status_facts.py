"""What ``hedgebot status`` adds to a pair's latest decision: the fills recorded after
its observation, and whether a daemon still runs the pair (its lease)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.tables import (
    DaemonInstanceRow,
    DecisionRow,
    ObservationRow,
    OrderRow,
    PairLeaseRow,
)

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class FilledSince:
    """Base quantity the pair's own orders filled after an observation: spot bought (+)
    or sold (-), and perp position change (a sell is -)."""

    spot: Decimal = ZERO
    perp: Decimal = ZERO

    def __bool__(self) -> bool:
        return self.spot != ZERO or self.perp != ZERO


@dataclass(frozen=True, slots=True)
class DaemonFacts:
    """Who runs the pair, as the database knows it now."""

    now: datetime  # the database's time (the clock leases are written in)
    leased: bool  # the pair has a lease row (every daemon since leases holds one)
    holder: str | None  # None: given back at a clean stop
    expires_at: datetime | None
    live_instances: int  # daemons whose heartbeat is recent


async def filled_since(session: AsyncSession, observation: ObservationRow) -> FilledSince:
    """What the orders decided in ``observation``'s cycle filled, per leg: the observation
    was made before them (a cycle may send a spot sell and a hedge on one observation)."""
    rows = (
        await session.execute(
            select(OrderRow.symbol, OrderRow.side, OrderRow.filled)
            .join(DecisionRow, DecisionRow.id == OrderRow.decision_id)
            .where(
                DecisionRow.pair == observation.pair,
                DecisionRow.created_at >= observation.observed_at,  # the index's range
                DecisionRow.cycle == observation.cycle,
                OrderRow.filled > ZERO,
            )
        )
    ).all()
    spot = perp = ZERO
    # Orders count contracts, observations coins (a row before 0007 has no size: 1).
    size = observation.contract_size or Decimal(1)
    for symbol, side, filled in rows:
        signed = filled if side == "buy" else -filled
        if symbol == observation.perp_symbol:
            perp += signed * size
        elif symbol == observation.spot_symbol:
            spot += signed
    return FilledSince(spot, perp)


async def daemon_facts(
    session: AsyncSession, pair: str, now: datetime, heartbeat_within_s: float
) -> DaemonFacts:
    """The pair's lease and the number of daemons with a heartbeat in the last
    ``heartbeat_within_s`` seconds."""
    lease = await session.get(PairLeaseRow, pair)
    recent = now.timestamp() - heartbeat_within_s
    beats = (await session.execute(select(DaemonInstanceRow.heartbeat_at))).scalars()
    live = sum(1 for beat in beats if beat.timestamp() >= recent)
    if lease is None:
        return DaemonFacts(now, False, None, None, live)
    return DaemonFacts(now, True, lease.holder, lease.expires_at, live)
