"""The encrypted review store: the bytes of media an analyst must look at, and nothing else.

Only media whose outcome is ``new`` are kept (known and ignored media are dropped at once). Each
blob is AES-256-GCM with a random 96-bit nonce and the medium's id as associated data, so a blob
copied onto another medium's row does not decrypt. Blobs are purged once a medium is classified.

The key: ``settings.review_key`` (base64 of 32 bytes) if set; otherwise the key file
``settings.review_key_file``, by default beside a SQLite database (``<db>.reviewkey``) or in the
user data directory for other databases. A missing key file is created (mode 0600) with a new
random key and a warning: back it up, and give every worker and web process the same key — media
encrypted under a lost key cannot be read again.
"""

from __future__ import annotations

import base64
import binascii
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


class ReviewKeyError(ValueError):
    """The review key is malformed, or a blob does not decrypt under it."""


def _aad(medium_id: int) -> bytes:
    return _AAD_PREFIX + str(int(medium_id)).encode()


def parse_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ReviewKeyError("the review key is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise ReviewKeyError(f"the review key must be {KEY_BYTES} bytes (base64), not {len(key)}")
    return key


def default_key_file(settings: Settings) -> Path:
    if settings.review_key_file:
        return Path(settings.review_key_file).expanduser()
    db_file = sqlite_path(database_url(settings.db))
    if db_file is not None:
        return db_file.with_name(db_file.name + ".reviewkey")
    import platformdirs

    return Path(platformdirs.user_data_dir("meldpunt")) / "review.key"


def load_or_create_key_file(path: Path) -> bytes:
    """The key in ``path``; a new random key written there (atomically, 0600) if there is none.
    Two processes creating it at once agree on one key (the file is linked into place, never
    overwritten)."""
    try:
        return parse_key(path.read_text())
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
                "created a NEW review key in %s: back it up, and give every worker and web process "
                "this key (MELDPUNT_REVIEW_KEY or MELDPUNT_REVIEW_KEY_FILE); media awaiting review "
                "cannot be decrypted without it",
                path,
            )
        except FileExistsError:
            pass  # another process won the race: use its key
    finally:
        tmp.unlink(missing_ok=True)
    return parse_key(path.read_text())


class ReviewStore:
    """AES-GCM blobs in ``review_blobs``, one per medium; every method runs in the caller's
    transaction (``conn``), so a blob commits with the medium's outcome or not at all."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ReviewKeyError(f"the review key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)

    @classmethod
    def from_settings(cls, settings: Settings) -> ReviewStore:
        if settings.review_key:
            return cls(parse_key(settings.review_key))
        return cls(load_or_create_key_file(default_key_file(settings)))

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
