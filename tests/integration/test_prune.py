"""``db prune`` (issue 16 item 2): old observations, decisions and holds' audit events go;
orders, fills, funding, transfers and the rest of the audit log stay; the chain still
verifies from the recorded checkpoints; the prune is audited; SQLite gives space back."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from bot.clock import FakeClock
from bot.config import StorageConfig
from bot.exchange.feeds import ManualFeed
from bot.store.audit import verify_chain
from bot.store.engine import create_engine
from bot.store.migrate import upgrade
from bot.store.repository import Repository
from bot.store.tables import DecisionRow, FillRow, FundingPaymentRow, ObservationRow
from tests.integration.test_storage_growth import count
from tests.support.builders import open_daemon, pair, settings

D = Decimal


async def history(repository: Repository, clock: FakeClock, cycles: int = 150) -> None:
    """Hedges built in parts, then holds stored every cycle (record_every_s 0)."""
    config = settings(
        [pair("BTC", max_order_notional="20000"), pair("ETH", target="0.5")],
        balances={"BTC": "1", "ETH": "10", "USDT": "100000"},
    ).model_copy(update={"storage": StorageConfig(record_every_s=0)})
    feed = ManualFeed({"BTC": D(60000), "ETH": D(3000)})
    daemon, _ = await open_daemon(config, repository, clock, feed)
    for cycle in range(1, cycles + 1):
        report = await daemon.run_cycle(cycle)
        assert not report.errors, report.errors
        clock.advance(10)
    await repository.append_audit("pair.paused", "paused by a test", pair="BTC")
    clock.advance(86400)


async def test_prune_keeps_orders_and_the_audit_chain_verifies_after(
    repository: Repository, clock: FakeClock
) -> None:
    await history(repository, clock)
    orders = await repository.orders()
    fills = await count(repository, FillRow.id)
    events = await repository.audit_events()
    assert len(orders) >= 3
    assert await count(repository, DecisionRow.id) == 300
    report = await repository.prune(clock.now() - timedelta(hours=1))
    assert report.decisions == 300 - len(orders) - 2  # orders' and each pair's latest kept
    assert await repository.orders() == orders
    assert await count(repository, FillRow.id) == fills > 0
    assert await count(repository, ObservationRow.id) == len(orders) + 2
    left = await repository.audit_events()
    kept = {e.kind for e in left}
    assert {"order.intent", "pair.paused", "daemon.start", "db.pruned"} <= kept
    holds = [e for e in left if e.kind == "decision" and e.data.get("action") == "none"]
    assert len(holds) <= 2
    assert len(left) == len(events) - report.audit_events + 1
    chain = await verify_chain(repository)
    assert chain.ok, chain.broken
    assert chain.resumed == report.checkpoints >= 1
    [pruned] = await repository.audit_events(kind="db.pruned")
    assert pruned.data["decisions"] == report.decisions
    # A second prune finds nothing more, and the chain still verifies.
    again = await repository.prune(clock.now() - timedelta(hours=1))
    assert (again.decisions, again.audit_events) == (0, 0)
    assert (await verify_chain(repository)).ok


async def test_prune_keeps_funding_and_status(repository: Repository, clock: FakeClock) -> None:
    await history(repository, clock, cycles=20)
    async with repository._write() as session:
        session.add(
            FundingPaymentRow(
                pair="BTC",
                venue="paper",
                symbol="BTC/USDT:USDT",
                amount=D("1.5"),
                asset="USDT",
                paid_at=clock.now() - timedelta(days=30),
            )
        )
    before = await repository.pair_status()
    await repository.prune(clock.now())
    assert await count(repository, FundingPaymentRow.id) == 1
    after = await repository.pair_status()
    assert [(s.pair, s.ratio, s.decided_at) for s in after] == [
        (s.pair, s.ratio, s.decided_at) for s in before
    ]


async def test_prune_gives_sqlite_space_back(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "hb.db"
    url = f"sqlite+aiosqlite:///{path}"
    engine = create_engine(url)
    await upgrade(engine, url)
    try:
        repository = Repository(engine, clock)
        await history(repository, clock, cycles=120)
        size = path.stat().st_size + Path(f"{path}-wal").stat().st_size  # noqa: ASYNC240
        report = await repository.prune(clock.now())
        assert report.vacuumed
        assert path.stat().st_size < size / 2, (path.stat().st_size, size)
        assert (await verify_chain(repository)).ok
    finally:
        await engine.dispose()


async def test_retention_days_makes_the_daemon_prune_once_a_day(
    repository: Repository, clock: FakeClock
) -> None:
    config = settings([pair("BTC")], balances={"BTC": "1", "USDT": "100000"})
    config = config.model_copy(
        update={"storage": StorageConfig(record_every_s=0, retention_days=0.001)}
    )
    daemon, _ = await open_daemon(config, repository, clock, ManualFeed({"BTC": D(60000)}))
    for cycle in range(1, 30):
        assert not (await daemon.run_cycle(cycle)).errors
        clock.advance(10)
    [pruned] = await repository.audit_events(kind="db.pruned")  # once a day: once
    assert pruned.data["decisions"] == 0  # the first cycle: nothing old yet
    assert (await verify_chain(repository)).ok


async def test_a_prune_while_the_daemon_runs_keeps_the_chain_whole(
    repository: Repository, clock: FakeClock
) -> None:
    config = settings([pair("BTC"), pair("ETH", target="0.5")])
    config = config.model_copy(update={"storage": StorageConfig(record_every_s=0)})
    feed = ManualFeed({"BTC": D(60000), "ETH": D(3000)})
    daemon, _ = await open_daemon(config, repository, clock, feed)

    async def cycles(first: int) -> None:
        for cycle in range(first, first + 40):
            assert not (await daemon.run_cycle(cycle)).errors
            clock.advance(10)

    await cycles(1)
    cutoff = clock.now() - timedelta(seconds=100)
    _, report = await asyncio.gather(cycles(41), repository.prune(cutoff, batch=7))
    assert report.decisions > 0
    chain = await verify_chain(repository)
    assert chain.ok, chain.broken
