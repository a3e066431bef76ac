"""SQLAlchemy 2.0 tables. The schema itself is created by the Alembic migrations."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Money(TypeDecorator[Decimal]):
    """An exact decimal: NUMERIC on Postgres, text on SQLite (whose NUMERIC is a float)."""

    impl = Numeric(38, 18)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(64))
        return dialect.type_descriptor(Numeric(38, 18))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"Money columns take Decimal, got {type(value).__name__}")
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(value)
        # NUMERIC(38,18) pads to 18 places; drop the padding but never use an exponent.
        number = Decimal(str(value)).normalize()
        exponent = number.as_tuple().exponent
        return number.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else number


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# SQLite only autoincrements INTEGER PRIMARY KEY; Postgres gets a bigint.
AutoId = BigInteger().with_variant(Integer(), "sqlite")


class ObservationRow(Base):
    __tablename__ = "observations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # its decision's id
    pair: Mapped[str] = mapped_column(String(64), index=True)
    cycle: Mapped[int] = mapped_column(Integer)
    observed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    spot_symbol: Mapped[str] = mapped_column(String(64))
    perp_symbol: Mapped[str] = mapped_column(String(64))
    spot_qty: Mapped[Decimal] = mapped_column(Money)
    perp_qty: Mapped[Decimal] = mapped_column(Money)  # effective: reported + unreflected
    unreflected_qty: Mapped[Decimal] = mapped_column(Money)
    price: Mapped[Decimal] = mapped_column(Money)
    bid: Mapped[Decimal] = mapped_column(Money)
    ask: Mapped[Decimal] = mapped_column(Money)
    funding_rate: Mapped[Decimal] = mapped_column(Money)
    entry_price: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    liquidation_price: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    unrealized_pnl: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    leverage: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    # The spot's own price where it was observed (a basis pair's); NULL before 0007.
    spot_price: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    # Coins per contract of the perp: its fills (in contracts) x this = coins; NULL before 0007.
    contract_size: Mapped[Decimal | None] = mapped_column(Money, nullable=True)

    __table_args__ = (
        Index("ix_observations_pair_id", "pair", "id"),  # the latest observation per pair
        Index("ix_observations_observed_at", "observed_at"),  # the report's period
        # The report's series pair by pair and its stored days' check (count, max id a day).
        Index("ix_observations_pair_observed_at_id", "pair", "observed_at", "id"),
    )


class DecisionRow(Base):
    __tablename__ = "decisions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # ULID, time-ordered
    pair: Mapped[str] = mapped_column(String(64))
    cycle: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    observation_id: Mapped[str] = mapped_column(ForeignKey("observations.id"))
    target_ratio: Mapped[Decimal] = mapped_column(Money)
    ratio: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    drift_qty: Mapped[Decimal] = mapped_column(Money)
    band: Mapped[Decimal] = mapped_column(Money)
    action: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    verdict: Mapped[str | None] = mapped_column(Text, nullable=True)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_decisions_pair_created_at", "pair", "created_at"),
        Index("ix_decisions_pair_id", "pair", "id"),  # the latest decision per pair
    )


class OrderRow(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(String(64), unique=True)
    decision_id: Mapped[str] = mapped_column(ForeignKey("decisions.id"), unique=True)
    pair: Mapped[str] = mapped_column(String(64), index=True)
    venue: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(8))
    order_type: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Money)
    reduce_only: Mapped[bool]
    status: Mapped[str] = mapped_column(String(32), index=True)
    exchange_order_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    filled: Mapped[Decimal] = mapped_column(Money)
    average_price: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    fee: Mapped[Decimal] = mapped_column(Money)
    fee_asset: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class FillRow(Base):
    __tablename__ = "fills"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    trade_id: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(8))
    amount: Mapped[Decimal] = mapped_column(Money)
    price: Mapped[Decimal] = mapped_column(Money)
    fee: Mapped[Decimal] = mapped_column(Money)
    fee_asset: Mapped[str] = mapped_column(String(16))
    filled_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (UniqueConstraint("order_id", "trade_id", name="uq_fills_order_trade"),)


class FundingPaymentRow(Base):
    __tablename__ = "funding_payments"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    pair: Mapped[str] = mapped_column(String(64), index=True)
    venue: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(Money)
    asset: Mapped[str] = mapped_column(String(16))
    rate: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    position_qty: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    mark_price: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    paid_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("venue", "symbol", "paid_at", name="uq_funding_venue_symbol_time"),
    )


class AuditEventRow(Base):
    """Append-only: the application never updates or deletes these rows."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    pair: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    summary: Mapped[str] = mapped_column(Text)
    decision_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The hash chain (bot/store/audit_chain.py): the previous event's hash and this one's.
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_audit_events_pair_id", "pair", "id"),)


