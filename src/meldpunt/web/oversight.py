"""Oversight pages: the police liaison's (urgent items, a classified item's facts and hashes — never
the media) and a senior's statistics; the administrator's are :mod:`meldpunt.web.admin`. Every page
is guarded by :func:`meldpunt.web.staff.require`; none serves a thumbnail or a reveal."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import func, select
from starlette.exceptions import HTTPException
from starlette.responses import Response

from meldpunt.accounts import CurrentUser
from meldpunt.store.reports import Item, Medium
from meldpunt.web.context import ctx
from meldpunt.web.staff import require, staff_page, when_for
from meldpunt.web.workspace import triage

router = APIRouter(include_in_schema=False)

#: how many rows a list shows at most
LIMIT = 200

Facts = Annotated[CurrentUser, Depends(require("item.facts"))]
Urgent = Annotated[CurrentUser, Depends(require("urgent.view"))]
Stats = Annotated[CurrentUser, Depends(require("stats.view"))]


_page = staff_page


def _matches(text: str) -> list[dict[str, Any]]:
    try:
        found = json.loads(text or "[]")
    except ValueError:
        return []
    return [m for m in found if isinstance(m, dict)] if isinstance(found, list) else []


# -- police liaison ---------------------------------------------------------------------------------


@router.get("/police/urgent")
def urgent_page(request: Request, user: Urgent) -> Response:
    """Urgent items in any state: the reported URL (as text), host, server address, state, time."""
    with ctx(request).services.engine.connect() as conn:
        rows = conn.execute(
            select(Item.id, Item.url, Item.host, Item.server_ip, Item.state, Item.created_at)
            .where(Item.urgent.is_(True))
            .order_by(Item.created_at.desc(), Item.id.desc())
            .limit(LIMIT)
        ).all()
    items = [
        {
            "id": int(r.id),
            "url": r.url,
            "host": r.host,
            "server_ip": r.server_ip,
            "state": r.state,
            "received": when_for(request)(r.created_at),
        }
        for r in rows
    ]
    return _page(request, "ov_urgent.html", user, items=items)


@router.get("/police/items/{item_id}")
def facts_page(request: Request, item_id: int, user: Facts) -> Response:
    """A classified item's facts: its final classification, its media's hashes and matches. An item
    without a final classification shows only its state. No thumbnails, no reveal."""
    with ctx(request).services.engine.connect() as conn:
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
            raise HTTPException(404)
        final = triage(request).final_classification(item_id)
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
    classification = None
    if final is not None:
        classification = {
            "values": sorted(final.values.items()),
            "flags": list(final.flags),
            "series": final.series or "",
        }
    return _page(
        request,
        "ov_facts.html",
        user,
        item={
            "id": int(item.id),
            "url": item.url,
            "final_url": item.final_url if item.final_url != item.url else "",
            "host": item.host,
            "server_ip": item.server_ip,
            "state": item.state,
            "urgent": bool(item.urgent),
            "received": when_for(request)(item.created_at),
        },
        final=classification,
        media=media,
    )


# -- senior -----------------------------------------------------------------------------------------


@router.get("/stats")
def stats_page(request: Request, user: Stats) -> Response:
    """Items by state; resolved without anyone viewing; final classifications."""
    with ctx(request).services.engine.connect() as conn:
        by_state = [
            (str(state), int(count))
            for state, count in conn.execute(
                select(Item.state, func.count()).group_by(Item.state).order_by(Item.state)
            ).all()
        ]
    counts = triage(request).resolved_without_viewing()
    return _page(request, "ov_stats.html", user, by_state=by_state, counts=counts)
