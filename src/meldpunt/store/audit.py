"""Tables of the tamper-evident audit log: the append-only chain of entries and its one-row head.

Each entry carries the SHA-256 of the one before (``prev_hash``) and its own (``hash``), computed by
:mod:`meldpunt.audit` over a canonical serialisation of the entry. ``audit_head`` holds the newest
``(seq, hash)``: an appender first UPDATEs that row, which takes the database's write lock on SQLite
and a row lock on PostgreSQL, so appends are serialised and the chain cannot fork. The primary key on
``seq`` is the last line of defence against two entries with one number.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from meldpunt.store.models import Base

#: ``prev_hash`` of the first entry, and the head of an empty log.
GENESIS_HASH = "0" * 64
#: The one row of ``audit_head``.
HEAD_ID = 1


class AuditEntryRow(Base):
    __tablename__ = "audit_log"
    #: 1, 2, 3 ... with no gaps; assigned under the head lock, never by the database.
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: a user name, "system" or "cli:<user>"
    actor: Mapped[str] = mapped_column(String(200))
    #: a short dotted name: "item.reveal", "bank.import"
    action: Mapped[str] = mapped_column(String(100))
    #: what it was done to: "item:42", "bank:ncmec-pdq"
    subject: Mapped[str] = mapped_column(String(200), index=True)
    #: canonical JSON (sorted keys, no spaces): exactly the text that was hashed
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The newest entry's ``(seq, hash)``, one row (id 1): the lock appends take, and what
    ``verify`` compares the chain's end with."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
