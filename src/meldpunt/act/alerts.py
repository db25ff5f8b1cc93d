"""Urgent cases: alerts to the on-call people, acknowledgement, escalation (#10 part "alerts").

An urgent item (the public form's box, the API's ``urgent`` flag, a senior's mark) gets exactly
one row in ``alerts`` — the unique index on ``alerts.item_id`` makes that hold however many workers
raise it at once. Raising queues, in the same transaction, an e-mail to the first on-call person
(``alert.oncall``) and a POST to ``alert.webhook_url`` through the outbox, so an alert that was
decided is never lost and never sent twice. :func:`tick_alerts` raises alerts for urgent items
that have none (a report that committed just before a crash, an older open item linked by an urgent
report) and escalates open alerts nobody acknowledged within ``alert.ack_minutes``: to the next
on-call person, and after the last one to the whole list again, every ``ack_minutes``, until a
person says "I am on it" in the workspace. Every move is a conditional UPDATE on the state (and
level) it moves from, so two workers escalate once.

What leaves meldpunt says only that an urgent case waits, its reference and a link to the
workspace: never the reported URL, a description or any media — a chat or paging service is a
third party.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from meldpunt.act import outbox, timeline
from meldpunt.act.context import ActNeeds, utc
from meldpunt.audit import AuditEvent, record
from meldpunt.domain.acting import AlertState, DeliveryState, EventKind
from meldpunt.settings import Settings
from meldpunt.store.acting import Alert, OutboxMessage
from meldpunt.store.reports import Item

log = logging.getLogger(__name__)

#: the outbox purpose of alerts (``round`` = level + 1) and of "someone is on it" (to the webhook)
ALERT = "alert"
ALERT_ACK = "alert-ack"
#: urgent items looked at per tick (the rest on the next one)
BATCH = 500


@dataclass(frozen=True)
class OnCall:
    name: str
    address: str

    def __str__(self) -> str:
        return f"{self.name} <{self.address}>" if self.name else self.address


def oncall(settings: Settings) -> list[OnCall]:
    """``alert.oncall`` as people, in order ("Name <address>" or a bare address)."""
    people = []
    for entry in settings.alert.oncall:
        name, address = parseaddr(entry)
        people.append(OnCall(name.strip(), (address or entry).strip()))
    return people


def reference(alert_id: int) -> str:
    return f"ALERT-{alert_id}"


def alerts_link(settings: Settings, alert_id: int) -> str:
    """Where an alert is acknowledged: the workspace's alerts page."""
    return f"{settings.mail.public_url.rstrip('/')}/alerts#alert-{alert_id}"


def targets(people: list[OnCall], level: int) -> tuple[list[OnCall], bool]:
    """Who is alerted at ``level`` (0: the first person): one person while the list lasts, then
    the whole list again at every further level. (people, whole list?)"""
    if level < len(people):
        return [people[level]], False
    return list(people), True


@dataclass(frozen=True)
class AlertView:
    id: int
    item_id: int | None
    report_id: int | None
    raised_at: datetime
    raised_by: str
    reason: str
    state: str
    #: the level alerted last (0: the first on-call person)
    level: int
    next_escalation_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str
    ack_seconds: int | None

    @property
    def reference(self) -> str:
        return reference(self.id)

    @property
    def open(self) -> bool:
        return self.state == AlertState.OPEN.value


def _view(row: Any) -> AlertView:
    return AlertView(
        id=int(row.id),
        item_id=row.item_id,
        report_id=row.report_id,
        raised_at=utc(row.raised_at),
        raised_by=row.raised_by,
        reason=row.reason,
        state=row.state,
        level=int(row.level),
        next_escalation_at=utc(row.next_escalation_at) if row.next_escalation_at else None,
        acknowledged_at=utc(row.acknowledged_at) if row.acknowledged_at else None,
        acknowledged_by=row.acknowledged_by,
        ack_seconds=row.ack_seconds,
    )


# -- messages -----------------------------------------------------------------------------------


