"""Items waiting for review are matched again when the banks gain entries, and settle by themselves.

An analyst classifies a file and its hashes go to the own bank; a partner's list is imported. Copies
of that file may already wait in the queue, reported before: they are matched again — a durable
``rematch`` job, never inline in the request that changed the banks — and an item whose every
medium is now on an ``auto`` or benign list ends ``known`` without anyone viewing it (counted so on
the queue page); its review copies are purged. Media that are still new stay for the analyst.

Which items: those waiting for a first opinion (``needs_review`` with no opinion given). An item
someone has given an opinion on has been viewed; the analysts finish it.

When: every change to the banks bumps ``meta.banks_version`` in its own transaction. A worker
compares it with ``meta.rematched_version`` as it looks for work (at most every
``matcher_refresh_s``) and enqueues ``rematch`` with key ``rematch:<version>`` (so every worker
seeing it enqueues the same one job); the job raises ``rematched_version`` in the transaction that
finishes it. A crash anywhere leaves the versions apart, and the next look enqueues it again.
An item that settles for review after that job ran, matched by a matcher older than the change
(workers look at most every ``matcher_refresh_s``), gets a rematch job of its own as it settles.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, exists, select, update

from meldpunt.audit import AuditEvent, record
from meldpunt.domain import parse_vpdq
from meldpunt.domain.reports import ItemState, MediumOutcome, item_outcome
from meldpunt.pipeline.jobs import enqueue
from meldpunt.pipeline.matching import Match, Matcher
from meldpunt.signals import MediaKind, Signals
from meldpunt.store.banks import BANKS_VERSION
from meldpunt.store.models import Meta
from meldpunt.store.reports import Item, Medium
from meldpunt.store.triage import TriageStatus

log = logging.getLogger(__name__)

REMATCH = "rematch"
REMATCHED_VERSION = "rematched_version"
#: how many waiting items one transaction settles
BATCH = 200


def _counter(conn: Connection, name: str) -> int:
    return int(conn.execute(select(Meta.value).where(Meta.name == name)).scalar() or 0)


def enqueue_if_due(engine: Engine, *, max_attempts: int = 5) -> int | None:
    """Enqueue the rematch of the current ``banks_version`` when the waiting items were last matched
    at an older one (when none waits, only note the version); the version when a job is (or
    already was) queued, else None."""
    with engine.begin() as conn:
        version = _counter(conn, BANKS_VERSION)
        if version <= _counter(conn, REMATCHED_VERSION):
            return None
        if not waiting_items(conn, limit=1):  # nothing waits: nothing to match again
            mark_rematched(conn, version)
            return None
        enqueue(conn, REMATCH, f"rematch:{version}", {"version": version}, max_attempts=max_attempts)
        return version


def rematch_due(conn: Connection, matched_at: int | None) -> int | None:
    """The current ``banks_version`` when it is newer than ``matched_at`` (the version a matcher
    reflected when it matched), else None."""
    version = _counter(conn, BANKS_VERSION)
    return version if matched_at is None or version > matched_at else None


def waiting_items(conn: Connection, after: int = 0, limit: int = BATCH) -> list[int]:
    """Items waiting for a first opinion, by id, after ``after``."""
    no_opinion = ~exists().where(TriageStatus.item_id == Item.id)
    return [
        int(i)
        for i in conn.execute(
            select(Item.id)
            .where(Item.state == ItemState.NEEDS_REVIEW.value, Item.id > after, no_opinion)
            .order_by(Item.id)
            .limit(limit)
        ).scalars()
    ]


def stored_signals(m: Any) -> Signals:
    """A medium's signals as the walk stored them (no bytes are kept for this: they are not needed)."""
    return Signals(
        path=m.url,
        size=int(m.size),
        md5=m.md5,
        sha1=m.sha1,
        sha256=m.sha256,
        kind=MediaKind(m.kind) if m.kind in {k.value for k in MediaKind} else MediaKind.OTHER,
        pdq=m.pdq or None,
        pdq_quality=m.pdq_quality,
        orientation=m.orientation,
        pdq_stored=m.pdq_stored or None,
        pdq_stored_quality=m.pdq_stored_quality,
        vpdq=parse_vpdq(m.vpdq) if m.vpdq else None,
    )


def settled_outcome(matches: list[Match]) -> MediumOutcome | None:
    """What a list now says of a medium that was new: known (auto), ignored (benign), else None."""
    policies = {m.policy for m in matches}
    if "auto" in policies:
        return MediumOutcome.KNOWN
    if "ignore" in policies:
        return MediumOutcome.IGNORED
    return None


def rematch_item(
    conn: Connection, item_id: int, matcher: Matcher, purge: Any, now: datetime, version: int
) -> ItemState | None:
    """Match the item's new media again in the caller's transaction; the item's new state when
    every medium is settled now (``known``), else None. ``purge(conn, medium_id)`` drops a review
    copy no one needs any more."""
    # The item's row first: a concurrent first opinion or another rematch waits, then sees this.
    locked = conn.execute(
        update(Item)
        .where(Item.id == item_id, Item.state == ItemState.NEEDS_REVIEW.value)
        .where(~exists().where(TriageStatus.item_id == Item.id))
        .values(updated_at=now)
    ).rowcount
    if not locked:
        return None
    changed = 0
    for m in conn.execute(
        select(Medium).where(Medium.item_id == item_id, Medium.outcome == MediumOutcome.NEW.value)
    ).all():
        matches = matcher.match(stored_signals(m))
        outcome = settled_outcome(matches)
        if outcome is None:
            continue
        changed += conn.execute(
            update(Medium)
            .where(Medium.id == m.id, Medium.outcome == MediumOutcome.NEW.value)
            .values(outcome=outcome.value, matches=json.dumps([x.to_json_dict() for x in matches]))
        ).rowcount
        purge(conn, int(m.id))
    if not changed:
        return None
    outcomes = [
        MediumOutcome(o)
        for o in conn.execute(select(Medium.outcome).where(Medium.item_id == item_id)).scalars()
    ]
    final = item_outcome(outcomes)
    if final is not ItemState.KNOWN:
        return None
    conn.execute(update(Item).where(Item.id == item_id).values(state=final.value, updated_at=now))
    record(
        conn,
        AuditEvent(
            "system",
            "item.settled_by_list",
            f"item:{item_id}",
            details={"banks_version": version},
            at=now,
        ),
    )
    return final


def mark_rematched(conn: Connection, version: int) -> None:
    """Raise ``rematched_version`` to ``version`` (never lower it), in the job's finishing transaction."""
    conn.execute(
        update(Meta).where(Meta.name == REMATCHED_VERSION, Meta.value < version).values(value=version)
    )


def _now() -> datetime:
    return datetime.now(UTC)
