"""An item's history: who did what when, from the item's own rows (report, media, opinions, its
final classification) and the audit log's entries about it.

The history keeps the second opinion blind: while an item may still be classified (no opinion
yet, or awaiting a second one) a viewer sees the walk's facts (received, fetched, matched) and
only their own steps; other people's claims, reveals and opinions appear once the item is final,
or, to a senior who may resolve it, once it is a disagreement. Opinions show who gave which kind
(first, second, resolution, correction) and when, never the classification itself. Repeated page
views by one person in a row are one line, and renewing a claim is not a new claim.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from meldpunt.accounts.roles import allowed
from meldpunt.domain.reports import MediumOutcome
from meldpunt.domain.triage import Stage
from meldpunt.store.audit import AuditEntryRow
from meldpunt.store.reports import Item, Medium, Report, ReportItem
from meldpunt.store.triage import TriageClassification, TriageStatus
from meldpunt.triage.queue import utc

#: what an event of the history may be (``Event.what``)
WHATS = (
    "received",
    "reported_again",
    "fetched",
    "not_fetched",
    "matched",
    "settled_by_list",
    "claimed",
    "released",
    "viewed",
    "revealed",
    "opinion",
    "decided",
)
#: audit actions shown, and what they are called in the history
_AUDITED = {
    "item.settled_by_list": "settled_by_list",
    "item.claim": "claimed",
    "item.release": "released",
    "item.view": "viewed",
    "item.reveal": "revealed",
}
#: the most audit entries read for one item (a long-open item viewed all day stays readable)
MAX_AUDIT = 2000


@dataclass(frozen=True)
class Event:
    at: datetime
    #: one of :data:`WHATS`
    what: str
    #: who: a user name, ``system``, or for ``received``/``reported_again`` the report's source
    actor: str
    #: what else the event says: ``n`` (media, views), ``known`` (media on a list), ``medium``,
    #: ``role`` (of an opinion), ``state`` (why an item was not fetched)
    params: dict[str, Any] = field(default_factory=dict)


def item_history(conn: Connection, item_id: int, viewer: str, role: str | None) -> list[Event]:
    """The item's history as ``viewer`` (of ``role``) may see it, oldest first; empty when there
    is no such item."""
    item = conn.execute(
        select(Item.created_at, Item.updated_at, Item.state, Report.source, Item.report_id)
        .join(Report, Report.id == Item.report_id)
        .where(Item.id == item_id)
    ).first()
    if item is None:
        return []
    stage = conn.execute(select(TriageStatus.stage).where(TriageStatus.item_id == item_id)).scalar()
    everyone = stage == Stage.FINAL or (stage == Stage.DISAGREEMENT and allowed(role, "disagreement.resolve"))
    if stage is None and item.state not in ("needs_review", "classified"):
        everyone = True  # never queued: nobody's opinion to keep blind
    out = [Event(utc(item.created_at), "received", item.source)]
    again = conn.execute(
        select(Report.created_at, Report.source)
        .join(ReportItem, ReportItem.report_id == Report.id)
        .where(ReportItem.item_id == item_id, Report.id != item.report_id)
    )
    out += [Event(utc(r.created_at), "reported_again", r.source) for r in again]
    media = conn.execute(
        select(Medium.outcome, func.count(), func.min(Medium.created_at), func.max(Medium.created_at))
        .where(Medium.item_id == item_id)
        .group_by(Medium.outcome)
    ).all()
    if media:
        n = sum(int(r[1]) for r in media)
        known = sum(
            int(r[1]) for r in media if r[0] in (MediumOutcome.KNOWN.value, MediumOutcome.IGNORED.value)
        )
        first = min(utc(r[2]) for r in media)
        out.append(Event(first, "fetched", "system", {"n": n}))
        if any(r[0] for r in media):
            last = max(utc(r[3]) for r in media)
            out.append(Event(last, "matched", "system", {"n": n, "known": known}))
    elif item.state in ("unavailable", "failed"):
        out.append(Event(utc(item.updated_at), "not_fetched", "system", {"state": item.state}))
    out += _audited(conn, item_id, viewer, everyone)
    opinions = conn.execute(
        select(TriageClassification.user, TriageClassification.role, TriageClassification.created_at)
        .where(TriageClassification.item_id == item_id)
        .order_by(TriageClassification.id)
    )
    out += [
        Event(utc(r.created_at), "opinion", r.user, {"role": r.role})
        for r in opinions
        if everyone or r.user == viewer
    ]
    if stage == Stage.FINAL:
        at = conn.execute(select(TriageStatus.finalized_at).where(TriageStatus.item_id == item_id)).scalar()
        if at is not None:
            out.append(Event(utc(at), "decided", "system"))
    return sorted(out, key=lambda e: (e.at, WHATS.index(e.what)))


def _audited(conn: Connection, item_id: int, viewer: str, everyone: bool) -> list[Event]:
    q = (
        select(AuditEntryRow.at, AuditEntryRow.actor, AuditEntryRow.action, AuditEntryRow.details)
        .where(AuditEntryRow.subject == f"item:{item_id}", AuditEntryRow.action.in_(list(_AUDITED)))
        .order_by(AuditEntryRow.seq.desc())
        .limit(MAX_AUDIT)
    )
    if not everyone:
        q = q.where(AuditEntryRow.actor.in_([viewer, "system"]))
    out: list[Event] = []
    for r in reversed(conn.execute(q).all()):
        details = _details(r.details)
        what = _AUDITED[r.action]
        if what == "claimed" and details.get("renewed"):
            continue
        last = out[-1] if out else None
        if what == "viewed" and last is not None and last.what == "viewed" and last.actor == r.actor:
            out[-1] = Event(last.at, "viewed", r.actor, {"n": last.params["n"] + 1, "until": utc(r.at)})
            continue
        params: dict[str, Any] = {"n": 1} if what == "viewed" else {}
        if what == "revealed" and isinstance(details.get("medium"), int):
            params["medium"] = details["medium"]
        out.append(Event(utc(r.at), what, r.actor, params))
    return out


def _details(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}
