"""Re-checking acted-on URLs until the content is gone: removal, moves, time to removal (#10 part
"recheck").

Every takedown in a monitored state (``domain.acting.MONITORED_STATES``) is fetched again on a
jittered schedule: every ``recheck.first_min_minutes``..``first_max_minutes`` at first, about daily
once it has been online ``daily_after_hours``. A re-check ends one of three ways:

``online``
    the page (or the direct media link) is there and serves at least one of the item's media:
    the same bytes (SHA-256) or the same picture re-encoded (PDQ within ``pdq_threshold``). At
    another address than the item's newest location (an address the host did not resolve to when
    it was located) it is a **move**: ``moves += 1``, the takedown goes back to ``to_locate`` and
    ``act.locating.enqueue_locate(reason="moved")`` has it located and routed again.
``miss``
    404, 410 or 451; the name no longer resolves (NXDOMAIN) or resolves to no public address; the
    page is there without the media, or its media no longer match what was classified. The next
    check comes ``miss_spacing_minutes`` later; ``removal_misses`` misses in a row make the
    takedown ``removed`` with ``removed_at`` = the first miss of that streak and the time to
    removal, to the minute, from the first notice and from the report.
``error``
    a timeout, 5xx, 429, a refused connection, a DNS failure that is not NXDOMAIN: not a miss.
    Counted on the takedown (``check_errors``, ``last_check``) and tried again on schedule.

The timeline stays readable: ``checked_online`` only when something changed (the first check,
back after misses or errors, the same picture in other bytes), ``checked_missing`` per miss,
``removed`` and ``moved``; the counters (``checks``, ``misses``, ``check_errors``) are on the row.

Throughput: the tick hands due takedowns to ``recheck`` jobs in batches of ``batch_size``; a job
fetches its batch concurrently (``concurrency`` at once) on the worker's event loop with the
worker's fetcher (SSRF guard, limits, connection pool), counting its fetches in the process's host
slots so the walk's jobs give a host being re-checked a moment. Recheck jobs rank below the walk's.

Durability: the tick claims each takedown with a conditional UPDATE that raises its
``check_round`` (and holds ``next_check_at`` ``claim_minutes`` ahead); each takedown's effects are
conditional on that round and raise it again. While the batch's fetches go on, finished results
are written in a thread, ``WRITE_CHUNK`` or more per transaction (so the database work does not
leave the network idle); what is left is written in the transaction that ends with
``queue.finish``. A crash re-runs the job: a takedown whose effects committed is skipped (neither
fetched nor written again), one that another round claimed meanwhile is left to it. A lost job's
takedowns come due again after ``claim_minutes``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar, runtime_checkable

from sqlalchemy import Connection, and_, bindparam, func, or_, select, update

from meldpunt.act import locating, timeline
from meldpunt.act.context import ActNeeds, Worker, utc
from meldpunt.domain.acting import MONITORED_STATES, EventKind, TakedownState
from meldpunt.domain.pdq import pdq_distance, pdq_usable
from meldpunt.fetch import Fetcher, FetchError
from meldpunt.pipeline.hosts import HostSlots, host_of
from meldpunt.pipeline.jobs import ClaimedJob, enqueue
from meldpunt.pipeline.walk import StepError, is_permanent
from meldpunt.settings import Settings
from meldpunt.signals import Signals
from meldpunt.store.acting import Location, NoticeItem, Takedown
from meldpunt.store.reports import Item, Medium

log = logging.getLogger(__name__)

RECHECK = "recheck"
#: content still online at the same address is located again (its facts refreshed) this often
RELOCATE_EVERY = timedelta(hours=24)
#: below the walk's jobs (0, urgent above): a new report is fetched before a re-check
PRIORITY = -10
#: batches one tick hands out at most (the rest wait for the next tick)
MAX_BATCHES_PER_TICK = 50
#: a batch's results are written this many (or more) at a time while its other fetches run
WRITE_CHUNK = 50

MONITORED = sorted(s.value for s in MONITORED_STATES)
#: HTTP statuses that say the content is gone
GONE_STATUSES = frozenset({404, 410, 451})
#: how a re-check found it online: the same bytes / the same picture in other bytes
ONLINE = "online"
ONLINE_SIMILAR = "online_similar"
ONLINE_WORDS = frozenset({ONLINE, ONLINE_SIMILAR})

T = TypeVar("T")
_rng = random.SystemRandom()


@runtime_checkable
class BatchWorker(Protocol):
    """What a re-check batch needs of the walk's worker (``pipeline.walk.Walker``) besides
    :class:`meldpunt.act.context.Worker`: its event loop and fetcher, its host slots, its sandbox."""

    hosts: HostSlots

    def run_fetches(self, work: Callable[[Fetcher], Coroutine[Any, Any, T]]) -> T: ...

    def hash_media(self, data: bytes, name: str) -> Signals: ...


# --- the schedule ---------------------------------------------------------------------------------


def next_check(now: datetime, since: datetime, settings: Settings) -> datetime:
    """When an online URL is checked next: a random time within the first interval, or about a
    day later once it has been monitored ``daily_after_hours`` (``since``: when monitoring began)."""
    s = settings.recheck
    if now - utc(since) >= timedelta(hours=s.daily_after_hours):
        jitter = max(0, s.daily_jitter_minutes)
        return now + timedelta(minutes=24 * 60 + _rng.uniform(-jitter, jitter))
    low = max(1, s.first_min_minutes)
    return now + timedelta(minutes=_rng.uniform(low, max(low, s.first_max_minutes)))


def check_soon(conn: Connection, takedown_id: int, now: datetime, settings: Settings) -> bool:
    """Have a monitored takedown re-checked within ``recheck.answer_check_minutes`` (a provider
    said it removed the URL: only a re-check confirms it), in the caller's transaction. The tick
    also finds such answers by itself; this is for callers that want it at once. True if moved."""
    soon = now + timedelta(minutes=settings.recheck.answer_check_minutes)
    return (
        conn.execute(
            update(Takedown)
            .where(
                Takedown.id == takedown_id,
                Takedown.state.in_(MONITORED),
                or_(Takedown.next_check_at.is_(None), Takedown.next_check_at > soon),
            )
            .values(next_check_at=soon)
        ).rowcount
        == 1
    )


# --- the tick ---------------------------------------------------------------------------------------


def tick_recheck(services: ActNeeds) -> int:
    """Monitored takedowns whose ``next_check_at`` has come: claimed and handed to ``recheck``
    jobs in batches. Also schedules newly monitored takedowns (``next_check_at`` null) and pulls in
    those a provider answered "removed" for since their last check. The number of things moved."""
    settings = services.settings
    s = settings.recheck
    now = services.clock.now()
    moved = 0
    with services.engine.begin() as conn:
        fresh = conn.execute(
            select(Takedown.id, Takedown.created_at).where(
                Takedown.state.in_(MONITORED), Takedown.next_check_at.is_(None)
            )
        ).all()
        for row in fresh:
            moved += conn.execute(
                update(Takedown)
                .where(Takedown.id == row.id, Takedown.next_check_at.is_(None))
                .values(next_check_at=next_check(now, row.created_at, settings))
            ).rowcount
        moved += _pull_in_answered(conn, now, settings)

    limit = max(1, s.batch_size) * MAX_BATCHES_PER_TICK
    with services.engine.begin() as conn:
        due = [
            int(i)
            for i in conn.execute(
                select(Takedown.id)
                .where(Takedown.state.in_(MONITORED), Takedown.next_check_at <= now)
                .order_by(Takedown.next_check_at, Takedown.id)
                .limit(limit)
            ).scalars()
        ]
        if not due:
            return moved
        held = now + timedelta(minutes=max(1, s.claim_minutes))
        claimed: list[tuple[int, int]] = []
        for chunk in _chunks(due, 500):  # the claim: conditional, so two ticks never share one
            rows = conn.execute(
                update(Takedown)
                .where(
                    Takedown.id.in_(chunk),
                    Takedown.state.in_(MONITORED),
                    Takedown.next_check_at <= now,
                )
                .values(check_round=Takedown.check_round + 1, next_check_at=held)
                .returning(Takedown.id, Takedown.check_round)
            ).all()
            claimed += [(int(r.id), int(r.check_round)) for r in rows]
        claimed.sort()
        for batch in _chunks(claimed, max(1, s.batch_size)):
            first_id, first_round = batch[0]
            enqueue(
                conn,
                RECHECK,
                f"recheck:{first_id}:{first_round}",
                {"takedowns": [list(p) for p in batch]},
                priority=PRIORITY,
                max_attempts=settings.job_max_attempts,
            )
    return moved + len(claimed)


def _pull_in_answered(conn: Connection, now: datetime, settings: Settings) -> int:
    """Takedowns a provider answered "removed" for after their last check: checked soon."""
    soon = now + timedelta(minutes=settings.recheck.answer_check_minutes)
    answered = (
        select(NoticeItem.takedown_id)
        .where(
            NoticeItem.answer == "removed",
            NoticeItem.answered_at.is_not(None),
            or_(Takedown.last_check_at.is_(None), NoticeItem.answered_at > Takedown.last_check_at),
        )
        .where(NoticeItem.takedown_id == Takedown.id)
    )
    return int(
        conn.execute(
            update(Takedown)
            .where(Takedown.state.in_(MONITORED), Takedown.next_check_at > soon, answered.exists())
            .values(next_check_at=soon)
        ).rowcount
    )


def _chunks(seq: list[T], size: int) -> list[list[T]]:
    return [seq[i : i + size] for i in range(0, len(seq), size)]


# --- one re-check: what the fetches found ---------------------------------------------------------


@dataclass(frozen=True)
class Known:
    """A medium of the item as it was classified."""

    url: str
    sha256: str
    pdq: str


@dataclass
class Target:
    """What a re-check needs of one claimed takedown."""

    takedown_id: int
    round: int
    item_id: int
    url: str
    media: tuple[Known, ...]
    #: the address of the item's current location, and every address its host resolved to then
    ip: str
    addresses: frozenset[str]
    #: when the current location was made (None: never located)
    located_at: datetime | None = None


@dataclass
class Found:
    """What the fetches of one re-check found. ``result``: online | miss | error; ``word`` the
    takedown's ``last_check`` (online, online_similar, 404, dns_gone, media_gone, media_changed,
    error:<code>); ``bodies``: media bytes that matched no SHA-256, for the PDQ comparison."""

    result: str
    word: str
    detail: str = ""
    server_ip: str = ""
    final_url: str = ""
    bodies: list[tuple[str, bytes]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def dns_gone(exc: FetchError) -> bool:
    """Whether an ``unreachable`` fetch error says the name does not exist (NXDOMAIN, no address)
    rather than that resolving failed for now (a timeout, EAI_AGAIN). The guard puts the
    resolver's error in the message (``cannot resolve <host>: <error>``)."""
    if exc.code != "unreachable" or not exc.message.startswith("cannot resolve"):
        return False
    m = exc.message.lower()
    transient = ("[errno -3]", "temporary failure", "timed out", "timeout", "try again", "servfail")
    return not any(t in m for t in transient)


