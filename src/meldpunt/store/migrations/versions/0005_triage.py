"""triage: claims, classifications, status

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "triage_claims",
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user", sa.String(length=120), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_triage_claims_item_id_items"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_triage_claims")),
    )
    op.create_table(
        "triage_classifications",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("classification", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name=op.f("fk_triage_classifications_item_id_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_triage_classifications")),
    )
    op.create_index(
        op.f("ix_triage_classifications_item_id"), "triage_classifications", ["item_id"], unique=False
    )
    op.create_table(
        "triage_status",
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("final", sa.Text(), nullable=False),
        sa.Column("illegal", sa.Boolean(), nullable=False),
        sa.Column("bank_pending", sa.Boolean(), nullable=False),
        sa.Column("bank_import_id", sa.Integer(), nullable=True),
        sa.Column("finalized_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_triage_status_item_id_items"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_triage_status")),
    )
    op.create_index(op.f("ix_triage_status_stage"), "triage_status", ["stage"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_triage_status_stage"), table_name="triage_status")
    op.drop_table("triage_status")
    op.drop_index(op.f("ix_triage_classifications_item_id"), table_name="triage_classifications")
    op.drop_table("triage_classifications")
    op.drop_table("triage_claims")
