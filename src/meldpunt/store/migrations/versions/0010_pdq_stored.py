"""media.orientation, media.pdq_stored(_quality): the PDQ of an EXIF-oriented photo's stored pixels

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("media") as batch:
        batch.add_column(sa.Column("orientation", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("pdq_stored", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("pdq_stored_quality", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("media") as batch:
        batch.drop_column("pdq_stored_quality")
        batch.drop_column("pdq_stored")
        batch.drop_column("orientation")
