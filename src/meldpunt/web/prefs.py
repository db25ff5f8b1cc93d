"""Wellness preferences: ``/me/preferences`` (every signed-in user's own, ``prefs.own``) and
``/admin/wellness-defaults`` (the administrator's defaults, ``settings.manage``, audited as
``settings.change``). What the values mean and how viewing time is counted: :mod:`meldpunt.wellness`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from meldpunt.accounts import CurrentUser
from meldpunt.accounts.zones import ZoneError, zone_names
from meldpunt.web.context import ctx, staff_language, staff_translator
from meldpunt.web.forms import field, read_form, token_ok
from meldpunt.web.i18n import N_, Translator
from meldpunt.web.staff import accounts, require
from meldpunt.wellness import (
    BREAK_WINDOW_SECONDS,
    PAGE_SECONDS,
    REVEAL_SECONDS,
    THUMB_SIZES,
    USER_FIELDS,
    Defaults,
    PrefsError,
    Wellness,
)
from meldpunt.wellness.actions import change_defaults, save_own

router = APIRouter(include_in_schema=False)

Own = Annotated[CurrentUser, Depends(require("prefs.own"))]
Manage = Annotated[CurrentUser, Depends(require("settings.manage"))]

_BOOLS = ("blur", "greyscale", "block_reveal_over_limit")
_INTS = ("thumb_size", "daily_limit_minutes", "break_every_minutes")
#: each field's name in an error message
_NAMES = {
    "blur": N_("blur"),
    "greyscale": N_("greyscale"),
    "block_reveal_over_limit": N_("block reveal over limit"),
    "thumb_size": N_("thumb size"),
    "daily_limit_minutes": N_("daily limit minutes"),
    "break_every_minutes": N_("break every minutes"),
}


def wellness(request: Request) -> Wellness:
    """The app's wellness service: ``Services.wellness`` (tests may put their own on app.state)."""
    found = getattr(request.app.state, "wellness", None)
    if isinstance(found, Wellness):
        return found
    return ctx(request).services.wellness


def _purpose(form: str, user: CurrentUser) -> str:
    return f"wl-{form}:{user.session_hash}"


def _field(form: FormData, name: str, limit: int = 40) -> str:
    return field(form, name, limit).strip()


def _value(form: FormData, name: str, _: Translator, *, blank_ok: bool) -> bool | int | None:
    """A form value: "" (the default) -> None, "on"/"off" -> bool, digits -> int; a
    :class:`PrefsError` in the user's language otherwise."""
    raw = _field(form, name)
    if raw == "" and blank_ok:
        return None
    if name in _BOOLS:
        if raw in ("on", "off"):
            return raw == "on"
        raise PrefsError("{field}: choose on or off", field=_(_NAMES[name]))
    if raw.isascii() and raw.isdigit() and len(raw) <= 6:
        return int(raw)
    raise PrefsError("{field}: a whole number, please", field=_(_NAMES[name]))


def _render(request: Request, template: str, user: CurrentUser, status: int = 200, **values: Any) -> Response:
    return ctx(request).render(
        request,
        template,
        staff_language(request),
        status=status,
        user=user,
        sizes=THUMB_SIZES,
        page_seconds=PAGE_SECONDS,
        reveal_seconds=REVEAL_SECONDS,
        window_minutes=BREAK_WINDOW_SECONDS // 60,
        **values,
    )


def _bad_form(request: Request) -> Response:
    return ctx(request).render(request, "error.html", staff_language(request), status=400, kind="bad_form")


# -- a user's own ---------------------------------------------------------------------------------


def _prefs_page(
    request: Request, user: CurrentUser, *, error: str = "", saved: bool = False, status: int = 200
) -> Response:
    w = wellness(request)
    return _render(
        request,
        "wl_prefs.html",
        user,
        status,
        prefs=w.prefs(user.name),
        defaults=w.defaults(),
        today=w.today(user.name),
        token=ctx(request).tokens.issue(_purpose("prefs", user)),
        error=error,
        saved=saved,
        zones=zone_names(),
        own_zone=user.time_zone or "",
        default_zone=ctx(request).config.time_zone,
    )


@router.get("/me/preferences")
def prefs_page(request: Request, user: Own, saved: str = "") -> Response:
    return _prefs_page(request, user, saved=saved == "1")


@router.post("/me/preferences")
async def prefs_post(request: Request, user: Own) -> Response:
    form = await read_form(request, max_fields=20)
    if form is None or not token_ok(request, form, _purpose("prefs", user)):
        return _bad_form(request)
    try:
        _ = staff_translator(request)
        values = {k: _value(form, k, _, blank_ok=True) for k in USER_FIELDS}
        zone = _field(form, "time_zone", 64) or None
        w, service = wellness(request), accounts(request)

        await run_in_threadpool(save_own, w, service, user.name, user.id, values, zone)
    except (PrefsError, ZoneError) as e:
        message = staff_translator(request)(e.message, **e.values)
        return await run_in_threadpool(lambda: _prefs_page(request, user, error=message, status=400))
    return RedirectResponse("/me/preferences?saved=1", status_code=303)


# -- the administrator's defaults -----------------------------------------------------------------


def _defaults_page(
    request: Request, user: CurrentUser, *, error: str = "", saved: bool = False, status: int = 200
) -> Response:
    return _render(
        request,
        "wl_defaults.html",
        user,
        status,
        defaults=wellness(request).defaults(),
        token=ctx(request).tokens.issue(_purpose("defaults", user)),
        error=error,
        saved=saved,
    )


@router.get("/admin/wellness-defaults")
def defaults_page(request: Request, user: Manage, saved: str = "") -> Response:
    return _defaults_page(request, user, saved=saved == "1")


@router.post("/admin/wellness-defaults")
async def defaults_post(request: Request, user: Manage) -> Response:
    form = await read_form(request, max_fields=20)
    if form is None or not token_ok(request, form, _purpose("defaults", user)):
        return _bad_form(request)
    w = wellness(request)
    try:
        _ = staff_translator(request)
        values: dict[str, Any] = {k: _value(form, k, _, blank_ok=False) for k in (*_BOOLS, *_INTS)}
        new = Defaults(**values)

        await run_in_threadpool(change_defaults, w, user.name, new)
    except PrefsError as e:
        message = staff_translator(request)(e.message, **e.values)
        return await run_in_threadpool(lambda: _defaults_page(request, user, error=message, status=400))
    return RedirectResponse("/admin/wellness-defaults?saved=1", status_code=303)
