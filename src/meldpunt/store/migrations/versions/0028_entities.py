"""link analysis (#13 part "links"): entities and where they were found

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_HEX = sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "entities",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("key", _HEX, nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entities")),
        sa.UniqueConstraint("key", name=op.f("uq_entities_key")),
    )
    with op.batch_alter_table("entities", schema=None) as batch_op:
        batch_op.create_index("ix_entities_kind", ["kind", "id"], unique=False)
    for table, column, parent in (
        ("entity_reports", "report_id", "reports"),
        ("entity_items", "item_id", "items"),
    ):
        op.create_table(
            table,
            sa.Column("entity_id", _ID, nullable=False),
            sa.Column(column, _ID, nullable=False),
            sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
            sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
            sa.ForeignKeyConstraint(
                ["entity_id"],
                ["entities.id"],
                name=op.f(f"fk_{table}_entity_id_entities"),
                ondelete="CASCADE",
            ),
            sa.ForeignKeyConstraint(
                [column], [f"{parent}.id"], name=op.f(f"fk_{table}_{column}_{parent}"), ondelete="CASCADE"
            ),
            sa.PrimaryKeyConstraint("entity_id", column, name=op.f(f"pk_{table}")),
        )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column], unique=False)


def downgrade() -> None:
    for table, column in (("entity_items", "item_id"), ("entity_reports", "report_id")):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_{column}"))
        op.drop_table(table)
    with op.batch_alter_table("entities", schema=None) as batch_op:
        batch_op.drop_index("ix_entities_kind")
    op.drop_table("entities")
