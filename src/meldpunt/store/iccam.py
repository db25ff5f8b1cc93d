"""Tables of the ICCAM bridge (#11): which of our items is which ICCAM report and content item, every
call to ICCAM we owe (a report, an assessment, each action) with its attempts, the actions read
back from ICCAM on imported content, and the bridge's own small state (the import cursor).

Who writes what (``meldpunt.act.iccam``):
- ``iccam_links``: one row per item that ICCAM knows — exported by us (``direction='export'``, IDs
  filled in when ICCAM answers) or imported from ICCAM's queue (``'import'``, unique per content);
- ``iccam_sends``: the export plan. One row per (item, what) — ``report``, ``assessment``,
  ``action:N`` — so deciding twice plans once and a sent row is never sent again; ``seq`` orders an
  item's rows (report, assessment, then actions in timeline order);
- ``iccam_seen``: an imported content item's actions already written to our timeline;
- ``iccam_state``: name -> value (the import's next poll time and cursor).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from meldpunt.store.models import Base, BigId


class IccamLink(Base):
    __tablename__ = "iccam_links"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), unique=True)
    #: export | import
    direction: Mapped[str] = mapped_column(String(8))
    report_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    content_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, unique=True)
    #: export: the hotlineReference we sent; import: the reporting hotline's reference
    reference: Mapped[str] = mapped_column(String(200), default="")
    #: import: the hotline that reported it in ICCAM
    hotline: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IccamSend(Base):
    __tablename__ = "iccam_sends"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    #: report | assessment | action:N (N: ICCAM's action type)
    what: Mapped[str] = mapped_column(String(32))
    #: the order within the item: 0 report, 1 assessment, then the timeline line's id
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    #: JSON: what the call needs beyond the item (an action's date and reason)
    payload: Mapped[str] = mapped_column(Text, default="{}")
    #: queued | sent | failed
    state: Mapped[str] = mapped_column(String(8), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, index=True
    )
    last_error: Mapped[str] = mapped_column(Text, default="")
    #: an attempt may have reached ICCAM without its answer reaching us: check before sending again
    unsure: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    __table_args__ = (
        UniqueConstraint("item_id", "what", name="uq_iccam_sends_item_what"),
        Index("ix_iccam_sends_state", "state"),
    )


class IccamSeen(Base):
    __tablename__ = "iccam_seen"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    content_id: Mapped[int] = mapped_column(BigInteger)
    #: "<actionType>@<actionDate>"
    key: Mapped[str] = mapped_column(String(120))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (UniqueConstraint("content_id", "key", name="uq_iccam_seen_content_key"),)


class IccamState(Base):
    __tablename__ = "iccam_state"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")
