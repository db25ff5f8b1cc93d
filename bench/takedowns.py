"""The takedown tick on a grown database: ``--items`` items with a final illegal decision that have
their takedown already and ``--new`` that do not, on SQLite (a temporary file) or ``--db``. Ours
(:func:`meldpunt.act.routing.tick_takedowns`: one query for items without a takedown) beside a
baseline from the same run: every classified item read into Python and checked there. Then
routing: ``--new`` takedowns routed by :func:`meldpunt.act.routing.tick_route`, per second.

    .venv/bin/python bench/takedowns.py [--items 20000] [--new 200] [--db URL]

Synthetic rows only (no media, no content): URLs on example.test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import insert, select, update

from meldpunt.act import routing
from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock
from meldpunt.domain.acting import TakedownState
from meldpunt.settings import Settings
from meldpunt.store.acting import Location, Takedown
from meldpunt.store.reports import Item, Report, ReportItem
from meldpunt.store.triage import TriageStatus

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
FINAL = json.dumps({"status": "baseline", "us": "A1"})


def seed(services: Services, items: int, new: int) -> list[int]:
    """``items`` decided items with a takedown and ``new`` without; the new ones' ids."""
    total = items + new
    with services.engine.begin() as conn:
        rid = conn.execute(
            insert(Report)
            .values(receipt_hash="0" * 64, source="public", seen_on="website", created_at=NOW)
            .returning(Report.id)
        ).scalar_one()
        rows = []
        for n in range(total):
            url = f"https://h{n % 500}.example.test/p/{n}"
            rows.append(
                {
                    "report_id": rid,
                    "url": url,
                    "url_key": hashlib.sha256(url.encode()).hexdigest(),
                    "host": f"h{n % 500}.example.test",
                    "state": "classified",
                    "created_at": NOW,
                    "updated_at": NOW,
                }
            )
        for start in range(0, total, 5000):
            conn.execute(insert(Item), rows[start : start + 5000])
        ids = [int(i) for i in conn.execute(select(Item.id).order_by(Item.id)).scalars()]
        conn.execute(insert(ReportItem), [{"report_id": rid, "item_id": i} for i in ids])
        conn.execute(
            insert(TriageStatus),
            [
                {
                    "item_id": i,
                    "stage": "final",
                    "final": FINAL,
                    "illegal": True,
                    "bank_pending": False,
                    "finalized_at": NOW,
                    "updated_at": NOW,
                }
                for i in ids
            ],
        )
        old = ids[:items]
        for start in range(0, len(old), 5000):
            conn.execute(
                insert(Takedown),
                [
                    {
                        "item_id": i,
                        "state": "noticed",
                        "labels": "{}",
                        "reported_at": NOW,
                        "created_at": NOW,
                        "updated_at": NOW,
                    }
                    for i in old[start : start + 5000]
                ],
            )
    return ids[items:]


def baseline(services: Services) -> int:
    """What the tick must not be: every decided item read, the ones without a takedown picked in Python."""
    with services.engine.connect() as conn:
        decided = conn.execute(
            select(Item.id, TriageStatus.final, TriageStatus.illegal, TriageStatus.stage).join(
                TriageStatus, TriageStatus.item_id == Item.id
            )
        ).all()
        have = set(conn.execute(select(Takedown.item_id)).scalars())
    return sum(1 for r in decided if r.stage == "final" and r.illegal and r.id not in have)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=20000)
    ap.add_argument("--new", type=int, default=200)
    ap.add_argument("--db", default="")
    args = ap.parse_args()
    db = args.db or str(Path(tempfile.mkdtemp(prefix="mp-bench-")) / "bench.db")
    services = Services(Settings.from_env({}, db=db), clock=ManualClock(NOW))
    console = Console()
    new_ids = seed(services, args.items, args.new)

    t = time.perf_counter()
    found = baseline(services)
    base_s = time.perf_counter() - t
    t = time.perf_counter()
    opened = routing.tick_takedowns(services)
    ours_s = time.perf_counter() - t
    assert found == opened == args.new, (found, opened)
    t = time.perf_counter()
    again = routing.tick_takedowns(services)  # the steady state: nothing new
    idle_s = time.perf_counter() - t
    t = time.perf_counter()
    baseline(services)
    base_idle_s = time.perf_counter() - t

    with services.engine.begin() as conn:
        conn.execute(
            insert(Location),
            [
                {
                    "item_id": i,
                    "located_at": NOW,
                    "host": f"h{i % 500}.example.test",
                    "ip": "192.0.2.1",
                    "country": "BE",
                }
                for i in new_ids
            ],
        )
        conn.execute(
            update(Takedown).where(Takedown.item_id.in_(new_ids)).values(state=TakedownState.TO_ROUTE.value)
        )
    t = time.perf_counter()
    routed = routing.tick_route(services)
    route_s = time.perf_counter() - t
    assert again == 0 and routed == args.new

    table = Table(title=f"takedown tick: {args.items:,} decided items with a takedown, {args.new:,} without")
    for col in ("", "ours (s)", "baseline: scan in Python (s)", "baseline / ours"):
        table.add_column(col, justify="right")
    table.add_row(
        "a tick opening the new ones (baseline: finding them only)",
        f"{ours_s:.3f}",
        f"{base_s:.3f}",
        f"{base_s / ours_s:.1f}×",
    )
    table.add_row(
        "a tick with nothing new", f"{idle_s:.3f}", f"{base_idle_s:.3f}", f"{base_idle_s / idle_s:.1f}×"
    )
    console.print(table)
    console.print(
        f"routing: {routed:,} takedowns in {route_s:.2f} s = {routed / route_s:,.0f} per second ({db.split('://')[0]})"
    )
    services.close()


if __name__ == "__main__":
    main()
