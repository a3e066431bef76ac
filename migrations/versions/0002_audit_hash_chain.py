"""audit hash chain

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 05:50:00.000000

Adds ``prev_hash`` and ``hash`` to ``audit_events`` and chains the rows already there,
in id order, so ``hedgebot audit verify`` passes on an upgraded database.

The hashes come from ``bot.store.audit_chain`` itself rather than a frozen copy: unlike
a column type, the canonical form can never change in place (every stored hash depends
on it), so the module is the one definition both this migration and ``verify`` must
agree on; it is pure (hashlib and json only), so importing it pulls in no app state.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from bot.store.audit_chain import CHAIN_LOCK_KEY, GENESIS_HASH, event_hash

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000

AUDIT = sa.table(
    "audit_events",
    sa.column("id", sa.BigInteger()),
    sa.column("ts", sa.DateTime(timezone=True)),
    sa.column("pair", sa.String()),
    sa.column("kind", sa.String()),
    sa.column("summary", sa.Text()),
    sa.column("decision_id", sa.String()),
    sa.column("data", sa.JSON()),
    sa.column("prev_hash", sa.String()),
    sa.column("hash", sa.String()),
)


def _utc(ts: datetime) -> datetime:
    # SQLite keeps the UTC time without its zone.
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


def _chain_existing_rows() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # The same lock the application takes before appending.
        bind.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK_KEY})
    prev, last_id = GENESIS_HASH, 0
    update = (
        sa.update(AUDIT)
        .where(AUDIT.c.id == sa.bindparam("row_id"))
        .values(prev_hash=sa.bindparam("new_prev"), hash=sa.bindparam("new_hash"))
    )
    while True:
        rows = bind.execute(
            sa.select(AUDIT).where(AUDIT.c.id > last_id).order_by(AUDIT.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        values: list[dict[str, Any]] = []
        for row in rows:
            digest = event_hash(
                row.id,
                _utc(row.ts),
                row.kind,
                row.pair,
                row.summary,
                row.decision_id,
                row.data,
                prev,
            )
            values.append({"row_id": row.id, "new_prev": prev, "new_hash": digest})
            prev, last_id = digest, row.id
        bind.execute(update, values)


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    _chain_existing_rows()
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
