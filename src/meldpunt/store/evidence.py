"""The table of the evidence store: media kept as evidence by a classification, encrypted under the
evidence key, each with its reason, who kept it and until when (see ``stores.evidence``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from meldpunt.store.models import Base


class EvidenceBlob(Base):
    """Bytes of a medium kept as evidence, encrypted (AES-GCM); deleted after ``retain_until``."""

    __tablename__ = "evidence_blobs"
    # No ON DELETE CASCADE: a medium held as evidence cannot be deleted before its blob is purged.
    medium_id: Mapped[int] = mapped_column(ForeignKey("media.id"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    #: SHA-256 (hex) of the plaintext: shows an export is the bytes that were kept
    sha256: Mapped[str] = mapped_column(String(64))
    #: the classification flag(s) that kept it, comma-separated
    reason: Mapped[str] = mapped_column(Text)
    #: the user whose decision kept it
    kept_by: Mapped[str] = mapped_column(String(120))
    kept_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    retain_until: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
