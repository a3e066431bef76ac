"""report days: the report's sums per pair and UTC day, and the index its reads use

``report_days`` caches, per pair and whole UTC day, what the every-pair report needs of
that day's observations (the sums of its intervals' changes, its first and last
observation, counts), with the count and max id of the day's observations and fills it
was computed from; a report checks them and recomputes a day that changed. Not history:
an empty table gives the same reports. The index serves the report's series read pair by
pair in time order and the per-day check.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "report_days",
        sa.Column("pair", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("starts_at", UTC_TIME, nullable=False),
        sa.Column("ends_at", UTC_TIME, nullable=False),
        sa.Column("obs_count", sa.Integer(), nullable=False),
        sa.Column("obs_max_id", sa.String(32), nullable=False),
        sa.Column("fill_count", sa.Integer(), nullable=False),
        sa.Column("fill_max_id", sa.BigInteger(), nullable=False),
        sa.Column("unpriced_spot", sa.Integer(), nullable=False),
        sa.Column("intervals", sa.Integer(), nullable=False),
        sa.Column("unhedged", sa.Text(), nullable=False),
        sa.Column("unhedged_squares", sa.Text(), nullable=False),
        sa.Column("hedged", sa.Text(), nullable=False),
        sa.Column("hedged_squares", sa.Text(), nullable=False),
        sa.Column("first_point", sa.Text(), nullable=False),
        sa.Column("last_point", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("pair", "day", name="pk_report_days"),
    )
    op.create_index(
        "ix_observations_pair_observed_at_id", "observations", ["pair", "observed_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_observations_pair_observed_at_id", table_name="observations")
    op.drop_table("report_days")
