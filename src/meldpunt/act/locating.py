"""The ``locate`` job: where an item's URL is hosted, recorded as a ``locations`` row (each fact
with its source and age) and a timeline line.

The walk's fetch step enqueues it for every fetched item (key ``item:<id>:0``); routing (a takedown
in ``to_locate``) and re-checks (a move) enqueue it again through :func:`enqueue_locate`. A request
is keyed by the newest location the item had when it was made (``item:<id>:<location id>``): asking
twice before it ran is one job, and a request after a new location is a new one. After a run, a
takedown of the item in ``to_locate`` moves to ``to_route`` (a conditional update).

The job never fails for want of a network: DNS, RDAP and geo problems become facts "unknown" with
their reason (``meldpunt.locate``), and the location is recorded with what could be had.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from meldpunt.act import timeline
from meldpunt.act.context import ActNeeds, Worker, utc
from meldpunt.domain.acting import EventKind, TakedownState
from meldpunt.locate import Cached, Location, Locator
from meldpunt.pipeline.jobs import ClaimedJob, enqueue
from meldpunt.pipeline.walk import LOCATE as WALK_LOCATE
from meldpunt.store.acting import Location as LocationRow
from meldpunt.store.acting import RdapCache, Takedown
from meldpunt.store.reports import Item, Job

log = logging.getLogger(__name__)

LOCATE = WALK_LOCATE  # "locate": one name for the walk (which may not import act) and here
#: job states of a request not yet answered
_PENDING = ("queued", "running")


def _key(item_id: int, after: int) -> str:
    return f"item:{item_id}:{after}"


def _newest_location_id(conn: Connection, item_id: int) -> int:
    return int(
        conn.execute(select(func.max(LocationRow.id)).where(LocationRow.item_id == item_id)).scalar() or 0
    )


def enqueue_locate(conn: Connection, item_id: int, *, reason: str, now: datetime) -> bool:
    """Ask for the item to be located (again), in the caller's transaction; ``reason`` (fetched,
    takedown, moved) goes on the timeline. True when a new job was added."""
    after = _newest_location_id(conn, item_id)
    return enqueue(
        conn,
        LOCATE,
        _key(item_id, after),
        {"item": item_id, "reason": reason, "after": after, "requested_at": now.isoformat()},
        max_attempts=3,
    )


def _last_request(conn: Connection, item_id: int) -> Any:
    return conn.execute(
        select(Job.state, Job.payload)
        .where(Job.kind == LOCATE, Job.key.like(f"item:{item_id}:%"))
        .order_by(Job.id.desc())
        .limit(1)
    ).first()


def tick_locate(services: ActNeeds) -> int:
    """Takedowns in ``to_locate``: enqueue their ``locate`` job (or, when the item has a location
    newer than its last locate request, move them on to ``to_route``). The number moved."""
    now = services.clock.now()
    moved = 0
    with services.engine.connect() as conn:
        waiting = conn.execute(
            select(Takedown.id, Takedown.item_id).where(Takedown.state == TakedownState.TO_LOCATE.value)
        ).all()
    for takedown_id, item_id in waiting:
        with services.engine.begin() as conn:
            last = _last_request(conn, item_id)
            if last is not None and last.state in _PENDING:
                continue  # the job moves the takedown when it has run
            newest = _newest_location_id(conn, item_id)
            after = int(json.loads(last.payload).get("after", 0)) if last is not None else -1
            gave_up = last is not None and last.state == "dead" and newest > 0
            if gave_up:
                # its worker kept dying on it: route on the location it has rather than never
                log.warning("locating item %s gave up; routing on its location %s", item_id, newest)
            if newest and (newest > after or gave_up):
                won = conn.execute(
                    update(Takedown)
                    .where(Takedown.id == takedown_id, Takedown.state == TakedownState.TO_LOCATE.value)
                    .values(state=TakedownState.TO_ROUTE.value, location_id=newest, updated_at=now)
                ).rowcount
                moved += won
            elif enqueue_locate(conn, item_id, reason="takedown", now=now):
                moved += 1
    return moved


# --- the RDAP cache, on the rdap_cache table ----------------------------------------------------


class DbRdapCache:
    """:class:`meldpunt.locate.RdapCache` on the ``rdap_cache`` table: answers shared by every
    worker; a race to store the same answer is an upsert."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, kind: str, key: str) -> Cached | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(RdapCache.fetched_at, RdapCache.ok, RdapCache.data).where(
                    RdapCache.kind == kind, RdapCache.key == key[:255]
                )
            ).first()
        if row is None:
            return None
        try:
            data = json.loads(row.data)
        except ValueError:
            return None
        return Cached(utc(row.fetched_at), bool(row.ok), data if isinstance(data, dict) else {})

    def put(self, kind: str, key: str, entry: Cached) -> None:
        values = {
            "kind": kind,
            "key": key[:255],
            "fetched_at": entry.fetched_at,
            "ok": entry.ok,
            "data": json.dumps(entry.data),
        }
        with self.engine.begin() as conn:
            ins = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(RdapCache).values(
                values
            )
            conn.execute(
                ins.on_conflict_do_update(
                    index_elements=["kind", "key"],
                    set_={"fetched_at": entry.fetched_at, "ok": entry.ok, "data": values["data"]},
                )
            )


