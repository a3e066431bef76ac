"""Reads and writes of the daemon's records.

Each write that changes state appends its audit event in the same transaction,
so the audit log never tells a story the tables do not, and vice versa.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, delete, event, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
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
from bot.domain.paper_account import (
    PaperAccountState,
    order_from_json,
    order_to_json,
    state_from_json,
    state_to_json,
)
from bot.domain.report import PairReport, ReportFill, ReportPoint, pair_report
from bot.store.audit_chain import CHAIN_LOCK_KEY, GENESIS_HASH, event_hash
from bot.store.leases import (
    ClaimPlan,
    Lease,
    LeaseLostError,
    LeaseState,
    fair_share,
    instance_lock_key,
    lease_problem,
    plan_claims,
)
from bot.store.tables import (
    AuditEventRow,
    DaemonInstanceRow,
    DecisionRow,
    FillRow,
    FundingPaymentRow,
    ObservationRow,
    OrderRow,
    PairControlRow,
    PairLeaseRow,
    PairTargetRow,
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
    # Transactions are begun by _sqlite_begin, not by the driver's implicit BEGIN.
    dbapi_connection.isolation_level = None


# A write transaction on SQLite starts with BEGIN IMMEDIATE: it takes the write lock
# (waiting up to the busy timeout) before it reads anything, so another process's
# writer (a `hedgebot pause` beside the daemon) cannot commit between the audit chain's
# read of the newest hash and the append after it. A deferred BEGIN would fail the
# upgrade from reading to writing at once ("database is locked"), or fork the chain.
SQLITE_WRITE = "hedgebot_write"


def _sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(SQLITE_WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_engine(database_url: str, *, schema: str | None = None) -> AsyncEngine:
    """An async engine with the per-backend settings hedgebot relies on.

    ``schema`` (Postgres only) puts every table in that schema, via the search path.
    """
    if database_url.startswith("sqlite"):
        engine = create_async_engine(database_url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
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
    # The hash chain as stored (bot/store/audit_chain.py); None only outside the store.
    prev_hash: str | None = None
    hash: str | None = None


def _event_from_row(row: AuditEventRow) -> AuditEvent:
    return AuditEvent(
        id=row.id,
        ts=row.ts,
        pair=row.pair,
        kind=row.kind,
        summary=row.summary,
        decision_id=row.decision_id,
        data=row.data,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _audit_filter(
    query: Select[AuditEventRow],
    after_id: int,
    pair: str | None,
    kind: str | None,
    since: datetime | None,
) -> Select[AuditEventRow]:
    query = query.where(AuditEventRow.id > after_id)
    if pair is not None:
        query = query.where(AuditEventRow.pair == pair)
    if kind is not None:
        query = query.where(
            (AuditEventRow.kind == kind) | AuditEventRow.kind.startswith(f"{kind}.")
        )
    if since is not None:
        query = query.where(AuditEventRow.ts >= since)
    return query


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
    symbol: str = ""  # the order's symbol: a pair's perp, or its spot (a sell-down)


@dataclass(frozen=True, slots=True)
class PairTarget:
    """A target set with ``hedgebot set-target``: a ratio (fixed) or an outlook."""

    pair: str
    ratio: Decimal | None
    outlook: str | None
    set_at: datetime


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
    held_by: str | None = None  # the daemon (host:pid:suffix) that made the latest decision
    strategy: str = "fixed"
    strategy_detail: str = ""  # e.g. "outlook neutral", "regime bear"
    pending_target: str | None = None  # set with set-target after the last decision
    paused: str | None = None  # why the pair is paused (`hedgebot pause`, or automatically)

    @property
    def target_text(self) -> str:
        """The effective target as status shows it: ratio, strategy, a pending change."""
        text = f"{self.target_ratio} ({self.strategy_detail or self.strategy})"
        if self.pending_target is not None:
            text += f"; set {self.pending_target}, from next cycle"
        return text


def _strategy_detail(inputs: Mapping[str, Any]) -> str:
    name = str(inputs.get("name", "fixed"))
    if "outlook" in inputs:
        return f"{name} {inputs['outlook']}"
    if inputs.get("regime"):
        return f"{name} {inputs['regime']}"
    if inputs.get("set_target"):
        return f"{name}, set"
    return name


ALL_PAIRS = "*"


@dataclass(frozen=True, slots=True)
class PairControl:
    """A stored pause: of one pair, or of every pair (``pair == "*"``)."""

    pair: str
    paused: bool
    reason: str
    source: str  # user | auto
    updated_at: datetime


def paused_reason(controls: Mapping[str, PairControl], pair: str) -> str | None:
    """Why ``pair`` is paused (its own pause, else the pause of every pair); None if not."""
    for key in (pair, ALL_PAIRS):
        control = controls.get(key)
        if control is not None and control.paused:
            who = "by the user" if control.source == "user" else "automatically"
            scope = "" if key == pair else " (every pair)"
            return f"paused {who}{scope}: {control.reason}"
    return None


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


def _lease_state(row: PairLeaseRow) -> LeaseState:
    return LeaseState(row.pair, row.holder, row.token, row.expires_at)


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
        self._write_sessions = async_sessionmaker(
            engine.execution_options(**{SQLITE_WRITE: True}), expire_on_commit=False
        )
        # SQLite has one writer at a time; queueing writers here instead of in SQLite's
        # busy handler (which sleeps and retries) keeps concurrent pairs from stalling.
        self._write_lock: asyncio.Lock | None = (
            asyncio.Lock() if engine.dialect.name == "sqlite" else None
        )

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction that commits on exit.

        Audit rows added to it are chained (numbered and hashed) last, before the commit.
        """
        if self._write_lock is None:
            async with self._write_sessions.begin() as session:
                yield session
                await self._chain(session)
            return
        async with self._write_lock, self._write_sessions.begin() as session:
            yield session
            await self._chain(session)

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

    async def _chain(self, session: AsyncSession) -> None:
        """Number and hash the audit rows added to ``session``, after the newest stored one.

        ``_write`` calls it last in every write transaction: on Postgres the chain's
        advisory lock is held from here to the commit, so appends by several processes
        take turns (the previous holder's rows are committed, hence visible under READ
        COMMITTED, when the lock is granted). On SQLite ``_write`` already queues the
        writers. An audit row flushed before this runs fails (``hash`` is NOT NULL).
        """
        rows = [o for o in session.new if isinstance(o, AuditEventRow) and o.hash is None]
        if not rows:
            return
        postgres = self._engine.dialect.name == "postgresql"
        # The new rows must not be flushed (unhashed) by the look-ups below.
        with session.no_autoflush:
            if postgres:
                await session.execute(
                    text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK_KEY}
                )
            last = (
                await session.execute(
                    select(AuditEventRow.id, AuditEventRow.hash)
                    .order_by(AuditEventRow.id.desc())
                    .limit(1)
                )
            ).first()
            last_id, prev = (0, GENESIS_HASH) if last is None else (last[0], last[1])
            if postgres:
                # Ids from the table's own sequence, so it stays ahead of every row.
                ids = sorted(
                    (
                        await session.execute(
                            text(
                                "SELECT nextval(pg_get_serial_sequence('audit_events', 'id')) "
                                "FROM generate_series(1, :n)"
                            ),
                            {"n": len(rows)},
                        )
                    ).scalars()
                )
            else:
                ids = list(range(last_id + 1, last_id + 1 + len(rows)))
        for row, row_id in zip(rows, ids, strict=True):
            row.id = row_id
            row.prev_hash = prev
            row.hash = event_hash(
                row_id, row.ts, row.kind, row.pair, row.summary, row.decision_id, row.data, prev
            )
            prev = row.hash
        await session.flush()

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
            await self._chain(session)
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
                self._audit_row(
                    "risk.denied" if r.action == "denied" else "decision",
                    r.summary,
                    {
                        "action": r.action,
                        "reason": d.reason,
                        "verdict": r.verdict,
                        "target_ratio": d.target_ratio,
                        "ratio": d.ratio,
                        "drift_qty": d.drift_qty,
                        "band": d.band,
                        "inputs": r.inputs,
                    },
                    pair=d.pair,
                    decision_id=r.decision_id,
                    ts=now,
                )
            )
        async with self._write() as session:
            await session.execute(insert(ObservationRow), observations)
            await session.execute(insert(DecisionRow), decisions)
            session.add_all(audits)

    async def insert_order_intent(
        self,
        decision_id: str,
        pair: str,
        venue: str,
        request: OrderRequest,
        lease: Lease | None = None,
        lease_margin: timedelta = timedelta(0),
    ) -> None:
        """Store an order before it is sent; raises IntegrityError if the id exists.

        With ``lease``, raises LeaseLostError (and stores nothing) unless this daemon
        still holds the pair's lease for at least ``lease_margin``.
        """
        now = self._clock.now()
        async with self._write() as session:
            if lease is not None:
                await self._check_lease(session, lease, lease_margin)
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

    async def _db_now(self, session: AsyncSession) -> datetime:
        # Leases compare times written by different hosts: on a server database use its
        # clock, not each daemon's.
        if self._engine.dialect.name == "postgresql":
            value: datetime = (await session.execute(text("SELECT clock_timestamp()"))).scalar_one()
            return value
        return self._clock.now()

    async def _check_lease(self, session: AsyncSession, lease: Lease, margin: timedelta) -> None:
        # FOR UPDATE: a takeover of this row waits for (or skips) this transaction.
        row = (
            await session.execute(
                select(PairLeaseRow).where(PairLeaseRow.pair == lease.pair).with_for_update()
            )
        ).scalar_one_or_none()
        current = None if row is None else _lease_state(row)
        problem = lease_problem(current, lease, await self._db_now(session), margin)
        if problem is not None:
            raise LeaseLostError(problem)

    async def claim_leases(
        self,
        instance_id: str,
        pairs: Sequence[str],
        lease_period: timedelta,
        alone: bool = False,
    ) -> tuple[dict[str, Lease], ClaimPlan, int]:
        """Renew, take and give back pair leases; returns (held, what changed, live daemons).

        ``alone``: this daemon holds the only-daemon lock, so other holders are dead.
        """
        async with self._write() as session:
            now = await self._db_now(session)
            await session.execute(self._upsert_instance(instance_id, now))
            # Heartbeats long gone are clutter, not history: the audit log has the starts.
            await session.execute(
                delete(DaemonInstanceRow).where(
                    DaemonInstanceRow.heartbeat_at < now - 10 * lease_period
                )
            )
            beating = set(
                (
                    await session.execute(
                        select(DaemonInstanceRow.instance_id).where(
                            DaemonInstanceRow.heartbeat_at > now - lease_period
                        )
                    )
                ).scalars()
            )
            epoch = datetime(1970, 1, 1, tzinfo=UTC)
            new_rows = [
                {"pair": p, "holder": None, "token": 0, "expires_at": epoch, "acquired_at": epoch}
                for p in pairs
            ]
            if new_rows:
                await session.execute(self._insert_ignore(PairLeaseRow).values(new_rows))
            rows = (
                await session.execute(
                    select(PairLeaseRow)
                    .where(PairLeaseRow.pair.in_(pairs))
                    .order_by(PairLeaseRow.pair)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
            by_pair = {row.pair: row for row in rows}
            states = [_lease_state(r) for r in by_pair.values()]
            holding = {s.holder for s in states if s.holder and s.expires_at > now}
            dead = await self._dead_daemons(session, (beating | holding) - {instance_id})
            if dead:
                await session.execute(
                    delete(DaemonInstanceRow).where(DaemonInstanceRow.instance_id.in_(dead))
                )
            live = len(beating - dead)
            plan = plan_claims(
                states,
                instance_id,
                now,
                fair_share(len(pairs), 1 if alone else live),
                alone,
                dead,
            )
            held: dict[str, Lease] = {}
            expires = now + lease_period
            for pair in plan.keep:
                row = by_pair[pair]
                row.expires_at = expires
                held[pair] = Lease(pair, instance_id, row.token, expires)
            for takeover in plan.take:
                row = by_pair[takeover.pair]
                row.holder = instance_id
                row.token = takeover.token
                row.expires_at = expires
                row.acquired_at = now
                held[takeover.pair] = Lease(takeover.pair, instance_id, takeover.token, expires)
            for pair in plan.give_back:
                by_pair[pair].holder = None
                by_pair[pair].expires_at = now
            for takeover in plan.take:
                before = takeover.previous_holder
                session.add(
                    self._audit_row(
                        "lease.acquired",
                        f"{instance_id} holds {takeover.pair} (token {takeover.token}"
                        + (f", taken over from {before})" if before else ")"),
                        {
                            "holder": instance_id,
                            "token": takeover.token,
                            "previous_holder": takeover.previous_holder,
                            "expires_at": expires,
                            "live_daemons": live,
                        },
                        pair=takeover.pair,
                        ts=now,
                    )
                )
            for pair in plan.give_back:
                session.add(
                    self._audit_row(
                        "lease.released",
                        f"{instance_id} gave {pair} back to share the pairs among {live} daemons",
                        {"holder": instance_id, "token": by_pair[pair].token, "live_daemons": live},
                        pair=pair,
                        ts=now,
                    )
                )
            return held, plan, live

    async def _dead_daemons(self, session: AsyncSession, daemons: set[str]) -> set[str]:
        # A live daemon on Postgres holds its life lock (bot/store/instance.py): if this
        # transaction can take it, that daemon's session is gone, so neither its leases
        # nor its heartbeat need to run out first. (A daemon that hangs keeps its
        # session: its leases expire.)
        if self._engine.dialect.name != "postgresql":
            return set()
        dead = set()
        for holder in sorted(daemons):
            got = (
                await session.execute(
                    text("SELECT pg_try_advisory_xact_lock(:k)"),
                    {"k": instance_lock_key(holder)},
                )
            ).scalar_one()
            if got:
                dead.add(holder)
        return dead

    async def release_leases(self, instance_id: str) -> list[str]:
        """Give back every lease of this daemon (at a clean stop) and drop its heartbeat."""
        async with self._write() as session:
            now = await self._db_now(session)
            rows = (
                await session.execute(
                    select(PairLeaseRow)
                    .where(PairLeaseRow.holder == instance_id)
                    .order_by(PairLeaseRow.pair)
                    .with_for_update()
                )
            ).scalars()
            released = []
            for row in rows:
                row.holder = None
                row.expires_at = now
                released.append(row.pair)
            await session.execute(
                delete(DaemonInstanceRow).where(DaemonInstanceRow.instance_id == instance_id)
            )
            if released:
                session.add(
                    self._audit_row(
                        "lease.released",
                        f"{instance_id} stopped and gave back {', '.join(released)}",
                        {"holder": instance_id, "pairs": released},
                        ts=now,
                    )
                )
            return released

    async def lease_holders(self) -> dict[str, Lease]:
        """Every pair's current lease that has a holder (expired ones included)."""
        async with self._sessions() as session:
            rows = (
                await session.execute(select(PairLeaseRow).where(PairLeaseRow.holder.is_not(None)))
            ).scalars()
            return {r.pair: Lease(r.pair, r.holder or "", r.token, r.expires_at) for r in rows}

    def _insert_ignore(self, table: type[PairLeaseRow]) -> Any:
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table).on_conflict_do_nothing()

    def _upsert_instance(self, instance_id: str, now: datetime) -> Any:
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(DaemonInstanceRow).values(
            instance_id=instance_id, started_at=now, heartbeat_at=now
        )
        return statement.on_conflict_do_update(
            index_elements=[DaemonInstanceRow.instance_id], set_={"heartbeat_at": now}
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
    ) -> list[tuple[str, FundingPayment]]:
        """Store many (pair, payment) of one venue in one transaction, each once (those
        already stored are skipped); returns the new ones."""
        if len(payments) <= 1:
            return [(pair, p) for pair, p in payments if await self.record_funding(pair, venue, p)]
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
        return new

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
                OrderRow.symbol,
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
                    symbol=symbol,
                )
                for fill_pair, side, amount, filled_at, perp_qty, unreflected, symbol in (
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
        query = _audit_filter(select(AuditEventRow), after_id, pair, kind, since)
        if limit is not None:
            # The newest N, shown oldest first.
            inner = query.order_by(AuditEventRow.id.desc()).limit(limit).subquery()
            query = select(AuditEventRow).join(inner, AuditEventRow.id == inner.c.id)
        query = query.order_by(AuditEventRow.id)
        async with self._sessions() as session:
            return [_event_from_row(row) for row in (await session.execute(query)).scalars()]

    async def audit_page(
        self,
        after_id: int,
        limit: int,
        pair: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
    ) -> list[AuditEvent]:
        """The first ``limit`` events after ``after_id`` that match, oldest first: one
        page of a stream (export, follow) that never holds the whole log in memory."""
        query = _audit_filter(select(AuditEventRow), after_id, pair, kind, since)
        query = query.order_by(AuditEventRow.id).limit(limit)
        async with self._sessions() as session:
            return [_event_from_row(row) for row in (await session.execute(query)).scalars()]

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
            controls = {
                row.pair: PairControl(row.pair, row.paused, row.reason, row.source, row.updated_at)
                for row in (await session.execute(select(PairControlRow))).scalars()
            }
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
                strategy = (decision.inputs or {}).get("strategy") or {}
                override = await session.get(PairTargetRow, decision.pair)
                pending = None
                if override is not None and override.set_at > decision.created_at:
                    pending = override.outlook or str(override.ratio)
                paused = paused_reason(controls, decision.pair)
                health = paused or await self._health(session, decision)
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
                        held_by=(decision.inputs.get("lease") or {}).get("holder"),
                        strategy=str(strategy.get("name", "fixed")),
                        strategy_detail=_strategy_detail(strategy),
                        pending_target=pending,
                        paused=paused,
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
        if decision.action == "liquidity_wait":
            return f"waiting for liquidity: {decision.verdict}"
        return "ok"

    # -- run-time targets (hedgebot set-target) ---------------------------------------------

    async def set_pair_target(
        self, pair: str, ratio: Decimal | None, outlook: str | None, summary: str
    ) -> None:
        """Store the pair's run-time target and audit it (``pair.target_set``), in one commit.

        Both None drops it: the pair goes back to its configured target.
        """
        async with self._write() as session:
            row = await session.get(PairTargetRow, pair)
            now = self._clock.now()
            if ratio is None and outlook is None:
                if row is not None:
                    await session.delete(row)
            elif row is None:
                session.add(PairTargetRow(pair=pair, ratio=ratio, outlook=outlook, set_at=now))
            else:
                row.ratio, row.outlook, row.set_at = ratio, outlook, now
            session.add(
                self._audit_row(
                    "pair.target_set", summary, {"ratio": ratio, "outlook": outlook}, pair
                )
            )

    async def pair_targets(self) -> dict[str, PairTarget]:
        """Every run-time target, by pair (one query: the daemon reads it each cycle)."""
        async with self._sessions() as session:
            rows = (await session.execute(select(PairTargetRow))).scalars()
            return {r.pair: PairTarget(r.pair, r.ratio, r.outlook, r.set_at) for r in rows}

    async def last_strategy_inputs(self) -> dict[str, dict[str, Any]]:
        """Each pair's latest decision's ``inputs["strategy"]`` (a restart resumes regimes)."""
        async with self._sessions() as session:
            latest = (
                select(DecisionRow.pair, func.max(DecisionRow.id).label("id"))
                .group_by(DecisionRow.pair)
                .subquery()
            )
            rows = await session.execute(
                select(DecisionRow.pair, DecisionRow.inputs).join(
                    latest, DecisionRow.id == latest.c.id
                )
            )
            result: dict[str, dict[str, Any]] = {}
            for pair, inputs in rows:
                strategy = (inputs or {}).get("strategy")
                if isinstance(strategy, dict):
                    result[pair] = strategy
            return result

    async def pair_controls(self) -> dict[str, PairControl]:
        """Every stored pause or resume, by pair name ("*": every pair); one small query."""
        async with self._sessions() as session:
            return {
                row.pair: PairControl(row.pair, row.paused, row.reason, row.source, row.updated_at)
                for row in (await session.execute(select(PairControlRow))).scalars()
            }

    async def set_pair_paused(
        self, pair: str, paused: bool, reason: str, source: str = "user"
    ) -> bool:
        """Pause or resume ``pair`` ("*": every pair) and audit it (``pair.paused`` /
        ``pair.resumed``); resuming "*" resumes every pair. False when nothing changed."""
        now = self._clock.now()
        async with self._write() as session:
            rows = {
                row.pair: row for row in (await session.execute(select(PairControlRow))).scalars()
            }
            if paused:
                row = rows.get(pair)
                if row is not None and row.paused:
                    return False
                if row is None:
                    row = PairControlRow(pair=pair)
                    session.add(row)
                targets = [row]
            else:
                targets = [
                    r for key, r in rows.items() if r.paused and (pair == ALL_PAIRS or key == pair)
                ]
                if not targets:
                    return False
            for row in targets:
                row.paused = paused
                row.reason = reason
                row.source = source
                row.updated_at = now
            who = pair if pair != ALL_PAIRS else "every pair"
            kind = "pair.paused" if paused else "pair.resumed"
            verb = "paused" if paused else "resumed"
            session.add(
                self._audit_row(
                    kind,
                    f"{who} {verb} ({source}): {reason}",
                    {
                        "pair": pair,
                        "source": source,
                        "reason": reason,
                        "pairs": sorted(r.pair for r in targets),
                    },
                    pair=None if pair == ALL_PAIRS else pair,
                    ts=now,
                )
            )
            return True

    async def trailing_rejections(self, limit: int) -> dict[str, int]:
        """Per pair, how many of its latest orders (up to ``limit``) were rejected in a row,
        counting only orders after the pair's last pause or resume."""
        controls = await self.pair_controls()
        counts: dict[str, int] = {}
        async with self._sessions() as session:
            pairs = (await session.execute(select(OrderRow.pair).distinct())).scalars().all()
            for pair in pairs:
                query = (
                    select(OrderRow.status, OrderRow.created_at)
                    .where(OrderRow.pair == pair)
                    .order_by(OrderRow.id.desc())
                    .limit(limit)
                )
                control = controls.get(pair)
                count = 0
                for status, created_at in (await session.execute(query)).all():
                    if status != OrderStatus.REJECTED.value:
                        break
                    if control is not None and created_at <= control.updated_at:
                        break
                    count += 1
                if count:
                    counts[pair] = count
        return counts

    async def sold_since(self, pair: str, symbol: str, since: datetime) -> Decimal:
        """The quantity our sell orders of ``pair`` on ``symbol`` filled since ``since``
        (the bearish sell-down counts its spot sales with it)."""
        # Summed here, not in SQL: SQLite keeps exact decimals as text.
        query = (
            select(FillRow.amount)
            .join(OrderRow, OrderRow.id == FillRow.order_id)
            .where(
                OrderRow.pair == pair,
                OrderRow.symbol == symbol,
                FillRow.side == "sell",
                FillRow.filled_at >= since,
            )
        )
        async with self._sessions() as session:
            return sum((await session.execute(query)).scalars(), Decimal(0))

    async def traded_notional_since(self, since: datetime) -> dict[str, Decimal]:
        """Per pair, the quote value of its fills since ``since`` (amount x price)."""
        query = (
            select(OrderRow.pair, FillRow.amount, FillRow.price)
            .join(OrderRow, OrderRow.id == FillRow.order_id)
            .where(FillRow.filled_at >= since)
        )
        totals: dict[str, Decimal] = {}
        async with self._sessions() as session:
            for pair, amount, price in (await session.execute(query)).all():
                totals[pair] = totals.get(pair, Decimal(0)) + amount * price
        return totals

    async def report(
        self, pair: str | None = None, since: datetime | None = None
    ) -> list[PairReport]:
        """Per pair (or one), PnL, costs and hedge effectiveness from the stored series
        since ``since`` (everything when None) up to now. Perp fill amounts are taken as
        base quantities (linear perps of contract size 1)."""
        until = self._clock.now()
        observations = select(
            ObservationRow.pair,
            ObservationRow.observed_at,
            ObservationRow.spot_qty,
            ObservationRow.perp_qty,
            ObservationRow.price,
        ).order_by(ObservationRow.observed_at, ObservationRow.id)
        fills = select(
            OrderRow.pair,
            FillRow.filled_at,
            FillRow.side,
            FillRow.amount,
            FillRow.price,
            FillRow.fee,
        ).join(OrderRow, OrderRow.id == FillRow.order_id)
        # Perp fills only: a spot sell (the bearish sell-down) is not a hedge trade.
        fills = fills.where(OrderRow.symbol.contains(":"))
        funding = select(FundingPaymentRow.pair, FundingPaymentRow.amount)
        if since is not None:
            observations = observations.where(ObservationRow.observed_at >= since)
            fills = fills.where(FillRow.filled_at >= since)
            funding = funding.where(FundingPaymentRow.paid_at >= since)
        if pair is not None:
            observations = observations.where(ObservationRow.pair == pair)
            fills = fills.where(OrderRow.pair == pair)
            funding = funding.where(FundingPaymentRow.pair == pair)
        points: dict[str, list[ReportPoint]] = {}
        pair_fills: dict[str, list[ReportFill]] = {}
        payments: dict[str, list[Decimal]] = {}
        async with self._sessions() as session:
            for name, at, spot, perp, price in (await session.execute(observations)).all():
                points.setdefault(name, []).append(ReportPoint(at, spot, perp, price))
            for name, at, side, amount, price, fee in (await session.execute(fills)).all():
                signed = amount if side == "buy" else -amount
                pair_fills.setdefault(name, []).append(ReportFill(at, signed, price, fee))
            for name, amount in (await session.execute(funding)).all():
                payments.setdefault(name, []).append(amount)
        names = sorted(set(points) | set(pair_fills) | set(payments))
        return [
            pair_report(
                name,
                points.get(name, []),
                pair_fills.get(name, []),
                payments.get(name, []),
                since,
                until,
            )
            for name in names
        ]

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

    async def audit_events_after(self, after_id: int, limit: int = 500) -> list[AuditEvent]:
        """Up to ``limit`` audit events with id > ``after_id``, in id order."""
        query = (
            select(AuditEventRow)
            .where(AuditEventRow.id > after_id)
            .order_by(AuditEventRow.id)
            .limit(limit)
        )
        async with self._sessions() as session:
            return [_event_from_row(row) for row in (await session.execute(query)).scalars()]
