"""Reads and writes of the daemon's records.

Each write that changes state appends its audit event in the same transaction,
so the audit log never tells a story the tables do not, and vice versa.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import event, func, insert, select, update
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from bot.clock import Clock
from bot.domain.models import (
    Decision,
    FundingPayment,
    Observation,
    OrderRequest,
    OrderResult,
    OrderStatus,
)
from bot.exchange.paper_state import (
    PaperAccountState,
    order_from_json,
    order_to_json,
    state_from_json,
    state_to_json,
)
from bot.store.tables import (
    AuditEventRow,
    DecisionRow,
    FillRow,
    FundingPaymentRow,
    ObservationRow,
    OrderRow,
    PaperAccountRow,
    PaperOrderRow,
)

UNRESOLVED = (
    OrderStatus.PENDING.value,
    OrderStatus.ACCEPTED.value,
    OrderStatus.PARTIALLY_FILLED.value,
    OrderStatus.UNKNOWN.value,
)


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # WAL lets `status` and `audit` read while the daemon writes; the busy timeout
    # makes a concurrent writer wait instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine(database_url: str, *, schema: str | None = None) -> AsyncEngine:
    """An async engine with the per-backend settings hedgebot relies on.

    ``schema`` (Postgres only) puts every table in that schema, via the search path.
    """
    if database_url.startswith("sqlite"):
        engine = create_async_engine(database_url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    connect_args: dict[str, Any] = {}
    if schema is not None:
        connect_args["server_settings"] = {"search_path": schema}
    # A server may drop idle connections; ping before use rather than fail a cycle.
    return create_async_engine(database_url, pool_pre_ping=True, connect_args=connect_args)


def jsonable(value: Any) -> Any:
    """Decimals and datetimes as strings, recursively, for JSON columns."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    ts: datetime
    pair: str | None
    kind: str
    summary: str
    decision_id: str | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredOrder:
    client_order_id: str
    decision_id: str
    pair: str
    venue: str
    symbol: str
    side: str
    amount: Decimal
    reduce_only: bool
    status: str
    filled: Decimal
    average_price: Decimal | None
    fee: Decimal
    reason: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One decision as it is stored: what was seen, decided, checked and said."""

    decision_id: str
    observation: Observation
    cycle: int
    mode: str
    decision: Decision
    action: str
    verdict: str | None
    inputs: Mapping[str, Any]
    summary: str


@dataclass(frozen=True, slots=True)
class StoredFill:
    pair: str
    side: str
    amount: Decimal  # contracts
    filled_at: datetime
    position_before: Decimal  # reported base position when the order was decided


@dataclass(frozen=True, slots=True)
class PairStatus:
    pair: str
    mode: str
    price: Decimal
    spot_qty: Decimal
    hedge_qty: Decimal
    ratio: Decimal | None
    target_ratio: Decimal
    band: Decimal
    drift_qty: Decimal
    decided_at: datetime
    last_action: str
    last_action_at: datetime | None
    foreign_open_orders: int = 0  # open orders on the perp that hedgebot did not place
    health: str = "ok"  # or why the pair sends no order now (stale data, exchange down…)


def _order_from_row(row: OrderRow) -> StoredOrder:
    return StoredOrder(
        client_order_id=row.client_order_id,
        decision_id=row.decision_id,
        pair=row.pair,
        venue=row.venue,
        symbol=row.symbol,
        side=row.side,
        amount=row.amount,
        reduce_only=row.reduce_only,
        status=row.status,
        filled=row.filled,
        average_price=row.average_price,
        fee=row.fee,
        reason=row.reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def describe_order(order: StoredOrder) -> str:
    """One line: side, amount, symbol, status and price."""
    text = f"{order.side} {order.amount} {order.symbol} {order.status}"
    if order.average_price is not None and order.filled:
        text += f" {order.filled} @ {order.average_price}"
    if order.reason:
        text += f" ({order.reason})"
    return text


class Repository:
    """All database access of the daemon and the CLI."""

    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # SQLite has one writer at a time; queueing writers here instead of in SQLite's
        # busy handler (which sleeps and retries) keeps concurrent pairs from stalling.
        self._write_lock: asyncio.Lock | None = (
            asyncio.Lock() if engine.dialect.name == "sqlite" else None
        )

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction that commits on exit."""
        if self._write_lock is None:
            async with self._sessions.begin() as session:
                yield session
            return
        async with self._write_lock, self._sessions.begin() as session:
            yield session

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    def _audit_row(
        self,
        kind: str,
        summary: str,
        data: Mapping[str, Any] | None = None,
        pair: str | None = None,
        decision_id: str | None = None,
        ts: datetime | None = None,
    ) -> AuditEventRow:
        return AuditEventRow(
            ts=ts or self._clock.now(),
            pair=pair,
            kind=kind,
            summary=summary,
            decision_id=decision_id,
            data=jsonable(dict(data or {})),
        )

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
            await session.flush()
            return row.id

    @staticmethod
    def _observation_values(
        observation_id: str, observation: Observation, cycle: int
    ) -> dict[str, Any]:
        position = observation.position
        return {
            "id": observation_id,
            "pair": observation.pair,
            "cycle": cycle,
            "observed_at": observation.observed_at,
            "spot_symbol": observation.spot_symbol,
            "perp_symbol": observation.perp_symbol,
            "spot_qty": observation.spot_qty,
            "perp_qty": observation.perp_qty,
            "unreflected_qty": observation.unreflected_qty,
            "price": observation.price,
            "bid": observation.bid,
            "ask": observation.ask,
            "funding_rate": observation.funding_rate,
            "entry_price": position.entry_price if position else None,
            "liquidation_price": position.liquidation_price if position else None,
            "unrealized_pnl": position.unrealized_pnl if position else None,
            "leverage": position.leverage if position else None,
        }

    async def last_cycle(self) -> int:
        """The highest cycle number recorded so far (0 for a new database)."""
        async with self._sessions() as session:
            value = (await session.execute(select(func.max(ObservationRow.cycle)))).scalar()
            return int(value or 0)

    async def record_decision(self, record: DecisionRecord) -> None:
        """Store one observation, its decision (with the verdict) and the audit event."""
        await self.record_decisions([record])

    async def record_decisions(self, records: Sequence[DecisionRecord]) -> None:
        """Store many decisions in one transaction: a cycle's holds cost one commit."""
        if not records:
            return
        now = self._clock.now()
        observations = []
        decisions = []
        audits = []
        for r in records:
            d = r.decision
            observations.append(self._observation_values(r.decision_id, r.observation, r.cycle))
            decisions.append(
                {
                    "id": r.decision_id,
                    "pair": d.pair,
                    "cycle": r.cycle,
                    "mode": r.mode,
                    "created_at": now,
                    "observation_id": r.decision_id,
                    "target_ratio": d.target_ratio,
                    "ratio": d.ratio,
                    "drift_qty": d.drift_qty,
                    "band": d.band,
                    "action": r.action,
                    "reason": d.reason,
                    "verdict": r.verdict,
                    "inputs": jsonable(dict(r.inputs)),
                }
            )
            audits.append(
                {
                    "ts": now,
                    "pair": d.pair,
                    "kind": "risk.denied" if r.action == "denied" else "decision",
                    "summary": r.summary,
                    "decision_id": r.decision_id,
                    "data": jsonable(
                        {
                            "action": r.action,
                            "reason": d.reason,
                            "verdict": r.verdict,
                            "target_ratio": d.target_ratio,
                            "ratio": d.ratio,
                            "drift_qty": d.drift_qty,
                            "band": d.band,
                            "inputs": r.inputs,
                        }
                    ),
                }
            )
        async with self._write() as session:
            await session.execute(insert(ObservationRow), observations)
            await session.execute(insert(DecisionRow), decisions)
            await session.execute(insert(AuditEventRow), audits)

    async def insert_order_intent(
        self, decision_id: str, pair: str, venue: str, request: OrderRequest
    ) -> None:
        """Store an order before it is sent; raises IntegrityError if the id exists."""
        now = self._clock.now()
        async with self._write() as session:
            session.add(
                OrderRow(
                    client_order_id=request.client_order_id,
                    decision_id=decision_id,
                    pair=pair,
                    venue=venue,
                    symbol=request.symbol,
                    side=request.side.value,
                    order_type=request.order_type,
                    amount=request.amount,
                    reduce_only=request.reduce_only,
                    status=OrderStatus.PENDING.value,
                    filled=Decimal(0),
                    average_price=None,
                    fee=Decimal(0),
                    fee_asset=None,
                    reason=None,
                    created_at=now,
                    updated_at=now,
                )
            )
            await session.flush()
            session.add(
                self._audit_row(
                    "order.intent",
                    f"intent {request.side.value} {request.amount} {request.symbol}"
                    f"{' reduce-only' if request.reduce_only else ''} "
                    f"as {request.client_order_id}",
                    {
                        "client_order_id": request.client_order_id,
                        "symbol": request.symbol,
                        "side": request.side.value,
                        "amount": request.amount,
                        "reduce_only": request.reduce_only,
                        "order_type": request.order_type,
                        "venue": venue,
                    },
                    pair=pair,
                    decision_id=decision_id,
                    ts=now,
                )
            )

    async def record_order_result(self, pair: str, decision_id: str, result: OrderResult) -> None:
        """Store the venue's answer and its fills (idempotent per trade id)."""
        now = self._clock.now()
        async with self._write() as session:
            row = (
                await session.execute(
                    select(OrderRow).where(OrderRow.client_order_id == result.client_order_id)
                )
            ).scalar_one()
            row.status = result.status.value
            row.exchange_order_id = result.exchange_order_id
            row.filled = result.filled
            row.average_price = result.average_price
            row.fee = result.fee
            row.fee_asset = result.fee_asset
            row.reason = result.reason
            row.updated_at = now
            known = set(
                (
                    await session.execute(
                        select(FillRow.trade_id).where(FillRow.order_id == row.id)
                    )
                ).scalars()
            )
            for fill in result.fills:
                if fill.trade_id in known:
                    continue
                session.add(
                    FillRow(
                        order_id=row.id,
                        trade_id=fill.trade_id,
                        symbol=fill.symbol,
                        side=fill.side.value,
                        amount=fill.amount,
                        price=fill.price,
                        fee=fill.fee,
                        fee_asset=fill.fee_asset,
                        filled_at=fill.timestamp,
                    )
                )
            summary = f"order {result.client_order_id} {result.status.value}"
            if result.filled:
                summary += (
                    f": {result.side.value} {result.filled} {result.symbol} "
                    f"@ {result.average_price}, fee {result.fee} {result.fee_asset or ''}".rstrip()
                )
            if result.reason:
                summary += f": {result.reason}"
            session.add(
                self._audit_row(
                    f"order.{result.status.value}",
                    summary,
                    {
                        "client_order_id": result.client_order_id,
                        "exchange_order_id": result.exchange_order_id,
                        "status": result.status.value,
                        "filled": result.filled,
                        "average_price": result.average_price,
                        "fee": result.fee,
                        "fee_asset": result.fee_asset,
                        "fills": [
                            {"trade_id": f.trade_id, "amount": f.amount, "price": f.price}
                            for f in result.fills
                        ],
                        "reason": result.reason,
                    },
                    pair=pair,
                    decision_id=decision_id,
                    ts=now,
                )
            )

    async def mark_order(
        self, client_order_id: str, status: OrderStatus, reason: str, pair: str, decision_id: str
    ) -> None:
        """Set an order's status without a venue answer (rejected before sending, unknown)."""
        now = self._clock.now()
        async with self._write() as session:
            await session.execute(
                update(OrderRow)
                .where(OrderRow.client_order_id == client_order_id)
                .values(status=status.value, reason=reason, updated_at=now)
            )
            session.add(
                self._audit_row(
                    f"order.{status.value}",
                    f"order {client_order_id} {status.value}: {reason}",
                    {"client_order_id": client_order_id, "status": status.value, "reason": reason},
                    pair=pair,
                    decision_id=decision_id,
                    ts=now,
                )
            )

    async def unresolved_orders(self, pair: str | None = None) -> list[StoredOrder]:
        """Orders whose final outcome is not known yet, oldest first."""
        query = select(OrderRow).where(OrderRow.status.in_(UNRESOLVED)).order_by(OrderRow.id)
        if pair is not None:
            query = query.where(OrderRow.pair == pair)
        async with self._sessions() as session:
            return [_order_from_row(r) for r in (await session.execute(query)).scalars()]

    async def known_client_order_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of these client order ids the store has an order for."""
        if not ids:
            return set()
        query = select(OrderRow.client_order_id).where(OrderRow.client_order_id.in_(ids))
        async with self._sessions() as session:
            return set((await session.execute(query)).scalars())

    async def last_seen(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Per pair, the latest (reported perp qty, spot qty) the daemon observed."""
        latest = (
            select(ObservationRow.pair, func.max(ObservationRow.id).label("id"))
            .group_by(ObservationRow.pair)
            .subquery()
        )
        query = select(
            ObservationRow.pair,
            ObservationRow.perp_qty,
            ObservationRow.unreflected_qty,
            ObservationRow.spot_qty,
        ).join(latest, ObservationRow.id == latest.c.id)
        async with self._sessions() as session:
            return {
                pair: (perp - unreflected, spot)
                for pair, perp, unreflected, spot in (await session.execute(query)).all()
            }

    async def orders(self, pair: str | None = None) -> list[StoredOrder]:
        """Every stored order, oldest first."""
        query = select(OrderRow).order_by(OrderRow.id)
        if pair is not None:
            query = query.where(OrderRow.pair == pair)
        async with self._sessions() as session:
            return [_order_from_row(r) for r in (await session.execute(query)).scalars()]

    async def decision_targets(self) -> list[tuple[str, datetime, Decimal]]:
        """Every decision's pair, time and target ratio, oldest first (a backtest's targets)."""
        query = select(DecisionRow.pair, DecisionRow.created_at, DecisionRow.target_ratio)
        query = query.order_by(DecisionRow.created_at, DecisionRow.cycle)
        async with self._sessions() as session:
            return [(p, at, target) for p, at, target in (await session.execute(query)).all()]

    async def record_funding(self, pair: str, venue: str, payment: FundingPayment) -> bool:
        """Store a funding payment once; False when it was already stored."""
        try:
            async with self._write() as session:
                session.add(self._funding_row(pair, venue, payment))
                await session.flush()
                session.add(self._funding_audit(pair, payment))
        except IntegrityError:
            return False
        return True

    async def record_fundings(
        self, venue: str, payments: Sequence[tuple[str, FundingPayment]]
    ) -> int:
        """Store many (pair, payment) of one venue in one transaction, each once (those
        already stored are skipped); returns how many were new."""
        if len(payments) <= 1:
            stored = [await self.record_funding(pair, venue, p) for pair, p in payments]
            return sum(stored)
        symbols = sorted({p.symbol for _, p in payments})
        times = [p.timestamp for _, p in payments]
        query = select(FundingPaymentRow.symbol, FundingPaymentRow.paid_at).where(
            FundingPaymentRow.venue == venue,
            FundingPaymentRow.symbol.in_(symbols),
            FundingPaymentRow.paid_at >= min(times),
            FundingPaymentRow.paid_at <= max(times),
        )
        async with self._write() as session:
            known = {(symbol, at) for symbol, at in (await session.execute(query)).all()}
            new = []
            for pair, payment in payments:
                key = (payment.symbol, payment.timestamp)
                if key not in known:
                    known.add(key)
                    new.append((pair, payment))
            session.add_all([self._funding_row(pair, venue, p) for pair, p in new])
            session.add_all([self._funding_audit(pair, p) for pair, p in new])
        return len(new)

    @staticmethod
    def _funding_row(pair: str, venue: str, payment: FundingPayment) -> FundingPaymentRow:
        return FundingPaymentRow(
            pair=pair,
            venue=venue,
            symbol=payment.symbol,
            amount=payment.amount,
            asset=payment.asset,
            rate=payment.rate,
            position_qty=payment.position_qty,
            mark_price=payment.mark_price,
            paid_at=payment.timestamp,
        )

    def _funding_audit(self, pair: str, payment: FundingPayment) -> AuditEventRow:
        verb = "received" if payment.amount >= 0 else "paid"
        return self._audit_row(
            "funding",
            f"funding {verb} {abs(payment.amount)} {payment.asset} on "
            f"{payment.symbol}"
            + (
                f" ({payment.position_qty} at rate {payment.rate})"
                if payment.rate is not None
                else ""
            ),
            {
                "symbol": payment.symbol,
                "amount": payment.amount,
                "asset": payment.asset,
                "rate": payment.rate,
                "position_qty": payment.position_qty,
                "mark_price": payment.mark_price,
                "paid_at": payment.timestamp,
            },
            pair=pair,
        )

    async def recent_fills(self, pair: str | None, since: datetime) -> list[StoredFill]:
        """Fills since ``since`` (of one pair, or all), with the position reported when
        each order was decided."""
        query = (
            select(
                OrderRow.pair,
                FillRow.side,
                FillRow.amount,
                FillRow.filled_at,
                ObservationRow.perp_qty,
                ObservationRow.unreflected_qty,
            )
            .join(OrderRow, OrderRow.id == FillRow.order_id)
            .join(DecisionRow, DecisionRow.id == OrderRow.decision_id)
            .join(ObservationRow, ObservationRow.id == DecisionRow.observation_id)
            .where(FillRow.filled_at >= since)
            .order_by(FillRow.filled_at)
        )
        if pair is not None:
            query = query.where(OrderRow.pair == pair)
        async with self._sessions() as session:
            return [
                StoredFill(
                    pair=fill_pair,
                    side=side,
                    amount=amount,
                    filled_at=filled_at,
                    position_before=perp_qty - unreflected,
                )
                for fill_pair, side, amount, filled_at, perp_qty, unreflected in (
                    await session.execute(query)
                ).all()
            ]

    async def funding_total(self, pair: str) -> Decimal:
        """Sum of the pair's funding payments (positive = received)."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(FundingPaymentRow.amount).where(FundingPaymentRow.pair == pair)
                )
            ).scalars()
            return sum(rows, Decimal(0))

    async def audit_events(
        self,
        pair: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
        after_id: int = 0,
    ) -> list[AuditEvent]:
        """Audit events oldest first; ``kind`` matches exactly or as a prefix ('order')."""
        query = select(AuditEventRow).where(AuditEventRow.id > after_id)
        if pair is not None:
            query = query.where(AuditEventRow.pair == pair)
        if kind is not None:
            query = query.where(
                (AuditEventRow.kind == kind) | AuditEventRow.kind.startswith(f"{kind}.")
            )
        if since is not None:
            query = query.where(AuditEventRow.ts >= since)
        if limit is not None:
            # The newest N, shown oldest first.
            inner = query.order_by(AuditEventRow.id.desc()).limit(limit).subquery()
            query = select(AuditEventRow).join(inner, AuditEventRow.id == inner.c.id)
        query = query.order_by(AuditEventRow.id)
        async with self._sessions() as session:
            return [
                AuditEvent(
                    id=row.id,
                    ts=row.ts,
                    pair=row.pair,
                    kind=row.kind,
                    summary=row.summary,
                    decision_id=row.decision_id,
                    data=row.data,
                )
                for row in (await session.execute(query)).scalars()
            ]

    async def pair_status(self, pairs: Sequence[str] | None = None) -> list[PairStatus]:
        """Per pair: the latest decision with its observation, and the latest order."""
        async with self._sessions() as session:
            latest = (
                select(DecisionRow.pair, func.max(DecisionRow.id).label("id"))
                .group_by(DecisionRow.pair)
                .subquery()
            )
            rows = (
                await session.execute(
                    select(DecisionRow, ObservationRow)
                    .join(latest, DecisionRow.id == latest.c.id)
                    .join(ObservationRow, ObservationRow.id == DecisionRow.observation_id)
                    .order_by(DecisionRow.pair)
                )
            ).all()
            result: list[PairStatus] = []
            for decision, observation in rows:
                if pairs is not None and decision.pair not in pairs:
                    continue
                last_order = (
                    await session.execute(
                        select(OrderRow)
                        .where(OrderRow.pair == decision.pair)
                        .order_by(OrderRow.id.desc())
                        .limit(1)
                    )
                ).scalar_one_or_none()
                health = await self._health(session, decision)
                result.append(
                    PairStatus(
                        pair=decision.pair,
                        mode=decision.mode,
                        price=observation.price,
                        spot_qty=observation.spot_qty,
                        hedge_qty=-observation.perp_qty,
                        ratio=decision.ratio,
                        target_ratio=decision.target_ratio,
                        band=decision.band,
                        drift_qty=decision.drift_qty,
                        decided_at=decision.created_at,
                        last_action=describe_order(_order_from_row(last_order))
                        if last_order
                        else "none yet",
                        last_action_at=last_order.updated_at if last_order else None,
                        foreign_open_orders=int(decision.inputs.get("foreign_open_orders", 0)),
                        health=health,
                    )
                )
            return result

    async def _health(self, session: AsyncSession, decision: DecisionRow) -> str:
        """Why the pair is not trading normally, from what happened since its last decision."""
        failure = (
            await session.execute(
                select(AuditEventRow)
                .where(
                    AuditEventRow.ts >= decision.created_at,
                    AuditEventRow.kind.in_(("cycle.observe_failed", "pair.error")),
                    (AuditEventRow.pair == decision.pair) | AuditEventRow.pair.is_(None),
                )
                .order_by(AuditEventRow.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if failure is not None:
            prefix = "exchange unreachable" if failure.kind == "cycle.observe_failed" else "error"
            return f"{prefix}: {failure.summary}"
        if decision.action == "denied":
            return f"not trading: {decision.verdict}"
        if decision.action == "waiting":
            return "waiting: an order's outcome is not known yet"
        return "ok"

    async def load_paper_account(self, name: str) -> PaperAccountState | None:
        """The paper venue's saved account, or None for a new one."""
        async with self._sessions() as session:
            row = await session.get(PaperAccountRow, name)
            return None if row is None else state_from_json(row.state)

    async def load_paper_order(self, name: str, client_order_id: str) -> OrderResult | None:
        """An order the paper account filled, by client order id."""
        async with self._sessions() as session:
            row = await session.get(PaperOrderRow, (name, client_order_id))
            return None if row is None else order_from_json(row.order)

    async def save_paper_account(
        self, name: str, state: PaperAccountState, new_orders: Sequence[OrderResult] = ()
    ) -> None:
        """Replace the paper venue's saved account and add its new orders, atomically."""
        async with self._write() as session:
            for order in new_orders:
                session.add(
                    PaperOrderRow(
                        account=name,
                        client_order_id=order.client_order_id,
                        symbol=order.symbol,
                        order=order_to_json(order),
                        created_at=self._clock.now(),
                    )
                )
            row = await session.get(PaperAccountRow, name)
            payload = state_to_json(state)
            if row is None:
                session.add(PaperAccountRow(name=name, state=payload, updated_at=self._clock.now()))
            else:
                row.state = payload
                row.updated_at = self._clock.now()
