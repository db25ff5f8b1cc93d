"""The statistics page for seniors (#13): the hotline's figures for a period, as charts drawn on the
server (SVG, readable without JavaScript, each with its text alternative), tables beside them, and
every figure downloadable as CSV. Viewing the page and every download are audited. The figures
are :mod:`meldpunt.act.figures`'s; the charts :mod:`meldpunt.act.charts`'s."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from meldpunt.accounts import CurrentUser
from meldpunt.act import charts as chart_module
from meldpunt.act.figures import TABLE_KEYS, Figures, Period, compute
from meldpunt.web.context import ctx, staff_language
from meldpunt.web.i18n import N_, Translator
from meldpunt.web.staff import require, staff_page

router = APIRouter(include_in_schema=False)

View = Annotated[CurrentUser, Depends(require("stats.view"))]

#: each figure's heading (the CSV's link names it too)
TITLES = {
    "intake": N_("Reports and items per week by channel"),
    "decisions": N_("Decisions"),
    "countries": N_("Hosting countries"),
    "removal": N_("Time to removal"),
    "removal_distribution": N_("Time to removal, distribution"),
    "removal_by_provider": N_("Time to removal by provider"),
    "removal_by_country": N_("Time to removal by hosting country"),
    "notices": N_("Notices"),
    "forwards": N_("Forwards by partner and outcome"),
    "urgent": N_("Urgent cases"),
    "viewing": N_("Analysts' viewing time"),
}
assert tuple(TITLES) == TABLE_KEYS

#: what each figure counts: the page's (and the annual report's) method notes
NOTES = {
    "intake": N_(
        "Reports received and items (URLs) first reported, per ISO week (Monday to Sunday, UTC), by the channel of the report: the public form, the API, or a partner hotline's forward."
    ),
    "decisions": N_(
        "Items first reported in the period that have a final decision, by a hash list or by analysts. Confirmed illegal: a takedown was opened or the final classification is illegal. Settled without any human view: decided by a hash list and never opened or revealed by anyone (the audit log)."
    ),
    "countries": N_(
        "The confirmed illegal items by the country their host was located in when the takedown was opened (unknown: not located)."
    ),
    "removal": N_(
        "Takedowns confirmed removed in the period (re-checks found the content gone), hours from the report and from the first notice. The median is the middle value; 90% were removed within the 90th percentile."
    ),
    "notices": N_(
        "Notices sent to abuse contacts in the period; at the period's end, those sent and not closed (outstanding) and those escalated to the overdue queue and not closed (overdue)."
    ),
    "forwards": N_(
        "Items forwarded to partner hotlines in the period, by the partner's newest status (failed: not delivered; no answer: delivered, nothing back yet)."
    ),
    "urgent": N_(
        "Reports marked urgent, urgent alerts raised in the period, acknowledged by its end, and the minutes from raising to acknowledgement."
    ),
    "viewing": N_(
        "Hours analysts spent viewing content, all together, per week — never per person. A week with fewer than three people viewing shows no hours."
    ),
}

#: charts drawn per (language, figures): a second view of the same figures draws nothing
_CACHE: OrderedDict[tuple[str, str], list[dict[str, str]]] = OrderedDict()
_CACHE_SIZE = 16
_LOCK = threading.Lock()


class BadPeriod(ValueError):
    """The dates asked for are not a period."""


def _period(request: Request) -> Period:
    """The period asked for (``from``, ``to``: ISO dates, both included); by default this year
    to today, by the services' clock; :class:`BadPeriod` when they are not one."""
    today = ctx(request).services.clock.now().date()
    raw_from = request.query_params.get("from", "").strip()
    raw_to = request.query_params.get("to", "").strip()
    try:
        first = date.fromisoformat(raw_from) if raw_from else date(today.year, 1, 1)
        last = (
            date.fromisoformat(raw_to)
            if raw_to
            else (today if not raw_from else first.replace(month=12, day=31))
        )
        return Period.days(first, last)
    except ValueError as e:
        raise BadPeriod(str(e)) from None


def _bad_period(request: Request, user: CurrentUser) -> Response:
    """The form again, with what is wrong, as a 422."""
    return staff_page(
        request,
        "statistics_bad.html",
        user,
        status=422,
        given_from=request.query_params.get("from", "")[:20],
        given_to=request.query_params.get("to", "")[:20],
    )


def _svgs(figures: Figures, language: str) -> list[dict[str, str]]:
    t = Translator(language)
    digest = hashlib.sha256("".join(table.csv() for table in figures.tables.values()).encode()).hexdigest()
    key = (language, digest)
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    drawn = [
        {"key": c.key, "title": c.title, "desc": c.desc, "svg": c.svg()}
        for c in chart_module.charts(figures, t, language)
    ]
    with _LOCK:
        _CACHE[key] = list(drawn)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return drawn


def _query(period: Period) -> str:
    return f"from={period.first_day.isoformat()}&to={period.last_day.isoformat()}"


@router.get("/statistics")
def statistics_page(request: Request, user: View) -> Response:
    """Every figure of the period: key figures, charts, tables, CSV links, method notes."""
    try:
        period = _period(request)
    except BadPeriod:
        return _bad_period(request, user)
    services = ctx(request).services
    figures = compute(services.engine, period)
    language = staff_language(request)
    services.audit.append(
        user.name,
        "statistics.view",
        "statistics",
        {"from": period.first_day.isoformat(), "to": period.last_day.isoformat()},
    )
    drawn = {c["key"]: c for c in _svgs(figures, language)}
    num = chart_module.Numbers(language)
    return staff_page(
        request,
        "statistics.html",
        user,
        f=figures,
        period=period,
        query=_query(period),
        charts=drawn,
        titles=TITLES,
        notes=NOTES,
        namer=chart_module.country_namer(language, Translator(language)),
        # every number as the page's language writes it (1,234 · 1.234 · 1 234); the CSVs stay raw
        num=num,
        share=lambda part, whole: num.percent(Figures.share(part, whole)),
        hours=num.one,
    )


@router.get("/statistics/{key}.csv")
def statistics_csv(request: Request, key: str, user: View) -> Response:
    """One figure of the period as CSV (UTF-8, a header line of stable names)."""
    if key not in TABLE_KEYS:
        raise HTTPException(404, f"no figure {key!r}: one of {', '.join(TABLE_KEYS)}")
    try:
        period = _period(request)
    except BadPeriod:
        return _bad_period(request, user)
    services = ctx(request).services
    figures = compute(services.engine, period)
    services.audit.append(
        user.name,
        "statistics.download",
        f"statistics:{key}",
        {"from": period.first_day.isoformat(), "to": period.last_day.isoformat()},
    )
    name = f"meldpunt-{key}-{period.first_day.isoformat()}-{period.last_day.isoformat()}.csv"
    return Response(
        figures.tables[key].csv(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
