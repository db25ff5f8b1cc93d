"""The workspace's shared parts: the triage service of the app, the render sandbox, form and
grant purposes, the page frame with the viewing time, and the words of its lists."""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from meldpunt.accounts import CurrentUser, allowed
from meldpunt.signals.sandbox import MediaSandbox
from meldpunt.triage import (
    ClaimConflict,
    Triage,
)
from meldpunt.triage.reveal import (
    GRANT_SECONDS,
    grant_used,
)
from meldpunt.triage.schemes import MAX_MEDIA
from meldpunt.triage.search import understand
from meldpunt.web.context import WebContext, ctx, staff_translator
from meldpunt.web.forms import field
from meldpunt.web.i18n import N_, Translator
from meldpunt.web.prefs import wellness
from meldpunt.web.staff import require, staff_page
from meldpunt.wellness import Today

#: how long a reveal grant lasts (seconds), and it is good for one rendering only
REVEAL_SECONDS = GRANT_SECONDS
#: what ``?msg=`` may say on the queue (never text taken from the request); translated when shown
MESSAGES = {
    "classified": N_("Classification saved."),
    "group": N_("Classification saved for the item and its group."),
    "resolved": N_("Disagreement resolved."),
    "released": N_("Item released."),
    "corrected": N_("Correction saved: the hotline's own list follows it."),
}
#: what a search was understood as (``triage.search.Search.kind``), in words
SEARCH_KINDS = {
    "item": N_("item number"),
    "receipt": N_("receipt code"),
    "md5": N_("MD5 hash"),
    "sha1": N_("SHA-1 hash"),
    "sha256/pdq": N_("SHA-256 or PDQ hash"),
    "text": N_("part of a URL or host"),
}
#: accesskeys of the first queue rows
ROW_KEYS = "123456789"

QueueView = Annotated[CurrentUser, Depends(require("queue.view"))]
ItemView = Annotated[CurrentUser, Depends(require("item.view"))]
Reveal = Annotated[CurrentUser, Depends(require("item.reveal"))]
Classify = Annotated[CurrentUser, Depends(require("item.classify"))]
Resolve = Annotated[CurrentUser, Depends(require("disagreement.resolve"))]
Correct = Annotated[CurrentUser, Depends(require("classification.correct"))]


# -- plumbing ---------------------------------------------------------------------------------------


#: Processes rendering thumbnails at once (each under ``settings.media_memory_mb``).
RENDER_PROCESSES = 2
_render_sandboxes: dict[int, MediaSandbox] = {}
_render_lock = threading.Lock()


def render_sandbox(t: Triage) -> MediaSandbox:
    """The process-wide sandbox renderings are made in (``meldpunt.signals.sandbox``): a hostile
    file costs a render process, never the web server and its public form."""
    with _render_lock:
        key = t.settings.media_memory_mb
        if key not in _render_sandboxes:
            _render_sandboxes[key] = MediaSandbox(key, processes=RENDER_PROCESSES)
        return _render_sandboxes[key]


def triage(request: Request) -> Triage:
    """The app's triage service: ``Services.triage`` (tests may put their own on app.state)."""
    found = getattr(request.app.state, "triage", None)
    if isinstance(found, Triage):
        return found
    return ctx(request).services.triage


def _item_purpose(item_id: int, user: CurrentUser) -> str:
    return f"ws-item:{item_id}:{user.session_hash}"


def _grant_purpose(item_id: int, medium_id: int, user: CurrentUser) -> str:
    return f"ws-reveal:{item_id}:{medium_id}:{user.session_hash}"


def _grant_nonce(c: WebContext, item_id: int, medium_id: int, user: CurrentUser, grant: str) -> str | None:
    """The grant's nonce when it is genuine, this session's, for this medium and young enough."""
    nonce = c.tokens.check(_grant_purpose(item_id, medium_id, user), grant)
    if nonce is None:
        return None
    issued = int(grant.split(".", 1)[0])  # signed: check() verified it
    return nonce if 0 <= c.services.clock.now().timestamp() - issued <= REVEAL_SECONDS else None


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _page(
    request: Request,
    template: str,
    user: CurrentUser,
    status: int = 200,
    *,
    today: Today | None = None,
    **values: Any,
) -> Response:
    """A workspace page, with the viewing-time counter and any break or limit banner above it
    (``wl_frame.html`` wraps ``template``'s main block)."""
    return staff_page(
        request,
        "wl_frame.html",
        user,
        status,
        inner=template,
        wellness=today or wellness(request).today(user.name),
        **values,
    )


def _bad_token(request: Request, user: CurrentUser) -> Response:
    _ = staff_translator(request)
    return _page(
        request,
        "ws_message.html",
        user,
        400,
        heading=_("This form has expired"),
        message=_("Nothing was saved. Open the item again and repeat what you did."),
    )


def _conflict(request: Request, user: CurrentUser, e: ClaimConflict) -> Response:
    return _page(
        request, "ws_claimed.html", user, 409, item_id=e.item_id, holder=e.holder, until=e.expires_at
    )


def _searched(search: str, _: Translator) -> str:
    """What the search box's text was taken for, in words ("" for no search)."""
    found = understand(search)
    return _(SEARCH_KINDS[found.kind]) if found is not None else ""


def _revealed(
    request: Request, t: Triage, item_id: int, user: CurrentUser, reveal: str, grant: str
) -> dict[str, Any] | None:
    """The reveal a page shows beside its form: ``{"medium", "grant"}`` while this session's grant
    for the medium is live and unused; ``{"medium", "gone": True}`` once it has been shown or has
    expired (the page then says so instead of showing a broken image); None without one."""
    if (
        not (reveal.isascii() and reveal.isdigit())
        or len(reveal) > 18
        or not grant
        or not allowed(user.role, "item.reveal")
    ):
        return None
    medium_id = int(reveal)
    nonce = _grant_nonce(ctx(request), item_id, medium_id, user, grant)
    if nonce is None or grant_used(t.engine, nonce):
        genuine = ctx(request).tokens.check(_grant_purpose(item_id, medium_id, user), grant) is not None
        return {"medium": medium_id, "gone": True} if genuine else None
    return {"medium": medium_id, "grant": grant, "gone": False}


def _classification(t: Triage, form: FormData) -> dict[str, Any]:
    described = t.schemes.describe()
    out: dict[str, Any] = {}
    for s in described["schemes"]:
        value = field(form, f"scheme.{s['name']}", 100)
        if value:
            out[s["name"]] = value
    flags = [f for f in form.getlist("flag") if isinstance(f, str)][:50]
    if flags:
        out["flags"] = flags
    series = field(form, "series", 300).strip()
    if series:
        out["series"] = series
    if field(form, "media_shown") == "1":  # the form offered a choice of media: keep what was ticked
        ticked = [
            m
            for m in form.getlist("medium")
            if isinstance(m, str) and m.isascii() and m.isdigit() and len(m) < 19
        ]
        out["media"] = sorted({int(m) for m in ticked[:MAX_MEDIA]})
    return out
