"""reveal_grant_uses: a reveal grant renders once, across every web process

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reveal_grant_uses",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce"),
    )
    op.create_index("ix_reveal_grant_uses_used_at", "reveal_grant_uses", ["used_at"])


def downgrade() -> None:
    op.drop_index("ix_reveal_grant_uses_used_at", table_name="reveal_grant_uses")
    op.drop_table("reveal_grant_uses")
