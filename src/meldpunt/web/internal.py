"""A minimal internal page: the items and the step of the walk each is in (analyst accounts come
later). Protected by an API token, given as ``Authorization: Bearer <token>`` or, from a browser,
as the password of HTTP Basic (any user name). Never as a query parameter: those end up in logs.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from meldpunt.domain.reports import ItemState
from meldpunt.pipeline.intake import check_api_token, list_items
from meldpunt.web.context import ctx, request_language

router = APIRouter(include_in_schema=False)


def _token(request: Request) -> str:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[2]
    return ""


@router.get("/internal/items")
async def items_page(request: Request) -> Response:
    c = ctx(request)
    lang = request_language(request)
    token = _token(request)
    name = await run_in_threadpool(check_api_token, c.services, token) if token else None
    if name is None:
        response = c.render(request, "error.html", lang, status=401, kind="auth")
        response.headers["WWW-Authenticate"] = 'Basic realm="meldpunt internal", charset="UTF-8"'
        return response
    state = request.query_params.get("state") or None
    states = [s.value for s in ItemState]
    if state not in states:
        state = None
    items = await run_in_threadpool(list_items, c.services, state, 200)
    return c.render(request, "items.html", lang, items=items, states=states, state=state or "")
