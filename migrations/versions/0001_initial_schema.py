"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 02:45:49.120690
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Frozen copies of the column types at this revision: the app's types may change later.
# Money: exact decimals (NUMERIC on Postgres, text on SQLite, whose NUMERIC is a float).
MONEY = sa.Numeric(38, 18).with_variant(sa.String(64), "sqlite")
AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "audit_events",
        sa.Column("id", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pair", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("decision_id", sa.String(length=32), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_pair"), ["pair"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_ts"), ["ts"], unique=False)

    op.create_table(
        "funding_payments",
        sa.Column("id", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("pair", sa.String(length=64), nullable=False),
        sa.Column("venue", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("asset", sa.String(length=16), nullable=False),
        sa.Column("rate", MONEY, nullable=True),
        sa.Column("position_qty", MONEY, nullable=True),
        sa.Column("mark_price", MONEY, nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funding_payments")),
        sa.UniqueConstraint("venue", "symbol", "paid_at", name="uq_funding_venue_symbol_time"),
    )
    with op.batch_alter_table("funding_payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_funding_payments_pair"), ["pair"], unique=False)

    op.create_table(
        "observations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("pair", sa.String(length=64), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("spot_symbol", sa.String(length=64), nullable=False),
        sa.Column("perp_symbol", sa.String(length=64), nullable=False),
        sa.Column("spot_qty", MONEY, nullable=False),
        sa.Column("perp_qty", MONEY, nullable=False),
        sa.Column("unreflected_qty", MONEY, nullable=False),
        sa.Column("price", MONEY, nullable=False),
        sa.Column("bid", MONEY, nullable=False),
        sa.Column("ask", MONEY, nullable=False),
        sa.Column("funding_rate", MONEY, nullable=False),
        sa.Column("entry_price", MONEY, nullable=True),
        sa.Column("liquidation_price", MONEY, nullable=True),
        sa.Column("unrealized_pnl", MONEY, nullable=True),
        sa.Column("leverage", MONEY, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_observations")),
    )
    with op.batch_alter_table("observations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_observations_pair"), ["pair"], unique=False)

    op.create_table(
        "paper_accounts",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_paper_accounts")),
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("pair", sa.String(length=64), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("observation_id", sa.String(length=32), nullable=False),
        sa.Column("target_ratio", MONEY, nullable=False),
        sa.Column("ratio", MONEY, nullable=True),
        sa.Column("drift_qty", MONEY, nullable=False),
        sa.Column("band", MONEY, nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("verdict", sa.Text(), nullable=True),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["observation_id"],
            ["observations.id"],
            name=op.f("fk_decisions_observation_id_observations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
    )
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.create_index("ix_decisions_pair_created_at", ["pair", "created_at"], unique=False)

    op.create_table(
        "orders",
        sa.Column("id", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("decision_id", sa.String(length=32), nullable=False),
        sa.Column("pair", sa.String(length=64), nullable=False),
        sa.Column("venue", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("order_type", sa.String(length=16), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("reduce_only", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("exchange_order_id", sa.String(length=64), nullable=True),
        sa.Column("filled", MONEY, nullable=False),
        sa.Column("average_price", MONEY, nullable=True),
        sa.Column("fee", MONEY, nullable=False),
        sa.Column("fee_asset", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decisions.id"], name=op.f("fk_orders_decision_id_decisions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("client_order_id", name=op.f("uq_orders_client_order_id")),
        sa.UniqueConstraint("decision_id", name=op.f("uq_orders_decision_id")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_pair"), ["pair"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_status"), ["status"], unique=False)

    op.create_table(
        "fills",
        sa.Column("id", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("order_id", AUTO_ID, nullable=False),
        sa.Column("trade_id", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("price", MONEY, nullable=False),
        sa.Column("fee", MONEY, nullable=False),
        sa.Column("fee_asset", sa.String(length=16), nullable=False),
        sa.Column("filled_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_fills_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fills")),
        sa.UniqueConstraint("order_id", "trade_id", name="uq_fills_order_trade"),
    )
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fills_order_id"), ["order_id"], unique=False)

    op.create_table(
        "paper_orders",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("order", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", "client_order_id", name=op.f("pk_paper_orders")),
    )


def downgrade() -> None:
    op.drop_table("paper_orders")

    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fills_order_id"))

    op.drop_table("fills")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_status"))
        batch_op.drop_index(batch_op.f("ix_orders_pair"))

    op.drop_table("orders")
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_decisions_pair_created_at")

    op.drop_table("decisions")
    op.drop_table("paper_accounts")
    with op.batch_alter_table("observations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_observations_pair"))

    op.drop_table("observations")
    with op.batch_alter_table("funding_payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_funding_payments_pair"))

    op.drop_table("funding_payments")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_ts"))
        batch_op.drop_index(batch_op.f("ix_audit_events_pair"))
        batch_op.drop_index(batch_op.f("ix_audit_events_kind"))

    op.drop_table("audit_events")