# --- the job ------------------------------------------------------------------------------------

_locators: dict[int, Locator] = {}
_locators_lock = threading.Lock()


def locator_for(services: ActNeeds) -> Locator:
    """The services' locator (``Services.locator``, which tests replace), else one per services."""
    given = getattr(services, "locator", None)
    if isinstance(given, Locator):
        return given
    with _locators_lock:
        if id(services) not in _locators:
            _locators[id(services)] = Locator.from_settings(services.settings)
        return _locators[id(services)]


def step_locate(services: ActNeeds, worker: Worker, job: ClaimedJob) -> str:
    item_id = int(job.payload.get("item", 0))
    reason = str(job.payload.get("reason", ""))
    after = int(job.payload.get("after", 0))
    with services.engine.connect() as conn:
        item = conn.execute(
            select(Item.url, Item.final_url, Item.host, Item.server_ip).where(Item.id == item_id)
        ).first()
        answered = _newest_location_id(conn, item_id) > after
    if item is None or answered:
        # Gone, or this request was answered already (a re-run after a crash): nothing to do.
        with services.engine.begin() as conn:
            worker.queue.finish(conn, job)
        return "skipped"
    host = _host(item.final_url or item.url) or item.host
    now = services.clock.now()
    loc = locator_for(services).locate(
        host, item.server_ip or "", now=now, cache=DbRdapCache(services.engine)
    )
    with services.engine.begin() as conn:
        before = current_location(conn, item_id)
        location_id = save_location(conn, item_id, loc, now)
        # a re-check's daily refresh that found the same place says nothing on the timeline
        same = before is not None and _place(before) == _place(loc)
        if not (reason == "recheck" and same):
            timeline.record(
                conn,
                EventKind.LOCATED,
                at=now,
                item_id=item_id,
                detail={
                    "reason": reason,
                    "location_id": location_id,
                    "ip": loc.ip,
                    "country": loc.country,
                    "asn": loc.asn,
                    "provider": loc.provider,
                    "cdn": loc.cdn,
                    **({"error": loc.error[:300]} if loc.error else {}),
                },
            )
        conn.execute(
            update(Takedown)
            .where(Takedown.item_id == item_id, Takedown.state == TakedownState.TO_LOCATE.value)
            .values(state=TakedownState.TO_ROUTE.value, location_id=location_id, updated_at=now)
        )
        worker.queue.finish(conn, job)
    log.info("item %s located: %s %s AS%s %s", item_id, loc.ip, loc.country, loc.asn, loc.provider)
    return "located"


def _place(loc: Location) -> tuple[object, ...]:
    """What makes two locations the same place for the timeline."""
    return (loc.ip, loc.country, loc.asn, loc.provider, loc.abuse_email, loc.cdn, loc.network_owner)


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def save_location(conn: Connection, item_id: int, loc: Location, now: datetime) -> int:
    """Insert ``loc`` as the item's newest location; its id."""
    return int(
        conn.execute(
            insert(LocationRow)
            .values(
                item_id=item_id,
                located_at=now,
                host=loc.host[:255],
                addresses=json.dumps(loc.addresses),
                ip=loc.ip[:64],
                prefix=loc.prefix[:64],
                asn=loc.asn,
                network_owner=loc.network_owner,
                country=loc.country[:2],
                provider=loc.provider,
                abuse_email=loc.abuse_email,
                registrar=loc.registrar,
                registrar_abuse=loc.registrar_abuse,
                cdn=loc.cdn[:64],
                facts=json.dumps(loc.facts, sort_keys=True, default=str),
                error=loc.error,
            )
            .returning(LocationRow.id)
        ).scalar_one()
    )


# --- reading back -------------------------------------------------------------------------------


def _location(row: Any) -> Location:
    try:
        facts = json.loads(row.facts or "{}")
        addresses = json.loads(row.addresses or "[]")
    except ValueError:
        facts, addresses = {}, []
    return Location(
        host=row.host,
        ip=row.ip,
        addresses=[str(a) for a in addresses] if isinstance(addresses, list) else [],
        prefix=row.prefix,
        asn=row.asn,
        network_owner=row.network_owner,
        country=row.country,
        provider=row.provider,
        abuse_email=row.abuse_email,
        registrar=row.registrar,
        registrar_abuse=row.registrar_abuse,
        cdn=row.cdn,
        facts=facts if isinstance(facts, dict) else {},
        error=row.error,
        id=row.id,
        item_id=row.item_id,
        located_at=utc(row.located_at),
    )


def current_location(conn_or_engine: Connection | Engine, item_id: int) -> Location | None:
    """The item's newest location (``meldpunt.locate.Location`` with ``id``, ``item_id`` and
    ``located_at``), or None when it was never located. For routing, re-checks and the item page."""
    query = (
        select(LocationRow)
        .where(LocationRow.item_id == item_id)
        .order_by(LocationRow.located_at.desc(), LocationRow.id.desc())
        .limit(1)
    )
    if isinstance(conn_or_engine, Engine):
        with conn_or_engine.connect() as conn:
            row = conn.execute(query).first()
    else:
        row = conn_or_engine.execute(query).first()
    return _location(row) if row is not None else None
