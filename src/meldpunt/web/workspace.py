"""The analyst workspace: the triage queue, an item's page (claim, context as text, blurred greyscale
thumbnails, reveal on purpose, the classification form), and seniors' disagreements.

Wellness by default: the browser only ever gets renderings made on the server
(:func:`meldpunt.review.render.render_for_review`), never a medium's original bytes; thumbnails are
blurred and greyscale. A reveal is a POST (with the page's form token) that is written to the audit
log and answered with a short-lived, single-use grant: the sharp rendering is served only with it.
Every answer carries ``Cache-Control: no-store`` (the app's :class:`SecurityHeaders` sets it on all
but /static/). The second analyst's page is built from :meth:`Triage.item_for_review`, which never
holds an opinion: the second opinion is given blind.

Thumbnails follow the analyst's preferences (:mod:`meldpunt.wellness`: blurred, greyscale, 320
pixels unless the analyst or the administrator's defaults say otherwise; video is always silent).
Each item page and each reveal counts toward the analyst's viewing time of the day; every workspace
page shows it, with a break reminder or, past the daily limit, advice to stop (and reveals refused
when the administrator's defaults say so).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from sqlalchemy import Engine, delete, insert, or_, select
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from meldpunt.accounts import CurrentUser, allowed
from meldpunt.audit import AuditEvent, record
from meldpunt.review.render import RenderError, contact_sheet, render_for_review
from meldpunt.review.render import thumbnail as render_thumbnail
from meldpunt.signals.model import MediaKind
from meldpunt.signals.sandbox import MediaSandbox, SandboxError
from meldpunt.signals.sniff import HEAD_BYTES, detect
from meldpunt.store.reports import Item, Medium, Report
from meldpunt.store.triage import RevealGrantUse
from meldpunt.triage import (
    ClaimConflict,
    ClassificationError,
    NotAllowed,
    ReviewView,
    Triage,
    TriageError,
)
from meldpunt.triage.classify import DECISION_SORTS
from meldpunt.triage.queue import QUEUE_SORTS
from meldpunt.triage.schemes import MAX_MEDIA
from meldpunt.triage.search import MAX_SEARCH, understand
from meldpunt.web.context import WebContext, ctx, staff_language, staff_translator
from meldpunt.web.forms import field, read_form, token_ok
from meldpunt.web.i18n import N_, Translator
from meldpunt.web.lists import age, bounds, pager
from meldpunt.web.prefs import wellness
from meldpunt.web.staff import require, staff_page, when_for
from meldpunt.web.timeline import lines
from meldpunt.web.words import Words
from meldpunt.wellness import PAGE_SECONDS, Prefs, Today
from meldpunt.wellness import REVEAL_SECONDS as REVEAL_VIEWING_SECONDS

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

#: how long a reveal grant lasts (seconds), and it is good for one rendering only
REVEAL_SECONDS = 60
#: what ``?msg=`` may say on the queue (never text taken from the request); translated when shown
MESSAGES = {
    "classified": N_("Classification saved."),
    "group": N_("Classification saved for the item and its group."),
    "resolved": N_("Disagreement resolved."),
    "released": N_("Item released."),
    "corrected": N_("Correction saved: the hotline's own list follows it."),
}
#: how a decision was reached (the role of its last opinion)
VIAS = {
    "first": N_("one analyst"),
    "second": N_("two analysts agreeing"),
    "resolution": N_("a senior's resolution"),
    "correction": N_("a senior's correction"),
}
#: the queue's filter by what an item still needs
NEEDS = {"first": N_("a first opinion"), "second": N_("a second opinion")}
#: the queue's sort orders, in words
SORTS = {
    "priority": N_("urgent first, then oldest"),
    "oldest": N_("oldest first"),
    "newest": N_("newest first"),
    "host": N_("by host"),
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
#: the decisions list's sort orders, in words
DECISION_SORT_WORDS = {
    "newest": N_("newest first"),
    "oldest": N_("oldest first"),
    "item": N_("by item, newest first"),
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
    """The app's triage service (made on first use; tests may put their own on app.state)."""
    found = getattr(request.app.state, "triage", None)
    if isinstance(found, Triage):
        return found
    services = ctx(request).services
    made = Triage(services.engine, settings=services.settings, config=services.settings.triage)
    request.app.state.triage = made
    return made


def grant_used(engine: Engine, nonce: str) -> bool:
    """Whether a reveal grant has rendered its image already (by any web process)."""
    with engine.connect() as conn:
        found = conn.execute(select(RevealGrantUse.nonce).where(RevealGrantUse.nonce == nonce[:64])).first()
    return found is not None


