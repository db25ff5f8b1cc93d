"""Seniors' pages: disagreements and their resolution, final classifications and their correction."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response

from meldpunt.accounts import CurrentUser, allowed
from meldpunt.triage import (
    ClaimConflict,
    ClassificationError,
    NotAllowed,
    Triage,
    TriageError,
)
from meldpunt.triage.classify import DECISION_SORTS
from meldpunt.triage.schemes import MAX_MEDIA
from meldpunt.triage.search import MAX_SEARCH
from meldpunt.web.context import ctx, staff_language, staff_translator
from meldpunt.web.forms import read_form, token_ok
from meldpunt.web.i18n import N_
from meldpunt.web.lists import age, bounds, pager
from meldpunt.web.prefs import wellness
from meldpunt.web.timeline import lines
from meldpunt.web.words import Words
from meldpunt.web.ws_common import (
    MESSAGES,
    ROW_KEYS,
    Correct,
    Resolve,
    _bad_token,
    _classification,
    _conflict,
    _item_purpose,
    _page,
    _redirect,
    _revealed,
    _searched,
    triage,
)

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

#: how a decision was reached (the role of its last opinion)
VIAS = {
    "first": N_("one analyst"),
    "second": N_("two analysts agreeing"),
    "resolution": N_("a senior's resolution"),
    "correction": N_("a senior's correction"),
}
#: the decisions list's sort orders, in words
DECISION_SORT_WORDS = {
    "newest": N_("newest first"),
    "oldest": N_("oldest first"),
    "item": N_("by item, newest first"),
}

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
