"""api_tokens.scopes: what a token may do

Tokens made before scopes existed could report and match, and also read /internal/items (every
item's URL, the public's anonymous reports included). They keep what partners use them for,
``reports match``, and lose ``internal:read``: nothing in the old design meant a partner's token to
read the hotline's whole item list, and the operator can issue a token with that scope by name.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(
            sa.Column("scopes", sa.String(length=200), nullable=False, server_default="reports match")
        )
    with op.batch_alter_table("api_tokens") as batch:
        batch.alter_column("scopes", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("scopes")
