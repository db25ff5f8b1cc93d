"""The alerts tick on a large items table: how long one pass (urgent items without an alert, open
alerts past their escalation time) takes with the partial index ``ix_items_urgent_updated``,
against the same pass with that index dropped (a scan of every item), from the same run.

    .venv/bin/python bench/alerts_tick.py [--items 300000] [--db URL]

Every worker runs this pass every ``act.tick_s`` (10 s): it must cost next to nothing while the
items table grows. Default database: a fresh SQLite file in a temporary folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import insert, text

from meldpunt.act.alerts import tick_alerts
from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock
from meldpunt.settings import AlertSettings, Settings
from meldpunt.store.reports import Item, Report

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def seed(services: Services, n: int) -> None:
    """``n`` items over the last 60 days, one in 10,000 urgent (already alerted after the first
    pass); one report holds them (the report is not what is measured)."""
    with services.engine.begin() as conn:
        report = conn.execute(
            insert(Report)
            .values(receipt_hash="b" * 64, source="public", seen_on="website", created_at=NOW)
            .returning(Report.id)
        ).scalar_one()
        batch = []
        for i in range(n):
            at = NOW - timedelta(minutes=(i * 60 * 24 * 60) // n)
            batch.append(
                {
                    "report_id": report,
                    "url": f"http://bench.test/{i}",
                    "url_key": f"{i:064x}",
                    "host": "bench.test",
                    "state": "classified",
                    "urgent": i % 10_000 == 0,
                    "server_ip": "",
                    "created_at": at,
                    "updated_at": at,
                }
            )
            if len(batch) == 10_000:
                conn.execute(insert(Item), batch)
                batch = []
        if batch:
            conn.execute(insert(Item), batch)


def timed(services: Services, rounds: int) -> float:
    """Seconds per pass, the best of ``rounds`` (nothing to do: the steady state)."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        tick_alerts(services)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--db", default="")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or str(Path(tmp) / "bench.db")
        services = Services(Settings(db=db, alert=AlertSettings()), ManualClock(NOW))
        try:
            seed(services, args.items)
            tick_alerts(services)  # the urgent items of the last day get their alerts once
            ours = timed(services, args.rounds)
            with services.engine.begin() as conn:
                conn.execute(text("DROP INDEX ix_items_urgent_updated"))
            baseline = timed(services, args.rounds)
            with services.engine.begin() as conn:  # leave a --db as it was
                conn.execute(
                    text(
                        "CREATE INDEX ix_items_urgent_updated ON items (updated_at) WHERE urgent IS "
                        + ("true" if conn.dialect.name == "postgresql" else "1")
                    )
                )
        finally:
            services.close()
    table = Table(title=f"alerts tick, {args.items:,} items ({services.engine.dialect.name})")
    table.add_column("pass")
    table.add_column("ms per tick", justify="right")
    table.add_row("with the partial index (ours)", f"{ours * 1000:.2f}")
    table.add_row("without it (a scan of every item)", f"{baseline * 1000:.2f}")
    table.add_row("ratio (baseline / ours)", f"{baseline / ours:.1f}x")
    console.print(table)


if __name__ == "__main__":
    main()
