"""forwarding between meldpunt instances (#11 part "forward"): forwards out and the statuses the
partner sent back; forwards in and the statuses we sent back

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "forwards_out",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("takedown_id", _ID, sa.ForeignKey("takedowns.id", ondelete="CASCADE"), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("partner", sa.String(64), nullable=False),
        sa.Column("reference", sa.String(64), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attention", sa.String(24), nullable=False),
        sa.Column("attention_reason", sa.Text(), nullable=False),
        sa.Column("last_status", sa.String(24), nullable=False),
        sa.Column("last_status_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("takedown_id"),
        sa.UniqueConstraint("reference"),
    )
    op.create_index("ix_forwards_out_item_id", "forwards_out", ["item_id"])
    op.create_index("ix_forwards_out_state", "forwards_out", ["state"])
    op.create_index("ix_forwards_out_attention", "forwards_out", ["attention"])
    op.create_table(
        "forward_statuses",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("forward_id", _ID, sa.ForeignKey("forwards_out.id", ondelete="CASCADE"), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.UniqueConstraint("forward_id", "status", name="uq_forward_statuses_forward_status"),
    )
    op.create_index("ix_forward_statuses_forward_id", "forward_statuses", ["forward_id"])
    op.create_table(
        "forwards_in",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("reference", sa.String(64), nullable=False),
        sa.Column("item_id", _ID, sa.ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
        sa.Column("report_id", sa.BigInteger(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("classification", sa.Text(), nullable=False),
        sa.Column("hosting", sa.Text(), nullable=False),
        sa.Column("media", sa.Text(), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("sender", "reference", name="uq_forwards_in_sender_reference"),
    )
    op.create_index("ix_forwards_in_item_id", "forwards_in", ["item_id"])
    op.create_index("ix_forwards_in_open", "forwards_in", ["done", "id"])
    op.create_table(
        "forward_in_statuses",
        sa.Column("forward_id", _ID, sa.ForeignKey("forwards_in.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("status", sa.String(24), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("forward_in_statuses")
    op.drop_index("ix_forwards_in_open", table_name="forwards_in")
    op.drop_index("ix_forwards_in_item_id", table_name="forwards_in")
    op.drop_table("forwards_in")
    op.drop_index("ix_forward_statuses_forward_id", table_name="forward_statuses")
    op.drop_table("forward_statuses")
    op.drop_index("ix_forwards_out_attention", table_name="forwards_out")
    op.drop_index("ix_forwards_out_state", table_name="forwards_out")
    op.drop_index("ix_forwards_out_item_id", table_name="forwards_out")
    op.drop_table("forwards_out")
