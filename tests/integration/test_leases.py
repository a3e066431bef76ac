"""Pair leases in the store: several daemons on one database, one holder per pair."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from bot.domain.models import OrderRequest, Side
from bot.store.instance import single_instance
from bot.store.leases import LeaseLostError
from bot.store.repository import Repository
from tests.conftest import Backend
from tests.integration.test_store import store_decision

PAIRS = ["ADA", "BTC", "ETH", "SOL"]
PERIOD = timedelta(seconds=30)


def request(coid: str) -> OrderRequest:
    return OrderRequest("BTC/USDT:USDT", Side.SELL, Decimal("0.1"), coid)


async def holders(repository: Repository) -> dict[str, str]:
    return {pair: lease.holder for pair, lease in (await repository.lease_holders()).items()}


@contextlib.asynccontextmanager
async def alive(backend: Backend, repository: Repository, *names: str) -> AsyncIterator[None]:
    """Hold the daemons' life locks, as running daemons do (Postgres only)."""
    async with contextlib.AsyncExitStack() as stack:
        if backend.name == "postgres":
            for name in names:
                await stack.enter_async_context(
                    single_instance(repository.engine, backend.url, shared=True, instance_id=name)
                )
        yield


async def test_two_daemons_split_the_pairs_and_never_hold_the_same_one(
    repository: Repository, backend: Backend
) -> None:
    async with alive(backend, repository, "A", "B"):
        await split_between_two(repository)


async def split_between_two(repository: Repository) -> None:
    held_a, _, live = await repository.claim_leases("A", PAIRS, PERIOD)
    assert sorted(held_a) == PAIRS
    assert live == 1
    held_b, _, live = await repository.claim_leases("B", PAIRS, PERIOD)
    assert held_b == {}
    assert live == 2
    held_a, plan, _ = await repository.claim_leases("A", PAIRS, PERIOD)
    assert sorted(held_a) == ["ADA", "BTC"]
    assert plan.give_back == ["ETH", "SOL"]
    held_b, plan, _ = await repository.claim_leases("B", PAIRS, PERIOD)
    assert sorted(held_b) == ["ETH", "SOL"]
    assert [t.token for t in plan.take] == [2, 2]  # A had token 1
    assert await holders(repository) == {"ADA": "A", "BTC": "A", "ETH": "B", "SOL": "B"}
    kinds = [e.kind for e in await repository.audit_events(limit=100)]
    assert kinds.count("lease.acquired") == 6
    assert kinds.count("lease.released") == 2


async def test_a_dead_daemons_pairs_are_taken_over_and_its_old_lease_stores_nothing(
    repository: Repository,
) -> None:
    held_a, _, _ = await repository.claim_leases("A", PAIRS, PERIOD)
    # A dies: nobody renews its leases and its heartbeat goes quiet.
    async with repository.engine.begin() as conn:
        await conn.execute(
            text("UPDATE pair_leases SET expires_at = :t"),
            {"t": datetime(2000, 1, 1, tzinfo=UTC)},
        )
        await conn.execute(
            text("UPDATE daemon_instances SET heartbeat_at = :t"),
            {"t": datetime(2000, 1, 1, tzinfo=UTC)},
        )
    held_b, plan, live = await repository.claim_leases("B", PAIRS, PERIOD)
    assert sorted(held_b) == PAIRS
    assert live == 1
    assert {(t.previous_holder, t.token) for t in plan.take} == {("A", 2)}
    with pytest.raises(LeaseLostError, match="held by B"):
        await repository.insert_order_intent(
            "01DECISION", "BTC", "main", request("hbstale"), lease=held_a["BTC"]
        )
    assert await repository.orders() == []
    # B's own lease is good for it.
    await store_decision(repository, "01DECISION")
    await repository.insert_order_intent(
        "01DECISION", "BTC", "main", request("hbfresh"), lease=held_b["BTC"]
    )
    assert [o.client_order_id for o in await repository.orders()] == ["hbfresh"]


async def test_an_intent_needs_time_left_on_the_lease(repository: Repository) -> None:
    held, _, _ = await repository.claim_leases("A", ["BTC"], timedelta(seconds=5))
    with pytest.raises(LeaseLostError, match="less than 60 s"):
        await repository.insert_order_intent(
            "01DECISION",
            "BTC",
            "main",
            request("hbshort"),
            lease=held["BTC"],
            lease_margin=timedelta(seconds=60),
        )
    assert await repository.orders() == []


async def test_a_clean_stop_gives_every_pair_back_at_once(repository: Repository) -> None:
    await repository.claim_leases("A", PAIRS, PERIOD)
    assert await repository.release_leases("A") == PAIRS
    held_b, plan, live = await repository.claim_leases("B", PAIRS, PERIOD)
    assert sorted(held_b) == PAIRS
    assert live == 1
    assert {t.previous_holder for t in plan.take} == {None}


# SQLite takes one daemon: there is no other daemon's session to outlive.
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_daemon_whose_session_died_is_taken_over_before_its_lease_ends(
    repository: Repository, backend: Backend
) -> None:
    async with alive(backend, repository, "A"):
        await repository.claim_leases("A", PAIRS, PERIOD)
        held_b, _, _ = await repository.claim_leases("B", PAIRS, PERIOD)
        assert held_b == {}  # A is alive and holds every pair for 30 s
    # A's process died: its life lock went with its session, its leases have not ended.
    held_b, plan, live = await repository.claim_leases("B", PAIRS, PERIOD)
    assert sorted(held_b) == PAIRS
    assert live == 1
    assert {t.previous_holder for t in plan.take} == {"A"}
