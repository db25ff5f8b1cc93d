"""Oversight pages: the police liaison's (urgent items, a classified item's facts and hashes — never
the media), the administrator's (users, the audit log and its verification) and a senior's
statistics. Every page is guarded by :func:`meldpunt.web.staff.require`; none serves a thumbnail or
a reveal."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from meldpunt.accounts import CurrentUser
from meldpunt.audit import AuditLog
from meldpunt.store.reports import Item, Medium
from meldpunt.web.context import ctx, staff_translator
from meldpunt.web.forms import field, read_form, token_ok
from meldpunt.web.staff import accounts, require, staff_page, when_for
from meldpunt.web.workspace import triage

router = APIRouter(include_in_schema=False)

#: how many rows a list shows at most
LIMIT = 200
#: how many audit entries the audit page shows by default, and at most
AUDIT_DEFAULT, AUDIT_MAX = 100, 1000

Facts = Annotated[CurrentUser, Depends(require("item.facts"))]
Urgent = Annotated[CurrentUser, Depends(require("urgent.view"))]
Users = Annotated[CurrentUser, Depends(require("users.manage"))]
AuditRead = Annotated[CurrentUser, Depends(require("audit.read"))]
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


# -- administrator ----------------------------------------------------------------------------------


def _disable_purpose(user: CurrentUser) -> str:
    return f"ov-disable:{user.session_hash}"


def _users_page(request: Request, user: CurrentUser, message: str = "", status: int = 200) -> Response:
    service = accounts(request)
    now = service.clock()
    users = [
        {
            "name": u.name,
            "role": u.role,
            "enrolled": u.enrolled,
            "disabled": u.disabled,
            "locked": u.locked_until is not None and u.locked_until > now,
        }
        for u in service.list_users()
    ]
    return _page(
        request,
        "ov_users.html",
        user,
        status,
        users=users,
        token=ctx(request).tokens.issue(_disable_purpose(user)),
        message=message,
    )


@router.get("/admin/users")
def users_page(request: Request, user: Users) -> Response:
    return _users_page(request, user)


@router.post("/admin/users/disable")
async def disable_user(request: Request, user: Users) -> Response:
    """Disable a user (CSRF-checked, audited): they cannot sign in and their sessions end now."""
    _ = staff_translator(request)
    form = await read_form(request, max_fields=10)
    name = field(form, "name", 120) if form is not None else ""
    if not token_ok(request, form, _disable_purpose(user)):
        return await run_in_threadpool(
            _users_page, request, user, _("This form has expired; nothing was done."), 400
        )
    if name == user.name:
        return await run_in_threadpool(_users_page, request, user, _("You cannot disable yourself."), 400)

    def disable() -> bool:
        done = accounts(request).disable(name)
        if done:
            AuditLog(ctx(request).services.engine).append(user.name, "user.disable", f"user:{name}")
        return done

    if not await run_in_threadpool(disable):
        return await run_in_threadpool(_users_page, request, user, _("No such user."), 404)
    return RedirectResponse("/admin/users", status_code=303)


@router.get("/admin/audit")
def audit_page(
    request: Request, user: AuditRead, actor: str = "", action: str = "", limit: int = 0
) -> Response:
    """The newest entries (filter by actor and by action, ``prefix.*`` allowed) and whether the
    whole chain verifies (else where it first breaks)."""
    log = AuditLog(ctx(request).services.engine)
    n = min(max(limit, 1), AUDIT_MAX) if limit else AUDIT_DEFAULT
    chosen_actor = actor.strip()[:200]
    chosen_action = action.strip()[:100]
    rows = log.entries(limit=n, actor=chosen_actor or None, action=chosen_action or None, newest=True)[::-1]
    verification = log.verify(max_problems=10)
    entries = [
        {
            "seq": e.seq,
            "at": when_for(request)(e.at),
            "actor": e.actor,
            "action": e.action,
            "subject": e.subject,
            "details": e.details_json,
        }
        for e in rows
    ]
    return _page(
        request,
        "ov_audit.html",
        user,
        entries=entries,
        actor=chosen_actor,
        action=chosen_action,
        verified=verification.ok,
        checked=verification.entries,
        problems=[str(p) for p in verification.problems],
        more=verification.more,
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
