"""Forwarding a takedown to the partner hotline of the hosting country, and the statuses it sends
back (#11 part "forward", the sender's side; the receiver's side is :mod:`meldpunt.act.forward_in`).

Sending. Routing leaves a takedown in ``to_forward`` with ``forward_to`` = the rule's partner.
:func:`tick_forward` moves it ``to_forward -> forwarded`` and, **in that same transaction**, queues
a ``forward`` message on the signed partner channel (``partners.send``, key ``forward:<takedown>``)
and writes our ``forwards_out`` row: the state change and the message are durable together, so a
crash leaves either both or neither, and a re-run is a no-op (the conditional UPDATE on
``to_forward`` decides the one winner among several workers). ``forwarded`` means "handed to the
channel"; the channel's delivery hook records ``forward_sent`` (or ``forward_failed`` for a
permanent refusal, which puts the forward in the seniors' attention list). The sender's first
action on a forwarded takedown is the forward: ``first_notice_at`` is set to it, so time to removal
counts from there (the removals page's "from notice" column).

A partner name that is not configured: the takedown is ``held`` with the route line
``partner_unknown``; it shows on ``/act/attention`` and a senior routes it again once the partner
is added (or the rule changed).

The forward body (what the ICCAM part maps similar facts from)::

    {"reference": "BE-42-K7QD", "url": "https://...", "urls": ["https://...", "<final url>"],
     "media": [{"url": "...", "kind": "image", "sha256": "...", "md5": "...", "sha1": "...",
                "pdq": "..."}],                           # hashes only, never media
     "classification": {"values": {"status": "baseline", "us": "A1"}, "flags": [...],
                        "categories": [...], "decided_by": "analyst" | "hash_list",
                        "roles": ["analyst", "senior"]},  # roles, never people's names
     "hosting": {"host", "ip", "asn", "country", "provider", "network_owner", "abuse_email",
                 "located_at"},
     "reported_at": ISO-8601, "forwarded_at": ISO-8601, "urgent": false,
     "survivor": [{"ref": "<32 hex>", "hashes": [{"type": "pdq", "value": "..."}]}]}
                                    # only with a consenting survivor case: survivor_abroad

Statuses back (``status`` messages; :data:`STATUSES`): ``received``, ``assessed``,
``notice_sent``, ``removed``, ``not_illegal``, ``unavailable``. Applying one (:func:`on_status`):
an unknown reference is refused (404: nothing applied); a status seen before for the forward
changes nothing (unique ``forward_statuses (forward, status)``); otherwise a ``partner_status``
timeline line, and

- ``removed``: the takedown is ``removed`` at the partner's time T (never later than our clock);
- ``not_illegal``: it stays ``forwarded`` (re-checked still), and goes to the seniors' attention
  list: the sender decides what to do;
- ``unavailable``: like ``removed``, unless our own last re-check saw it online: then it stays
  ``forwarded`` and goes to the attention list (their fetch failing does not prove it gone).
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from meldpunt.act import partners, survivor_abroad, timeline
from meldpunt.act.context import ActNeeds, utc
from meldpunt.act.recheck import ONLINE_WORDS, minutes_between
from meldpunt.act.routing import waiting_ids
from meldpunt.audit import AuditEvent, record
from meldpunt.domain.acting import EventKind, TakedownState
from meldpunt.store.acting import Location, Takedown
from meldpunt.store.forwarding import ForwardOut, ForwardStatus
from meldpunt.store.reports import Item, Medium
from meldpunt.store.triage import TriageClassification

log = logging.getLogger(__name__)

BATCH = 200
FORWARD = "forward"
STATUS = "status"
#: what a partner reports back, in the order they usually come
STATUSES = ("received", "assessed", "notice_sent", "removed", "not_illegal", "unavailable")
#: after these nothing more is reported
FINAL_STATUSES = frozenset({"removed", "not_illegal", "unavailable"})
#: why a forward waits for a senior
ATTENTION = ("failed", "not_illegal", "unavailable_online")
#: statuses' facts kept (and shown); anything else in a body is ignored
_STATUS_FACTS = ("verdict", "illegal", "classification", "removed_at", "their_reference", "reason")


# -- sending ------------------------------------------------------------------------------------------


def new_reference(home: str, takedown_id: int) -> str:
    """Ours, quoted in every status back: ``BE-42-K7QD`` (country, takedown, 20 random bits)."""
    short = base64.b32encode(secrets.token_bytes(5)).decode()[:4]
    return f"{(home or 'XX').upper()[:2]}-{takedown_id}-{short}"


def tick_forward(services: ActNeeds) -> int:
    """Takedowns in ``to_forward``: forward each (or hold it when the partner is unknown)."""
    ids = waiting_ids(services, TakedownState.TO_FORWARD, BATCH)
    moved = 0
    for tid in ids:
        try:
            moved += forward_one(services, tid)
        except Exception:  # one bad row must not hold up the others; tried again next pass
            log.exception("forwarding takedown %s failed", tid)
    return moved


def forward_one(services: ActNeeds, takedown_id: int) -> bool:
    """Forward one takedown in ``to_forward``; False when another worker did it first."""
    now = services.clock.now()
    with services.engine.connect() as conn, conn.begin() as tx:
        td = conn.execute(
            select(Takedown, Item.url, Item.final_url, Item.urgent)
            .join(Item, Item.id == Takedown.item_id)
            .where(Takedown.id == takedown_id, Takedown.state == TakedownState.TO_FORWARD.value)
        ).first()
        if td is None:
            return False
        partner = td.forward_to
        if not partner or partners.Partners(services).get(partner) is None:
            return _hold(conn, tx, td, partner, now)
        won = conn.execute(
            update(Takedown)
            .where(Takedown.id == takedown_id, Takedown.state == TakedownState.TO_FORWARD.value)
            .values(
                state=TakedownState.FORWARDED.value,
                first_notice_at=func.coalesce(Takedown.first_notice_at, now),
                updated_at=now,
            )
        ).rowcount
        if won != 1:
            tx.rollback()
            return False
        old = conn.execute(select(ForwardOut).where(ForwardOut.takedown_id == takedown_id)).first()
        reference = (
            old.reference
            if old is not None
            else new_reference(services.settings.act.home_country, takedown_id)
        )
        body = forward_body(conn, td, reference, now)
        consented = survivor_abroad.outgoing(conn, services, partner, td.item_id)
        if consented:  # only hashes of cases whose survivor agreed (#12 part "abroad")
            body["survivor"] = consented
        # a takedown forwarded again (it moved and was routed to a partner again) is a new message
        key = f"forward:{takedown_id}" if not td.moves else f"forward:{takedown_id}:m{td.moves}"
        message_id = partners.send(conn, services, partner, FORWARD, body, key=key)
        if old is None:
            conn.execute(
                _insert(conn, ForwardOut).values(
                    takedown_id=takedown_id,
                    item_id=td.item_id,
                    partner=partner,
                    reference=reference,
                    message_id=message_id,
                    state="queued",
                    attention="",
                    attention_reason="",
                    last_status="",
                    created_at=now,
                    updated_at=now,
                )
            )
        else:
            conn.execute(
                update(ForwardOut)
                .where(ForwardOut.id == old.id)
                .values(partner=partner, message_id=message_id, state="queued", sent_at=None, updated_at=now)
            )
        timeline.record(
            conn,
            EventKind.FORWARD_QUEUED,
            at=now,
            item_id=td.item_id,
            detail={
                "takedown_id": takedown_id,
                "partner": partner,
                "reference": reference,
                "message_id": message_id,
            },
        )
    return True


def _hold(conn: Connection, tx: Any, td: Any, partner: str, now: datetime) -> bool:
    """The partner is not configured: held for a senior, with the reason as a route line."""
    route = json.loads(td.route or "{}")
    lines = [ln for ln in route.get("lines", []) if ln.get("code") != "partner_unknown"]
    lines.append({"code": "partner_unknown", "partner": partner})
    route["lines"] = lines
    route["state"] = TakedownState.HELD.value
    won = conn.execute(
        update(Takedown)
        .where(Takedown.id == td.id, Takedown.state == TakedownState.TO_FORWARD.value)
        .values(state=TakedownState.HELD.value, route=json.dumps(route, sort_keys=True), updated_at=now)
    ).rowcount
    if won != 1:
        tx.rollback()
        return False
    timeline.record(
        conn,
        EventKind.FORWARD_FAILED,
        at=now,
        item_id=td.item_id,
        detail={"takedown_id": td.id, "partner": partner, "reason": "partner_unknown"},
    )
    return True


def _insert(conn: Connection, table: Any) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _iso(at: datetime | None) -> str | None:
    return utc(at).isoformat() if at is not None else None


def forward_body(conn: Connection, td: Any, reference: str, now: datetime) -> dict[str, Any]:
    """What a forward carries (module docstring): URLs, hashes, classification, hosting facts."""
    labels = json.loads(td.labels or "{}")
    roles: list[str] = []
    if td.decided_by == "analyst":
        roles = sorted(
            {
                str(r)
                for r in conn.execute(
                    select(TriageClassification.role).where(TriageClassification.item_id == td.item_id)
                ).scalars()
            }
        )
    classification = {
        "values": dict(labels.get("classification") or {}),
        "flags": list(labels.get("flags") or []),
        "categories": list(labels.get("categories") or []),
        "decided_by": td.decided_by,
        "roles": roles,
    }
    if labels.get("banks"):
        classification["banks"] = list(labels["banks"])
    media = [
        {
            k: v
            for k, v in (
                ("url", m.url),
                ("kind", m.kind),
                ("sha256", m.sha256),
                ("md5", m.md5),
                ("sha1", m.sha1),
                ("pdq", m.pdq),
            )
            if v
        }
        for m in conn.execute(
            select(Medium.url, Medium.kind, Medium.sha256, Medium.md5, Medium.sha1, Medium.pdq)
            .where(Medium.item_id == td.item_id)
            .order_by(Medium.id)
        )
    ]
    hosting: dict[str, Any] = {}
    if td.location_id is not None:
        loc = conn.execute(select(Location).where(Location.id == td.location_id)).first()
        if loc is not None:
            hosting = {
                "host": loc.host,
                "ip": loc.ip,
                "asn": loc.asn,
                "country": loc.country,
                "provider": loc.provider,
                "network_owner": loc.network_owner,
                "abuse_email": loc.abuse_email,
                "located_at": _iso(loc.located_at),
            }
    urls = [td.url] + ([td.final_url] if td.final_url and td.final_url != td.url else [])
    return {
        "reference": reference,
        "url": td.url,
        "urls": urls,
        "media": media,
        "classification": classification,
        "hosting": hosting,
        "reported_at": _iso(td.reported_at),
        "forwarded_at": _iso(now),
        "urgent": bool(td.urgent),
    }


# -- the channel's delivery hooks ---------------------------------------------------------------------------


def _delivered(conn: Connection, message: Any) -> None:
    """The partner took the forward (2xx): ``forward_sent``; a retried dead letter leaves the
    attention list."""
    at = message.delivered_at or message.created
    row = conn.execute(select(ForwardOut).where(ForwardOut.message_id == message.id)).first()
    if row is None:
        return
    won = conn.execute(
        update(ForwardOut)
        .where(ForwardOut.id == row.id, ForwardOut.state.in_(("queued", "failed")))
        .values(
            state="sent",
            sent_at=at,
            updated_at=at,
            attention="" if row.attention == "failed" else row.attention,
            attention_reason="" if row.attention == "failed" else row.attention_reason,
        )
    ).rowcount
    if won == 1:
        timeline.record(
            conn,
            EventKind.FORWARD_SENT,
            at=at,
            item_id=row.item_id,
            detail={"partner": row.partner, "reference": row.reference, "attempts": message.attempts},
        )


def _dead(conn: Connection, message: Any, reason: str) -> None:
    """The partner refused it for good (or it could not be delivered): a senior looks."""
    row = conn.execute(select(ForwardOut).where(ForwardOut.message_id == message.id)).first()
    if row is None:
        return
    at = message.delivered_at or utc(row.updated_at)
    won = conn.execute(
        update(ForwardOut)
        .where(ForwardOut.id == row.id, ForwardOut.state == "queued")
        .values(state="failed", attention="failed", attention_reason=reason[:1000], updated_at=at)
    ).rowcount
    if won == 1:
        timeline.record(
            conn,
            EventKind.FORWARD_FAILED,
            at=at,
            item_id=row.item_id,
            detail={"partner": row.partner, "reference": row.reference, "reason": reason[:500]},
        )


# -- statuses back -----------------------------------------------------------------------------------------


def _when(text: object, now: datetime) -> datetime:
    """The partner's time of a status, never after ours (a clock ahead does not make a future)."""
    if isinstance(text, str):
        try:
            at = utc(datetime.fromisoformat(text))
        except (ValueError, OverflowError):  # a time beyond year 9999 in UTC
            return now
        return min(at, now)
    return now


