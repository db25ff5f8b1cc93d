"""Every message that leaves meldpunt (e-mail, webhooks): queued in the deciding transaction,
sent by the durable ``send`` job (#10 part "notices")."""

from __future__ import annotations

from meldpunt.act.context import ActNeeds, Worker
from meldpunt.pipeline.jobs import ClaimedJob

SEND = "send"


def step_send(services: ActNeeds, worker: Worker, job: ClaimedJob) -> str:
    raise NotImplementedError("send: to be built")
