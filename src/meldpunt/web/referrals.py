"""Police referrals in the workspace: the police liaison's page and a senior's "make a package".

``/referrals`` (``referrals.download``: the police liaison and seniors) lists the cases whose
referral is due — urgent first, then the oldest — and the packages made, each downloadable as a
zip (a form post: every download is audited and counted). A senior (``referrals.create``) ticks
cases on the due list, or presses the button in an item's Action panel, and may tick "with media"
(only the media the evidence store holds go in; each read is audited). The page shows facts and
hashes, never media. No JavaScript; each form carries its token. Queries are
:mod:`meldpunt.act.referrals`'; this module runs no SQL.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, RedirectResponse, Response

from meldpunt.accounts import CurrentUser, allowed
from meldpunt.act import referrals
from meldpunt.bootstrap import Services
from meldpunt.web.context import ctx, staff_translator
from meldpunt.web.forms import field, read_form, token_ok
from meldpunt.web.i18n import N_
from meldpunt.web.staff import require, staff_page

router = APIRouter(include_in_schema=False)

Download = Annotated[CurrentUser, Depends(require("referrals.download"))]
Create = Annotated[CurrentUser, Depends(require("referrals.create"))]

#: what ``?msg=`` may say (never text from the request)
MESSAGES = {
    "created": N_("The package is made and signed. Download it below."),
    "none": N_("Tick at least one case."),
}


def _purpose(user: CurrentUser) -> str:
    return f"referrals:{user.session_hash}"


def _item_purpose(item_id: int, user: CurrentUser) -> str:
    return f"referral-item:{item_id}:{user.session_hash}"


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    if n < 1_000_000:
        return f"{n / 1000:.1f} kB"
    return f"{n / 1_000_000:.1f} MB"


def _list_page(request: Request, user: CurrentUser, message: str = "", status: int = 200) -> Response:
    services = ctx(request).services
    due, total = referrals.due(services)
    made = referrals.list_referrals(services)
    return staff_page(
        request,
        "referral_list.html",
        user,
        status,
        due=due,
        due_total=total,
        made=[{"r": r, "size": _size(r.zip_bytes)} for r in made],
        may_create=allowed(user.role, "referrals.create"),
        token=ctx(request).tokens.issue(_purpose(user)),
        message=message,
    )


@router.get("/referrals")
def referrals_page(request: Request, user: Download, msg: str = "") -> Response:
    _ = staff_translator(request)
    return _list_page(request, user, _(MESSAGES[msg]) if msg in MESSAGES else "")


def _expired(request: Request, user: CurrentUser, back: str) -> Response:
    _ = staff_translator(request)
    return staff_page(
        request,
        "ws_message.html",
        user,
        400,
        heading=_("This form has expired"),
        message=_("Nothing was saved. Open the page again and repeat what you did."),
        back=back,
    )


def _ids(values: list[Any]) -> list[int] | None:
    out = []
    for v in values:
        if not isinstance(v, str) or not (v.isascii() and v.isdigit()) or len(v) > 12:
            return None
        out.append(int(v))
    return out


async def _create(request: Request, user: CurrentUser, item_ids: list[int], with_media: bool) -> Response:
    _ = staff_translator(request)
    try:
        made = await run_in_threadpool(
            referrals.create, ctx(request).services, item_ids, by=user.name, with_media=with_media
        )
    except referrals.NoSuchItems:
        raise HTTPException(404) from None
    except referrals.ReferralError as e:
        return await run_in_threadpool(
            _list_page, request, user, _("The package was not made: {why}", why=str(e)), 400
        )
    return RedirectResponse(f"/referrals?msg=created#ref-{made.referral.id}", status_code=303)


@router.post("/referrals")
async def create_for_chosen(request: Request, user: Create) -> Response:
    """A package for the cases ticked on the due list."""
    services: Services = ctx(request).services
    form = await read_form(request, services.settings.referral.max_items + 5)
    if not token_ok(request, form, _purpose(user)):
        return _expired(request, user, "/referrals")
    assert form is not None
    ids = _ids(form.getlist("item"))
    if ids is None:
        raise HTTPException(400)
    if not ids:
        return RedirectResponse("/referrals?msg=none", status_code=303)
    return await _create(request, user, ids, bool(field(form, "with_media")))


@router.post("/items/{item_id}/referral")
async def create_for_item(request: Request, item_id: int, user: Create) -> Response:
    """A package for one item, from its page's Action panel."""
    form = await read_form(request, 5)
    if not token_ok(request, form, _item_purpose(item_id, user)):
        return _expired(request, user, f"/items/{item_id}")
    assert form is not None
    return await _create(request, user, [item_id], bool(field(form, "with_media")))


@router.post("/referrals/{referral_id}/download")
async def download(request: Request, referral_id: int, user: Download) -> Response:
    """The package's zip, as an attachment; the download is audited and counted first."""
    if not 0 < referral_id < 2**63:  # beyond a BIGINT the database refused it: a 500
        raise HTTPException(404)
    _ = staff_translator(request)
    form = await read_form(request, 5)
    if not token_ok(request, form, _purpose(user)):
        return _expired(request, user, "/referrals")
    try:
        got = await run_in_threadpool(referrals.download, ctx(request).services, referral_id, by=user.name)
    except referrals.NoSuchReferral:
        raise HTTPException(404) from None
    except referrals.PackageGone:
        return await run_in_threadpool(
            _list_page,
            request,
            user,
            _("The package's zip is no longer on the server: make a new package."),
            410,
        )
    return FileResponse(
        got.zip_path,
        media_type="application/zip",
        filename=f"{got.reference}.zip",
        headers={"Cache-Control": "no-store"},
    )


def install(app: FastAPI) -> None:
    """The routes, and the item page's part (``referral_item.html``): the packages that cover the
    item and, for a senior, the button that makes one."""
    app.include_router(router)
    c = app.state.ctx
    services: Services = c.services

    def item_panel(item_id: int, user: CurrentUser) -> dict[str, Any]:
        may_create = allowed(user.role, "referrals.create")
        if not may_create and not allowed(user.role, "referrals.download"):
            return {"packages": [], "may_create": False, "token": ""}
        return {
            "packages": referrals.for_item(services, item_id),
            "may_create": may_create,
            "token": c.tokens.issue(_item_purpose(item_id, user)) if may_create else "",
        }

    c.env.globals.update(referral_panel=item_panel)
