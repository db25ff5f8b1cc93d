"""A minimal internal page: the items and the step of the walk each is in (analyst accounts come
later). Protected by an API token that holds the scope ``internal:read``, given as ``Authorization: Bearer <token>`` or, from a browser,
as the password of HTTP Basic (any user name). Never as a query parameter: those end up in logs.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from meldpunt.domain.reports import ItemState
from meldpunt.pipeline.api_tokens import authenticate
from meldpunt.pipeline.intake import list_items
from meldpunt.web.context import ctx, request_language

router = APIRouter(include_in_schema=False)
SCOPE = "internal:read"


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
    client = await run_in_threadpool(authenticate, c.services, token) if token else None
    if client is None:
        response = c.render(request, "error.html", lang, status=401, kind="auth")
        response.headers["WWW-Authenticate"] = 'Basic realm="meldpunt internal", charset="UTF-8"'
        return response
    if not client.may(SCOPE):
        return c.render(request, "error.html", lang, status=403, kind="scope", scope=SCOPE)
    state = request.query_params.get("state") or None
    states = [s.value for s in ItemState]
    if state not in states:
        state = None
    items = await run_in_threadpool(list_items, c.services, state, 200)
    return c.render(request, "items.html", lang, items=items, states=states, state=state or "")
