"""Tables of triage: analysts' claims on items, every opinion given (first, second, resolution,
correction) and each item's progress to a final classification. ``items.state`` stays
``needs_review`` until the classification is final (then ``classified``): the steps towards it live
here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from meldpunt.domain.triage import Stage
from meldpunt.store.models import Base, BigId


class TriageClaim(Base):
    """One analyst working on one item until ``expires_at``; an expired claim frees the item."""

    __tablename__ = "triage_claims"
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    user: Mapped[str] = mapped_column(String(120))
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TriageClassification(Base):
    """An opinion on an item, never changed: role is first, second, resolution or correction."""

    __tablename__ = "triage_classifications"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    user: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))
    #: the classification as canonical JSON (scheme values, flags, series)
    classification: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


#: stages of ``triage_status`` (the domain's ``Stage``; stored as its string)
SECOND, DISAGREEMENT, FINAL = Stage.SECOND, Stage.DISAGREEMENT, Stage.FINAL


class TriageStatus(Base):
    """Where an item stands: ``second`` (awaiting a second opinion), ``disagreement`` or ``final``."""

    __tablename__ = "triage_status"
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    stage: Mapped[str] = mapped_column(String(16), index=True)
    #: the final classification (canonical JSON); "" until final
    final: Mapped[str] = mapped_column(Text, default="")
    illegal: Mapped[bool] = mapped_column(Boolean, default=False)
    #: the final classification's hashes still have to be written to the hotline's own bank
    bank_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    #: the own-bank import that holds them (None: not banked)
    bank_import_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    finalized_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RevealGrantUse(Base):
    """A reveal grant that has rendered its image: a second use of the same grant is refused by
    this table's key, whichever web process it reaches. Rows older than a grant's life are
    deleted as new ones come."""

    __tablename__ = "reveal_grant_uses"
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
