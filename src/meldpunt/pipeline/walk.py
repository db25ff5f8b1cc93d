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
    Transient failures (timeout, unreachable, protocol_error, HTTP 5xx/408/429) retry with the
    queue's backoff; when the attempts are spent the item ends ``failed`` and the job ``dead``.

``media`` (key ``medium:<id>``): one job per medium, so a page's media are fetched and hashed
    by any number of workers in parallel and one bad file never holds up the others. Fetches the
    medium, hashes it in a child process under ``settings.media_memory_mb`` (``signals.sandbox``:
    a file that would exhaust memory fails alone, the server and its public form stay up), matches it, and writes hashes, matches (JSON) and the outcome:
    ``known`` (a match from an ``auto`` bank), ``ignored`` (an ``ignore`` bank, no auto), ``new``
    (hint matches are kept but decide nothing) or ``failed`` (could not be fetched or decoded;
    transient fetch errors retry first). Bytes of ``new`` media go only into the encrypted review
    store; all other bytes are dropped. The medium job that sees the item's last medium settle
    writes the item's final state (``domain.reports.item_outcome``), exactly once: the item row is
    locked first (an UPDATE) so two media finishing together cannot both miss it.

Idempotency: every effect is conditional on the state it moves from (``state = 'received'``,
``outcome = ''``), rows are inserted only if absent, and jobs are enqueued by a unique key; a step
re-run after a crash (effects committed, or not) changes nothing twice. A worker whose lease was
taken gets ``LeaseLost`` from ``finish`` and its transaction rolls back.

The matcher's PDQ index is the persisted one (``Services.pdq_index``, which catches up with new
imports on open); it is reopened when the banks' PDQ epoch, import ids or settings change, checked
at most every ``settings.matcher_refresh_s`` seconds. Exact hashes are looked up in the database on
every match, so they are always current.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote, urlsplit

from sqlalchemy import Connection, Engine, func, insert, select, update

from meldpunt.domain import serialise_vpdq
from meldpunt.domain.reports import FINAL_STATES, ItemState, MediumOutcome, item_outcome
from meldpunt.fetch import Fetcher, FetchError, FetchPolicy, FetchResult, Page
from meldpunt.index import PDQIndex
from meldpunt.pipeline.index_sync import SyncReport
from meldpunt.pipeline.intake import URGENT_PRIORITY, url_key
from meldpunt.pipeline.jobs import ClaimedJob, JobQueue, LeaseLost, enqueue
from meldpunt.pipeline.matching import Match, Matcher
from meldpunt.pipeline.review_store import ReviewStore
from meldpunt.settings import Settings
from meldpunt.signals import MediaKind, Signals, hash_bytes
from meldpunt.signals.exact import hash_data
from meldpunt.signals.sandbox import MediaSandbox, SandboxError
from meldpunt.signals.sniff import HEAD_BYTES, detect
from meldpunt.store.banks import BankRepository
from meldpunt.store.reports import Item, Medium

log = logging.getLogger(__name__)

FETCH = "fetch"
MEDIA = "media"
KINDS = (FETCH, MEDIA)

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
    }
)
#: HTTP statuses worth another try (besides 5xx)
RETRY_STATUSES = frozenset({408, 425, 429})

T = TypeVar("T")


