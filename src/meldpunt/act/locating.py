"""The ``locate`` job: where an item's URL is hosted, recorded as a ``locations`` row (each fact
with its source and age) and a timeline line. Enqueued for every fetched item by the walk's
fetch step... (to be built: #10 part "locate")."""

from __future__ import annotations

from meldpunt.act.context import ActNeeds, Worker
from meldpunt.pipeline.jobs import ClaimedJob

LOCATE = "locate"


def tick_locate(services: ActNeeds) -> int:
    """Takedowns in ``to_locate``: enqueue their ``locate`` job (or, when the item has a fresh
    location already, move them on to ``to_route``). The number moved."""
    return 0


def step_locate(services: ActNeeds, worker: Worker, job: ClaimedJob) -> str:
    raise NotImplementedError("locate: to be built")