def on_status(services: Any, conn: Connection, sender: Any, body: dict[str, Any], meta: Any) -> None:
    """A ``status`` message from a partner about one of our forwards (module docstring)."""
    reference = body.get("reference")
    status = body.get("status")
    if not isinstance(reference, str) or not reference or len(reference) > 64:
        raise partners.Refused("a status names the forward's reference", status=422)
    if status not in STATUSES:
        raise partners.Refused(f"unknown status {str(status)[:40]!r}", status=422)
    row = conn.execute(
        select(ForwardOut).where(ForwardOut.reference == reference, ForwardOut.partner == sender.name)
    ).first()
    if row is None:
        raise partners.Refused(f"no forward {reference} to {sender.name}", status=404)
    now = services.clock.now()
    at = _when(body.get("at"), now)
    facts = {k: body[k] for k in _STATUS_FACTS if k in body}
    made = conn.execute(
        _insert(conn, ForwardStatus)
        .values(
            forward_id=row.id, status=status, at=at, received_at=now, detail=json.dumps(facts, sort_keys=True)
        )
        .on_conflict_do_nothing(index_elements=["forward_id", "status"])
        .returning(ForwardStatus.id)
    ).first()
    if made is None:
        return  # this status came before: nothing changes twice
    conn.execute(
        update(ForwardOut)
        .where(ForwardOut.id == row.id)
        .values(last_status=status, last_status_at=at, updated_at=now)
    )
    detail = {"status": status, "partner": sender.name, "reference": reference, "at": at.isoformat(), **facts}
    timeline.record(
        conn, EventKind.PARTNER_STATUS, at=now, item_id=row.item_id, actor=sender.name, detail=detail
    )
    if status == "removed":
        _removed(conn, row, at, now, f"partner {sender.name}: removed")
    elif status == "not_illegal":
        _attention(conn, row, "not_illegal", str(facts.get("reason", "")), now)
    elif status == "unavailable":
        td = conn.execute(
            select(Takedown.last_check, Takedown.misses).where(Takedown.id == row.takedown_id)
        ).first()
        if td is not None and td.last_check in ONLINE_WORDS and not td.misses:
            _attention(conn, row, "unavailable_online", "our last re-check saw it online", now)
        else:
            _removed(conn, row, at, now, f"partner {sender.name}: unavailable")


