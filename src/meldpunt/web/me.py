"""``/me``: a staff member's landing page, where every sign-in ends unless it began on another
page. What waits for them (per role: the open queue, second opinions, urgent items, disagreements,
their own claims), their viewing time today, where to go, and their account (time zone, recovery
codes, log out). No permission names: what a role may do shows as the links it gets."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from meldpunt.accounts import CurrentUser, allowed
from meldpunt.triage.waiting import waiting_for
from meldpunt.web.context import ctx
from meldpunt.web.prefs import wellness
from meldpunt.web.staff import accounts, purpose, require, staff_page, staff_zone
from meldpunt.web.ws_common import triage

router = APIRouter(include_in_schema=False)


@router.get("/me")
async def me(request: Request, user: Annotated[CurrentUser, Depends(require("prefs.own"))]) -> Response:
    c = ctx(request)

    def read() -> Response:
        viewer = allowed(user.role, "item.view")
        return staff_page(
            request,
            "staff_me.html",
            user,
            may=lambda permission: allowed(user.role, permission),
            waiting=waiting_for(triage(request), user.name),
            today=wellness(request).today(user.name) if viewer else None,
            zone=staff_zone(request),
            own_zone=bool(user.time_zone),
            recovery_left=accounts(request).recovery_codes_left(user.id),
            logout_token=c.tokens.issue(purpose("logout", user)),
            everywhere_token=c.tokens.issue(purpose("logout-everywhere", user)),
        )

    return await run_in_threadpool(read)
