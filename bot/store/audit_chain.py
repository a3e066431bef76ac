"""The audit log's hash chain: the canonical form of an event and the walk that checks it.

Each audit event stores ``hash = sha256(canonical(event, prev_hash))`` where ``prev_hash``
is the hash of the event before it (by id), or ``GENESIS_HASH`` for the first one. An
edited, deleted, inserted or reordered row then breaks the chain at that point.

Pure: no I/O, no database, no clock. The migration that chains the rows of an older
database imports this module, so the format below must never change in place: a new
format needs a new ``FORMAT`` tag and a verifier that knows both.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

FORMAT = "hedgebot-audit-v1"
GENESIS_HASH = "0" * 64
# Postgres transaction advisory lock that serializes audit appends across processes.
CHAIN_LOCK_KEY = int.from_bytes(b"hb-audit", "big") & 0x7FFFFFFFFFFFFFFF


def canonical(
    event_id: int,
    ts: datetime,
    kind: str,
    pair: str | None,
    summary: str,
    decision_id: str | None,
    data: Mapping[str, Any],
    prev_hash: str,
) -> bytes:
    """The bytes an event's hash covers: a JSON array, keys sorted, no whitespace."""
    if ts.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    fields = [
        FORMAT,
        event_id,
        ts.astimezone(UTC).isoformat(timespec="microseconds"),
        kind,
        pair,
        summary,
        decision_id,
        data,
        prev_hash,
    ]
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def event_hash(
    event_id: int,
    ts: datetime,
    kind: str,
    pair: str | None,
    summary: str,
    decision_id: str | None,
    data: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """sha256 of the canonical form, as 64 hex digits."""
    payload = canonical(event_id, ts, kind, pair, summary, decision_id, data, prev_hash)
    return hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainedEvent:
    """What the chain check needs of one stored event."""

    id: int
    ts: datetime
    kind: str
    pair: str | None
    summary: str
    decision_id: str | None
    data: Mapping[str, Any]
    prev_hash: str | None
    hash: str | None


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first event that does not match, and why."""

    event_id: int
    kind: str
    ts: datetime
    reason: str

    def describe(self) -> str:
        """One line: the event, then what mismatched."""
        return (
            f"audit chain broken at event #{self.event_id} ({self.kind}, "
            f"{self.ts.astimezone(UTC).isoformat()}): {self.reason}"
        )


class ChainWalk:
    """Checks events fed in id order, batch by batch; stops at the first break.

    ``checkpoints`` (``db prune``): per kept event whose predecessors were removed, the
    hash of the last removed one; the walk goes on from it there (``resumed`` counts)."""

    def __init__(self, checkpoints: Mapping[int, str] | None = None) -> None:
        self.intact = 0
        self.head_id: int | None = None
        self.head_hash = GENESIS_HASH
        self.broken: ChainBreak | None = None
        self.checkpoints = checkpoints or {}
        self.resumed = 0

    def feed(self, event: ChainedEvent) -> bool:
        """Check the next event; False once the chain is broken (stop feeding)."""
        if self.broken is not None:
            return False
        reason = self._mismatch(event)
        if reason is not None:
            self.broken = ChainBreak(event.id, event.kind, event.ts, reason)
            return False
        self.intact += 1
        self.head_id = event.id
        self.head_hash = event.hash or ""
        return True

    def _mismatch(self, event: ChainedEvent) -> str | None:
        if event.hash is None or event.prev_hash is None:
            return "it has no stored hash"
        if event.prev_hash != self.head_hash and self.checkpoints.get(event.id) == event.prev_hash:
            self.resumed += 1
        elif event.prev_hash != self.head_hash:
            if self.head_id is None:
                return (
                    f"its prev_hash {event.prev_hash[:16]}… is not the genesis value: "
                    "events before it were deleted"
                )
            return (
                f"its prev_hash {event.prev_hash[:16]}… is not the hash of event "
                f"#{self.head_id} ({self.head_hash[:16]}…): event #{self.head_id} was "
                "altered, or events between them were deleted, inserted or reordered"
            )
        computed = event_hash(
            event.id,
            event.ts,
            event.kind,
            event.pair,
            event.summary,
            event.decision_id,
            event.data,
            event.prev_hash,
        )
        if computed != event.hash:
            return (
                f"its content (id, ts, kind, pair, summary, decision_id or data) does not "
                f"match its stored hash {event.hash[:16]}… (computed {computed[:16]}…)"
            )
        return None
