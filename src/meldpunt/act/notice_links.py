"""The provider's answer link: ``{mail.public_url}/provider/<token>``, a capability to answer one
notice without an account.

The token signs (notice id, expiry, the notice's ``token_nonce``) with HMAC-SHA256 under a key
derived from the review store key — a key every process shares and that is not in the database,
so a copy of the database alone cannot forge links. Changing a notice's nonce revokes every link
given out for it. A forged token and an unknown notice look the same (404); a genuine token past
its expiry is told apart (410), so a provider learns to ask for a fresh link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from meldpunt.settings import Settings
from meldpunt.stores.review import review_key

PURPOSE = b"meldpunt notice answer links v1"
TOKEN_RE = re.compile(r"^([0-9]{1,18})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})$")


class LinkError(Exception):
    """A link that cannot be used: ``status`` 404 (forged, unknown) or 410 (expired)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class LinkClaim:
    notice_id: int
    expires: datetime


def link_key(settings: Settings) -> bytes:
    """The HMAC key of answer links (derived, so the review key itself signs nothing)."""
    return hmac.new(review_key(settings), PURPOSE, hashlib.sha256).digest()


def _sign(key: bytes, notice_id: int, expires: int, nonce: str) -> str:
    mac = hmac.new(key, f"{notice_id}.{expires}.{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def make_token(key: bytes, notice_id: int, nonce: str, expires: datetime) -> str:
    stamp = int(expires.timestamp())
    return f"{notice_id}.{stamp}.{_sign(key, notice_id, stamp, nonce)}"


def expiry(settings: Settings, now: datetime) -> datetime:
    return now + timedelta(days=settings.notice.link_days)


def link(settings: Settings, token: str) -> str:
    return f"{settings.mail.public_url.rstrip('/')}/provider/{token}"


def parse(token: str) -> tuple[int, int] | None:
    """(notice id, expiry stamp) of a well-formed token; None otherwise."""
    found = TOKEN_RE.match(token or "")
    return (int(found.group(1)), int(found.group(2))) if found else None


def verify(key: bytes, token: str, nonce: str | None, now: datetime) -> LinkClaim:
    """The claim of a genuine token for a notice whose nonce is ``nonce`` (None: no such notice).
    Raises :class:`LinkError`: 404 forged or unknown, 410 genuine but expired."""
    parsed = parse(token)
    if parsed is None or nonce is None:
        raise LinkError(404, "no such notice link")
    notice_id, stamp = parsed
    if not hmac.compare_digest(_sign(key, notice_id, stamp, nonce), token.rsplit(".", 1)[1]):
        raise LinkError(404, "no such notice link")
    expires = datetime.fromtimestamp(stamp, UTC)
    if expires <= now:
        raise LinkError(410, "this link has expired")
    return LinkClaim(notice_id, expires)
