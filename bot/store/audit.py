"""Checking the stored audit log against its hash chain, a page at a time."""

from __future__ import annotations

from dataclasses import dataclass

from bot.store.audit_chain import ChainBreak, ChainedEvent, ChainWalk
from bot.store.audit_log import AuditEvent, AuditLog
from bot.store.retention import Retention

VERIFY_PAGE = 500


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What a walk over the whole log found."""

    intact: int  # events that matched, from the first one on
    first_id: int | None
    head_id: int | None
    head_hash: str
    broken: ChainBreak | None
    anchor_problem: str | None  # set when an anchor was given and it does not hold
    resumed: int = 0  # checkpoints of pruned events (db prune) the walk went on from

    @property
    def ok(self) -> bool:
        return self.broken is None and self.anchor_problem is None


def chained(event: AuditEvent) -> ChainedEvent:
    """The fields of a stored event that its hash covers, and its hashes."""
    return ChainedEvent(
        id=event.id,
        ts=event.ts,
        kind=event.kind,
        pair=event.pair,
        summary=event.summary,
        decision_id=event.decision_id,
        data=event.data,
        prev_hash=event.prev_hash,
        hash=event.hash,
    )


async def verify_chain(
    repository: AuditLog, anchor: tuple[int, str] | None = None, page: int = VERIFY_PAGE
) -> ChainReport:
    """Walk every audit event in id order, ``page`` at a time, up to the first mismatch.

    ``anchor`` is an (id, hash) recorded earlier: the event with that id must still
    carry that hash, which a rewrite of the chain from any point before it changes.
    """
    checkpoints = None
    if isinstance(repository, Retention):
        checkpoints = await repository.audit_checkpoints()
    walk = ChainWalk(checkpoints)
    first_id: int | None = None
    anchor_hash: str | None = None
    after = 0
    while events := await repository.audit_events_after(after, page):
        for event in events:
            first_id = event.id if first_id is None else first_id
            if not walk.feed(chained(event)):
                return _report(walk, first_id, None)
            if anchor is not None and event.id == anchor[0]:
                anchor_hash = event.hash
        after = events[-1].id
    problem = None
    if anchor is not None:
        anchor_id, expected = anchor
        if anchor_hash is None and walk.resumed and anchor_id < (walk.head_id or 0):
            problem = (
                f"anchored event #{anchor_id} was pruned (db prune): take a new anchor "
                "from the head this command prints"
            )
        elif anchor_hash is None:
            problem = (
                f"anchored event #{anchor_id} is not in the audit log (head is "
                f"#{walk.head_id}): the log was cut or rewritten since the anchor was taken"
            )
        elif anchor_hash != expected:
            problem = (
                f"event #{anchor_id} now hashes to {anchor_hash[:16]}…, the anchor says "
                f"{expected[:16]}…: the log was rewritten at or before #{anchor_id}"
            )
    return _report(walk, first_id, problem)


def _report(walk: ChainWalk, first_id: int | None, anchor_problem: str | None) -> ChainReport:
    return ChainReport(
        intact=walk.intact,
        first_id=first_id,
        head_id=walk.head_id,
        head_hash=walk.head_hash,
        broken=walk.broken,
        anchor_problem=anchor_problem,
        resumed=walk.resumed,
    )
