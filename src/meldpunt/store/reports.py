"""Tables of the walk: reports, their items (one per URL), media found on items, durable jobs,
API tokens and the encrypted review store."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from meldpunt.store.models import Base, BigId


class Report(Base):
    __tablename__ = "reports"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: SHA-256 of the receipt code: the code is the reporter's key to /status, not stored itself.
    receipt_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: "public", or "api:<token name>"
    source: Mapped[str] = mapped_column(String(120))
    seen_on: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    #: optional address for feedback, given by the reporter on purpose
    contact: Mapped[str] = mapped_column(Text, default="")
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str] = mapped_column(String(8), default="en")
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: the receipt of an idempotent request, kept so a retried request gets the same answer
    receipt_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: SHA-256 of the canonical request an idempotency key was first used with (``intake``): the
    #: same key with another request is refused, not answered with this report's receipt
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        UniqueConstraint("source", "idempotency_key", name="uq_reports_source_idem"),
        # the statistics page's intake and urgent figures, from the index alone (migration 0029)
        Index("ix_reports_created_at", "created_at", "source", "urgent"),
    )


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    #: SHA-256 of the normalised URL: finds the open item a repeated report links to
    url_key: Mapped[str] = mapped_column(String(64), index=True)
    host: Mapped[str] = mapped_column(String(255), default="")
    state: Mapped[str] = mapped_column(String(16), default="received", index=True)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str] = mapped_column(Text, default="")
    #: the hosting server's address as seen by the fetcher (not a person's)
    server_ip: Mapped[str] = mapped_column(String(64), default="")
    #: the page the media came from, after redirects ("" until fetched, or when it was not)
    final_url: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        # the statistics page: items first reported in a period, per week and channel, and the
        # assessed ones among them (migration 0029)
        Index("ix_items_created_at", "created_at", "report_id"),
        Index("ix_items_state_created_at", "state", "created_at"),
    )


class ReportItem(Base):
    """Which reports named which items: a URL reported again while open links here, not a copy."""

    __tablename__ = "report_items"
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Medium(Base):
    __tablename__ = "media"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    url_key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8), default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    md5: Mapped[str] = mapped_column(String(32), default="")
    sha1: Mapped[str] = mapped_column(String(40), default="")
    sha256: Mapped[str] = mapped_column(String(64), default="")
    pdq: Mapped[str] = mapped_column(String(64), default="")
    pdq_quality: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: an image with an EXIF orientation of 2-8: the tag, and the PDQ of its pixels as stored (what
    #: other tools hash; ``pdq`` is the upright picture's). NULL otherwise.
    orientation: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pdq_stored: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pdq_stored_quality: Mapped[int | None] = mapped_column(Integer, nullable=True)
    vpdq: Mapped[str] = mapped_column(Text, default="")
    server_ip: Mapped[str] = mapped_column(String(64), default="")
    #: known | ignored | new | failed (domain.reports.MediumOutcome); empty until matched
    outcome: Mapped[str] = mapped_column(String(16), default="")
    #: the matches as JSON (bank, entry, distance, labels, policy)
    matches: Mapped[str] = mapped_column(Text, default="[]")
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # one row per (item, media URL): a job that runs twice finds the row and changes nothing
    __table_args__ = (UniqueConstraint("item_id", "url_key", name="uq_media_item_url"),)


class Job(Base):
    """A durable step of the walk. Written in the same transaction as the state that asks for it;
    claimed under a lease; retried with backoff; dead after ``max_attempts`` with its reason."""

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    #: what the job is about, e.g. "item:42"; (kind, key) is unique so enqueueing is idempotent
    key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(Text, default="{}")
    #: queued | running | done | dead
    state: Mapped[str] = mapped_column(String(8), default="queued")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    run_after: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    locked_by: Mapped[str] = mapped_column(String(120), default="")
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        UniqueConstraint("kind", "key", name="uq_jobs_kind_key"),
        Index("ix_jobs_claim", "state", "priority", "run_after"),
    )


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    #: SHA-256 of the token (tokens are long random strings: no slow hash needed)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: what the token may do: scope names separated by spaces (``pipeline.api_tokens.SCOPES``)
    scopes: Mapped[str] = mapped_column(String(200))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReviewContent(Base):
    """One distinct content awaiting review, encrypted (AES-GCM), stored once however many media
    show it; ``refs`` counts the :class:`ReviewBlob` rows that point at it (``stores.review``)."""

    __tablename__ = "review_contents"
    #: keyed digest of the bytes (HMAC-SHA256 under a key derived from the review key), hex;
    #: "medium:<id>" for a blob stored before contents were shared (one medium's, never shared)
    content_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    refs: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReviewBlob(Base):
    """A medium that needs review -> its stored content; deleted once it is classified."""

    __tablename__ = "review_blobs"
    medium_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), primary_key=True)
    content_key: Mapped[str] = mapped_column(ForeignKey("review_contents.content_key"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
