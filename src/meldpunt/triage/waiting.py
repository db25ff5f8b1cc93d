"""What waits for a staff member: the counts and claims their landing page (``/me``) shows.

Per role, only what the role may act on: an analyst's open queue (items nobody has classified,
items awaiting a second opinion that is not theirs to refuse, the urgent ones among them) and
their own live claims; a senior also the disagreements they may resolve (those they gave no
opinion on); a police liaison the urgent items still under review. Counted with the same rules
as :meth:`~meldpunt.triage.queue.Queue.entries`, so a number here is what the list there shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, exists, func, or_, select

from meldpunt.accounts.roles import allowed
from meldpunt.domain.reports import ItemState
from meldpunt.domain.triage import Stage
from meldpunt.store.reports import Item
from meldpunt.store.triage import TriageClaim, TriageClassification, TriageStatus
from meldpunt.triage.queue import Queue, utc


@dataclass(frozen=True)
class ClaimedItem:
    item_id: int
    host: str
    expires_at: datetime


@dataclass(frozen=True)
class Waiting:
    """Counts are None where the role may not act on them (the page leaves them out)."""

    first: int | None = None
    second: int | None = None
    urgent: int | None = None
    disagreements: int | None = None
    claims: list[ClaimedItem] = field(default_factory=list)


def waiting_for(queue: Queue, user: str) -> Waiting:
    """What waits for ``user`` now (nothing for an unknown or disabled user)."""
    now = queue.now()
    with queue.engine.connect() as conn:
        role = queue.role_of(conn, user)
        if role is None:
            return Waiting()
        mine = exists().where(TriageClassification.item_id == Item.id, TriageClassification.user == user)
        stage = TriageStatus.stage
        values: dict[str, Any] = {}
        if allowed(role, "queue.view"):
            values["first"] = _count(conn, stage.is_(None))
            values["second"] = _count(conn, and_(stage == Stage.SECOND, ~mine))
            open_for_me = or_(stage.is_(None), and_(stage == Stage.SECOND, ~mine))
            values["urgent"] = _count(conn, and_(Item.urgent.is_(True), open_for_me))
            values["claims"] = [
                ClaimedItem(int(r.item_id), r.host, utc(r.expires_at))
                for r in conn.execute(
                    select(TriageClaim.item_id, Item.host, TriageClaim.expires_at)
                    .join(Item, Item.id == TriageClaim.item_id)
                    .where(TriageClaim.user == user, TriageClaim.expires_at > now)
                    .order_by(TriageClaim.expires_at, TriageClaim.item_id)
                    .limit(50)
                )
            ]
        elif allowed(role, "urgent.view"):
            values["urgent"] = _count(conn, Item.urgent.is_(True))
        if allowed(role, "disagreement.resolve"):
            values["disagreements"] = _count(conn, and_(stage == Stage.DISAGREEMENT, ~mine))
    return Waiting(**values)


def _count(conn: Connection, condition: Any) -> int:
    """Items under review (``needs_review``) that meet ``condition``."""
    q = (
        select(func.count())
        .select_from(Item)
        .outerjoin(TriageStatus, TriageStatus.item_id == Item.id)
        .where(Item.state == ItemState.NEEDS_REVIEW.value, condition)
    )
    return int(conn.execute(q).scalar() or 0)
