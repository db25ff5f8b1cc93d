"""The analyst workspace: the triage queue (:mod:`~meldpunt.web.ws_queue`), an item's page (claim,
context as text, blurred greyscale thumbnails, reveal on purpose, the classification form:
:mod:`~meldpunt.web.ws_item`), and seniors' disagreements and decisions
(:mod:`~meldpunt.web.ws_decisions`); their shared parts are :mod:`~meldpunt.web.ws_common`.

Wellness by default: the browser only ever gets renderings made on the server
(:func:`meldpunt.review.render.render_for_review`), never a medium's original bytes; thumbnails are
blurred and greyscale. A reveal is a POST (with the page's form token) that is written to the audit
log and answered with a short-lived, single-use grant: the sharp rendering is served only with it
(:mod:`meldpunt.triage.reveal` decides the single use). Every answer carries ``Cache-Control:
no-store`` (the app's :class:`SecurityHeaders` sets it on all but /static/). The second analyst's
page is built from :meth:`Triage.item_for_review`, which never holds an opinion: the second opinion
is given blind.

Thumbnails follow the analyst's preferences (:mod:`meldpunt.wellness`: blurred, greyscale, 320
pixels unless the analyst or the administrator's defaults say otherwise; video is always silent).
Each item page and each reveal counts toward the analyst's viewing time of the day; every workspace
page shows it, with a break reminder or, past the daily limit, advice to stop (and reveals refused
when the administrator's defaults say so).
"""

from __future__ import annotations

from fastapi import APIRouter

from meldpunt.triage.reveal import grant_used, use_grant
from meldpunt.web import ws_decisions, ws_item, ws_queue
from meldpunt.web.ws_common import REVEAL_SECONDS, render_sandbox, triage

router = APIRouter(include_in_schema=False)
router.include_router(ws_queue.router)
router.include_router(ws_item.router)
router.include_router(ws_decisions.router)

__all__ = ["REVEAL_SECONDS", "grant_used", "render_sandbox", "router", "triage", "use_grant"]