def classify_error(exc: FetchError) -> Found:
    """A failed page fetch as a miss (the content is gone) or an error (try again later)."""
    text = f"{exc.code}: {exc.message}"[:500]
    if exc.code == "http_status" and (exc.status or 0) in GONE_STATUSES:
        return Found("miss", str(exc.status), text)
    if dns_gone(exc):
        return Found("miss", "dns_gone", text)
    if exc.code == "blocked_address":  # the name now points at no public address (a sinkhole)
        return Found("miss", "address_gone", text)
    if exc.code == "not_html":  # neither a page nor media any more: the media are not there
        return Found("miss", "media_gone", text)
    return Found("error", f"error:{exc.code if exc.code != 'http_status' else exc.status}", text)


def _exact_match(body: bytes, target: Target) -> bool:
    sha = hashlib.sha256(body).hexdigest()
    return any(m.sha256 == sha for m in target.media)


async def check_one(fetcher: Fetcher, target: Target, max_media: int) -> Found:
    """Fetch one takedown's URL (and its media) and say what is there; SHA-256 is compared here,
    bytes that match nothing are kept for the PDQ comparison (done outside the event loop)."""
    try:
        page = await fetcher.fetch_page(target.url)
    except FetchError as exc:
        return classify_error(exc)
    ip, final = page.server_ip or "", page.final_url
    if page.direct_media:
        if _exact_match(page.body, target):
            return Found("online", ONLINE, server_ip=ip, final_url=final)
        other = [(page.final_url, page.body)]
        return Found(
            "miss",
            "media_changed",
            "the address serves other media",
            bodies=other,
            server_ip=ip,
            final_url=final,
        )
    known = [m.url for m in target.media]
    present = [u for u in page.media_urls if u in set(known)]
    # The item's own media addresses first, listed on the page or not: a page that no longer shows
    # them (an age gate, a consent wall, an edited page) may still serve them, and content that is
    # still served is not removed. Then, when none is listed, what else the page shows.
    others = [] if present else list(page.media_urls[: max(0, max_media)])
    candidates = list(dict.fromkeys([*present, *known[: max(0, max_media)], *others]))
    if not candidates:
        return Found(
            "miss", "media_gone", "the page has no images or videos any more", server_ip=ip, final_url=final
        )
    found = Found("miss", "media_gone", "", server_ip=ip, final_url=final)
    fetched = 0
    for url in candidates:
        try:
            media = await fetcher.fetch_media(url)
        except FetchError as exc:  # gone (404, not media): not there; else unknown for now
            if not is_permanent(exc):
                found.errors.append(f"{url}: {exc.code}: {exc.message}"[:300])
            continue
        fetched += 1
        if _exact_match(media.body, target):
            return Found("online", ONLINE, server_ip=ip, final_url=final)
        found.bodies.append((media.final_url, media.body))
    if fetched:
        found.word, found.detail = "media_changed", f"{fetched} medium/media on the page, none matches"
    elif present or known:
        found.detail = "the item's media addresses no longer serve media"
    else:
        found.detail = "none of the item's media is on the page"
    return found


