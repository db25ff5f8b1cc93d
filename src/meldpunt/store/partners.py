"""Tables of the signed channel between meldpunt instances (#11 part "wire"): partner hotlines, the
public keys each signs with, the messages we send them (in order, per partner) and the messages
they sent us (replay-proof).

- ``partners``: one row per partner hotline (soft-removed: ``removed_at``, so its messages keep
  their sender and a message from a removed partner is refused as such, not as unknown);
  ``next_seq`` hands out the per-partner order of outgoing messages (an UPDATE that locks the row);
  ``signs_with``: the kid of *our* key this partner is known to accept (see ``act.partners``).
- ``partner_keys``: the partner's Ed25519 public keys; a retired key is accepted for the grace period.
- ``partner_out``: outgoing messages, ``seq`` and ``key`` unique per partner; delivered strictly in
  ``seq`` order by the ``partner-send`` job.
- ``partner_in``: incoming messages by their id (unique): applied once, or refused with a reason.
- ``partner_nonces``: the nonces seen in the last ``2 * partner.max_skew_s`` (an exact replay is
  refused by its nonce while fresh, and by its age after its nonce is dropped).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from meldpunt.store.models import Base, BigId


class PartnerRow(Base):
    """A partner hotline's meldpunt instance."""

    __tablename__ = "partners"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    #: the partner instance's base address (its inbox is <url>/api/v1/partner/inbox)
    url: Mapped[str] = mapped_column(Text)
    #: JSON list of ISO 3166-1 alpha-2 codes, upper case
    countries: Mapped[str] = mapped_column(Text, default="[]")
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: the last seq handed out to an outgoing message
    next_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    #: the kid of our key this partner accepts ("" : our current key)
    signs_with: Mapped[str] = mapped_column(String(32), default="")


class PartnerKeyRow(Base):
    """One of a partner's Ed25519 public keys."""

    __tablename__ = "partner_keys"
    __table_args__ = (UniqueConstraint("partner_id", "kid", name="uq_partner_keys_kid"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), index=True)
    kid: Mapped[str] = mapped_column(String(32))
    #: base64 of the 32 raw bytes
    public: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PartnerOutRow(Base):
    """A message to a partner, delivered in ``seq`` order."""

    __tablename__ = "partner_out"
    __table_args__ = (
        UniqueConstraint("partner_id", "seq", name="uq_partner_out_seq"),
        UniqueConstraint("partner_id", "key", name="uq_partner_out_key"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    #: the sender's idempotency key (unique per partner)
    key: Mapped[str] = mapped_column(String(200))
    #: the envelope's message id (uuid4), the same on every attempt
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text, default="{}")
    #: queued | delivered | dead
    state: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: the first failed attempt of the current streak (the retry window counts from it)
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PartnerInRow(Base):
    """A message a partner sent us, by its id: applied once, or refused (with why)."""

    __tablename__ = "partner_in"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sender_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    nonce: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: applied | refused
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")


class PartnerNonceRow(Base):
    """A nonce seen recently (dropped after ``2 * partner.max_skew_s``)."""

    __tablename__ = "partner_nonces"
    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
