"""observations: the spot price and the contract size they were made with

The report values a basis pair's spot at the spot's own price (not the dated future's) and
counts fills, stored in contracts, in coins (contracts x contract size). Rows stored before
this revision have neither: NULL, which the report says (spot valued at the contract's
price) or takes as size 1 (what every earlier report assumed).

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# A frozen copy of the money type at this revision (NUMERIC on Postgres, text on SQLite).
MONEY = sa.Numeric(38, 18).with_variant(sa.String(64), "sqlite")

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("observations", sa.Column("spot_price", MONEY, nullable=True))
    op.add_column("observations", sa.Column("contract_size", MONEY, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("observations") as batch:
        batch.drop_column("contract_size")
        batch.drop_column("spot_price")