Checked = list[tuple[Target, Found]]


async def check_all(
    fetcher: Fetcher,
    targets: list[Target],
    *,
    concurrency: int,
    max_media: int,
    hosts: HostSlots,
    write: Callable[[Checked], None] | None = None,
    chunk: int = 50,
) -> Checked:
    """Re-check ``targets`` with at most ``concurrency`` at once; each counts in ``hosts`` (no
    limit of its own: the walk's jobs for that host wait a moment meanwhile).

    With ``write``: results are handed to it in a thread, ``chunk`` or more at a time and one
    call at a time, while the other fetches go on (the database work does not leave the network
    idle); what is left when the last fetch ends is returned for the caller to write. Without:
    every result is returned."""
    gate = asyncio.Semaphore(max(1, concurrency))
    done: Checked = []
    writing: asyncio.Future[None] | None = None

    def flush() -> None:
        nonlocal writing
        if write is None or len(done) < chunk:
            return
        if writing is not None and (not writing.done() or writing.exception() is not None):
            return  # one write at a time; after a failed one, none (it fails the job below)
        taken = done[:]
        done.clear()
        writing = asyncio.ensure_future(asyncio.to_thread(write, taken))

    async def one(t: Target) -> None:
        async with gate:
            with hosts.hold(host_of(t.url), 0):
                try:
                    found = await check_one(fetcher, t, max_media)
                except Exception as exc:  # one bad URL must not sink the batch
                    log.exception("re-check of takedown %s failed", t.takedown_id)
                    found = Found("error", "error:internal", f"{type(exc).__name__}: {exc}"[:500])
        done.append((t, found))
        flush()

    tasks = [asyncio.ensure_future(one(t)) for t in targets]
    try:
        await asyncio.gather(*tasks)
    finally:  # nothing of this batch may run on in the worker's loop after it
        for task in tasks:
            task.cancel()
        if writing is not None:
            await asyncio.wait([writing])
    if writing is not None:
        writing.result()  # a failed write fails the job: what was written stays (idempotent)
    return done


