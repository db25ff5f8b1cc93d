"""review_contents: one encrypted copy per distinct content awaiting review, referenced by media

Existing blobs (one per medium, encrypted with the medium's id as associated data) become contents
keyed "medium:<id>" with one reference each; the review store still reads them. New contents are
keyed by a keyed digest of their bytes and shared by every medium that shows them.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_MEDIUM_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "review_contents",
        sa.Column("content_key", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("refs", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("content_key", name=op.f("pk_review_contents")),
    )
    op.execute(
        "INSERT INTO review_contents (content_key, nonce, ciphertext, refs, created_at)"
        " SELECT 'medium:' || CAST(medium_id AS VARCHAR(20)), nonce, ciphertext, 1, created_at"
        " FROM review_blobs"
    )
    with op.batch_alter_table("review_blobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_key", sa.String(length=64), nullable=True))
    op.execute("UPDATE review_blobs SET content_key = 'medium:' || CAST(medium_id AS VARCHAR(20))")
    with op.batch_alter_table("review_blobs", schema=None) as batch_op:
        batch_op.alter_column("content_key", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column("nonce")
        batch_op.drop_column("ciphertext")
        batch_op.create_index(batch_op.f("ix_review_blobs_content_key"), ["content_key"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_review_blobs_content_key_review_contents"),
            "review_contents",
            ["content_key"],
            ["content_key"],
        )


def downgrade() -> None:
    # Contents shared by digest cannot go back to per-medium blobs without the review key (their
    # associated data names the content, not the medium): only the per-medium ones are kept.
    with op.batch_alter_table("review_blobs", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_review_blobs_content_key_review_contents"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_review_blobs_content_key"))
        batch_op.add_column(sa.Column("nonce", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("ciphertext", sa.LargeBinary(), nullable=True))
    op.execute(
        "UPDATE review_blobs SET"
        " nonce = (SELECT c.nonce FROM review_contents c WHERE c.content_key = review_blobs.content_key),"
        " ciphertext = (SELECT c.ciphertext FROM review_contents c"
        " WHERE c.content_key = review_blobs.content_key)"
        " WHERE content_key = 'medium:' || CAST(medium_id AS VARCHAR(20))"
    )
    op.execute("DELETE FROM review_blobs WHERE nonce IS NULL")
    with op.batch_alter_table("review_blobs", schema=None) as batch_op:
        batch_op.alter_column("nonce", existing_type=sa.LargeBinary(), nullable=False)
        batch_op.alter_column("ciphertext", existing_type=sa.LargeBinary(), nullable=False)
        batch_op.drop_column("content_key")
    op.drop_table("review_contents")
