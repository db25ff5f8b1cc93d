"""Forwarding between meldpunt instances on the web (#11 part "forward"): the item page's
"Forwarded" panel and the forwards waiting for a senior.

The panel (``forwarding_panel.html``, included by ``ws_item.html`` after the Action panel; a Jinja
global so the item page's route needs no change) shows, on the sender's side, the forward: the
partner, our reference, the message's state and each status the partner sent back with its time;
on the receiver's side, who forwarded the item, their reference, their classification and hosting
facts and the statuses we sent back.

``/act/forwards`` (``contacts.manage``, like ``/act/attention``, which links to it) lists forwards
a senior must decide about: a forward the partner refused for good (send it again), one the
partner found not illegal, or one they could not reach while our re-checks see it online ("noted":
it stays re-checked). Plain POST forms with the workspace's form tokens; audited by the service.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from meldpunt.accounts import CurrentUser, allowed
from meldpunt.act import forward_in as in_service
from meldpunt.act import forwarding as service
from meldpunt.act.context import ActNeeds
from meldpunt.web.context import ctx, staff_translator
from meldpunt.web.forms import read_form, token_ok
from meldpunt.web.i18n import N_, Translator
from meldpunt.web.staff import require, staff_page

router = APIRouter(include_in_schema=False)
Manage = Annotated[CurrentUser, Depends(require("contacts.manage"))]

STATUS_WORDS = {
    "received": N_("received by the partner"),
    "assessed": N_("assessed by the partner"),
    "notice_sent": N_("the partner's notice to the provider went out"),
    "removed": N_("removed, the partner says"),
    "not_illegal": N_("not illegal in the partner's country"),
    "unavailable": N_("the partner could not reach it"),
}
VERDICT_WORDS = {"illegal": N_("illegal"), "not_illegal": N_("not illegal")}
MESSAGE_WORDS = {
    "queued": N_("queued (being delivered)"),
    "sent": N_("delivered to the partner"),
    "failed": N_("refused or undeliverable: a senior decides"),
}
ATTENTION_WORDS = {
    "failed": N_("The partner refused the forward or it could not be delivered: {reason}"),
    "not_illegal": N_(
        "The partner found it not illegal in their country. Decide what we do; it stays re-checked."
    ),
    "unavailable_online": N_("The partner could not reach it, but our last re-check saw it online."),
}
MESSAGES = {
    "noted": N_("Noted: it is off the list and stays re-checked."),
    "retried": N_("The forward will be sent again."),
}


def _status_line(line: Any, t: Translator) -> dict[str, Any]:
    verdict = str(line.detail.get("verdict", ""))
    return {
        "status": line.status,
        "at": line.at,
        "words": t(STATUS_WORDS[line.status]) if line.status in STATUS_WORDS else line.status,
        "verdict": t(VERDICT_WORDS[verdict]) if verdict in VERDICT_WORDS else "",
    }


def panel(services: ActNeeds) -> Callable[[int, str | None, Translator], dict[str, Any] | None]:
    """The Jinja global ``forwarding_panel(item_id, role, t)``; None when there is nothing to show
    (or the role may not see actions)."""

    def build(item_id: int, role: str | None, t: Translator) -> dict[str, Any] | None:
        if not allowed(role, "actions.view"):
            return None
        out = service.forward_of(services, item_id)
        ins = in_service.forwarded_in(services, item_id)
        if out is None and not ins:
            return None
        return {
            "out": out,
            "out_state": t(MESSAGE_WORDS[out.state]) if out and out.state in MESSAGE_WORDS else "",
            "out_statuses": [_status_line(s, t) for s in out.statuses] if out else [],
            "attention": _attention(out.attention, out.attention_reason, t) if out and out.attention else "",
            "ins": [
                {
                    "f": f,
                    "values": f.classification.get("values", {}),
                    "decided_by": ", ".join(f.classification.get("roles", []))
                    or str(f.classification.get("decided_by", "")),
                    "statuses": [
                        {"at": at, "words": t(STATUS_WORDS[s]) if s in STATUS_WORDS else s}
                        for s, at in f.statuses
                    ],
                }
                for f in ins
            ],
        }

    return build


def _attention(why: str, reason: str, t: Translator) -> str:
    return t(ATTENTION_WORDS[why], reason=reason) if why in ATTENTION_WORDS else why


def waiting(services: ActNeeds) -> Callable[[str | None], int]:
    """The Jinja global ``forwards_waiting(role)``: how many forwards wait for a senior."""

    def count(role: str | None) -> int:
        return len(service.attention(services)) if allowed(role, "contacts.manage") else 0

    return count


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.state.ctx.env.globals["forwarding_panel"] = panel(app.state.ctx.services)
    app.state.ctx.env.globals["forwards_waiting"] = waiting(app.state.ctx.services)


def _services(request: Request) -> ActNeeds:
    return ctx(request).services


def _purpose(kind: str, user: CurrentUser, key: object) -> str:
    return f"forward-{kind}:{key}:{user.session_hash}"


def _id(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise HTTPException(404)
    return int(text)


@router.get("/act/forwards")
def forwards_page(request: Request, user: Manage, msg: str = "") -> Response:
    _ = staff_translator(request)
    tokens = ctx(request).tokens
    rows = service.attention(_services(request))
    return staff_page(
        request,
        "forwarding_attention.html",
        user,
        forwards=[
            {
                "f": f,
                "why": _attention(f.attention, f.attention_reason, _),
                "state": _(MESSAGE_WORDS[f.state]) if f.state in MESSAGE_WORDS else f.state,
                "statuses": [_status_line(s, _) for s in f.statuses],
                "noted_token": tokens.issue(_purpose("noted", user, f.id)),
                "retry_token": tokens.issue(_purpose("retry", user, f.id)) if f.attention == "failed" else "",
            }
            for f in rows
        ],
        message=_(MESSAGES[msg]) if msg in MESSAGES else "",
    )


async def _act(request: Request, user: Manage, forward_id: str, kind: str) -> Response:
    fid = _id(forward_id)
    form = await read_form(request, max_fields=5)
    _ = staff_translator(request)
    if form is None or not token_ok(request, form, _purpose(kind, user, fid)):
        heading, message, status = (
            _("This form has expired"),
            _("Nothing was saved. Open the page again."),
            400,
        )
    else:
        do = service.noted if kind == "noted" else service.retry
        try:
            await run_in_threadpool(do, _services(request), fid, user.name)
        except service.NotWaiting:
            heading, message, status = (
                _("Not waiting any more"),
                _("Someone decided meanwhile: nothing was changed."),
                409,
            )
        except LookupError:
            raise HTTPException(404) from None
        else:
            return RedirectResponse(
                f"/act/forwards?msg={'noted' if kind == 'noted' else 'retried'}", status_code=303
            )
    return await run_in_threadpool(
        lambda: staff_page(
            request, "ws_message.html", user, status, heading=heading, message=message, back="/act/forwards"
        )
    )


@router.post("/act/forwards/{forward_id}/noted")
async def noted(request: Request, forward_id: str, user: Manage) -> Response:
    return await _act(request, user, forward_id, "noted")


@router.post("/act/forwards/{forward_id}/retry")
async def retry(request: Request, forward_id: str, user: Manage) -> Response:
    return await _act(request, user, forward_id, "retry")


__all__ = ["install", "panel", "router"]
