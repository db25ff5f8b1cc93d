"""Staff sign-in: password, then a TOTP code (or a recovery code); TOTP enrolment (with a QR code)
at the first sign-in; logout and logout everywhere. And :func:`require`, the dependency every staff
page uses: ``user: CurrentUser = Depends(require("queue.view"))``; and :func:`format_when`, the one
way a time is shown on a staff page (the staff member's zone, the page's language).

A signed-out visitor asking for a staff page is sent to ``/login?next=<the page>``; every step of
the sign-in carries ``next`` and the last one ends there (:func:`next_path`: only a path of this
site, else ``/me``, the landing page of :mod:`meldpunt.web.me`).

The session id lives in an HttpOnly, SameSite=Strict cookie (Secure over https, or always by
setting); the server keeps only its hash. Every form carries a signed token bound to the session
(or, for the password form, to its purpose, and spent on use). The password form is rate limited
per account name and per client (:mod:`meldpunt.web.signin`: a keyed hash of the address, never the
address); failures are counted per account for the lock-out. Every staff page is in the browser's language
(:func:`~meldpunt.web.context.staff_language`: Dutch, French or English).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from meldpunt.accounts import Accounts, AccountsPolicy, CurrentUser, LoginError, allowed
from meldpunt.accounts.roles import ALL_PERMISSIONS
from meldpunt.accounts.service import totp_uri
from meldpunt.web.context import WebContext, ctx, staff_language, staff_translator
from meldpunt.web.forms import field, read_form, token_ok
from meldpunt.web.i18n import N_
from meldpunt.web.qr import qr_svg
from meldpunt.web.security import local_href
from meldpunt.web.signin import SignInGuard, Summary

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

COOKIE = "mp_staff"
LOGIN_FORM = "staff-login"


class LoginRequired(Exception):
    """Not signed in (or only half): HTML pages answer with a redirect to /login."""


class Forbidden(Exception):
    """Signed in, but the role does not hold the permission."""


# -- plumbing ---------------------------------------------------------------------------------------


def accounts(request: Request) -> Accounts:
    """The app's account service: ``Services.accounts()`` (tests may put their own on app.state)."""
    found = getattr(request.app.state, "accounts", None)
    if isinstance(found, Accounts):
        return found
    return ctx(request).services.accounts()


def format_when(value: datetime | None, zone: str = "UTC", language: str = "en") -> str:
    """The one way a time is shown on a staff page: in ``zone`` (an IANA name), the date in
    ``language`` (Babel's medium date, short time, and the zone's abbreviation: "1 dec 2026 13:05
    CET"). SQLite gives times back without their zone: they are UTC."""
    if value is None:
        return ""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    local = aware.astimezone(ZoneInfo(zone))
    day = format_date(local, "medium", locale=language)
    clock = format_time(local, "short", locale=language)
    return f"{day} {clock} {local.tzname() or zone}"


def staff_zone(request: Request) -> str:
    """The signed-in staff member's time zone: their own choice, else the hotline's setting."""
    user = getattr(request.state, "staff_user", None)
    chosen = user.time_zone if isinstance(user, CurrentUser) else None
    return chosen or ctx(request).config.time_zone


def when_for(request: Request) -> Callable[[datetime | None], str]:
    """:func:`format_when` in the request's staff member's zone and page language: what every
    staff template calls ``when`` and what Python code that puts a time on a staff page uses."""
    zone, language = staff_zone(request), staff_language(request)
    return lambda value: format_when(value, zone, language)


def staff_page(
    request: Request, template: str, user: CurrentUser, status: int = 200, **values: Any
) -> Response:
    """A staff page in the browser's language, with what every staff frame shows (the user, the
    links their role may follow, times in the user's zone)."""
    return ctx(request).render(
        request,
        template,
        staff_language(request),
        status=status,
        user=user,
        can_resolve=allowed(user.role, "disagreement.resolve"),
        when=when_for(request),
        **values,
    )


def _session_token(request: Request) -> str | None:
    return request.cookies.get(COOKIE)


def current_user(request: Request) -> CurrentUser | None:
    """The user of the request's session, half or fully signed in (looked up once per request).
    Blocking: call it from a thread (sync dependencies and ``run_in_threadpool`` do)."""
    found = getattr(request.state, "staff_user", _UNKNOWN)
    if found is _UNKNOWN:
        found = accounts(request).session(_session_token(request))
        request.state.staff_user = found
    return found if isinstance(found, CurrentUser) else None


