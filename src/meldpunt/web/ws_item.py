"""An item's page (claim, context as text, blurred greyscale thumbnails, reveal on purpose, the
classification form), its renderings, release and classification."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response

from meldpunt.accounts import CurrentUser, allowed
from meldpunt.act import survivors
from meldpunt.review.render import RenderError, contact_sheet, render_for_review
from meldpunt.review.render import thumbnail as render_thumbnail
from meldpunt.signals.model import MediaKind
from meldpunt.signals.sandbox import SandboxError
from meldpunt.signals.sniff import HEAD_BYTES, detect
from meldpunt.triage import (
    ClaimConflict,
    ClassificationError,
    NotAllowed,
    ReviewView,
    Triage,
    TriageError,
)
from meldpunt.triage.context import item_context
from meldpunt.triage.reveal import (
    NoSuchMedium,
    RevealBlocked,
    medium_bytes,
    use_grant,
)
from meldpunt.triage.reveal import reveal as reveal_medium
from meldpunt.triage.schemes import MAX_MEDIA
from meldpunt.web.act_locate import hosting_panel
from meldpunt.web.context import ctx, staff_language, staff_translator
from meldpunt.web.forms import field, read_form, token_ok
from meldpunt.web.i18n import Translator
from meldpunt.web.prefs import wellness
from meldpunt.web.staff import when_for
from meldpunt.web.timeline import lines
from meldpunt.web.words import Words
from meldpunt.web.ws_common import (
    Classify,
    ItemView,
    Reveal,
    _bad_token,
    _classification,
    _conflict,
    _grant_nonce,
    _grant_purpose,
    _item_purpose,
    _page,
    _redirect,
    _revealed,
    render_sandbox,
    triage,
)
from meldpunt.wellness import PAGE_SECONDS, Prefs

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

# -- an item ------------------------------------------------------------------------------------------


def _context(t: Triage, item_id: int, _: Translator) -> dict[str, Any]:
    """What the review view does not carry (:func:`meldpunt.triage.context.item_context`), for the page."""
    found = item_context(t.engine, item_id)
    if found is None:
        return {"server_ip": "", "state": "", "others": []}
    return {
        "server_ip": found.server_ip,
        "state": found.state,
        "final_url": found.final_url,
        "seen_on": found.seen_on,
        "others": [
            {
                "id": o.id,
                "url": o.url,
                "state": o.state,
                "why": _("same report") if o.same_report else _("same host"),
            }
            for o in found.others
        ],
    }


def _item_page(
    request: Request,
    user: CurrentUser,
    item_id: int,
    *,
    note: str = "",
    errors: list[str] | None = None,
    chosen: dict[str, Any] | None = None,
    status: int = 200,
    count: bool = False,
    revealed: dict[str, Any] | None = None,
) -> Response:
    t = triage(request)
    try:
        view: ReviewView = t.item_for_review(item_id, user.name)
    except TriageError:
        raise HTTPException(404) from None
    group = t.group_of(item_id) if view.can_classify else [item_id]
    w = wellness(request)
    today = w.add(user.name, PAGE_SECONDS) if count else w.today(user.name)
    prefs = w.prefs(user.name)
    if revealed is not None and not any(m.id == revealed["medium"] and m.viewable for m in view.media):
        revealed = None
    word = Words(staff_translator(request), t.schemes)
    # "belongs to a registered case" (#12): a person to protect, never which case or who
    registered = bool(survivors.registered_items(ctx(request).services.engine, [item_id]))
    return _page(
        request,
        "ws_item.html",
        user,
        status,
        registered=registered,
        today=today,
        item=view,
        context=_context(t, item_id, staff_translator(request)),
        prefs=prefs,
        thumb_words=_thumb_words(prefs, staff_translator(request)),
        schemes=t.schemes.describe(staff_language(request)),
        group=[g for g in group if g != item_id],
        token=ctx(request).tokens.issue(_item_purpose(item_id, user)),
        can_reveal=allowed(user.role, "item.reveal") and not today.reveal_blocked,
        note=note,
        errors=errors or [],
        chosen=chosen or {},
        revealed=revealed,
        history=lines(t.history(item_id, user.name), user.name, word),
        hosting=hosting_panel(request, item_id, user),
    )


def _thumb_words(prefs: Prefs, _: Translator) -> str:
    """What the thumbnail is, in the words of the analyst's preferences (for its alt text): one
    whole phrase per case, so a language may put the words in its own order."""
    if prefs.blur and prefs.greyscale:
        return _("Blurred greyscale thumbnail")
    if prefs.blur:
        return _("Blurred thumbnail")
    if prefs.greyscale:
        return _("Greyscale thumbnail")
    return _("Thumbnail")


@router.get("/items/{item_id}")
def item_page(request: Request, item_id: int, user: ItemView, reveal: str = "", grant: str = "") -> Response:
    """The item: claimed for the analyst, its context, media, history and the classification form;
    with ``reveal`` and a live ``grant`` (the reveal's redirect) the revealed medium beside the form."""
    t = triage(request)
    if allowed(user.role, "disagreement.resolve") and t.stage(item_id) == "disagreement":
        # seniors decide it there, with both opinions (and a reveal just made)
        return _redirect(f"/disagreements/{item_id}" + (f"?{request.url.query}" if request.url.query else ""))
    _ = staff_translator(request)
    note = ""
    try:
        claim = t.claim(item_id, user.name)
        note = _("Claimed for you until {time}.", time=when_for(request)(claim.expires_at))
    except ClaimConflict as e:
        return _conflict(request, user, e)
    except NotAllowed:
        note = _("You may look at this item but not classify it.")
    except TriageError:  # no such item (404 below), or not waiting for this user
        note = _("This item is not waiting for you: you may look at it, not classify it.")
    shown = _revealed(request, t, item_id, user, reveal, grant)
    # the page a reveal lands on was counted with the reveal; a reload is a page view again
    fresh = shown is not None and not shown["gone"]
    return _item_page(request, user, item_id, note=note, count=not fresh, revealed=shown)


def _medium(t: Triage, item_id: int, medium_id: int) -> tuple[bytes, str]:
    """The medium's stored bytes and a name for it; 404 when it is not this item's or is gone."""
    try:
        found = medium_bytes(t, item_id, medium_id)
    except NoSuchMedium:
        raise HTTPException(404) from None
    return found.data, found.name


def _rendering(t: Triage, item_id: int, medium_id: int, reveal: bool, prefs: Prefs | None = None) -> Response:
    """The reveal rendering, or the thumbnail as ``prefs`` ask (blur, greyscale, size; the
    built-in defaults without them). Video is always a silent contact sheet."""
    data, name = _medium(t, item_id, medium_id)
    sandbox = render_sandbox(t)
    try:
        if reveal or prefs is None:
            out, content_type = sandbox.run(render_for_review, data, name, reveal=reveal, settings=t.settings)
        else:
            kind = detect(data[:HEAD_BYTES], name).kind
            look: dict[str, Any] = {
                "size": prefs.thumb_size,
                "blur": prefs.blur,
                "greyscale": prefs.greyscale,
                "settings": t.settings,
            }
            if kind is MediaKind.IMAGE:
                out = sandbox.run(render_thumbnail, data, name, **look)
            elif kind is MediaKind.VIDEO:
                out = sandbox.run(contact_sheet, data, name, **look)
            else:
                raise RenderError("neither an image nor a video")
            content_type = "image/jpeg"
    except (RenderError, SandboxError):
        return Response("cannot be shown", status_code=415, media_type="text/plain")
    return Response(out, media_type=content_type)


@router.get("/items/{item_id}/media/{medium_id}/thumb")
def thumbnail(request: Request, item_id: int, medium_id: int, user: ItemView) -> Response:
    prefs = wellness(request).prefs(user.name)
    return _rendering(triage(request), item_id, medium_id, reveal=False, prefs=prefs)


@router.post("/items/{item_id}/media/{medium_id}/reveal")
async def reveal(request: Request, item_id: int, medium_id: int, user: Reveal) -> Response:
    form = await read_form(request, max_fields=60)
    if not token_ok(request, form, _item_purpose(item_id, user)):
        return _bad_token(request, user)
    t, w = triage(request), wellness(request)
    try:  # 404 unless it is there to reveal; refused past the daily limit; counted and audited
        await run_in_threadpool(reveal_medium, t, w, user.name, item_id, medium_id)
    except NoSuchMedium:
        raise HTTPException(404) from None
    except RevealBlocked as e:
        _ = staff_translator(request)
        today = e.today
        return _page(
            request,
            "ws_message.html",
            user,
            403,
            today=today,
            heading=_("Daily viewing limit reached"),
            message=_(
                "You have viewed for {minutes} minutes today, past your limit of {limit}. Reveals are switched off until 00:00 UTC; nothing was revealed. Please finish what you are doing and take the rest of the day off the screen, or ask a colleague to take this item over.",
                minutes=today.minutes,
                limit=today.limit_minutes,
            ),
            back=f"/items/{item_id}",
        )
    grant = ctx(request).tokens.issue(_grant_purpose(item_id, medium_id, user))
    return _redirect(f"/items/{item_id}?{urlencode({'reveal': medium_id, 'grant': grant})}#revealed")


@router.get("/items/{item_id}/media/{medium_id}/revealed.jpg")
def revealed_image(request: Request, item_id: int, medium_id: int, user: Reveal, grant: str = "") -> Response:
    nonce = _grant_nonce(ctx(request), item_id, medium_id, user, grant)
    if nonce is None or not use_grant(triage(request).engine, nonce, triage(request).now()):
        return Response("reveal first", status_code=403, media_type="text/plain")
    return _rendering(triage(request), item_id, medium_id, reveal=True)


@router.post("/items/{item_id}/release")
async def release(request: Request, item_id: int, user: ItemView) -> Response:
    """Give the item back to the queue (your claim ends now)."""
    form = await read_form(request, max_fields=60)
    if not token_ok(request, form, _item_purpose(item_id, user)):
        return _bad_token(request, user)
    await run_in_threadpool(triage(request).release, item_id, user.name)
    return _redirect("/queue?msg=released")


# -- classifying ------------------------------------------------------------------------------------


@router.post("/items/{item_id}/classify")
async def classify(request: Request, item_id: int, user: Classify) -> Response:
    form = await read_form(request, max_fields=60 + MAX_MEDIA)
    if form is None or not token_ok(request, form, _item_purpose(item_id, user)):
        return _bad_token(request, user)
    t = triage(request)
    data = _classification(t, form)
    group = field(form, "group") == "1"
    try:
        t.schemes.validate(data)
        outcomes = await run_in_threadpool(lambda: t.classify(item_id, user.name, data, group=group))
    except ClassificationError as e:
        problems = [Words(staff_translator(request), t.schemes).problem(p) for p in e.details]
        return await run_in_threadpool(
            lambda: _item_page(request, user, item_id, errors=problems, chosen=data, status=400)
        )
    except ClaimConflict as e:
        return _conflict(request, user, e)
    except NotAllowed:
        return _page(request, "staff_forbidden.html", user, 403)
    except TriageError:
        _ = staff_translator(request)
        return _page(
            request,
            "ws_message.html",
            user,
            409,
            heading=_("Not saved"),
            message=_("This item is not waiting for your classification (any more)."),
            back="/queue",
        )
    log.info("item %d classified by %s (%d items)", item_id, user.name, len(outcomes))
    return _redirect("/queue?msg=" + ("group" if len(outcomes) > 1 else "classified"))
