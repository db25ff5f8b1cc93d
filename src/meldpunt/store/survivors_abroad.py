"""Tables of the survivor chain across borders (#12 part "abroad"): on the sending side which opaque
reference went to which partner and the facts partners reported back; on the receiving side the
hashes partners sent (a bank that labels nothing), the media they matched and the reports claimed.

Nothing here names a person or a case code: a reference is a keyed hash (one per case and partner),
a finding a keyed hash of the receiver's own (reference, item).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from meldpunt.store.models import Base, BigId, HexKey


class SurvivorRefOut(Base):
    """Sender: a case's reference as given to one partner (deleted with the case)."""

    __tablename__ = "survivor_refs_out"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("survivor_cases.id", ondelete="CASCADE"), index=True)
    partner: Mapped[str] = mapped_column(String(120))
    ref: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (UniqueConstraint("partner", "ref", name="uq_survivor_refs_out_partner_ref"),)


class SurvivorFactAbroad(Base):
    """Sender: one fact a partner reported about a finding of a case's reference (deleted with the
    case): ``found`` (domain, hosting country), ``notice_sent`` (country), ``removed``."""

    __tablename__ = "survivor_facts_abroad"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("survivor_cases.id", ondelete="CASCADE"), index=True)
    partner: Mapped[str] = mapped_column(String(120))
    #: the partner's country (from our registry, when we learned the fact)
    partner_country: Mapped[str] = mapped_column(String(8), default="")
    finding: Mapped[str] = mapped_column(String(64))
    fact: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    domain: Mapped[str] = mapped_column(String(255), default="")
    country: Mapped[str] = mapped_column(String(8), default="")
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        UniqueConstraint("partner", "finding", "fact", name="uq_survivor_facts_abroad_finding_fact"),
    )


class SurvivorHashIn(Base):
    """Receiver: a hash a partner sent under its reference (md5, sha256, pdq: lower-case hex)."""

    __tablename__ = "survivor_hashes_in"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner: Mapped[str] = mapped_column(String(120))
    ref: Mapped[str] = mapped_column(String(64))
    signal_type: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(HexKey)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        UniqueConstraint("partner", "ref", "signal_type", "value", name="uq_survivor_hashes_in_ref_value"),
        Index("ix_survivor_hashes_in_signal_value", "signal_type", "value"),
    )


class SurvivorLinkIn(Base):
    """Receiver: a medium of ours that matched a partner's reference."""

    __tablename__ = "survivor_links_in"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner: Mapped[str] = mapped_column(String(120))
    ref: Mapped[str] = mapped_column(String(64))
    medium_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    matched_by: Mapped[str] = mapped_column(String(16))
    distance: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        UniqueConstraint("partner", "ref", "medium_id", name="uq_survivor_links_in_ref_medium"),
        Index("ix_survivor_links_in_partner_ref", "partner", "ref"),
    )


class SurvivorReportOut(Base):
    """Receiver: a fact about a finding claimed and queued back to the partner (unique: once)."""

    __tablename__ = "survivor_reports_out"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner: Mapped[str] = mapped_column(String(120))
    ref: Mapped[str] = mapped_column(String(64))
    finding: Mapped[str] = mapped_column(String(64))
    fact: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        UniqueConstraint("partner", "ref", "finding", "fact", name="uq_survivor_reports_out_fact"),
    )


__all__ = ["SurvivorFactAbroad", "SurvivorHashIn", "SurvivorLinkIn", "SurvivorRefOut", "SurvivorReportOut"]
