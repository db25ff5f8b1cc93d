"""Notices batched per abuse contact, reminders, escalation and providers' answers (#10 part
"notices").

A routed takedown (``to_notice``, its ``contact_id`` set) joins its contact's **collecting** notice
(one per contact: a unique partial index, so ticks in several workers cannot open two). When the
batching window (``notice.batch_hours``) has closed and it is a sending day (``quiet_weekdays``,
``holidays``), the notice is rendered (:mod:`meldpunt.act.notice_text`) and queued in the outbox
(``sending``); the outbox's hooks record the outcome in the transaction that records the delivery:
sent -> the notice ``sent``, its takedowns ``noticed``; failed for good -> the notice to the seniors'
overdue queue, the contact ``suspect`` when the recipient's side refused.

While any item of a sent notice is online (its takedown is not ``removed``), a reminder (a new
round, a new outbox message listing only what is still online) goes every ``renotice_hours``; after
``escalate_after`` reminders the notice escalates to the overdue queue, and ``police_after_hours``
later to the police. A notice whose items are all removed closes.

Every move is a conditional UPDATE on the state it moves from, and only the winner writes the
timeline and queues messages, so the tick may run in every worker at once.
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, DateTime, and_, delete, exists, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from meldpunt.act import notice_links, notice_text, outbox, timeline
from meldpunt.act.context import ActNeeds, utc
from meldpunt.act.notice_text import MediumHashes, NoticeLine, NoticeWords
from meldpunt.domain.acting import DeliveryState, EventKind, NoticeState, TakedownState
from meldpunt.settings import Settings
from meldpunt.store.acting import Contact, Notice, NoticeItem, OutboxMessage, Takedown
from meldpunt.store.reports import Item, Medium

log = logging.getLogger(__name__)

#: the outbox purpose of notices and their reminders
PURPOSE = "notice"
#: letters of a reference: no 0/O, 1/I/L, 8/B, 5/S, U/V, so one read over the phone survives
REFERENCE_LETTERS = "234679ACDEFGHJKMNPQRTWXYZ"
#: takedown states whose URL no longer needs a notice
DONE_STATES = (TakedownState.REMOVED.value, TakedownState.CLOSED.value)
#: notice states that may still need reminders, escalation or closing
OPEN_STATES = (NoticeState.SENDING.value, NoticeState.SENT.value, NoticeState.FAILED.value)
#: media hashes listed per URL at most (a gallery page lists its first ones)
MEDIA_PER_URL = 50
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def new_reference() -> str:
    """A notice's reference, e.g. ``MP-7Q3K-9XH2`` (25^8: a clash is retried by the unique key)."""
    letters = [secrets.choice(REFERENCE_LETTERS) for _ in range(8)]
    return f"MP-{''.join(letters[:4])}-{''.join(letters[4:])}"


# --- the calendar -------------------------------------------------------------------------------


def _zone(settings: Settings) -> ZoneInfo:
    return ZoneInfo(settings.web.time_zone)


def sending_day(settings: Settings, at: datetime) -> bool:
    """Whether notices go out on ``at``'s day in the hotline's time zone."""
    local = at.astimezone(_zone(settings))
    quiet = {d.strip().lower()[:3] for d in settings.notice.quiet_weekdays}
    return WEEKDAYS[local.weekday()] not in quiet and local.date().isoformat() not in settings.notice.holidays


def next_sending_time(settings: Settings, at: datetime) -> datetime:
    """``at`` if it falls on a sending day, else the start of the next sending day (local midnight)."""
    if sending_day(settings, at):
        return at
    zone = _zone(settings)
    day = at.astimezone(zone).date()
    for _ in range(366):
        day += timedelta(days=1)
        start = datetime.combine(day, time(0, 0), zone)
        if sending_day(settings, start):
            return utc(start)
    return at  # every day quiet: a misconfiguration; do not stall notices for ever


# --- batching -----------------------------------------------------------------------------------


def _dialect_insert(conn: Connection) -> Any:
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


