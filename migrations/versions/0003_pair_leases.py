"""pair leases and daemon heartbeats, so several daemons can share one database

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 05:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

TOKEN = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pair_leases",
        sa.Column("pair", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=True),
        sa.Column("token", TOKEN, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pair", name=op.f("pk_pair_leases")),
    )
    op.create_table(
        "daemon_instances",
        sa.Column("instance_id", sa.String(length=128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", name=op.f("pk_daemon_instances")),
    )
    with op.batch_alter_table("daemon_instances", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_daemon_instances_heartbeat_at"), ["heartbeat_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("daemon_instances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_daemon_instances_heartbeat_at"))
    op.drop_table("daemon_instances")
    op.drop_table("pair_leases")
