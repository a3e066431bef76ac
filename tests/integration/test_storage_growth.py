"""Storage grows with what happens (issue 16 item 1): a hold whose inputs have not changed
is stored as a heartbeat at most every ``storage.record_every_s``, not every cycle; every
order still links to the decision and the observation it was made on."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select

from bot.clock import FakeClock
from bot.exchange.feeds import ManualFeed
from bot.service.daemon import HedgeDaemon
from bot.service.describe import pair_statuses
from bot.store.repository import Repository
from bot.store.tables import DecisionRow, ObservationRow, OrderRow
from tests.support.builders import open_daemon, pair, settings

D = Decimal


async def run(daemon: HedgeDaemon, clock: FakeClock, cycles: range, step_s: float = 10) -> None:
    for cycle in cycles:
        report = await daemon.run_cycle(cycle)
        assert not report.errors, report.errors
        clock.advance(step_s)


async def count(repository: Repository, column: object) -> int:
    async with repository._read() as session:
        return int((await session.execute(select(func.count(column)))).scalar() or 0)


async def test_a_hold_that_changes_nothing_is_stored_as_a_heartbeat_not_every_cycle(
    repository: Repository, clock: FakeClock
) -> None:
    # Hedged from the start (1 BTC held, target 1): every cycle holds.
    config = settings([pair("BTC")], balances={"BTC": "1", "USDT": "100000"})
    feed = ManualFeed({"BTC": D(60000)})
    daemon, _ = await open_daemon(config, repository, clock, feed)
    await run(daemon, clock, range(1, 4))  # the hedge is built: orders
    orders = len(await repository.orders())
    before = await count(repository, DecisionRow.id)
    await run(daemon, clock, range(4, 184))  # 180 cycles of 10 s: half an hour of holds
    # Half an hour of holds at a 300 s heartbeat: at most 7 rows, not 180.
    holds = await count(repository, DecisionRow.id) - before
    assert 1 <= holds <= 7, holds
    assert await count(repository, ObservationRow.id) == before + holds
    events = await repository.audit_events(pair="BTC", kind="decision")
    assert len([e for e in events if e.data.get("action") == "none"]) <= 7
    assert len(await repository.orders()) == orders


async def test_a_material_change_is_stored_at_once(
    repository: Repository, clock: FakeClock
) -> None:
    config = settings([pair("BTC")], balances={"BTC": "1", "USDT": "100000"})
    feed = ManualFeed({"BTC": D(60000)})
    daemon, _ = await open_daemon(config, repository, clock, feed)
    await run(daemon, clock, range(1, 10))
    before = await count(repository, DecisionRow.id)
    feed.set_price("BTC", D(63000))  # 5 %: past the 1 % price step
    await run(daemon, clock, range(10, 11))
    assert await count(repository, DecisionRow.id) == before + 1
    await run(daemon, clock, range(11, 15))  # unchanged again: nothing new
    assert await count(repository, DecisionRow.id) == before + 1


async def test_every_order_links_to_its_decision_and_observation(
    repository: Repository, clock: FakeClock
) -> None:
    # Hedges built in parts (orders capped), then holds, then new targets: orders among holds.
    capped = {"max_order_notional": "20000"}
    config = settings(
        [pair("BTC", **capped), pair("ETH", target="0.5", **capped)],
        balances={"BTC": "1", "ETH": "10", "USDT": "100000"},
    )
    feed = ManualFeed({"BTC": D(60000), "ETH": D(3000)})
    daemon, _ = await open_daemon(config, repository, clock, feed)
    await run(daemon, clock, range(1, 40))
    await repository.set_pair_target("BTC", D("0.5"), None, "test")
    await run(daemon, clock, range(40, 80))
    await repository.set_pair_target("ETH", D("1"), None, "test")
    await run(daemon, clock, range(80, 120))
    async with repository._read() as session:
        rows = (
            await session.execute(
                select(OrderRow.id, DecisionRow.id, ObservationRow.id)
                .outerjoin(DecisionRow, DecisionRow.id == OrderRow.decision_id)
                .outerjoin(ObservationRow, ObservationRow.id == DecisionRow.observation_id)
            )
        ).all()
        decisions = (await session.execute(select(func.count(DecisionRow.id)))).scalar()
    assert len(rows) >= 6
    assert all(decision and observation for _, decision, observation in rows), rows
    assert decisions is not None
    assert decisions < 2 * 119


async def test_status_tells_the_last_cycle_not_the_last_stored_hold(
    repository: Repository, clock: FakeClock
) -> None:
    config = settings([pair("BTC")], balances={"BTC": "1", "USDT": "100000"})
    daemon, _ = await open_daemon(config, repository, clock, ManualFeed({"BTC": D(60000)}))
    await run(daemon, clock, range(1, 20))  # the last cycle at 180 s; holds stored at 10-20 s
    last_cycle = clock.now() - timedelta(seconds=10)
    [status] = await pair_statuses(repository)
    assert status.decided_at == last_cycle
    assert status.ratio == 1
    assert status.health == "ok"
    stored = await repository.audit_events(pair="BTC", kind="decision")
    assert stored[-1].ts < last_cycle - timedelta(seconds=60)
    cycles = await repository.pair_cycles()
    assert (cycles["BTC"].cycle, cycles["BTC"].recorded) == (19, False)


async def test_a_denial_whose_numbers_move_is_stored_as_a_heartbeat_not_every_cycle(
    repository: Repository, clock: FakeClock
) -> None:
    # Unhedged and capped: every cycle the hedge order is denied, its reason naming the
    # notional it would reach — a number that moves with the price each cycle, far less
    # than the 1 % price step. The same denial, its numbers aside, is no change.
    config = settings(
        [pair("BTC", max_position_notional="30000")], balances={"BTC": "1", "USDT": "100000"}
    )
    feed = ManualFeed({"BTC": D(60000)})
    daemon, _ = await open_daemon(config, repository, clock, feed)
    await run(daemon, clock, range(1, 3))
    before = await count(repository, DecisionRow.id)
    for cycle in range(3, 183):  # 180 cycles of 10 s: half an hour, the price wiggling
        feed.set_price("BTC", D(60000) + cycle % 7)
        await run(daemon, clock, range(cycle, cycle + 1))
    denied = await repository.audit_events(pair="BTC", kind="risk.denied")
    assert "max_position_notional" in denied[-1].summary, denied[-1].summary
    stored = await count(repository, DecisionRow.id) - before
    assert 1 <= stored <= 7, stored