def _collecting_notice(conn: Connection, contact: Any, settings: Settings, now: datetime) -> int | None:
    """The contact's collecting notice, opened when it has none; its row locked (PostgreSQL) so a
    notice being sent meanwhile takes no new items. None when it stopped collecting under us."""
    language = notice_text.pick_language(settings, contact.language or settings.notice.language)
    for _ in range(5):
        conn.execute(
            _dialect_insert(conn)(Notice)
            .values(
                reference=new_reference(),
                contact_id=contact.id,
                channel=contact.channel,
                address=contact.address,
                language=language,
                state=NoticeState.COLLECTING.value,
                opened_at=now,
                send_after=now + timedelta(hours=settings.notice.batch_hours),
                rounds=0,
                escalation=0,
                token_nonce=secrets.token_hex(16),
                closed_reason="",
            )
            .on_conflict_do_nothing(
                index_elements=["contact_id"], index_where=Notice.state == NoticeState.COLLECTING.value
            )
        )
        found = conn.execute(
            select(Notice.id)
            .where(Notice.contact_id == contact.id, Notice.state == NoticeState.COLLECTING.value)
            .with_for_update()
        ).scalar()
        if found is not None:
            return int(found)
    return None


def _collect(services: ActNeeds, now: datetime) -> int:
    """Routed takedowns into their contact's collecting notice; the number added."""
    # once in a notice to its contact, a takedown is that notice's (sending, sent, failed or closed
    # by a senior); only a takedown routed to another contact (a move) joins a new notice
    in_collecting = exists().where(
        NoticeItem.takedown_id == Takedown.id,
        NoticeItem.notice_id == Notice.id,
        Notice.contact_id == Takedown.contact_id,
    )
    with services.engine.connect() as conn:
        waiting = conn.execute(
            select(Takedown.id, Takedown.item_id, Takedown.contact_id)
            .where(
                Takedown.state == TakedownState.TO_NOTICE.value,
                Takedown.contact_id.is_not(None),
                ~in_collecting,
            )
            .order_by(Takedown.contact_id, Takedown.id)
            .limit(5000)
        ).all()
    by_contact: dict[int, list[Any]] = {}
    for row in waiting:
        by_contact.setdefault(int(row.contact_id), []).append(row)
    added = 0
    for contact_id, rows in by_contact.items():
        with services.engine.begin() as conn:
            # the list above may be stale (another worker may have noticed them since): look again
            still = conn.execute(
                select(Takedown.id, Takedown.item_id).where(
                    Takedown.id.in_([r.id for r in rows]),
                    Takedown.state == TakedownState.TO_NOTICE.value,
                    Takedown.contact_id == contact_id,
                    ~in_collecting,
                )
            ).all()
            contact = conn.execute(select(Contact).where(Contact.id == contact_id)).first()
            if not still or contact is None:
                continue
            notice_id = _collecting_notice(conn, contact, services.settings, now)
            if notice_id is None:
                continue
            for takedown_id, item_id in still:
                if _join(conn, notice_id, contact_id, int(takedown_id), now):
                    added += 1
                    timeline.record(
                        conn, EventKind.NOTICE_QUEUED, at=now, item_id=item_id, notice_id=notice_id
                    )
    return added


def _join(conn: Connection, notice_id: int, contact_id: int, takedown_id: int, now: datetime) -> bool:
    """Add a takedown to the (locked) collecting notice unless a notice to this contact has it
    already — one statement, so a notice sent by another worker a moment ago is seen."""
    other = (
        select(NoticeItem.takedown_id)
        .join(Notice, Notice.id == NoticeItem.notice_id)
        .where(NoticeItem.takedown_id == takedown_id, Notice.contact_id == contact_id)
    )
    values = select(
        literal(notice_id),
        literal(takedown_id),
        literal(now, DateTime(timezone=True)),
        literal(""),
        literal(""),
    ).where(~exists(other))
    joined = conn.execute(
        _dialect_insert(conn)(NoticeItem)
        .from_select(["notice_id", "takedown_id", "added_at", "answer", "answer_note"], values)
        .on_conflict_do_nothing()
        .returning(NoticeItem.takedown_id)
    ).first()
    return joined is not None


# --- what a notice says -------------------------------------------------------------------------


