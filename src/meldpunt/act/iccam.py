"""The ICCAM bridge's database side: export our classified items and what happens to them to ICCAM;
the tick that plans, sends and starts the import's polls; the bridge's status.

Export is a plan, then calls. The ``iccam`` tick plans (``iccam_sends``, one row per item and
thing: its ``report``, its ``assessment``, each ``action:N`` as the timeline shows it happened) and
enqueues the due rows — per item only the first unsent one, so ICCAM hears the report before the
assessment and the actions in the order they happened. An ``iccam_send`` job makes one call and
records its outcome in one transaction: sent (with the timeline line ICCAM_EXPORTED), or tried
again later by the injected clock (timeouts, 429, 5xx; backoff), or failed with ICCAM's reason
(4xx, or the attempts spent: ICCAM_FAILED on the item's timeline, listed by ``meldpunt iccam
status``). A row that is sent is never sent again; a call whose answer was lost (``unsure``) is
checked before it is repeated: an action is looked for on the content item, and a report's
reference is one ICCAM refuses twice, so a lost answer cannot make a second report.

Import (:mod:`meldpunt.act.iccam_import`) is a poll that this module's tick starts every
``iccam.poll_minutes``, by the injected clock.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Connection, and_, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased

from meldpunt.act import timeline
from meldpunt.act.context import ActNeeds, Worker, utc
from meldpunt.domain.acting import EventKind
from meldpunt.iccam.client import Credentials, IccamClient, IccamError, IccamRefused, IccamRetryable
from meldpunt.iccam.mapping import IccamMapping, MappingError, load
from meldpunt.iccam.shapes import Action, IccamReport, ReportUrl, ShapeError
from meldpunt.pipeline.jobs import ClaimedJob, enqueue
from meldpunt.settings import Settings
from meldpunt.store.acting import ActionEvent, Location
from meldpunt.store.iccam import IccamLink, IccamSend, IccamState
from meldpunt.store.reports import Item, Report
from meldpunt.store.triage import TriageStatus

log = logging.getLogger(__name__)

SEND = "iccam_send"
IMPORT = "iccam_import"
BACKOFF_FIRST = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=2)
SEQ_REPORT, SEQ_ASSESSMENT, SEQ_VERDICT, SEQ_EVENTS = 0, 1, 2, 10

#: what ends a send: the job's ``queue.finish`` in the transaction of its outcome (nothing in the CLI)
Finish = Callable[[Connection], None]


def enabled(settings: Settings) -> bool:
    return bool(settings.iccam.url.strip())


def client_for(settings: Settings) -> IccamClient:
    s = settings.iccam
    return IccamClient(s.url, Credentials(s.username, s.password), s.timeout_s, max_bytes=s.max_answer_bytes)


def mapping_for(settings: Settings) -> IccamMapping:
    return load(settings.iccam.mapping_file or None)


def reference_of(settings: Settings, item_id: int) -> str:
    return f"{settings.iccam.reference_prefix}-{item_id}"


def analyst_of(settings: Settings) -> str:
    return settings.iccam.analyst or settings.iccam.username or "meldpunt"


def backoff(attempts: int) -> timedelta:
    wait: timedelta = BACKOFF_FIRST * 2 ** min(16, max(0, attempts - 1))
    return min(BACKOFF_MAX, wait)


@cache
def insert_or_ignore(dialect: str, table: Any, keys: tuple[str, ...]) -> Any:
    dialect_insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # RETURNING tells whether the row went in (a rowcount after ON CONFLICT is not to be trusted)
    key = list(table.__table__.primary_key.columns)
    return dialect_insert(table).on_conflict_do_nothing(index_elements=list(keys)).returning(*key)


def _plan(
    conn: Connection, item_id: int, what: str, seq: int, now: datetime, payload: dict[str, Any]
) -> bool:
    stmt = insert_or_ignore(conn.dialect.name, IccamSend, ("item_id", "what"))
    values = {
        "item_id": item_id,
        "what": what,
        "seq": seq,
        "payload": json.dumps(payload, sort_keys=True),
        "state": "queued",
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": "",
        "unsure": False,
        "created_at": now,
    }
    return conn.execute(stmt.values(values)).first() is not None


# --- planning -----------------------------------------------------------------------------------


def _values(final: str) -> dict[str, str]:
    try:
        data = json.loads(final)
    except ValueError:
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def plan_exports(services: ActNeeds, *, since: datetime | None = None) -> int:
    """Plan what ICCAM has not heard yet: the report and assessment of items classified since
    ``since`` (not those that came from ICCAM), the verdict "not illegal", and an action for each
    mapped timeline line of an exported item. The number of rows planned."""
    settings = services.settings
    mapping = mapping_for(settings)
    now = services.clock.now()
    planned = 0
    has_location = exists().where(Location.item_id == TriageStatus.item_id)
    imported = exists().where(
        and_(IccamLink.item_id == TriageStatus.item_id, IccamLink.direction == "import")
    )
    reported = exists().where(and_(IccamSend.item_id == TriageStatus.item_id, IccamSend.what == "report"))
    query = select(TriageStatus.item_id, TriageStatus.final, TriageStatus.finalized_at, has_location).where(
        TriageStatus.final != "", ~imported, ~reported
    )
    if since is not None:
        query = query.where(TriageStatus.finalized_at >= since)
    with services.engine.begin() as conn:
        for item_id, final, finalized_at, located in conn.execute(query).all():
            values = _values(final)
            if mapping.classification.code(values) is None:
                continue  # a status ICCAM has no code for: nothing to say
            illegal = mapping.illegal(values)
            if illegal and not located:
                continue  # wait for the hosting facts (the locate step)
            planned += _plan(conn, item_id, "report", SEQ_REPORT, now, {})
            planned += _plan(conn, item_id, "assessment", SEQ_ASSESSMENT, now, {})
            if not illegal and mapping.actions.get("not_illegal"):
                at = utc(finalized_at).isoformat() if finalized_at is not None else now.isoformat()
                code = mapping.actions["not_illegal"]
                planned += _plan(
                    conn, item_id, f"action:{code}", SEQ_VERDICT, now, {"at": at, "kind": "not_illegal"}
                )
        sends = aliased(IccamSend)
        kinds = [k for k in mapping.actions if k != "not_illegal"]
        # the timeline lines of exported items, within the same window (a tick must stay cheap)
        lines = (
            select(ActionEvent.id, ActionEvent.item_id, ActionEvent.kind, ActionEvent.at, ActionEvent.detail)
            .join(sends, and_(sends.item_id == ActionEvent.item_id, sends.what == "report"))
            .where(ActionEvent.kind.in_(kinds))
            .order_by(ActionEvent.id)
        )
        if since is not None:
            lines = lines.where(ActionEvent.at >= since)
        events = conn.execute(lines).all()
        for ev in events:
            try:
                facts = json.loads(ev.detail or "{}")
            except ValueError:
                facts = {}
            action = mapping.action_for(ev.kind, facts if isinstance(facts, dict) else {})
            if action is None or ev.item_id is None:
                continue
            payload = {"at": utc(ev.at).isoformat(), "kind": ev.kind, "event_id": ev.id}
            planned += _plan(conn, int(ev.item_id), f"action:{action}", SEQ_EVENTS + ev.id, now, payload)
    return planned


def _due(services: ActNeeds) -> list[Any]:
    """Each item's first unsent row, when it is queued and due."""
    now = services.clock.now()
    earlier = aliased(IccamSend)
    blocked = exists().where(
        and_(earlier.item_id == IccamSend.item_id, earlier.state != "sent", earlier.seq < IccamSend.seq)
    )
    with services.engine.connect() as conn:
        return list(
            conn.execute(
                select(IccamSend.id, IccamSend.attempts, IccamSend.next_attempt_at)
                .where(
                    IccamSend.state == "queued",
                    IccamSend.next_attempt_at.is_not(None),
                    IccamSend.next_attempt_at <= now,
                    ~blocked,
                )
                .order_by(IccamSend.item_id, IccamSend.seq)
            ).all()
        )


