"""transfer kinds: what a stored margin transfer moves

``kind`` says whether a row of ``margin_transfers`` adds margin to an isolated position
(every row before this revision: the liquidation guard's ``add_margin``), takes it out
(``remove_margin``), or moves quote between the account's spot and futures wallets
(``to_futures``, ``to_spot``: the collateral keeper's), so a transfer whose answer was
lost is looked up where the venue lists that kind.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "margin_transfers",
        sa.Column("kind", sa.String(length=16), nullable=False, server_default="add_margin"),
    )


def downgrade() -> None:
    with op.batch_alter_table("margin_transfers") as batch:
        batch.drop_column("kind")
