"""notices (#10 part "notices"): one collecting notice per contact (a unique partial index, so
concurrent batching ticks cannot open two), and the reason a senior closed a notice by hand

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_reason", sa.Text(), nullable=False, server_default=""))
        batch_op.create_index(
            "ux_notices_collecting",
            ["contact_id"],
            unique=True,
            postgresql_where=sa.text("state = 'collecting'"),
            sqlite_where=sa.text("state = 'collecting'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index("ux_notices_collecting")
        batch_op.drop_column("closed_reason")
