"""Long lists on staff pages: the page and page size read from the query (bounded, never an
error), links to the neighbouring pages that keep every other parameter (so a filtered, sorted
page can be shared as a link), and an item's age in words."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from meldpunt.triage.search import PAGE_SIZES, Page, page_number, page_size
from meldpunt.web.i18n import Translator


def number(text: str) -> int | None:
    """A positive whole number from a query parameter; None for anything else."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


def bounds(page: str, size: str) -> tuple[int, int]:
    """(page number, page size) asked for, brought within bounds."""
    return page_number(number(page)), page_size(number(size))


def link(request: Request, **changes: Any) -> str:
    """This page's path and query with ``changes`` (None or "" drops a parameter)."""
    params = {k: v for k, v in request.query_params.items() if k != "msg"}
    for k, v in changes.items():
        if v is None or v == "":
            params.pop(k, None)
        else:
            params[k] = str(v)
    query = urlencode(sorted(params.items()))
    return request.url.path + ("?" + query if query else "")


def pager(request: Request, page: Page[Any]) -> dict[str, Any]:
    """What ``ws_pager.html`` shows: where the page is and links before and after it."""
    return {
        "page": page,
        "last_row": page.first_row + len(page.rows) - 1 if page.rows else 0,
        "previous": link(request, page=page.number - 1 if page.number > 2 else None)
        if page.has_previous
        else "",
        "next": link(request, page=page.number + 1) if page.has_next else "",
        "sizes": PAGE_SIZES,
    }


def age(delta: timedelta, _: Translator) -> str:
    """How long something has waited, in the largest whole unit: minutes, hours or days."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes < 60:
        return _("{n} min", n=minutes)
    if minutes < 48 * 60:
        return _("{n} h", n=minutes // 60)
    return _("{n} d", n=minutes // (24 * 60))
