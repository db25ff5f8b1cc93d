"""The CyberTipline export on the item page: seniors (``cybertip.export``) download the item's
CyberTipline-style XML (``act.cybertip``) with one button. The button posts the item page's own
form token (a download changes the audit log and the timeline, so it is not a GET a link on
another site could trigger); the answer is the file itself. Items that cannot be reported say why
instead of offering the button."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response

from meldpunt.accounts import CurrentUser, allowed
from meldpunt.act import cybertip as cybertip_service
from meldpunt.act.context import ActNeeds
from meldpunt.web.context import ctx, staff_translator
from meldpunt.web.forms import read_form, token_ok
from meldpunt.web.i18n import N_, Translator
from meldpunt.web.staff import require, staff_page
from meldpunt.web.ws_common import _item_purpose

router = APIRouter()
Export = Annotated[CurrentUser, Depends(require("cybertip.export"))]

PERMISSION = "cybertip.export"
#: what the panel says for each readiness (``act.cybertip.readiness``)
STATES = {
    "ready": N_(
        "One XML file for NCMEC's CyberTipline: the URL, hosting facts, the hashes and the US category of its files; never media."
    ),
    "not_illegal": N_("Only an item found illegal can be exported to the CyberTipline."),
    "no_reporter": N_(
        "Set the reporter's e-mail address (referral.cybertip_reporter_email) to export to the CyberTipline."
    ),
}
HEADING = N_("CyberTipline export")
NOT_EXPORTED = N_("Not exported")


def panel(services: ActNeeds) -> Callable[[int, str | None, Translator], dict[str, Any] | None]:
    """The Jinja global ``cybertip_panel(item_id, role, t)``: None for roles without the
    permission (or an unknown item), else whether the button is offered and why not."""

    def build(item_id: int, role: str | None, t: Translator) -> dict[str, Any] | None:
        if not allowed(role, PERMISSION):
            return None
        state = cybertip_service.readiness(services, item_id)
        if state == "missing":
            return None
        return {"ready": state == "ready", "words": t(STATES[state])}

    return build


@router.post("/items/{item_id}/cybertip.xml")
async def download(request: Request, item_id: int, user: Export) -> Response:
    """The item's export, as a file; audited and on the item's timeline."""
    form = await read_form(request, max_fields=5)
    if not token_ok(request, form, _item_purpose(item_id, user)):
        _ = staff_translator(request)
        return staff_page(
            request,
            "ws_message.html",
            user,
            400,
            heading=_("This form has expired"),
            message=_("Nothing was saved. Open the page again and repeat what you did."),
            back=f"/items/{item_id}",
        )
    services = ctx(request).services
    try:
        made = await run_in_threadpool(cybertip_service.export_cybertip, services, [item_id], actor=user.name)
    except cybertip_service.NotExportable as e:
        if e.missing:
            raise HTTPException(404) from None
        return _refused(request, user, item_id, "not_illegal")
    except cybertip_service.CybertipError:
        return _refused(request, user, item_id, "no_reporter")
    return Response(
        made.xml,
        media_type="application/xml",
        headers={
            "Content-Disposition": f'attachment; filename="cybertip-item-{item_id}.xml"',
            "Cache-Control": "no-store",
            "X-Content-SHA256": made.sha256,
        },
    )


def _refused(request: Request, user: CurrentUser, item_id: int, state: str) -> Response:
    _ = staff_translator(request)
    return staff_page(
        request,
        "ws_message.html",
        user,
        422,
        heading=_(NOT_EXPORTED),
        message=_(STATES[state]),
        back=f"/items/{item_id}",
    )


def install(app: FastAPI) -> None:
    """The download route, and the item page's panel as a template global."""
    app.include_router(router)
    app.state.ctx.env.globals["cybertip_panel"] = panel(app.state.ctx.services)
