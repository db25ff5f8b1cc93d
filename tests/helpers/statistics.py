"""A small world for the statistics (#13): a year of reports through every channel, decisions by
hash lists and analysts, takedowns located in several countries and removed after known times,
notices, forwards, urgent alerts and viewing time — rows written straight into the tables with the
locate-and-act seeds, so the figures are checked without walking the pipeline. No media at all."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, insert, select, update

from meldpunt.audit import AuditLog
from meldpunt.domain.acting import TakedownState
from meldpunt.domain.reports import ItemState
from meldpunt.store.acting import Alert, Notice
from meldpunt.store.forwarding import ForwardOut
from meldpunt.store.reports import Item, Report
from meldpunt.store.triage import TriageStatus
from meldpunt.store.wellness import ViewingTime
from tests.helpers.acting import seed_contact, seed_item, seed_location, seed_takedown

#: the seeded year, and a Monday in it
YEAR = 2026
MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@dataclass
class Seeded:
    items: list[int] = field(default_factory=list)
    #: item -> (country, provider, minutes from report) of its removal
    removed: dict[int, tuple[str, str, int]] = field(default_factory=dict)


def _item(
    engine: Engine,
    seeded: Seeded,
    n: int,
    at: datetime,
    state: ItemState,
    source: str = "public",
    *,
    urgent: bool = False,
) -> int:
    iid, _ = seed_item(engine, f"http://site{n}.example/page/{n}", now=at, state=state, urgent=urgent)
    with engine.begin() as conn:
        report = select(Item.report_id).where(Item.id == iid).scalar_subquery()
        conn.execute(update(Report).where(Report.id == report).values(source=source, urgent=urgent))
    seeded.items.append(iid)
    return iid


def _final(engine: Engine, item_id: int, at: datetime, *, illegal: bool) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(TriageStatus).values(
                item_id=item_id, stage="final", final="{}", illegal=illegal, finalized_at=at, updated_at=at
            )
        )


def seed_statistics(engine: Engine) -> Seeded:
    """The world every statistics test reads (see the module's docstring)."""
    s = Seeded()
    audit = AuditLog(engine, clock=lambda: MONDAY)
    nl = seed_contact(engine, now=MONDAY, match="hosting-nl", name="Hosting NL", scope="provider")
    us = seed_contact(engine, now=MONDAY, match="cloud-us", name="", scope="provider")
    week = timedelta(days=7)
    hour = timedelta(hours=1)
    n = 0

    # hash-list decisions (state known): illegal, with takedowns; one was opened by an analyst
    removals = [  # (week offset, country, contact, minutes from report, minutes from notice)
        (0, "NL", nl, 30, 10),
        (0, "NL", nl, 300, 200),
        (1, "NL", nl, 2000, 1500),
        (1, "US", us, 5000, 4000),
        (2, "US", us, 12000, None),
        (3, "", None, 90, 60),
    ]
    for offset, country, contact, from_report, from_notice in removals:
        n += 1
        at = MONDAY + offset * week + n * hour
        iid = _item(engine, s, n, at, ItemState.KNOWN)
        loc = seed_location(engine, iid, now=at, country=country, provider="")
        removed_at = at + timedelta(minutes=from_report)
        seed_takedown(
            engine,
            iid,
            now=at,
            state=TakedownState.REMOVED,
            contact_id=contact,
            location_id=loc,
            decided_by="hash_list",
            removed_at=removed_at,
            minutes_from_report=from_report,
            minutes_from_notice=from_notice,
        )
        provider = {nl: "Hosting NL", us: "cloud-us", None: ""}[contact]
        s.removed[iid] = (country, provider, from_report)
    audit.append("ana", "item.view", f"item:{s.items[1]}")

    # analysts' decisions: two illegal (one still online in DE, one forwarded), two not illegal
    for k, (illegal, country) in enumerate([(True, "DE"), (True, "FR"), (False, ""), (False, "")]):
        n += 1
        at = MONDAY + k * week + n * hour
        iid = _item(engine, s, n, at, ItemState.CLASSIFIED, "api:ngo-feed" if k % 2 else "public")
        _final(engine, iid, at, illegal=illegal)
        if illegal:
            loc = seed_location(engine, iid, now=at, country=country, provider="Provider " + country)
            td = seed_takedown(
                engine,
                iid,
                now=at,
                state=TakedownState.NOTICED if country == "DE" else TakedownState.FORWARDED,
                location_id=loc,
            )
            if country == "FR":
                _forward(engine, td, iid, "hotline-fr", at, state="sent", status="removed")

    # a partner's forward in (channel partner), one urgent public report, items awaiting review
    n += 1
    _item(engine, s, n, MONDAY + 2 * week, ItemState.NEEDS_REVIEW, "partner:hotline-de")
    n += 1
    urgent = _item(engine, s, n, MONDAY + 2 * week + hour, ItemState.NEEDS_REVIEW, urgent=True)
    n += 1
    _item(engine, s, n, MONDAY + 5 * week, ItemState.UNAVAILABLE, "api:ngo-feed")

    # forwards without a takedown of their own here: seeded on extra takedowns
    for k, (partner, state, status) in enumerate(
        [("hotline-de", "sent", ""), ("hotline-de", "sent", "received"), ("hotline-fr", "failed", "")]
    ):
        n += 1
        at = MONDAY + 4 * week + k * hour
        iid = _item(engine, s, n, at, ItemState.CLASSIFIED)
        _final(engine, iid, at, illegal=True)
        td = seed_takedown(engine, iid, now=at, state=TakedownState.FORWARDED)
        _forward(engine, td, iid, partner, at, state=state, status=status)

    # notices: three sent; one closed in the year, one escalated to the overdue queue
    for k, (closed, escalated) in enumerate([(True, False), (False, True), (False, False)]):
        at = MONDAY + k * week
        with engine.begin() as conn:
            conn.execute(
                insert(Notice).values(
                    reference=f"MP-STAT-{k}",
                    contact_id=nl,
                    channel="email",
                    address="abuse@hosting.example",
                    state="closed" if closed else "sent",
                    opened_at=at,
                    send_after=at,
                    sent_at=at + hour,
                    rounds=1,
                    escalation=1 if escalated else 0,
                    escalated_at=at + 3 * 24 * hour if escalated else None,
                    closed_at=at + 48 * hour if closed else None,
                )
            )

    # urgent alerts: one acknowledged after 10 minutes, one after 50, one still open
    for k, ack in enumerate([600, 3000, None]):
        at = MONDAY + k * week
        with engine.begin() as conn:
            conn.execute(
                insert(Alert).values(
                    item_id=urgent if k == 0 else None,
                    report_id=None,
                    raised_at=at,
                    state="acknowledged" if ack else "open",
                    acknowledged_at=at + timedelta(seconds=ack) if ack else None,
                    acknowledged_by="sen" if ack else "",
                    ack_seconds=ack,
                )
            )

    # viewing: four people in the week of MONDAY (shown), one person two weeks on (not shown)
    with engine.begin() as conn:
        for k, user in enumerate(["ana", "bea", "cas", "dan"]):
            conn.execute(
                insert(ViewingTime).values(user=user, day=date(2026, 3, 3 + k), seconds=1800 * (k + 1))
            )
        conn.execute(insert(ViewingTime).values(user="ana", day=date(2026, 3, 17), seconds=5400))

    # last year: must count nowhere in 2026
    old = datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
    n += 1
    iid = _item(engine, s, n, old, ItemState.KNOWN)
    seed_takedown(
        engine,
        iid,
        now=old,
        state=TakedownState.REMOVED,
        decided_by="hash_list",
        removed_at=old + timedelta(minutes=30),
        minutes_from_report=30,
    )
    s.items.remove(iid)
    with engine.begin() as conn:
        conn.execute(insert(ViewingTime).values(user="eve", day=date(2025, 12, 31), seconds=999))
    return s


def _forward(
    engine: Engine, takedown_id: int, item_id: int, partner: str, at: datetime, *, state: str, status: str
) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(ForwardOut).values(
                takedown_id=takedown_id,
                item_id=item_id,
                partner=partner,
                reference=f"BE-{takedown_id}-x",
                state=state,
                last_status=status,
                last_status_at=at if status else None,
                created_at=at,
                sent_at=at if state == "sent" else None,
                updated_at=at,
            )
        )


__all__ = ["MONDAY", "YEAR", "Seeded", "seed_statistics"]