def compare_pdq(found: Found, target: Target, worker: BatchWorker, settings: Settings) -> None:
    """Media that matched no SHA-256: the same picture in other bytes (PDQ within the threshold)
    is still the content online. Decoded in the worker's sandbox, out of the event loop."""
    wanted = [m.pdq for m in target.media if m.pdq]
    if found.result != "miss" or not found.bodies or not wanted:
        settle_found(found)
        return
    for name, body in found.bodies:
        signals = worker.hash_media(body, name.rsplit("/", 1)[-1][-100:] or "medium")
        if not pdq_usable(signals.pdq, signals.pdq_quality, settings.pdq_min_quality):
            continue
        best = min(pdq_distance(signals.pdq or "", p) for p in wanted)
        if best <= settings.pdq_threshold:
            found.result, found.word = "online", ONLINE_SIMILAR
            found.detail = f"the same picture in other bytes (PDQ distance {best})"
            break
    settle_found(found)


def settle_found(found: Found) -> None:
    """A miss while some of the page's media could not be fetched for now is not a miss: the
    content may be in what failed. It counts as an error (tried again on schedule)."""
    found.bodies.clear()
    if found.result == "miss" and found.errors:
        found.result, found.word = "error", "error:media"
        found.detail = "; ".join(found.errors[:3])


