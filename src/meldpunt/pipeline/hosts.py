"""Fair shares of the fetchers: no host may hold up the queue.

Three budgets keep one slow or hostile host from delaying everyone else's reports:

* **per host, at once**: at most ``fetch_host_concurrency`` fetches from one host run at the same
  time in a process (:class:`HostSlots`, shared by the process's worker threads). A job whose host
  is busy is put back for a moment without spending an attempt (:func:`defer`), and the worker
  takes the next job — another host's, an urgent one first (the queue orders by priority).
* **per item**: an item's media must be fetched within ``fetch_item_budget_s`` of its page; each
  media fetch gets what is left of that budget as its total time, and media still waiting when it
  is spent are not fetched (``item_budget``).
* **per host, per item, after it proved hostile**: a server that stalled or trickled
  (``stalled``, ``too_slow``) is not asked again for the item's other media (``host_hostile``);
  neither is the failed medium retried.

The slots are in memory: each process has its own (several worker processes may each hold one
slot of a host). What proved hostile is read from the database, so every process knows it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, or_, select, update

from meldpunt.pipeline.jobs import ClaimedJob, JobQueue
from meldpunt.store.reports import Job, Medium

#: fetch error codes that show a host is hostile (it answered, then stalled or trickled)
HOSTILE_CODES = frozenset({"stalled", "too_slow"})
#: seconds a job whose host is busy waits before it may be claimed again
BUSY_DELAY_S = 1.0


class HostBusy(Exception):
    """The job's host already has its share of fetches running in this process."""

    def __init__(self, host: str) -> None:
        super().__init__(f"host {host} is busy")
        self.host = host


def host_of(url: str) -> str:
    """The host a URL names (lower case, without port), '' when it has none."""
    try:
        return (urlsplit(url.strip()).hostname or "").lower()
    except ValueError:
        return ""


class HostSlots:
    """Counts of fetches running per host in this process; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy: dict[str, int] = {}

    @contextmanager
    def hold(self, host: str, limit: int) -> Iterator[None]:
        """One of ``host``'s ``limit`` slots for the block (``limit`` <= 0: no limit); raises
        :class:`HostBusy` at once when all are taken."""
        with self._lock:
            n = self._busy.get(host, 0)
            if limit > 0 and n >= limit:
                raise HostBusy(host)
            self._busy[host] = n + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._busy.get(host, 1) - 1
                if left > 0:
                    self._busy[host] = left
                else:
                    self._busy.pop(host, None)

    def busy(self, host: str) -> int:
        with self._lock:
            return self._busy.get(host, 0)


#: the process's slots, shared by all its worker threads (``Walker`` takes another for tests)
PROCESS_HOSTS = HostSlots()


def defer(engine: Engine, queue: JobQueue, job: ClaimedJob, delay_s: float = BUSY_DELAY_S) -> bool:
    """Put a claimed job back in the queue for ``delay_s`` without spending an attempt; False when
    this worker no longer holds it."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        if not queue.still_held(conn, job):
            return False
        conn.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(
                state="queued",
                attempts=Job.attempts - 1,
                run_after=now + timedelta(seconds=delay_s),
                locked_until=None,
                updated_at=now,
            )
        )
    return True


def hostile_reason(conn: Connection, item_id: int, host: str) -> str | None:
    """The recorded reason of a medium of the item whose server on ``host`` stalled or was too
    slow, or None."""
    rows = conn.execute(
        select(Medium.url, Medium.error).where(
            Medium.item_id == item_id,
            or_(*(Medium.error.like(f"{code}:%") for code in sorted(HOSTILE_CODES))),
        )
    )
    for url, error in rows:
        if host_of(url) == host:
            return str(error)
    return None
