"""wellness: defaults, preferences, viewing time

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wellness_defaults",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("blur", sa.Boolean(), nullable=False),
        sa.Column("greyscale", sa.Boolean(), nullable=False),
        sa.Column("thumb_size", sa.Integer(), nullable=False),
        sa.Column("daily_limit_minutes", sa.Integer(), nullable=False),
        sa.Column("break_every_minutes", sa.Integer(), nullable=False),
        sa.Column("block_reveal_over_limit", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(length=120), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wellness_defaults")),
    )
    op.create_table(
        "wellness_prefs",
        sa.Column("user", sa.String(length=120), nullable=False),
        sa.Column("blur", sa.Boolean(), nullable=True),
        sa.Column("greyscale", sa.Boolean(), nullable=True),
        sa.Column("thumb_size", sa.Integer(), nullable=True),
        sa.Column("daily_limit_minutes", sa.Integer(), nullable=True),
        sa.Column("break_every_minutes", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user", name=op.f("pk_wellness_prefs")),
    )
    op.create_table(
        "wellness_viewing",
        sa.Column("user", sa.String(length=120), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("user", "day", name=op.f("pk_wellness_viewing")),
    )


def downgrade() -> None:
    op.drop_table("wellness_viewing")
    op.drop_table("wellness_prefs")
    op.drop_table("wellness_defaults")