# --- the job ----------------------------------------------------------------------------------------


def step_recheck(services: ActNeeds, worker: Worker, job: ClaimedJob) -> str:
    """Re-check a batch of claimed takedowns concurrently and record what each is now, in one
    transaction that ends with ``finish``. A takedown no longer held by this round is skipped."""
    if not isinstance(worker, BatchWorker):
        raise StepError("the worker cannot run re-check batches (no run_fetches)", retry=False)
    settings = services.settings
    claims = {int(i): int(r) for i, r in job.payload.get("takedowns", [])}
    targets = _targets(services, claims)
    counts: dict[str, int] = {}

    def effects(conn: Connection, checked: Checked) -> None:
        for target, found in checked:
            compare_pdq(found, target, worker, settings)
        now = services.clock.now()
        rows = _rows(conn, [t.takedown_id for t, _ in checked])
        steady: list[tuple[Target, Found, Any]] = []
        for target, found in checked:
            td = rows.get(target.takedown_id)
            if found.result == "online" and moved_to(target, found) is None and _held_row(td, target):
                steady.append((target, found, td))
                continue
            what = record(conn, target, found, now, settings, td)
            counts[what] = counts.get(what, 0) + 1
        if steady:
            record_online(conn, steady, now, settings)
            counts["online"] = counts.get("online", 0) + len(steady)

    def write(checked: Checked) -> None:  # in a thread, while the batch's other fetches run
        with services.engine.begin() as conn:
            effects(conn, checked)

    left: Checked = []
    if targets:
        concurrency = min(settings.recheck.concurrency, max(1, settings.fetch_concurrency))
        left = worker.run_fetches(
            lambda f: check_all(
                f,
                targets,
                concurrency=concurrency,
                max_media=settings.recheck.max_media,
                hosts=worker.hosts,
                write=write,
                chunk=WRITE_CHUNK,
            )
        )
    with services.engine.begin() as conn:  # the rest, and the job's end
        effects(conn, left)
        worker.queue.finish(conn, job)
    if not targets:
        return "skipped"
    return ", ".join(f"{n} {w}" for w, n in sorted(counts.items()))


