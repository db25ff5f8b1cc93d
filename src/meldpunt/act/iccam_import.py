"""The ICCAM bridge's import: the content items ICCAM assigns to this hotline (its work queue)
become reports in our walk, and what other hotlines later record on them in ICCAM goes on our item's
timeline — each once.

A poll (``iccam.poll_minutes``, started by the ``iccam`` tick in :mod:`meldpunt.act.iccam`) runs
:func:`run_import`: the queue (``no-reference``: content assigned to our country with no reference
of ours) gives content items; each becomes a report (source ``iccam``, idempotency key the content
ID, so a second run replays instead of adding), is linked in ``iccam_links``, then marked with our
reference in ICCAM, which takes it out of the queue. Imported content is read again on each poll;
its actions are written to the timeline (ICCAM_IMPORTED) once each (``iccam_seen``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from meldpunt.act import timeline
from meldpunt.act.context import ActNeeds, Worker
from meldpunt.act.iccam import client_for, insert_or_ignore, mapping_for, reference_of, set_state
from meldpunt.domain.acting import EventKind
from meldpunt.iccam.client import IccamClient, IccamError
from meldpunt.iccam.mapping import IccamMapping, MappingError
from meldpunt.pipeline.intake import ReportIn, submit_report
from meldpunt.pipeline.jobs import ClaimedJob
from meldpunt.settings import Settings
from meldpunt.store.iccam import IccamLink, IccamSeen

log = logging.getLogger(__name__)

#: imported content items read again per poll for new actions
FOLLOW_LIMIT = 200


# --- importing ----------------------------------------------------------------------------------


@dataclass
class ImportResult:
    imported: int = 0
    known: int = 0
    actions: int = 0
    errors: list[str] | None = None


def _seen(conn: Connection, content_id: int, key: str, item_id: int, now: datetime) -> bool:
    """Note ``key`` as written for ``content_id``; False when it was already."""
    stmt = insert_or_ignore(conn.dialect.name, IccamSeen, ("content_id", "key"))
    return (
        conn.execute(stmt.values(content_id=content_id, key=key, item_id=item_id, at=now)).first() is not None
    )


def _record_actions(
    conn: Connection, mapping: IccamMapping, item_id: int, content: Any, now: datetime
) -> int:
    written = 0
    for action in content.actions:
        key = f"{action.type}@{action.date.isoformat()}"
        if _seen(conn, content.id, key, item_id, now):
            timeline.record(
                conn,
                EventKind.ICCAM_IMPORTED,
                at=now,
                item_id=item_id,
                actor="iccam",
                detail={
                    "what": "action",
                    "action": mapping.word(action.type),
                    "action_type": action.type,
                    "action_date": action.date.isoformat(),
                    "analyst": action.analyst[:200],
                    "content_id": content.id,
                },
            )
            written += 1
    return written


def run_import(
    services: ActNeeds, *, client: IccamClient | None = None, progress: Any = None
) -> ImportResult:
    """One import pass: the queue's content items into our walk, then new actions on imported ones.
    Safe to run twice and in several workers at once."""
    settings = services.settings
    mapping = mapping_for(settings)
    result = ImportResult(errors=[])
    with _client(settings, client) as iccam:
        entries = iccam.queue(settings.iccam.queue)
        for entry in entries:
            try:
                _import_one(services, iccam, mapping, entry.report_id, entry.content_id, result)
            except IccamError as exc:
                assert result.errors is not None
                result.errors.append(f"content {entry.content_id}: {exc}")
            if progress is not None:
                progress()
        with services.engine.connect() as conn:
            follow = conn.execute(
                select(IccamLink.item_id, IccamLink.content_id)
                .where(IccamLink.direction == "import", IccamLink.content_id.is_not(None))
                .order_by(IccamLink.updated_at)
                .limit(FOLLOW_LIMIT)
            ).all()
        for item_id, content_id in follow:
            try:
                content = iccam.get_content(int(content_id or 0))
            except IccamError as exc:
                assert result.errors is not None
                result.errors.append(f"content {content_id}: {exc}")
                continue
            now = services.clock.now()
            with services.engine.begin() as conn:
                result.actions += _record_actions(conn, mapping, int(item_id), content, now)
                conn.execute(update(IccamLink).where(IccamLink.item_id == item_id).values(updated_at=now))
    return result


@contextmanager
def _client(settings: Settings, given: IccamClient | None) -> Iterator[IccamClient]:
    if given is not None:
        yield given
        return
    with client_for(settings) as made:
        yield made


def _import_one(
    services: ActNeeds,
    iccam: IccamClient,
    mapping: IccamMapping,
    report_id: int,
    content_id: int,
    result: ImportResult,
) -> None:
    settings = services.settings
    with services.engine.connect() as conn:
        known = conn.execute(select(IccamLink.item_id).where(IccamLink.content_id == content_id)).scalar()
    if known is not None:
        result.known += 1
        iccam.put_hotline_reference(content_id, reference_of(settings, int(known)))
        return
    content = iccam.get_content(content_id)
    # the reporting hotline's own reference is the report's (the content's is ours, still empty)
    their_reference = iccam.get_report(content.report_id).reference
    receipt = submit_report(
        services,  # type: ignore[arg-type]
        ReportIn(
            urls=[content.url],
            source="iccam",
            idempotency_key=f"iccam:{content.id}",
            description=f"ICCAM report {content.report_id}, content {content.id}"
            + (f", reported by {content.reporting_hotline}" if content.reporting_hotline else "")
            + (f" (their reference {their_reference})" if their_reference else ""),
        ),
    )
    item_id = receipt.item_ids[0]
    now = services.clock.now()
    classification = mapping.classification_of(content.assessment, content.memo) if content.assessment else {}
    with services.engine.begin() as conn:
        stmt = insert_or_ignore(conn.dialect.name, IccamLink, ("item_id",))
        conn.execute(
            stmt.values(
                item_id=item_id,
                direction="import",
                report_id=content.report_id,
                content_id=content.id,
                reference=their_reference[:200],
                hotline=content.reporting_hotline[:200],
                created_at=now,
                updated_at=now,
            )
        )
        if _seen(conn, content.id, "imported", item_id, now):
            timeline.record(
                conn,
                EventKind.ICCAM_IMPORTED,
                at=now,
                item_id=item_id,
                actor="iccam",
                detail={
                    "what": "report",
                    "action": content.reporting_hotline or "?",
                    "report_id": content.report_id,
                    "content_id": content.id,
                    "hotline": content.reporting_hotline,
                    "their_reference": their_reference,
                    "hosting_country": content.country,
                    "classification": classification,
                },
            )
            result.imported += 1
        else:
            result.known += 1
        result.actions += _record_actions(conn, mapping, item_id, content, now)
    iccam.put_hotline_reference(content.id, reference_of(settings, item_id))


def step_import(services: ActNeeds, worker: Worker, job: ClaimedJob) -> str:
    """The poll's job: an import pass; an ICCAM error waits for the next poll (the clock's)."""
    try:
        result = run_import(services)
        word = f"imported {result.imported}, actions {result.actions}"
        error = "; ".join(result.errors or [])[:2000]
    except (IccamError, MappingError) as exc:
        word, error = "failed", str(exc)[:2000]
        log.warning("ICCAM import: %s", exc)
    with services.engine.begin() as conn:
        set_state(conn, "import_error", error)
        worker.queue.finish(conn, job)
    return word
