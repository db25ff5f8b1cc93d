"""Durable jobs: the outbox the walk runs on.

A job is written in the same transaction as the state that asks for it (``enqueue`` takes the
caller's connection), so an acknowledged report always has its next step on disk. Workers claim a
job with one atomic UPDATE (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, SQLite's single writer
elsewhere), under a short lease that a heartbeat renews while the job runs (``keep_alive``); a
worker that dies loses its lease and the job is claimed again. A worker on the same machine need
not wait for that: a worker's name says where it runs (machine, pid, a per-process token), and a
starting worker takes back at once the jobs of workers of its machine whose process is gone
(``reclaim_dead``).
A handler finishes by calling ``finish`` inside the transaction that writes its effects: if the
lease was lost meanwhile, ``finish`` raises and the effects roll back with it — a job's effects
commit at most once, and it runs until they do (at least once). Failures retry with exponential
backoff and end in ``dead`` with a readable reason after ``max_attempts``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from meldpunt.store.reports import Job

BACKOFF_MAX_S = 300.0
log = logging.getLogger(__name__)


class LeaseLost(RuntimeError):
    """The job's lease expired and another worker took it: this worker's effects must not commit."""


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    worker: str


def _now() -> datetime:
    return datetime.now(UTC)


#: Tells this process from an earlier one that had the same pid (pid 1 in a container, say).
PROCESS_TOKEN = secrets.token_hex(4)


@cache
def machine_name() -> str:
    """This machine as worker names give it: the host name, and on Linux a digest of the kernel's
    boot id and of the pid namespace — so two containers that share a host name, or the same
    machine after a reboot, are never taken for one another when pids are compared."""
    host = socket.gethostname().replace(":", "_") or "host"
    marks: list[str] = []
    try:
        marks.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
        marks.append(os.readlink("/proc/self/ns/pid"))
    except OSError:
        return host
    return f"{host}~{hashlib.sha256('|'.join(marks).encode()).hexdigest()[:10]}"


def worker_name() -> str:
    """``machine:pid:token``: where a worker runs, precisely enough to tell that it has died."""
    return f"{machine_name()}:{os.getpid()}:{PROCESS_TOKEN}"


def _process_gone(worker: str) -> bool:
    """Whether ``worker`` (a name from :func:`worker_name`, perhaps with a thread's name after it)
    ran on this machine in a process that has provably ended. Unknown names, other machines and
    live pids are not (their jobs wait for their lease to run out)."""
    machine, _, rest = worker.partition(":")
    pid_text, _, rest = rest.partition(":")
    token = rest.partition(":")[0]
    if machine != machine_name() or not pid_text.isdigit() or not token or os.name != "posix":
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return token != PROCESS_TOKEN  # an earlier process that had our pid
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except OSError:  # it exists, under another user
        return False
    return False


def enqueue(
    conn: Connection,
    kind: str,
    key: str,
    payload: dict[str, Any] | None = None,
    *,
    priority: int = 0,
    delay_s: float = 0.0,
    max_attempts: int = 5,
) -> bool:
    """Add a job unless one of the same (kind, key) exists; True when added. Runs in the caller's
    transaction: the job commits with the state that asked for it, or not at all."""
    now = _now()
    params = {
        "kind": kind,
        "key": key,
        "payload": json.dumps(payload or {}),
        "priority": priority,
        "max_attempts": max_attempts,
        "run_after": now + timedelta(seconds=delay_s),
        "created_at": now,
        "updated_at": now,
    }
    return conn.execute(_enqueue_statement(conn.dialect.name), params).first() is not None


@cache
def _enqueue_statement(dialect: str) -> Any:
    """One INSERT ... ON CONFLICT DO NOTHING, whichever process gets there first: no read-then-write
    race, one round trip; built once per dialect (intake is a hot path)."""
    dialect_insert = pg_insert if dialect == "postgresql" else sqlite_insert
    columns = ("kind", "key", "payload", "priority", "max_attempts", "run_after", "created_at", "updated_at")
    return (
        dialect_insert(Job)
        .values({c: bindparam(c) for c in columns})
        .on_conflict_do_nothing(index_elements=["kind", "key"])
        .returning(Job.id)
    )


def _held(job: ClaimedJob) -> tuple[Any, ...]:
    """The condition that this worker's claim of ``job`` still stands."""
    return (
        Job.id == job.id,
        Job.state == "running",
        Job.locked_by == job.worker,
        Job.attempts == job.attempt,
    )


class JobQueue:
    def __init__(self, engine: Engine, *, worker: str | None = None, lease_s: float = 30.0) -> None:
        self.engine = engine
        self.worker = worker or worker_name()
        self.lease = timedelta(seconds=lease_s)

    def claim(self, kinds: list[str] | None = None) -> ClaimedJob | None:
        """The most urgent runnable job, now leased to this worker; None when there is none."""
        now = _now()
        runnable = or_(
            and_(Job.state == "queued", Job.run_after <= now),
            and_(Job.state == "running", Job.locked_until < now),  # its worker died
        )
        pick = select(Job.id).where(runnable)
        if kinds:
            pick = pick.where(Job.kind.in_(kinds))
        pick = pick.order_by(Job.priority.desc(), Job.id).limit(1)
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            row = conn.execute(
                update(Job)
                .where(Job.id == pick.scalar_subquery())
                .values(
                    state="running",
                    locked_by=self.worker,
                    locked_until=now + self.lease,
                    attempts=Job.attempts + 1,
                    updated_at=now,
                )
                .returning(Job.id, Job.kind, Job.key, Job.payload, Job.attempts, Job.max_attempts)
            ).first()
        if row is None:
            return None
        return ClaimedJob(
            row.id, row.kind, row.key, json.loads(row.payload), row.attempts, row.max_attempts, self.worker
        )

    def reclaim_dead(self) -> int:
        """Make the running jobs of this machine's dead workers claimable now, rather than when
        their leases run out (a restart after a crash goes on at once); the number released.
        Their attempts stay counted, so a job that kills its worker each time still ends dead."""
        prefix = machine_name() + ":"
        with self.engine.connect() as conn:
            holders = set(
                conn.execute(
                    select(Job.locked_by)
                    .where(Job.state == "running", Job.locked_by.startswith(prefix, autoescape=True))
                    .distinct()
                ).scalars()
            )
        dead = sorted(h for h in holders if _process_gone(h))
        if not dead:
            return 0
        now = _now()
        with self.engine.begin() as conn:
            released = conn.execute(
                update(Job)
                .where(Job.state == "running", Job.locked_by.in_(dead), Job.locked_until >= now)
                .values(locked_until=now - timedelta(seconds=1))
            ).rowcount
        if released:
            log.warning(
                "took back %d job(s) of %d stopped worker(s): %s", released, len(dead), ", ".join(dead)
            )
        return int(released)

    def finish(self, conn: Connection, job: ClaimedJob) -> None:
        """Mark ``job`` done in the transaction that commits its effects; raises ``LeaseLost`` if
        another worker took it meanwhile (the caller's transaction then rolls back)."""
        done = conn.execute(
            update(Job)
            .where(*_held(job))
            .values(state="done", locked_until=None, updated_at=_now(), last_error="")
        )
        if done.rowcount != 1:
            raise LeaseLost(f"job {job.id} ({job.kind} {job.key}) was taken over by another worker")

    def still_held(self, conn: Connection, job: ClaimedJob) -> bool:
        """Whether this worker still holds ``job``; being an UPDATE, it also locks the job's row
        until the caller's transaction ends."""
        return conn.execute(update(Job).where(*_held(job)).values(updated_at=_now())).rowcount == 1

    def extend(self, job: ClaimedJob) -> bool:
        """Push out the lease of a job this worker still holds; False when it holds it no more."""
        with self.engine.begin() as conn:
            moved = conn.execute(update(Job).where(*_held(job)).values(locked_until=_now() + self.lease))
            return moved.rowcount == 1

    @contextmanager
    def keep_alive(self, job: ClaimedJob, every_s: float | None = None) -> Iterator[None]:
        """While the block runs, renew the job's lease every third of its length, so a long step
        (a long video) is not taken for a dead worker's and run twice."""
        stop = threading.Event()
        interval = every_s if every_s is not None else self.lease.total_seconds() / 3

        def beat() -> None:
            while not stop.wait(interval):
                try:
                    if not self.extend(job):
                        return
                except Exception:  # the database is away: the lease may run out; finish will tell
                    log.warning("could not renew the lease of job %s", job.id, exc_info=True)

        thread = threading.Thread(target=beat, name=f"lease-{job.id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def fail(self, job: ClaimedJob, error: str, *, retry: bool = True) -> str:
        """Record a failed attempt: back to the queue after a backoff, or dead with its reason.
        Returns the job's new state."""
        dead = not retry or job.attempt >= job.max_attempts
        delay = min(BACKOFF_MAX_S, 2.0**job.attempt)
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(
                update(Job)
                .where(Job.id == job.id, Job.locked_by == job.worker, Job.attempts == job.attempt)
                .values(
                    state="dead" if dead else "queued",
                    run_after=now + timedelta(seconds=delay),
                    locked_until=None,
                    last_error=error[:2000],
                    updated_at=now,
                )
            )
        return "dead" if dead else "queued"

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(Job.state, func.count()).group_by(Job.state))
            return {state: int(n) for state, n in rows}

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Job.id, Job.kind, Job.key, Job.attempts, Job.last_error, Job.updated_at)
                .where(Job.state == "dead")
                .order_by(Job.id.desc())
                .limit(limit)
            )
            return [dict(r._mapping) for r in rows]