def _rows(conn: Connection, ids: list[int]) -> dict[int, Any]:
    """What :func:`record` reads of each takedown, in one query, locked first (a no-op write:
    PostgreSQL's row locks, SQLite's write lock) so what is read stays true until the commit."""
    if not ids:
        return {}
    conn.execute(update(Takedown).where(Takedown.id.in_(ids)).values(check_round=Takedown.check_round))
    rows = conn.execute(select(*_RECORD_COLUMNS).where(Takedown.id.in_(ids))).all()
    return {int(r.id): r for r in rows}


def _held_row(td: Any, target: Target) -> bool:
    return td is not None and td.check_round == target.round and td.state in MONITORED


def record_online(
    conn: Connection, found_online: list[tuple[Target, Found, Any]], now: datetime, settings: Settings
) -> None:
    """:func:`record` for many takedowns found online where they were located (the steady case:
    most of every round), in one UPDATE and one INSERT sent as executemany. The rows were read
    under lock in this transaction (:func:`_rows`) and are held by their round."""
    params = [
        {
            "b_id": t.takedown_id,
            "b_round": t.round,
            "b_next_round": t.round + 1,
            "b_word": f.word[:200],
            "b_next": next_check(now, td.created_at, settings),
        }
        for t, f, td in found_online
    ]
    conn.execute(
        update(Takedown)
        .where(  # state: checked under lock by the caller (an IN list cannot be executemany)
            Takedown.id == bindparam("b_id"),
            Takedown.check_round == bindparam("b_round"),
        )
        .values(
            check_round=bindparam("b_next_round"),
            checks=Takedown.checks + 1,
            last_check_at=now,
            last_check=bindparam("b_word"),
            misses=0,
            first_miss_at=None,
            check_errors=0,
            next_check_at=bindparam("b_next"),
            updated_at=now,
        ),
        params,
    )
    lines = []
    for t, f, td in found_online:
        if td.last_check == f.word and not td.misses:
            continue  # nothing changed: the counters say it, not the timeline
        detail: dict[str, Any] = {"check": f.word, "detail": f.detail, "url": t.url}
        if td.misses:
            detail["back_after_misses"] = td.misses
        if td.last_check and td.last_check not in ONLINE_WORDS:
            detail["before"] = td.last_check
        lines.append((t.item_id, detail))
    timeline.record_many(conn, EventKind.CHECKED_ONLINE, at=now, lines=lines)
    _relocate_stale(conn, [t for t, _, _ in found_online], now)


def _relocate_stale(conn: Connection, online: list[Target], now: datetime) -> None:
    """Content still online where it was located: locate it again (its network, owner and abuse
    contact refreshed) when its location is older than :data:`RELOCATE_EVERY` — the locate step
    re-run by the re-checks, once a day rather than a location row per check."""
    for target in online:
        if target.located_at is None or utc(target.located_at) <= now - RELOCATE_EVERY:
            locating.enqueue_locate(conn, target.item_id, reason="recheck", now=now)


