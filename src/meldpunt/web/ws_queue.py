"""The triage queue: searched, filtered, sorted and paged by query parameters."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from meldpunt.triage.queue import QUEUE_SORTS
from meldpunt.triage.search import MAX_SEARCH
from meldpunt.web.context import staff_translator
from meldpunt.web.i18n import N_
from meldpunt.web.lists import age, bounds, pager
from meldpunt.web.ws_common import (
    MESSAGES,
    ROW_KEYS,
    QueueView,
    _page,
    _searched,
    triage,
)

router = APIRouter(include_in_schema=False)

#: the queue's filter by what an item still needs
NEEDS = {"first": N_("a first opinion"), "second": N_("a second opinion")}
#: the queue's sort orders, in words
SORTS = {
    "priority": N_("urgent first, then oldest"),
    "oldest": N_("oldest first"),
    "newest": N_("newest first"),
    "host": N_("by host"),
}

# -- the queue ----------------------------------------------------------------------------------------


@router.get("/queue")
def queue_page(
    request: Request,
    user: QueueView,
    source: str = "",
    needs: str = "",
    q: str = "",
    sort: str = "",
    page: str = "",
    size: str = "",
    msg: str = "",
) -> Response:
    """The queue: searched (URL, host, receipt, item, hash), filtered, sorted and paged by query
    parameters, so a link shows the same list to a colleague."""
    t = triage(request)
    chosen = source.strip()[:200] or None
    wanted = needs if needs in NEEDS else None
    order = sort if sort in QUEUE_SORTS else "priority"
    number, per_page = bounds(page, size)
    search = q.strip()[:MAX_SEARCH]
    found = t.queue_page(
        user.name,
        source=chosen,
        needs=wanted,
        search=search,
        sort=order,
        limit=per_page,
        offset=(number - 1) * per_page,
    )
    sources = sorted({e.source for e in t.entries(user.name, limit=500)} | {"public", "api:*"})
    # the workspace's headline figure, for everyone who works the queue: what nobody had to see
    counts = t.resolved_without_viewing()
    _ = staff_translator(request)
    now = t.now()
    return _page(
        request,
        "ws_queue.html",
        user,
        entries=found.rows,
        ages={e.item_id: age(e.age(now), _) for e in found.rows},
        keys=ROW_KEYS,
        sources=sources,
        source=chosen or "",
        needs=wanted or "",
        needs_choices={value: _(words) for value, words in NEEDS.items()},
        q=search,
        sort=order,
        sort_choices={value: _(words) for value, words in SORTS.items()},
        size=per_page,
        pager=pager(request, found),
        searched=_searched(search, _),
        counts=counts,
        message=_(MESSAGES[msg]) if msg in MESSAGES else "",
    )
