"""The walk's steps: an item's page is fetched, each of its media hashed and matched, the item ends
known, needs_review or unavailable.

Two job kinds, each a durable job (``pipeline.jobs``) whose effects commit in one transaction with
``JobQueue.finish``:

``fetch`` (key ``item:<id>``, enqueued by intake)
    Fetches the page with the SSRF-safe fetcher, records the server's address, inserts one
    ``Medium`` per media URL (insert-if-absent on (item, url_key)) and enqueues one ``media`` job per
    medium (key ``medium:<id>``); item ``received -> fetched``. A page without media, or one that
    cannot be fetched for a permanent reason (blocked_address, bad_url, HTTP 4xx, not_html,
    too_large, ...), ends the item ``unavailable`` with ``Item.error`` = ``"<code>: <reason>"``.
    The same transaction enqueues the item's ``locate`` job (key ``item:<id>:0``; run by
    ``meldpunt.act.locating``: where the content is hosted). Transient failures (timeout, unreachable, protocol_error, HTTP 5xx/408/429) retry with the
    queue's backoff; when the attempts are spent the item ends ``failed`` and the job ``dead``.
    A server that answers and then stalls or trickles (``stalled``, ``too_slow``) is not retried.

``media`` (key ``medium:<id>``): one job per medium, so a page's media are fetched and hashed
    by any number of workers in parallel and one bad file never holds up the others. Fetches the
    medium, hashes it in a child process under ``settings.media_memory_mb`` (``signals.sandbox``:
    a file that would exhaust memory fails alone, the server and its public form stay up), matches it, and writes hashes, matches (JSON) and the outcome:
    ``known`` (a match from an ``auto`` bank), ``ignored`` (an ``ignore`` bank, no auto), ``new``
    (hint matches are kept but decide nothing) or ``failed`` (could not be fetched or decoded;
    transient fetch errors retry first; ``stalled``/``too_slow`` do not, and the item's other media
    on that host are then not fetched: ``host_hostile``). Each media fetch has what is left of the
    item's time budget (``item_budget``). Bytes of ``new`` media go only into the encrypted review
    store; all other bytes are dropped. The medium job that sees the item's last medium settle
    writes the item's final state (``domain.reports.item_outcome``), exactly once: the item row is
    locked first (an UPDATE) so two media finishing together cannot both miss it.

Fairness (``pipeline.hosts``): at most ``fetch_host_concurrency`` fetches from one host at once in
a process; a job whose host is busy goes back to the queue for a moment without spending an
attempt, so the workers serve other hosts (urgent first) while one host is slow.

Idempotency: every effect is conditional on the state it moves from (``state = 'received'``,
``outcome = ''``), rows are inserted only if absent, and jobs are enqueued by a unique key; a step
re-run after a crash (effects committed, or not) changes nothing twice. A worker whose lease was
taken gets ``LeaseLost`` from ``finish`` and its transaction rolls back.

``rematch`` (key ``rematch:<banks_version>``): the banks gained entries; items waiting for a
    first opinion are matched again and settle ``known`` when every medium is on a list now
    (``pipeline.rematch``). Enqueued by whichever worker first sees the change as it looks for work.

The matcher is ``pipeline.matcher_cache.MatcherCache``: it sees a change to the banks within
``settings.matcher_refresh_s`` seconds (one database row read), taking in only the new entries.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote, urlsplit

from sqlalchemy import Connection, Engine, func, insert, select, update

from meldpunt.domain import serialise_vpdq
from meldpunt.domain.reports import FINAL_STATES, ItemState, MediumOutcome, item_outcome
from meldpunt.domain.reports import medium_outcome as domain_medium_outcome
from meldpunt.fetch import Fetcher, FetchError, FetchPolicy, FetchResult, Page
from meldpunt.index import PDQIndex
from meldpunt.pipeline.entities import ENTITIES, now_of, page_entities, pairs, step_report_entities
from meldpunt.pipeline.hosts import (
    HOSTILE_CODES,
    PROCESS_HOSTS,
    HostBusy,
    HostSlots,
    defer,
    host_of,
    hostile_reason,
)
from meldpunt.pipeline.index_sync import SyncReport
from meldpunt.pipeline.intake import URGENT_PRIORITY, url_key
from meldpunt.pipeline.jobs import ClaimedJob, JobQueue, LeaseLost, enqueue
from meldpunt.pipeline.matcher_cache import MatcherCache
from meldpunt.pipeline.matching import Match
from meldpunt.pipeline.rematch import (
    REMATCH,
    enqueue_if_due,
    mark_rematched,
    rematch_due,
    rematch_item,
    waiting_items,
)
from meldpunt.settings import Settings
from meldpunt.signals import MediaKind, Signals, hash_bytes
from meldpunt.signals.exact import hash_data
from meldpunt.signals.sandbox import MediaSandbox, SandboxError
from meldpunt.signals.sniff import HEAD_BYTES, detect
from meldpunt.store.banks import BankRepository
from meldpunt.store.entities import link_entities
from meldpunt.store.reports import Item, Medium
from meldpunt.stores.review import ReviewStore

log = logging.getLogger(__name__)

FETCH = "fetch"
MEDIA = "media"
#: the locate step's job kind (run by ``meldpunt.act.locating``; enqueued here for every fetched
#: item, in the transaction that records its server address, key ``item:<id>:0``)
LOCATE = "locate"
KINDS = (FETCH, MEDIA, REMATCH, ENTITIES)

#: fetch error codes that a retry cannot change
PERMANENT_CODES = frozenset(
    {
        "bad_url",
        "blocked_address",
        "too_large",
        "too_many_redirects",
        "not_html",
        "not_media",
        "bad_encoding",
        *HOSTILE_CODES,
    }
)
#: HTTP statuses worth another try (besides 5xx)
RETRY_STATUSES = frozenset({408, 425, 429})

T = TypeVar("T")


class Monotonic(Protocol):
    """What the walk reads of ``meldpunt.clock.Clock``."""

    def monotonic(self) -> float: ...


class WalkNeeds(Protocol):
    """What the walk needs of ``meldpunt.bootstrap.Services`` (a protocol: the pipeline does not
    import the wiring that imports it)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def engine(self) -> Engine: ...

    @property
    def banks(self) -> BankRepository: ...

    @property
    def clock(self) -> Monotonic: ...

    @property
    def review_store(self) -> ReviewStore: ...

    def pdq_index(self, progress: Callable[[int], None] | None = None) -> tuple[PDQIndex, SyncReport]: ...


