"""The audit hash chain's canonical form and walk, without a database."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.store.audit_chain import GENESIS_HASH, ChainedEvent, ChainWalk, event_hash

T0 = datetime(2026, 11, 22, 3, 3, 57, 123456, tzinfo=UTC)


def chain(count: int) -> list[ChainedEvent]:
    events, prev = [], GENESIS_HASH
    for n in range(1, count + 1):
        ts = T0 + timedelta(seconds=n)
        data = {"n": str(n), "nested": {"b": 1, "a": [1, "x"]}}
        digest = event_hash(n, ts, "decision", "BTC", f"event {n}", f"D{n}", data, prev)
        events.append(
            ChainedEvent(n, ts, "decision", "BTC", f"event {n}", f"D{n}", data, prev, digest)
        )
        prev = digest
    return events


def walk(events: list[ChainedEvent]) -> ChainWalk:
    w = ChainWalk()
    for event in events:
        if not w.feed(event):
            break
    return w


def test_the_hash_is_sha256_of_a_sorted_key_json_array_of_every_field() -> None:
    data = {"z": "1.50", "a": None}
    expected = hashlib.sha256(
        b'["hedgebot-audit-v1",7,"2026-11-22T03:03:57.123456+00:00","order.filled","BTC",'
        b'"order x filled","01ABC",{"a":null,"z":"1.50"},"' + GENESIS_HASH.encode() + b'"]'
    ).hexdigest()
    assert (
        event_hash(7, T0, "order.filled", "BTC", "order x filled", "01ABC", data, GENESIS_HASH)
        == expected
    )


def test_the_same_instant_in_another_zone_hashes_the_same_and_naive_times_are_refused() -> None:
    other_zone = T0.astimezone(timezone(timedelta(hours=2)))
    args = ("daemon.start", None, "s", None, {}, GENESIS_HASH)
    assert event_hash(1, other_zone, *args) == event_hash(1, T0, *args)
    with pytest.raises(ValueError, match="timezone-aware"):
        event_hash(1, T0.replace(tzinfo=None), *args)


def test_an_untouched_chain_is_intact_and_its_head_is_the_last_hash() -> None:
    events = chain(5)
    w = walk(events)
    assert w.broken is None
    assert (w.intact, w.head_id, w.head_hash) == (5, 5, events[-1].hash)


@pytest.mark.parametrize(
    "change",
    [
        {"summary": "event 3 (edited)"},
        {"data": {"n": "3", "nested": {"b": 2, "a": [1, "x"]}}},
        {"kind": "risk.denied"},
        {"pair": "ETH"},
        {"decision_id": None},
        {"ts": T0},
        {"id": 33},
    ],
)
def test_an_edited_field_breaks_the_chain_at_that_event(change: dict[str, object]) -> None:
    events = chain(5)
    events[2] = dataclasses.replace(events[2], **change)  # type: ignore[arg-type]
    w = walk(events)
    assert w.broken is not None
    assert w.broken.event_id == events[2].id
    assert "does not match its stored hash" in w.broken.reason
    assert w.intact == 2


def test_a_deleted_event_breaks_the_chain_at_the_one_after_it() -> None:
    events = chain(5)
    del events[2]
    w = walk(events)
    assert w.broken is not None
    assert w.broken.event_id == 4
    assert "is not the hash of event #2" in w.broken.reason


def test_deleting_the_first_events_is_seen_at_the_new_first_one() -> None:
    w = walk(chain(5)[2:])
    assert w.broken is not None
    assert w.broken.event_id == 3
    assert "genesis" in w.broken.reason


def test_an_edited_event_rehashed_in_place_breaks_the_chain_at_the_next_one() -> None:
    events = chain(5)
    forged = dataclasses.replace(events[1], summary="nothing happened")
    forged = dataclasses.replace(
        forged,
        hash=event_hash(
            forged.id,
            forged.ts,
            forged.kind,
            forged.pair,
            forged.summary,
            forged.decision_id,
            forged.data,
            forged.prev_hash or "",
        ),
    )
    events[1] = forged
    w = walk(events)
    assert w.broken is not None
    assert w.broken.event_id == 3
    assert w.broken.describe().startswith("audit chain broken at event #3 (decision, 2026-11-22T")


def test_swapped_events_break_the_chain() -> None:
    events = chain(5)
    events[1], events[2] = events[2], events[1]
    w = walk(events)
    assert w.broken is not None
    assert w.broken.event_id == 3


def walks(events: list[ChainedEvent], checkpoints: dict[int, str]) -> bool:
    w = ChainWalk(checkpoints)
    return all(w.feed(event) for event in events)


def test_a_pruned_run_verifies_from_its_checkpoint_and_only_from_it() -> None:
    events = chain(6)
    hashes = [e.hash or "" for e in events]
    kept = [events[0], events[3], events[4], events[5]]  # db prune removed #2 and #3
    assert walk(kept).broken is not None
    checked = ChainWalk({4: hashes[2]})
    assert all(checked.feed(event) for event in kept)
    assert (checked.intact, checked.resumed, checked.head_id) == (4, 1, 6)
    # A checkpoint does not excuse an edited event, nor a gap it does not name.
    edited = [*kept[:2], dataclasses.replace(kept[2], summary="changed"), kept[3]]
    assert not walks(edited, {4: hashes[2]})
    assert not walks(kept, {5: hashes[2]})
    assert not walks(kept, {4: hashes[1]})
    # The first events pruned: the first kept one starts from its checkpoint.
    assert walks(events[2:], {3: hashes[1]})
