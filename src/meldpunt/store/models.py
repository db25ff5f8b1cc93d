"""SQLAlchemy tables of the engine: banks (hash lists), their entries, label sets, import provenance.

Entries are stored by ``key``: the canonical hex for hash types, and the SHA-256 of the value for the
types whose value is long (a vPDQ frame list, a PhotoDNA vector) — kept whole in ``payload`` — so one
unique index serves lookups and de-duplication on SQLite and on PostgreSQL (whose B-tree rows are
limited to a few kB). Identical label sets are stored once: a 10-million-line list that shares one
set of labels costs one row of labels, not ten million.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; BigInteger elsewhere.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# Hex keys need no linguistic collation: byte order makes PostgreSQL's index several times cheaper.
HexKey = String(64).with_variant(String(64, collation="C"), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Bank(Base):
    __tablename__ = "banks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    #: auto: a match classifies with the entry's labels; hint: shown to analysts; ignore: benign list.
    policy: Mapped[str] = mapped_column(String(16), default="auto")
    #: PDQ distance threshold for this bank; NULL: the global default (settings.pdq_threshold).
    pdq_threshold: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LabelSet(Base):
    __tablename__ = "label_sets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: SHA-256 of the canonical JSON, so equal label sets are found without comparing text.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    labels: Mapped[str] = mapped_column(Text)


class BankImport(Base):
    """Provenance of one import: what file, which bytes, when, how many entries."""

    __tablename__ = "bank_imports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id", ondelete="CASCADE"), index=True)
    source_name: Mapped[str] = mapped_column(Text)
    source_sha256: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(16))
    labels: Mapped[str] = mapped_column(Text, default="{}")
    replaced: Mapped[bool] = mapped_column(Boolean, default=False)
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    entry_count: Mapped[int] = mapped_column(Integer, default=0)
    skipped_count: Mapped[int] = mapped_column(Integer, default=0)


class BankEntry(Base):
    __tablename__ = "bank_entries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id", ondelete="CASCADE"), index=True)
    signal_type: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(HexKey)
    payload: Mapped[str | None] = mapped_column(Text, nullable=True)
    label_set_id: Mapped[int] = mapped_column(ForeignKey("label_sets.id"))
    import_id: Mapped[int | None] = mapped_column(
        ForeignKey("bank_imports.id", ondelete="SET NULL"), nullable=True, index=True
    )
    #: the Media record (VICS) or row (CSV, line lists) of import ``import_id`` this hash came from:
    #: entries with the same (import_id, media_group) describe one file and are exported together
    media_group: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    # (signal_type, key) first: the one index serves "is this hash in any bank?" and uniqueness.
    __table_args__ = (
        UniqueConstraint("signal_type", "key", "bank_id", name="uq_bank_entries_signal_key_bank"),
    )


class Meta(Base):
    """Counters other processes watch, e.g. ``pdq_epoch``: bumped when PDQ entries are deleted, so a
    saved index knows it can no longer be brought up to date by appending."""

    __tablename__ = "meta"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