class StepError(Exception):
    """A step failed in a way the worker records on the job: ``retry`` says whether trying again
    may help. The message is the job's ``last_error`` (and the item's error when it gives up)."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


def is_permanent(exc: FetchError) -> bool:
    if exc.code == "http_status":
        status = exc.status or 0
        return not (status >= 500 or status in RETRY_STATUSES)
    return exc.code in PERMANENT_CODES


def fetch_reason(exc: FetchError) -> str:
    return f"{exc.code}: {exc.message}"


def parse_networks(text: str) -> tuple[str, ...]:
    """``fetch_allowed_networks`` as a tuple of CIDRs; ValueError naming a malformed one."""
    nets = tuple(n.strip() for n in text.split(",") if n.strip())
    for n in nets:
        try:
            ipaddress.ip_network(n, strict=False)
        except ValueError:
            raise ValueError(f"fetch_allowed_networks: not a network: {n!r}") from None
    return nets


def fetch_policy(settings: Settings) -> FetchPolicy:
    return FetchPolicy(
        allowed_networks=parse_networks(settings.fetch_allowed_networks),
        max_concurrency=max(1, settings.fetch_concurrency),
        timeout_s=settings.fetch_timeout_s,
        connect_timeout_s=min(10.0, settings.fetch_timeout_s),
        read_timeout_s=settings.fetch_read_timeout_s,
        max_media_bytes=settings.max_file_bytes,
    )


def medium_outcome(matches: list[Match], signals: Signals) -> tuple[MediumOutcome, str]:
    """(outcome, error) of a hashed and matched medium: the domain's rule
    (:func:`meldpunt.domain.reports.medium_outcome`) applied to the walk's matches and signals."""
    return domain_medium_outcome(
        {m.policy for m in matches}, signals.error, signals.kind is not MediaKind.OTHER
    )


