"""The instance's Ed25519 signing keys: what partner messages and referral manifests are signed with.

Each instance has one *current* key, made at first use, and may keep *retired* ones: ``meldpunt keys
rotate`` makes a new current key and retires the old one, whose public half is still accepted for
``settings.keys.grace_days`` (so a partner that has not yet learnt the new key, or a package signed
last week, still verifies). The ring is a JSON file, like the review key's: ``settings.keys.file``,
by default beside a SQLite database (``<db>.signkeys``) or in the user data directory (mode 0600,
written atomically; two processes creating it at once agree on one ring). Every web and worker
process of one instance needs the same file.

A key's id (``kid``) is the first 16 hex digits of the SHA-256 of its raw public key, so anyone
holding the public key can compute it. Public keys travel as base64 of the 32 raw bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from meldpunt.settings import Settings
from meldpunt.stores.review import key_file_path

log = logging.getLogger(__name__)

FORMAT = "meldpunt-signing-keys/1"


class SigningKeyError(ValueError):
    """The key ring is unreadable, or a public key or signature is malformed."""


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def kid_of(public: bytes) -> str:
    """A public key's id: the first 16 hex digits of the SHA-256 of its 32 raw bytes."""
    return hashlib.sha256(public).hexdigest()[:16]


def parse_public_key(text: str) -> Ed25519PublicKey:
    """A public key from base64 of its 32 raw bytes (as ``meldpunt keys show`` prints it)."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SigningKeyError("the public key is not valid base64") from None
    if len(raw) != 32:
        raise SigningKeyError(f"an Ed25519 public key is 32 bytes (base64), not {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def verify_with(public: Ed25519PublicKey, data: bytes, signature: str) -> bool:
    """Whether ``signature`` (base64) is ``public``'s signature of ``data``."""
    try:
        sig = base64.b64decode(signature, validate=True)
        public.verify(sig, data)
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey
    created: datetime
    #: when it stopped being current (None: it is current)
    retired: datetime | None = None

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def public_b64(self) -> str:
        return base64.b64encode(public_raw(self.public)).decode()

    @classmethod
    def generate(cls, now: datetime) -> SigningKey:
        private = Ed25519PrivateKey.generate()
        return cls(kid_of(public_raw(private.public_key())), private, now)

    def to_json(self) -> dict[str, Any]:
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        seed = self.private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return {
            "kid": self.kid,
            "seed": base64.b64encode(seed).decode(),
            "public": self.public_b64,
            "created": self.created.isoformat(),
            "retired": self.retired.isoformat() if self.retired else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SigningKey:
        try:
            seed = base64.b64decode(data["seed"], validate=True)
            private = Ed25519PrivateKey.from_private_bytes(seed)
            created = datetime.fromisoformat(data["created"])
            retired = datetime.fromisoformat(data["retired"]) if data.get("retired") else None
        except (KeyError, TypeError, ValueError, binascii.Error) as e:
            raise SigningKeyError(f"a key in the signing key ring is malformed ({e})") from None
        return cls(kid_of(public_raw(private.public_key())), private, created, retired)


@dataclass(frozen=True)
class KeyRing:
    """The current key and the retired ones (newest first)."""

    keys: tuple[SigningKey, ...]
    grace: timedelta

    @property
    def current(self) -> SigningKey:
        return self.keys[0]

    def sign(self, data: bytes) -> tuple[str, str]:
        """``(kid, base64 signature)`` of ``data`` under the current key."""
        sig = self.current.private.sign(data)
        return self.current.kid, base64.b64encode(sig).decode()

    def accepted(self, now: datetime) -> list[SigningKey]:
        """The keys whose signatures are still accepted at ``now``: the current one and those retired
        less than the grace period ago."""
        return [k for k in self.keys if k.retired is None or now - k.retired <= self.grace]

    def verify(self, kid: str, data: bytes, signature: str, *, now: datetime) -> bool:
        """Whether one of our own accepted keys (by ``kid``) signed ``data`` (a referral manifest,
        say)."""
        for key in self.accepted(now):
            if key.kid == kid:
                return verify_with(key.public, data, signature)
        return False

    def public_keys(self, now: datetime) -> list[dict[str, str | None]]:
        """What partners need: kid, base64 public key, created, retired — for every accepted key."""
        return [
            {
                "kid": k.kid,
                "public": k.public_b64,
                "created": k.created.isoformat(),
                "retired": k.retired.isoformat() if k.retired else None,
            }
            for k in self.accepted(now)
        ]

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "keys": [k.to_json() for k in self.keys]}


def key_ring_path(settings: Settings) -> Path:
    return key_file_path(settings.keys.file, settings.db, suffix=".signkeys", data_name="signing.keys")


def _read(path: Path, grace: timedelta) -> KeyRing:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise SigningKeyError(f"the signing key ring {path} is not JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not data.get("keys"):
        raise SigningKeyError(f"{path} is not a meldpunt signing key ring ({FORMAT})")
    keys = tuple(SigningKey.from_json(k) for k in data["keys"])
    if keys[0].retired is not None:
        raise SigningKeyError(f"the first key in {path} must be the current one")
    return KeyRing(keys, grace)


def _write_new(path: Path, ring: KeyRing, *, replace: bool) -> None:
    """Write ``ring`` to ``path`` atomically (0600). Without ``replace`` an existing file wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(ring.to_json(), f, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
                log.warning(
                    "created a NEW signing key in %s (kid %s): back it up and give every web and "
                    "worker process this file (MELDPUNT_KEYS_FILE); partners need its public key "
                    "(meldpunt keys show)",
                    path,
                    ring.current.kid,
                )
            except FileExistsError:
                pass  # another process won the race: use its ring
    finally:
        tmp.unlink(missing_ok=True)


def load_key_ring(settings: Settings, *, now: datetime | None = None) -> KeyRing:
    """The instance's key ring; a new one (one fresh key) is created when there is none."""
    grace = timedelta(days=settings.keys.grace_days)
    path = key_ring_path(settings)
    if not path.exists():
        _write_new(path, KeyRing((SigningKey.generate(now or datetime.now(UTC)),), grace), replace=False)
    return _read(path, grace)


def rotate_key_ring(settings: Settings, *, now: datetime) -> KeyRing:
    """A new current key; the old one retired at ``now`` (still accepted for the grace period).
    Keys retired longer ago than the grace period are dropped from the file."""
    ring = load_key_ring(settings, now=now)
    old = ring.keys
    retired = [SigningKey(k.kid, k.private, k.created, k.retired or now) for k in old]
    kept = [k for k in retired if k.retired is not None and now - k.retired <= ring.grace]
    new = KeyRing((SigningKey.generate(now), *kept), ring.grace)
    _write_new(key_ring_path(settings), new, replace=True)
    return new
