"""The action timeline: one ``action_events`` row per thing that happened to an item, a notice or
an alert, written in the transaction that made it happen; read back in order for the item page."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, insert, or_, select

from meldpunt.domain.acting import EventKind
from meldpunt.store.acting import ActionEvent


@dataclass(frozen=True)
class Event:
    id: int
    at: datetime
    kind: str
    actor: str
    item_id: int | None
    notice_id: int | None
    alert_id: int | None
    detail: dict[str, Any]


def record(
    conn: Connection,
    kind: EventKind,
    *,
    at: datetime,
    item_id: int | None = None,
    notice_id: int | None = None,
    alert_id: int | None = None,
    actor: str = "system",
    detail: dict[str, Any] | None = None,
) -> None:
    """Add one line to the timeline, in the caller's transaction."""
    conn.execute(
        insert(ActionEvent).values(
            item_id=item_id,
            notice_id=notice_id,
            alert_id=alert_id,
            at=at,
            kind=kind.value,
            actor=actor[:200],
            detail=json.dumps(detail or {}, sort_keys=True),
        )
    )


def record_many(
    conn: Connection,
    kind: EventKind,
    *,
    at: datetime,
    lines: list[tuple[int, dict[str, Any]]],
    actor: str = "system",
) -> None:
    """Many lines of one kind about items (``(item_id, detail)``), in one executemany: a batch
    of re-checks writes its lines at once."""
    if not lines:
        return
    conn.execute(
        insert(ActionEvent),
        [
            {
                "item_id": item_id,
                "notice_id": None,
                "alert_id": None,
                "at": at,
                "kind": kind.value,
                "actor": actor[:200],
                "detail": json.dumps(detail, sort_keys=True),
            }
            for item_id, detail in lines
        ],
    )


def _event(row: Any) -> Event:
    return Event(
        row.id, row.at, row.kind, row.actor, row.item_id, row.notice_id, row.alert_id, json.loads(row.detail)
    )


def for_item(engine: Engine, item_id: int, notice_ids: list[int] | None = None) -> list[Event]:
    """The item's timeline, oldest first, with the notice's own lines (no item: a delivery failed,
    escalated, closed) of the notices it was in (``notice_ids``). A notice batches several items:
    the lines it records per item (queued, sent, the provider's answer) belong to that item only,
    so another item's "the provider says it is removed" never shows on this one."""
    where = ActionEvent.item_id == item_id
    if notice_ids:
        where = or_(where, and_(ActionEvent.notice_id.in_(notice_ids), ActionEvent.item_id.is_(None)))
    with engine.connect() as conn:
        rows = conn.execute(select(ActionEvent).where(where).order_by(ActionEvent.at, ActionEvent.id))
        return [_event(r) for r in rows]


def for_notice(engine: Engine, notice_id: int) -> list[Event]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(ActionEvent)
            .where(ActionEvent.notice_id == notice_id)
            .order_by(ActionEvent.at, ActionEvent.id)
        )
        return [_event(r) for r in rows]
