"""The statistics page's figures on a grown database (#13): ``--items`` items reported over a year
(default a million) with their reports, decisions, takedowns located in a few dozen countries,
removals, notices, forwards, alerts and viewing time, written with bulk INSERTs. Times
:func:`meldpunt.act.figures.compute` (every figure of the year) beside the same SQL run alone: the
statements it sent, captured, sent again straight through the DBAPI cursor with every row fetched
(the ratio is what building the figures in Python costs beyond the database's own work). Then the
charts drawn from them, and the annual report written, for scale.

    .venv/bin/python bench/statistics_page.py [--items 1000000] [--db URL] [--keep DIR] [--reuse]
    PYTHONPATH=. .venv/bin/python bench/statistics_page.py --postgres  # a cluster as the tests start one

Synthetic rows only (no media, no content): URLs on example.test, hashes none. (Not named
``statistics.py``: run as a script, that would shadow the standard library's module for every
script in bench/.)
"""

from __future__ import annotations

import argparse
import hashlib
import random
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, event, insert

from meldpunt.act import annual, charts, figures
from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock
from meldpunt.settings import Settings
from meldpunt.store.acting import Alert, Contact, Location, Notice, Takedown
from meldpunt.store.audit import AuditEntryRow
from meldpunt.store.forwarding import ForwardOut
from meldpunt.store.reports import Item, Report
from meldpunt.store.triage import TriageStatus
from meldpunt.store.wellness import ViewingTime

YEAR = 2026
START = datetime(YEAR, 1, 1, tzinfo=UTC)
NOW = datetime(YEAR + 1, 1, 10, tzinfo=UTC)
BATCH = 20000
#: where the confirmed illegal content was hosted (weights)
COUNTRIES = {
    "NL": 30,
    "US": 22,
    "DE": 7,
    "FR": 5,
    "RU": 5,
    "LU": 3,
    "SE": 2,
    "GB": 3,
    "RO": 2,
    "BG": 2,
    "LV": 2,
    "UA": 2,
    "CA": 2,
    "HK": 2,
    "SG": 1,
    "JP": 1,
    "BR": 1,
    "TR": 1,
    "VN": 1,
    "ZA": 1,
    "AU": 1,
    "": 4,
}
PARTNERS = ("hotline-de", "hotline-fr", "hotline-us", "hotline-au")
OUTCOMES = (
    ("removed", 60),
    ("", 15),
    ("received", 8),
    ("assessed", 5),
    ("not_illegal", 5),
    ("unavailable", 4),
    ("failed", 3),
)


def _weighted(rng: random.Random, table: dict[str, int] | tuple[tuple[str, int], ...]) -> str:
    pairs = list(table.items()) if isinstance(table, dict) else list(table)
    return rng.choices([k for k, _ in pairs], [w for _, w in pairs])[0]


