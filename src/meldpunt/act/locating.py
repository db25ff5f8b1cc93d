"""The ``locate`` job: where an item's URL is hosted, recorded as a ``locations`` row (each fact
with its source and age) and a timeline line (#10 part "locate": to be built).

The walk's fetch step enqueues it for every fetched item; routing (a takedown in ``to_locate``)
and re-checks (a move) enqueue it again through :func:`enqueue_locate`. After a run, a takedown
of the item in ``to_locate`` moves to ``to_route``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from meldpunt.act.context import ActNeeds, Worker
from meldpunt.pipeline.jobs import ClaimedJob

LOCATE = "locate"


def enqueue_locate(conn: Connection, item_id: int, *, reason: str, now: datetime) -> bool:
    """Ask for the item to be located (again), in the caller's transaction; ``reason`` (fetched,
    takedown, moved) goes on the timeline. True when a new job was added."""
    raise NotImplementedError("locate: to be built")


def tick_locate(services: ActNeeds) -> int:
    """Takedowns in ``to_locate``: enqueue their ``locate`` job (or, when the item has a fresh
    location already, move them on to ``to_route``). The number moved."""
    return 0


def step_locate(services: ActNeeds, worker: Worker, job: ClaimedJob) -> str:
    raise NotImplementedError("locate: to be built")
