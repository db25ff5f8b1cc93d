"""Oversight pages: the police liaison's (urgent items, a classified item's facts and hashes — never
the media) and a senior's statistics; the administrator's are :mod:`meldpunt.web.admin`. Every page
is guarded by :func:`meldpunt.web.staff.require`; none serves a thumbnail or a reveal."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from meldpunt.accounts import CurrentUser
from meldpunt.act.alerts import alerts_for_items
from meldpunt.act.charts import Numbers
from meldpunt.triage.context import item_facts, items_by_state, urgent_items
from meldpunt.web.context import ctx, staff_language
from meldpunt.web.staff import require, staff_page, when_for
from meldpunt.web.ws_common import triage

router = APIRouter(include_in_schema=False)

#: how many rows a list shows at most
LIMIT = 200

Facts = Annotated[CurrentUser, Depends(require("item.facts"))]
Urgent = Annotated[CurrentUser, Depends(require("urgent.view"))]
Stats = Annotated[CurrentUser, Depends(require("stats.view"))]


_page = staff_page


# -- police liaison ---------------------------------------------------------------------------------


@router.get("/police/urgent")
def urgent_page(request: Request, user: Urgent) -> Response:
    """Urgent items in any state: the reported URL (as text), host, server address, state, time."""
    when = when_for(request)
    engine = ctx(request).services.engine
    rows = urgent_items(engine, LIMIT)
    alerted = alerts_for_items(engine, [r["id"] for r in rows])  # #10: each item's urgent alert
    items = [{**r, "received": when(r["created_at"]), "alert": alerted.get(r["id"])} for r in rows]
    return _page(request, "ov_urgent.html", user, items=items)


@router.get("/police/items/{item_id}")
def facts_page(request: Request, item_id: int, user: Facts) -> Response:
    """A classified item's facts: its final classification, its media's hashes and matches. An item
    without a final classification shows only its state. No thumbnails, no reveal."""
    facts = item_facts(triage(request), item_id)
    if facts is None:
        raise HTTPException(404)
    final = facts.final
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
            "id": facts.id,
            "url": facts.url,
            "final_url": facts.final_url,
            "host": facts.host,
            "server_ip": facts.server_ip,
            "state": facts.state,
            "urgent": facts.urgent,
            "received": when_for(request)(facts.created_at),
        },
        final=classification,
        media=facts.media,
    )


# -- senior -----------------------------------------------------------------------------------------


@router.get("/stats")
def stats_page(request: Request, user: Stats) -> Response:
    """Items by state; resolved without anyone viewing; final classifications."""
    t = triage(request)
    return _page(
        request,
        "ov_stats.html",
        user,
        by_state=items_by_state(ctx(request).services.engine),
        counts=t.resolved_without_viewing(),
        num=Numbers(staff_language(request)),
    )