def require(permission: str) -> Callable[[Request], CurrentUser]:
    """A FastAPI dependency: the signed-in user when their role holds ``permission``; else 401
    (HTML pages: a redirect to /login) when not (fully) signed in, 403 when the role lacks it."""
    if permission not in ALL_PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def dependency(request: Request) -> CurrentUser:
        user = current_user(request)
        if user is None or not user.signed_in:
            if request.url.path.startswith("/api/"):
                raise HTTPException(401, "sign in required")
            raise LoginRequired()
        if not allowed(user.role, permission):
            if request.url.path.startswith("/api/"):
                raise HTTPException(403, "not allowed")
            raise Forbidden()
        return user

    return dependency


def _secure(request: Request, policy: AccountsPolicy) -> bool:
    if policy.cookie_secure == "auto":
        return request.url.scheme == "https"
    return policy.cookie_secure == "always"


def _set_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(request, accounts(request).policy),
        path="/",
    )


def _clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request, accounts(request).policy)
    )


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


HOME = "/me"
#: the sign-in pages themselves: never where a sign-in ends
_SIGN_IN_PATHS = frozenset({"/login", "/login/totp", "/enrol", "/logout", "/logout-everywhere"})


def next_path(raw: str | None) -> str:
    """Where a sign-in ends: ``raw`` when it is a path on this site (the page a signed-out visitor
    asked for), else ``/me``. Same rule as :func:`~meldpunt.web.security.local_href`: no scheme, no
    host, no ``//host`` or ``/\\host``, no control characters; the path is re-encoded, the query
    rebuilt."""
    if not raw or len(raw) > 2000 or "\\" in raw or any(ord(c) < 32 or ord(c) == 127 for c in raw):
        return HOME
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or not raw.startswith("/") or raw.startswith("//"):
        return HOME
    path = unquote(parts.path)
    if path.startswith(("//", "/\\")) or path.rstrip("/") in _SIGN_IN_PATHS:
        return HOME
    return local_href(path, parse_qsl(parts.query, keep_blank_values=True))


def _with_next(url: str, target: str) -> str:
    """``url`` carrying the page a sign-in should end on (nothing when that is ``/me``)."""
    return url if target == HOME else local_href(url, [("next", target)])


def purpose(form: str, user: CurrentUser) -> str:
    """Form tokens of a signed-in form are bound to the session: useless with any other."""
    return f"staff-{form}:{user.session_hash}"


async def _audit(request: Request, actor: str, action: str, **details: object) -> None:
    """Write a sign-in event to the audit log (never the client's address)."""
    log_ = ctx(request).services.audit
    await run_in_threadpool(log_.append, actor[:200] or "?", action, "", details)


def _bad_form(request: Request, c: WebContext) -> Response:
    return c.render(request, "error.html", staff_language(request), status=400, kind="bad_form")


def _login_page(
    request: Request,
    message: str = "",
    status: int = 200,
    name: str = "",
    target: str = HOME,
    **values: object,
) -> Response:
    """The password form; ``message`` is a message id (``N_``), shown translated (with ``values``);
    ``target`` is where the sign-in will end."""
    c = ctx(request)
    return c.render(
        request,
        "staff_login.html",
        staff_language(request),
        status=status,
        token=c.tokens.issue(LOGIN_FORM),
        message=staff_translator(request)(message, **values) if message else "",
        name=name,
        next=target,
    )


_UNKNOWN = object()
FAILED = N_("Sign-in failed. Check your details, or wait if the account was locked after repeated failures.")
THROTTLED = N_("Too many sign-in attempts. Please wait {minutes} minutes and try again.")


# -- sign-in ----------------------------------------------------------------------------------------


def _guard(request: Request) -> SignInGuard:
    """The password form's guard (made on first use, on the account service's clock)."""
    found = getattr(request.app.state, "signin_guard", None)
    if isinstance(found, SignInGuard):
        return found
    config, service = ctx(request).config, accounts(request)
    made = SignInGuard(
        config.login_rate_per_name,
        config.login_rate_per_client,
        config.login_window_s,
        lambda: service.clock().timestamp(),
    )
    request.app.state.signin_guard = made
    return made


async def _summaries(request: Request, rows: list[Summary]) -> None:
    for row in rows:
        await _audit(request, "?", "staff.login_failed", **row.details())