def _queue_level(
    conn: Connection, settings: Settings, alert: AlertView, level: int, now: datetime
) -> list[str]:
    """Queue the e-mails and the webhook POST of ``level`` (round ``level + 1``); who was alerted."""
    everyone = oncall(settings)
    people, whole = targets(everyone, level)
    link = alerts_link(settings, alert.id)
    ref = reference(alert.id)
    escalates = alert.next_escalation_at.strftime("%H:%M UTC") if alert.next_escalation_at else "-"
    what = f"item {alert.item_id}" if alert.item_id is not None else "a report"
    again = " (again: nobody has acknowledged it yet)" if level > 0 else ""
    subject = f"[URGENT] {ref}: an urgent case needs a person now{again}"
    for person in people:
        body = (
            f"{person.name or 'Hello'},\n\n"
            f"An urgent case ({what}, {ref}) was raised at {alert.raised_at:%Y-%m-%d %H:%M} UTC "
            f"and is waiting for a person{again}.\n\n"
            f'Open the workspace and press "I am on it":\n{link}\n\n'
            f"Alert level {level + 1}. Without an acknowledgement it goes to "
            f"{'the next on-call person' if level + 1 < len(everyone) else 'every on-call person'} "
            f"at {escalates}.\n\n"
            "This message says nothing about the content on purpose: see the workspace.\n"
        )
        outbox.queue_message(
            conn,
            purpose=ALERT,
            ref_id=alert.id,
            round=level + 1,
            channel="email",
            target=person.address,
            subject=subject,
            body=body,
            headers={"X-Priority": "1", "Importance": "high"},
            now=now,
        )
    if settings.alert.webhook_url:
        text = f"URGENT {ref}: an urgent case ({what}) waits for a person{again}. Level {level + 1}. {link}"
        outbox.queue_message(
            conn,
            purpose=ALERT,
            ref_id=alert.id,
            round=level + 1,
            channel="webhook",
            target=settings.alert.webhook_url,
            subject=subject,
            body=text,
            data={
                "text": text,
                "link": link,
                "reference": ref,
                "level": level + 1,
                "event": "escalated" if level > 0 else "raised",
                "item": alert.item_id,
                "raised_at": alert.raised_at.isoformat(),
                "escalates_at": alert.next_escalation_at.isoformat() if alert.next_escalation_at else None,
                "whole_list": whole,
            },
            now=now,
        )
    return [str(p) for p in people]


def _on_sent(conn: Connection, message: outbox.Message, now: datetime) -> None:
    to = message.target if message.channel == "email" else "webhook"
    timeline.record(
        conn,
        EventKind.ALERT_SENT,
        at=now,
        alert_id=message.ref_id,
        detail={"channel": message.channel, "to": to, "level": message.round},
    )


def _on_failed(conn: Connection, message: outbox.Message, exc: outbox.DeliveryError, now: datetime) -> None:
    to = message.target if message.channel == "email" else "webhook"
    timeline.record(
        conn,
        EventKind.DELIVERY_FAILED,
        at=now,
        alert_id=message.ref_id,
        detail={"channel": message.channel, "to": to, "level": message.round, "error": str(exc)[:300]},
    )
    log.error("alert %s could not be delivered to %s: %s", reference(message.ref_id), to, exc)


outbox.on(ALERT, sent=_on_sent, failed=_on_failed)


# -- raising ------------------------------------------------------------------------------------


def _insert_alert(dialect: str) -> Any:
    dialect_insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return dialect_insert(Alert).on_conflict_do_nothing(index_elements=["item_id"]).returning(Alert.id)


def _raise(
    conn: Connection,
    services: ActNeeds,
    item_id: int,
    report_id: int | None,
    *,
    by: str,
    reason: str,
    now: datetime,
) -> int | None:
    """Insert the item's alert and queue its first messages; None when it has one already."""
    settings = services.settings
    next_at = now + timedelta(minutes=settings.alert.ack_minutes)
    row = conn.execute(
        _insert_alert(conn.dialect.name).values(
            item_id=item_id,
            report_id=report_id,
            raised_at=now,
            raised_by=by[:200],
            reason=reason[:2000],
            state=AlertState.OPEN.value,
            level=0,
            next_escalation_at=next_at,
            acknowledged_by="",
        )
    ).first()
    if row is None:
        return None
    alert_id = int(row[0])
    alert = AlertView(alert_id, item_id, report_id, now, by, reason, "open", 0, next_at, None, "", None)
    alerted = _queue_level(conn, settings, alert, 0, now)
    timeline.record(
        conn,
        EventKind.ALERT_RAISED,
        at=now,
        item_id=item_id,
        alert_id=alert_id,
        actor=by if by != "report" else "system",
        detail={"by": by, "to": alerted, "webhook": bool(settings.alert.webhook_url), "reason": reason[:300]},
    )
    if not alerted and not settings.alert.webhook_url:
        log.warning(
            "alert %s raised but nobody is on call (alert.oncall, alert.webhook_url)", reference(alert_id)
        )
    return alert_id


@dataclass(frozen=True)
class Raised:
    alert: AlertView
    #: False: the item had an alert already (``alert`` is that one)
    new: bool


class NoSuchItem(LookupError):
    pass


