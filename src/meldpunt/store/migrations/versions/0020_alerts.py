"""urgent alerts (#10 part "alerts"): one alert per item, enforced by a unique index; a partial
index on the urgent items for the alerts tick

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_item_id"))
        batch_op.create_index(batch_op.f("ix_alerts_item_id"), ["item_id"], unique=True)
    urgent = sa.text("urgent IS true")
    op.create_index(
        "ix_items_urgent_updated",
        "items",
        ["updated_at"],
        unique=False,
        postgresql_where=urgent,
        sqlite_where=sa.text("urgent IS 1"),
    )


def downgrade() -> None:
    op.drop_index("ix_items_urgent_updated", table_name="items")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_item_id"))
        batch_op.create_index(batch_op.f("ix_alerts_item_id"), ["item_id"], unique=False)
