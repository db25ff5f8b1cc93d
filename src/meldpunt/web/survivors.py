"""The survivor pages (#12): what registering means, register hashes made on the device, sign in,
see the case's timeline, add images, download what is registered, withdraw.

Why it is built this way:
- the pictures never leave the device: ``static/survivor/hasher.js`` hashes them in a Web Worker and
  the page's script (``survivor-page.js``) only fills a hidden ``hashes`` field with a JSON list of
  ``[type, value]`` pairs; the form is an ordinary post with a CSRF token, as the public form's;
- without JavaScript the pages say that hashing needs it and that nothing is sent without it (the
  register and add buttons stay disabled until the script runs);
- a survivor's session is a cookie of its own (``meldpunt_survivor``), not a staff session: the case
  id and a token signed by the form-token key for ``survivor-session:<id>:<stamp>`` (the stamp is a
  part of the case's keyed code hash), so it expires like a form token and needs no table; a
  withdrawn case ends every session, even where SQLite gives its id to the next case;
- no address is stored: sign-in passes the client's address (an IPv6 one as its /64,
  :func:`client_key`) to :func:`meldpunt.act.survivors.sign_in`, which keeps only a keyed hash of
  it for its limits;
- the case code is shown once, on the page that answers the registration post (no redirect to a
  page that could show it again).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, RedirectResponse, Response

from meldpunt.act import survivor_statement, survivors
from meldpunt.web.context import WebContext, ctx, request_language
from meldpunt.web.forms import field, read_form, token_ok
from meldpunt.web.i18n import Translator, country_name

router = APIRouter(include_in_schema=False)

FORM = "survivor"
COOKIE = "meldpunt_survivor"
#: a session is signed for the case id and the case's :func:`~meldpunt.act.survivors.session_stamp`
_SESSION = "survivor-session:{}:{}"
#: the largest hashes field a page posts (10,000 images with three hashes each fit)
MAX_HASHES_FIELD = 4 * 1024 * 1024
#: the largest video the page hashes in the browser (MD5 and SHA-256 only): bench/survivor_video.py
#: measured headless Chromium at 19 MB/s (1 GiB in 56 s on a busy 2-core machine), so this is about
#: two minutes on a computer and several times that on a phone; above it the page refuses the video
#: in plain words and sends nothing for it (reading is streamed: the limit is time, not memory).
MAX_VIDEO_BYTES = 2_000_000_000
PATH = "/survivor"
#: the posts that carry a hashes field (the body limit lets them be larger than a public form)
SURVIVOR_HASH_PATHS = frozenset({"/survivor/register", "/survivor/case/add"})


def install(app: FastAPI) -> None:
    """The survivor pages on ``app``."""
    app.include_router(router)


def parse_hashes(raw: str) -> list[tuple[str, str]]:
    """The page's ``hashes`` field: a JSON list of ``[type, value]`` pairs (or ``{"type","value"}``
    objects); :class:`~meldpunt.act.survivors.SurvivorError` when it is anything else."""
    try:
        data = json.loads(raw or "[]")
    except ValueError as exc:
        raise survivors.SurvivorError("the hashes could not be read") from exc
    if not isinstance(data, list):
        raise survivors.SurvivorError("the hashes could not be read")
    pairs: list[tuple[str, str]] = []
    for entry in data:
        if isinstance(entry, dict):
            entry = [entry.get("type"), entry.get("value")]
        if not isinstance(entry, list) or len(entry) != 2 or not all(isinstance(part, str) for part in entry):
            raise survivors.SurvivorError("the hashes could not be read")
        pairs.append((entry[0], entry[1]))
    return survivors.check_hashes(pairs)


def _problem(t: Translator, e: Exception) -> tuple[str, str]:
    """The field the service's reason is about (an input's id) and the reason in the survivor's
    language (the known ones are translated)."""
    text = str(e)
    known = {
        "the passphrases differ": ("passphrase2", t("The two passphrases are not the same.")),
        "the passphrase needs at least 10 characters": (
            "passphrase",
            t("The passphrase needs at least 10 characters."),
        ),
        "the contact address does not look like an e-mail address": (
            "contact",
            t("The contact address does not look like an e-mail address."),
        ),
        "register at least one hash": ("files", t("Choose at least one picture or video to hash first.")),
    }
    if text in known:
        return known[text]
    if text.startswith("at most"):
        return "files", t("That is more than one case can hold ({n} hashes).", n=survivors.MAX_HASHES)
    return "files", t("The hashes could not be read. Please choose the files again.")


def _errors(*problems: tuple[str, str]) -> dict[str, Any]:
    """A page's ``errors`` (each with the id of the field it is about) and ``invalid`` (field id ->
    the ids of its errors, for the field's aria-describedby): a screen reader reads the error with
    the field."""
    errors = [{"field": f, "text": text} for f, text in problems]
    invalid: dict[str, str] = {}
    for n, (f, _) in enumerate(problems, 1):
        invalid[f] = f"{invalid[f]} error-{n}" if f in invalid else f"error-{n}"
    return {"errors": errors, "invalid": invalid}


def client_key(address: str) -> str:
    """What the sign-in limit counts as one client: an IPv4 address, or an IPv6 address's /64.
    One subscriber is given a whole /64 (2^64 addresses): counted per address, every guess could
    come from a new one and the per-client limit held nothing back."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _case_id(request: Request, c: WebContext) -> int | None:
    """The signed-in case's id from the survivor cookie, None when there is none or it is stale."""
    raw = request.cookies.get(COOKIE, "")
    head, _, token = raw.partition(":")
    if not (head.isascii() and head.isdigit()) or len(head) > 18:
        return None
    case_id = int(head)
    stamp = survivors.session_stamp(c.services.engine, case_id)
    if stamp is None:
        return None
    return case_id if c.tokens.check(_SESSION.format(case_id, stamp), token) is not None else None


