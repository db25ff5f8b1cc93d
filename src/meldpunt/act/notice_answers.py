"""What people do with notices: a provider's answers through the notice link (no account), and a
senior's hand (a reply that came by e-mail, resend now, close with a reason); and what the staff
pages read (notices outstanding per contact, one notice, the overdue queue). The web layer runs no
SQL: it calls these.

Answers are recorded once: a replayed post finds the answer already there and changes nothing
(a conditional UPDATE on the answer it moves from). "removed" is final; a "disputed" URL may later
be answered "removed". A "removed" answer asks the re-check for an early look (``next_check_at``
= now): only the re-check decides that content is gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from meldpunt.act import notice_links, timeline
from meldpunt.act.context import ActNeeds, utc
from meldpunt.act.notices import DONE_STATES, PURPOSE, _close, _lines, _outstanding, _queue_round
from meldpunt.audit import AuditEvent, record
from meldpunt.domain.acting import EventKind, NoticeState
from meldpunt.store.acting import Contact, Notice, NoticeItem, OutboxMessage, Takedown
from meldpunt.store.reports import Item

ANSWERS = ("removed", "disputed")
NOTE_LIMIT = 2000


class AnswerError(ValueError):
    """An answer that cannot be recorded: ``status`` 404 (no such URL in the notice) or 422."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class AnswerLine:
    takedown_id: int
    item_id: int
    url: str
    state: str
    answer: str
    answered_at: datetime | None
    answer_note: str
    first_seen: datetime


@dataclass(frozen=True)
class ProviderNotice:
    notice_id: int
    reference: str
    language: str
    expires: datetime
    items: tuple[AnswerLine, ...]


def _answer_lines(conn: Connection, notice_id: int) -> tuple[AnswerLine, ...]:
    rows = conn.execute(
        select(
            Takedown.id,
            Takedown.item_id,
            Item.url,
            Takedown.state,
            NoticeItem.answer,
            NoticeItem.answered_at,
            NoticeItem.answer_note,
            Takedown.reported_at,
        )
        .select_from(NoticeItem)
        .join(Takedown, Takedown.id == NoticeItem.takedown_id)
        .join(Item, Item.id == Takedown.item_id)
        .where(NoticeItem.notice_id == notice_id)
        .order_by(Takedown.id)
    ).all()
    return tuple(
        AnswerLine(int(r[0]), int(r[1]), r[2], r[3], r[4], utc(r[5]) if r[5] else None, r[6], utc(r[7]))
        for r in rows
    )


def _claim(services: ActNeeds, conn: Connection, token: str) -> tuple[notice_links.LinkClaim, Any]:
    parsed = notice_links.parse(token)
    notice = (
        conn.execute(select(Notice).where(Notice.id == parsed[0])).first() if parsed is not None else None
    )
    if notice is not None and notice.state == NoticeState.COLLECTING.value:
        notice = None  # not sent: no link to it was given out
    claim = notice_links.verify(
        notice_links.link_key(services.settings),
        token,
        notice.token_nonce if notice is not None else None,
        services.clock.now(),
    )
    return claim, notice


def provider_view(services: ActNeeds, token: str) -> ProviderNotice:
    """The notice a provider's link opens. Raises :class:`notice_links.LinkError` (404, 410)."""
    with services.engine.connect() as conn:
        claim, notice = _claim(services, conn, token)
        return ProviderNotice(
            notice.id, notice.reference, notice.language, claim.expires, _answer_lines(conn, notice.id)
        )


def _record_answer(
    conn: Connection,
    notice_id: int,
    takedown_id: int,
    answer: str,
    note: str,
    now: datetime,
    *,
    actor: str,
    kind: EventKind,
) -> bool:
    """Record ``answer`` unless it is there already (or the URL was answered "removed")."""
    if answer not in ANSWERS:
        raise AnswerError(422, f"an answer is one of {', '.join(ANSWERS)}")
    note = note.strip()[:NOTE_LIMIT]
    if answer == "disputed" and not note:
        raise AnswerError(422, "say why you dispute it")
    row = conn.execute(
        select(NoticeItem.answer, Takedown.item_id)
        .join(Takedown, Takedown.id == NoticeItem.takedown_id)
        .where(NoticeItem.notice_id == notice_id, NoticeItem.takedown_id == takedown_id)
    ).first()
    if row is None:
        raise AnswerError(404, "this URL is not part of the notice")
    moved = conn.execute(
        update(NoticeItem)
        .where(
            NoticeItem.notice_id == notice_id,
            NoticeItem.takedown_id == takedown_id,
            NoticeItem.answer.notin_((answer, "removed")),
        )
        .values(answer=answer, answered_at=now, answer_note=note)
    ).rowcount
    if moved != 1:
        return False
    if answer == "removed":  # an early look by the re-check; only it decides the content is gone
        conn.execute(
            update(Takedown)
            .where(Takedown.id == takedown_id, Takedown.state.notin_(DONE_STATES))
            .values(next_check_at=now)
        )
    timeline.record(
        conn,
        kind,
        at=now,
        item_id=row.item_id,
        notice_id=notice_id,
        actor=actor,
        detail={"answer": answer, "note": note},
    )
    return True


