"""Urgent alerts in the workspace: the open alerts with their timers and an "I am on it" button
(``alerts.ack``), the acknowledged ones with their time to acknowledgement, and a senior's "mark
urgent and alert the on-call people" on an item's page (``alerts.raise``).

The page works without JavaScript: it is rendered with the time since each alert was raised and
until it escalates, and refreshes itself every :data:`REFRESH_S` seconds (a meta refresh); a small
script (``/static/alerts.js``) counts down between refreshes where scripts run. Queries are
:mod:`meldpunt.act.alerts`'; this module runs no SQL.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from meldpunt.accounts import CurrentUser, allowed
from meldpunt.act import alerts
from meldpunt.bootstrap import Services
from meldpunt.web.context import ctx, staff_translator
from meldpunt.web.forms import field, read_form, token_ok
from meldpunt.web.i18n import N_, Translator
from meldpunt.web.staff import require, staff_page

router = APIRouter(include_in_schema=False)

Ack = Annotated[CurrentUser, Depends(require("alerts.ack"))]
Raise = Annotated[CurrentUser, Depends(require("alerts.raise"))]

#: the page reloads itself this often (seconds) so the timers and the list stay true without scripts
REFRESH_S = 30
#: what ``?msg=`` may say (never text from the request)
MESSAGES = {
    "acknowledged": N_("Acknowledged: the alert stops escalating. Thank you."),
    "raised": N_("The item is marked urgent and the on-call people are being alerted."),
    "had": N_("This item was alerted before: its alert is below."),
}


def _ack_purpose(user: CurrentUser) -> str:
    return f"alert-ack:{user.session_hash}"


def _raise_purpose(item_id: int, user: CurrentUser) -> str:
    return f"alert-raise:{item_id}:{user.session_hash}"


def duration(seconds: float, t: Translator) -> str:
    """``seconds`` in words a person reads at a glance: "45 s", "12 min", "3 h 05 min"."""
    s = max(0, int(seconds))
    if s < 60:
        return t("{n} s", n=s)
    if s < 3600:
        return t("{n} min", n=s // 60)
    return t("{h} h {m} min", h=s // 3600, m=f"{(s % 3600) // 60:02d}")


def _row(services: Services, a: alerts.AlertView, failed: int, _: Translator) -> dict[str, Any]:
    """An alert as the page shows it: times in words, who is next."""
    now = services.clock.now()
    people = alerts.oncall(services.settings)
    left = (a.next_escalation_at - now).total_seconds() if a.next_escalation_at else None
    nxt, _whole = alerts.targets(people, a.level + 1)
    return {
        "alert": a,
        "since": duration((now - a.raised_at).total_seconds(), _),
        "left": duration(left, _) if left is not None and left > 0 else "",
        "left_s": int(left) if left is not None else 0,
        "overdue": left is not None and left <= 0,
        "next": ", ".join(p.name or p.address for p in nxt),
        "whole_list": a.level + 1 >= len(people),
        "ack_time": duration(a.ack_seconds, _) if a.ack_seconds is not None else "",
        "failed": failed,
        "by_person": a.raised_by != "report",
    }


def _list_page(request: Request, user: CurrentUser, message: str = "", status: int = 200) -> Response:
    services = ctx(request).services
    engine = services.engine
    t = staff_translator(request)
    open_ = alerts.open_alerts(engine)
    done = alerts.acknowledged_alerts(engine)
    failed = alerts.failed_deliveries(engine, [a.id for a in open_])
    return staff_page(
        request,
        "act_alerts_list.html",
        user,
        status,
        open_alerts=[_row(services, a, failed.get(a.id, 0), t) for a in open_],
        done=[_row(services, a, 0, t) for a in done],
        token=ctx(request).tokens.issue(_ack_purpose(user)),
        message=message,
        refresh_s=REFRESH_S,
        ack_minutes=ctx(request).services.settings.alert.ack_minutes,
        nobody_on_call=not alerts.oncall(ctx(request).services.settings),
    )


@router.get("/alerts")
def alerts_page(request: Request, user: Ack, msg: str = "") -> Response:
    _ = staff_translator(request)
    return _list_page(request, user, _(MESSAGES[msg]) if msg in MESSAGES else "")


@router.post("/alerts/{alert_id}/ack")
async def acknowledge(request: Request, alert_id: int, user: Ack) -> Response:
    _ = staff_translator(request)
    form = await read_form(request, 5)
    if not token_ok(request, form, _ack_purpose(user)):
        return await run_in_threadpool(
            _list_page,
            request,
            user,
            _("This form has expired. Nothing was saved: press the button again."),
            400,
        )
    try:
        done = await run_in_threadpool(alerts.acknowledge, ctx(request).services, alert_id, by=user.name)
    except alerts.NoSuchAlert:
        raise HTTPException(404) from None
    if not done.by_you:
        note = _("{who} acknowledged this alert already.", who=done.alert.acknowledged_by)
        return await run_in_threadpool(_list_page, request, user, note, 409)
    return RedirectResponse(f"/alerts?msg=acknowledged#alert-{alert_id}", status_code=303)


@router.post("/items/{item_id}/alert")
async def raise_alert(request: Request, item_id: int, user: Raise) -> Response:
    form = await read_form(request, 5)
    if not token_ok(request, form, _raise_purpose(item_id, user)):
        _ = staff_translator(request)
        return staff_page(
            request,
            "ws_message.html",
            user,
            400,
            heading=_("This form has expired"),
            message=_("Nothing was saved. Open the item again and repeat what you did."),
            back=f"/items/{item_id}",
        )
    assert form is not None
    reason = field(form, "reason", 500).strip()
    try:
        raised = await run_in_threadpool(
            alerts.raise_alert, ctx(request).services, item_id, by=user.name, reason=reason
        )
    except alerts.NoSuchItem:
        raise HTTPException(404) from None
    msg = "raised" if raised.new else "had"
    return RedirectResponse(f"/alerts?msg={msg}#alert-{raised.alert.id}", status_code=303)


def install(app: FastAPI) -> None:
    """The routes, and what the workspace frame and the item page ask of alerts: the count of open
    alerts beside the navigation link, the item page's panel (``act_alerts_item.html``)."""
    app.include_router(router)
    c = app.state.ctx
    services: Services = c.services

    def item_panel(item_id: int, user: CurrentUser, lang: str) -> dict[str, Any]:
        """The item's alert (if any) and, for a senior, the form that raises one."""
        found = alerts.alert_for_item(services.engine, item_id)
        may_raise = allowed(user.role, "alerts.raise") and found is None
        return {
            "alert": _row(services, found, 0, Translator(lang)) if found is not None else None,
            "may_raise": may_raise,
            "may_ack": allowed(user.role, "alerts.ack"),
            "token": c.tokens.issue(_raise_purpose(item_id, user)) if may_raise else "",
        }

    c.env.globals.update(open_alert_count=lambda: alerts.count_open(services.engine), alert_panel=item_panel)