def use_grant(engine: Engine, nonce: str, now: datetime) -> bool:
    """Mark a reveal grant used; False when it was used already (by any web process: the
    table's key decides). Uses older than twice a grant's life are dropped on the way."""
    try:
        with engine.begin() as conn:
            conn.execute(
                delete(RevealGrantUse).where(
                    RevealGrantUse.used_at < now - timedelta(seconds=2 * REVEAL_SECONDS)
                )
            )
            conn.execute(insert(RevealGrantUse).values(nonce=nonce[:64], used_at=now))
    except IntegrityError:
        return False
    return True


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
    return nonce if 0 <= time.time() - issued <= REVEAL_SECONDS else None


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


# -- the queue ----------------------------------------------------------------------------------------


@router.get("/queue")
def queue_page(
    request: Request,
    user: QueueView,
    source: str = "",
    needs: str = "",
    q: str = "",
    sort: str = "",
    page: str = "",
    size: str = "",
    msg: str = "",
) -> Response:
    """The queue: searched (URL, host, receipt, item, hash), filtered, sorted and paged by query
    parameters, so a link shows the same list to a colleague."""
    t = triage(request)
    chosen = source.strip()[:200] or None
    wanted = needs if needs in NEEDS else None
    order = sort if sort in QUEUE_SORTS else "priority"
    number, per_page = bounds(page, size)
    search = q.strip()[:MAX_SEARCH]
    found = t.queue_page(
        user.name,
        source=chosen,
        needs=wanted,
        search=search,
        sort=order,
        limit=per_page,
        offset=(number - 1) * per_page,
    )
    sources = sorted({e.source for e in t.entries(user.name, limit=500)} | {"public", "api:*"})
    # the workspace's headline figure, for everyone who works the queue: what nobody had to see
    counts = t.resolved_without_viewing()
    _ = staff_translator(request)
    now = t.now()
    return _page(
        request,
        "ws_queue.html",
        user,
        entries=found.rows,
        ages={e.item_id: age(e.age(now), _) for e in found.rows},
        keys=ROW_KEYS,
        sources=sources,
        source=chosen or "",
        needs=wanted or "",
        needs_choices={value: _(words) for value, words in NEEDS.items()},
        q=search,
        sort=order,
        sort_choices={value: _(words) for value, words in SORTS.items()},
        size=per_page,
        pager=pager(request, found),
        searched=_searched(search, _),
        counts=counts,
        message=_(MESSAGES[msg]) if msg in MESSAGES else "",
    )


def _searched(search: str, _: Translator) -> str:
    """What the search box's text was taken for, in words ("" for no search)."""
    found = understand(search)
    return _(SEARCH_KINDS[found.kind]) if found is not None else ""


# -- an item ------------------------------------------------------------------------------------------