def provider_answer(
    services: ActNeeds, token: str, takedown_id: int, answer: str, note: str = ""
) -> tuple[ProviderNotice, bool]:
    """Record a provider's answer for one URL of the notice the link opens: (the notice, whether
    anything changed). Raises :class:`notice_links.LinkError` or :class:`AnswerError`."""
    now = services.clock.now()
    kind = EventKind.PROVIDER_REMOVED if answer == "removed" else EventKind.PROVIDER_DISPUTED
    with services.engine.begin() as conn:
        claim, notice = _claim(services, conn, token)
        changed = _record_answer(conn, notice.id, takedown_id, answer, note, now, actor="provider", kind=kind)
        view = ProviderNotice(
            notice.id, notice.reference, notice.language, claim.expires, _answer_lines(conn, notice.id)
        )
    return view, changed


# --- a senior's hand ----------------------------------------------------------------------------


def _audit(conn: Connection, actor: str, action: str, notice_id: int, now: datetime, **details: Any) -> None:
    record(conn, AuditEvent(actor, action, f"notice:{notice_id}", details, at=now))


def record_reply(
    services: ActNeeds, notice_id: int, takedown_id: int, answer: str, note: str, actor: str
) -> bool:
    """A provider's reply that came by e-mail, recorded by a senior (audited). Whether it changed
    anything."""
    now = services.clock.now()
    with services.engine.begin() as conn:
        if conn.execute(select(Notice.id).where(Notice.id == notice_id)).first() is None:
            raise AnswerError(404, "no such notice")
        changed = _record_answer(
            conn, notice_id, takedown_id, answer, note, now, actor=actor, kind=EventKind.REPLY_RECORDED
        )
        if changed:
            _audit(
                conn, actor, "notice.reply", notice_id, now, takedown=takedown_id, answer=answer, note=note
            )
    return changed


def resend_now(services: ActNeeds, notice_id: int, actor: str) -> bool:
    """Send the notice again now (a new round, to the contact's current address: a senior may
    have corrected it), listing what is still online (audited). False when nothing is online or
    the notice is closed or still collecting."""
    now = services.clock.now()
    with services.engine.begin() as conn:
        notice = conn.execute(select(Notice).where(Notice.id == notice_id).with_for_update()).first()
        if notice is None:
            raise AnswerError(404, "no such notice")
        if notice.state in (NoticeState.CLOSED.value, NoticeState.COLLECTING.value):
            return False
        contact = (
            conn.execute(select(Contact).where(Contact.id == notice.contact_id)).first()
            if notice.contact_id is not None
            else None
        )
        values: dict[str, Any] = {
            "state": NoticeState.SENT.value if notice.sent_at else NoticeState.SENDING.value,
            "next_notice_at": None,
        }
        if contact is not None:
            values.update(channel=contact.channel, address=contact.address)
        conn.execute(update(Notice).where(Notice.id == notice_id).values(**values))
        notice = conn.execute(select(Notice).where(Notice.id == notice_id)).one()
        lines = _lines(conn, notice)
        if not lines:
            return False
        last = conn.execute(
            select(func.max(OutboxMessage.round)).where(
                OutboxMessage.purpose == PURPOSE, OutboxMessage.ref_id == notice_id
            )
        ).scalar()
        round_ = max(int(last or 0), notice.rounds) + 1
        _queue_round(conn, services, notice, round_, lines)
        _audit(conn, actor, "notice.resend", notice_id, now, round=round_, address=notice.address)
    return True


def close_notice(services: ActNeeds, notice_id: int, reason: str, actor: str) -> bool:
    """Close a notice by hand, with a reason (audited): no more reminders."""
    reason = reason.strip()[:NOTE_LIMIT]
    if not reason:
        raise AnswerError(422, "say why the notice is closed")
    now = services.clock.now()
    with services.engine.begin() as conn:
        if conn.execute(select(Notice.id).where(Notice.id == notice_id)).first() is None:
            raise AnswerError(404, "no such notice")
        closed = _close(conn, notice_id, now, reason=reason, actor=actor)
        if closed:
            _audit(conn, actor, "notice.close", notice_id, now, reason=reason)
    return closed


# --- what the staff pages read ------------------------------------------------------------------


@dataclass(frozen=True)
class NoticeRow:
    id: int
    reference: str
    contact_id: int | None
    contact: str
    address: str
    state: str
    opened_at: datetime
    sent_at: datetime | None
    rounds: int
    next_notice_at: datetime | None
    escalation: int
    escalated_at: datetime | None
    urls: int
    online: int
    suspect: bool