def _outstanding(notice_id: Any, contact_id: Any) -> Any:
    """Items of a notice still to be removed: their takedown is not done and still this contact's
    (a takedown that moved to another host is another contact's business now)."""
    return and_(
        NoticeItem.notice_id == notice_id,
        Takedown.id == NoticeItem.takedown_id,
        Takedown.state.notin_(DONE_STATES),
        or_(Takedown.contact_id == contact_id, Takedown.contact_id.is_(None)),
    )


def _lines(conn: Connection, notice: Any) -> list[NoticeLine]:
    rows = conn.execute(
        select(Takedown.id, Takedown.item_id, Takedown.route, Takedown.reported_at, Item.url)
        .select_from(NoticeItem)
        .join(Takedown, Takedown.id == NoticeItem.takedown_id)
        .join(Item, Item.id == Takedown.item_id)
        .where(_outstanding(notice.id, notice.contact_id))
        .order_by(Takedown.id)
    ).all()
    lines = []
    for row in rows:
        media = conn.execute(
            select(Medium.sha256, Medium.md5, Medium.pdq)
            .where(Medium.item_id == row.item_id, Medium.sha256 != "")
            .order_by(Medium.id)
            .limit(MEDIA_PER_URL)
        ).all()
        try:
            route = json.loads(row.route or "{}")
        except ValueError:
            route = {}
        lines.append(
            NoticeLine(
                takedown_id=int(row.id),
                url=row.url,
                first_seen=utc(row.reported_at),
                media=tuple(MediumHashes(m.sha256, m.md5 or "", m.pdq or "") for m in media),
                ask_origin=bool(isinstance(route, dict) and route.get("ask_origin")),
            )
        )
    return lines


def _queue_round(
    conn: Connection, services: ActNeeds, notice: Any, round: int, lines: list[NoticeLine]
) -> int:
    """Render round ``round`` of ``notice`` and queue it in the outbox; the outbox id (0: queued
    before)."""
    settings, now = services.settings, services.clock.now()
    expires = notice_links.expiry(settings, now)
    token = notice_links.make_token(
        notice_links.link_key(settings), int(notice.id), notice.token_nonce, expires
    )
    words = NoticeWords(
        reference=notice.reference,
        hotline=settings.web.hotline_name,
        language=notice.language,
        round=round,
        items=tuple(lines),
        link=notice_links.link(settings, token),
        link_expires=expires,
        first_sent=utc(notice.sent_at) if notice.sent_at else None,
    )
    subject, body = notice_text.render(settings, words)
    queued = outbox.queue_message(
        conn,
        purpose=PURPOSE,
        ref_id=int(notice.id),
        round=round,
        channel=notice.channel,
        target=notice.address,
        subject=subject,
        body=body,
        headers={"X-Meldpunt-Reference": notice.reference} if notice.channel == "email" else {},
        data=notice_text.webhook_data(words) if notice.channel != "email" else None,
        now=now,
    )
    return queued or 0


def _close(
    conn: Connection, notice_id: int, now: datetime, *, reason: str = "", actor: str = "system"
) -> bool:
    moved = conn.execute(
        update(Notice)
        .where(Notice.id == notice_id, Notice.state != NoticeState.CLOSED.value)
        .values(state=NoticeState.CLOSED.value, closed_at=now, closed_reason=reason, next_notice_at=None)
    ).rowcount
    if moved == 1:
        timeline.record(
            conn,
            EventKind.CLOSED,
            at=now,
            notice_id=notice_id,
            actor=actor,
            detail={"reason": reason or "removed"},
        )
    return moved == 1


# --- sending and reminding ----------------------------------------------------------------------


def _send_due(services: ActNeeds, now: datetime) -> int:
    """Collecting notices whose window closed: queue their first message (or close them when
    everything in them is gone already)."""
    with services.engine.connect() as conn:
        due = (
            conn.execute(
                select(Notice.id).where(
                    Notice.state == NoticeState.COLLECTING.value, Notice.send_after <= now
                )
            )
            .scalars()
            .all()
        )
    moved = 0
    for notice_id in due:
        with services.engine.begin() as conn:
            won = conn.execute(
                update(Notice)
                .where(Notice.id == notice_id, Notice.state == NoticeState.COLLECTING.value)
                .values(state=NoticeState.SENDING.value)
            ).rowcount
            if won != 1:
                continue
            notice = conn.execute(select(Notice).where(Notice.id == notice_id)).one()
            lines = _lines(conn, notice)
            if (
                not lines
                and not conn.execute(
                    select(NoticeItem.takedown_id).where(NoticeItem.notice_id == notice_id)
                ).first()
            ):
                conn.execute(delete(Notice).where(Notice.id == notice_id))  # opened in a lost race: empty
            elif not lines:
                _close(conn, notice_id, now, reason="removed before it was sent")
            elif (notice := _current_target(conn, notice, now)) is not None:
                _queue_round(conn, services, notice, 1, lines)
            moved += 1
    return moved


