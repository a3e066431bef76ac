"""A steady cycle's database work: a few statements, not one read per concern.

Counted through the engine's ``before_cursor_execute`` event on SQLite (BEGIN included),
never timed: holding pairs inside their band do not claim their leases every cycle, read
no unresolved orders or transfers they know are none, and read the run-time targets and
pauses together; a pause or a target set between two cycles still acts on the next one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest_asyncio
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import FakeClock
from bot.exchange.feeds import ManualFeed
from bot.service.daemon import HedgeDaemon
from bot.store.migrate import upgrade
from bot.store.repository import Repository, create_engine
from bot.store.tables import Base
from tests.support.builders import open_daemon, pair, settings

D = Decimal
STEADY_CYCLES = 12
# What a steady 2-pair cycle reaches: a lease claim every third cycle (a quarter of the
# 10 s lease period at a 1 s cycle), otherwise the targets and pauses read (one SELECT of
# both, no BEGIN: one statement is its own snapshot) and the pairs' cycle rows (BEGIN
# IMMEDIATE and one upsert): 3, 9 with the claim (an average of 5); 5 and 11 with a BEGIN
# and two SELECTs, 20 every cycle before.
MAX_STATEMENTS_PER_CYCLE = 5


@pytest_asyncio.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hedgebot.db'}"
    engine = create_engine(url)
    await upgrade(engine, url)
    yield engine
    await engine.dispose()


@contextmanager
def counted(engine: AsyncEngine, full: bool = False) -> Iterator[list[str]]:
    """The statements the engine sends while the block runs (BEGIN included): their
    first word, or ``full`` text on one line."""
    statements: list[str] = []

    def on_execute(*args: Any) -> None:
        words = str(args[2]).split()
        statements.append(" ".join(words) if full else words[0])

    event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", on_execute)


async def steady_daemon(repository: Repository, clock: FakeClock) -> HedgeDaemon:
    """A paper daemon on BTC and ETH at a 1 s cycle, hedged and past its fills' settling."""
    config = settings(
        [pair("BTC"), pair("ETH")], balances={"BTC": "1", "ETH": "10", "USDT": "1000000"}
    ).model_copy(update={"poll_interval_s": 1.0})
    daemon, _venue = await open_daemon(
        config, repository, clock, ManualFeed({"BTC": D(60000), "ETH": D(3000)})
    )
    for cycle in (1, 2):
        report = await daemon.run_cycle(cycle)
        assert not report.errors, report.errors
        clock.advance(1)
    # Past the window in which the orders' fills might not show in the position yet.
    clock.advance(float(config.risk.fill_settle_s + config.risk.order_settle_s))
    assert (await daemon.run_cycle(3)).actions == {"BTC": "none", "ETH": "none"}
    return daemon


async def test_a_steady_two_pair_cycle_runs_a_few_statements(
    sqlite_engine: AsyncEngine, clock: FakeClock
) -> None:
    repository = Repository(sqlite_engine, clock)
    daemon = await steady_daemon(repository, clock)
    per_cycle = []
    for cycle in range(4, 4 + STEADY_CYCLES):
        clock.advance(1)
        with counted(sqlite_engine) as statements:
            report = await daemon.run_cycle(cycle)
        assert report.actions == {"BTC": "none", "ETH": "none"}, report.errors
        per_cycle.append(len(statements))
    assert sum(per_cycle) / STEADY_CYCLES <= MAX_STATEMENTS_PER_CYCLE, per_cycle
    # The leases are still renewed well before they could lapse: every third cycle.
    claims = [n for n in per_cycle if n > min(per_cycle)]
    assert len(claims) == STEADY_CYCLES // 3, per_cycle


async def test_a_pause_and_a_target_set_between_steady_cycles_act_on_the_next_one(
    sqlite_engine: AsyncEngine, clock: FakeClock
) -> None:
    repository = Repository(sqlite_engine, clock)
    daemon = await steady_daemon(repository, clock)
    clock.advance(1)
    assert (await daemon.run_cycle(4)).actions == {"BTC": "none", "ETH": "none"}
    orders_before = len(await repository.orders())

    assert await repository.set_pair_paused("BTC", True, "maintenance")
    await repository.set_pair_target("BTC", D("0.5"), None, "half")
    await repository.set_pair_target("ETH", D("0.5"), None, "half")
    clock.advance(1)
    report = await daemon.run_cycle(5)

    assert report.actions["BTC"] == "denied"
    [denied] = await repository.audit_events(kind="risk.denied")
    assert "paused by the user: maintenance" in denied.summary
    assert report.actions["ETH"] == "order filled"
    orders = await repository.orders()
    assert [o.pair for o in orders[orders_before:]] == ["ETH"]


async def test_a_steady_cycle_builds_no_mapped_row_objects(
    sqlite_engine: AsyncEngine, clock: FakeClock
) -> None:
    """Its reads (targets, pauses, recent fills) and its write (the cycle rows) go through
    Core statements built once: no ORM session loads or flushes a row object."""
    repository = Repository(sqlite_engine, clock)
    daemon = await steady_daemon(repository, clock)
    loaded: list[str] = []

    def on_load(target: Any, _context: Any) -> None:
        loaded.append(type(target).__name__)

    event.listen(Base, "load", on_load, propagate=True)
    try:
        for cycle in range(4, 4 + STEADY_CYCLES):
            clock.advance(1)
            report = await daemon.run_cycle(cycle)
            assert report.actions == {"BTC": "none", "ETH": "none"}, report.errors
        # A stored pause and target (what they already hold): read, still without objects.
        assert await repository.set_pair_paused("BTC", True, "maintenance")
        await repository.set_pair_target("ETH", D("1"), None, "as configured")
        loaded.clear()
        clock.advance(1)
        report = await daemon.run_cycle(4 + STEADY_CYCLES)
        assert report.actions == {"BTC": "none", "ETH": "none"}, report.errors
    finally:
        event.remove(Base, "load", on_load)
    assert loaded == []


def reads(statements: list[str], where: str) -> int:
    return sum(1 for s in statements if s.startswith("SELECT") and where in s)


async def test_after_an_order_or_a_lost_lease_the_next_cycle_reads_and_claims_again(
    sqlite_engine: AsyncEngine, clock: FakeClock
) -> None:
    repository = Repository(sqlite_engine, clock)
    daemon = await steady_daemon(repository, clock)
    await repository.set_pair_target("ETH", D("0.5"), None, "half")
    seen = []
    for cycle in (4, 5, 6):
        clock.advance(1)
        with counted(sqlite_engine, full=True) as statements:
            report = await daemon.run_cycle(cycle)
        seen.append(
            (
                report.actions["ETH"],
                reads(statements, "FROM orders WHERE orders.status IN"),
                statements,
            )
        )
    # The order's cycle stored an intent: the next one reads what is unresolved, once.
    assert [(action, orders) for action, orders, _ in seen] == [
        ("order filled", 0),
        ("none", 1),
        ("none", 0),
    ]
    daemon.pair_state.lost("BTC")
    clock.advance(1)
    with counted(sqlite_engine, full=True) as statements:
        await daemon.run_cycle(7)
    assert reads(statements, "FROM pair_leases") == 1
