"""Benchmark: images/s of meldpunt.signals.hash_files against a naive PDQ loop, from one run.

Naive: one process; per file read it, take MD5/SHA-1/SHA-256, decode the full JPEG, apply the EXIF
orientation, PDQ with ``pdqhash``. Ours: ``hash_files`` (the same exact hashes and orientation, JPEGs
decoded at reduced scale, a process per core). Both run on the same files in the same process, so the
ratio is meaningful on a shared, noisy machine where a bare time is not. Also prints how far the
fast-decode PDQ lands from the full-decode PDQ (bits, max and mean; Meta's rule: <= 10).

    python bench/hash.py                 # 40 generated photo-like 4000x3000 JPEGs at quality 90
    python bench/hash.py --dir ~/photos  # your own (benign!) JPEGs
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pdqhash
from PIL import Image, ImageOps
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from meldpunt.settings import Settings
from meldpunt.signals import hamming, hash_files
from meldpunt.signals.synthetic import jpeg_bytes, photo_like

console = Console(width=100)


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def generate(folder: Path, count: int, width: int, height: int, quality: int) -> list[Path]:
    paths = []
    with progress() as bar:
        task = bar.add_task(f"generating {width}x{height} JPEGs", total=count)
        for i in range(count):
            path = folder / f"photo-{i:03d}.jpg"
            path.write_bytes(jpeg_bytes(photo_like(width, height, seed=1000 + i), quality=quality))
            paths.append(path)
            bar.advance(task)
    return paths


def naive_pdq(path: Path) -> tuple[str, int]:
    data = path.read_bytes()
    for algorithm in ("md5", "sha1", "sha256"):
        hashlib.new(algorithm, data).hexdigest()
    with Image.open(path) as im:
        im.load()
        upright = ImageOps.exif_transpose(im).convert("RGB")
    bits, quality = pdqhash.compute(np.ascontiguousarray(np.asarray(upright)))
    return np.packbits(bits.astype(np.uint8)).tobytes().hex(), int(quality)


def timed(
    label: str, n: int, run: Callable[[], Iterable[tuple[str, int]]]
) -> tuple[float, list[tuple[str, int]]]:
    results: list[tuple[str, int]] = []
    with progress() as bar:
        task = bar.add_task(label, total=n)
        start = time.perf_counter()
        for r in run():
            results.append(r)
            bar.advance(task)
        seconds = time.perf_counter() - start
    return seconds, results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--dir", type=Path, help="hash the *.jpg/*.jpeg files here instead of generated ones")
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--size", default="4000x3000", help="WIDTHxHEIGHT of generated images")
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--workers", type=int, default=None, help="default: settings.hash_workers (0: all cores)")
    args = ap.parse_args(argv)

    settings = Settings.from_env()
    with tempfile.TemporaryDirectory(prefix="meldpunt-bench-") as tmp:
        if args.dir:
            paths = sorted(p for p in args.dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
        else:
            width, height = (int(v) for v in args.size.lower().split("x"))
            paths = generate(Path(tmp), args.count, width, height, args.quality)
        if not paths:
            console.print("no JPEG files to hash")
            return 1
        n = len(paths)
        naive_s, naive = timed("naive (full decode, 1 proc)", n, lambda: (naive_pdq(p) for p in paths))

        workers = args.workers if args.workers is not None else settings.hash_workers
        workers = workers if workers > 0 else (os.cpu_count() or 1)

        def ours(processes: int) -> Callable[[], Iterable[tuple[str, int]]]:
            def run() -> Iterable[tuple[str, int]]:
                for s in hash_files(paths, settings, workers=processes):
                    if s.pdq is None or s.pdq_quality is None:
                        raise SystemExit(f"{s.path}: {s.error}")
                    yield s.pdq, s.pdq_quality

            return run

        one_s, one = timed("ours (hash_files, 1 proc)", n, ours(1))
        all_s, pooled = timed(f"ours (hash_files, {workers} procs)", n, ours(workers))

    assert [h for h, _ in one] == [h for h, _ in pooled]
    drift = [hamming(a[0], b[0]) for a, b in zip(naive, pooled, strict=True)]
    good = [d for d, (_, q) in zip(drift, naive, strict=True) if q >= 80]
    source = f"--dir {args.dir}" if args.dir else f"{args.size} q{args.quality}"
    table = Table(title=f"PDQ of {n} JPEGs ({source}), {os.cpu_count()} CPU cores")
    table.add_column("")
    for col in ("naive, 1 proc", "ours, 1 proc", f"ours, {workers} procs"):
        table.add_column(col, justify="right")
    table.add_row("images/s", *(f"{n / t:.2f}" for t in (naive_s, one_s, all_s)))
    table.add_row("seconds", *(f"{t:.2f}" for t in (naive_s, one_s, all_s)))
    table.add_row("speed-up vs naive", "1.0x", f"{naive_s / one_s:.1f}x", f"{naive_s / all_s:.1f}x")
    drift_text = f"max {max(good, default=0)}, mean {statistics.fmean(good or [0]):.2f}"
    table.add_row("drift vs naive, bits", "", drift_text, drift_text)
    table.add_row("(of images q >= 80)", "", f"{len(good)} of {n}", f"{len(good)} of {n}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    table.caption = f"load average at the end: {load:.2f} (other work on the machine slows the pool most)"
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