def _current_target(conn: Connection, notice: Any, now: datetime) -> Any:
    """The notice with its contact's address as it is now (a senior may have corrected it since
    the notice opened); None — and the notice held in the overdue queue — when the contact may no
    longer be told (marked "do not contact", no longer accepting notices, or gone)."""
    contact = (
        conn.execute(select(Contact).where(Contact.id == notice.contact_id)).first()
        if notice.contact_id is not None
        else None
    )
    hold = (
        "the contact is gone"
        if contact is None
        else "the contact is marked do not contact"
        if contact.do_not_contact
        else "the contact does not accept these notices"
        if not contact.accepts or contact.channel == "none"
        else ""
    )
    if hold or contact is None:
        conn.execute(
            update(Notice)
            .where(Notice.id == notice.id)
            .values(state=NoticeState.FAILED.value, next_notice_at=None)
        )
        timeline.record(conn, EventKind.DELIVERY_FAILED, at=now, notice_id=notice.id, detail={"reason": hold})
        _escalate(conn, notice.id, 1, now, reason=hold)
        return None
    if (contact.channel, contact.address) != (notice.channel, notice.address):
        conn.execute(
            update(Notice)
            .where(Notice.id == notice.id)
            .values(channel=contact.channel, address=contact.address)
        )
        return conn.execute(select(Notice).where(Notice.id == notice.id)).one()
    return notice


def _remind_due(services: ActNeeds, now: datetime) -> int:
    """Sent notices whose reminder is due: a new round listing what is still online; escalation to
    the seniors after ``escalate_after`` reminders."""
    settings = services.settings.notice
    with services.engine.connect() as conn:
        due = conn.execute(
            select(Notice.id, Notice.next_notice_at).where(
                Notice.state == NoticeState.SENT.value,
                Notice.next_notice_at.is_not(None),
                Notice.next_notice_at <= now,
            )
        ).all()
    moved = 0
    for notice_id, due_at in due:
        with services.engine.begin() as conn:
            won = conn.execute(
                update(Notice)
                .where(
                    Notice.id == notice_id,
                    Notice.state == NoticeState.SENT.value,
                    Notice.next_notice_at == due_at,
                )
                .values(next_notice_at=None)
            ).rowcount
            if won != 1:
                continue
            notice = conn.execute(select(Notice).where(Notice.id == notice_id)).one()
            if _too_soon(conn, services, notice_id, now):
                continue
            lines = _lines(conn, notice)
            if not lines:
                _close(conn, notice_id, now)
                moved += 1
                continue
            if notice.rounds - 1 >= settings.escalate_after and notice.escalation == 0:
                _escalate(conn, notice_id, 1, now, reason=f"{notice.rounds - 1} reminders without removal")
            notice = _current_target(conn, notice, now)
            if notice is None:
                moved += 1
                continue
            last = conn.execute(
                select(func.max(OutboxMessage.round)).where(
                    OutboxMessage.purpose == PURPOSE, OutboxMessage.ref_id == notice_id
                )
            ).scalar()
            _queue_round(conn, services, notice, max(int(last or 0), notice.rounds) + 1, lines)
            moved += 1
    return moved


