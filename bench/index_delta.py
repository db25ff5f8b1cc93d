"""What one small import costs a worker holding a big saved PDQ index: bringing the index up to date
and saving it, with the delta file (ours) against rewriting the whole saved index (the baseline,
what every import did before) — same run, same database, same imports.

A final classification adds a few hashes to the hotline's own bank; every worker then opens the
index again. With a 10-million-hash base the baseline writes 1.2 GB each time.

    .venv/bin/python bench/index_delta.py [--base 1000000] [--rounds 10] [--per-import 4]

Synthetic random hashes only; the database is a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from meldpunt.banks.formats.base import HashRecord
from meldpunt.domain import Labels, SignalType
from meldpunt.pipeline import index_sync
from meldpunt.pipeline.index_sync import PersistentPDQIndex
from meldpunt.store.banks import BankRepository
from meldpunt.store.db import create_db_engine


def _records(rng: random.Random, n: int) -> list[HashRecord]:
    return [HashRecord(SignalType.PDQ, f"{rng.getrandbits(256):064x}", Labels()) for _ in range(n)]


def _import(repo: BankRepository, rng: random.Random, bank: str, n: int) -> None:
    repo.import_records(
        bank, _records(rng, n), source_name=bank, source_sha256=f"{rng.getrandbits(256):064x}", fmt="plain"
    )


def _rounds(repo: BankRepository, rng: random.Random, rounds: int, per: int, full: bool) -> float:
    saved = index_sync.DELTA_MIN, index_sync.DELTA_SHARE
    if full:  # the baseline: every change saves the whole index
        index_sync.DELTA_MIN, index_sync.DELTA_SHARE = 0, 0.0
    try:
        took = 0.0
        for _ in range(rounds):
            _import(repo, rng, "hotline-own", per)
            start = time.perf_counter()
            PersistentPDQIndex(repo).open()
            took += time.perf_counter() - start
        return took / rounds
    finally:
        index_sync.DELTA_MIN, index_sync.DELTA_SHARE = saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--per-import", type=int, default=4)
    args = ap.parse_args()
    console = Console()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        repo = BankRepository(create_db_engine(f"sqlite:///{Path(tmp) / 'bench.db'}"))
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("importing the base list", total=args.base)
            step = 100_000
            for first in range(0, args.base, step):
                _import(repo, rng, f"base-{first // step}", min(step, args.base - first))
                progress.advance(task, min(step, args.base - first))
        start = time.perf_counter()
        PersistentPDQIndex(repo).open()
        console.print(f"base index of {args.base:,} built and saved in {time.perf_counter() - start:.1f} s")
        # interleaved halves, so drift on a shared machine hits both alike
        half = max(1, args.rounds // 2)
        ours = baseline = 0.0
        delta_bytes = 0
        for _ in range(2):
            ours += _rounds(repo, rng, half, args.per_import, full=False) / 2
            store = PersistentPDQIndex(repo)
            delta_bytes = max(delta_bytes, store.delta_path.stat().st_size)
            baseline += _rounds(repo, rng, half, args.per_import, full=True) / 2
        base_bytes = sum(p.stat().st_size for p in PersistentPDQIndex(repo).path.iterdir())
    table = Table(title=f"one import of {args.per_import} PDQ hashes, then open() — base {args.base:,}")
    table.add_column("")
    table.add_column("s per import", justify="right")
    table.add_column("bytes written", justify="right")
    table.add_row("ours: delta file", f"{ours:.3f}", f"{delta_bytes:,}")
    table.add_row("baseline: whole index saved", f"{baseline:.3f}", f"{base_bytes:,}")
    table.add_row("ratio", f"{baseline / ours:.1f}× faster", f"{base_bytes / max(delta_bytes, 1):,.0f}× less")
    console.print(table)


if __name__ == "__main__":
    main()
