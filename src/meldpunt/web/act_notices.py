"""Notice pages: the provider's answer page (no account: the signed link is the capability) and the
staff pages — notices outstanding per contact, one notice with its answers, messages and timeline,
and the seniors' overdue queue where a reply that came by e-mail is recorded, a notice resent or
closed with a reason (audited). No JavaScript; the SQL lives in :mod:`meldpunt.act.notice_answers`.

The provider page answers 404 to a forged or unknown link and 410 to an expired one, in words; a
replayed answer shows what is recorded and changes nothing. Its posts carry the token (the
capability, so no CSRF token is needed) and are refused when the browser says they come from
another site, as the public form's are. The link's token is in the path: the page sends no
Referer (``no-referrer``) and is neither cached nor indexed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from meldpunt.accounts import CurrentUser, allowed
from meldpunt.act import notice_answers
from meldpunt.act.notice_answers import AnswerError
from meldpunt.act.notice_links import LinkError
from meldpunt.web.context import ctx, request_language
from meldpunt.web.forms import field, read_form, token_ok
from meldpunt.web.i18n import N_, Translator
from meldpunt.web.staff import purpose, require, staff_page

router = APIRouter(include_in_schema=False)

View = Annotated[CurrentUser, Depends(require("actions.view"))]
Manage = Annotated[CurrentUser, Depends(require("notices.manage"))]

PRIVATE_HEADERS = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow"}

#: the words of the staff pages for the codes they show (English message ids)
WORDS: dict[str, Any] = {
    "notice_states": {
        "collecting": N_("gathering URLs"),
        "sending": N_("being sent"),
        "sent": N_("sent"),
        "closed": N_("closed"),
        "failed": N_("not delivered"),
    },
    "escalations": {0: N_("not escalated"), 1: N_("to a senior"), 2: N_("to the police")},
    "answer_words": {"removed": N_("Removed"), "disputed": N_("Disputed")},
    "delivery_words": {
        "queued": N_("queued"),
        "sent": N_("delivered"),
        "failed": N_("failed"),
        "bounced": N_("bounced"),
    },
    "event_words": {
        "notice_queued": N_("added to the notice"),
        "notice_sent": N_("notice sent"),
        "reminder_sent": N_("reminder sent"),
        "delivery_failed": N_("delivery failed"),
        "escalated": N_("escalated to a senior"),
        "police_due": N_("due for the police"),
        "provider_removed": N_("the provider says it is removed"),
        "provider_disputed": N_("the provider disputes it"),
        "reply_recorded": N_("a reply was recorded"),
        "contact_suspect": N_("the contact's address is suspect"),
        "closed": N_("closed"),
    },
    "done_words": {
        "reply": N_("The reply is recorded."),
        "resent": N_("The notice is queued to be sent again."),
        "closed": N_("The notice is closed."),
        "same": N_("Nothing changed."),
    },
}


# -- the provider's page ---------------------------------------------------------------------------


def _provider_page(
    request: Request, lang: str, token: str, view: Any, *, status: int = 200, **values: Any
) -> Response:
    response = ctx(request).render(
        request,
        "act_notices_provider.html",
        lang,
        status=status,
        token=token,
        notice=view,
        hotline_name=ctx(request).services.settings.web.hotline_name,
        **{"message": "", "problem": "", "error": "", **values},
    )
    response.headers.update(PRIVATE_HEADERS)
    return response


def _link_error(request: Request, lang: str, token: str, exc: LinkError) -> Response:
    t = Translator(lang)
    error = (
        t("This link has expired. Please reply to the notice by e-mail, quoting its reference.")
        if exc.status == 410
        else t("This link is not valid. Please check that you copied the whole link from the notice.")
    )
    return _provider_page(request, lang, token, None, status=exc.status, error=error)


@router.get("/provider/{token}")
def provider_page(request: Request, token: str) -> Response:
    lang = request_language(request)
    try:
        view = notice_answers.provider_view(ctx(request).services, token)
    except LinkError as exc:
        return _link_error(request, lang, token, exc)
    return _provider_page(request, lang, token, view)


def _cross_site(request: Request) -> bool:
    """The browser says the post comes from another site (or its Origin is not ours)."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        return True
    origin = request.headers.get("origin")
    if origin and origin != "null":
        return origin.rstrip("/") != f"{request.url.scheme}://{request.url.netloc}"
    return False


