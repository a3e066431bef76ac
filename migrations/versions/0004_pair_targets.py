"""pair targets set at run time (hedgebot set-target)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Frozen copy of the Money type at this revision.
MONEY = sa.Numeric(38, 18).with_variant(sa.String(64), "sqlite")

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pair_targets",
        sa.Column("pair", sa.String(length=64), nullable=False),
        sa.Column("ratio", MONEY, nullable=True),
        sa.Column("outlook", sa.String(length=32), nullable=True),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pair", name=op.f("pk_pair_targets")),
    )


def downgrade() -> None:
    op.drop_table("pair_targets")
