"""bank_entries.media_group: which Media record (or CSV row) of its import an entry came from

An export puts back together exactly the hashes one Media record held (a VICS round trip keeps
files whole), instead of regrouping them by MediaID and labels.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bank_entries") as batch:
        batch.add_column(sa.Column("media_group", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bank_entries") as batch:
        batch.drop_column("media_group")