def _attention(conn: Connection, row: Any, why: str, reason: str, now: datetime) -> None:
    conn.execute(
        update(ForwardOut)
        .where(ForwardOut.id == row.id)
        .values(attention=why, attention_reason=reason[:1000], updated_at=now)
    )


def _removed(conn: Connection, row: Any, at: datetime, now: datetime, reason: str) -> None:
    """The takedown is removed at the partner's time (if it is still forwarded: our own re-checks
    may have seen it gone first)."""
    td = conn.execute(
        select(Takedown.first_notice_at, Takedown.reported_at, Takedown.state).where(
            Takedown.id == row.takedown_id
        )
    ).first()
    if td is None or td.state != TakedownState.FORWARDED.value:
        return
    # never before we forwarded it (a partner's clock far behind, or a year-0001 date, must not make a
    # negative time to removal)
    if td.first_notice_at is not None:
        at = max(at, utc(td.first_notice_at))
    from_notice = minutes_between(td.first_notice_at, at) if td.first_notice_at is not None else None
    from_report = minutes_between(td.reported_at, at)
    won = conn.execute(
        update(Takedown)
        .where(Takedown.id == row.takedown_id, Takedown.state == TakedownState.FORWARDED.value)
        .values(
            state=TakedownState.REMOVED.value,
            removed_at=at,
            removal_reason=reason[:2000],
            minutes_from_notice=from_notice,
            minutes_from_report=from_report,
            next_check_at=None,
            updated_at=now,
        )
    ).rowcount
    if won == 1:
        timeline.record(
            conn,
            EventKind.REMOVED,
            at=now,
            item_id=row.item_id,
            detail={
                "removed_at": at.isoformat(),
                "reason": reason,
                "minutes_from_notice": from_notice,
                "minutes_from_report": from_report,
            },
        )


