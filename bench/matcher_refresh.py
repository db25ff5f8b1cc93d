"""From an import in one process to its first match in another, under steady matching load: the
shared MatcherCache (ours: the ``banks_version`` row checked every second, only the new entries
taken in) against the old refresh (the whole index opened again, at most once a minute).

One process imports 1,000 new PDQ hashes into a bank of ``--size`` while another (a second
Services on the same database, a thread matching without pause) waits for one of them to match.
Printed: the latency from the import's commit to the first match, and what a refresh costs the
matching process (taking in the new entries vs opening the whole index again) — same run, same
database. The old latency is the refresh interval plus one reopen: up to 60 s by configuration.

    .venv/bin/python bench/matcher_refresh.py [--size 1000000] [--check 1.0]

Synthetic random hashes only; the database is a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from meldpunt.banks.formats.base import HashRecord
from meldpunt.bootstrap import Services
from meldpunt.domain import Labels, SignalType
from meldpunt.index import PDQIndex
from meldpunt.pipeline.matcher_cache import MatcherCache
from meldpunt.settings import Settings
from meldpunt.signals import MediaKind, Signals

OLD_REFRESH_S = 60.0


def _records(rng: random.Random, n: int) -> list[HashRecord]:
    return [HashRecord(SignalType.PDQ, f"{rng.getrandbits(256):064x}", Labels()) for _ in range(n)]


def _image(pdq: str) -> Signals:
    return Signals(
        path="q.png", size=1, md5="", sha1="", sha256="", kind=MediaKind.IMAGE, pdq=pdq, pdq_quality=100
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--new", type=int, default=1000)
    ap.add_argument("--check", type=float, default=1.0)
    args = ap.parse_args()
    rng = random.Random(8)
    console = Console(stderr=True)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(db=str(Path(tmp) / "bench.db"))
        importer, matcher_side = Services(settings), Services(settings)
        console.print(f"importing a base of {args.size:,} PDQ hashes …")
        importer.banks.import_records(
            "base",
            _records(rng, args.size),
            source_name="base",
            source_sha256="0" * 64,
            fmt="plain",
            policy="auto",
        )
        cache = MatcherCache(matcher_side, args.check)
        t = time.perf_counter()
        cache.get()
        first_open = time.perf_counter() - t
        cache.get().match(_image(f"{rng.getrandbits(256):064x}"))  # compile the search kernels first
        fresh_warm = PDQIndex()  # and those of a small index (the fresh part)
        fresh_warm.add([f"{rng.getrandbits(256):064x}"], [1])
        fresh_warm.search([f"{rng.getrandbits(256):064x}"], 31)

        stop = threading.Event()
        queries = [f"{rng.getrandbits(256):064x}" for _ in range(256)]
        served = [0]

        def load() -> None:  # steady traffic on the matching side
            while not stop.is_set():
                cache.get().match(_image(queries[served[0] % len(queries)]))
                served[0] += 1

        worker = threading.Thread(target=load, daemon=True)
        worker.start()
        time.sleep(1.0)
        fresh = _records(rng, args.new)
        importer.banks.import_records(
            "partner", fresh, source_name="partner", source_sha256="1" * 64, fmt="plain", policy="auto"
        )
        committed = time.perf_counter()
        probe = _image(fresh[0].value)
        while not cache.get().match(probe):
            time.sleep(0.01)
        latency = time.perf_counter() - committed
        stop.set()
        worker.join()

        # what a refresh costs the matching side: new entries taken in vs the whole index reopened
        t = time.perf_counter()
        cache._refresh()  # the path a change takes: nothing new since, so the fresh part is rebuilt
        incremental = time.perf_counter() - t
        t = time.perf_counter()
        matcher_side.pdq_index()
        reopen = time.perf_counter() - t
        importer.close()
        matcher_side.close()

    table = Table(
        title=f"import of {args.new:,} hashes into a bank of {args.size:,}, matched in another process"
    )
    for col in ("", "ours", "old refresh", "old / ours"):
        table.add_column(col, justify="right")
    old_latency = OLD_REFRESH_S + reopen
    table.add_row(
        "import → first match (s, worst case)",
        f"{args.check + incremental:.2f}",
        f"{old_latency:.1f}",
        f"{old_latency / (args.check + incremental):.0f}×",
    )
    table.add_row("import → first match (s, measured)", f"{latency:.2f}", "—", "")
    table.add_row(
        "refresh cost on the matching side (ms)",
        f"{incremental * 1000:.1f}",
        f"{reopen * 1000:.1f}",
        f"{reopen / max(incremental, 1e-6):.0f}×",
    )
    table.add_row("matches served meanwhile", f"{served[0]:,}", "", "")
    table.add_row("first open of the index (s)", f"{first_open:.2f}", "", "")
    Console().print(table)


if __name__ == "__main__":
    main()