def _signed_in(request: Request, response: Response, c: WebContext, case_id: int) -> Response:
    token = c.tokens.issue(_SESSION.format(case_id, survivors.session_stamp(c.services.engine, case_id)))
    response.set_cookie(
        COOKIE,
        f"{case_id}:{token}",
        max_age=c.config.form_token_s,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def _signed_out(response: Response) -> Response:
    response.delete_cookie(COOKIE, path=PATH)
    return response


def _page(request: Request, template: str, lang: str, status: int = 200, **values: Any) -> Response:
    c = ctx(request)
    values.setdefault("invalid", {})
    response = c.render(
        request,
        template,
        lang,
        status=status,
        token=c.tokens.issue(FORM),
        max_video_bytes=MAX_VIDEO_BYTES,
        **values,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/survivor")
def about(request: Request) -> Response:
    return _page(request, "survivor_about.html", request_language(request))


@router.get("/survivor/register")
def register_form(request: Request) -> Response:
    return _page(
        request,
        "survivor_register.html",
        request_language(request),
        errors=[],
        values={"contact": "", "consent": "", "language": ""},
    )


@router.post("/survivor/register")
async def register_post(request: Request) -> Response:
    c = ctx(request)
    form = await read_form(request, max_fields=12)
    lang = request_language(request, field(form, "lang") if form is not None else None)
    if not token_ok(request, form, FORM) or form is None:
        return c.render(request, "error.html", lang, status=400, kind="token")
    t = Translator(lang)
    values = {
        "contact": field(form, "contact", 320).strip(),
        "consent": "1" if field(form, "consent_forward") else "",
        "language": field(form, "language", 8) or lang,
    }
    passphrase = field(form, "passphrase", 1024)
    pairs: list[tuple[str, str]] = []
    try:
        pairs = parse_hashes(field(form, "hashes", MAX_HASHES_FIELD))
        if passphrase != field(form, "passphrase2", 1024):
            raise survivors.SurvivorError("the passphrases differ")
        language = values["language"] if values["language"] in survivors.LANGUAGES else lang
        done = await run_in_threadpool(
            lambda: survivors.register(
                c.services,
                passphrase=passphrase,
                hashes_=pairs,
                contact=values["contact"],
                language=language,
                consent_forward=bool(values["consent"]),
            )
        )
    except survivors.SurvivorError as e:
        # hashes that could be read are kept in the form: a mistyped passphrase costs no re-hashing
        kept = json.dumps([list(p) for p in pairs]) if pairs else ""
        problem = _errors(_problem(t, e))
        return _page(
            request,
            "survivor_register.html",
            lang,
            422,
            values=values,
            kept=kept,
            kept_count=len(pairs),
            **problem,
        )
    response = _page(request, "survivor_registered.html", language, code=done.code, hashes=done.hashes)
    return _signed_in(request, response, c, done.case_id)


@router.get("/survivor/sign-in")
def sign_in_form(request: Request) -> Response:
    return _page(request, "survivor_sign_in.html", request_language(request), errors=[])


@router.post("/survivor/sign-in")
async def sign_in_post(request: Request) -> Response:
    c = ctx(request)
    form = await read_form(request, max_fields=6)
    lang = request_language(request, field(form, "lang") if form is not None else None)
    if not token_ok(request, form, FORM) or form is None:
        return c.render(request, "error.html", lang, status=400, kind="token")
    t = Translator(lang)
    code, passphrase = field(form, "code", 64), field(form, "passphrase", 1024)
    try:
        case_id = await run_in_threadpool(
            survivors.sign_in, c.services, code, passphrase, client_key(c.client(request))
        )
    except survivors.SignInLimited:
        problem = t(
            "There were too many attempts that did not work. For your safety, please wait 15 minutes and try again."
        )
        return _page(request, "survivor_sign_in.html", lang, 429, **_errors(("code", problem)))
    except survivors.SignInFailed:
        problem = t("The case code or the passphrase is not right. Please check both and try again.")
        # one error, read with both fields: it must not say which of the two was wrong
        found = _errors(("code", problem))
        found["invalid"]["passphrase"] = found["invalid"]["code"]
        return _page(request, "survivor_sign_in.html", lang, 401, **found)
    response = RedirectResponse(f"/survivor/case?lang={lang}", status_code=303)
    return _signed_in(request, response, c, case_id)


def _facts(t: Translator, case_id: int, c: WebContext) -> list[dict[str, str]]:
    """The timeline's facts as sentences in the survivor's language."""
    lines = []
    for fact in survivors.timeline(c.services.engine, case_id):
        where = fact.domain or ""
        country = country_name(fact.country, t.lang) or t("unknown")
        text = {
            "found": t(
                "One of your images was found on {domain} (hosting country: {country}).",
                domain=where or "?",
                country=country,
            ),
            "notice_sent": t(
                "A removal notice was sent to the hosting provider (country: {country}).", country=country
            ),
            "forwarded": t("The case was passed to a partner hotline (country: {country}).", country=country),
            "referred_to_police": t("The case was referred to the police."),
            "removed": t("The image was removed from {domain}.", domain=where or "?"),
            "found_abroad": t(
                "One of your images was found on {domain} (hosting country: {country}) by a partner hotline ({partner}, country: {partner_country}).",
                domain=where or "?",
                country=country,
                partner_country=country_name(fact.partner_country, t.lang) or t("unknown"),
                partner=fact.partner,
            ),
            "notice_sent_abroad": t(
                "A partner hotline ({partner}, country: {partner_country}) sent a removal notice to the hosting provider (country: {country}).",
                country=country,
                partner_country=country_name(fact.partner_country, t.lang) or t("unknown"),
                partner=fact.partner,
            ),
            "removed_abroad": t(
                "The image was removed from {domain}, reports a partner hotline ({partner}, country: {partner_country}).",
                domain=where or "?",
                partner_country=country_name(fact.partner_country, t.lang) or t("unknown"),
                partner=fact.partner,
            ),
            # a re-check within a day of the finding: "after 0 days" said nothing a person reads
            "still_online": t(
                "The image was still online on {domain} when it was checked again less than a day later.",
                domain=where or "?",
            )
            if not fact.days
            else t.ngettext(
                "The image was still online on {domain} after {n} day.",
                "The image was still online on {domain} after {n} days.",
                fact.days,
                domain=where or "?",
            ),
        }.get(fact.kind, fact.kind)
        lines.append({"at": fact.at.date().isoformat(), "kind": fact.kind, "text": text})
    return lines


def _case_page(request: Request, c: WebContext, case_id: int, lang: str, **extra: Any) -> Response:
    try:
        data = survivors.export(c.services, case_id)
    except survivors.SurvivorError:
        return _signed_out(RedirectResponse(f"/survivor/sign-in?lang={lang}", status_code=303))
    t = Translator(lang)
    values: dict[str, Any] = {"errors": [], "invalid": {}, "added": None, "confirm": False}
    values.update(extra)
    return _page(
        request,
        "survivor_case.html",
        lang,
        status=422 if values["errors"] else 200,
        facts=_facts(t, case_id, c),
        hashes=len(data["hashes"]),
        created=data["created"][:10],
        consent=data["consent_forward"],
        **values,
    )


@router.get("/survivor/case")
def case_page(request: Request) -> Response:
    c = ctx(request)
    lang = request_language(request)
    case_id = _case_id(request, c)
    if case_id is None:
        return RedirectResponse(f"/survivor/sign-in?lang={lang}", status_code=303)
    return _case_page(request, c, case_id, lang, confirm=request.query_params.get("withdraw") == "1")


@router.get("/survivor/case/export")
def case_export(request: Request) -> Response:
    """What is registered, as JSON to download (hashes, consent, contact, timeline)."""
    c = ctx(request)
    case_id = _case_id(request, c)
    if case_id is None:
        return RedirectResponse(f"/survivor/sign-in?lang={request_language(request)}", status_code=303)
    try:
        data = survivors.export(c.services, case_id)
    except survivors.SurvivorError:
        return _signed_out(RedirectResponse("/survivor/sign-in", status_code=303))
    return JSONResponse(
        data,
        headers={
            "Content-Disposition": 'attachment; filename="survivor-case.json"',
            "Cache-Control": "no-store",
        },
    )


def _statement_words(t: Translator, lang: str, label: str, created: str, hashes: int) -> Any:
    """Every word of the statement PDF in the survivor's language."""
    return survivor_statement.StatementWords(
        title=t("Statement about your registration"),
        header=t("Statement · case {label}", label=label),
        page=t("Page {n} of {total}"),
        intro=[
            t("Case: {label} (a label for this statement, not your case code).", label=label),
            t("Registered on: {date}.", date=created),
            t.ngettext("Registered: {n} hash.", "Registered: {n} hashes.", hashes),
        ],
        timeline_heading=t("What was found and what was done"),
        date_column=t("Date"),
        fact_column=t("What happened"),
        nothing_yet=t("Nothing has been found so far. We keep looking."),
        explanation_heading=t("What the hotline did"),
        explanation=[
            t(
                "You registered hashes of your images. A hash is a fingerprint computed on your own device: your pictures were never sent to us."
            ),
            t(
                "The hotline compares these fingerprints with the images it finds on reported web pages. When one matches, an analyst checks it and the hotline asks the hosting provider to remove it, passes it to the hotline of the country where it is hosted, or refers it to the police."
            ),
            t(
                "This statement lists each time one of your images was found, where (the website's name and the hosting country, never the full address) and what was done about it."
            ),
            t("An edited copy of an image may not match, so not every copy can be found."),
        ],
        annex_heading=t("Annex: the hashes you registered"),
        annex_intro=t("These fingerprints cannot be turned back into your pictures."),
        language=lang,
    )


@router.get("/survivor/case/statement.pdf")
def case_statement(request: Request) -> Response:
    """The case's statement as a PDF to download, in the survivor's language (the case's own
    unless the link asks for another)."""
    c = ctx(request)
    case_id = _case_id(request, c)
    if case_id is None:
        return RedirectResponse(f"/survivor/sign-in?lang={request_language(request)}", status_code=303)
    try:
        data = survivors.export(c.services, case_id)
        asked = request.query_params.get("lang", "")
        lang = asked if asked in survivors.LANGUAGES else str(data["language"])
        t = Translator(lang)
        words = _statement_words(
            t, lang, survivors.label(c.services, case_id), data["created"][:10], len(data["hashes"])
        )
        facts = [(f["at"], f["text"]) for f in _facts(t, case_id, c)]
        pdf = survivor_statement.build(c.services, case_id, words, facts)
    except survivors.SurvivorError:
        return _signed_out(RedirectResponse("/survivor/sign-in", status_code=303))
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": 'attachment; filename="statement.pdf"',
            "Cache-Control": "no-store",
        },
    )


