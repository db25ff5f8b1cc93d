"""The partner instances' door: ``POST /api/v1/partner/inbox`` takes a signed message, and
``GET /api/v1/partner/keys`` serves our public keys so a partner can configure us by copying them
(#11 part "wire").

No session, no CSRF token, no API token: the Ed25519 signature is the authentication
(``act.partners.receive`` checks it against the sender's configured keys). The body is limited to
``partner.max_message_bytes`` before it is read whole (the app's body limit answers 413), and the
raw bytes are handed on unparsed — the signature covers exactly them.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from meldpunt.act.partners import our_keys, receive
from meldpunt.web.context import ctx

INBOX_PATH = "/api/v1/partner/inbox"
KEYS_PATH = "/api/v1/partner/keys"

router = APIRouter(tags=["partners"])


@router.post(INBOX_PATH)
async def inbox(request: Request) -> JSONResponse:
    """A signed message from a partner instance: 200 ``{"status": "applied"}`` or
    ``{"status": "duplicate"}`` (applied before), else 4xx ``{"error": code, "message": reason}``."""
    services = ctx(request).services
    raw = await request.body()
    result = await run_in_threadpool(receive, services, raw)
    return JSONResponse(result.answer(), status_code=result.http)


@router.get(KEYS_PATH)
def keys(request: Request) -> JSONResponse:
    """Our name and the public keys we sign with (the current one, and retired ones still
    accepted): what a partner's ``meldpunt partner add --key`` needs."""
    services = ctx(request).services
    return JSONResponse(our_keys(services, services.clock.now()))


def too_large(limit: int) -> bytes:
    """The inbox's 413, in its own shape."""
    return json.dumps({"error": "too_large", "message": f"the message is larger than {limit} bytes"}).encode()
