"""Re-checking acted-on URLs until the content is gone: removal, moves, time to removal (#10 part
"recheck")."""

from __future__ import annotations

from meldpunt.act.context import ActNeeds, Worker
from meldpunt.pipeline.jobs import ClaimedJob

RECHECK = "recheck"


def tick_recheck(services: ActNeeds) -> int:
    """Monitored takedowns whose ``next_check_at`` has come: enqueue their ``recheck`` job."""
    return 0


def step_recheck(services: ActNeeds, worker: Worker, job: ClaimedJob) -> str:
    raise NotImplementedError("recheck: to be built")
