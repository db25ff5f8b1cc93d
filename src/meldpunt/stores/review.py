"""The encrypted review store: the bytes of media an analyst must look at, and nothing else.

Only media whose outcome is ``new`` are kept (known and ignored media are dropped at once). One
encrypted copy is kept per distinct content, however many media (addresses, reports) show it: one
JPEG at 200 addresses is stored once, with 200 references (see :class:`ReviewStore`). Each content
is AES-256-GCM with a random 96-bit nonce and its keyed digest as associated data. A medium's
reference is dropped once it is classified, or moved to the evidence store
(``stores.evidence``, its own key) when a flag keeps it; the content goes with its last
reference.

The key: ``settings.review_key`` (base64 of 32 bytes) if set; otherwise the key file
``settings.review_key_file``, by default beside a SQLite database (``<db>.reviewkey``) or in the
user data directory for other databases. A missing key file is created (mode 0600) with a new
random key and a warning: back it up, and give every worker and web process the same key — media
encrypted under a lost key cannot be read again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from meldpunt.settings import Settings
from meldpunt.store.db import database_url, sqlite_path
from meldpunt.store.reports import ReviewBlob, ReviewContent

log = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12
_AAD_PREFIX = b"meldpunt-review-blob:v1:medium:"
_CONTENT_AAD_PREFIX = b"meldpunt-review-blob:v2:content:"
_CONTENT_KEY_LABEL = b"meldpunt-review-content-key:v1"
#: content keys of blobs stored one per medium before 0015 (see the migration)
_LEGACY_PREFIX = "medium:"


class StoreKeyError(ValueError):
    """A store's key is malformed, or a blob does not decrypt under it."""


class ReviewKeyError(StoreKeyError):
    """The review key is malformed, or a blob does not decrypt under it."""


def _aad(medium_id: int) -> bytes:
    return _AAD_PREFIX + str(int(medium_id)).encode()


def parse_key(text: str, *, what: str = "review", error: type[StoreKeyError] = ReviewKeyError) -> bytes:
    """A key from its base64 text; ``what`` names it in the error (``error``)."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise error(f"the {what} key is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise error(f"the {what} key must be {KEY_BYTES} bytes (base64), not {len(key)}")
    return key


def key_file_path(configured: str, db: str, *, suffix: str, data_name: str) -> Path:
    """Where a store's key file is: ``configured`` if set; else beside a SQLite database
    (``<db><suffix>``); else ``data_name`` in the user data directory."""
    if configured:
        return Path(configured).expanduser()
    db_file = sqlite_path(database_url(db))
    if db_file is not None:
        return db_file.with_name(db_file.name + suffix)
    import platformdirs

    return Path(platformdirs.user_data_dir("meldpunt")) / data_name


def default_key_file(settings: Settings) -> Path:
    return key_file_path(settings.review_key_file, settings.db, suffix=".reviewkey", data_name="review.key")


def load_or_create_key_file(
    path: Path,
    *,
    what: str = "review",
    env: str = "MELDPUNT_REVIEW_KEY",
    lost: str = "media awaiting review",
    error: type[StoreKeyError] = ReviewKeyError,
) -> bytes:
    """The key in ``path``; a new random key written there (atomically, 0600) if there is none.
    Two processes creating it at once agree on one key (the file is linked into place, never
    overwritten). ``what``, ``env`` and ``lost`` word the warning: which key, its setting, and what
    cannot be read without it."""
    try:
        return parse_key(path.read_text(), what=what, error=error)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode() + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
            log.warning(
                "created a NEW %s key in %s: back it up, and give every worker and web process "
                "this key (%s or %s_FILE); %s cannot be decrypted without it",
                what,
                path,
                env,
                env,
                lost,
            )
        except FileExistsError:
            pass  # another process won the race: use its key
    finally:
        tmp.unlink(missing_ok=True)
    return parse_key(path.read_text(), what=what, error=error)


def key_fingerprint(key: bytes) -> bytes:
    """A digest of a key, kept to tell two stores' keys apart without keeping the key itself."""
    return hashlib.sha256(b"meldpunt-key-fingerprint:" + key).digest()


def review_key(settings: Settings) -> bytes:
    """The review key: ``settings.review_key``, else the key file (created when missing)."""
    if settings.review_key:
        return parse_key(settings.review_key)
    return load_or_create_key_file(default_key_file(settings))


