"""The periodic pass and the job kinds of locate-and-act.

A worker runs :func:`run_ticks` every ``act.tick_s`` seconds: each tick looks at what is due by the
injected clock (takedowns to create and route, notices whose batching window closed, reminders,
re-checks, alert escalations) and turns it into state changes and durable jobs. The jobs do the
slow I/O: ``locate`` (DNS, geo data, RDAP), ``send`` (SMTP, webhooks) and ``recheck`` (fetching).
Ticks are safe to run in several workers at once (conditional updates, unique job keys).

Tests call :func:`settle`: ticks and jobs until nothing is left to do, at the clock's time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from meldpunt.act import (
    alerts,
    forward_in,
    forwarding,
    iccam,
    iccam_import,
    locating,
    notices,
    outbox,
    partners,
    recheck,
    routing,
    survivor_abroad,
    survivors,
)
from meldpunt.act.context import ActNeeds, Worker
from meldpunt.pipeline.jobs import ClaimedJob

log = logging.getLogger(__name__)

Tick = Callable[[ActNeeds], int]

#: in the order an item moves: found illegal -> located -> routed -> noticed -> re-checked
TICKS: tuple[tuple[str, Tick], ...] = (
    ("takedowns", routing.tick_takedowns),
    ("locate", locating.tick_locate),
    ("route", routing.tick_route),
    ("forward", forwarding.tick_forward),
    ("notices", notices.tick_notices),
    ("recheck", recheck.tick_recheck),
    ("alerts", alerts.tick_alerts),
    ("partner_status", forward_in.tick_status),
    ("outbox", outbox.tick_outbox),
    ("partners", partners.tick_partners),
    ("iccam", iccam.tick_iccam),
    ("survivor_scan", survivors.tick_scan),
    ("survivor_news", survivors.tick_news),
    ("survivor_report", survivor_abroad.tick_report),
)


def run_ticks(services: ActNeeds) -> int:
    """One pass of every tick; the number of things each moved, summed. A tick that fails is
    logged and the others still run (the next pass tries it again)."""
    moved = 0
    for name, tick in TICKS:
        try:
            moved += tick(services)
        except Exception:
            log.exception("the %s tick failed; it runs again on the next pass", name)
    return moved


def job_steps(services: ActNeeds, worker: Worker) -> dict[str, Callable[[ClaimedJob], str]]:
    """The act job kinds and their handlers, for the walk's worker (which gives itself: its queue
    and its fetcher). A handler returns a word for the log, like the walk's steps."""
    return {
        locating.LOCATE: lambda job: locating.step_locate(services, worker, job),
        outbox.SEND: lambda job: outbox.step_send(services, worker, job),
        recheck.RECHECK: lambda job: recheck.step_recheck(services, worker, job),
        partners.PARTNER_SEND: lambda job: partners.step_partner_send(services, worker, job),
        iccam.SEND: lambda job: iccam.step_send(services, worker, job),
        iccam.IMPORT: lambda job: iccam_import.step_import(services, worker, job),
        survivors.MATCH: lambda job: survivors.step_match(services, worker, job),
        survivor_abroad.MATCH_IN: lambda job: survivor_abroad.step_match_in(services, worker, job),
    }


def settle(services: Any, *, rounds: int = 100) -> int:
    """Ticks and jobs until neither has anything left to do at the clock's time (tests, the demo);
    the number of things done. ``services``: ``bootstrap.Services`` (the walk's and act's needs)."""
    from meldpunt.pipeline.worker import drain

    done = 0
    for _ in range(rounds):
        moved = run_ticks(services)
        ran = drain(services, ticks=False)  # the pass just ran: a second one in drain doubled the cost
        done += moved + ran
        if moved == 0 and ran == 0:
            return done
    raise RuntimeError(f"locate-and-act did not settle in {rounds} rounds")
