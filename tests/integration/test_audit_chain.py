"""The audit hash chain in the database: every write path chains, tampering is caught."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

from alembic import command
from sqlalchemy import Connection, delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import FakeClock
from bot.domain.models import FundingPayment, OrderResult, OrderStatus, Side
from bot.store.audit import verify_chain
from bot.store.audit_chain import event_hash
from bot.store.migrate import alembic_config, upgrade
from bot.store.repository import Repository, create_engine
from bot.store.tables import AuditEventRow
from tests.conftest import Backend
from tests.integration.test_store import request, store_decision

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def write_through_every_path(repository: Repository, clock: FakeClock) -> None:
    """One audit event from each place the repository writes them."""
    await repository.append_audit("daemon.start", "start", {"pairs": ["BTC"]})
    await store_decision(repository, "01DEC")  # record_decisions
    await repository.insert_order_intent("01DEC", "BTC", "paper", request("hb01"))
    clock.advance(1)
    result = OrderResult(
        "hb01", "x1", "BTC/USDT:USDT", Side.SELL, OrderStatus.FILLED,
        Decimal("0.123"), Decimal("0.123"), Decimal(60000), Decimal("3.69"), "USDT",
    )  # fmt: skip
    await repository.record_order_result("BTC", "01DEC", result)
    await store_decision(repository, "02DEC")
    await repository.insert_order_intent("02DEC", "BTC", "paper", request("hb02"))
    await repository.mark_order("hb02", OrderStatus.REJECTED, "never sent", "BTC", "02DEC")
    payment = FundingPayment(
        "BTC/USDT:USDT", Decimal("0.6"), "USDT", Decimal("0.0001"), Decimal(-1), Decimal(60000), T0
    )
    await repository.record_funding("BTC", "paper", payment)
    await repository.append_audit("daemon.stop", "stop", {"reason": "test"})


async def test_every_write_path_extends_one_intact_chain(
    repository: Repository, clock: FakeClock
) -> None:
    await write_through_every_path(repository, clock)
    events = await repository.audit_events()
    assert [e.kind for e in events] == [
        "daemon.start",
        "decision",
        "order.intent",
        "order.filled",
        "decision",
        "order.intent",
        "order.rejected",
        "funding",
        "daemon.stop",
    ]
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    report = await verify_chain(repository, page=4)  # pages split the walk
    assert report.ok
    assert (report.intact, report.first_id, report.head_id) == (9, events[0].id, events[-1].id)
    assert report.head_hash == events[-1].hash


async def tamper(engine: AsyncEngine, statement: object) -> None:
    async with engine.begin() as conn:
        await conn.execute(statement)  # type: ignore[call-overload]


async def test_a_summary_edited_in_the_database_is_named_by_verify(
    repository: Repository, clock: FakeClock, engine: AsyncEngine
) -> None:
    await write_through_every_path(repository, clock)
    target = (await repository.audit_events(kind="order.filled"))[0]
    await tamper(
        engine,
        update(AuditEventRow)
        .where(AuditEventRow.id == target.id)
        .values(summary="order hb01 canceled"),
    )
    report = await verify_chain(repository)
    assert report.broken is not None
    assert (report.broken.event_id, report.broken.kind) == (target.id, "order.filled")
    assert "does not match its stored hash" in report.broken.reason
    assert report.intact == 3


async def test_edited_data_in_the_database_is_named_by_verify(
    repository: Repository, clock: FakeClock, engine: AsyncEngine
) -> None:
    await write_through_every_path(repository, clock)
    target = (await repository.audit_events(kind="funding"))[0]
    await tamper(
        engine,
        update(AuditEventRow)
        .where(AuditEventRow.id == target.id)
        .values(data={**target.data, "amount": "6000"}),
    )
    report = await verify_chain(repository)
    assert report.broken is not None
    assert report.broken.event_id == target.id
    assert report.broken.kind == "funding"


async def test_a_deleted_row_is_caught_at_the_event_after_it(
    repository: Repository, clock: FakeClock, engine: AsyncEngine
) -> None:
    await write_through_every_path(repository, clock)
    events = await repository.audit_events()
    await tamper(engine, delete(AuditEventRow).where(AuditEventRow.id == events[3].id))
    report = await verify_chain(repository)
    assert report.broken is not None
    assert report.broken.event_id == events[4].id
    assert f"not the hash of event #{events[2].id}" in report.broken.reason


async def test_a_row_moved_to_the_end_with_a_valid_hash_is_caught_where_it_left(
    repository: Repository, clock: FakeClock, engine: AsyncEngine
) -> None:
    await write_through_every_path(repository, clock)
    events = await repository.audit_events()
    moved, last = events[2], events[-1]
    new_id = last.id + 1
    assert last.hash is not None
    forged = event_hash(
        new_id, moved.ts, moved.kind, moved.pair, moved.summary, moved.decision_id,
        moved.data, last.hash,
    )  # fmt: skip
    await tamper(engine, delete(AuditEventRow).where(AuditEventRow.id == moved.id))
    await tamper(
        engine,
        insert(AuditEventRow).values(
            id=new_id, ts=moved.ts, pair=moved.pair, kind=moved.kind, summary=moved.summary,
            decision_id=moved.decision_id, data=moved.data, prev_hash=last.hash, hash=forged,
        ),
    )  # fmt: skip
    report = await verify_chain(repository)
    assert report.broken is not None
    assert report.broken.event_id == events[3].id


async def test_an_anchor_catches_a_chain_rewritten_from_a_point(
    repository: Repository, clock: FakeClock, engine: AsyncEngine
) -> None:
    await write_through_every_path(repository, clock)
    events = await repository.audit_events()
    anchor = (events[5].id, events[5].hash or "")
    assert (await verify_chain(repository, anchor)).ok
    # Rewrite every hash from event 4 on, consistently: only the anchor notices.
    prev = events[3].prev_hash or ""
    for event in events[3:]:
        summary = "rewritten" if event.id == events[3].id else event.summary
        digest = event_hash(
            event.id, event.ts, event.kind, event.pair, summary, event.decision_id,
            event.data, prev,
        )  # fmt: skip
        await tamper(
            engine,
            update(AuditEventRow)
            .where(AuditEventRow.id == event.id)
            .values(summary=summary, prev_hash=prev, hash=digest),
        )
        prev = digest
    rewritten = await verify_chain(repository, anchor)
    assert rewritten.broken is None
    assert rewritten.anchor_problem is not None
    assert f"rewritten at or before #{events[5].id}" in rewritten.anchor_problem
    missing = await verify_chain(repository, (events[-1].id + 5, anchor[1]))
    assert missing.anchor_problem is not None
    assert "is not in the audit log" in missing.anchor_problem


async def test_concurrent_appends_from_two_processes_keep_one_chain(
    backend: Backend, engine: AsyncEngine, clock: FakeClock
) -> None:
    # Two engines stand for two processes: two daemons sharing a Postgres database, or
    # the daemon and a `hedgebot pause` / `set-target` beside it on SQLite.
    second = create_engine(backend.url, schema=backend.schema)
    first = Repository(engine, clock)
    writers = [first, Repository(second, clock)]
    try:
        await asyncio.gather(
            *(
                writers[n % 2].append_audit("pair.error", f"event {n}", {"n": n}, pair="BTC")
                for n in range(60)
            )
        )
    finally:
        await second.dispose()
    report = await verify_chain(writers[0], page=7)
    assert report.ok, report.broken
    assert report.intact == 60
    ids = [e.id for e in await writers[0].audit_events()]
    assert ids == sorted(ids)


def _upgrade_to(connection: Connection, url: str, revision: str) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def test_a_database_migrated_from_0001_has_its_existing_rows_chained(
    backend: Backend, clock: FakeClock
) -> None:
    engine = create_engine(backend.url, schema=backend.schema)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to, backend.url, "0001")
            for n in range(1, 8):
                await conn.execute(
                    text(
                        "INSERT INTO audit_events (ts, pair, kind, summary, decision_id, data) "
                        "VALUES (:ts, :pair, 'decision', :summary, NULL, :data)"
                    ),
                    {
                        "ts": T0.replace(second=n)
                        if backend.name == "postgres"
                        else T0.replace(second=n, tzinfo=None),
                        "pair": "BTC" if n % 2 else None,
                        "summary": f"old event {n} — naïve",
                        "data": '{"b": "1.50", "a": [1, 2.5, null, true]}',
                    },
                )
        await upgrade(engine, backend.url)
        repository = Repository(engine, clock)
        report = await verify_chain(repository, page=3)
        assert report.ok, report.broken
        assert report.intact == 7
        # New events continue the migrated chain.
        await repository.append_audit("daemon.start", "new start")
        after = await verify_chain(repository)
        assert after.ok
        assert after.intact == 8
        async with engine.connect() as conn:
            hashes = (await conn.execute(select(AuditEventRow.hash))).scalars().all()
        assert len(set(hashes)) == 8
    finally:
        await engine.dispose()