@router.get("/login")
async def login_form(request: Request) -> Response:
    target = next_path(request.query_params.get("next"))
    user = await run_in_threadpool(current_user, request)
    if user is not None and user.signed_in:
        return _redirect(target)
    await _summaries(request, _guard(request).tally.due())
    return _login_page(request, target=target)


@router.post("/login")
async def login_post(request: Request) -> Response:
    c = ctx(request)
    form = await read_form(request, max_fields=10)
    if form is None:
        return _bad_form(request, c)
    # the token is spent here: a replayed post (browser history, a copied request) is refused
    if not token_ok(request, form, LOGIN_FORM) or not c.tokens.spend(LOGIN_FORM, field(form, "token")):
        return c.render(request, "error.html", staff_language(request), status=400, kind="token")
    name = field(form, "name", 120)
    target = next_path(field(form, "next", 2000))
    guard = _guard(request)
    await _summaries(request, guard.tally.due())
    wait = guard.attempt(name, c.client(request))
    if wait is not None:
        await _summaries(request, guard.tally.add("throttled"))
        response = _login_page(request, THROTTLED, 429, name, target, minutes=max(1, math.ceil(wait / 60)))
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    service = accounts(request)
    result = await run_in_threadpool(service.check_password, name, field(form, "password"))
    if result.user_id is None:
        if result.unknown:  # counted, written once per interval: not one row per made-up name
            await _summaries(request, guard.tally.add("unknown_name"))
        else:
            await _audit(request, name, "staff.login_failed", step="password")
        return _login_page(request, FAILED, 400, name, target)
    old = _session_token(request)
    if old:
        await run_in_threadpool(service.end_session, old)
    token = await run_in_threadpool(service.start_session, result.user_id, "password")
    half = await run_in_threadpool(service.session, token)
    step = "/login/totp" if half is not None and half.enrolled else "/enrol"
    response = _redirect(_with_next(step, target))
    _set_cookie(request, response, token)
    return response


async def _half_user(request: Request) -> CurrentUser | None:
    user = await run_in_threadpool(current_user, request)
    return user if user is not None and user.stage == "password" else None


def _totp_page(
    request: Request, user: CurrentUser, target: str, message: str = "", status: int = 200
) -> Response:
    c = ctx(request)
    return c.render(
        request,
        "staff_totp.html",
        staff_language(request),
        status=status,
        token=c.tokens.issue(purpose("totp", user)),
        message=staff_translator(request)(message) if message else "",
        next=target,
    )


@router.get("/login/totp")
async def totp_form(request: Request) -> Response:
    target = next_path(request.query_params.get("next"))
    user = await _half_user(request)
    if user is None:
        return _redirect(_with_next("/login", target))
    if not user.enrolled:
        return _redirect(_with_next("/enrol", target))
    return _totp_page(request, user, target)


async def _signed_in(request: Request, response: Response) -> Response:
    """Swap the half session for a full one under a new id."""
    service = accounts(request)
    token = _session_token(request) or ""
    new = await run_in_threadpool(service.promote, token)
    if new is None:
        return _redirect("/login")
    _set_cookie(request, response, new)
    return response


@router.post("/login/totp")
async def totp_post(request: Request) -> Response:
    c = ctx(request)
    user = await _half_user(request)
    if user is None or not user.enrolled:
        return _redirect("/login")
    form = await read_form(request, max_fields=10)
    if form is None:
        return _bad_form(request, c)
    if not token_ok(request, form, purpose("totp", user)):
        return c.render(request, "error.html", staff_language(request), status=400, kind="token")
    target = next_path(field(form, "next", 2000))
    service = accounts(request)
    error = await run_in_threadpool(service.check_second_factor, user.id, field(form, "code", 64))
    if error is not None:
        await _audit(request, user.name, "staff.login_failed", step="second_factor")
    if error is LoginError.BAD:
        return _totp_page(request, user, target, N_("That code was not accepted."), 400)
    if error is not None:  # locked or disabled meanwhile: start again
        await run_in_threadpool(service.end_session, _session_token(request) or "")
        response = _login_page(request, FAILED, 400, target=target)
        _clear_cookie(request, response)
        return response
    log.info("staff user %d signed in", user.id)
    await _audit(request, user.name, "staff.login")
    return await _signed_in(request, _redirect(target))


# -- enrolment --------------------------------------------------------------------------------------


