"""Facts about items that the review view does not carry, as plain data: an item's context for the
analyst (server address, the report's "seen on", its neighbours), the police liaison's urgent list
and an item's facts and hashes (never the media), and the items by state for the statistics."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, or_, select

from meldpunt.store.reports import Item, Medium, Report
from meldpunt.triage.classify import Triage
from meldpunt.triage.schemes import Classification


@dataclass(frozen=True)
class Neighbour:
    """Another item of the same report (``same_report``) or of the same host."""

    id: int
    url: str
    state: str
    same_report: bool


@dataclass(frozen=True)
class ItemContext:
    server_ip: str
    state: str
    final_url: str  # "" when the fetch ended where it began
    seen_on: str
    others: list[Neighbour]


def item_context(engine: Engine, item_id: int) -> ItemContext | None:
    """The server's address, the report, the item's neighbours (other items of the same report or
    host, newest first, at most 20). Facts only; no opinion. None for no such item."""
    with engine.connect() as conn:
        row = conn.execute(
            select(Item.server_ip, Item.host, Item.report_id, Item.url, Item.final_url, Item.state).where(
                Item.id == item_id
            )
        ).first()
        if row is None:
            return None
        others = conn.execute(
            select(Item.id, Item.url, Item.host, Item.state, Item.report_id)
            .where(Item.id != item_id)
            .where(
                or_(Item.report_id == row.report_id, Item.host == row.host)
                if row.host
                else Item.report_id == row.report_id
            )
            .order_by(Item.id.desc())
            .limit(20)
        ).all()
        seen_on = conn.execute(select(Report.seen_on).where(Report.id == row.report_id)).scalar()
    return ItemContext(
        server_ip=row.server_ip,
        state=row.state,
        final_url=row.final_url if row.final_url != row.url else "",
        seen_on=seen_on or "",
        others=[Neighbour(int(o.id), o.url, o.state, o.report_id == row.report_id) for o in others],
    )


@dataclass(frozen=True)
class ItemFacts:
    """An item's facts for the police liaison; ``media`` only once it has a final classification."""

    id: int
    url: str
    final_url: str  # "" when the fetch ended where it began
    host: str
    server_ip: str
    state: str
    urgent: bool
    created_at: datetime
    final: Classification | None
    media: list[dict[str, Any]]


def urgent_items(engine: Engine, limit: int) -> list[dict[str, Any]]:
    """Urgent items in any state, newest first: id, url, host, server_ip, state, created_at."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Item.id, Item.url, Item.host, Item.server_ip, Item.state, Item.created_at)
            .where(Item.urgent.is_(True))
            .order_by(Item.created_at.desc(), Item.id.desc())
            .limit(limit)
        ).all()
    return [{**r._asdict(), "id": int(r.id)} for r in rows]


def item_facts(t: Triage, item_id: int) -> ItemFacts | None:
    """A classified item's facts: its final classification, its media's hashes and matches (and
    whether the decision covers each). None for no such item."""
    with t.engine.connect() as conn:
        item = conn.execute(
            select(
                Item.id,
                Item.url,
                Item.final_url,
                Item.host,
                Item.server_ip,
                Item.state,
                Item.urgent,
                Item.created_at,
            ).where(Item.id == item_id)
        ).first()
        if item is None:
            return None
        final = t.final_classification(item_id)
        media: list[dict[str, Any]] = []
        if final is not None:
            media = [
                {
                    "id": int(m.id),
                    "kind": m.kind,
                    "size": m.size,
                    "md5": m.md5,
                    "sha1": m.sha1,
                    "sha256": m.sha256,
                    "pdq": m.pdq,
                    "matches": _matches(m.matches),
                    # what the decision is about (an analyst may leave out e.g. a site's logo)
                    "covered": final.media is None or int(m.id) in final.media,
                }
                for m in conn.execute(
                    select(
                        Medium.id,
                        Medium.kind,
                        Medium.size,
                        Medium.md5,
                        Medium.sha1,
                        Medium.sha256,
                        Medium.pdq,
                        Medium.matches,
                    )
                    .where(Medium.item_id == item_id)
                    .order_by(Medium.id)
                )
            ]
    return ItemFacts(
        id=int(item.id),
        url=item.url,
        final_url=item.final_url if item.final_url != item.url else "",
        host=item.host,
        server_ip=item.server_ip,
        state=item.state,
        urgent=bool(item.urgent),
        created_at=item.created_at,
        final=final,
        media=media,
    )


def items_by_state(engine: Engine) -> list[tuple[str, int]]:
    """How many items are in each state, by state."""
    with engine.connect() as conn:
        return [
            (str(state), int(count))
            for state, count in conn.execute(
                select(Item.state, func.count()).group_by(Item.state).order_by(Item.state)
            ).all()
        ]


def _matches(text: str) -> list[dict[str, Any]]:
    try:
        found = json.loads(text or "[]")
    except ValueError:
        return []
    return [m for m in found if isinstance(m, dict)] if isinstance(found, list) else []