async def _case_post(request: Request) -> Response | tuple[WebContext, Any, str, int]:
    """A signed-in survivor's post: the form, its language and the case, or the answer to give
    instead (to sign in again without a session, 400 without the page's token)."""
    c = ctx(request)
    form = await read_form(request, max_fields=6)
    lang = request_language(request, field(form, "lang") if form is not None else None)
    case_id = _case_id(request, c)
    if case_id is None:
        return RedirectResponse(f"/survivor/sign-in?lang={lang}", status_code=303)
    if not token_ok(request, form, FORM) or form is None:
        return c.render(request, "error.html", lang, status=400, kind="token")
    return c, form, lang, case_id


@router.post("/survivor/case/add")
async def case_add(request: Request) -> Response:
    posted = await _case_post(request)
    if isinstance(posted, Response):
        return posted
    c, form, lang, case_id = posted
    t = Translator(lang)
    try:
        pairs = parse_hashes(field(form, "hashes", MAX_HASHES_FIELD))
        if not pairs:
            raise survivors.SurvivorError("register at least one hash")
        added = await run_in_threadpool(survivors.add_hashes, c.services, case_id, pairs)
    except survivors.SurvivorError as e:
        if str(e) == "no such case":
            return _signed_out(RedirectResponse(f"/survivor/sign-in?lang={lang}", status_code=303))
        return _case_page(request, c, case_id, lang, **_errors(_problem(t, e)))
    return _case_page(request, c, case_id, lang, added=added)


@router.post("/survivor/case/withdraw")
async def case_withdraw(request: Request) -> Response:
    posted = await _case_post(request)
    if isinstance(posted, Response):
        return posted
    c, form, lang, case_id = posted
    if field(form, "confirm") != "yes":
        return _case_page(request, c, case_id, lang, confirm=True)
    await run_in_threadpool(survivors.withdraw, c.services, case_id)
    return _signed_out(_page(request, "survivor_withdrawn.html", lang))


@router.post("/survivor/sign-out")
async def sign_out(request: Request) -> Response:
    """Sign out: a post with the page's token, so another site cannot sign a survivor out (or
    learn from the answer that a session was there)."""
    c = ctx(request)
    form = await read_form(request, max_fields=4)
    lang = request_language(request, field(form, "lang") if form is not None else None)
    if not token_ok(request, form, FORM) or form is None:
        return c.render(request, "error.html", lang, status=400, kind="token")
    return _signed_out(RedirectResponse(f"/survivor?lang={lang}", status_code=303))