def _targets(services: ActNeeds, claims: dict[int, int]) -> list[Target]:
    """The claimed takedowns still held by their round, with their item's URL, media and place."""
    if not claims:
        return []
    with services.engine.connect() as conn:
        rows = conn.execute(
            select(Takedown.id, Takedown.check_round, Takedown.item_id, Item.url, Item.server_ip)
            .join(Item, Item.id == Takedown.item_id)
            .where(Takedown.id.in_(list(claims)), Takedown.state.in_(MONITORED))
        ).all()
        rows = [r for r in rows if claims.get(int(r.id)) == int(r.check_round)]
        item_ids = [int(r.item_id) for r in rows]
        media: dict[int, list[Known]] = {}
        for m in conn.execute(
            select(Medium.item_id, Medium.url, Medium.sha256, Medium.pdq, Medium.pdq_quality).where(
                Medium.item_id.in_(item_ids), Medium.sha256 != ""
            )
        ):
            usable = pdq_usable(m.pdq, m.pdq_quality, services.settings.pdq_min_quality)
            media.setdefault(int(m.item_id), []).append(Known(m.url, m.sha256, m.pdq if usable else ""))
        newest = (
            select(Location.item_id, func.max(Location.id).label("id"))
            .where(Location.item_id.in_(item_ids))
            .group_by(Location.item_id)
            .subquery()
        )
        places = {
            int(r.item_id): (r.ip, r.addresses, r.located_at)
            for r in conn.execute(
                select(Location.item_id, Location.ip, Location.addresses, Location.located_at).join(
                    newest, and_(newest.c.id == Location.id)
                )
            )
        }
    targets = []
    for r in sorted(rows, key=lambda r: int(r.id)):
        ip, addresses, located_at = places.get(int(r.item_id), (r.server_ip or "", "[]", None))
        targets.append(
            Target(
                takedown_id=int(r.id),
                round=int(r.check_round),
                item_id=int(r.item_id),
                url=str(r.url),
                media=tuple(media.get(int(r.item_id), [])),
                ip=str(ip or ""),
                addresses=frozenset(_addresses(addresses)) | ({str(ip)} if ip else set()),
                located_at=located_at,
            )
        )
    return targets


def _addresses(text: str) -> list[str]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return [str(a) for a in value] if isinstance(value, list) else []


def moved_to(target: Target, found: Found) -> str | None:
    """The new address when content found online is served from an address the item's current
    location does not know (None when it does, or either is unknown)."""
    if found.result != "online" or not found.server_ip or not target.addresses:
        return None
    return None if found.server_ip in target.addresses else found.server_ip


_RECORD_COLUMNS = (
    Takedown.id,
    Takedown.check_round,
    Takedown.state,
    Takedown.created_at,
    Takedown.reported_at,
    Takedown.first_notice_at,
    Takedown.misses,
    Takedown.first_miss_at,
    Takedown.last_check,
)


def record(
    conn: Connection, target: Target, found: Found, now: datetime, settings: Settings, td: Any = None
) -> str:
    """Write one re-check's effects, conditional on the takedown still being held by this round
    (and monitored); the word for the job's log ("skipped" when another run got there first).
    ``td``: the takedown's row as :func:`_rows` read it in this transaction (else read here)."""
    if td is None:
        td = conn.execute(select(*_RECORD_COLUMNS).where(Takedown.id == target.takedown_id)).first()
    if td is None or td.check_round != target.round or td.state not in MONITORED:
        return "skipped"
    held = and_(
        Takedown.id == target.takedown_id,
        Takedown.check_round == target.round,
        Takedown.state.in_(MONITORED),
    )
    base: dict[str, Any] = {
        "check_round": target.round + 1,
        "checks": Takedown.checks + 1,
        "last_check_at": now,
        "last_check": found.word[:200],
        "updated_at": now,
    }
    detail: dict[str, Any] = {"check": found.word, "detail": found.detail, "url": target.url}
    if found.result == "online":
        new_ip = moved_to(target, found)
        if new_ip is not None:
            return _moved(conn, target, found, new_ip, now, held, base)
        base |= {"misses": 0, "first_miss_at": None, "check_errors": 0}
        base["next_check_at"] = next_check(now, td.created_at, settings)
        if conn.execute(update(Takedown).where(held).values(**base)).rowcount != 1:
            return "skipped"
        _relocate_stale(conn, [target], now)
        changed = td.last_check != found.word or td.misses > 0
        if changed:
            if td.misses:
                detail["back_after_misses"] = td.misses
            if td.last_check and td.last_check not in ONLINE_WORDS:
                detail["before"] = td.last_check
            timeline.record(conn, EventKind.CHECKED_ONLINE, at=now, item_id=target.item_id, detail=detail)
        return "online"
    if found.result == "error":
        spacing = timedelta(minutes=max(1, settings.recheck.miss_spacing_minutes))
        base |= {"check_errors": Takedown.check_errors + 1}
        base["next_check_at"] = now + spacing if td.misses else next_check(now, td.created_at, settings)
        if found.errors:
            detail["media_errors"] = found.errors[:5]
        ok = conn.execute(update(Takedown).where(held).values(**base)).rowcount == 1
        return "error" if ok else "skipped"
    return _missed(conn, target, found, td, now, held, base, detail, settings)


