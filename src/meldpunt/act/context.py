"""What the act services need: the services' settings, database, clock and audit log, and (in a
worker) the walk's job queue and fetcher, so re-checks share its connection pool and fairness."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import Engine

from meldpunt.audit import AuditLog
from meldpunt.fetch import FetchResult, Page
from meldpunt.pipeline.jobs import JobQueue
from meldpunt.settings import Settings


class Clock(Protocol):
    """``meldpunt.clock.Clock`` (a protocol here: the act room does not import the wiring)."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


class ActNeeds(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def engine(self) -> Engine: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def audit(self) -> AuditLog: ...


class Worker(Protocol):
    """The walk's worker (``pipeline.walk.Walker``) a job runs in: its job queue (a step ends with
    ``queue.finish(conn, job)`` in the transaction of its effects) and its fetcher (SSRF-safe,
    limited, fair per host; its connection pool shared with the walk)."""

    @property
    def queue(self) -> JobQueue: ...

    def fetch_page(self, url: str) -> Page: ...

    def fetch_media(self, url: str, budget_s: float | None = None) -> FetchResult: ...


def utc(at: datetime) -> datetime:
    """A time read from the database, comparable with ``clock.now()``: SQLite hands datetimes back
    without their zone (they are stored as UTC)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
