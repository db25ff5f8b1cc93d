"""survivors across borders (#12 part "abroad"): references sent, facts back, hashes received

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_HEX = sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql")


def _case_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["case_id"],
        ["survivor_cases.id"],
        name=op.f(f"fk_{table}_case_id_survivor_cases"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "survivor_refs_out",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("case_id", _ID, nullable=False),
        sa.Column("partner", sa.String(length=120), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _case_fk("survivor_refs_out"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survivor_refs_out")),
        sa.UniqueConstraint("partner", "ref", name="uq_survivor_refs_out_partner_ref"),
    )
    with op.batch_alter_table("survivor_refs_out", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_survivor_refs_out_case_id"), ["case_id"], unique=False)
    op.create_table(
        "survivor_facts_abroad",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("case_id", _ID, nullable=False),
        sa.Column("partner", sa.String(length=120), nullable=False),
        sa.Column("partner_country", sa.String(length=8), nullable=False),
        sa.Column("finding", sa.String(length=64), nullable=False),
        sa.Column("fact", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("country", sa.String(length=8), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        _case_fk("survivor_facts_abroad"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survivor_facts_abroad")),
        sa.UniqueConstraint("partner", "finding", "fact", name="uq_survivor_facts_abroad_finding_fact"),
    )
    with op.batch_alter_table("survivor_facts_abroad", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_survivor_facts_abroad_case_id"), ["case_id"], unique=False)
    op.create_table(
        "survivor_hashes_in",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("partner", sa.String(length=120), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("signal_type", sa.String(length=16), nullable=False),
        sa.Column("value", _HEX, nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survivor_hashes_in")),
        sa.UniqueConstraint("partner", "ref", "signal_type", "value", name="uq_survivor_hashes_in_ref_value"),
    )
    with op.batch_alter_table("survivor_hashes_in", schema=None) as batch_op:
        batch_op.create_index("ix_survivor_hashes_in_signal_value", ["signal_type", "value"], unique=False)
    op.create_table(
        "survivor_links_in",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("partner", sa.String(length=120), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("medium_id", _ID, nullable=False),
        sa.Column("item_id", _ID, nullable=False),
        sa.Column("matched_by", sa.String(length=16), nullable=False),
        sa.Column("distance", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_survivor_links_in_item_id_items"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["medium_id"], ["media.id"], name=op.f("fk_survivor_links_in_medium_id_media"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survivor_links_in")),
        sa.UniqueConstraint("partner", "ref", "medium_id", name="uq_survivor_links_in_ref_medium"),
    )
    with op.batch_alter_table("survivor_links_in", schema=None) as batch_op:
        batch_op.create_index("ix_survivor_links_in_partner_ref", ["partner", "ref"], unique=False)
        batch_op.create_index(batch_op.f("ix_survivor_links_in_item_id"), ["item_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_survivor_links_in_medium_id"), ["medium_id"], unique=False)
    op.create_table(
        "survivor_reports_out",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("partner", sa.String(length=120), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("finding", sa.String(length=64), nullable=False),
        sa.Column("fact", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survivor_reports_out")),
        sa.UniqueConstraint("partner", "ref", "finding", "fact", name="uq_survivor_reports_out_fact"),
    )


def downgrade() -> None:
    op.drop_table("survivor_reports_out")
    with op.batch_alter_table("survivor_links_in", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_survivor_links_in_medium_id"))
        batch_op.drop_index(batch_op.f("ix_survivor_links_in_item_id"))
        batch_op.drop_index("ix_survivor_links_in_partner_ref")
    op.drop_table("survivor_links_in")
    with op.batch_alter_table("survivor_hashes_in", schema=None) as batch_op:
        batch_op.drop_index("ix_survivor_hashes_in_signal_value")
    op.drop_table("survivor_hashes_in")
    with op.batch_alter_table("survivor_facts_abroad", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_survivor_facts_abroad_case_id"))
    op.drop_table("survivor_facts_abroad")
    with op.batch_alter_table("survivor_refs_out", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_survivor_refs_out_case_id"))
    op.drop_table("survivor_refs_out")