def _too_soon(conn: Connection, services: ActNeeds, notice_id: int, now: datetime) -> bool:
    """Whether a reminder now would follow the last round too closely: one is still in the outbox,
    or the last was delivered less than ``renotice_hours`` ago (then the reminder is put back to
    its proper time). Looked up in the transaction that won the reminder, because the schedule
    it won may be stale: a worker's :func:`_schedule` that read the notice before the previous
    reminder went out (several workers starting together after an outage) writes a due time
    computed from the round before — which once sent two reminders in the same minute."""
    mine = (OutboxMessage.purpose == PURPOSE, OutboxMessage.ref_id == notice_id)
    queued = conn.execute(
        select(OutboxMessage.id).where(*mine, OutboxMessage.state == DeliveryState.QUEUED.value).limit(1)
    ).first()
    if queued is not None:
        return True  # the round on its way is the reminder; _schedule plans the next once it is sent
    last_sent = conn.execute(select(func.max(OutboxMessage.sent_at)).where(*mine)).scalar()
    due = utc(last_sent) + timedelta(hours=services.settings.notice.renotice_hours) if last_sent else None
    if due is None or due <= now:
        return False
    conn.execute(
        update(Notice)
        .where(Notice.id == notice_id, Notice.next_notice_at.is_(None))
        .values(next_notice_at=next_sending_time(services.settings, due))
    )
    return True


def _escalate(conn: Connection, notice_id: int, level: int, now: datetime, *, reason: str) -> bool:
    moved = conn.execute(
        update(Notice)
        .where(Notice.id == notice_id, Notice.escalation < level)
        .values(escalation=level, escalated_at=now)
    ).rowcount
    if moved == 1:
        kind = EventKind.ESCALATED if level == 1 else EventKind.POLICE_DUE
        timeline.record(conn, kind, at=now, notice_id=notice_id, detail={"reason": reason, "level": level})
    return moved == 1


def _police_due(services: ActNeeds, now: datetime) -> int:
    """Escalated notices ``police_after_hours`` later with content still online: to the police."""
    hours = services.settings.notice.police_after_hours
    if hours <= 0:
        return 0
    with services.engine.connect() as conn:
        due = conn.execute(
            select(Notice.id, Notice.contact_id).where(
                Notice.state.in_(OPEN_STATES),
                Notice.escalation == 1,
                Notice.escalated_at <= now - timedelta(hours=hours),
            )
        ).all()
    moved = 0
    for notice_id, contact_id in due:
        with services.engine.begin() as conn:
            online = conn.execute(
                select(Takedown.id, Takedown.item_id)
                .select_from(NoticeItem)
                .where(_outstanding(notice_id, contact_id))
            ).all()
            if not online or not _escalate(
                conn, notice_id, 2, now, reason=f"online {hours:g} h after escalation"
            ):
                continue
            for takedown_id, item_id in online:
                marked = conn.execute(
                    update(Takedown)
                    .where(Takedown.id == takedown_id, Takedown.police == "")
                    .values(police="due", updated_at=now)
                ).rowcount
                if marked == 1:
                    timeline.record(conn, EventKind.POLICE_DUE, at=now, item_id=item_id, notice_id=notice_id)
            moved += 1
    return moved


def _close_done(services: ActNeeds, now: datetime) -> int:
    """Open notices none of whose items is still online: closed."""
    online = exists().where(_outstanding(Notice.id, Notice.contact_id))
    with services.engine.connect() as conn:
        done = (
            conn.execute(
                select(Notice.id).where(
                    Notice.state.in_((NoticeState.SENT.value, NoticeState.FAILED.value)), ~online
                )
            )
            .scalars()
            .all()
        )
    closed = 0
    for notice_id in done:
        with services.engine.begin() as conn:
            closed += _close(conn, notice_id, now)
    return closed


def tick_notices(services: ActNeeds) -> int:
    """Gather ``to_notice`` takedowns into their contact's notice, send notices whose batching
    window closed, remind and escalate what is overdue. The number moved."""
    now = services.clock.now()
    moved = _collect(services, now) + _schedule(services, now) + _close_done(services, now)
    moved += _police_due(services, now)
    if sending_day(services.settings, now):
        moved += _send_due(services, now) + _remind_due(services, now)
    return moved


# --- the outbox's hooks -------------------------------------------------------------------------