class NoSuchAlert(LookupError):
    pass


def raise_alert(services: ActNeeds, item_id: int, *, by: str, reason: str = "") -> Raised:
    """A senior marks an item urgent: the item becomes urgent and its alert is raised at once
    (audited, ``alert.raise``). An item alerted before keeps its one alert (``new`` False)."""
    now = services.clock.now()
    with services.engine.begin() as conn:
        item = conn.execute(select(Item.id, Item.report_id).where(Item.id == item_id)).first()
        if item is None:
            raise NoSuchItem(item_id)
        conn.execute(update(Item).where(Item.id == item_id).values(urgent=True, updated_at=now))
        alert_id = _raise(conn, services, item_id, item.report_id, by=by, reason=reason.strip(), now=now)
        if alert_id is not None:
            record(
                conn,
                AuditEvent(
                    by, "alert.raise", f"item:{item_id}", {"alert": alert_id, "reason": reason[:300]}, at=now
                ),
            )
        found = conn.execute(select(Alert).where(Alert.item_id == item_id)).one()
    return Raised(_view(found), alert_id is not None)


def _raise_due(services: ActNeeds, now: datetime) -> int:
    """Alerts for urgent items that have none (changed within ``alert.raise_within_hours``)."""
    since = now - timedelta(hours=services.settings.alert.raise_within_hours)
    with services.engine.connect() as conn:
        due = conn.execute(
            select(Item.id, Item.report_id)
            .outerjoin(Alert, Alert.item_id == Item.id)
            .where(Item.urgent.is_(True), Alert.id.is_(None), Item.updated_at >= since)
            .order_by(Item.updated_at)  # by the partial index (by id, SQLite walks every item)
            .limit(BATCH)
        ).all()
    raised = 0
    for item_id, report_id in due:
        with services.engine.begin() as conn:
            if _raise(conn, services, int(item_id), report_id, by="report", reason="", now=now) is not None:
                raised += 1
    return raised


# -- escalation ---------------------------------------------------------------------------------


def _escalate_due(services: ActNeeds, now: datetime) -> int:
    settings = services.settings
    with services.engine.connect() as conn:
        due = conn.execute(
            select(Alert).where(
                Alert.state == AlertState.OPEN.value,
                Alert.next_escalation_at.is_not(None),
                Alert.next_escalation_at <= now,
            )
        ).all()
    moved = 0
    for row in due:
        alert = _view(row)
        level = alert.level + 1
        next_at = now + timedelta(minutes=settings.alert.ack_minutes)
        with services.engine.begin() as conn:
            won = conn.execute(
                update(Alert)
                .where(Alert.id == alert.id, Alert.state == AlertState.OPEN.value, Alert.level == alert.level)
                .values(level=level, next_escalation_at=next_at)
            ).rowcount
            if won != 1:
                continue  # acknowledged meanwhile, or another worker escalated it
            alerted = _queue_level(
                conn, settings, replace(alert, level=level, next_escalation_at=next_at), level, now
            )
            timeline.record(
                conn,
                EventKind.ALERT_ESCALATED,
                at=now,
                item_id=alert.item_id,
                alert_id=alert.id,
                detail={"level": level + 1, "to": alerted, "whole_list": level >= len(oncall(settings))},
            )
            moved += 1
    return moved


def tick_alerts(services: ActNeeds) -> int:
    """Raise alerts for new urgent items; escalate open alerts past ``alert.ack_minutes``."""
    now = services.clock.now()
    return _raise_due(services, now) + _escalate_due(services, now)


# -- acknowledgement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Acknowledged:
    alert: AlertView
    #: False: someone else acknowledged it first (``alert.acknowledged_by``)
    by_you: bool


