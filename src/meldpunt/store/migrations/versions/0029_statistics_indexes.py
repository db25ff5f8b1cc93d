"""the statistics page's indexes (#13): figures of a period read only that period's rows

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-02

Each index leads with the timestamp a figure selects its period by (``reports.created_at``,
``items.created_at``, ``takedowns.removed_at``) and carries the few columns the figure reads, so
that SQLite answers from the index alone (no row looked up in the table) and a year's figures
read a year's rows, not the whole history.
"""

from __future__ import annotations

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

#: (index, table, columns): as declared on the tables (meldpunt.store.reports, .acting)
INDEXES = (
    ("ix_reports_created_at", "reports", ["created_at", "source", "urgent"]),
    ("ix_items_created_at", "items", ["created_at", "report_id"]),
    ("ix_items_state_created_at", "items", ["state", "created_at"]),
    ("ix_takedowns_removed_at", "takedowns", ["state", "removed_at"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