class AuditCheckpointRow(Base):
    """A kept audit event whose predecessors ``db prune`` removed: ``prev_hash`` is the
    hash of the last removed one, so the chain verifies across the gap."""

    __tablename__ = "audit_checkpoints"

    # Always given (its event's id); revision 0008 made it a bigserial on Postgres, and so
    # do these tables (a schema built from them is the migrations' own).
    event_id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    removed: Mapped[int] = mapped_column(Integer)  # events removed just before it
    pruned_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ReportDayRow(Base):
    """The report's sums of one pair's whole UTC day (bot/store/report_days.py): a cache,
    not history (not audited; deleting it changes no report). The figures are text, exact
    at any precision; ``obs_*`` and ``fill_*`` are what they were computed from (count
    and max id of the day's observations and of its fills), checked at each read."""

    __tablename__ = "report_days"

    pair: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    # The day's bounds, for the check's index range over the observations.
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    obs_count: Mapped[int] = mapped_column(Integer)
    obs_max_id: Mapped[str] = mapped_column(String(32))
    fill_count: Mapped[int] = mapped_column(Integer)
    fill_max_id: Mapped[int] = mapped_column(BigInteger)  # 0 without fills
    unpriced_spot: Mapped[int] = mapped_column(Integer)
    intervals: Mapped[int] = mapped_column(Integer)
    unhedged: Mapped[str] = mapped_column(Text)
    unhedged_squares: Mapped[str] = mapped_column(Text)
    hedged: Mapped[str] = mapped_column(Text)
    hedged_squares: Mapped[str] = mapped_column(Text)
    # The day's first and last observation: at|spot_qty|perp_qty|price|spot_price (text).
    first_point: Mapped[str] = mapped_column(Text)
    last_point: Mapped[str] = mapped_column(Text)


class PairCycleRow(Base):
    """A pair's latest cycle: when it ran, what it decided, whether that was stored
    (holds that change nothing are stored only as heartbeats)."""

    __tablename__ = "pair_cycles"

    pair: Mapped[str] = mapped_column(String(64), primary_key=True)
    cycle: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    action: Mapped[str] = mapped_column(String(32))
    recorded: Mapped[bool]


class PaperAccountRow(Base):
    __tablename__ = "paper_accounts"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(Text)  # exact JSON, decimals as strings
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PaperOrderRow(Base):
    """Every order the paper venue filled, for look-ups by client order id."""

    __tablename__ = "paper_orders"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64))
    order: Mapped[str] = mapped_column(Text)  # exact JSON, decimals as strings
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PairLeaseRow(Base):
    """Which daemon hedges a pair, until when; ``token`` grows with every new holder."""

    __tablename__ = "pair_leases"

    pair: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(128), nullable=True)
    token: Mapped[int] = mapped_column(AutoId)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    acquired_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DaemonInstanceRow(Base):
    """A running daemon's heartbeat: how many share the pairs."""

    __tablename__ = "daemon_instances"

    instance_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class PairTargetRow(Base):
    """A target set at run time by ``hedgebot set-target``; overrides the config's."""

    __tablename__ = "pair_targets"

    pair: Mapped[str] = mapped_column(String(64), primary_key=True)
    ratio: Mapped[Decimal | None] = mapped_column(Money, nullable=True)  # strategy fixed
    outlook: Mapped[str | None] = mapped_column(String(32), nullable=True)  # strategy outlook
    set_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PairControlRow(Base):
    """Whether a pair (or "*", every pair) is paused, by whom and why."""

    __tablename__ = "pair_controls"

    pair: Mapped[str] = mapped_column(String(64), primary_key=True)
    paused: Mapped[bool]
    reason: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))  # user | auto
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class MarginTransferRow(Base):
    """A margin transfer of the liquidation guard or the collateral keeper: stored as an
    intent before it is sent."""

    __tablename__ = "margin_transfers"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    decision_id: Mapped[str] = mapped_column(ForeignKey("decisions.id"), unique=True)
    pair: Mapped[str] = mapped_column(String(64), index=True)
    venue: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(64))  # a wallet transfer: its route
    amount: Mapped[Decimal] = mapped_column(Money)
    asset: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    venue_time: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # MoveKind: add_margin, remove_margin, to_futures, to_spot. Last, where revision 0010
    # added it (a schema built from these tables is the migrations' own, column order too).
    kind: Mapped[str] = mapped_column(String(16), server_default="add_margin")