def truncated_note(signals: Signals) -> str:
    """What a medium's record says when its data ended early but what arrived was hashed."""
    return (
        f"truncated: the {signals.format or 'image'} data ends early; hashed from the part that"
        f" decodes (PDQ quality {signals.pdq_quality})"
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _media_name(url: str) -> str:
    try:
        name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    except ValueError:
        name = ""
    return name[-100:] or "medium"


@dataclass
class StepResult:
    """What a step did, for logs and tests."""

    job: ClaimedJob
    outcome: str


class Walker:
    """Runs the walk's jobs for one worker: holds the queue, one event loop with one fetcher (its
    connection pool reused across jobs), the matcher and the review store. Not thread-safe: one
    per worker thread. Close it (or use ``with``)."""

    def __init__(
        self,
        services: WalkNeeds,
        *,
        worker: str | None = None,
        hosts: HostSlots | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        clock = clock or services.clock.monotonic  # the one clock (``Services.clock``) unless given
        self.services = services
        self.settings = services.settings
        self.engine = services.engine
        self.queue = JobQueue(self.engine, worker=worker, lease_s=self.settings.job_lease_s)
        self.review = services.review_store  # the one store, opened by Services
        #: decoding runs in a child process under a memory limit (see meldpunt.signals.sandbox)
        self.sandbox = MediaSandbox(self.settings.media_memory_mb)
        self.matchers = MatcherCache(services, self.settings.matcher_refresh_s, clock=clock)
        self._clock = clock
        self._rematch_checked: float | None = None
        self.policy = fetch_policy(self.settings)
        resolver = getattr(services, "resolver", None)  # the services' own (tests, the demo)
        if resolver is not None:
            self.policy = replace(self.policy, resolver=resolver)
        self.hosts = PROCESS_HOSTS if hosts is None else hosts
        self._runner: asyncio.Runner | None = None
        self._fetcher: Fetcher | None = None
        #: job kinds of later steps (locate and act), given by the wiring: kind -> handler
        more = getattr(services, "job_steps", None)
        self.more_steps: dict[str, Callable[[ClaimedJob], str]] = more(self) if more is not None else {}

    def __enter__(self) -> Walker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the event loop and the fetcher ------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(coro)

    def _fetcher_ready(self) -> Fetcher:
        if self._fetcher is None:
            fetcher = Fetcher(self.policy)
            self._run(fetcher.__aenter__())
            self._fetcher = fetcher
        return self._fetcher

    def fetch_page(self, url: str) -> Page:
        with self.hosts.hold(host_of(url), self.settings.fetch_host_concurrency):
            return self._run(self._fetcher_ready().fetch_page(url))

    def fetch_media(self, url: str, budget_s: float | None = None) -> FetchResult:
        with self.hosts.hold(host_of(url), self.settings.fetch_host_concurrency):
            return self._run(self._fetcher_ready().fetch_media(url, budget_s))

    def run_fetches(self, work: Callable[[Fetcher], Coroutine[Any, Any, T]]) -> T:
        """Run ``work`` on this worker's event loop with its fetcher: many fetches at once (the
        act room's re-check batches), sharing the walk's connection pool and SSRF guard. ``work``
        counts its fetches in :attr:`hosts` itself (:meth:`HostSlots.hold`)."""
        return self._run(work(self._fetcher_ready()))

    def hash_media(self, data: bytes, name: str) -> Signals:
        """Signals of fetched bytes, decoded in this worker's sandbox (re-checks compare them)."""
        return self._hash(data, name)

    def close(self) -> None:
        self.sandbox.close()
        try:
            if self._fetcher is not None and self._runner is not None:
                self._runner.run(self._fetcher.__aexit__(None, None, None))
        finally:
            self._fetcher = None
            if self._runner is not None:
                self._runner.close()
                self._runner = None

    # --- jobs --------------------------------------------------------------------------------

    def claim(self) -> ClaimedJob | None:
        now = self._clock()
        if self._rematch_checked is None or now - self._rematch_checked >= self.settings.matcher_refresh_s:
            self._rematch_checked = now
            enqueue_if_due(self.engine, max_attempts=self.settings.job_max_attempts)
        return self.queue.claim([*KINDS, *self.more_steps])

    def run_job(self, job: ClaimedJob) -> StepResult:
        """Run one claimed job to its end: done (effects committed), queued again after a backoff,
        or dead with its reason (its item then ``failed``). Never raises for a step's failure."""
        try:
            if job.attempt > job.max_attempts:
                # Claimed again after its worker died during each of its attempts.
                raise StepError(
                    f"gave up after {job.max_attempts} attempts (the worker stopped during each)",
                    retry=False,
                )
            steps = {
                FETCH: self.step_fetch,
                MEDIA: self.step_media,
                REMATCH: self.step_rematch,
                ENTITIES: lambda job: step_report_entities(self, job),
                **self.more_steps,
            }
            if job.kind not in steps:
                raise StepError(f"no handler for job kind {job.kind!r}", retry=False)
            with self.queue.keep_alive(job):
                outcome = steps[job.kind](job)
            return StepResult(job, outcome)
        except LeaseLost as exc:
            log.warning("%s; its effects were rolled back", exc)
            return StepResult(job, "lease_lost")
        except HostBusy as exc:  # back in the queue for a moment, no attempt spent
            log.debug("job %s (%s %s): %s, deferred", job.id, job.kind, job.key, exc)
            return StepResult(job, "deferred" if defer(self.engine, self.queue, job) else "lease_lost")
        except Exception as exc:
            if isinstance(exc, StepError):
                reason, retry = str(exc), exc.retry
            else:
                log.exception("job %s (%s %s) failed", job.id, job.kind, job.key)
                reason, retry = f"{type(exc).__name__}: {exc}", True
            try:
                if not retry or job.attempt >= job.max_attempts:
                    self._give_up(job, reason)
                state = self.queue.fail(job, reason, retry=retry)
            except Exception:  # the database is away: the lease runs out and the job comes back
                log.exception("could not record the failure of job %s (%s %s)", job.id, job.kind, job.key)
                return StepResult(job, "unrecorded")
            log.info("job %s (%s %s): %s, %s", job.id, job.kind, job.key, reason, state)
            return StepResult(job, state)

    def _give_up(self, job: ClaimedJob, reason: str) -> None:
        """The job is about to be dead: its item ends ``failed`` with the reason, if this worker
        still holds the job (checked in the same transaction) and the item is not final yet."""
        item_id = job.payload.get("item_id")
        if item_id is None:
            return
        final = [s.value for s in FINAL_STATES]
        with self.engine.begin() as conn:
            if not self.queue.still_held(conn, job):
                return
            conn.execute(
                update(Item)
                .where(Item.id == int(item_id), Item.state.not_in(final))
                .values(
                    state=ItemState.FAILED.value,
                    error=f"{job.kind} gave up after {job.attempt} attempts: {reason}"[:4000],
                    updated_at=_now(),
                )
            )

    # --- fetch: the page --------------------------------------------------------------------

    def step_fetch(self, job: ClaimedJob) -> str:
        item_id = int(job.payload["item_id"])
        with self.engine.connect() as conn:
            item = conn.execute(select(Item.url, Item.state, Item.urgent).where(Item.id == item_id)).first()
        if item is None or item.state != ItemState.RECEIVED.value:
            # Gone, or an earlier run of this job committed its effects: nothing to do.
            with self.engine.begin() as conn:
                self.queue.finish(conn, job)
            return "skipped"
        try:
            page = self.fetch_page(item.url)
        except FetchError as exc:
            if not is_permanent(exc):
                raise StepError(fetch_reason(exc), retry=True) from None
            self._end_item(job, item_id, ItemState.UNAVAILABLE, fetch_reason(exc))
            return ItemState.UNAVAILABLE.value
        # link analysis (#13): the page's entities are kept, its text is not
        found = pairs(page_entities(page, self.settings))
        if not page.media_urls:
            self._end_item(
                job,
                item_id,
                ItemState.UNAVAILABLE,
                "no_media: the page has no images or videos",
                server_ip=page.server_ip or "",
                final_url=page.final_url,
                entities=found,
            )
            return ItemState.UNAVAILABLE.value
        priority = URGENT_PRIORITY if item.urgent else 0
        # A direct link to an image or video: the page *is* the medium, already in hand. It is
        # examined here and settled in the same transaction, not fetched a second time.
        direct = self._examine(page) if page.direct_media else None
        now = _now()
        with self.engine.begin() as conn:
            moved = conn.execute(
                update(Item)
                .where(Item.id == item_id, Item.state == ItemState.RECEIVED.value)
                .values(
                    state=ItemState.FETCHED.value,
                    server_ip=page.server_ip or "",
                    final_url=page.final_url,
                    error="media_truncated: only the first media URLs were taken"
                    if page.media_truncated
                    else "",
                    updated_at=now,
                )
            ).rowcount
            if moved == 1 and found:
                link_entities(conn, found, now_of(self.services), item_id=item_id)
            if moved == 1:
                # where it is hosted: the locate step (meldpunt.act.locating), keyed as it keys them
                enqueue(
                    conn,
                    LOCATE,
                    f"item:{item_id}:0",
                    {"item": item_id, "reason": "fetched", "after": 0},
                    priority=priority - 1,  # after the item's media: the analyst waits for those
                    max_attempts=3,
                )
            if moved == 1 and direct is not None:
                [medium_id] = _insert_media(conn, item_id, page.media_urls, now)
                _lock_item(conn, item_id)
                self._record_medium(conn, medium_id, *direct)
                self._settle(conn, item_id)
            elif moved == 1:
                payload: dict[str, Any] = {"item_id": item_id}
                if self.settings.fetch_item_budget_s > 0:  # wall clock: any process may run the media
                    payload["deadline"] = time.time() + self.settings.fetch_item_budget_s
                for medium_id in _insert_media(conn, item_id, page.media_urls, now):
                    enqueue(
                        conn,
                        MEDIA,
                        f"medium:{medium_id}",
                        {"medium_id": medium_id, **payload},
                        priority=priority,
                        max_attempts=self.settings.job_max_attempts,
                    )
            self.queue.finish(conn, job)
        log.info(
            "item %s fetched from %s (%s): %d media",
            item_id,
            page.final_url,
            page.server_ip,
            len(page.media_urls),
        )
        return ItemState.FETCHED.value

    def _end_item(
        self,
        job: ClaimedJob,
        item_id: int,
        state: ItemState,
        error: str,
        *,
        server_ip: str = "",
        final_url: str = "",
        entities: list[tuple[str, str]] | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            moved = conn.execute(
                update(Item)
                .where(Item.id == item_id, Item.state == ItemState.RECEIVED.value)
                .values(
                    state=state.value,
                    error=error[:4000],
                    server_ip=server_ip,
                    final_url=final_url,
                    updated_at=_now(),
                )
            ).rowcount
            if moved == 1 and entities:
                link_entities(conn, entities, now_of(self.services), item_id=item_id)
            self.queue.finish(conn, job)

    # --- media: fetch, hash, match, keep only what is new --------------------------------------

    def step_media(self, job: ClaimedJob) -> str:
        medium_id = int(job.payload["medium_id"])
        with self.engine.connect() as conn:
            m = conn.execute(
                select(Medium.item_id, Medium.url, Medium.outcome).where(Medium.id == medium_id)
            ).first()
        if m is None:
            with self.engine.begin() as conn:
                self.queue.finish(conn, job)
            return "skipped"
        item_id = int(m.item_id)
        if m.outcome:  # an earlier run committed it: only make sure the item is settled
            with self.engine.begin() as conn:
                _lock_item(conn, item_id)
                self._settle(conn, item_id)
                self.queue.finish(conn, job)
            return str(m.outcome)

        outcome, values, data = self._fetch_medium(job, item_id, str(m.url))
        with self.engine.begin() as conn:
            _lock_item(conn, item_id)
            self._record_medium(conn, medium_id, outcome, values, data)
            self._settle(conn, item_id)
            self.queue.finish(conn, job)
        del data
        return outcome.value

    def _fetch_medium(
        self, job: ClaimedJob, item_id: int, url: str
    ) -> tuple[MediumOutcome, dict[str, Any], bytes | None]:
        """Fetch and examine a medium within the item's budgets: not at all when the item's time
        is spent or its server on this host proved hostile; raises ``HostBusy`` (deferred) and
        ``StepError`` (a transient fetch error, retried)."""
        deadline = job.payload.get("deadline")
        budget = None if deadline is None else float(deadline) - time.time()
        if budget is not None and budget <= 0:
            spent = f"item_budget: not fetched, the item's {self.settings.fetch_item_budget_s:g} s were spent"
            return MediumOutcome.FAILED, {"error": spent}, None
        host = host_of(url)
        with self.engine.connect() as conn:
            hostile = hostile_reason(conn, item_id, host)
        if hostile is not None:
            reason = f"host_hostile: not fetched, {host} failed another medium of this item ({hostile})"
            return MediumOutcome.FAILED, {"error": reason[:4000]}, None
        try:
            fetched = self.fetch_media(url, budget)
        except FetchError as exc:
            if not is_permanent(exc) and job.attempt < job.max_attempts:
                raise StepError(fetch_reason(exc), retry=True) from None
            return MediumOutcome.FAILED, {"error": fetch_reason(exc)[:4000]}, None
        return self._examine(fetched)

    def _examine(self, fetched: FetchResult) -> tuple[MediumOutcome, dict[str, Any], bytes | None]:
        """Hash and match fetched media bytes: the outcome, the medium's column values, and the
        bytes to keep for review (only when new: known, ignored and failed bytes are dropped)."""
        data: bytes | None = fetched.body
        signals = self._hash(fetched.body, _media_name(fetched.final_url))
        matcher = self.matchers.get()
        matches = matcher.match(signals)
        outcome, error = medium_outcome(matches, signals)
        if not error and signals.truncated:  # kept for the analyst, and said so on its record
            error = truncated_note(signals)
        if outcome is MediumOutcome.NEW:  # an analyst will look: near matches as hints
            matches += matcher.near(signals, self.settings.pdq_hint_distance)
        values = {
            "kind": signals.kind.value,
            "size": signals.size,
            "md5": signals.md5,
            "sha1": signals.sha1,
            "sha256": signals.sha256,
            "pdq": signals.pdq or "",
            "pdq_quality": signals.pdq_quality,
            "pdq_stored": signals.pdq_stored,
            "pdq_stored_quality": signals.pdq_stored_quality,
            "orientation": signals.orientation,
            "vpdq": serialise_vpdq(signals.vpdq) if signals.vpdq else "",
            "server_ip": fetched.server_ip or "",
            "matches": json.dumps([x.to_json_dict() for x in matches]),
            "error": error[:4000],
        }
        if outcome is not MediumOutcome.NEW:
            data = None
        return outcome, values, data

    def _hash(self, data: bytes, name: str) -> Signals:
        """Signals of fetched bytes, decoded in the sandbox; a file that takes the sandbox over its
        memory budget (or crashes its decoder) gets its exact hashes here and the reason as error."""
        try:
            return self.sandbox.run(hash_bytes, data, name, self.settings)
        except SandboxError as e:
            exact = hash_data(data)
            kind = detect(data[:HEAD_BYTES], name).kind
            return Signals(name, exact.size, exact.md5, exact.sha1, exact.sha256, kind, error=str(e))

    def _record_medium(
        self,
        conn: Connection,
        medium_id: int,
        outcome: MediumOutcome,
        values: dict[str, Any],
        data: bytes | None,
    ) -> None:
        """Write a medium's outcome once (and its bytes to the review store when new)."""
        written = conn.execute(
            update(Medium)
            .where(Medium.id == medium_id, Medium.outcome == "")
            .values(outcome=outcome.value, **values)
        ).rowcount
        if written == 1 and data is not None:
            self.review.put(conn, medium_id, data)

    def _settle(self, conn: Connection, item_id: int) -> None:
        """Settle the item when its last medium is in; an item left for review that this worker's
        matcher may have matched before the banks' latest change is matched again (a rematch job
        of its own: the one for that change may have run before this item was waiting)."""
        if _settle_item(conn, item_id) is not ItemState.NEEDS_REVIEW:
            return
        seen = self.matchers.version
        now = rematch_due(conn, seen)
        if now is not None:
            enqueue(
                conn,
                REMATCH,
                f"rematch:{now}:item:{item_id}",
                {"version": now},
                max_attempts=self.settings.job_max_attempts,
            )

    # --- rematch: the banks gained entries --------------------------------------------------------

    def step_rematch(self, job: ClaimedJob) -> str:
        """Match the items waiting for a first opinion again; those now fully on lists end known."""
        version = int(job.payload["version"])
        matcher = self.matchers.get(at_least=version)
        settled = 0
        after = 0
        while True:
            with self.engine.connect() as conn:
                batch = waiting_items(conn, after)
            if not batch:
                break
            for item_id in batch:
                with self.engine.begin() as conn:
                    if rematch_item(conn, item_id, matcher, self.review.purge, _now(), version):
                        settled += 1
            after = batch[-1]
        with self.engine.begin() as conn:
            mark_rematched(conn, version)
            self.queue.finish(conn, job)
        if settled:
            log.info("banks changed (version %d): %d waiting item(s) settled by the lists", version, settled)
        return f"settled {settled}"


def _lock_item(conn: Connection, item_id: int) -> None:
    """Take the item's row lock (PostgreSQL) / the write lock (SQLite) first in a transaction, so
    media of one item settling at once are serialised and the last one sees all the others."""
    conn.execute(update(Item).where(Item.id == item_id).values(updated_at=_now()))


def _insert_media(conn: Connection, item_id: int, urls: tuple[str, ...], now: datetime) -> list[int]:
    """Ids of the item's media for ``urls``, inserting the rows that are missing."""
    keys = {url_key(u): u for u in urls}
    existing = {
        k: int(i)
        for k, i in conn.execute(
            select(Medium.url_key, Medium.id).where(Medium.item_id == item_id, Medium.url_key.in_(keys))
        )
    }
    ids: list[int] = []
    for key, url in keys.items():
        if key in existing:
            ids.append(existing[key])
            continue
        ids.append(
            int(
                conn.execute(
                    insert(Medium)
                    .values(item_id=item_id, url=url, url_key=key, created_at=now)
                    .returning(Medium.id)
                ).scalar_one()
            )
        )
    return ids


def _settle_item(conn: Connection, item_id: int) -> ItemState | None:
    """When every medium of the item has an outcome: the item's final state, written once (the
    update only moves an item still in fetched/hashed/matched). None while media are pending, or
    when the item was settled before."""
    pending = conn.execute(
        select(func.count()).select_from(Medium).where(Medium.item_id == item_id, Medium.outcome == "")
    ).scalar_one()
    if pending:
        return None
    rows = conn.execute(select(Medium.outcome, Medium.error).where(Medium.item_id == item_id)).all()
    outcomes = [MediumOutcome(o) for o, _ in rows]
    final = item_outcome(outcomes)
    # fetched -> final: hashing and matching happened in this one transaction.
    values: dict[str, Any] = {"state": final.value, "updated_at": _now()}
    if final is ItemState.UNAVAILABLE:
        first = next((e for _, e in rows if e), "")
        values["error"] = f"no medium could be fetched or decoded: {first}"[:4000]
    moved = conn.execute(
        update(Item)
        .where(
            Item.id == item_id,
            Item.state == ItemState.FETCHED.value,
        )
        .values(**values)
    ).rowcount
    return final if moved else None
