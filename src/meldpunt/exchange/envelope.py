"""The signed envelope partner instances exchange, and every check a receiver makes before it trusts
one — pure: no database, no network, no clock of its own (the caller passes ``now``).

On the wire::

    {"v": 1, "payload": "<base64 of the payload's JSON bytes>", "kid": "<signer's key id>",
     "sig": "<base64 Ed25519 signature over exactly those payload bytes>"}

    payload = {"from": sender, "to": receiver, "id": uuid4, "seq": n, "kind": "...",
               "nonce": "<16 random bytes, base64>", "sent_at": "<ISO-8601 UTC>", "body": {...}}

Why the payload travels as base64 of its bytes: the signature covers *exactly the bytes sent*, so
sender and receiver never need to agree on a canonical JSON form (key order, spacing, number and
unicode escapes differ between libraries and versions; a re-serialised payload would fail to verify,
or worse, two serialisations could mean different things). The receiver verifies the bytes first
and only then trusts what the JSON inside says.

The receiver's checks, in order, each with its own :class:`EnvelopeError` code (the HTTP status the
inbox answers, a readable reason): size before anything is parsed; a cheap scan for nesting depth and
member counts (a nesting bomb is refused in microseconds, before ``json.loads`` recurses into it);
the envelope's shape; the payload's shape; ``to`` is us; the sender is known and not removed; the
``kid`` is among the sender's accepted keys; the signature; ``sent_at`` within the allowed skew.
Replays (a message id or nonce seen before) need the database: ``meldpunt.act.partners``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

VERSION = 1
#: deepest JSON nesting a message may have (envelope, payload and body together)
MAX_DEPTH = 32
#: most object members plus array items in one JSON document
MAX_MEMBERS = 50_000
MAX_KIND = 32
_KIND = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_KID = re.compile(r"^[0-9a-f]{16}$")
_BRACKETS = bytes(range(256)).translate(None, b"[]{}")  # every byte but the brackets


class EnvelopeError(ValueError):
    """A message refused: ``code`` (stable, for logs and counters), ``status`` (the HTTP answer),
    and a readable reason that never contains the message's content."""

    def __init__(self, code: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Payload:
    """What a verified envelope says."""

    sender: str
    to: str
    id: str
    seq: int
    kind: str
    nonce: str
    sent_at: datetime
    body: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.sender,
            "to": self.to,
            "id": self.id,
            "seq": self.seq,
            "kind": self.kind,
            "nonce": self.nonce,
            "sent_at": self.sent_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "body": self.body,
        }


@dataclass(frozen=True)
class Opened:
    """An envelope whose shape is right and whose payload parsed, but not yet verified."""

    kid: str
    sig: str
    data: bytes
    payload: Payload


def new_message_id() -> str:
    return str(uuid.uuid4())


def new_nonce() -> str:
    return base64.b64encode(secrets.token_bytes(16)).decode()


def seal(payload: Payload, sign: Callable[[bytes], tuple[str, str]]) -> bytes:
    """The envelope's bytes: ``payload`` as compact JSON, signed by ``sign(data) -> (kid, b64sig)``."""
    data = json.dumps(payload.to_json(), separators=(",", ":"), ensure_ascii=False).encode()
    kid, sig = sign(data)
    envelope = {"v": VERSION, "payload": base64.b64encode(data).decode(), "kid": kid, "sig": sig}
    return json.dumps(envelope, separators=(",", ":")).encode()


def _structure(raw: bytes) -> bytes:
    """``raw`` without its JSON strings' contents, at C speed: escaped backslashes and quotes are
    dropped first, then every other run between quotes is string content. (Malformed JSON may be
    cut wrongly here; it is refused anyway, by this scan or by the parser.) A regular expression
    did the same 5x slower, and its naive form held ~100 bytes per character: 90 MB for 1 MB."""
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(raw.split(b'"')[0::2])


def scan_limits(raw: bytes, *, max_depth: int = MAX_DEPTH, max_members: int = MAX_MEMBERS) -> None:
    """Refuse JSON nested deeper than ``max_depth`` or with more than ``max_members`` members and
    items, without parsing it: strings are cut out, commas and colons counted, and the brackets left
    walked (stopping at the first level too deep) — a nesting bomb costs microseconds, not a parse."""
    bare = _structure(raw)
    if bare.count(b",") + bare.count(b":") > max_members:
        raise EnvelopeError("too_many_members", f"the JSON has more than {max_members} members or items")
    depth = 0
    for byte in bare.translate(None, _BRACKETS):
        if byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > max_depth:
                raise EnvelopeError("too_deep", f"the JSON is nested deeper than {max_depth} levels")
        else:
            depth -= 1


def _decode_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise EnvelopeError("malformed", f"the {what} is not JSON") from None


#: the largest integer a payload may hold: a database BIGINT (a larger ``seq`` overflowed the insert)
MAX_INT = 2**63 - 1


def _int(text: str) -> int:
    if len(text.lstrip("-")) > 19 or not -MAX_INT <= (n := int(text)) <= MAX_INT:
        raise EnvelopeError("bad_number", "a number in the payload is beyond 64 bits", status=422)
    return n


def _float(text: str) -> float:
    n = float(text)
    if not math.isfinite(n):
        raise EnvelopeError("bad_number", "a number in the payload is too large", status=422)
    return n