def _batches(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def generate(engine: Engine, n: int, *, seed: int = 13, progress: Any = None) -> None:
    """``n`` items (one report each) over the year and everything that followed from them."""
    rng = random.Random(seed)
    seconds = 365 * 86400
    with engine.begin() as conn:
        contacts = []
        for k in range(40):
            contacts.append(
                int(
                    conn.execute(
                        insert(Contact)
                        .values(
                            scope="provider",
                            match=f"provider-{k}",
                            name=f"Hosting {k:02d}",
                            channel="email",
                            address=f"abuse@p{k}.example.test",
                            created_at=START,
                            updated_at=START,
                        )
                        .returning(Contact.id)
                    ).scalar_one()
                )
            )
    plan = []  # (created, state, illegal, channel)
    for i in range(n):
        created = START + timedelta(seconds=int(seconds * (i + rng.random()) / n))
        channel = _weighted(rng, {"public": 70, "api": 25, "partner": 5})
        state = _weighted(
            rng, {"known": 40, "classified": 35, "needs_review": 8, "unavailable": 14, "failed": 3}
        )
        illegal = (state == "known" and rng.random() < 0.92) or (
            state == "classified" and rng.random() < 0.55
        )
        plan.append((created, state, illegal, channel))
    with engine.begin() as conn:
        first_report = _next_id(conn, Report)
        first_item = _next_id(conn, Item)

        def reports() -> Iterator[dict[str, Any]]:
            for i, (created, _, _, channel) in enumerate(plan):
                source = {"public": "public", "api": "api:ngo-feed", "partner": "partner:hotline-de"}[channel]
                yield {
                    "id": first_report + i,
                    "receipt_hash": hashlib.sha256(f"r{first_report + i}".encode()).hexdigest(),
                    "source": source,
                    "seen_on": "website",
                    "urgent": rng.random() < 0.004,
                    "created_at": created,
                }

        for b in _batches(reports()):
            conn.execute(insert(Report), b)
        if progress:
            progress("reports")

        def items() -> Iterator[dict[str, Any]]:
            for i, (created, state, _, _) in enumerate(plan):
                url = f"http://s{i % 9973}.example.test/p/{i}"
                yield {
                    "id": first_item + i,
                    "report_id": first_report + i,
                    "url": url,
                    "url_key": hashlib.sha256(url.encode()).hexdigest(),
                    "host": f"s{i % 9973}.example.test",
                    "state": state,
                    "created_at": created,
                    "updated_at": created,
                }

        for b in _batches(items()):
            conn.execute(insert(Item), b)
        if progress:
            progress("items")

        finals, locations, takedowns, forwards, views = [], [], [], [], []
        td_id = _next_id(conn, Takedown)
        loc_id = _next_id(conn, Location)
        for i, (created, state, illegal, _) in enumerate(plan):
            item_id = first_item + i
            if state == "classified":
                finals.append(
                    {
                        "item_id": item_id,
                        "stage": "final",
                        "final": "{}",
                        "illegal": illegal,
                        "finalized_at": created,
                        "updated_at": created,
                    }
                )
            if state == "known" and rng.random() < 0.02:
                views.append(item_id)
            if not illegal:
                continue
            country = _weighted(rng, COUNTRIES)
            locations.append(
                {
                    "id": loc_id,
                    "item_id": item_id,
                    "located_at": created,
                    "country": country,
                    "provider": f"provider {country}",
                }
            )
            removed = rng.random() < 0.88
            minutes = int(rng.lognormvariate(7.0, 1.3)) + 5
            notice_minutes = max(1, minutes - int(rng.uniform(10, 600)))
            removed_at = created + timedelta(minutes=minutes)
            if removed_at >= NOW:
                removed = False
            forward = rng.random() < 0.05
            takedowns.append(
                {
                    "id": td_id,
                    "item_id": item_id,
                    "state": "removed" if removed else ("forwarded" if forward else "noticed"),
                    "decided_by": "hash_list" if state == "known" else "analyst",
                    "labels": "{}",
                    "location_id": loc_id,
                    "contact_id": contacts[rng.randrange(len(contacts))],
                    "route": "{}",
                    "reported_at": created,
                    "removed_at": removed_at if removed else None,
                    "minutes_from_report": minutes if removed else None,
                    "minutes_from_notice": notice_minutes if removed else None,
                    "created_at": created,
                    "updated_at": created,
                }
            )
            if forward:
                outcome = _weighted(rng, OUTCOMES)
                forwards.append(
                    {
                        "takedown_id": td_id,
                        "item_id": item_id,
                        "partner": PARTNERS[rng.randrange(len(PARTNERS))],
                        "reference": f"BE-{td_id}",
                        "state": "failed" if outcome == "failed" else "sent",
                        "last_status": "" if outcome == "failed" else outcome,
                        "created_at": created,
                        "updated_at": created,
                    }
                )
            td_id += 1
            loc_id += 1
        for table, rows in (
            (TriageStatus, finals),
            (Location, locations),
            (Takedown, takedowns),
            (ForwardOut, forwards),
        ):
            for b in _batches(iter(rows)):
                conn.execute(insert(table), b)
        if progress:
            progress("decisions and takedowns")

        seq = _next_seq(conn)
        audit_rows = [
            {
                "seq": seq + k,
                "at": START,
                "actor": "ana",
                "action": "item.view",
                "subject": f"item:{item_id}",
                "details": "{}",
                "prev_hash": "0" * 64,
                "hash": "0" * 64,
            }
            for k, item_id in enumerate(views)
        ]
        for b in _batches(iter(audit_rows)):
            conn.execute(insert(AuditEntryRow), b)
        notices = []
        for k in range(max(1, len(takedowns) // 25)):
            opened = START + timedelta(seconds=rng.randrange(seconds))
            closed = rng.random() < 0.9
            escalated = not closed and rng.random() < 0.5
            notices.append(
                {
                    "reference": f"MP-B-{k}",
                    "contact_id": contacts[k % len(contacts)],
                    "channel": "email",
                    "address": "abuse@example.test",
                    "state": "closed" if closed else "sent",
                    "opened_at": opened,
                    "send_after": opened,
                    "sent_at": opened + timedelta(minutes=30),
                    "rounds": 1,
                    "escalation": 1 if escalated else 0,
                    "escalated_at": opened + timedelta(days=3) if escalated else None,
                    "closed_at": opened + timedelta(days=rng.uniform(0.1, 20)) if closed else None,
                }
            )
        for b in _batches(iter(notices)):
            conn.execute(insert(Notice), b)
        alerts = []
        for _ in range(max(1, n // 400)):
            raised = START + timedelta(seconds=rng.randrange(seconds))
            ack = int(rng.lognormvariate(6.0, 0.8))
            alerts.append(
                {
                    "raised_at": raised,
                    "state": "acknowledged",
                    "acknowledged_at": raised + timedelta(seconds=ack),
                    "acknowledged_by": "sen",
                    "ack_seconds": ack,
                }
            )
        for b in _batches(iter(alerts)):
            conn.execute(insert(Alert), b)
        viewing = []
        day = date(YEAR, 1, 1)
        while day.year == YEAR:
            if day.weekday() < 5:
                for who in range(6):
                    viewing.append(
                        {"user": f"analyst{who}", "day": day, "seconds": rng.randrange(1800, 4 * 3600)}
                    )
            day += timedelta(days=1)
        conn.execute(insert(ViewingTime), viewing)
        if progress:
            progress("notices, forwards, alerts, viewing")
    if engine.dialect.name == "postgresql":
        with engine.connect() as c:
            c.exec_driver_sql("ANALYZE")
            c.commit()


def _next_id(conn: Any, table: Any) -> int:
    from sqlalchemy import func, select

    return int(conn.execute(select(func.coalesce(func.max(table.id), 0))).scalar_one()) + 1


def _next_seq(conn: Any) -> int:
    from sqlalchemy import func, select

    return int(conn.execute(select(func.coalesce(func.max(AuditEntryRow.seq), 0))).scalar_one()) + 1


def captured(engine: Engine, period: figures.Period) -> tuple[float, list[tuple[str, Any]]]:
    """Time ``compute`` and record every statement it sent, with its parameters."""
    sent: list[tuple[str, Any]] = []

    def record(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        t = time.perf_counter()
        figures.compute(engine, period)
        return time.perf_counter() - t, sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def alone(engine: Engine, sent: list[tuple[str, Any]]) -> float:
    """The same statements straight through the DBAPI, every row fetched."""
    raw = engine.raw_connection()
    try:
        t = time.perf_counter()
        cur = raw.cursor()
        for statement, parameters in sent:
            cur.execute(statement, parameters)
            if cur.description is not None:
                cur.fetchall()
        took = time.perf_counter() - t
        raw.rollback()
        return took
    finally:
        raw.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--db", default="")
    ap.add_argument(
        "--postgres", action="store_true", help="start a throw-away PostgreSQL cluster (as the tests do)"
    )
    ap.add_argument("--keep", default="", help="also write the annual report into this folder")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reuse", action="store_true", help="measure the --db as it is (made by an earlier run)")
    args = ap.parse_args()
    console = Console()
    cluster = None
    db = args.db
    if args.postgres:
        from tests.conftest import PostgresCluster

        cluster = PostgresCluster()
        cluster.start()
        db = cluster.create_database(migrated=True)
    db = db or str(Path(tempfile.mkdtemp(prefix="mp-bench-")) / "bench.db")
    services = Services(Settings.from_env({}, db=db), clock=ManualClock(NOW))
    try:
        if not args.reuse:
            t = time.perf_counter()
            generate(services.engine, args.items, progress=lambda step: console.log(f"generated {step}"))
            console.log(f"generated {args.items:,} items in {time.perf_counter() - t:.1f} s")
        period = figures.Period.year(YEAR)
        ours, base = [], []
        _, sent = captured(services.engine, period)  # a first pass warms the caches for both
        for r in range(args.rounds):  # and the order alternates, so neither runs on the other's warm pages
            if r % 2:
                base.append(alone(services.engine, sent))
            took, sent = captured(services.engine, period)
            ours.append(took)
            if not r % 2:
                base.append(alone(services.engine, sent))
        f = figures.compute(services.engine, period)
        t = time.perf_counter()
        drawn = charts.charts(f, annual.english)
        for c in drawn:
            c.svg()
        draw_s = time.perf_counter() - t
        backend = "PostgreSQL" if services.engine.dialect.name == "postgresql" else "SQLite"
        table = Table(title=f"statistics of {YEAR}: {args.items:,} items, {backend} (best of {args.rounds})")
        for col in ("", "seconds", "ours / SQL alone"):
            table.add_column(col)
        table.add_row("figures (act.figures.compute)", f"{min(ours):.2f}", f"{min(ours) / min(base):.2f}")
        table.add_row(f"the same {len(sent)} statements alone (DBAPI)", f"{min(base):.2f}", "1.00")
        table.add_row(f"{len(drawn)} charts drawn (SVG)", f"{draw_s:.2f}", "")
        if args.keep:
            t = time.perf_counter()
            made = annual.write(services.engine, YEAR, Path(args.keep), hotline="meldpunt (bench)", now=NOW)
            table.add_row(f"annual report ({made.pdf.name})", f"{time.perf_counter() - t:.2f}", "")
        console.print(table)
        console.print(
            f"confirmed illegal {f.illegal:,} of {f.assessed:,} assessed; removed {f.removal_from_report.count:,}, "
            f"median {f.removal_from_report.median:.1f} h"
        )
    finally:
        services.close()
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    main()
