"""Pair leases: several daemons share one database, and each pair has one holder at a time.

A daemon claims its pairs at the start of a cycle once a quarter of the lease period
has passed since its last claim (``PairState.claim_due``). A lease is held until
``expires_at`` (database time, so the hosts' clocks do not matter) and renewed by each
claim; a daemon that dies stops renewing, and after the lease period another one takes
the pair over with a higher ``token``. Before an order's intent is stored the holder
checks, in the same transaction and under the row's lock, that it still holds the lease
with the same token and enough time left to send: a daemon that stalled past its
lease stores nothing and sends nothing.

``plan_claims`` is the pure part: given the lease rows it could lock, what to keep,
take and give back. ``Leases`` is the repository part: it claims under
``SELECT … FOR UPDATE SKIP LOCKED`` and keeps the daemons' heartbeats.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.database import StoreBase
from bot.store.tables import AuditEventRow, DaemonInstanceRow, PairLeaseRow


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


# -- the repository part: lease rows and daemon heartbeats ------------------------------


def _lease_state(row: PairLeaseRow) -> LeaseState:
    return LeaseState(row.pair, row.holder, row.token, row.expires_at)


async def check_lease(
    session: AsyncSession,
    lease: Lease,
    margin: timedelta,
    now: Callable[[], Awaitable[datetime]],
) -> None:
    """Raise LeaseLostError unless ``lease`` still holds for ``margin`` from ``now()``,
    with the lease row locked in ``session`` (a takeover of it waits for, or skips, it)."""
    row = (
        await session.execute(
            select(PairLeaseRow).where(PairLeaseRow.pair == lease.pair).with_for_update()
        )
    ).scalar_one_or_none()
    current = None if row is None else _lease_state(row)
    problem = lease_problem(current, lease, await now(), margin)
    if problem is not None:
        raise LeaseLostError(problem)


def _apply_plan(
    by_pair: Mapping[str, PairLeaseRow],
    plan: ClaimPlan,
    instance_id: str,
    now: datetime,
    expires: datetime,
) -> dict[str, Lease]:
    """Write ``plan`` into the locked lease rows; returns the leases now held."""
    held: dict[str, Lease] = {}
    for pair in plan.keep:
        row = by_pair[pair]
        row.expires_at = expires
        held[pair] = Lease(pair, instance_id, row.token, expires)
    for takeover in plan.take:
        row = by_pair[takeover.pair]
        row.holder = instance_id
        row.token = takeover.token
        row.expires_at = expires
        row.acquired_at = now
        held[takeover.pair] = Lease(takeover.pair, instance_id, takeover.token, expires)
    for pair in plan.give_back:
        by_pair[pair].holder = None
        by_pair[pair].expires_at = now
    return held


class Leases(StoreBase):
    """Claims, checks and releases of pair leases, and the daemons' heartbeats."""

    async def claim_leases(
        self,
        instance_id: str,
        pairs: Sequence[str],
        lease_period: timedelta,
        alone: bool = False,
    ) -> tuple[dict[str, Lease], ClaimPlan, int]:
        """Renew, take and give back pair leases; returns (held, what changed, live daemons).

        ``alone``: this daemon holds the only-daemon lock, so other holders are dead.
        """
        async with self._write() as session:
            now = await self._db_now(session)
            beating = await self._heartbeat(session, instance_id, now, lease_period)
            by_pair = await self._lock_lease_rows(session, pairs)
            states = [_lease_state(r) for r in by_pair.values()]
            holding = {s.holder for s in states if s.holder and s.expires_at > now}
            dead = await self._dead_daemons(session, (beating | holding) - {instance_id})
            if dead:
                await session.execute(
                    delete(DaemonInstanceRow).where(DaemonInstanceRow.instance_id.in_(dead))
                )
            live = len(beating - dead)
            share = fair_share(len(pairs), 1 if alone else live)
            plan = plan_claims(states, instance_id, now, share, alone, dead)
            expires = now + lease_period
            held = _apply_plan(by_pair, plan, instance_id, now, expires)
            session.add_all(self._claim_audits(plan, by_pair, instance_id, live, now, expires))
            return held, plan, live

    async def _heartbeat(
        self, session: AsyncSession, instance_id: str, now: datetime, lease_period: timedelta
    ) -> set[str]:
        """Record this daemon's heartbeat; returns the daemons that beat within the period."""
        await session.execute(self._upsert_instance(instance_id, now))
        # Heartbeats long gone are clutter, not history: the audit log has the starts.
        await session.execute(
            delete(DaemonInstanceRow).where(
                DaemonInstanceRow.heartbeat_at < now - 10 * lease_period
            )
        )
        return set(
            (
                await session.execute(
                    select(DaemonInstanceRow.instance_id).where(
                        DaemonInstanceRow.heartbeat_at > now - lease_period
                    )
                )
            ).scalars()
        )

    async def _lock_lease_rows(
        self, session: AsyncSession, pairs: Sequence[str]
    ) -> dict[str, PairLeaseRow]:
        """The pairs' lease rows (created free if missing) this transaction could lock.

        The rows exist after a pair's first claim: they are inserted only when the lock
        did not return them (missing, or locked by another daemon's claim right now)."""
        by_pair = await self._lock_rows(session, pairs)
        missing = [p for p in pairs if p not in by_pair]
        if not missing:
            return by_pair
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        new_rows = [
            {"pair": p, "holder": None, "token": 0, "expires_at": epoch, "acquired_at": epoch}
            for p in missing
        ]
        await session.execute(self._insert_ignore(PairLeaseRow).values(new_rows))
        by_pair |= await self._lock_rows(session, missing)
        return dict(sorted(by_pair.items()))  # plan_claims takes them in a stable order

    async def _lock_rows(
        self, session: AsyncSession, pairs: Sequence[str]
    ) -> dict[str, PairLeaseRow]:
        rows = (
            await session.execute(
                select(PairLeaseRow)
                .where(PairLeaseRow.pair.in_(pairs))
                .order_by(PairLeaseRow.pair)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
        return {row.pair: row for row in rows}

    def _claim_audits(
        self,
        plan: ClaimPlan,
        by_pair: Mapping[str, PairLeaseRow],
        instance_id: str,
        live: int,
        now: datetime,
        expires: datetime,
    ) -> list[AuditEventRow]:
        audits = []
        for takeover in plan.take:
            before = takeover.previous_holder
            audits.append(
                self._audit_row(
                    "lease.acquired",
                    f"{instance_id} holds {takeover.pair} (token {takeover.token}"
                    + (f", taken over from {before})" if before else ")"),
                    {
                        "holder": instance_id,
                        "token": takeover.token,
                        "previous_holder": takeover.previous_holder,
                        "expires_at": expires,
                        "live_daemons": live,
                    },
                    pair=takeover.pair,
                    ts=now,
                )
            )
        for pair in plan.give_back:
            audits.append(
                self._audit_row(
                    "lease.released",
                    f"{instance_id} gave {pair} back to share the pairs among {live} daemons",
                    {"holder": instance_id, "token": by_pair[pair].token, "live_daemons": live},
                    pair=pair,
                    ts=now,
                )
            )
        return audits

    async def _dead_daemons(self, session: AsyncSession, daemons: set[str]) -> set[str]:
        # A live daemon on Postgres holds its life lock (bot/store/instance.py): if this
        # transaction can take it, that daemon's session is gone, so neither its leases
        # nor its heartbeat need to run out first. (A daemon that hangs keeps its
        # session: its leases expire.)
        if not self._postgres:
            return set()
        dead = set()
        for holder in sorted(daemons):
            got = (
                await session.execute(
                    text("SELECT pg_try_advisory_xact_lock(:k)"),
                    {"k": instance_lock_key(holder)},
                )
            ).scalar_one()
            if got:
                dead.add(holder)
        return dead

    async def release_leases(self, instance_id: str) -> list[str]:
        """Give back every lease of this daemon (at a clean stop) and drop its heartbeat."""
        async with self._write() as session:
            now = await self._db_now(session)
            rows = (
                await session.execute(
                    select(PairLeaseRow)
                    .where(PairLeaseRow.holder == instance_id)
                    .order_by(PairLeaseRow.pair)
                    .with_for_update()
                )
            ).scalars()
            released = []
            for row in rows:
                row.holder = None
                row.expires_at = now
                released.append(row.pair)
            await session.execute(
                delete(DaemonInstanceRow).where(DaemonInstanceRow.instance_id == instance_id)
            )
            if released:
                session.add(
                    self._audit_row(
                        "lease.released",
                        f"{instance_id} stopped and gave back {', '.join(released)}",
                        {"holder": instance_id, "pairs": released},
                        ts=now,
                    )
                )
            return released

    async def lease_holders(self) -> dict[str, Lease]:
        """Every pair's current lease that has a holder (expired ones included)."""
        async with self._read() as session:
            rows = (
                await session.execute(select(PairLeaseRow).where(PairLeaseRow.holder.is_not(None)))
            ).scalars()
            return {r.pair: Lease(r.pair, r.holder or "", r.token, r.expires_at) for r in rows}

    def _insert_ignore(self, table: type[PairLeaseRow]) -> Any:
        return self._dialect().insert(table).on_conflict_do_nothing()

    def _upsert_instance(self, instance_id: str, now: datetime) -> Any:
        dialect = self._dialect()
        statement = dialect.insert(DaemonInstanceRow).values(
            instance_id=instance_id, started_at=now, heartbeat_at=now
        )
        return statement.on_conflict_do_update(
            index_elements=[DaemonInstanceRow.instance_id], set_={"heartbeat_at": now}
        )
