"""Staff forms: bounded parsing, string fields, and the CSRF check every signed-in form makes.

One copy for every staff page (sign-in, workspace, preferences, oversight): a form token is checked
the same way everywhere, and a cross-site post is refused before its token is even looked at.
"""

from __future__ import annotations

from fastapi import Request
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from meldpunt.web.context import ctx


async def read_form(request: Request, max_fields: int) -> FormData | None:
    """The posted form (no files, at most ``max_fields`` fields); None when it cannot be read."""
    try:
        return await request.form(max_files=0, max_fields=max_fields)
    except (HTTPException, MultiPartException):
        return None


def field(form: FormData, name: str, limit: int = 1024) -> str:
    """A text field cut to ``limit`` characters; "" when missing or not text."""
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def token_ok(request: Request, form: FormData | None, purpose: str) -> bool:
    """The form came from our own page: not cross-site, and its token is ours, fresh, for ``purpose``."""
    if form is None or request.headers.get("sec-fetch-site") == "cross-site":
        return False
    return ctx(request).tokens.check(purpose, field(form, "token")) is not None