def _due_ids(services: ActNeeds) -> list[int]:
    return [int(r.id) for r in _due(services)]


def enqueue_due(services: ActNeeds) -> int:
    """Enqueue a send job for each item's first unsent row when it is due (one job key per attempt
    and schedule, so every worker may run this at once). The number enqueued."""
    added = 0
    due = _due(services)
    with services.engine.begin() as conn:
        for send_id, attempts, due_at in due:
            # a row put back by a person (retry_failed) is due again at a new time: a new job key
            key = f"iccam:{send_id}:{attempts + 1}:{int(utc(due_at).timestamp())}"
            added += enqueue(conn, SEND, key, {"send_id": send_id})
    return added


# --- sending ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    id: int
    url: str
    server_ip: str
    reported_at: datetime
    values: dict[str, str]
    country: str
    ip: str
    provider: str
    asn: int | None


def _item(conn: Connection, item_id: int) -> _Item:
    row = conn.execute(
        select(Item.id, Item.url, Item.server_ip, Report.created_at, TriageStatus.final)
        .join(Report, Report.id == Item.report_id)
        .outerjoin(TriageStatus, TriageStatus.item_id == Item.id)
        .where(Item.id == item_id)
    ).one()
    loc = conn.execute(
        select(Location.country, Location.ip, Location.provider, Location.network_owner, Location.asn)
        .where(Location.item_id == item_id)
        .order_by(Location.located_at.desc(), Location.id.desc())
        .limit(1)
    ).first()
    return _Item(
        id=row.id,
        url=row.url,
        server_ip=row.server_ip or "",
        reported_at=utc(row.created_at),
        values=_values(row.final or ""),
        country=(loc.country if loc else "") or "",
        ip=(loc.ip if loc else "") or "",
        provider=((loc.provider or loc.network_owner) if loc else "") or "",
        asn=loc.asn if loc else None,
    )