class Services(Protocol):
    """What the walk needs of ``meldpunt.bootstrap.Services`` (a protocol: the pipeline does not
    import the wiring that imports it)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def engine(self) -> Engine: ...

    @property
    def banks(self) -> BankRepository: ...

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
        max_media_bytes=settings.max_file_bytes,
    )


def medium_outcome(matches: list[Match], signals: Signals) -> tuple[MediumOutcome, str]:
    """(outcome, error): auto match -> known; ignore match -> ignored; content that could not be
    decoded -> failed; else new. Exact matches count even for content that did not decode."""
    policies = {m.policy for m in matches}
    if "auto" in policies:
        return MediumOutcome.KNOWN, ""
    if "ignore" in policies:
        return MediumOutcome.IGNORED, ""
    if signals.error:
        return MediumOutcome.FAILED, f"undecodable: {signals.error}"
    if signals.kind is MediaKind.OTHER:
        return MediumOutcome.FAILED, "not_media: the content is neither an image nor a video"
    return MediumOutcome.NEW, ""


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


class MatcherCache:
    """A :class:`Matcher` over the persisted PDQ index, rebuilt when the banks change (PDQ epoch,
    import ids, bank settings), checked at most every ``refresh_s`` seconds."""

    def __init__(self, services: Services, refresh_s: float) -> None:
        self.services = services
        self.refresh_s = refresh_s
        self._matcher: Matcher | None = None
        self._version: tuple[Any, ...] | None = None
        self._checked = 0.0

    def _bank_version(self) -> tuple[Any, ...]:
        banks = self.services.banks
        return (
            banks.counter("pdq_epoch"),
            tuple(banks.import_ids()),
            tuple(sorted(banks.bank_settings().items())),
        )

    def get(self) -> Matcher:
        now = time.monotonic()
        if self._matcher is not None and now - self._checked < self.refresh_s:
            return self._matcher
        self._checked = now
        version = self._bank_version()
        if self._matcher is None or version != self._version:
            index, report = self.services.pdq_index()
            self._matcher = Matcher(self.services.banks, index, self.services.settings)
            if self._version is not None:
                log.info("hash lists changed: matcher reloaded (%d PDQ hashes)", report.size)
            self._version = version
        return self._matcher


@dataclass
class StepResult:
    """What a step did, for logs and tests."""

    job: ClaimedJob
    outcome: str


class Walker:
    """Runs the walk's jobs for one worker: holds the queue, one event loop with one fetcher (its
    connection pool reused across jobs), the matcher and the review store. Not thread-safe: one
    per worker thread. Close it (or use ``with``)."""

    def __init__(self, services: Services, *, worker: str | None = None) -> None:
        self.services = services
        self.settings = services.settings
        self.engine = services.engine
        self.queue = JobQueue(self.engine, worker=worker, lease_s=self.settings.job_lease_s)
        self.review = ReviewStore.from_settings(self.settings)
        #: decoding runs in a child process under a memory limit (see meldpunt.signals.sandbox)
        self.sandbox = MediaSandbox(self.settings.media_memory_mb)
        self.matchers = MatcherCache(services, self.settings.matcher_refresh_s)
        self.policy = fetch_policy(self.settings)
        self._runner: asyncio.Runner | None = None
        self._fetcher: Fetcher | None = None

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
        return self._run(self._fetcher_ready().fetch_page(url))

    def fetch_media(self, url: str) -> FetchResult:
        return self._run(self._fetcher_ready().fetch_media(url))

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
        return self.queue.claim(list(KINDS))

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
            if job.kind not in (FETCH, MEDIA):
                raise StepError(f"no handler for job kind {job.kind!r}", retry=False)
            with self.queue.keep_alive(job):
                outcome = self.step_fetch(job) if job.kind == FETCH else self.step_media(job)
            return StepResult(job, outcome)
        except LeaseLost as exc:
            log.warning("%s; its effects were rolled back", exc)
            return StepResult(job, "lease_lost")
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
        if not page.media_urls:
            self._end_item(
                job,
                item_id,
                ItemState.UNAVAILABLE,
                "no_media: the page has no images or videos",
                server_ip=page.server_ip or "",
                final_url=page.final_url,
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
            if moved == 1 and direct is not None:
                [medium_id] = _insert_media(conn, item_id, page.media_urls, now)
                _lock_item(conn, item_id)
                self._record_medium(conn, medium_id, *direct)
                _settle_item(conn, item_id)
            elif moved == 1:
                for medium_id in _insert_media(conn, item_id, page.media_urls, now):
                    enqueue(
                        conn,
                        MEDIA,
                        f"medium:{medium_id}",
                        {"medium_id": medium_id, "item_id": item_id},
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
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(Item)
                .where(Item.id == item_id, Item.state == ItemState.RECEIVED.value)
                .values(
                    state=state.value,
                    error=error[:4000],
                    server_ip=server_ip,
                    final_url=final_url,
                    updated_at=_now(),
                )
            )
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
                _settle_item(conn, item_id)
                self.queue.finish(conn, job)
            return str(m.outcome)

        values: dict[str, Any]
        data: bytes | None = None
        try:
            fetched = self.fetch_media(m.url)
        except FetchError as exc:
            if not is_permanent(exc) and job.attempt < job.max_attempts:
                raise StepError(fetch_reason(exc), retry=True) from None
            outcome, values = MediumOutcome.FAILED, {"error": fetch_reason(exc)[:4000]}
        else:
            outcome, values, data = self._examine(fetched)
        with self.engine.begin() as conn:
            _lock_item(conn, item_id)
            self._record_medium(conn, medium_id, outcome, values, data)
            _settle_item(conn, item_id)
            self.queue.finish(conn, job)
        del data
        return outcome.value

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
    update only moves an item still in fetched/hashed/matched). None while media are pending."""
    pending = conn.execute(
        select(func.count()).select_from(Medium).where(Medium.item_id == item_id, Medium.outcome == "")
    ).scalar_one()
    if pending:
        return None
    rows = conn.execute(select(Medium.outcome, Medium.error).where(Medium.item_id == item_id)).all()
    outcomes = [MediumOutcome(o) for o, _ in rows]
    final = item_outcome(outcomes)
    # fetched -> hashed -> matched -> final, passed through in this one transaction.
    values: dict[str, Any] = {"state": final.value, "updated_at": _now()}
    if final is ItemState.UNAVAILABLE:
        first = next((e for _, e in rows if e), "")
        values["error"] = f"no medium could be fetched or decoded: {first}"[:4000]
    conn.execute(
        update(Item)
        .where(
            Item.id == item_id,
            Item.state.in_([ItemState.FETCHED.value, ItemState.HASHED.value, ItemState.MATCHED.value]),
        )
        .values(**values)
    )
    return final
