"""Items a partner hotline forwarded to us, and the statuses we send back (#11 part "forward", the
receiver's side; the sender's is :mod:`meldpunt.act.forwarding`).

Taking in (:func:`on_forward`, the channel's handler for ``forward`` messages, run in the
transaction that records the verified message, exactly once per message): the URL becomes a
report through the walk's own intake (``pipeline.intake.add_report``, source
``partner:<name>``), so our walk fetches it, matches it (our ``auto`` lists may decide), and our
analysts classify it; the sender's reference, classification, hosting facts and hashes are kept in
``forwards_in`` and shown on the item page. ``forwards_in (sender, reference)`` is unique: a
duplicate forward (another message, the same reference) is applied once. ``received`` goes back
in the same transaction.

Status back (:func:`tick_status`, every worker, every pass): one query over the open
``forwards_in`` rows (``done`` false, indexed) joined with the item's state, its triage status and
its takedown decides which statuses are due (:func:`due`); each is claimed by inserting
``forward_in_statuses (forward, status)`` (unique: several workers, one winner) and only the
winner queues its ``status`` message (key ``status:<reference>:<status>``, unique on the channel
too). A final status (removed, not_illegal, unavailable) closes the row.

The status body::

    {"reference": "<the sender's>", "status": "assessed", "at": ISO-8601,
     "their_reference": "item:<our item id>",
     "verdict": "illegal" | "not_illegal",        # assessed
     "classification": {"status": "baseline"},    # assessed: our scheme values
     "removed_at": ISO-8601}                      # removed
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from meldpunt.act import partners, survivor_abroad, timeline
from meldpunt.act.context import ActNeeds, utc
from meldpunt.act.routing import hash_list_labels
from meldpunt.domain.acting import EventKind, TakedownState
from meldpunt.domain.reports import ItemState, MediumOutcome
from meldpunt.domain.triage import Stage
from meldpunt.pipeline.intake import BadUrl, InvalidReport, ReportIn, add_report
from meldpunt.store.acting import Takedown
from meldpunt.store.forwarding import ForwardIn, ForwardInStatus
from meldpunt.store.reports import Item, Medium
from meldpunt.store.triage import TriageStatus

log = logging.getLogger(__name__)

BATCH = 500
FORWARD = "forward"
STATUS = "status"
FINAL = frozenset({"removed", "not_illegal", "unavailable"})
MAX_MEDIA = 200
#: the classification keys that are not scheme values
_NOT_VALUES = {"flags", "series", "media"}


def _insert(conn: Connection, table: Any) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _refuse(reason: str) -> partners.Refused:
    return partners.Refused(reason, status=422)


def _check(body: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """The forward's parts, or a refusal saying what is wrong (nothing is taken in)."""
    reference = body.get("reference")
    url = body.get("url")
    media = body.get("media", [])
    classification = body.get("classification", {})
    hosting = body.get("hosting", {})
    if not isinstance(reference, str) or not reference.strip() or len(reference) > 64:
        raise _refuse("a forward needs its reference (text, at most 64 characters)")
    if not isinstance(url, str) or not url.strip():
        raise _refuse("a forward needs the URL")
    if not isinstance(media, list) or len(media) > MAX_MEDIA or not all(isinstance(m, dict) for m in media):
        raise _refuse(f"media: a list of at most {MAX_MEDIA} objects of hashes")
    if not isinstance(classification, dict) or not isinstance(hosting, dict):
        raise _refuse("classification and hosting are objects")
    hashes = [
        {k: str(v)[:200] for k, v in m.items() if k in ("url", "kind", "sha256", "md5", "sha1", "pdq")}
        for m in media
    ]
    return reference.strip(), url.strip(), hashes, classification, hosting


