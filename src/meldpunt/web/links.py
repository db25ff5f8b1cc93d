"""Link analysis in the workspace (#13): connected groups of reports, items, hosts and entities;
the most linked entities; one group drawn as SVG on the server; one entity's sources; exports
(GraphML, CSV nodes and edges) of a group or of everything.

Seniors and the police liaison only (``links.view`` to look, ``links.export`` to download). Every
page and every export is audited by the service (``meldpunt.links``); exports are form posts with
a token, so a link prefetcher cannot record a download nobody made. No JavaScript; the graph is an
inline SVG that scales to the screen. This module runs no SQL.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response, StreamingResponse

from meldpunt import links
from meldpunt.accounts import CurrentUser, allowed
from meldpunt.links import KINDS
from meldpunt.links.svg import COLOURS
from meldpunt.triage.search import Page
from meldpunt.web.context import ctx, staff_translator
from meldpunt.web.forms import field, read_form, token_ok
from meldpunt.web.i18n import N_
from meldpunt.web.lists import bounds, number, pager
from meldpunt.web.staff import require, staff_page

router = APIRouter(include_in_schema=False)

View = Annotated[CurrentUser, Depends(require("links.view"))]
Export = Annotated[CurrentUser, Depends(require("links.export"))]

#: entity kinds and node types in words (the legend and the lists)
KIND_WORDS = {
    "handle": N_("user handle"),
    "crypto": N_("cryptocurrency address"),
    "payment": N_("payment handle"),
    "iban": N_("IBAN"),
    "phone": N_("phone number"),
    "email": N_("e-mail address"),
    "domain": N_("domain"),
    "url": N_("URL"),
    "report": N_("report"),
    "item": N_("item"),
    "host": N_("host"),
    "provider": N_("provider"),
}
FORMAT_WORDS = {
    "graphml": N_("GraphML"),
    "nodes": N_("CSV: nodes"),
    "edges": N_("CSV: edges"),
}


def _purpose(user: CurrentUser) -> str:
    return f"links-export:{user.session_hash}"


def _legend() -> list[tuple[str, str]]:
    return [(k, COLOURS[k]) for k in ("report", "item", "host", "provider", *KINDS)]


@router.get("/links")
def groups_page(request: Request, user: View, page: str = "1") -> Response:
    number_, per_page = bounds(page, "25")
    found = links.list_groups(ctx(request).services, user.name, page=number_, per_page=per_page)
    return staff_page(
        request,
        "links_groups.html",
        user,
        groups=found.groups,
        hubs=found.hubs,
        pager=pager(request, Page(found.groups, found.total, number_, per_page)),
        kinds=KIND_WORDS,
        formats=FORMAT_WORDS,
        may_export=allowed(user.role, "links.export"),
        token=ctx(request).tokens.issue(_purpose(user)),
    )


@router.get("/links/entities")
def entities_page(request: Request, user: View, page: str = "1", kind: str = "") -> Response:
    number_, per_page = bounds(page, "50")
    wanted = kind if kind in KINDS else ""
    rows, total = links.list_central(
        ctx(request).services, user.name, page=number_, per_page=per_page, kind=wanted or None
    )
    return staff_page(
        request,
        "links_entities.html",
        user,
        rows=rows,
        kind=wanted,
        all_kinds=KINDS,
        kinds=KIND_WORDS,
        pager=pager(request, Page(rows, total, number_, per_page)),
    )


@router.get("/links/entities/{entity_id}")
def entity_page(request: Request, user: View, entity_id: str) -> Response:
    ident = number(entity_id)
    if ident is None:
        raise HTTPException(404)
    try:
        view = links.entity_view(ctx(request).services, user.name, ident)
    except links.NoSuchNode:
        raise HTTPException(404) from None
    return staff_page(
        request,
        "links_entity.html",
        user,
        e=view,
        kinds=KIND_WORDS,
        may_item=allowed(user.role, "item.view"),
    )


@router.get("/links/groups/{node}")
def group_page(request: Request, user: View, node: str) -> Response:
    _ = staff_translator(request)
    try:
        view = links.group_view(
            ctx(request).services,
            user.name,
            links.parse_node(node),
            title=_("The group of {node}", node=node),
            hub_note=_("(common: not followed)"),
            word=lambda key: _(KIND_WORDS[key]) if key in KIND_WORDS else key,
            report=lambda number: _("report {number}", number=number),
        )
    except links.NoSuchNode:
        raise HTTPException(404) from None
    g = view.group.graph
    counts = {t: sum(1 for _n, a in g.nodes(data=True) if a.get("type") == t) for t in KIND_WORDS}
    return staff_page(
        request,
        "links_group.html",
        user,
        view=view,
        counts=counts,
        legend=_legend(),
        kinds=KIND_WORDS,
        formats=FORMAT_WORDS,
        may_export=allowed(user.role, "links.export"),
        token=ctx(request).tokens.issue(_purpose(user)),
    )


@router.post("/links/export")
async def export(request: Request, user: Export) -> Response:
    form = await read_form(request, 8)
    if form is None or not token_ok(request, form, _purpose(user)):
        _ = staff_translator(request)
        return staff_page(
            request,
            "ws_message.html",
            user,
            400,
            heading=_("This form has expired"),
            message=_("Nothing was downloaded. Open the page again and repeat what you did."),
            back="/links",
        )
    fmt = field(form, "format")
    group = field(form, "group").strip()
    if fmt not in FORMAT_WORDS:
        raise HTTPException(400)
    try:
        node = links.parse_node(group) if group else None
        name, media, body = await run_in_threadpool(
            links.export, ctx(request).services, user.name, fmt, node=node
        )
    except links.NoSuchNode:
        raise HTTPException(404) from None
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
    if isinstance(body, bytes):
        return Response(body, media_type=media, headers=headers)
    return StreamingResponse(body, media_type=media, headers=headers)


def install(app: FastAPI) -> None:
    app.include_router(router)


__all__ = ["FORMAT_WORDS", "KIND_WORDS", "install", "router"]