def build_report(settings: Settings, mapping: IccamMapping, item: _Item) -> IccamReport:
    """ICCAM's report of one item: its URL with hosting facts and our assessment."""
    analyst = analyst_of(settings)
    memo_lines = (
        [f"provider: {item.provider}" + (f" (AS{item.asn})" if item.asn else "")] if item.provider else []
    )
    carried = mapping.memo(item.values)
    if carried:
        memo_lines.append(carried)
    reference = reference_of(settings, item.id)
    url = ReportUrl(
        url=item.url,
        reference=reference,
        country=item.country or settings.iccam.country.upper(),
        ip=item.ip or item.server_ip,
        assessment=mapping.assessment(item.values, analyst),
        is_source=True,
        content_type=mapping.content_type["page"],
        memo="\n".join(memo_lines),
    )
    return IccamReport(
        analyst=analyst,
        received=item.reported_at,
        reference=reference,
        urls=(url,),
        memo=f"meldpunt item {item.id}",
    )


def _link(conn: Connection, item_id: int) -> Any:
    return conn.execute(select(IccamLink).where(IccamLink.item_id == item_id)).first()


def _perform(services: ActNeeds, client: IccamClient, mapping: IccamMapping, row: Any) -> dict[str, Any]:
    """The call (or calls) one planned row stands for; what the timeline line says of it."""
    settings = services.settings
    now = services.clock.now()
    with services.engine.connect() as conn:
        item = _item(conn, row.item_id)
        link = _link(conn, row.item_id)
    payload = json.loads(row.payload or "{}")
    if row.what == "report":
        report_id = link.report_id if link is not None and link.report_id else None
        if report_id is None:
            report = build_report(settings, mapping, item)
            _mark_unsure(services, row)
            try:
                report_id = client.post_report(report)
            except IccamRefused as exc:
                if row.unsure:
                    raise IccamRefused(
                        f"{exc} — an earlier attempt may have made report {report.reference} in ICCAM and its "
                        "answer was lost: look it up there before sending again",
                        status=exc.status,
                    ) from None
                raise
            # the ID first, in its own transaction: a failure reading the content IDs must not lose it
            with services.engine.begin() as conn:
                stmt = insert_or_ignore(conn.dialect.name, IccamLink, ("item_id",))
                conn.execute(
                    stmt.values(
                        item_id=item.id,
                        direction="export",
                        report_id=report_id,
                        content_id=None,
                        reference=report.reference,
                        hotline="",
                        created_at=now,
                        updated_at=now,
                    )
                )
        view = client.get_report(report_id)
        content_id = view.content_id_of(item.url)
        if content_id is None:
            raise IccamRetryable(f"ICCAM report {report_id} does not list {item.url} (yet)")
        return {"what": "report", "report_id": report_id, "content_id": content_id}
    if link is None or not link.content_id:
        raise IccamRetryable("the item's report is not in ICCAM yet")
    content_id = int(link.content_id)
    if row.what == "assessment":
        client.put_assessment(content_id, mapping.assessment(item.values, analyst_of(settings)))
        return {"what": "assessment", "report_id": link.report_id, "content_id": content_id}
    code = int(row.what.split(":", 1)[1])
    if row.unsure and any(a.type == code for a in client.get_content(content_id).actions):
        return {
            "what": "action",
            "action": mapping.word(code),
            "action_type": code,
            "content_id": content_id,
            "found": True,
        }
    at = datetime.fromisoformat(payload["at"]) if payload.get("at") else now
    reason = mapping.reason(code)
    if code == 5 and item.country:
        reason = f"{reason}: now {item.ip or item.server_ip} ({item.country})"
    _mark_unsure(services, row)
    client.post_action(
        content_id, Action(type=code, analyst=analyst_of(settings), date=at, reason_text=reason)
    )
    return {"what": "action", "action": mapping.word(code), "action_type": code, "content_id": content_id}


