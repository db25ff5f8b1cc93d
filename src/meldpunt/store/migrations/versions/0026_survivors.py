"""survivor cases (#12 part "survivor-store"): cases, their hashes, links to media, sign-in attempts

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_HEX = sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "survivor_cases",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("passphrase", sa.Text(), nullable=False),
        sa.Column("contact", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("consent_forward", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified_through", _ID, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survivor_cases")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_survivor_cases_code_hash")),
    )
    op.create_table(
        "survivor_hashes",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("case_id", _ID, nullable=False),
        sa.Column("signal_type", sa.String(length=16), nullable=False),
        sa.Column("value", _HEX, nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["survivor_cases.id"],
            name=op.f("fk_survivor_hashes_case_id_survivor_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survivor_hashes")),
        sa.UniqueConstraint("case_id", "signal_type", "value", name="uq_survivor_hashes_case"),
    )
    with op.batch_alter_table("survivor_hashes", schema=None) as batch_op:
        batch_op.create_index("ix_survivor_hashes_signal_value", ["signal_type", "value"], unique=False)
    op.create_table(
        "survivor_links",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("case_id", _ID, nullable=True),
        sa.Column("medium_id", _ID, nullable=False),
        sa.Column("item_id", _ID, nullable=False),
        sa.Column("matched_by", sa.String(length=16), nullable=False),
        sa.Column("distance", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["survivor_cases.id"],
            name=op.f("fk_survivor_links_case_id_survivor_cases"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_survivor_links_item_id_items"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["medium_id"], ["media.id"], name=op.f("fk_survivor_links_medium_id_media"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survivor_links")),
        sa.UniqueConstraint("case_id", "medium_id", name="uq_survivor_links_case_medium"),
    )
    with op.batch_alter_table("survivor_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_survivor_links_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_survivor_links_item_id"), ["item_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_survivor_links_medium_id"), ["medium_id"], unique=False)
    op.create_table(
        "survivor_attempts",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_survivor_attempts")),
    )


def downgrade() -> None:
    op.drop_table("survivor_attempts")
    with op.batch_alter_table("survivor_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_survivor_links_medium_id"))
        batch_op.drop_index(batch_op.f("ix_survivor_links_item_id"))
        batch_op.drop_index(batch_op.f("ix_survivor_links_case_id"))
    op.drop_table("survivor_links")
    with op.batch_alter_table("survivor_hashes", schema=None) as batch_op:
        batch_op.drop_index("ix_survivor_hashes_signal_value")
    op.drop_table("survivor_hashes")
    op.drop_table("survivor_cases")
