"""outcomes: the banks' change counter, the rematch watermark, and classified items

``meta`` gains ``banks_version`` (bumped in every transaction that changes what a bank matches:
imports, deletions, settings) and ``rematched_version`` (the ``banks_version`` the items waiting
for review were last matched again at), both seeded so that two first bumps never race on an
insert. Items whose classification is final move from ``needs_review`` to ``classified``.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

COUNTERS = ("banks_version", "rematched_version")


def upgrade() -> None:
    meta = sa.table("meta", sa.column("name", sa.String), sa.column("value", sa.BigInteger))
    conn = op.get_bind()
    have = set(conn.execute(sa.select(meta.c.name).where(meta.c.name.in_(COUNTERS))).scalars())
    rows = [{"name": n, "value": 0} for n in COUNTERS if n not in have]
    if rows:
        op.bulk_insert(meta, rows)
    op.execute(
        "UPDATE items SET state = 'classified' WHERE state = 'needs_review' AND id IN "
        "(SELECT item_id FROM triage_status WHERE stage = 'final')"
    )


def downgrade() -> None:
    op.execute("UPDATE items SET state = 'needs_review' WHERE state = 'classified'")
    op.execute("DELETE FROM meta WHERE name IN ('banks_version', 'rematched_version')")