def on_forward(services: Any, conn: Connection, sender: Any, body: dict[str, Any], meta: Any) -> None:
    """Take a forwarded item in (module docstring); a duplicate reference is a no-op."""
    reference, url, hashes, classification, hosting = _check(body)
    # a partner survivor's hashes (#12 part "abroad"): stored and matched even for a duplicate
    survivor_abroad.take(services, conn, sender.name, body.get("survivor"))
    earlier = conn.execute(
        select(ForwardIn.id).where(ForwardIn.sender == sender.name, ForwardIn.reference == reference)
    ).first()
    if earlier is not None:
        return
    now = services.clock.now()
    report = ReportIn(
        urls=[url],
        seen_on="other",
        description=f"Forwarded by partner hotline {sender.name}, their reference {reference}.",
        urgent=body.get("urgent") is True,
        source=f"partner:{sender.name}"[:120],
    )
    try:
        receipt = add_report(conn, report, now)
    except (InvalidReport, BadUrl) as e:
        raise _refuse(f"the URL cannot be taken in: {e}") from None
    item_id = receipt.item_ids[0]
    reported = body.get("reported_at")
    try:
        reported_at = utc(datetime.fromisoformat(reported)) if isinstance(reported, str) else None
    except (ValueError, OverflowError):  # a time beyond year 9999 in UTC
        reported_at = None
    forward_id = conn.execute(
        _insert(conn, ForwardIn)
        .values(
            sender=sender.name,
            reference=reference,
            item_id=item_id,
            report_id=receipt.report_id,
            url=url[:4000],
            classification=json.dumps(classification, sort_keys=True),
            hosting=json.dumps(hosting, sort_keys=True),
            media=json.dumps(hashes, sort_keys=True),
            urgent=report.urgent,
            reported_at=reported_at,
            received_at=now,
            done=False,
        )
        .returning(ForwardIn.id)
    ).scalar_one()
    timeline.record(
        conn,
        EventKind.FORWARD_RECEIVED,
        at=now,
        item_id=item_id,
        actor=sender.name,
        detail={"partner": sender.name, "reference": reference, "linked": bool(receipt.linked)},
    )
    _send(conn, services, int(forward_id), sender.name, reference, item_id, "received", now, {})


def _send(
    conn: Connection,
    services: Any,
    forward_id: int,
    sender: str,
    reference: str,
    item_id: int,
    status: str,
    at: datetime,
    facts: dict[str, Any],
) -> bool:
    """Claim and queue one status (False: it was sent before, by us or another worker)."""
    claimed = conn.execute(
        _insert(conn, ForwardInStatus)
        .values(forward_id=forward_id, status=status, at=at)
        .on_conflict_do_nothing(index_elements=["forward_id", "status"])
        .returning(ForwardInStatus.forward_id)
    ).first()
    if claimed is None:
        return False
    body = {
        "reference": reference,
        "status": status,
        "at": utc(at).isoformat(),
        "their_reference": f"item:{item_id}",
        **facts,
    }
    message_id = partners.send(conn, services, sender, STATUS, body, key=f"status:{reference}:{status}")
    conn.execute(
        update(ForwardInStatus)
        .where(ForwardInStatus.forward_id == forward_id, ForwardInStatus.status == status)
        .values(message_id=message_id)
    )
    return True


@dataclass(frozen=True)
class Facts:
    """What the status tick reads of one open forwarded item."""

    item_state: str
    item_updated_at: datetime
    stage: str | None
    final: str
    illegal: bool
    finalized_at: datetime | None
    takedown_state: str | None
    labels: str
    first_notice_at: datetime | None
    removed_at: datetime | None


def due(f: Facts, hash_verdict: dict[str, Any] | None = None) -> list[tuple[str, datetime, dict[str, Any]]]:
    """The statuses the item's state calls for, in order (``received`` is sent at intake).
    ``hash_verdict``: for a ``known`` item without a takedown, what its ``auto`` lists say."""
    out: list[tuple[str, datetime, dict[str, Any]]] = []
    state = f.item_state
    if state in (ItemState.UNAVAILABLE.value, ItemState.FAILED.value) and f.takedown_state is None:
        return [("unavailable", utc(f.item_updated_at), {"reason": state})]
    if state == ItemState.CLASSIFIED.value and f.stage == Stage.FINAL.value:
        values = {k: v for k, v in json.loads(f.final or "{}").items() if k not in _NOT_VALUES}
        at = utc(f.finalized_at or f.item_updated_at)
        out.append(
            ("assessed", at, {"verdict": "illegal" if f.illegal else "not_illegal", "classification": values})
        )
        if not f.illegal:
            out.append(("not_illegal", at, {}))
            return out
    elif state == ItemState.KNOWN.value:
        labels = json.loads(f.labels or "null") if f.takedown_state is not None else hash_verdict
        at = utc(f.item_updated_at)
        if labels:
            out.append(
                (
                    "assessed",
                    at,
                    {"verdict": "illegal", "classification": {"categories": labels.get("categories", [])}},
                )
            )
        else:
            out.append(("assessed", at, {"verdict": "not_illegal", "classification": {}}))
            out.append(("not_illegal", at, {}))
            return out
    if f.first_notice_at is not None:
        out.append(("notice_sent", utc(f.first_notice_at), {}))
    if f.takedown_state == TakedownState.REMOVED.value and f.removed_at is not None:
        out.append(("removed", utc(f.removed_at), {"removed_at": utc(f.removed_at).isoformat()}))
    return out


