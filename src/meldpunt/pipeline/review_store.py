"""The encrypted review store: the bytes of media an analyst must look at, and nothing else.

Only media whose outcome is ``new`` are kept (known and ignored media are dropped at once). Each
blob is AES-256-GCM with a random 96-bit nonce and the medium's id as associated data, so a blob
copied onto another medium's row does not decrypt. Blobs are purged once a medium is classified,
or moved to the evidence store (``pipeline.evidence_store``, its own key) when a flag keeps them.

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
import logging
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, delete, insert, select

from meldpunt.settings import Settings
from meldpunt.store.db import database_url, sqlite_path
from meldpunt.store.reports import ReviewBlob

log = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12
_AAD_PREFIX = b"meldpunt-review-blob:v1:medium:"


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
    """AES-GCM blobs in ``review_blobs``, one per medium; every method runs in the caller's
    transaction (``conn``), so a blob commits with the medium's outcome or not at all."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ReviewKeyError(f"the review key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)
        #: tells this store's key from another store's (which must not be the same)
        self.fingerprint = key_fingerprint(key)

    @classmethod
    def from_settings(cls, settings: Settings) -> ReviewStore:
        return cls(review_key(settings))

    def put(self, conn: Connection, medium_id: int, data: bytes) -> bool:
        """Store ``data`` for the medium unless a blob is there already; True when written."""
        exists = conn.execute(select(ReviewBlob.medium_id).where(ReviewBlob.medium_id == medium_id)).first()
        if exists is not None:
            return False
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = self._aead.encrypt(nonce, data, _aad(medium_id))
        conn.execute(
            insert(ReviewBlob).values(
                medium_id=medium_id, nonce=nonce, ciphertext=ciphertext, created_at=datetime.now(UTC)
            )
        )
        return True

    def get(self, conn: Connection, medium_id: int) -> bytes:
        """The medium's bytes; ``KeyError`` when none are stored, ``ReviewKeyError`` when the blob
        does not decrypt (another key, tampered, or moved from another medium)."""
        row = conn.execute(
            select(ReviewBlob.nonce, ReviewBlob.ciphertext).where(ReviewBlob.medium_id == medium_id)
        ).first()
        if row is None:
            raise KeyError(f"no review blob for medium {medium_id}")
        try:
            return self._aead.decrypt(bytes(row.nonce), bytes(row.ciphertext), _aad(medium_id))
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
        """Delete the medium's blob (once it is classified); True when there was one."""
        return bool(conn.execute(delete(ReviewBlob).where(ReviewBlob.medium_id == medium_id)).rowcount)
