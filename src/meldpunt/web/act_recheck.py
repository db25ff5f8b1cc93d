"""The removals page (#10 part "recheck"): items confirmed removed with their time to removal from
the first notice and from the report, and per provider the count and the median, as a table and a
bar chart drawn on the server (inline SVG: no JavaScript, readable on a phone)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from meldpunt.accounts import CurrentUser
from meldpunt.act.removals import ProviderFigures, removals
from meldpunt.web.context import ctx
from meldpunt.web.i18n import N_
from meldpunt.web.staff import require, staff_page

router = APIRouter(include_in_schema=False)

View = Annotated[CurrentUser, Depends(require("actions.view"))]

#: what a removal's reason (the last re-check's word) says, translated when shown
REASONS = {
    "404": N_("not found (404)"),
    "410": N_("gone (410)"),
    "451": N_("unavailable for legal reasons (451)"),
    "dns_gone": N_("the domain name no longer exists"),
    "address_gone": N_("the domain name no longer points to a public address"),
    "media_gone": N_("the page no longer shows the media"),
    "media_changed": N_("the media there no longer match"),
}

#: the chart's geometry (SVG user units; the SVG scales to the page's width)
CHART_WIDTH = 360
LABEL_WIDTH = 120
BAR_HEIGHT = 14
ROW_HEIGHT = 40


def reason_word(reason: str) -> str:
    """The code at the start of a stored reason (``"404: HTTP 404"`` -> ``"404"``)."""
    return reason.split(":", 1)[0].strip()


def chart(providers: list[ProviderFigures]) -> dict[str, Any]:
    """Bars for the providers that removed something: the median hours from the first notice
    (and, lighter, from the report), scaled to the slowest."""
    shown = [p for p in providers if p.removed]
    top = max([p.median_from_notice or 0 for p in shown] + [p.median_from_report or 0 for p in shown] + [1])
    room = CHART_WIDTH - LABEL_WIDTH - 50
    bars = []
    for i, p in enumerate(shown):
        y = i * ROW_HEIGHT + 4
        bars.append(
            {
                "provider": p.provider,
                "y": y,
                "notice": None
                if p.median_from_notice is None
                else max(1, round(room * p.median_from_notice / top)),
                "report": None
                if p.median_from_report is None
                else max(1, round(room * p.median_from_report / top)),
                "notice_minutes": p.median_from_notice,
                "report_minutes": p.median_from_report,
            }
        )
    return {
        "bars": bars,
        "width": CHART_WIDTH,
        "label": LABEL_WIDTH,
        "bar": BAR_HEIGHT,
        "height": max(1, len(bars)) * ROW_HEIGHT + 8,
    }


@router.get("/act/removals")
def removals_page(request: Request, user: View) -> Response:
    """Removed items and the time they took, per provider."""
    figures = removals(ctx(request).services.engine)
    return staff_page(
        request,
        "act_recheck_removals.html",
        user,
        figures=figures,
        chart=chart(figures.providers),
        reasons=REASONS,
        reason_word=reason_word,
    )
