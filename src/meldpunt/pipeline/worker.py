"""The worker: claims the walk's jobs one at a time and runs them (see ``pipeline.walk``).

Run as many workers as you like, in processes on any number of machines (or threads: one
``run_worker`` per thread); the queue hands each job to one worker at a time under a lease. Within
a worker one job runs at a time on one event loop whose fetcher is reused across jobs. A worker
takes back, when it starts and then every lease while idle, the jobs of workers of its machine
whose process has ended (``JobQueue.reclaim_dead``): after a crash and a restart the walk goes on
at once, not when the dead worker's leases run out. Every ``act.tick_s`` seconds it also runs the
periodic pass of locate-and-act (``meldpunt.act.ticks``: due notices, re-checks, alerts). An idle
worker also deletes evidence past its retention, at most hourly (``evidence_store.purge_expired``:
no key needed, each purge audited), and entities whose every source is gone
(``store.entities.prune_orphans``: link analysis follows the reports' retention).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from meldpunt.audit import AuditEvent, record
from meldpunt.pipeline.jobs import worker_name
from meldpunt.pipeline.walk import Walker, WalkNeeds
from meldpunt.store.entities import prune_orphans
from meldpunt.stores.evidence import purge_expired

log = logging.getLogger(__name__)

#: an idle worker deletes evidence past its retention at most this often (seconds)
EVIDENCE_PURGE_EVERY_S = 3600.0


def run_worker(
    services: WalkNeeds,
    *,
    stop: threading.Event | None = None,
    max_jobs: int | None = None,
    idle_exit: bool = False,
    worker: str | None = None,
    ticks: bool = True,
) -> int:
    """Claim and run jobs until ``stop`` is set, ``max_jobs`` have run, or — with ``idle_exit`` —
    no job is runnable now (jobs waiting out a retry backoff are not runnable yet). ``ticks``:
    False when the caller runs the periodic pass itself (``act.ticks.settle``). An idle worker
    looks again every ``settings.worker_poll_s`` seconds; one that cannot reach the database logs it
    and tries again (with ``idle_exit`` it raises). Returns the number of jobs run."""
    stop = stop or threading.Event()
    poll = max(0.01, services.settings.worker_poll_s)
    ran = 0
    next_purge = time.monotonic()
    next_reclaim = time.monotonic()
    reclaim_every = max(1.0, services.settings.job_lease_s)
    #: the periodic pass of later steps (locate and act), given by the wiring
    tick = getattr(services, "act_tick", None) if ticks else None
    next_tick = time.monotonic()
    if worker is None:  # host:pid, and the thread when several workers share a process
        thread = threading.current_thread()
        worker = worker_name() + ("" if thread is threading.main_thread() else f":{thread.name}")
    with Walker(services, worker=worker) as walker:
        log.info("worker %s started", walker.queue.worker)
        while not stop.is_set() and (max_jobs is None or ran < max_jobs):
            try:
                if tick is not None and time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + services.settings.act.tick_s
                    tick()
                if time.monotonic() >= next_reclaim:
                    next_reclaim = time.monotonic() + reclaim_every
                    walker.queue.reclaim_dead()
                job = walker.claim()
            except Exception:
                if idle_exit:
                    raise
                log.exception("could not claim a job; trying again shortly")
                stop.wait(max(poll, 5.0))
                continue
            if job is None:
                if idle_exit:
                    break
                if time.monotonic() >= next_purge:
                    next_purge = time.monotonic() + EVIDENCE_PURGE_EVERY_S
                    _purge_evidence(services)
                stop.wait(poll)
                continue
            if walker.run_job(job).outcome != "deferred":  # a busy host's job went back: not a run
                ran += 1
        log.info("worker %s stopped after %d jobs", walker.queue.worker, ran)
    return ran


def _purge_evidence(services: WalkNeeds) -> None:
    try:
        with services.engine.begin() as conn:
            n = purge_expired(conn, datetime.now(UTC))
        if n:
            log.info("purged %d expired evidence blob(s)", n)
    except Exception:
        log.exception("could not purge expired evidence; trying again later")
    try:  # link analysis (#13): entities whose every report and item is gone go too
        with services.engine.begin() as conn:
            n = prune_orphans(conn)
            if n:
                record(conn, AuditEvent("system", "links.prune", "", {"count": n}, at=datetime.now(UTC)))
        if n:
            log.info("pruned %d entities no report or item holds any more", n)
    except Exception:
        log.exception("could not prune orphaned entities; trying again later")


def drain(services: WalkNeeds, *, max_jobs: int = 100_000, ticks: bool = True) -> int:
    """Run jobs until none is runnable (for tests and one-shot runs); the number run. ``ticks``:
    with the periodic pass of locate-and-act first (as a worker starts)."""
    return run_worker(services, idle_exit=True, max_jobs=max_jobs, ticks=ticks)
