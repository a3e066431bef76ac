"""Pair leases: several daemons share one database, and each pair has one holder at a time.

A daemon claims its pairs at the start of every cycle. A lease is held until
``expires_at`` (database time, so the hosts' clocks do not matter) and renewed by each
claim; a daemon that dies stops renewing, and after the lease period another one takes
the pair over with a higher ``token``. Before an order's intent is stored the holder
checks, in the same transaction and under the row's lock, that it still holds the lease
with the same token and enough time left to send: a daemon that stalled past its
lease stores nothing and sends nothing.

``plan_claims`` is the pure part: given the lease rows it could lock, what to keep,
take and give back.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Lease:
    """This daemon's right to trade a pair, as of its last claim."""

    pair: str
    holder: str
    token: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LeaseState:
    """One lease row as the claim reads it (holder None: free)."""

    pair: str
    holder: str | None
    token: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Takeover:
    pair: str
    token: int
    previous_holder: str | None


@dataclass(slots=True)
class ClaimPlan:
    """What one claim does: renew ``keep``, ``take`` free or expired pairs, ``give_back``."""

    keep: list[str] = field(default_factory=list)
    take: list[Takeover] = field(default_factory=list)
    give_back: list[str] = field(default_factory=list)


class LeaseLostError(Exception):
    """This daemon no longer holds the pair's lease: its intent was not stored or sent."""


def fair_share(pairs: int, live_instances: int) -> int:
    """How many pairs one daemon holds when ``live_instances`` share ``pairs``."""
    return math.ceil(pairs / max(live_instances, 1))


def instance_lock_key(instance_id: str) -> int:
    """The Postgres advisory lock key a daemon holds for its life (a signed 64-bit int)."""
    return int.from_bytes(hashlib.sha256(instance_id.encode()).digest()[:8], "big", signed=True)


def plan_claims(
    rows: Sequence[LeaseState],
    me: str,
    now: datetime,
    share: int,
    alone: bool = False,
    dead: Collection[str] = (),
) -> ClaimPlan:
    """Keep up to ``share`` of my leases, give back the rest, take free or expired ones.

    Pure. ``rows`` are the rows this claim could lock (a row another daemon is
    changing right now is not among them), in a stable order. A pair held by someone
    else whose lease has not expired is never taken, unless that holder is known to be
    ``dead`` (its database session, and with it its life lock, is gone), or ``alone``:
    this daemon holds the database's only-daemon lock, so every other holder is dead.
    """
    plan = ClaimPlan()
    mine = [r for r in rows if r.holder == me]
    for row in mine:
        # My own lease, even if it lapsed: nobody took it in between, or the holder
        # would be someone else.
        (plan.keep if len(plan.keep) < share else plan.give_back).append(row.pair)
    room = share - len(plan.keep)
    for row in rows:
        if room <= 0:
            break
        if row.holder == me:
            continue
        if row.holder is None or row.expires_at <= now or alone or row.holder in dead:
            plan.take.append(Takeover(row.pair, row.token + 1, row.holder))
            room -= 1
    return plan


def lease_problem(
    current: LeaseState | None, lease: Lease, now: datetime, margin: timedelta
) -> str | None:
    """Why ``lease`` does not allow sending an order now (None: it does). Pure."""
    if current is None:
        return f"no lease row for {lease.pair}"
    if current.holder != lease.holder or current.token != lease.token:
        return (
            f"lease of {lease.pair} is held by {current.holder or 'nobody'} "
            f"(token {current.token}), not by this daemon (token {lease.token})"
        )
    if current.expires_at - now < margin:
        return (
            f"lease of {lease.pair} ends at {current.expires_at.isoformat()}, "
            f"less than {margin.total_seconds():g} s from now"
        )
    return None