def _hash_verdicts(
    conn: Connection, item_ids: list[int], categories: list[str]
) -> dict[int, dict[str, Any] | None]:
    per: dict[int, list[dict[str, Any]]] = {}
    if item_ids:
        for r in conn.execute(
            select(Medium.item_id, Medium.matches).where(
                Medium.item_id.in_(item_ids), Medium.outcome == MediumOutcome.KNOWN.value
            )
        ):
            try:
                matches = json.loads(r.matches or "[]")
            except ValueError:
                continue
            if isinstance(matches, list):
                per.setdefault(int(r.item_id), []).extend(m for m in matches if isinstance(m, dict))
    return {i: hash_list_labels(per.get(i, []), categories) for i in item_ids}


def tick_status(services: ActNeeds) -> int:
    """Send the statuses that came due for items partners forwarded to us; the number sent."""
    sent, after = 0, 0
    while True:
        with services.engine.connect() as conn:
            rows = conn.execute(
                select(
                    ForwardIn.id,
                    ForwardIn.sender,
                    ForwardIn.reference,
                    ForwardIn.item_id,
                    Item.state.label("item_state"),
                    Item.updated_at.label("item_updated_at"),
                    TriageStatus.stage,
                    TriageStatus.final,
                    TriageStatus.illegal,
                    TriageStatus.finalized_at,
                    Takedown.state.label("takedown_state"),
                    Takedown.labels,
                    Takedown.first_notice_at,
                    Takedown.removed_at,
                )
                .join(Item, Item.id == ForwardIn.item_id)
                .outerjoin(TriageStatus, TriageStatus.item_id == ForwardIn.item_id)
                .outerjoin(Takedown, Takedown.item_id == ForwardIn.item_id)
                .where(ForwardIn.done.is_(False), ForwardIn.id > after)
                .order_by(ForwardIn.id)
                .limit(BATCH)
            ).all()
            if not rows:
                return sent
            ids = [int(r.id) for r in rows]
            already: dict[int, set[str]] = {}
            for fid, status in conn.execute(
                select(ForwardInStatus.forward_id, ForwardInStatus.status).where(
                    ForwardInStatus.forward_id.in_(ids)
                )
            ):
                already.setdefault(int(fid), set()).add(str(status))
            known = [
                int(r.item_id)
                for r in rows
                if r.item_state == ItemState.KNOWN.value and r.takedown_state is None
            ]
            verdicts = _hash_verdicts(conn, known, list(services.settings.act.hash_list_categories))
        for r in rows:
            facts = Facts(
                r.item_state,
                r.item_updated_at,
                r.stage,
                r.final or "",
                bool(r.illegal),
                r.finalized_at,
                r.takedown_state,
                r.labels or "",
                r.first_notice_at,
                r.removed_at,
            )
            todo = [
                d
                for d in due(facts, verdicts.get(int(r.item_id)))
                if d[0] not in already.get(int(r.id), set())
            ]
            if not todo:
                continue
            with services.engine.begin() as conn:
                for status, at, extra in todo:
                    sent += _send(
                        conn, services, int(r.id), r.sender, r.reference, int(r.item_id), status, at, extra
                    )
                if any(status in FINAL for status, _, _ in todo):
                    conn.execute(update(ForwardIn).where(ForwardIn.id == r.id).values(done=True))
        if len(rows) < BATCH:
            return sent
        after = int(rows[-1].id)


@dataclass(frozen=True)
class ForwardedIn:
    """For the item page: who forwarded it, their reference and what they said."""

    sender: str
    reference: str
    classification: dict[str, Any]
    hosting: dict[str, Any]
    media: list[dict[str, Any]]
    received_at: datetime
    statuses: list[tuple[str, datetime]]


def forwarded_in(services: ActNeeds, item_id: int) -> list[ForwardedIn]:
    """The partners' forwards that became (or joined) this item."""
    with services.engine.connect() as conn:
        rows = conn.execute(
            select(ForwardIn).where(ForwardIn.item_id == item_id).order_by(ForwardIn.id)
        ).all()
        out = []
        for r in rows:
            statuses = [
                (str(s.status), s.at)
                for s in conn.execute(
                    select(ForwardInStatus)
                    .where(ForwardInStatus.forward_id == r.id)
                    .order_by(ForwardInStatus.at)
                )
            ]
            out.append(
                ForwardedIn(
                    r.sender,
                    r.reference,
                    json.loads(r.classification or "{}"),
                    json.loads(r.hosting or "{}"),
                    json.loads(r.media or "[]"),
                    r.received_at,
                    statuses,
                )
            )
        return out


def register() -> None:
    partners.on_message(FORWARD, on_forward)


register()
