"""Tables of survivor cases (#12): a case (its code only as a keyed hash, its passphrase as argon2id,
its optional contact sealed), the hashes a survivor registered, the links from those hashes to the
media the walk found, and the sign-in attempts counted per keyed hash (never an address).

The survivor hashes are a table of their own matched beside the banks, not a bank: a bank's entries
carry labels, are exported, shared with partners and kept when a list is replaced, and its matches
classify; a survivor's hashes label nothing, belong to one person, and must vanish entirely when the
case is withdrawn (``ON DELETE CASCADE``), which a bank row shared by every case could not promise.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from meldpunt.store.models import Base, BigId, HexKey


class SurvivorCase(Base):
    """One registration. No name, no address of the person: the code's keyed hash finds it."""

    __tablename__ = "survivor_cases"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: HMAC-SHA256 of the case code under a key derived from the review key (the code is shown once)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: argon2id PHC string of the passphrase
    passphrase: Mapped[str] = mapped_column(Text)
    #: the contact address sealed with AES-GCM (the case id as associated data); "" when none
    contact: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(8), default="en")
    #: the survivor agreed that their hashes travel with forwarded items to partner hotlines
    consent_forward: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: how many facts (found items, and their timeline lines that make facts) the contact was
    #: last told about: news is a larger count
    notified_through: Mapped[int] = mapped_column(BigId, default=0)


class SurvivorHash(Base):
    """One registered hash (md5, sha256, pdq: canonical lower-case hex)."""

    __tablename__ = "survivor_hashes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("survivor_cases.id", ondelete="CASCADE"))
    signal_type: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(HexKey)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        UniqueConstraint("case_id", "signal_type", "value", name="uq_survivor_hashes_case"),
        Index("ix_survivor_hashes_signal_value", "signal_type", "value"),
    )


class SurvivorLink(Base):
    """A medium found to match a registered hash. On withdrawal ``case_id`` becomes NULL: the item
    keeps the fact that it once matched (its timeline line), nothing says whose."""

    __tablename__ = "survivor_links"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("survivor_cases.id", ondelete="SET NULL"), nullable=True, index=True
    )
    medium_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    #: md5 | sha256 | pdq
    matched_by: Mapped[str] = mapped_column(String(16))
    distance: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (UniqueConstraint("case_id", "medium_id", name="uq_survivor_links_case_medium"),)


class SurvivorAttempt(Base):
    """Failed sign-ins per keyed hash (of a case code, or of a client) in the current window."""

    __tablename__ = "survivor_attempts"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    failures: Mapped[int] = mapped_column(Integer, default=0)


#: the media scanned for survivor matches so far (``meta.name``): every medium with a smaller id
#: that had its hashes was matched against every registration
SCAN_CURSOR = "survivor_scan_cursor"

__all__ = ["SCAN_CURSOR", "SurvivorAttempt", "SurvivorCase", "SurvivorHash", "SurvivorLink"]