def _constant(text: str) -> Any:
    raise EnvelopeError("bad_number", f"{text} is not a number JSON allows", status=422)


def decode_payload(data: bytes) -> Any:
    """The payload's JSON, stricter than :func:`json.loads`: no NUL characters (no text column on
    PostgreSQL stores one, and no field of ours has a use for it), no NaN or Infinity (not JSON),
    no integer beyond 64 bits (they overflowed the database's BIGINT). A signed payload from a
    partner is still input: these reached a handler and answered 500 before."""
    if b"\\u0000" in data.replace(b"\\\\", b""):
        raise EnvelopeError("bad_text", "the payload holds a NUL character (\\u0000)", status=422)
    try:
        return json.loads(data, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except EnvelopeError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise EnvelopeError("malformed", "the payload is not JSON") from None


def _time(text: Any) -> datetime:
    if not isinstance(text, str):
        raise EnvelopeError("bad_shape", "sent_at must be an ISO-8601 time", status=422)
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise EnvelopeError("bad_shape", "sent_at must be an ISO-8601 time", status=422) from None
    if at.tzinfo is None:
        raise EnvelopeError("bad_shape", "sent_at must carry its time zone (UTC)", status=422)
    return at.astimezone(UTC)


def open_envelope(raw: bytes, *, max_bytes: int) -> Opened:
    """Size, limits, envelope and payload shape; no signature yet (the sender's keys come from the
    database). Raises :class:`EnvelopeError`."""
    if len(raw) > max_bytes:
        raise EnvelopeError("too_large", f"the message is larger than {max_bytes} bytes", status=413)
    scan_limits(raw, max_depth=2)
    envelope = _decode_json(raw, "message")
    if not isinstance(envelope, dict):
        raise EnvelopeError("bad_shape", "the message must be a JSON object", status=422)
    if envelope.get("v") != VERSION:
        raise EnvelopeError(
            "bad_version", f"unsupported envelope version (this end speaks {VERSION})", status=422
        )
    kid, sig, packed = envelope.get("kid"), envelope.get("sig"), envelope.get("payload")
    if not isinstance(kid, str) or not _KID.match(kid):
        raise EnvelopeError("bad_shape", "kid must be a key id (16 hex digits)", status=422)
    if not isinstance(sig, str) or not isinstance(packed, str):
        raise EnvelopeError("bad_shape", "payload and sig must be base64 strings", status=422)
    try:
        data = base64.b64decode(packed, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError("bad_shape", "payload is not base64", status=422) from None
    scan_limits(data)
    return Opened(kid, sig, data, _payload(decode_payload(data)))


def _payload(p: Any) -> Payload:
    if not isinstance(p, dict):
        raise EnvelopeError("bad_shape", "the payload must be a JSON object", status=422)
    problems = []
    for name, kind in (
        ("from", str),
        ("to", str),
        ("id", str),
        ("kind", str),
        ("nonce", str),
        ("body", dict),
    ):
        if not isinstance(p.get(name), kind):
            problems.append(f"{name} must be {'an object' if kind is dict else 'a string'}")
    seq = p.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        problems.append("seq must be a positive integer")
    if problems:
        raise EnvelopeError("bad_shape", "; ".join(problems), status=422)
    try:
        uuid.UUID(p["id"])
    except ValueError:
        raise EnvelopeError("bad_shape", "id must be a UUID", status=422) from None
    if not _KIND.match(p["kind"]):
        raise EnvelopeError("bad_shape", "kind must be a short lower-case word", status=422)
    try:
        nonce = base64.b64decode(p["nonce"], validate=True)
    except (binascii.Error, ValueError):
        nonce = b""
    if len(nonce) != 16:
        raise EnvelopeError("bad_shape", "nonce must be 16 bytes, base64", status=422)
    return Payload(
        p["from"],
        p["to"],
        str(uuid.UUID(p["id"])),
        p["seq"],
        p["kind"],
        p["nonce"],
        _time(p["sent_at"]),
        p["body"],
    )


def check_recipient(payload: Payload, us: str) -> None:
    if payload.to != us:
        raise EnvelopeError("wrong_recipient", "the message is addressed to another instance", status=421)


def check_signature(
    opened: Opened, keys: Mapping[str, Any], verify: Callable[[Any, bytes, str], bool]
) -> None:
    """``keys``: the sender's accepted public keys by kid; ``verify(public, data, sig)``."""
    public = keys.get(opened.kid)
    if public is None:
        raise EnvelopeError(
            "unknown_key", "the key that signed this is not one we accept from the sender", status=401
        )
    if not verify(public, opened.data, opened.sig):
        raise EnvelopeError("bad_signature", "the signature does not verify", status=401)


def check_time(payload: Payload, now: datetime, max_skew: timedelta) -> None:
    if payload.sent_at < now - max_skew:
        raise EnvelopeError("stale", f"sent more than {int(max_skew.total_seconds())} s ago", status=422)
    if payload.sent_at > now + max_skew:
        raise EnvelopeError(
            "from_future", f"sent more than {int(max_skew.total_seconds())} s from now", status=422
        )


def valid_name(name: str) -> bool:
    """A partner's name: a short lower-case slug (``be-childfocus``)."""
    return bool(_NAME.match(name))
