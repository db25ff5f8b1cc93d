"""The public pages: the report form, the receipt, the status of a report. No JavaScript needed.

The form posts plain HTML; a signed token in a hidden field stands in for a session (see
:class:`~meldpunt.web.security.FormTokens`); the language travels as ``?lang=`` and a hidden field,
never as a cookie. Posts and status look-ups are rate-limited by a keyed hash of the address,
held in memory only.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.responses import RedirectResponse, Response

from meldpunt.pipeline.intake import (
    SEEN_ON,
    InvalidReport,
    ReportIn,
    report_status,
    submit_report,
    validate,
)
from meldpunt.web.context import WebContext, ctx, request_language
from meldpunt.web.i18n import Translator

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

FORM = "report"
#: What a receipt code may look like before we look it up (the service makes 4 groups of 5 letters).
CODE_RE = re.compile(r"^[A-Za-z2-7]{5}(-?[A-Za-z2-7]{5}){3}$")


def canonical_code(code: str) -> str:
    """A receipt code as the service writes it (``ABCDE-FGHIJ-...``), however it was typed."""
    bare = re.sub(r"[\s-]", "", code).upper()[:64]
    if len(bare) == 20 and CODE_RE.match(bare):
        return "-".join(bare[i : i + 5] for i in range(0, 20, 5))
    return bare


def _seen_on_labels(t: Translator) -> list[tuple[str, str]]:
    labels = {
        "website": t("A website"),
        "social": t("A social network"),
        "chat": t("A chat or messaging app"),
        "filesharing": t("A file-sharing service"),
        "other": t("Somewhere else"),
    }
    return [(v, labels.get(v, v)) for v in SEEN_ON]


def _form_page(
    request: Request,
    c: WebContext,
    lang: str,
    values: dict[str, str] | None = None,
    errors: list[str] | None = None,
    status: int = 200,
) -> Response:
    t = Translator(lang)
    return c.render(
        request,
        "report.html",
        lang,
        status=status,
        token=c.tokens.issue(FORM),
        values=values or {"urls": "", "seen_on": "website", "description": "", "contact": "", "urgent": ""},
        errors=errors or [],
        seen_on=_seen_on_labels(t),
    )


def _rate_limited(request: Request, c: WebContext, lang: str, retry_after: float) -> Response:
    response = c.render(request, "error.html", lang, status=429, kind="rate")
    response.headers["Retry-After"] = str(int(retry_after))
    return response


@router.get("/")
@router.get("/report")
def report_form(request: Request) -> Response:
    return _form_page(request, ctx(request), request_language(request))


def _problems(t: Translator, e: InvalidReport) -> list[str]:
    """The service's reasons (``intake.validate``), in the reporter's language."""
    return [t(p.message, **p.values) for p in e.problems]


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


@router.post("/report")
async def report_post(request: Request) -> Response:
    c = ctx(request)
    try:
        form = await request.form(max_files=0, max_fields=20)
    except (HTTPException, MultiPartException):  # malformed, too many fields, a file
        return c.render(request, "error.html", request_language(request), status=400, kind="bad_form")
    lang = request_language(request, _field(form, "lang"))
    retry = c.report_limit.hit(c.client(request))
    if retry is not None:
        return _rate_limited(request, c, lang, retry)
    token = _field(form, "token")
    cross_site = request.headers.get("sec-fetch-site") == "cross-site"
    if cross_site or (c.tokens.check(FORM, token) is None and not c.tokens.expired(FORM, token)):
        return c.render(request, "error.html", lang, status=400, kind="token")
    values = {
        "urls": _field(form, "urls").replace("\r\n", "\n"),
        "seen_on": _field(form, "seen_on") or "website",
        "description": _field(form, "description").strip(),
        "contact": _field(form, "contact").strip(),
        "urgent": "1" if _field(form, "urgent") else "",
    }
    t = Translator(lang)
    if c.tokens.check(FORM, token) is None:  # genuine but old: keep what was typed, send nothing yet
        note = t(
            "This form was open for a long time, so nothing was sent yet. Please check it and send it again."
        )
        return _form_page(request, c, lang, values, [note], status=400)
    report = ReportIn(
        urls=values["urls"].splitlines(),  # blank lines too: a problem's number is its line
        seen_on=values["seen_on"],
        description=values["description"],
        contact=values["contact"],
        urgent=bool(values["urgent"]),
        source="public",
        language=lang,
    )
    # Many urgent reports from one client page the on-call people again and again: beyond
    # web.urgent_rate per window the report is still taken (nothing is lost), but not as urgent.
    # Counted only for a report that will be taken (a mistake corrected does not count), on a
    # keyed hash of the address like the report limit.
    problems = validate(report)
    if problems:
        return _form_page(request, c, lang, values, _problems(t, InvalidReport(problems)), status=400)
    limited = report.urgent and c.urgent_limit.hit(c.client(request)) is not None
    if limited:
        report = replace(report, urgent=False)
    try:
        receipt = await run_in_threadpool(submit_report, c.services, report)
    except InvalidReport as e:
        return _form_page(request, c, lang, values, _problems(t, e), status=400)
    log.info("public report %d received: %d item(s)", receipt.report_id, len(receipt.item_ids))
    if limited:
        log.info(
            "public report %d: too many urgent reports from one client, taken as not urgent",
            receipt.report_id,
        )
    params = {"lang": lang}
    if report.urgent or limited:
        params["urgent"] = "1" if report.urgent else "limited"
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return RedirectResponse(f"/receipt/{receipt.code}?{query}", status_code=303)


@router.get("/receipt/{code}")
def receipt_page(request: Request, code: str) -> Response:
    """The receipt of a report that exists; any other code is a 404 in plain words (looked up under
    the status pages' rate limit: a receipt page is no cheaper an oracle than /status)."""
    c = ctx(request)
    lang = request_language(request)
    retry = c.status_limit.hit(c.client(request))
    if retry is not None:
        return _rate_limited(request, c, lang, retry)
    if not CODE_RE.match(code) or report_status(c.services, canonical_code(code)) is None:
        return c.render(request, "error.html", lang, status=404, kind="no_receipt")
    urgent = request.query_params.get("urgent")
    return c.render(
        request, "receipt.html", lang, code=code, urgent=urgent == "1", urgent_limited=urgent == "limited"
    )


@router.get("/status")
def status_lookup(request: Request) -> Response:
    """A form to type a receipt code in; with ``?code=`` it sends you to that code's page."""
    c = ctx(request)
    lang = request_language(request)
    code = canonical_code(request.query_params.get("code") or "")
    if code:
        if CODE_RE.match(code):
            return RedirectResponse(f"/status/{code}?lang={lang}", status_code=303)
        return c.render(request, "status.html", lang, status=404, code=code, view=None)
    return c.render(request, "status_lookup.html", lang)


@router.get("/status/{code}")
def status_page(request: Request, code: str) -> Response:
    c = ctx(request)
    lang = request_language(request)
    retry = c.status_limit.hit(c.client(request))
    if retry is not None:
        return _rate_limited(request, c, lang, retry)
    # A malformed code is looked up all the same, so every unknown code takes the same path.
    code = canonical_code(code)
    view = report_status(c.services, code)
    if view is None:
        return c.render(request, "status.html", lang, status=404, code=code, view=None)
    return c.render(request, "status.html", lang, code=code, view=view)