class ReviewStore:
    """AES-GCM contents in ``review_contents``, one per distinct content, and one ``review_blobs``
    row per medium pointing at its content; every method runs in the caller's transaction
    (``conn``), so a blob commits with the medium's outcome or not at all.

    Content addressing: a content's key is HMAC-SHA256 of its bytes under a key derived from the
    review key, not the plain SHA-256, so the store alone does not say which files it holds (the
    media rows do, to staff who may see them); the key is also the content's associated data, so a
    ciphertext copied onto another content's row does not decrypt.

    Reference counting: ``refs`` is changed only by :meth:`put` and :meth:`purge`, each by one
    UPDATE (or an upsert) of the content's row. On PostgreSQL that row lock orders a purge and a put
    of the same content under READ COMMITTED: a purge that takes the count to zero deletes the row
    in the same transaction, and a put that waited for it finds no row and inserts the content
    again. A content is therefore deleted only when no medium refers to it, and the foreign key
    from ``review_blobs`` makes any mistake in that an error rather than an unreadable medium.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ReviewKeyError(f"the review key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)
        self._content_mac_key = hmac.new(key, _CONTENT_KEY_LABEL, hashlib.sha256).digest()
        #: tells this store's key from another store's (which must not be the same)
        self.fingerprint = key_fingerprint(key)

    @classmethod
    def from_settings(cls, settings: Settings) -> ReviewStore:
        return cls(review_key(settings))

    def content_key(self, data: bytes) -> str:
        """The key ``data`` is stored under (hex of a keyed SHA-256)."""
        return hmac.new(self._content_mac_key, data, hashlib.sha256).hexdigest()

    def put(self, conn: Connection, medium_id: int, data: bytes) -> bool:
        """Store ``data`` for the medium unless a blob is there already; True when written. Content
        stored already (for another medium) is not stored again: its count of references grows."""
        if self.has(conn, medium_id):
            return False
        key = self.content_key(data)
        now = datetime.now(UTC)
        shared = conn.execute(
            update(ReviewContent).where(ReviewContent.content_key == key).values(refs=ReviewContent.refs + 1)
        ).rowcount
        if not shared:
            nonce = secrets.token_bytes(NONCE_BYTES)
            ciphertext = self._aead.encrypt(nonce, data, _content_aad(key))
            stmt = _upsert(conn).values(
                content_key=key, nonce=nonce, ciphertext=ciphertext, refs=1, created_at=now
            )
            # Another transaction stored the same content meanwhile: count this reference on it.
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[ReviewContent.content_key], set_={"refs": ReviewContent.refs + 1}
                )
            )
        conn.execute(insert(ReviewBlob).values(medium_id=medium_id, content_key=key, created_at=now))
        return True

    def get(self, conn: Connection, medium_id: int) -> bytes:
        """The medium's bytes; ``KeyError`` when none are stored, ``ReviewKeyError`` when the
        content does not decrypt (another key, or tampered)."""
        row = conn.execute(
            select(ReviewContent.content_key, ReviewContent.nonce, ReviewContent.ciphertext)
            .join(ReviewBlob, ReviewBlob.content_key == ReviewContent.content_key)
            .where(ReviewBlob.medium_id == medium_id)
        ).first()
        if row is None:
            raise KeyError(f"no review blob for medium {medium_id}")
        key = str(row.content_key)
        if key.startswith(_LEGACY_PREFIX):  # stored before contents were shared: one medium's own
            aad = (
                _aad(int(key.removeprefix(_LEGACY_PREFIX))) if key == f"{_LEGACY_PREFIX}{medium_id}" else b""
            )
        else:
            aad = _content_aad(key)
        try:
            return self._aead.decrypt(bytes(row.nonce), bytes(row.ciphertext), aad)
        except InvalidTag:
            raise ReviewKeyError(
                f"the review blob of medium {medium_id} does not decrypt (wrong key or tampered)"
            ) from None

    def has(self, conn: Connection, medium_id: int) -> bool:
        return (
            conn.execute(select(ReviewBlob.medium_id).where(ReviewBlob.medium_id == medium_id)).first()
            is not None
        )

    def purge(self, conn: Connection, medium_id: int) -> bool:
        """Drop the medium's reference (once it is classified, or its bytes moved to evidence);
        the content goes with its last reference. True when the medium had one."""
        key = conn.execute(
            delete(ReviewBlob).where(ReviewBlob.medium_id == medium_id).returning(ReviewBlob.content_key)
        ).scalar()
        if key is None:
            return False
        conn.execute(
            update(ReviewContent).where(ReviewContent.content_key == key).values(refs=ReviewContent.refs - 1)
        )
        conn.execute(delete(ReviewContent).where(ReviewContent.content_key == key, ReviewContent.refs <= 0))
        return True


def _content_aad(key: str) -> bytes:
    return _CONTENT_AAD_PREFIX + key.encode()


def _upsert(conn: Connection) -> Any:
    """``INSERT ... ON CONFLICT`` into ``review_contents`` for the connection's database."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(ReviewContent)
    return sqlite.insert(ReviewContent)