def _mark_unsure(services: ActNeeds, row: Any) -> None:
    """Written before a call that creates something in ICCAM (a report, an action): a worker killed
    between ICCAM's answer and our recording it left the row as if nothing had been sent, and the
    next attempt posted the action a second time (or had the report refused without saying why).
    Marked, the next attempt looks first. The outcome's transaction sets it back (to what was
    known before the call, or to what the call's error says)."""
    if row.unsure:
        return
    with services.engine.begin() as conn:
        conn.execute(
            update(IccamSend)
            .where(IccamSend.id == row.id, IccamSend.state == "queued", IccamSend.attempts == row.attempts)
            .values(unsure=True)
        )


def step_send(services: ActNeeds, worker: Worker, job: ClaimedJob) -> str:
    """One planned call to ICCAM (the ``iccam_send`` job); its outcome recorded with the job's end."""
    return send_one(services, int(job.payload["send_id"]), lambda conn: worker.queue.finish(conn, job))


def send_one(services: ActNeeds, send_id: int, finish: Finish | None = None) -> str:
    """Make the call one planned row stands for and record the outcome in one transaction (which
    also runs ``finish``: the job's end). "sent", "retry", "failed" or "skipped"."""
    now = services.clock.now()
    end: Finish = finish or (lambda conn: None)
    with services.engine.connect() as conn:
        row = conn.execute(select(IccamSend).where(IccamSend.id == send_id)).first()
    if (
        row is None
        or row.state != "queued"
        or (row.next_attempt_at is not None and utc(row.next_attempt_at) > now)
    ):
        with services.engine.begin() as conn:
            end(conn)
        return "skipped"
    try:
        mapping = mapping_for(services.settings)
        with client_for(services.settings) as client:
            done = _perform(services, client, mapping, row)
    except IccamError as exc:
        return _record_failure(services, end, row, exc)
    except (MappingError, ShapeError, ValueError) as exc:
        return _record_failure(services, end, row, IccamRefused(f"cannot export: {exc}"))
    with services.engine.begin() as conn:
        moved = conn.execute(
            update(IccamSend)
            .where(IccamSend.id == send_id, IccamSend.state == "queued", IccamSend.attempts == row.attempts)
            .values(
                state="sent",
                sent_at=now,
                attempts=row.attempts + 1,
                last_error="",
                next_attempt_at=None,
                unsure=False,
            )
        ).rowcount
        if moved == 1:
            if done["what"] == "report":
                conn.execute(
                    update(IccamLink)
                    .where(IccamLink.item_id == row.item_id)
                    .values(content_id=done["content_id"], report_id=done["report_id"], updated_at=now)
                )
            timeline.record(conn, EventKind.ICCAM_EXPORTED, at=now, item_id=row.item_id, detail=done)
        end(conn)
    return "sent"


def _record_failure(services: ActNeeds, end: Finish, row: Any, exc: IccamError) -> str:
    now = services.clock.now()
    attempts = row.attempts + 1
    final = not exc.retryable or attempts >= services.settings.iccam.attempts
    values: dict[str, Any] = {
        "attempts": attempts,
        "last_error": str(exc)[:2000],
        "unsure": bool(row.unsure or exc.sent),
        "next_attempt_at": None if final else now + backoff(attempts),
    }
    if final:
        values["state"] = "failed"
    with services.engine.begin() as conn:
        moved = conn.execute(
            update(IccamSend)
            .where(IccamSend.id == row.id, IccamSend.state == "queued", IccamSend.attempts == row.attempts)
            .values(**values)
        ).rowcount
        if moved == 1 and final:
            timeline.record(
                conn,
                EventKind.ICCAM_FAILED,
                at=now,
                item_id=row.item_id,
                detail={"what": row.what, "reason": str(exc)[:500], "attempts": attempts},
            )
        end(conn)
    log.warning(
        "ICCAM %s of item %s: %s (%s)", row.what, row.item_id, exc, "failed" if final else "will retry"
    )
    return "failed" if final else "retry"


