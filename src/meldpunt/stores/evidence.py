"""The evidence store: media a classification keeps as evidence, under a key of their own, for the
hotline's legal retention period, and every access audited.

A classification with a ``keep_media`` flag (``evidence``) moves its item's media out of the review
store (:meth:`EvidenceStore.keep_from_review`): decrypted under the review key, encrypted again
under the evidence key, the review blob deleted — in the classification's transaction, so a medium
is in one store or the other, never both or neither. Each blob is AES-256-GCM with a random 96-bit
nonce and the medium's id as associated data (a prefix of its own: a review blob copied into this
table does not decrypt either), and keeps the SHA-256 of the plaintext, the item, the reason (the
flags), who kept it, when, and until when.

Reading a blob (:meth:`EvidenceStore.get`) takes an actor and a purpose and records an
``evidence.access`` audit event in the reader's transaction; :meth:`EvidenceStore.purge_expired`
deletes what is past ``retain_until`` and records one ``evidence.purge`` event naming the media.

The key: ``settings.evidence_key`` if set, else the key file ``settings.evidence_key_file``, by
default ``<db>.evidencekey`` beside a SQLite database or ``evidence.key`` in the user data directory,
created like the review key's (0600, with a warning to back it up). It must not be the review key:
a separate key is what lets the two stores be held, rotated and destroyed apart, so the store
refuses to start with the same one. Retention: ``settings.evidence_retention_days``.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, delete, insert, select

from meldpunt.audit import AuditEvent, record
from meldpunt.settings import Settings
from meldpunt.store.evidence import EvidenceBlob
from meldpunt.store.reports import Medium
from meldpunt.stores.review import (
    KEY_BYTES,
    NONCE_BYTES,
    ReviewStore,
    StoreKeyError,
    default_key_file,
    key_file_path,
    key_fingerprint,
    load_or_create_key_file,
    parse_key,
)

_AAD_PREFIX = b"meldpunt-evidence-blob:v1:medium:"
#: the system's actor name in the audit log (a purge by the worker)
SYSTEM = "system"


class EvidenceKeyError(StoreKeyError):
    """The evidence key is malformed, equals the review key, or a blob does not decrypt under it."""


@dataclass(frozen=True)
class EvidenceRecord:
    """What is known of a kept medium without decrypting it (listing is not an access)."""

    medium_id: int
    item_id: int
    #: SHA-256 (hex) of the bytes kept
    sha256: str
    #: the classification flags that kept it
    reason: tuple[str, ...]
    kept_by: str
    kept_at: datetime
    retain_until: datetime


def _aad(medium_id: int) -> bytes:
    return _AAD_PREFIX + str(int(medium_id)).encode()


def _utc(at: datetime) -> datetime:
    # SQLite gives back naive datetimes: they were stored in UTC.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def default_evidence_key_file(settings: Settings) -> Path:
    return key_file_path(
        settings.evidence_key_file, settings.db, suffix=".evidencekey", data_name="evidence.key"
    )


def _review_key_if_any(settings: Settings) -> bytes | None:
    """The review key the settings name, if there is one already (never creates a key file)."""
    if settings.review_key:
        return parse_key(settings.review_key)
    path = default_key_file(settings)
    return load_or_create_key_file(path) if path.exists() else None


class EvidenceStore:
    """AES-GCM blobs in ``evidence_blobs``, one per medium; every method runs in the caller's
    transaction (``conn``)."""

    def __init__(
        self, key: bytes, *, retention_days: int = 730, review_store: ReviewStore | None = None
    ) -> None:
        if len(key) != KEY_BYTES:
            raise EvidenceKeyError(f"the evidence key must be {KEY_BYTES} bytes")
        if retention_days < 1:
            raise ValueError("evidence_retention_days must be at least 1")
        self._aead = AESGCM(key)
        self._fingerprint = key_fingerprint(key)
        if review_store is not None:
            self._refuse_shared_key(review_store)
        self.retention = timedelta(days=retention_days)

    @classmethod
    def from_settings(cls, settings: Settings, review_store: ReviewStore | None = None) -> EvidenceStore:
        """The store the settings describe; refuses (``EvidenceKeyError``) an evidence key equal to
        the review key of the settings or of ``review_store``."""
        if settings.evidence_key:
            key = parse_key(settings.evidence_key, what="evidence", error=EvidenceKeyError)
        else:
            key = load_or_create_key_file(
                default_evidence_key_file(settings),
                what="evidence",
                env="MELDPUNT_EVIDENCE_KEY",
                lost="media kept as evidence",
                error=EvidenceKeyError,
            )
        review_key = _review_key_if_any(settings)
        if review_key is not None and hmac.compare_digest(key_fingerprint(review_key), key_fingerprint(key)):
            raise _shared_key_error()
        return cls(key, retention_days=settings.evidence_retention_days, review_store=review_store)

    def _refuse_shared_key(self, review_store: ReviewStore) -> None:
        if hmac.compare_digest(review_store.fingerprint, self._fingerprint):
            raise _shared_key_error()

    # -- keeping -----------------------------------------------------------------------------------
    def keep_from_review(
        self,
        conn: Connection,
        review_store: ReviewStore,
        medium_id: int,
        *,
        reason: Iterable[str],
        user: str,
        now: datetime,
    ) -> bool:
        """Move the medium's bytes from the review store into this one (in ``conn``): True when
        moved, False when the review store has none. A medium kept already keeps its first blob and
        retention; the review blob goes either way."""
        self._refuse_shared_key(review_store)
        try:
            data = review_store.get(conn, medium_id)
        except KeyError:
            return False
        if not self.has(conn, medium_id):
            self._put(conn, medium_id, data, reason=tuple(reason), user=user, now=_utc(now))
        review_store.purge(conn, medium_id)
        return True

    def _put(
        self,
        conn: Connection,
        medium_id: int,
        data: bytes,
        *,
        reason: tuple[str, ...],
        user: str,
        now: datetime,
    ) -> None:
        item_id = conn.execute(select(Medium.item_id).where(Medium.id == medium_id)).scalar_one()
        nonce = secrets.token_bytes(NONCE_BYTES)
        conn.execute(
            insert(EvidenceBlob).values(
                medium_id=medium_id,
                item_id=int(item_id),
                nonce=nonce,
                ciphertext=self._aead.encrypt(nonce, data, _aad(medium_id)),
                sha256=hashlib.sha256(data).hexdigest(),
                reason=",".join(reason),
                kept_by=user,
                kept_at=now,
                retain_until=now + self.retention,
            )
        )

    # -- reading -----------------------------------------------------------------------------------
    def get(
        self,
        conn: Connection,
        medium_id: int,
        *,
        actor: str,
        purpose: str,
        now: datetime | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> bytes:
        """The medium's bytes, recording an ``evidence.access`` audit event (actor, purpose, the
        bytes' SHA-256, and ``details``: where they went) in ``conn``. ``KeyError`` when none are kept, ``EvidenceKeyError`` when the
        blob does not decrypt (another key, tampered, or moved from another medium)."""
        if not purpose.strip():
            raise ValueError("reading evidence needs a purpose (it is audited)")
        row = conn.execute(
            select(
                EvidenceBlob.nonce, EvidenceBlob.ciphertext, EvidenceBlob.sha256, EvidenceBlob.item_id
            ).where(EvidenceBlob.medium_id == medium_id)
        ).first()
        if row is None:
            raise KeyError(f"no evidence blob for medium {medium_id}")
        try:
            data = self._aead.decrypt(bytes(row.nonce), bytes(row.ciphertext), _aad(medium_id))
        except InvalidTag:
            raise EvidenceKeyError(
                f"the evidence blob of medium {medium_id} does not decrypt (wrong key or tampered)"
            ) from None
        if hashlib.sha256(data).hexdigest() != row.sha256:
            raise EvidenceKeyError(f"the evidence blob of medium {medium_id} does not match its SHA-256")
        record(
            conn,
            AuditEvent(
                actor,
                "evidence.access",
                f"medium:{medium_id}",
                {**(details or {}), "item": int(row.item_id), "purpose": purpose, "sha256": row.sha256},
                at=datetime.now(UTC) if now is None else _utc(now),
            ),
        )
        return data

    def has(self, conn: Connection, medium_id: int) -> bool:
        return (
            conn.execute(select(EvidenceBlob.medium_id).where(EvidenceBlob.medium_id == medium_id)).first()
            is not None
        )

    def list(
        self, conn: Connection, *, item_id: int | None = None, expired_at: datetime | None = None
    ) -> builtins.list[EvidenceRecord]:
        """What is kept (no bytes: not an access), oldest first; ``item_id``: of one item;
        ``expired_at``: only what is past its retention at that time."""
        q = select(
            EvidenceBlob.medium_id,
            EvidenceBlob.item_id,
            EvidenceBlob.sha256,
            EvidenceBlob.reason,
            EvidenceBlob.kept_by,
            EvidenceBlob.kept_at,
            EvidenceBlob.retain_until,
        ).order_by(EvidenceBlob.kept_at, EvidenceBlob.medium_id)
        if item_id is not None:
            q = q.where(EvidenceBlob.item_id == item_id)
        if expired_at is not None:
            q = q.where(EvidenceBlob.retain_until < _utc(expired_at))
        return [
            EvidenceRecord(
                medium_id=int(r.medium_id),
                item_id=int(r.item_id),
                sha256=r.sha256,
                reason=tuple(f for f in r.reason.split(",") if f),
                kept_by=r.kept_by,
                kept_at=_utc(r.kept_at),
                retain_until=_utc(r.retain_until),
            )
            for r in conn.execute(q)
        ]

    # -- retention ---------------------------------------------------------------------------------
    def purge_expired(self, conn: Connection, now: datetime, *, actor: str = SYSTEM) -> int:
        """Delete every blob past its ``retain_until`` at ``now``; one ``evidence.purge`` audit
        event names them (none when nothing expired). Returns how many went."""
        return purge_expired(conn, now, actor=actor)


def purge_expired(conn: Connection, now: datetime, *, actor: str = SYSTEM) -> int:
    """:meth:`EvidenceStore.purge_expired` without the key (deleting decrypts nothing): for the
    worker, which should not need the evidence key. Safe to run in several processes at once: each
    medium is named by the one purge that deleted it."""
    now = _utc(now)
    gone = sorted(
        int(m)
        for m in conn.execute(
            delete(EvidenceBlob).where(EvidenceBlob.retain_until < now).returning(EvidenceBlob.medium_id)
        ).scalars()
    )
    if gone:
        record(conn, AuditEvent(actor, "evidence.purge", "", {"count": len(gone), "media": gone}, at=now))
    return len(gone)


def _shared_key_error() -> EvidenceKeyError:
    return EvidenceKeyError(
        "the evidence key is the review key: give the evidence store a key of its own "
        "(MELDPUNT_EVIDENCE_KEY or MELDPUNT_EVIDENCE_KEY_FILE)"
    )


__all__ = [
    "EvidenceKeyError",
    "EvidenceRecord",
    "EvidenceStore",
    "default_evidence_key_file",
    "purge_expired",
]