def _enrol_page(
    request: Request, user: CurrentUser, secret: str, target: str, message: str = "", status: int = 200
) -> Response:
    c = ctx(request)
    uri = totp_uri(secret, user.name, c.config.hotline_name)
    spaced = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return c.render(
        request,
        "staff_enrol.html",
        staff_language(request),
        status=status,
        token=c.tokens.issue(purpose("enrol", user)),
        secret=spaced,
        uri=uri,
        qr=qr_svg(uri),
        message=staff_translator(request)(message) if message else "",
        next=target,
    )


@router.get("/enrol")
async def enrol_form(request: Request) -> Response:
    target = next_path(request.query_params.get("next"))
    user = await _half_user(request)
    if user is None or user.enrolled:
        return _redirect(_with_next("/login", target))
    secret = await run_in_threadpool(accounts(request).begin_enrolment, user.id)
    if secret is None:
        return _redirect("/login")
    return _enrol_page(request, user, secret, target)


@router.post("/enrol")
async def enrol_post(request: Request) -> Response:
    c = ctx(request)
    user = await _half_user(request)
    if user is None or user.enrolled:
        return _redirect("/login")
    form = await read_form(request, max_fields=10)
    if form is None:
        return _bad_form(request, c)
    if not token_ok(request, form, purpose("enrol", user)):
        return c.render(request, "error.html", staff_language(request), status=400, kind="token")
    target = next_path(field(form, "next", 2000))
    service = accounts(request)
    codes = await run_in_threadpool(service.finish_enrolment, user.id, field(form, "code", 64))
    if codes is None:
        secret = await run_in_threadpool(service.begin_enrolment, user.id)
        if secret is None:
            return _redirect("/login")
        return _enrol_page(
            request, user, secret, target, N_("That code was not accepted. Check the app's clock."), 400
        )
    log.info("staff user %d enrolled a second factor", user.id)
    await _audit(request, user.name, "staff.enrol")
    await _audit(request, user.name, "staff.login", via="enrol")
    page = c.render(request, "staff_recovery.html", staff_language(request), codes=codes, next=target)
    return await _signed_in(request, page)


# -- signed in --------------------------------------------------------------------------------------


@router.post("/logout")
async def logout(request: Request) -> Response:
    c = ctx(request)
    user = await run_in_threadpool(current_user, request)
    response = _redirect("/login")
    if user is None:
        _clear_cookie(request, response)
        return response
    form = await read_form(request, max_fields=10)
    if form is None or not token_ok(request, form, purpose("logout", user)):
        return c.render(request, "error.html", staff_language(request), status=400, kind="token")
    await run_in_threadpool(accounts(request).end_session, _session_token(request) or "")
    await _audit(request, user.name, "staff.logout")
    _clear_cookie(request, response)
    return response


@router.post("/logout-everywhere")
async def logout_everywhere(request: Request) -> Response:
    c = ctx(request)
    user = await run_in_threadpool(current_user, request)
    if user is None or not user.signed_in:
        return _redirect("/login")
    form = await read_form(request, max_fields=10)
    if form is None or not token_ok(request, form, purpose("logout-everywhere", user)):
        return c.render(request, "error.html", staff_language(request), status=400, kind="token")
    ended = await run_in_threadpool(accounts(request).end_all_sessions, user.id)
    log.info("staff user %d logged out everywhere (%d sessions)", user.id, ended)
    await _audit(request, user.name, "staff.logout_everywhere", sessions=ended)
    response = _redirect("/login")
    _clear_cookie(request, response)
    return response


# -- wiring -----------------------------------------------------------------------------------------


async def _login_required(request: Request, exc: Exception) -> Response:
    """To the sign-in, which ends on the page asked for (a GET's path and query; a form post's
    page cannot be repeated, so a post ends on /me)."""
    if request.method not in ("GET", "HEAD"):
        return _redirect("/login")
    asked = local_href(request.url.path, request.query_params.multi_items())
    return _redirect(_with_next("/login", next_path(asked)))


async def _forbidden(request: Request, exc: Exception) -> Response:
    user = getattr(request.state, "staff_user", None)  # looked up by ``require``: the frame shows their links
    user = user if isinstance(user, CurrentUser) else None
    return ctx(request).render(
        request, "staff_forbidden.html", staff_language(request), status=403, user=user
    )


def install(app: FastAPI) -> None:
    """Add the staff pages and the answers of :func:`require` to the app."""
    app.include_router(router)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(Forbidden, _forbidden)
