"""partners (#11 part "wire"): partner hotlines, their keys, messages out (ordered per partner) and
in (replay-proof), recent nonces

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "partners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("countries", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("removed_at", _TZ, nullable=True),
        sa.Column("next_seq", sa.BigInteger(), nullable=False),
        sa.Column("signs_with", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partners")),
        sa.UniqueConstraint("name", name=op.f("uq_partners_name")),
    )
    op.create_table(
        "partner_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("kid", sa.String(length=32), nullable=False),
        sa.Column("public", sa.String(length=64), nullable=False),
        sa.Column("added_at", _TZ, nullable=False),
        sa.Column("retired_at", _TZ, nullable=True),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_partner_keys_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_keys")),
        sa.UniqueConstraint("partner_id", "kid", name="uq_partner_keys_kid"),
    )
    op.create_index(op.f("ix_partner_keys_partner_id"), "partner_keys", ["partner_id"], unique=False)
    op.create_table(
        "partner_out",
        sa.Column("id", _BIGID, autoincrement=True, nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _TZ, nullable=True),
        sa.Column("failing_since", _TZ, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("delivered_at", _TZ, nullable=True),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_partner_out_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_out")),
        sa.UniqueConstraint("message_id", name=op.f("uq_partner_out_message_id")),
        sa.UniqueConstraint("partner_id", "key", name="uq_partner_out_key"),
        sa.UniqueConstraint("partner_id", "seq", name="uq_partner_out_seq"),
    )
    op.create_index(op.f("ix_partner_out_partner_id"), "partner_out", ["partner_id"], unique=False)
    op.create_index(op.f("ix_partner_out_state"), "partner_out", ["state"], unique=False)
    op.create_table(
        "partner_in",
        sa.Column("id", _BIGID, autoincrement=True, nullable=False),
        sa.Column("sender_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("sent_at", _TZ, nullable=False),
        sa.Column("received_at", _TZ, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sender_id"], ["partners.id"], name=op.f("fk_partner_in_sender_id_partners"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_in")),
        sa.UniqueConstraint("message_id", name=op.f("uq_partner_in_message_id")),
    )
    op.create_index(op.f("ix_partner_in_sender_id"), "partner_in", ["sender_id"], unique=False)
    op.create_table(
        "partner_nonces",
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("seen_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_partner_nonces")),
    )
    op.create_index(op.f("ix_partner_nonces_seen_at"), "partner_nonces", ["seen_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_partner_nonces_seen_at"), table_name="partner_nonces")
    op.drop_table("partner_nonces")
    op.drop_index(op.f("ix_partner_in_sender_id"), table_name="partner_in")
    op.drop_table("partner_in")
    op.drop_index(op.f("ix_partner_out_state"), table_name="partner_out")
    op.drop_index(op.f("ix_partner_out_partner_id"), table_name="partner_out")
    op.drop_table("partner_out")
    op.drop_index(op.f("ix_partner_keys_partner_id"), table_name="partner_keys")
    op.drop_table("partner_keys")
    op.drop_table("partners")
