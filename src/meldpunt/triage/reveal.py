"""Reveals: a medium's stored bytes for a rendering, the reveal itself (counted in the analyst's
viewing time and written to the audit log) and the single use of a reveal grant.

The web signs and checks a grant (a short-lived token); this module decides, in the database, that
each grant renders its image once, whichever web process serves it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from meldpunt.audit import AuditEvent, record
from meldpunt.store.reports import Medium
from meldpunt.store.triage import RevealGrantUse
from meldpunt.triage.classify import Triage
from meldpunt.wellness import REVEAL_SECONDS as REVEAL_VIEWING_SECONDS
from meldpunt.wellness import Today, Wellness

#: how long a reveal grant lasts (seconds), and it is good for one rendering only
GRANT_SECONDS = 60


class NoSuchMedium(LookupError):
    """The medium is not this item's, or its stored bytes are gone."""


class RevealBlocked(Exception):
    """The analyst is past the daily viewing limit and the defaults switch reveals off."""

    def __init__(self, today: Today) -> None:
        super().__init__("reveal blocked by the daily viewing limit")
        self.today = today


@dataclass(frozen=True)
class StoredMedium:
    data: bytes
    name: str


def medium_bytes(t: Triage, item_id: int, medium_id: int) -> StoredMedium:
    """The medium's stored bytes and a short name for it; :class:`NoSuchMedium` when it is not
    this item's or is gone."""
    with t.engine.connect() as conn:
        url = conn.execute(
            select(Medium.url).where(Medium.id == medium_id, Medium.item_id == item_id)
        ).scalar()
        if url is None:
            raise NoSuchMedium(medium_id)
        try:
            data = t.review_store.get(conn, medium_id)
        except KeyError:
            raise NoSuchMedium(medium_id) from None
    return StoredMedium(data, str(url).rsplit("/", 1)[-1][:100])


def reveal(t: Triage, wellness: Wellness, user: str, item_id: int, medium_id: int) -> Today:
    """Reveal a medium on purpose: :class:`NoSuchMedium` unless it is there to reveal,
    :class:`RevealBlocked` past the daily limit; otherwise counted in the viewing time and audited.
    Returns the viewing time of the day after it."""
    medium_bytes(t, item_id, medium_id)
    today = wellness.today(user)
    if today.reveal_blocked:
        raise RevealBlocked(today)
    today = wellness.add(user, REVEAL_VIEWING_SECONDS)
    with t.engine.begin() as conn:
        record(conn, AuditEvent(user, "item.reveal", f"item:{item_id}", details={"medium": medium_id}))
    return today


def grant_used(engine: Engine, nonce: str) -> bool:
    """Whether a reveal grant has rendered its image already (by any web process)."""
    with engine.connect() as conn:
        found = conn.execute(select(RevealGrantUse.nonce).where(RevealGrantUse.nonce == nonce[:64])).first()
    return found is not None


def use_grant(engine: Engine, nonce: str, now: datetime) -> bool:
    """Mark a reveal grant used; False when it was used already (by any web process: the
    table's key decides). Uses older than twice a grant's life are dropped on the way."""
    try:
        with engine.begin() as conn:
            conn.execute(
                delete(RevealGrantUse).where(
                    RevealGrantUse.used_at < now - timedelta(seconds=2 * GRANT_SECONDS)
                )
            )
            conn.execute(insert(RevealGrantUse).values(nonce=nonce[:64], used_at=now))
    except IntegrityError:
        return False
    return True
