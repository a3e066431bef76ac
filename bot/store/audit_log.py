"""The audit log: appending events on their own, and reading them back.

Events written together with a state change are added by that aggregate's write
(``StoreBase._audit_row``) and chained in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from bot.store.database import StoreBase
from bot.store.tables import AuditEventRow


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    ts: datetime
    pair: str | None
    kind: str
    summary: str
    decision_id: str | None
    data: dict[str, Any]
    # The hash chain as stored (bot/store/audit_chain.py); None only outside the store.
    prev_hash: str | None = None
    hash: str | None = None


def event_from_row(row: AuditEventRow) -> AuditEvent:
    return AuditEvent(
        id=row.id,
        ts=row.ts,
        pair=row.pair,
        kind=row.kind,
        summary=row.summary,
        decision_id=row.decision_id,
        data=row.data,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _audit_filter(
    query: Select[AuditEventRow],
    after_id: int,
    pair: str | None,
    kind: str | None,
    since: datetime | None,
) -> Select[AuditEventRow]:
    query = query.where(AuditEventRow.id > after_id)
    if pair is not None:
        query = query.where(AuditEventRow.pair == pair)
    if kind is not None:
        query = query.where(
            (AuditEventRow.kind == kind) | AuditEventRow.kind.startswith(f"{kind}.")
        )
    if since is not None:
        query = query.where(AuditEventRow.ts >= since)
    return query


class AuditLog(StoreBase):
    """The audit events: append one, read them by filter, by page or after an id."""

    async def append_audit(
        self,
        kind: str,
        summary: str,
        data: Mapping[str, Any] | None = None,
        pair: str | None = None,
        decision_id: str | None = None,
    ) -> int:
        """Append one audit event on its own; returns its id."""
        async with self._write() as session:
            row = self._audit_row(kind, summary, data, pair, decision_id)
            session.add(row)
            await self._chain(session)
            return row.id

    async def audit_events(
        self,
        pair: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
        after_id: int = 0,
    ) -> list[AuditEvent]:
        """Audit events oldest first; ``kind`` matches exactly or as a prefix ('order')."""
        query = _audit_filter(select(AuditEventRow), after_id, pair, kind, since)
        if limit is not None:
            # The newest N, shown oldest first.
            inner = query.order_by(AuditEventRow.id.desc()).limit(limit).subquery()
            query = select(AuditEventRow).join(inner, AuditEventRow.id == inner.c.id)
        return await self._events(query.order_by(AuditEventRow.id))

    async def audit_page(
        self,
        after_id: int,
        limit: int,
        pair: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
    ) -> list[AuditEvent]:
        """The first ``limit`` events after ``after_id`` that match, oldest first: one
        page of a stream (export, follow) that never holds the whole log in memory."""
        query = _audit_filter(select(AuditEventRow), after_id, pair, kind, since)
        return await self._events(query.order_by(AuditEventRow.id).limit(limit))

    async def audit_events_after(self, after_id: int, limit: int = 500) -> list[AuditEvent]:
        """Up to ``limit`` audit events with id > ``after_id``, in id order."""
        return await self.audit_page(after_id, limit)

    async def _events(self, query: Select[AuditEventRow]) -> list[AuditEvent]:
        async with self._read() as session:
            return [event_from_row(row) for row in (await session.execute(query)).scalars()]
