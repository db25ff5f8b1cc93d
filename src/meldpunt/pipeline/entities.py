"""Entities found where reports and pages bring them in (#13 link analysis): a report's
description (the ``entities`` job, enqueued by intake in the report's transaction) and an item's
fetched page (by the walk's fetch step, in the transaction that records the fetch).

Only the entities are kept, never the page text (data minimisation). Phone numbers written
without ``+`` are read in the hotline's country (``act.home_country``). A report whose
description is deleted later takes its links along (``ON DELETE CASCADE``); orphans are pruned by
:func:`meldpunt.store.entities.prune_orphans`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, select

from meldpunt.fetch.extract import decode_html
from meldpunt.pipeline.jobs import ClaimedJob, enqueue
from meldpunt.settings import Settings
from meldpunt.store.entities import link_entities
from meldpunt.store.reports import Report

if TYPE_CHECKING:
    from meldpunt.entities import Entity
    from meldpunt.fetch.client import Page
    from meldpunt.pipeline.walk import Walker

log = logging.getLogger(__name__)

#: the job kind that reads a report's description (key ``report:<id>``)
ENTITIES = "entities"


def region(settings: Settings) -> str | None:
    """The country phone numbers without ``+`` are read in."""
    code = settings.act.home_country.strip().upper()
    return code if len(code) == 2 and code.isalpha() else None


def enqueue_report(conn: Connection, report_id: int) -> None:
    """Ask for the entities of a report's description, in the caller's transaction."""
    enqueue(conn, ENTITIES, f"report:{report_id}", {"report_id": report_id}, priority=-5, max_attempts=3)


def pairs(found: list[Entity]) -> list[tuple[str, str]]:
    return [(e.kind, e.value) for e in found]


def page_entities(page: Page, settings: Settings) -> list[Entity]:
    """The entities of a fetched HTML page (none for a direct media link). Never raises: a page
    that trips the extractor loses its entities, not its fetch."""
    if page.direct_media or not page.body:
        return []
    from meldpunt.entities import extract_page  # phonenumbers and schwifty: loaded when first used

    try:
        return extract_page(decode_html(page.body), page.final_url, region=region(settings))
    except Exception:
        log.exception("entity extraction failed on %s", page.final_url)
        return []


def now_of(services: object) -> datetime:
    """The injected clock's time (``Services.clock.now``); the wall clock for a bare walk."""
    now = getattr(getattr(services, "clock", None), "now", None)
    value = now() if callable(now) else None
    return value if isinstance(value, datetime) else datetime.now(UTC)


def step_report_entities(walker: Walker, job: ClaimedJob) -> str:
    """The ``entities`` job: a report's description read, its entities linked to it."""
    report_id = int(job.payload["report_id"])
    with walker.engine.connect() as conn:
        description = conn.execute(select(Report.description).where(Report.id == report_id)).scalar()
    from meldpunt.entities import extract

    found = extract(description or "", region=region(walker.settings))
    with walker.engine.begin() as conn:
        if description is not None:
            link_entities(conn, pairs(found), now_of(walker.services), report_id=report_id)
        walker.queue.finish(conn, job)
    return f"{len(found)} entities"


__all__ = ["ENTITIES", "enqueue_report", "now_of", "page_entities", "pairs", "region", "step_report_entities"]