def _on_sent(conn: Connection, message: outbox.Message, now: datetime) -> None:
    """A round was delivered: the notice is sent, its takedowns noticed; one timeline line per URL.
    Its next reminder is scheduled by the tick (:func:`_schedule`), which knows the settings."""
    notice = conn.execute(select(Notice).where(Notice.id == message.ref_id)).first()
    if notice is None:
        return
    first = notice.sent_at is None
    values: dict[str, Any] = {"rounds": max(notice.rounds, message.round), "next_notice_at": None}
    if first:
        values["sent_at"] = now
    if notice.state != NoticeState.CLOSED.value:
        values["state"] = NoticeState.SENT.value
    conn.execute(update(Notice).where(Notice.id == notice.id).values(**values))
    lines = conn.execute(
        select(Takedown.id, Takedown.item_id)
        .select_from(NoticeItem)
        .where(_outstanding(notice.id, notice.contact_id))
    ).all()
    ids = [int(r.id) for r in lines]
    if ids:
        conn.execute(
            update(Takedown)
            .where(Takedown.id.in_(ids), Takedown.state == TakedownState.TO_NOTICE.value)
            .values(state=TakedownState.NOTICED.value, updated_at=now)
        )
        conn.execute(
            update(Takedown)
            .where(Takedown.id.in_(ids), Takedown.first_notice_at.is_(None))
            .values(first_notice_at=now)
        )
    kind = EventKind.NOTICE_SENT if first else EventKind.REMINDER_SENT
    detail = {"reference": notice.reference, "round": message.round, "outbox_id": message.id}
    for row in lines:
        timeline.record(conn, kind, at=now, item_id=row.item_id, notice_id=notice.id, detail=detail)


def _on_failed(conn: Connection, message: outbox.Message, exc: outbox.DeliveryError, now: datetime) -> None:
    """A round could not be delivered: the notice goes to the overdue queue; a refusal on the
    recipient's side marks the contact suspect (its address needs checking)."""
    notice = conn.execute(select(Notice).where(Notice.id == message.ref_id)).first()
    if notice is None:
        return
    reason = str(exc)[:1000]
    timeline.record(
        conn,
        EventKind.DELIVERY_FAILED,
        at=now,
        notice_id=notice.id,
        detail={"round": message.round, "reason": reason, "theirs": exc.theirs, "outbox_id": message.id},
    )
    if exc.theirs and notice.contact_id is not None:
        marked = conn.execute(
            update(Contact).where(Contact.id == notice.contact_id).values(suspect=True, suspect_reason=reason)
        ).rowcount
        if marked:
            timeline.record(
                conn,
                EventKind.CONTACT_SUSPECT,
                at=now,
                notice_id=notice.id,
                detail={"contact_id": notice.contact_id, "reason": reason},
            )
    conn.execute(
        update(Notice)
        .where(Notice.id == notice.id, Notice.state != NoticeState.CLOSED.value)
        .values(state=NoticeState.FAILED.value, next_notice_at=None)
    )
    _escalate(conn, notice.id, 1, now, reason="delivery failed")


def _schedule(services: ActNeeds, now: datetime) -> int:
    """Sent notices with no reminder scheduled and none in the outbox: the next reminder is due
    ``renotice_hours`` after the last delivered round, moved past quiet days."""
    renotice = timedelta(hours=services.settings.notice.renotice_hours)
    in_flight = exists().where(
        OutboxMessage.purpose == PURPOSE,
        OutboxMessage.ref_id == Notice.id,
        OutboxMessage.state == DeliveryState.QUEUED.value,
    )
    last_sent = (
        select(func.max(OutboxMessage.sent_at))
        .where(OutboxMessage.purpose == PURPOSE, OutboxMessage.ref_id == Notice.id)
        .scalar_subquery()
    )
    with services.engine.connect() as conn:
        rows = conn.execute(
            select(Notice.id, last_sent, Notice.sent_at).where(
                Notice.state == NoticeState.SENT.value, Notice.next_notice_at.is_(None), ~in_flight
            )
        ).all()
    scheduled = 0
    with services.engine.begin() as conn:
        for notice_id, sent, first in rows:
            base = utc(sent or first or now)
            scheduled += conn.execute(
                update(Notice)
                .where(
                    Notice.id == notice_id,
                    Notice.state == NoticeState.SENT.value,
                    Notice.next_notice_at.is_(None),
                )
                .values(next_notice_at=next_sending_time(services.settings, base + renotice))
            ).rowcount
    return scheduled


outbox.on(PURPOSE, sent=_on_sent, failed=_on_failed)
