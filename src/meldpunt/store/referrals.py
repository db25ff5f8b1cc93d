"""Tables of police referrals (#11): each package made, the items it covers, how often it was
downloaded. The package's files live on disk (``settings.referral.dir``); the row keeps the
SHA-256 of its signed manifest, so a file handed over can be matched to its record."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from meldpunt.store.models import Base, BigId


class Referral(Base):
    """One referral package, made by a senior (or ``cli:<user>``) for one item or a chosen set."""

    __tablename__ = "referrals"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: the case reference on every page and file of the package (``RF-20261201-7Q3K9X``)
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    #: JSON list of the item ids, in the package's order
    items: Mapped[str] = mapped_column(Text, default="[]")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    created_by: Mapped[str] = mapped_column(String(200))
    #: SHA-256 of the signed manifest.json, and the id of the key that signed it
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    kid: Mapped[str] = mapped_column(String(32), default="")
    with_media: Mapped[bool] = mapped_column(Boolean, default=False)
    #: the package's folder (its zip beside it: ``<folder>.zip``)
    path: Mapped[str] = mapped_column(Text)
    zip_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    #: whether an urgent item is in it (the police's list shows those first)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    downloads: Mapped[int] = mapped_column(Integer, default=0)
    last_download_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_download_by: Mapped[str] = mapped_column(String(200), default="")


class ReferralItem(Base):
    """Which packages cover which items (the item page lists them)."""

    __tablename__ = "referral_items"
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True, index=True
    )