def acknowledge(services: ActNeeds, alert_id: int, *, by: str) -> Acknowledged:
    """ "I am on it": the alert stops escalating; who, when and the time to acknowledgement are
    recorded (audited, ``alert.acknowledge``; the webhook hears who took it). Acknowledging an
    acknowledged alert changes nothing and says who did."""
    now = services.clock.now()
    with services.engine.begin() as conn:
        row = conn.execute(select(Alert).where(Alert.id == alert_id)).first()
        if row is None:
            raise NoSuchAlert(alert_id)
        seconds = max(0, int((now - utc(row.raised_at)).total_seconds()))
        won = conn.execute(
            update(Alert)
            .where(Alert.id == alert_id, Alert.state == AlertState.OPEN.value)
            .values(
                state=AlertState.ACKNOWLEDGED.value,
                acknowledged_at=now,
                acknowledged_by=by[:200],
                ack_seconds=seconds,
                next_escalation_at=None,
            )
        ).rowcount
        if won == 1:
            # an alert still waiting to go out (an SMTP server down, retried with backoff) would
            # page someone hours later about a case a person already has: it is not sent
            conn.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.purpose == ALERT,
                    OutboxMessage.ref_id == alert_id,
                    OutboxMessage.state == DeliveryState.QUEUED.value,
                )
                .values(
                    state=DeliveryState.FAILED.value,
                    next_attempt_at=None,
                    last_error=f"not sent: acknowledged by {by[:100]} first",
                )
            )
            detail = {"ack_seconds": seconds, "level": int(row.level) + 1}
            timeline.record(
                conn,
                EventKind.ALERT_ACKNOWLEDGED,
                at=now,
                item_id=row.item_id,
                alert_id=alert_id,
                actor=by,
                detail=detail,
            )
            record(
                conn,
                AuditEvent(
                    by, "alert.acknowledge", f"alert:{alert_id}", {"item": row.item_id, **detail}, at=now
                ),
            )
            if services.settings.alert.webhook_url:
                text = (
                    f"{reference(alert_id)} acknowledged by {by} after {seconds // 60} min {seconds % 60} s."
                )
                outbox.queue_message(
                    conn,
                    purpose=ALERT_ACK,
                    ref_id=alert_id,
                    channel="webhook",
                    target=services.settings.alert.webhook_url,
                    subject=text,
                    body=text,
                    data={
                        "text": text,
                        "link": alerts_link(services.settings, alert_id),
                        "reference": reference(alert_id),
                        "level": int(row.level) + 1,
                        "event": "acknowledged",
                        "by": by,
                        "ack_seconds": seconds,
                    },
                    now=now,
                )
        found = conn.execute(select(Alert).where(Alert.id == alert_id)).one()
    return Acknowledged(_view(found), won == 1)


# -- reading ------------------------------------------------------------------------------------


def open_alerts(engine: Engine, limit: int = 200) -> list[AlertView]:
    """Open alerts, oldest first (the one waiting longest on top)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Alert)
            .where(Alert.state == AlertState.OPEN.value)
            .order_by(Alert.raised_at, Alert.id)
            .limit(limit)
        )
        return [_view(r) for r in rows]


def acknowledged_alerts(engine: Engine, limit: int = 50) -> list[AlertView]:
    """The latest acknowledged alerts, newest first, with their time to acknowledgement."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Alert)
            .where(Alert.state == AlertState.ACKNOWLEDGED.value)
            .order_by(Alert.acknowledged_at.desc(), Alert.id.desc())
            .limit(limit)
        )
        return [_view(r) for r in rows]


def count_open(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(Alert).where(Alert.state == AlertState.OPEN.value)
            ).scalar_one()
        )


def alert_for_item(engine: Engine, item_id: int) -> AlertView | None:
    with engine.connect() as conn:
        row = conn.execute(select(Alert).where(Alert.item_id == item_id)).first()
        return _view(row) if row is not None else None


def alerts_for_items(engine: Engine, item_ids: list[int]) -> dict[int, AlertView]:
    """Item id -> its alert, for the items that have one (a list's column)."""
    if not item_ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(select(Alert).where(Alert.item_id.in_(item_ids)))
        return {int(r.item_id): _view(r) for r in rows}


def get_alert(engine: Engine, alert_id: int) -> AlertView | None:
    with engine.connect() as conn:
        row = conn.execute(select(Alert).where(Alert.id == alert_id)).first()
        return _view(row) if row is not None else None


def failed_deliveries(engine: Engine, alert_ids: list[int]) -> dict[int, int]:
    """How many of each alert's messages failed for good (shown beside it: nobody may have heard)."""
    if not alert_ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            select(OutboxMessage.ref_id, func.count())
            .where(
                OutboxMessage.purpose == ALERT,
                OutboxMessage.ref_id.in_(alert_ids),
                OutboxMessage.state == DeliveryState.FAILED.value,
            )
            .group_by(OutboxMessage.ref_id)
        )
        return {int(r[0]): int(r[1]) for r in rows}


__all__ = [
    "ALERT",
    "ALERT_ACK",
    "Acknowledged",
    "AlertView",
    "NoSuchAlert",
    "NoSuchItem",
    "OnCall",
    "Raised",
    "acknowledge",
    "acknowledged_alerts",
    "alert_for_item",
    "alerts_for_items",
    "count_open",
    "failed_deliveries",
    "get_alert",
    "oncall",
    "open_alerts",
    "raise_alert",
    "targets",
    "tick_alerts",
]