def _missed(
    conn: Connection,
    target: Target,
    found: Found,
    td: Any,
    now: datetime,
    held: Any,
    base: dict[str, Any],
    detail: dict[str, Any],
    settings: Settings,
) -> str:
    misses = td.misses + 1
    first = utc(td.first_miss_at) if td.misses and td.first_miss_at is not None else now
    detail |= {"miss": misses, "of": settings.recheck.removal_misses}
    base |= {"misses": misses, "first_miss_at": first, "check_errors": 0}
    if misses < max(1, settings.recheck.removal_misses):
        base["next_check_at"] = now + timedelta(minutes=max(1, settings.recheck.miss_spacing_minutes))
        if conn.execute(update(Takedown).where(held).values(**base)).rowcount != 1:
            return "skipped"
        timeline.record(conn, EventKind.CHECKED_MISSING, at=now, item_id=target.item_id, detail=detail)
        return "missing"
    notice = utc(td.first_notice_at) if td.first_notice_at is not None else None
    reported = utc(td.reported_at)
    from_notice = minutes_between(notice, first) if notice is not None else None
    from_report = minutes_between(reported, first)
    reason = f"{found.word}: {found.detail}" if found.detail else found.word
    base |= {
        "state": TakedownState.REMOVED.value,
        "removed_at": first,
        "removal_reason": reason[:2000],
        "minutes_from_notice": from_notice,
        "minutes_from_report": from_report,
        "next_check_at": None,
    }
    if conn.execute(update(Takedown).where(held).values(**base)).rowcount != 1:
        return "skipped"
    timeline.record(conn, EventKind.CHECKED_MISSING, at=now, item_id=target.item_id, detail=detail)
    timeline.record(
        conn,
        EventKind.REMOVED,
        at=now,
        item_id=target.item_id,
        detail={
            "removed_at": first.isoformat(),
            "reason": found.word,
            "minutes_from_notice": from_notice,
            "minutes_from_report": from_report,
        },
    )
    return "removed"


def _moved(
    conn: Connection,
    target: Target,
    found: Found,
    new_ip: str,
    now: datetime,
    held: Any,
    base: dict[str, Any],
) -> str:
    base |= {
        "state": TakedownState.TO_LOCATE.value,
        "moves": Takedown.moves + 1,
        "misses": 0,
        "first_miss_at": None,
        "check_errors": 0,
        "next_check_at": None,
        "last_check": "moved",
    }
    if conn.execute(update(Takedown).where(held).values(**base)).rowcount != 1:
        return "skipped"
    # the address the content is served from now: what the locate step starts from
    conn.execute(
        update(Item)
        .where(Item.id == target.item_id)
        .values(server_ip=new_ip, final_url=found.final_url or Item.final_url, updated_at=now)
    )
    timeline.record(
        conn,
        EventKind.MOVED,
        at=now,
        item_id=target.item_id,
        detail={"from": target.ip, "to": new_ip, "url": target.url, "final_url": found.final_url},
    )
    locating.enqueue_locate(conn, target.item_id, reason="moved", now=now)
    return "moved"


def minutes_between(start: datetime, end: datetime) -> int:
    """Whole minutes from ``start`` to ``end`` (never negative)."""
    return max(0, int((end - utc(start)).total_seconds() // 60))