# -- for the item page and the seniors ------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusLine:
    status: str
    at: datetime
    received_at: datetime
    detail: dict[str, Any]


@dataclass(frozen=True)
class ForwardView:
    id: int
    takedown_id: int
    item_id: int
    partner: str
    reference: str
    message_id: int | None
    state: str
    attention: str
    attention_reason: str
    created_at: datetime
    sent_at: datetime | None
    url: str
    statuses: list[StatusLine]


def _view(conn: Connection, row: Any) -> ForwardView:
    statuses = [
        StatusLine(s.status, s.at, s.received_at, json.loads(s.detail or "{}"))
        for s in conn.execute(
            select(ForwardStatus)
            .where(ForwardStatus.forward_id == row.id)
            .order_by(ForwardStatus.at, ForwardStatus.id)
        )
    ]
    return ForwardView(
        id=int(row.id),
        takedown_id=int(row.takedown_id),
        item_id=int(row.item_id),
        partner=row.partner,
        reference=row.reference,
        message_id=row.message_id,
        state=row.state,
        attention=row.attention,
        attention_reason=row.attention_reason,
        created_at=row.created_at,
        sent_at=row.sent_at,
        url=row.url,
        statuses=statuses,
    )


def _select() -> Any:
    return select(ForwardOut, Item.url).join(Item, Item.id == ForwardOut.item_id)


