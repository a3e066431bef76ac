"""Retention: ``hedgebot db prune`` removes old observations, decisions and the audit
events of holds, in short transactions, while the daemon runs.

Kept forever: orders, fills, funding payments, margin transfers, the decisions and
observations they were made on, each pair's latest decision, and every audit event but
the ``decision`` and ``decision.heartbeat`` events of pruned decisions (so orders,
denials, pauses, targets, starts and stops stay in the log). Where a run of events is
removed, the next kept event's ``prev_hash`` is recorded in ``audit_checkpoints``, from
which ``audit verify`` walks on. A prune is itself audited (``db.pruned``). The report's
stored days (``report_days``, a cache) up to the cutoff's day go with their observations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.database import StoreBase
from bot.store.tables import (
    AuditCheckpointRow,
    AuditEventRow,
    DecisionRow,
    MarginTransferRow,
    ObservationRow,
    OrderRow,
    ReportDayRow,
)

PRUNABLE_KINDS = ("decision", "decision.heartbeat")
BATCH = 1000


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What a prune removed."""

    cutoff: datetime
    decisions: int
    observations: int
    audit_events: int
    checkpoints: int
    vacuumed: bool = False


def _linked() -> Any:
    """Decision ids an order or a margin transfer was made on: never pruned."""
    return select(OrderRow.decision_id).union(select(MarginTransferRow.decision_id))


class Retention(StoreBase):
    """Pruning old history, and the checkpoints ``audit verify`` walks across."""

    async def audit_checkpoints(self) -> dict[int, str]:
        """Per kept event whose predecessors were pruned, the last pruned one's hash."""
        async with self._read() as session:
            rows = await session.execute(
                select(AuditCheckpointRow.event_id, AuditCheckpointRow.prev_hash)
            )
            return {event_id: prev for event_id, prev in rows}

    async def prune(self, cutoff: datetime, batch: int = BATCH, vacuum: bool = True) -> PruneReport:
        """Remove what is older than ``cutoff`` (see the module), ``batch`` rows a commit."""
        decisions = await self._prune_decisions(cutoff, batch)
        async with self._write() as session:
            await session.execute(
                delete(ReportDayRow).where(ReportDayRow.day <= cutoff.astimezone(UTC).date())
            )
        events, checkpoints = await self._prune_audit(cutoff, batch)
        report = PruneReport(cutoff, decisions, decisions, events, checkpoints)
        await self.append_pruned(report)
        if vacuum and not self._postgres:
            await self._vacuum()
            report = PruneReport(cutoff, decisions, decisions, events, checkpoints, True)
        return report

    async def append_pruned(self, report: PruneReport) -> None:
        async with self._write() as session:
            summary = (
                f"pruned history before {report.cutoff.isoformat()}: {report.decisions} "
                f"decisions and observations, {report.audit_events} audit events"
            )
            data = {
                "cutoff": report.cutoff,
                "decisions": report.decisions,
                "observations": report.observations,
                "audit_events": report.audit_events,
                "checkpoints": report.checkpoints,
            }
            session.add(self._audit_row("db.pruned", summary, data))

    async def _prune_decisions(self, cutoff: datetime, batch: int) -> int:
        removed = 0
        latest = select(func.max(DecisionRow.id)).group_by(DecisionRow.pair)
        while True:
            async with self._write() as session:
                ids = list(
                    (
                        await session.execute(
                            select(DecisionRow.id)
                            .where(
                                DecisionRow.created_at < cutoff,
                                DecisionRow.id.not_in(_linked()),
                                DecisionRow.id.not_in(latest),
                            )
                            .limit(batch)
                        )
                    ).scalars()
                )
                if ids:
                    await session.execute(delete(DecisionRow).where(DecisionRow.id.in_(ids)))
                    await session.execute(delete(ObservationRow).where(ObservationRow.id.in_(ids)))
            removed += len(ids)
            if len(ids) < batch:
                return removed

    async def _prune_audit(self, cutoff: datetime, batch: int) -> tuple[int, int]:
        """Walk the log in id order up to the last event before ``cutoff``; remove runs
        of prunable events, each in the commit that records its checkpoint (the kept
        event after it). Times are not in id order (leases are written in the database's
        time), so the walk is bounded by id."""
        async with self._read() as session:
            query = select(func.max(AuditEventRow.id)).where(AuditEventRow.ts < cutoff)
            upper = int((await session.execute(query)).scalar() or 0)
        after, removed, checkpoints = 0, 0, 0
        run: list[int] = []
        while after <= upper:
            async with self._write() as session:
                rows = await self._audit_page(session, after, batch)
                if not rows:
                    break
                for event_id, kind, ts, prev_hash, prunable in rows:
                    after = event_id
                    if event_id <= upper and prunable and ts < cutoff and kind in PRUNABLE_KINDS:
                        run.append(event_id)
                        continue
                    if run:
                        await self._remove_run(session, run, event_id, prev_hash)
                        removed, checkpoints = removed + len(run), checkpoints + 1
                        run = []
                    if event_id > upper:
                        break
        return removed, checkpoints

    async def _audit_page(
        self, session: AsyncSession, after: int, batch: int
    ) -> Sequence[tuple[int, str, datetime, str, bool]]:
        """(id, kind, ts, prev_hash, not an order's) of the next ``batch`` events."""
        rows = (
            await session.execute(
                select(
                    AuditEventRow.id,
                    AuditEventRow.kind,
                    AuditEventRow.ts,
                    AuditEventRow.prev_hash,
                    AuditEventRow.decision_id,
                )
                .where(AuditEventRow.id > after)
                .order_by(AuditEventRow.id)
                .limit(batch)
            )
        ).all()
        wanted = {r.decision_id for r in rows if r.decision_id is not None}
        linked: set[str] = set()
        if wanted:
            query = select(OrderRow.decision_id).where(OrderRow.decision_id.in_(wanted))
            linked = set((await session.execute(query)).scalars())
            query2 = select(MarginTransferRow.decision_id).where(
                MarginTransferRow.decision_id.in_(wanted)
            )
            linked |= set((await session.execute(query2)).scalars())
        return [(r.id, r.kind, r.ts, r.prev_hash, r.decision_id not in linked) for r in rows]

    async def _remove_run(
        self, session: AsyncSession, ids: list[int], kept_id: int, prev_hash: str
    ) -> None:
        """Delete ``ids`` and record the kept event after them (its prev_hash, the hash
        of the last one deleted); a checkpoint already there grows by the run."""
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            await session.execute(delete(AuditEventRow).where(AuditEventRow.id.in_(chunk)))
        dialect = self._dialect()
        now = self._clock.now()
        statement = dialect.insert(AuditCheckpointRow).values(
            event_id=kept_id, prev_hash=prev_hash, removed=len(ids), pruned_at=now
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[AuditCheckpointRow.event_id],
                set_={
                    "removed": AuditCheckpointRow.removed + len(ids),
                    "pruned_at": now,
                },
            )
        )

    async def _vacuum(self) -> None:
        """Give the space back to the file system (SQLite): VACUUM, then truncate the WAL."""
        if self._write_lock is not None:
            async with self._write_lock:
                await self._vacuum_now()

    async def _vacuum_now(self) -> None:
        # On the driver's connection: the engine begins a transaction on every statement
        # (bot/store/engine.py), and VACUUM cannot run inside one.
        async with self._engine.connect() as conn:
            raw: Any = (await conn.get_raw_connection()).driver_connection
            await raw.execute("VACUUM")
            await raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
