"""the ICCAM bridge (#11 part "iccam"): links between our items and ICCAM reports/content, the export
plan with its attempts, actions read back from ICCAM, and the bridge's state

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "iccam_links",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("item_id", _ID, nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("report_id", sa.BigInteger(), nullable=True),
        sa.Column("content_id", sa.BigInteger(), nullable=True),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("hotline", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_iccam_links_item_id_items"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_iccam_links")),
        sa.UniqueConstraint("content_id", name=op.f("uq_iccam_links_content_id")),
        sa.UniqueConstraint("item_id", name=op.f("uq_iccam_links_item_id")),
    )
    op.create_table(
        "iccam_sends",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("item_id", _ID, nullable=False),
        sa.Column("what", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("unsure", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_iccam_sends_item_id_items"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_iccam_sends")),
        sa.UniqueConstraint("item_id", "what", name="uq_iccam_sends_item_what"),
    )
    with op.batch_alter_table("iccam_sends", schema=None) as batch_op:
        batch_op.create_index("ix_iccam_sends_state", ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_iccam_sends_item_id"), ["item_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_iccam_sends_next_attempt_at"), ["next_attempt_at"], unique=False)
    op.create_table(
        "iccam_seen",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("content_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("item_id", _ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_iccam_seen_item_id_items"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_iccam_seen")),
        sa.UniqueConstraint("content_id", "key", name="uq_iccam_seen_content_key"),
    )
    with op.batch_alter_table("iccam_seen", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_iccam_seen_item_id"), ["item_id"], unique=False)
    op.create_table(
        "iccam_state",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_iccam_state")),
    )


def downgrade() -> None:
    op.drop_table("iccam_state")
    with op.batch_alter_table("iccam_seen", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_iccam_seen_item_id"))
    op.drop_table("iccam_seen")
    with op.batch_alter_table("iccam_sends", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_iccam_sends_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_iccam_sends_item_id"))
        batch_op.drop_index("ix_iccam_sends_state")
    op.drop_table("iccam_sends")
    op.drop_table("iccam_links")