def forward_of(services: ActNeeds, item_id: int) -> ForwardView | None:
    with services.engine.connect() as conn:
        row = conn.execute(_select().where(ForwardOut.item_id == item_id)).first()
        return _view(conn, row) if row is not None else None


def attention(services: ActNeeds, *, limit: int = 100) -> list[ForwardView]:
    """Forwards a senior must look at (failed for good, not illegal there, unavailable there but
    online here), oldest first."""
    with services.engine.connect() as conn:
        rows = conn.execute(
            _select()
            .where(ForwardOut.attention != "")
            .order_by(ForwardOut.updated_at, ForwardOut.id)
            .limit(limit)
        ).all()
        return [_view(conn, r) for r in rows]


class NotWaiting(ValueError):
    """The forward is not (any more) waiting for a senior."""


def noted(services: ActNeeds, forward_id: int, actor: str) -> None:
    """A senior has seen why a forward waited and decided (it stays re-checked): off the list,
    audited."""
    now = services.clock.now()
    with services.engine.begin() as conn:
        row = conn.execute(select(ForwardOut).where(ForwardOut.id == forward_id)).first()
        if row is None:
            raise LookupError(f"no forward {forward_id}")
        won = conn.execute(
            update(ForwardOut)
            .where(
                and_(
                    ForwardOut.id == forward_id,
                    ForwardOut.attention == row.attention,
                    ForwardOut.attention != "",
                )
            )
            .values(attention="", attention_reason="", updated_at=now)
        ).rowcount
        if won != 1:
            raise NotWaiting(f"forward {forward_id} is not waiting")
        record(
            conn,
            AuditEvent(
                actor,
                "forward.noted",
                f"item:{row.item_id}",
                {"forward": forward_id, "was": row.attention},
                at=now,
            ),
        )


def retry(services: ActNeeds, forward_id: int, actor: str) -> None:
    """A senior sends a failed forward again (the channel's dead letter is queued again)."""
    with services.engine.connect() as conn:
        row = conn.execute(select(ForwardOut).where(ForwardOut.id == forward_id)).first()
    if row is None:
        raise LookupError(f"no forward {forward_id}")
    if row.state != "failed" or row.message_id is None:
        raise NotWaiting(f"forward {forward_id} did not fail")
    partners.retry(services, int(row.message_id), actor=actor)
    now = services.clock.now()
    with services.engine.begin() as conn:
        conn.execute(
            update(ForwardOut)
            .where(ForwardOut.id == forward_id, ForwardOut.state == "failed")
            .values(state="queued", updated_at=now)
        )
        timeline.record(
            conn,
            EventKind.FORWARD_QUEUED,
            at=now,
            item_id=row.item_id,
            actor=actor,
            detail={"partner": row.partner, "reference": row.reference, "again": True},
        )


def register() -> None:
    """The channel's hooks for forwards and statuses (idempotent: the channel keeps one per kind)."""
    partners.on_delivered(FORWARD, _delivered)
    partners.on_dead(FORWARD, _dead)
    partners.on_message(STATUS, on_status)


register()