@router.post("/provider/{token}")
async def provider_answer(request: Request, token: str) -> Response:
    form = await read_form(request, max_fields=10)
    lang = request_language(request, field(form, "lang") if form is not None else None)
    t = Translator(lang)
    services = ctx(request).services
    if form is None or _cross_site(request):
        return ctx(request).render(request, "error.html", lang, status=400, kind="bad_form")
    answer = field(form, "answer", 16)
    note = field(form, "note", notice_answers.NOTE_LIMIT)
    raw_id = field(form, "takedown", 20)
    try:
        if not (raw_id.isascii() and raw_id.isdigit()) or len(raw_id) > 18:
            raise AnswerError(422, "no URL chosen")
        view, changed = await run_in_threadpool(
            notice_answers.provider_answer, services, token, int(raw_id), answer, note
        )
    except LinkError as exc:
        return _link_error(request, lang, token, exc)
    except AnswerError as exc:
        try:
            view = await run_in_threadpool(notice_answers.provider_view, services, token)
        except LinkError as link_exc:
            return _link_error(request, lang, token, link_exc)
        problem = {
            404: t("That URL is not part of this notice."),
        }.get(exc.status) or (
            t("Please say why you dispute this URL.")
            if answer == "disputed"
            else t("Please choose an answer for one URL.")
        )
        return _provider_page(request, lang, token, view, status=exc.status, problem=problem)
    message = (
        t("Thank you: your answer is recorded.")
        if changed
        else t("This answer was recorded already; nothing was changed.")
    )
    return _provider_page(request, lang, token, view, message=message)


# -- staff pages -----------------------------------------------------------------------------------


def _services(request: Request) -> Any:
    return ctx(request).services


@router.get("/notices")
def notices_page(request: Request, user: View) -> Response:
    """Notices outstanding per abuse contact, and every open notice."""
    engine = _services(request).engine
    return staff_page(
        request,
        "act_notices_list.html",
        user,
        contacts=notice_answers.outstanding_by_contact(engine),
        notices=notice_answers.open_notices(engine),
        **WORDS,
    )


@router.get("/overdue")
def overdue_page(request: Request, user: View) -> Response:
    """The seniors' queue: notices that escalated or could not be delivered."""
    return staff_page(
        request,
        "act_notices_overdue.html",
        user,
        notices=notice_answers.overdue(_services(request).engine),
        can_manage=allowed(user.role, "notices.manage"),
        **WORDS,
    )


@router.get("/notices/{notice_id}")
def notice_page(request: Request, notice_id: int, user: View) -> Response:
    detail = notice_answers.notice_detail(_services(request).engine, notice_id)
    if detail is None:
        raise HTTPException(404)
    can_manage = allowed(user.role, "notices.manage")
    form_token = ctx(request).tokens.issue(purpose("notice", user)) if can_manage else ""
    return staff_page(
        request,
        "act_notices_notice.html",
        user,
        detail=detail,
        can_manage=can_manage,
        form_token=form_token,
        done=request.query_params.get("done", ""),
        **WORDS,
    )


def _back(notice_id: int, done: str) -> RedirectResponse:
    return RedirectResponse(f"/notices/{notice_id}?done={done}", status_code=303)


async def _manage_form(request: Request, user: CurrentUser) -> Any:
    form = await read_form(request, max_fields=10)
    if not token_ok(request, form, purpose("notice", user)):
        raise HTTPException(400)
    return form


@router.post("/notices/{notice_id}/reply")
async def record_reply(request: Request, notice_id: int, user: Manage) -> Response:
    """A provider's reply that came by e-mail, recorded by hand."""
    form = await _manage_form(request, user)
    raw_id = field(form, "takedown", 20)
    try:
        if not (raw_id.isascii() and raw_id.isdigit()) or len(raw_id) > 18:
            raise AnswerError(422, "no URL chosen")
        changed = await run_in_threadpool(
            notice_answers.record_reply,
            _services(request),
            notice_id,
            int(raw_id),
            field(form, "answer", 16),
            field(form, "note", notice_answers.NOTE_LIMIT),
            user.name,
        )
    except AnswerError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return _back(notice_id, "reply" if changed else "same")


@router.post("/notices/{notice_id}/resend")
async def resend(request: Request, notice_id: int, user: Manage) -> Response:
    await _manage_form(request, user)
    try:
        sent = await run_in_threadpool(notice_answers.resend_now, _services(request), notice_id, user.name)
    except AnswerError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return _back(notice_id, "resent" if sent else "same")


@router.post("/notices/{notice_id}/close")
async def close(request: Request, notice_id: int, user: Manage) -> Response:
    form = await _manage_form(request, user)
    try:
        closed = await run_in_threadpool(
            notice_answers.close_notice,
            _services(request),
            notice_id,
            field(form, "reason", notice_answers.NOTE_LIMIT),
            user.name,
        )
    except AnswerError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return _back(notice_id, "closed" if closed else "same")