def export_now(services: ActNeeds, *, since: datetime | None = None, progress: Any = None) -> dict[str, int]:
    """Plan, then make every due call now, item by item in order (the CLI: a backfill, or a check
    that the bridge works). Calls that must wait (a retry's backoff) stay planned for the tick.
    The outcomes counted."""
    plan_exports(services, since=since)
    outcomes: dict[str, int] = {}
    tried: set[int] = set()
    while True:
        ids = [i for i in _due_ids(services) if i not in tried]
        if not ids:
            return outcomes
        for send_id in ids:
            tried.add(send_id)
            word = send_one(services, send_id)
            outcomes[word] = outcomes.get(word, 0) + 1
            if progress is not None:
                progress(word)


def retry_failed(services: ActNeeds, *, item_id: int | None = None) -> int:
    """Put failed rows back in the plan (after a person fixed the cause); the number."""
    where = [IccamSend.state == "failed"]
    if item_id is not None:
        where.append(IccamSend.item_id == item_id)
    with services.engine.begin() as conn:
        n = conn.execute(
            update(IccamSend)
            .where(*where)
            .values(state="queued", attempts=0, next_attempt_at=services.clock.now())
        ).rowcount
    return int(n)


# --- the tick -----------------------------------------------------------------------------------


def get_state(conn: Connection, name: str) -> str | None:
    value = conn.execute(select(IccamState.value).where(IccamState.name == name)).scalar()
    return None if value is None else str(value)


def set_state(conn: Connection, name: str, value: str) -> None:
    if conn.execute(update(IccamState).where(IccamState.name == name).values(value=value)).rowcount == 0:
        stmt = insert_or_ignore(conn.dialect.name, IccamState, ("name",))
        conn.execute(stmt.values(name=name, value=value))


def _import_due(services: ActNeeds) -> int:
    now = services.clock.now()
    poll = timedelta(minutes=max(0.1, services.settings.iccam.poll_minutes))
    with services.engine.begin() as conn:
        last = get_state(conn, "import_next_at")
        if last and datetime.fromisoformat(last) > now:
            return 0
        new = (now + poll).isoformat()
        if last is None:
            stmt = insert_or_ignore(conn.dialect.name, IccamState, ("name",))
            won = conn.execute(stmt.values(name="import_next_at", value=new)).first() is not None
        else:
            won = (
                conn.execute(
                    update(IccamState)
                    .where(IccamState.name == "import_next_at", IccamState.value == last)
                    .values(value=new)
                ).rowcount
                == 1
            )
        if not won:
            return 0  # another worker's tick took this poll
        return int(enqueue(conn, IMPORT, f"iccam-import:{now.isoformat()}", {}))


def tick_iccam(services: ActNeeds) -> int:
    """Plan exports, enqueue the due calls, start an import poll when one is due."""
    if not enabled(services.settings):
        return 0
    s = services.settings.iccam
    moved = 0
    if s.export_on:
        since = services.clock.now() - timedelta(days=s.export_window_days)
        moved += plan_exports(services, since=since)
    moved += enqueue_due(services)
    if s.import_on:
        moved += _import_due(services)
    return moved


# --- status -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failed:
    item_id: int
    what: str
    attempts: int
    reason: str


@dataclass(frozen=True)
class Status:
    counts: dict[str, int]
    exported: int
    imported: int
    failed: list[Failed]
    import_error: str
    next_import_at: str


def status(services: ActNeeds, *, limit: int = 50) -> Status:
    with services.engine.connect() as conn:
        counts = {
            str(s): int(n)
            for s, n in conn.execute(select(IccamSend.state, func.count()).group_by(IccamSend.state))
        }
        links = dict(
            conn.execute(select(IccamLink.direction, func.count()).group_by(IccamLink.direction)).all()
        )
        failed = [
            Failed(int(r.item_id), str(r.what), int(r.attempts), str(r.last_error))
            for r in conn.execute(
                select(IccamSend)
                .where(IccamSend.state == "failed")
                .order_by(IccamSend.id.desc())
                .limit(limit)
            )
        ]
        return Status(
            counts=counts,
            exported=int(links.get("export", 0)),
            imported=int(links.get("import", 0)),
            failed=failed,
            import_error=get_state(conn, "import_error") or "",
            next_import_at=get_state(conn, "import_next_at") or "",
        )


__all__ = [
    "IMPORT",
    "SEND",
    "Status",
    "build_report",
    "enqueue_due",
    "export_now",
    "plan_exports",
    "retry_failed",
    "send_one",
    "status",
    "step_send",
    "tick_iccam",
]
