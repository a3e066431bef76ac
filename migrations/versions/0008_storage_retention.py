"""storage: the pairs' last cycle, audit checkpoints of pruned runs, read indexes

Holds that change nothing are no longer stored each cycle (heartbeats instead), so the
latest decision may be minutes old: ``pair_cycles`` keeps, per pair, when its last cycle
ran (what ``status`` shows as the last cycle). ``db prune`` removes old observations,
decisions and the audit events of holds; ``audit_checkpoints`` records, for each kept
event whose predecessors were removed, the hash of the last removed one, so the chain
still verifies. The indexes serve the read commands (latest decision per pair, audit by
pair) on a long history.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = sa.DateTime(timezone=True)
AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pair_cycles",
        sa.Column("pair", sa.String(64), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("recorded", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("pair", name="pk_pair_cycles"),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("event_id", AUTO_ID, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("pruned_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_audit_checkpoints"),
    )
    op.create_index("ix_decisions_pair_id", "decisions", ["pair", "id"])
    op.create_index("ix_observations_pair_id", "observations", ["pair", "id"])
    op.create_index("ix_observations_observed_at", "observations", ["observed_at"])
    op.create_index("ix_audit_events_pair_id", "audit_events", ["pair", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_pair_id", table_name="audit_events")
    op.drop_index("ix_observations_observed_at", table_name="observations")
    op.drop_index("ix_observations_pair_id", table_name="observations")
    op.drop_index("ix_decisions_pair_id", table_name="decisions")
    op.drop_table("audit_checkpoints")
    op.drop_table("pair_cycles")
