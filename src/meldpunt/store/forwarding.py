"""Tables of forwarding between meldpunt instances (#11 part "forward"): what travels on the signed
partner channel (``meldpunt.act.partners``), on both ends.

Sender side:
- ``forwards_out``: one row per forwarded takedown — the partner, our reference (quoted in every
  status back), the channel message's id and state, and whether a senior must look at it
  (``attention``: the delivery failed for good, or the partner found it not illegal);
- ``forward_statuses``: each status the partner sent back, once per (forward, status): a status
  arriving twice is not applied twice.

Receiver side:
- ``forwards_in``: an item a partner forwarded to us — sender, their reference (unique together:
  a duplicate forward is taken in once), the facts they sent (classification, hosting, hashes),
  the item it became; ``done`` once a final status went back (the status tick reads open rows only);
- ``forward_in_statuses``: each status we sent back, once per (forward, status).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from meldpunt.store.models import Base, BigId


class ForwardOut(Base):
    """A takedown we forwarded to a partner hotline."""

    __tablename__ = "forwards_out"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    takedown_id: Mapped[int] = mapped_column(ForeignKey("takedowns.id", ondelete="CASCADE"), unique=True)
    item_id: Mapped[int] = mapped_column(BigInteger, index=True)
    partner: Mapped[str] = mapped_column(String(64))
    #: ours, quoted by the partner in every status (``BE-<takedown id>-<short>``)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    #: the partner channel's outgoing message (``partner_messages_out``)
    message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: queued | sent | failed
    state: Mapped[str] = mapped_column(String(16), index=True)
    #: "" | failed | not_illegal | unavailable_online: a senior decides
    attention: Mapped[str] = mapped_column(String(24), default="", index=True)
    attention_reason: Mapped[str] = mapped_column(Text, default="")
    #: the newest status the partner sent ("" : none yet)
    last_status: Mapped[str] = mapped_column(String(24), default="")
    last_status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ForwardStatus(Base):
    """A status a partner sent back about one of our forwards."""

    __tablename__ = "forward_statuses"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    forward_id: Mapped[int] = mapped_column(ForeignKey("forwards_out.id", ondelete="CASCADE"), index=True)
    #: received | assessed | notice_sent | removed | not_illegal | unavailable
    status: Mapped[str] = mapped_column(String(24))
    #: when it happened at the partner (their clock, as they said)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: JSON: the status body's facts (verdict, classification, removed_at ...)
    detail: Mapped[str] = mapped_column(Text, default="{}")
    __table_args__ = (UniqueConstraint("forward_id", "status", name="uq_forward_statuses_forward_status"),)


class ForwardIn(Base):
    """An item a partner hotline forwarded to us, and the facts they sent with it."""

    __tablename__ = "forwards_in"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sender: Mapped[str] = mapped_column(String(64))
    #: the sender's reference (what our statuses quote)
    reference: Mapped[str] = mapped_column(String(64))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    report_id: Mapped[int] = mapped_column(BigInteger)
    url: Mapped[str] = mapped_column(Text)
    #: JSON: their classification (scheme values, who decided: a role), hosting facts, hashes
    classification: Mapped[str] = mapped_column(Text, default="{}")
    hosting: Mapped[str] = mapped_column(Text, default="{}")
    media: Mapped[str] = mapped_column(Text, default="[]")
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: a final status (removed, not_illegal, unavailable) went back: nothing more to report
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (
        UniqueConstraint("sender", "reference", name="uq_forwards_in_sender_reference"),
        Index("ix_forwards_in_open", "done", "id"),
    )


class ForwardInStatus(Base):
    """A status we sent back to the sender of a forwarded item (once per status)."""

    __tablename__ = "forward_in_statuses"
    forward_id: Mapped[int] = mapped_column(
        ForeignKey("forwards_in.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(24), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