@dataclass(frozen=True)
class ContactSummary:
    contact_id: int | None
    contact: str
    address: str
    suspect: bool
    notices: int
    online: int
    oldest: datetime | None
    next_reminder: datetime | None
    overdue: int


@dataclass(frozen=True)
class Delivery:
    id: int
    round: int
    channel: str
    target: str
    subject: str
    state: str
    attempts: int
    sent_at: datetime | None
    last_error: str
    created_at: datetime


@dataclass(frozen=True)
class NoticeDetail:
    notice: NoticeRow
    items: tuple[AnswerLine, ...]
    messages: tuple[Delivery, ...]
    events: tuple[timeline.Event, ...]
    closed_reason: str


def _opt(at: datetime | None) -> datetime | None:
    return utc(at) if at is not None else None


def _rows(conn: Connection, *where: Any, limit: int = 500) -> list[NoticeRow]:
    urls = (
        select(func.count())
        .select_from(NoticeItem)
        .where(NoticeItem.notice_id == Notice.id)
        .scalar_subquery()
    )
    online = (
        select(func.count())
        .select_from(NoticeItem)
        .where(_outstanding(Notice.id, Notice.contact_id))
        .scalar_subquery()
    )
    rows = conn.execute(
        select(Notice, Contact.name, Contact.suspect, urls.label("urls"), online.label("online"))
        .outerjoin(Contact, Contact.id == Notice.contact_id)
        .where(*where)
        .order_by(Notice.opened_at, Notice.id)
        .limit(limit)
    ).all()
    return [
        NoticeRow(
            r.id,
            r.reference,
            r.contact_id,
            r.name or "",
            r.address,
            r.state,
            utc(r.opened_at),
            _opt(r.sent_at),
            r.rounds,
            _opt(r.next_notice_at),
            r.escalation,
            _opt(r.escalated_at),
            int(r.urls),
            int(r.online),
            bool(r.suspect),
        )
        for r in rows
    ]


def open_notices(engine: Engine) -> list[NoticeRow]:
    with engine.connect() as conn:
        return _rows(conn, Notice.state != NoticeState.CLOSED.value)


def outstanding_by_contact(engine: Engine) -> list[ContactSummary]:
    """Per contact: its open notices, URLs still online, the oldest notice, the next reminder."""
    groups: dict[int | None, list[NoticeRow]] = {}
    for row in open_notices(engine):
        groups.setdefault(row.contact_id, []).append(row)
    summaries = [
        ContactSummary(
            contact_id,
            rows[0].contact,
            rows[0].address,
            rows[0].suspect,
            len(rows),
            sum(r.online for r in rows),
            min(r.sent_at or r.opened_at for r in rows),
            min((r.next_notice_at for r in rows if r.next_notice_at), default=None),
            sum(1 for r in rows if r.escalation or r.state == NoticeState.FAILED.value),
        )
        for contact_id, rows in groups.items()
    ]
    return sorted(summaries, key=lambda s: (s.oldest is None, s.oldest))


def overdue(engine: Engine) -> list[NoticeRow]:
    """The seniors' queue: open notices that escalated or could not be delivered."""
    with engine.connect() as conn:
        return _rows(
            conn,
            Notice.state != NoticeState.CLOSED.value,
            (Notice.escalation > 0) | (Notice.state == NoticeState.FAILED.value),
        )


def notice_detail(engine: Engine, notice_id: int) -> NoticeDetail | None:
    with engine.connect() as conn:
        found = _rows(conn, Notice.id == notice_id)
        if not found:
            return None
        reason = conn.execute(select(Notice.closed_reason).where(Notice.id == notice_id)).scalar_one()
        messages = conn.execute(
            select(OutboxMessage)
            .where(OutboxMessage.purpose == PURPOSE, OutboxMessage.ref_id == notice_id)
            .order_by(OutboxMessage.round, OutboxMessage.id)
        ).all()
        items = _answer_lines(conn, notice_id)
    return NoticeDetail(
        found[0],
        items,
        tuple(
            Delivery(
                m.id,
                m.round,
                m.channel,
                m.target,
                m.subject,
                m.state,
                m.attempts,
                _opt(m.sent_at),
                m.last_error,
                utc(m.created_at),
            )
            for m in messages
        ),
        tuple(timeline.for_notice(engine, notice_id)),
        reason,
    )


def notices_of_item(engine: Engine, item_id: int) -> list[int]:
    """The notices an item was in (for its timeline: ``timeline.for_item(engine, id, these)``)."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(NoticeItem.notice_id)
                .join(Takedown, Takedown.id == NoticeItem.takedown_id)
                .where(Takedown.item_id == item_id)
            ).scalars()
        )
