"""margin transfers: the liquidation guard's margin moves, stored before they are sent

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Frozen copies of the column types at this revision (see 0001).
MONEY = sa.Numeric(38, 18).with_variant(sa.String(64), "sqlite")
AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "margin_transfers",
        sa.Column("id", AUTO_ID, autoincrement=True, nullable=False),
        # Derived from the decision: the same decision always gives the same id.
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("decision_id", sa.String(length=32), nullable=False),
        sa.Column("pair", sa.String(length=64), nullable=False),
        sa.Column("venue", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("asset", sa.String(length=16), nullable=False),
        # intent | sent | unknown | done | failed
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        # The venue's time of the history entry matched to it (a looked-up transfer).
        sa.Column("venue_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name=op.f("fk_margin_transfers_decision_id_decisions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_margin_transfers")),
        sa.UniqueConstraint("client_id", name=op.f("uq_margin_transfers_client_id")),
        sa.UniqueConstraint("decision_id", name=op.f("uq_margin_transfers_decision_id")),
    )
    with op.batch_alter_table("margin_transfers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_margin_transfers_pair"), ["pair"], unique=False)
        batch_op.create_index(batch_op.f("ix_margin_transfers_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("margin_transfers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_margin_transfers_state"))
        batch_op.drop_index(batch_op.f("ix_margin_transfers_pair"))
    op.drop_table("margin_transfers")
