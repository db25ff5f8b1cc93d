"""re-checks (#10 part "recheck"): the first miss of a streak, transient-error count and the claim
token of the re-check job on takedowns

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("takedowns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("first_miss_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("check_errors", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("check_round", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("takedowns", schema=None) as batch_op:
        batch_op.drop_column("check_round")
        batch_op.drop_column("check_errors")
        batch_op.drop_column("first_miss_at")