def _context(t: Triage, item_id: int, _: Translator) -> dict[str, Any]:
    """What the review view does not carry: the server's address, the report, the item's
    neighbours (other items of the same report or host). Facts only; no opinion."""
    with t.engine.connect() as conn:
        row = conn.execute(
            select(Item.server_ip, Item.host, Item.report_id, Item.url, Item.final_url, Item.state).where(
                Item.id == item_id
            )
        ).first()
        if row is None:
            return {"server_ip": "", "state": "", "others": []}
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
    return {
        "server_ip": row.server_ip,
        "state": row.state,
        "final_url": row.final_url if row.final_url != row.url else "",
        "seen_on": seen_on or "",
        "others": [
            {
                "id": int(o.id),
                "url": o.url,
                "state": o.state,
                "why": _("same report") if o.report_id == row.report_id else _("same host"),
            }
            for o in others
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
    return _page(
        request,
        "ws_item.html",
        user,
        status,
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


def _revealed(
    request: Request, t: Triage, item_id: int, user: CurrentUser, reveal: str, grant: str
) -> dict[str, Any] | None:
    """The reveal a page shows beside its form: ``{"medium", "grant"}`` while this session's grant
    for the medium is live and unused; ``{"medium", "gone": True}`` once it has been shown or has
    expired (the page then says so instead of showing a broken image); None without one."""
    if not reveal.isdigit() or len(reveal) > 18 or not grant or not allowed(user.role, "item.reveal"):
        return None
    medium_id = int(reveal)
    nonce = _grant_nonce(ctx(request), item_id, medium_id, user, grant)
    if nonce is None or grant_used(t.engine, nonce):
        genuine = ctx(request).tokens.check(_grant_purpose(item_id, medium_id, user), grant) is not None
        return {"medium": medium_id, "gone": True} if genuine else None
    return {"medium": medium_id, "grant": grant, "gone": False}


def _medium(t: Triage, item_id: int, medium_id: int) -> tuple[bytes, str]:
    """The medium's stored bytes and a name for it; 404 when it is not this item's or is gone."""
    with t.engine.connect() as conn:
        url = conn.execute(
            select(Medium.url).where(Medium.id == medium_id, Medium.item_id == item_id)
        ).scalar()
        if url is None:
            raise HTTPException(404)
        try:
            data = t.review_store.get(conn, medium_id)
        except KeyError:
            raise HTTPException(404) from None
    return data, str(url).rsplit("/", 1)[-1][:100]


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
    t = triage(request)
    await run_in_threadpool(_medium, t, item_id, medium_id)  # 404 unless it is there to reveal
    w = wellness(request)
    today = await run_in_threadpool(w.today, user.name)
    if today.reveal_blocked:
        _ = staff_translator(request)
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
    await run_in_threadpool(w.add, user.name, REVEAL_VIEWING_SECONDS)

    def audit() -> None:
        with t.engine.begin() as conn:
            record(
                conn,
                AuditEvent(user.name, "item.reveal", f"item:{item_id}", details={"medium": medium_id}),
            )

    await run_in_threadpool(audit)
    grant = ctx(request).tokens.issue(_grant_purpose(item_id, medium_id, user))
    return _redirect(f"/items/{item_id}?{urlencode({'reveal': medium_id, 'grant': grant})}#revealed")


@router.get("/items/{item_id}/media/{medium_id}/revealed.jpg")
def revealed_image(request: Request, item_id: int, medium_id: int, user: Reveal, grant: str = "") -> Response:
    nonce = _grant_nonce(ctx(request), item_id, medium_id, user, grant)
    if nonce is None or not use_grant(triage(request).engine, nonce, datetime.now(UTC)):
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
        ticked = [m for m in form.getlist("medium") if isinstance(m, str) and m.isdigit() and len(m) < 19]
        out["media"] = sorted({int(m) for m in ticked[:MAX_MEDIA]})
    return out


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


# -- disagreements (seniors) ------------------------------------------------------------------------


@router.get("/disagreements")
def disagreements(request: Request, user: Resolve, page: str = "", size: str = "") -> Response:
    t = triage(request)
    number, per_page = bounds(page, size)
    found = t.queue_page(user.name, state="disagreement", limit=per_page, offset=(number - 1) * per_page)
    _ = staff_translator(request)
    now = t.now()
    return _page(
        request,
        "ws_disagreements.html",
        user,
        entries=found.rows,
        ages={e.item_id: age(e.age(now), _) for e in found.rows},
        keys=ROW_KEYS,
        pager=pager(request, found),
    )


def _disagreement_page(
    request: Request,
    user: CurrentUser,
    item_id: int,
    *,
    errors: list[str] | None = None,
    chosen: dict[str, Any] | None = None,
    status: int = 200,
    revealed: dict[str, Any] | None = None,
) -> Response:
    t = triage(request)
    try:
        view = t.item_for_review(item_id, user.name)
    except TriageError:
        raise HTTPException(404) from None
    if revealed is not None and not any(m.id == revealed["medium"] and m.viewable for m in view.media):
        revealed = None
    today = wellness(request).today(user.name)
    return _page(
        request,
        "ws_disagreement.html",
        user,
        status,
        today=today,
        item=view,
        opinions=t.opinions(item_id, user.name),
        can_reveal=allowed(user.role, "item.reveal") and not today.reveal_blocked,
        schemes=t.schemes.describe(staff_language(request)),
        token=ctx(request).tokens.issue(_item_purpose(item_id, user)),
        errors=errors or [],
        chosen=chosen or {},
        revealed=revealed,
        history=lines(t.history(item_id, user.name), user.name, Words(staff_translator(request), t.schemes)),
    )


@router.get("/disagreements/{item_id}")
def disagreement(
    request: Request, item_id: int, user: Resolve, reveal: str = "", grant: str = ""
) -> Response:
    t = triage(request)
    if t.stage(item_id) != "disagreement":
        raise HTTPException(404)
    try:
        t.claim(item_id, user.name)
    except ClaimConflict as e:
        return _conflict(request, user, e)
    except TriageError:
        _ = staff_translator(request)
        return _page(
            request,
            "ws_message.html",
            user,
            409,
            heading=_("Not for you"),
            message=_("You gave an opinion on this item: another senior resolves it."),
            back="/disagreements",
        )
    t = triage(request)
    return _disagreement_page(
        request, user, item_id, revealed=_revealed(request, t, item_id, user, reveal, grant)
    )


@router.post("/items/{item_id}/resolve")
async def resolve(request: Request, item_id: int, user: Resolve) -> Response:
    _ = staff_translator(request)
    return await _senior_decision(
        request,
        item_id,
        user,
        decide=lambda t, data: t.resolve(item_id, user.name, data),
        page=_disagreement_page,
        refused=_("This item is not a disagreement you may resolve (any more)."),
        back="/disagreements",
        done="/queue?msg=resolved",
    )


async def _senior_decision(
    request: Request,
    item_id: int,
    user: CurrentUser,
    *,
    decide: Callable[[Triage, dict[str, Any]], object],
    page: Callable[..., Response],
    refused: str,
    back: str,
    done: str,
) -> Response:
    """A senior's resolution or correction from its form: the form token, the classification,
    ``decide`` in a worker thread; ``page`` again with the problems when it does not fit the schemes."""
    form = await read_form(request, max_fields=60 + MAX_MEDIA)
    if form is None or not token_ok(request, form, _item_purpose(item_id, user)):
        return _bad_token(request, user)
    t = triage(request)
    data = _classification(t, form)
    try:
        t.schemes.validate(data)
        await run_in_threadpool(lambda: decide(t, data))
    except ClassificationError as e:
        problems = [Words(staff_translator(request), t.schemes).problem(p) for p in e.details]
        return await run_in_threadpool(
            lambda: page(request, user, item_id, errors=problems, chosen=data, status=400)
        )
    except ClaimConflict as e:
        return _conflict(request, user, e)
    except (TriageError, NotAllowed):
        _ = staff_translator(request)
        return _page(
            request, "ws_message.html", user, 409, heading=_("Not saved"), message=refused, back=back
        )
    log.info("item %d decided by senior %s (%s)", item_id, user.name, done)
    return _redirect(done)


# -- seniors: decisions and their correction -----------------------------------------------------------


@router.get("/decisions")
def decisions_page(
    request: Request,
    user: Correct,
    q: str = "",
    via: str = "",
    sort: str = "",
    page: str = "",
    size: str = "",
    msg: str = "",
) -> Response:
    """Final classifications: searched like the queue, filtered by how they were reached, sorted
    and paged by query parameters."""
    _ = staff_translator(request)
    number, per_page = bounds(page, size)
    search = q.strip()[:MAX_SEARCH]
    chosen_via = via if via in VIAS else None
    order = sort if sort in DECISION_SORTS else "newest"
    found = triage(request).decisions_page(
        user.name,
        search=search,
        via=chosen_via,
        sort=order,
        limit=per_page,
        offset=(number - 1) * per_page,
    )
    return _page(
        request,
        "ws_decisions.html",
        user,
        decisions=found.rows,
        vias={k: _(v) for k, v in VIAS.items()},
        via=chosen_via or "",
        q=search,
        searched=_searched(search, _),
        sort=order,
        sort_choices={value: _(words) for value, words in DECISION_SORT_WORDS.items()},
        size=per_page,
        pager=pager(request, found),
        message=_(MESSAGES[msg]) if msg in MESSAGES else "",
    )


def _decision_page(
    request: Request,
    user: CurrentUser,
    item_id: int,
    *,
    errors: list[str] | None = None,
    chosen: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    t = triage(request)
    final = t.final_classification(item_id)
    if final is None:
        raise HTTPException(404)
    try:
        view = t.item_for_review(item_id, user.name)
    except TriageError:
        raise HTTPException(404) from None
    return _page(
        request,
        "ws_decision.html",
        user,
        status,
        item=view,
        opinions=t.opinions(item_id, user.name),
        schemes=t.schemes.describe(staff_language(request)),
        token=ctx(request).tokens.issue(_item_purpose(item_id, user)),
        errors=errors or [],
        chosen=chosen if chosen is not None else final.to_dict(),
        history=lines(t.history(item_id, user.name), user.name, Words(staff_translator(request), t.schemes)),
    )


@router.get("/decisions/{item_id}")
def decision_page(request: Request, item_id: int, user: Correct) -> Response:
    return _decision_page(request, user, item_id)


@router.post("/items/{item_id}/correct")
async def correct(request: Request, item_id: int, user: Correct) -> Response:
    _ = staff_translator(request)
    return await _senior_decision(
        request,
        item_id,
        user,
        decide=lambda t, data: t.correct(item_id, user.name, data),
        page=_decision_page,
        refused=_("This item has no final classification you may correct."),
        back="/decisions",
        done="/decisions?msg=corrected",
    )
