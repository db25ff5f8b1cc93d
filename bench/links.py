"""Link analysis at size: one page of connected groups over N entities, ours (numpy arrays streamed
from the database, ``meldpunt.links.graph.groups``) beside the obvious baseline from the same run
— every edge put in a ``networkx.Graph`` and ``networkx.connected_components`` — time and peak
Python memory (tracemalloc), as ratios.

    .venv/bin/python bench/links.py [--entities 100000] [--db postgresql://...]

Without ``--db`` a fresh SQLite file in a temporary folder. The world: groups of 8 entities, two
reports (one item each) a group (``tests/helpers/links.bulk_world``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import networkx as nx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers.links import bulk_world

from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock
from meldpunt.links.graph import _pairs, groups
from meldpunt.settings import Settings

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _measure(fn: Any) -> tuple[float, float, Any]:
    t0 = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - t0
    tracemalloc.start()
    out = fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return elapsed, peak, out


def baseline(conn: Any) -> int:
    g: nx.Graph = nx.Graph()
    for sql, a, b in (
        ("SELECT entity_id, report_id FROM entity_reports", "e", "r"),
        ("SELECT entity_id, item_id FROM entity_items", "e", "i"),
        ("SELECT report_id, item_id FROM report_items", "r", "i"),
        ("SELECT id, host FROM items WHERE host <> ''", "i", "h"),
    ):
        g.add_edges_from(((a, x), (b, y)) for x, y in _pairs(conn, sql))
    return sum(1 for c in nx.connected_components(g) if any(n[0] == "e" for n in c))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entities", type=int, default=100_000)
    ap.add_argument("--db", default="")
    args = ap.parse_args()
    db = args.db or str(Path(tempfile.mkdtemp()) / "links.db")
    services = Services(Settings.from_env({}, db=db), clock=ManualClock(NOW))
    try:
        t0 = time.perf_counter()
        bulk_world(services.engine, NOW, args.entities)
        print(
            f"{args.entities} entities on {services.engine.dialect.name}: built in {time.perf_counter() - t0:.1f} s"
        )
        with services.engine.connect() as conn:
            t_ours, m_ours, page = _measure(lambda: groups(conn, limit=25))
            t_base, m_base, n_base = _measure(lambda: baseline(conn))
        assert page.total == n_base, (page.total, n_base)
        print(f"groups with an entity: {page.total}")
        print(f"ours (arrays):   {t_ours:6.2f} s  peak {m_ours:7.1f} MiB")
        print(f"networkx graph:  {t_base:6.2f} s  peak {m_base:7.1f} MiB")
        print(f"ratio: {t_base / t_ours:.1f}x faster, {m_base / m_ours:.1f}x less memory")
    finally:
        services.close()


if __name__ == "__main__":
    main()
