"""The store: migrations, exact decimals, order intents, fills and the audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import FakeClock
from bot.domain.models import (
    Decision,
    Fill,
    FundingPayment,
    Observation,
    OrderRequest,
    OrderResult,
    OrderStatus,
    Side,
)
from bot.domain.paper_account import PaperAccountState, PaperPosition
from bot.service.describe import pair_statuses
from bot.store.migrate import SchemaState, schema_state
from bot.store.repository import DecisionRecord, Repository, create_engine
from tests.conftest import Backend

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def observation(spot: str = "1", perp: str = "0", price: str = "60000.123456789") -> Observation:
    return Observation(
        pair="BTC",
        spot_symbol="BTC/USDT",
        perp_symbol="BTC/USDT:USDT",
        spot_qty=Decimal(spot),
        perp_qty=Decimal(perp),
        price=Decimal(price),
        bid=Decimal(price),
        ask=Decimal(price),
        funding_rate=Decimal("0.0001"),
        observed_at=T0,
    )


async def store_decision(repository: Repository, decision_id: str) -> None:
    decision = Decision(
        pair="BTC",
        target_ratio=Decimal(1),
        ratio=Decimal(0),
        drift_qty=Decimal(1),
        band=Decimal("0.05"),
        action="order",
        reason="ratio 0 < target 1 - band 0.05: sell 1",
    )
    await repository.record_decision(
        DecisionRecord(
            decision_id,
            observation(),
            1,
            "paper",
            decision,
            "order",
            "approved",
            {"k": Decimal("1.5")},
            "s",
        )
    )


def request(coid: str = "hb01") -> OrderRequest:
    return OrderRequest(
        symbol="BTC/USDT:USDT", side=Side.SELL, amount=Decimal("0.123"), client_order_id=coid
    )


async def test_migrations_bring_a_new_database_to_current(engine: AsyncEngine) -> None:
    assert await schema_state(engine) is SchemaState.CURRENT


async def test_new_database_reports_missing_schema(backend: Backend) -> None:
    engine = create_engine(backend.url, schema=backend.schema)
    try:
        assert await schema_state(engine) is SchemaState.MISSING
    finally:
        await engine.dispose()


async def test_unknown_revision_is_reported_not_guessed(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    assert await schema_state(engine) is SchemaState.UNKNOWN


async def test_money_round_trips_exactly(repository: Repository) -> None:
    await store_decision(repository, "01DEC")
    status = await repository.pair_status()
    assert status[0].price == Decimal("60000.123456789")
    assert status[0].spot_qty == Decimal(1)


async def test_intent_is_stored_pending_before_any_answer(repository: Repository) -> None:
    await store_decision(repository, "01DEC")
    await repository.insert_order_intent("01DEC", "BTC", "paper", request())
    [order] = await repository.unresolved_orders("BTC")
    assert order.status == "pending"
    assert order.amount == Decimal("0.123")
    kinds = [e.kind for e in await repository.audit_events(pair="BTC")]
    assert kinds == ["decision", "order.intent"]


async def test_second_intent_with_the_same_client_id_is_refused(repository: Repository) -> None:
    await store_decision(repository, "01DEC")
    await store_decision(repository, "02DEC")
    await repository.insert_order_intent("01DEC", "BTC", "paper", request("hbX"))
    with pytest.raises(IntegrityError):
        await repository.insert_order_intent("02DEC", "BTC", "paper", request("hbX"))


async def test_result_with_fills_is_stored_once_per_trade(
    repository: Repository, clock: FakeClock
) -> None:
    await store_decision(repository, "01DEC")
    await repository.insert_order_intent("01DEC", "BTC", "paper", request())
    fill = Fill(
        "t1",
        "BTC/USDT:USDT",
        Side.SELL,
        Decimal("0.123"),
        Decimal(60000),
        Decimal("3.69"),
        "USDT",
        T0,
    )
    result = OrderResult(
        "hb01",
        "x1",
        "BTC/USDT:USDT",
        Side.SELL,
        OrderStatus.FILLED,
        Decimal("0.123"),
        Decimal("0.123"),
        Decimal(60000),
        Decimal("3.69"),
        "USDT",
        (fill,),
    )
    await repository.record_order_result("BTC", "01DEC", result)
    await repository.record_order_result("BTC", "01DEC", result)
    async with repository.engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM fills"))).scalar()
    assert count == 1
    assert await repository.unresolved_orders() == []
    [status] = await pair_statuses(repository)
    assert status.last_action.startswith("sell 0.123 BTC/USDT:USDT filled")


async def test_funding_payment_is_recorded_once(repository: Repository) -> None:
    payment = FundingPayment(
        "BTC/USDT:USDT", Decimal("0.6"), "USDT", Decimal("0.0001"), Decimal(-1), Decimal(60000), T0
    )
    assert await repository.record_funding("BTC", "paper", payment) is True
    assert await repository.record_funding("BTC", "paper", payment) is False
    assert await repository.funding_total("BTC") == Decimal("0.6")


async def test_audit_filters_by_pair_kind_prefix_since_and_limit(
    repository: Repository, clock: FakeClock
) -> None:
    await repository.append_audit("daemon.start", "start")
    clock.advance(60)
    await repository.append_audit("order.intent", "a", pair="BTC")
    await repository.append_audit("order.filled", "b", pair="BTC")
    await repository.append_audit("order.filled", "c", pair="ETH")
    assert [e.summary for e in await repository.audit_events(kind="order")] == ["a", "b", "c"]
    assert [e.summary for e in await repository.audit_events(pair="BTC")] == ["a", "b"]
    assert [e.summary for e in await repository.audit_events(limit=2)] == ["b", "c"]
    since = await repository.audit_events(since=T0.replace(minute=1))
    assert [e.summary for e in since] == ["a", "b", "c"]


async def test_paper_account_survives_save_and_load(repository: Repository) -> None:
    state = PaperAccountState(
        balances={"USDT": Decimal("123.456789012345678901")},
        positions={
            "BTC/USDT:USDT": PaperPosition(
                "BTC/USDT:USDT", Decimal("-0.5"), Decimal(60000), Decimal(2), Decimal(15000)
            )
        },
    )
    await repository.save_paper_account("paper", state)
    state.balances["USDT"] = Decimal(1)
    await repository.save_paper_account("paper", state)
    loaded = await repository.load_paper_account("paper")
    assert loaded is not None
    assert loaded.balances == {"USDT": Decimal(1)}
    assert loaded.positions["BTC/USDT:USDT"].qty == Decimal("-0.5")
    assert await repository.load_paper_account("other") is None


async def test_a_batch_of_decisions_is_stored_in_order_in_one_call(repository: Repository) -> None:
    decision = Decision("BTC", Decimal(1), Decimal(1), Decimal(0), Decimal("0.05"), "none", "ok")
    records = [
        DecisionRecord(f"D{i}", observation(), 1, "paper", decision, "none", None, {}, f"s{i}")
        for i in range(5)
    ]
    await repository.record_decisions(records)
    events = await repository.audit_events(kind="decision")
    assert [e.summary for e in events] == [f"s{i}" for i in range(5)]
    assert [e.decision_id for e in events] == [f"D{i}" for i in range(5)]


async def test_the_cycles_one_read_of_targets_and_pauses_is_what_each_read_alone_gives(
    repository: Repository, clock: FakeClock
) -> None:
    assert await repository.run_time_controls() == ({}, {})
    await repository.set_pair_target("BTC", Decimal("0.75"), None, "three quarters")
    await repository.set_pair_target("ETH", None, "bearish", "bearish")
    assert await repository.set_pair_paused("BTC", True, "maintenance")
    assert await repository.set_pair_paused("*", True, "all", source="auto")
    assert await repository.set_pair_paused("ETH", True, "later resumed")
    assert await repository.set_pair_paused("ETH", False, "resumed")

    targets, controls = await repository.run_time_controls()

    assert targets == await repository.pair_targets()
    assert controls == await repository.pair_controls()
    assert (targets["BTC"].ratio, targets["BTC"].outlook) == (Decimal("0.75"), None)
    assert (targets["ETH"].ratio, targets["ETH"].outlook) == (None, "bearish")
    assert {p: (c.paused, c.source) for p, c in controls.items()} == {
        "BTC": (True, "user"),
        "*": (True, "auto"),
        "ETH": (False, "user"),
    }
    assert all(type(c.paused) is bool for c in controls.values())
