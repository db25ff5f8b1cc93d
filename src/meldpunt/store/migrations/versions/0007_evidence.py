"""evidence store: media kept as evidence under their own key and retention

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence_blobs",
        sa.Column("medium_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("kept_by", sa.String(length=120), nullable=False),
        sa.Column("kept_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retain_until", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_evidence_blobs_item_id_items")),
        sa.ForeignKeyConstraint(["medium_id"], ["media.id"], name=op.f("fk_evidence_blobs_medium_id_media")),
        sa.PrimaryKeyConstraint("medium_id", name=op.f("pk_evidence_blobs")),
    )
    op.create_index(op.f("ix_evidence_blobs_item_id"), "evidence_blobs", ["item_id"], unique=False)
    op.create_index(op.f("ix_evidence_blobs_retain_until"), "evidence_blobs", ["retain_until"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_evidence_blobs_retain_until"), table_name="evidence_blobs")
    op.drop_index(op.f("ix_evidence_blobs_item_id"), table_name="evidence_blobs")
    op.drop_table("evidence_blobs")
