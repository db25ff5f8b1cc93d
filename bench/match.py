"""Benchmark PDQIndex against faiss brute force and python-threatexchange's default PDQ index.

    .venv/bin/python bench/match.py --size 1000000
    .venv/bin/python bench/match.py --size 10000000 --data both

Synthetic data only: uniformly random 256-bit hashes, or "clustered" ones (random centres, each
hash a few random bit flips from its centre). Queries are half near-duplicates of stored hashes
(1..31 random bit flips) and half random; the radius is 31 (PDQ's usual match threshold).

Every contender runs in its own subprocess, on the same number of threads, so its resident memory
is its own and nothing is shared through caches of the parent:

* ours (built): build from an array, search, save;
* ours (loaded): a fresh process that loads the saved index (memory-mapped) and searches;
* faiss ``IndexBinaryFlat`` + ``range_search``: brute force, the ground truth for recall;
* faiss ``IndexBinaryMultiHash(256, 16, 16)``, ``nflip = 1``: what python-threatexchange uses.

Timings are the best of ``--repeat`` runs of the whole query batch (the machine may be shared);
the load average at start and end is printed so a busy machine can be told apart.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

RADIUS = 31
U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]

console = Console(stderr=True)


# -- data (deterministic: every process regenerates the same arrays from the seed) -------------------


def gen_data(kind: str, n: int, seed: int) -> U8:
    rng = np.random.default_rng([seed, n, 1 if kind == "clustered" else 0])
    if kind == "random":
        return rng.integers(0, 256, (n, 32), dtype=np.uint8)
    # Clusters of ~8 near-duplicates: each hash is its centre with 0..16 random bits flipped.
    centres = rng.integers(0, 2**63, (max(1, n // 8), 4), dtype=np.int64).view(np.uint64)
    centres ^= rng.integers(0, 2, centres.shape, dtype=np.int64).view(np.uint64) << np.uint64(63)
    words = centres[rng.integers(0, len(centres), n)]
    del centres
    nflips = rng.integers(0, 17, n)
    rows = np.arange(n)
    for s in range(16):
        pos = rng.integers(0, 256, n)
        bit = np.where(s < nflips, np.uint64(1) << (pos & 63).astype(np.uint64), np.uint64(0))
        words[rows, pos >> 6] ^= bit
    return words.view(np.uint8).reshape(n, 32)


def gen_queries(data: U8, nq: int, seed: int) -> U8:
    rng = np.random.default_rng([seed, 7])
    near = nq // 2
    bits = np.unpackbits(data[rng.integers(0, len(data), near)], axis=1)
    for i in range(near):
        bits[i, rng.choice(256, int(rng.integers(1, RADIUS + 1)), replace=False)] ^= 1
    rand = rng.integers(0, 256, (nq - near, 32), dtype=np.uint8)
    return np.ascontiguousarray(np.concatenate([np.packbits(bits, axis=1), rand]))


# -- helpers ---------------------------------------------------------------------------------------


def memory_mb() -> dict[str, float]:
    """Current and peak resident set size of this process (VmRSS, VmHWM), in MiB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def best_of(repeat: int, fn: Callable[[], Any], label: str) -> tuple[float, list[float], Any]:
    times: list[float] = []
    result: Any = None
    with progress() as p:
        task = p.add_task(label, total=repeat)
        for _ in range(repeat):
            t = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - t)
            p.advance(task)
    return min(times), times, result


def progress() -> Progress:
    return Progress(
        TextColumn("  {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def save_ranges(path: Path, lims: I64, ids: I64, dist: npt.NDArray[Any]) -> None:
    np.savez(path, lims=lims, ids=ids, dist=np.asarray(dist, dtype=np.int32))


def load_ranges(path: Path) -> tuple[I64, I64, npt.NDArray[np.int32]]:
    with np.load(path, allow_pickle=False) as z:
        return z["lims"], z["ids"], z["dist"]


def ours_to_ranges(results: list[list[tuple[int, int]]]) -> tuple[I64, I64, I64]:
    lims = np.zeros(len(results) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in results], out=lims[1:])
    flat = [pair for r in results for pair in r]
    ids = np.array([i for i, _ in flat], dtype=np.int64)
    dist = np.array([d for _, d in flat], dtype=np.int64)
    return lims, ids, dist


def faiss_radius() -> int:
    """faiss binary range_search keeps distances strictly below the radius: check, don't assume."""
    import faiss

    base = np.zeros((2, 32), dtype=np.uint8)
    base[0, :4] = 0xFF  # 32 bits set: distance 32 from the zero query
    base[1, :4] = 0xFF
    base[1, 3] = 0x7F  # distance 31
    index = faiss.IndexBinaryFlat(256)
    index.add(base)
    _, _, found = index.range_search(np.zeros((1, 32), np.uint8), RADIUS + 1)
    if sorted(found.tolist()) == [1]:
        return RADIUS + 1
    if sorted(found.tolist()) == [0, 1]:
        return RADIUS
    raise RuntimeError(f"unexpected faiss range_search semantics: {found}")


# -- workers (each in its own process) --------------------------------------------------------------


def worker(args: argparse.Namespace) -> dict[str, Any]:
    wd = Path(args.workdir)
    queries = np.load(wd / "queries.npy", allow_pickle=False)
    out: dict[str, Any] = {}
    if args.worker.startswith("ours"):
        import numba

        from meldpunt.index import PDQIndex

        numba.set_num_threads(args.threads)
        # Compile (or load the cached compilation) outside the timings.
        warm = PDQIndex()
        warm.add(queries[:64], np.arange(min(64, len(queries))))
        warm.merge()
        warm.search(queries[:4], RADIUS)
        warm.save(wd / f"warm-{args.worker}")
        PDQIndex.load(wd / f"warm-{args.worker}").search(queries[:4], RADIUS)
        del warm
        out["memory_before"] = memory_mb()
        if args.worker == "ours-build":
            data = gen_data(args.kind, args.size, args.seed)
            idx = PDQIndex()
            with console.status(f"  building ours on {args.size:,} hashes"):
                t = time.perf_counter()
                idx.add(data, np.arange(args.size, dtype=np.int64))
                out["build_s"] = time.perf_counter() - t
            del data
            out["memory_after_build"] = memory_mb()
        else:
            t = time.perf_counter()
            idx = PDQIndex.load(wd / "index", mmap=True)
            out["load_s"] = time.perf_counter() - t
            t = time.perf_counter()
            idx.search(queries, RADIUS)
            out["first_search_s"] = time.perf_counter() - t  # pages of the mapped files come in here
        out["repr"] = repr(idx)
        best, times, res = best_of(args.repeat, lambda: idx.search(queries, RADIUS), "searching (ours)")
        out["search_s"], out["search_times"] = best, times
        save_ranges(wd / f"{args.worker}.npz", *ours_to_ranges(res))
        if args.worker == "ours-build":
            with console.status("  saving"):
                t = time.perf_counter()
                idx.save(wd / "index")
                out["save_s"] = time.perf_counter() - t
        out["threads"] = numba.get_num_threads()
        out["threading_layer"] = getattr(numba, "threading_layer")()  # noqa: B009 (not in numba's stubs)
    else:
        import faiss

        faiss.omp_set_num_threads(args.threads)
        radius = faiss_radius()
        data = gen_data(args.kind, args.size, args.seed)
        index: Any
        if args.worker == "flat":
            index = faiss.IndexBinaryFlat(256)
        else:
            index = faiss.IndexBinaryMultiHash(256, 16, 16)
        with console.status(f"  building faiss {args.worker} on {args.size:,} hashes"):
            t = time.perf_counter()
            index.add(data)
            out["build_s"] = time.perf_counter() - t
        del data
        if args.worker == "multihash":
            index.nflip = RADIUS // 16  # as python-threatexchange sets it: threshold // nhash
            best, times, (lims, dist, ids) = best_of(
                args.repeat, lambda: index.range_search(queries, radius), "searching (faiss multi-hash)"
            )
            out["search_s"], out["search_times"] = best, times
            out["queries"] = len(queries)
        else:
            subset = np.load(wd / "truth_subset.npy", allow_pickle=False)
            q = np.ascontiguousarray(queries[subset])
            parts = []
            step = max(1, min(50, len(q) // 20))
            with progress() as p:
                task = p.add_task("brute force (faiss flat)", total=len(q))
                t = time.perf_counter()
                for s in range(0, len(q), step):
                    parts.append(index.range_search(q[s : s + step], radius))
                    p.advance(task, len(q[s : s + step]))
                out["search_s"] = time.perf_counter() - t
            out["queries"] = len(q)
            lims = np.concatenate([[0], np.cumsum(np.concatenate([np.diff(pl) for pl, _, _ in parts]))])
            dist = np.concatenate([pd for _, pd, _ in parts])
            ids = np.concatenate([pi for _, _, pi in parts])
        save_ranges(wd / f"{args.worker}.npz", lims.astype(np.int64), ids.astype(np.int64), dist)
        out["threads"] = faiss.omp_get_max_threads()
    out["memory"] = memory_mb()
    return out


def run_worker(name: str, args: argparse.Namespace, kind: str, wd: Path) -> dict[str, Any]:
    cmd = [
        sys.executable, __file__, "--worker", name, "--kind", kind, "--size", str(args.size),
        "--seed", str(args.seed), "--threads", str(args.threads), "--repeat", str(args.repeat),
        "--workdir", str(wd),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "NUMBA_NUM_THREADS": str(args.threads)}
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"worker {name} failed (exit {proc.returncode})")
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return result


# -- comparison and report --------------------------------------------------------------------------


def recall(truth: Path, other: Path, subset: I64) -> tuple[float, bool]:
    """Recall of ``other`` against the brute force on the brute-forced queries, and whether it is
    exact there (the same ids with the same distances, nothing extra)."""
    t_lims, t_ids, t_dist = load_ranges(truth)
    o_lims, o_ids, o_dist = load_ranges(other)
    found = total = 0
    exact = True
    for k, qi in enumerate(subset.tolist()):
        t_slice = slice(int(t_lims[k]), int(t_lims[k + 1]))
        o_slice = slice(int(o_lims[qi]), int(o_lims[qi + 1]))
        want = dict(zip(t_ids[t_slice].tolist(), t_dist[t_slice].tolist(), strict=True))
        got = dict(zip(o_ids[o_slice].tolist(), o_dist[o_slice].tolist(), strict=True))
        found += len(want.keys() & got.keys())
        total += len(want)
        exact = exact and got == want
    return (found / total if total else 1.0), exact


def report(args: argparse.Namespace, kind: str, res: dict[str, dict[str, Any]], wd: Path, nq: int) -> None:
    subset = np.load(wd / "truth_subset.npy", allow_pickle=False)
    have_truth = "flat" in res
    rows: list[tuple[str, dict[str, Any], str]] = [
        ("ours (loaded, mmap)", res["ours-search"], "ours-search"),
        ("ours (built in memory)", res["ours-build"], "ours-build"),
    ]
    if have_truth:
        rows.append(("faiss BinaryFlat (brute force)", res["flat"], "flat"))
    rows.append(("faiss MultiHash 16×16 nflip=1 (TE default)", res["multihash"], "multihash"))
    qps = {
        key: (r.get("queries", nq) / r["search_s"]) for _, r, key in rows
    }  # brute force may have run fewer queries
    ours = qps["ours-search"]
    table = Table(
        title=f"{kind} hashes: {args.size:,} stored, {nq:,} queries (half near-duplicates), radius {RADIUS}, "
        f"{args.threads} threads",
    )
    for col in (
        "index",
        "queries/s",
        "recall",
        "exact",
        "build s",
        "save s",
        "load s",
        "resident MiB",
        "ours ×",
    ):
        table.add_column(col, justify="left" if col == "index" else "right")
    exactness: dict[str, tuple[float, bool]] = {}
    for label, r, key in rows:
        if have_truth and key != "flat":
            exactness[key] = recall(wd / "flat.npz", wd / f"{key}.npz", subset)
        rec, ex = exactness.get(key, (1.0, True) if key == "flat" else (float("nan"), False))
        mem = r["memory"]["VmHWM"] if key == "ours-search" else r["memory"]["VmRSS"]
        table.add_row(
            label,
            f"{qps[key]:,.0f}",
            f"{rec:.4f}" if have_truth else "-",
            ("yes" if ex else "no") if have_truth else "-",
            f"{r['build_s']:.1f}" if "build_s" in r else "-",
            f"{r['save_s']:.1f}" if "save_s" in r else "-",
            f"{r['load_s']:.2f}" if "load_s" in r else "-",
            f"{mem:,.0f}",
            "" if key.startswith("ours") else f"{ours / qps[key]:,.1f}×",
        )
    out = Console(width=150)
    out.print(table)
    notes = [
        f"ours {ours:,.0f} q/s = {ours / qps['multihash']:,.1f}× threatexchange default ({qps['multihash']:,.0f} q/s)"
        + (f", {ours / qps['flat']:,.0f}× brute force ({qps['flat']:,.1f} q/s)" if have_truth else ""),
        f"queries/s: best of {args.repeat} runs of all {nq:,} queries"
        + (
            f"; brute force ran once on {len(subset):,} of them (evenly spread: near and random)"
            if have_truth
            else ""
        )
        + "; recall and exactness are over the brute-forced queries",
        f"ours, loaded: {res['ours-search']['repr']}; load {res['ours-search']['load_s']:.2f} s, first search "
        f"(pages faulted in) {nq / res['ours-search']['first_search_s']:,.0f} q/s; build {res['ours-build']['build_s']:.1f} s",
        "resident MiB: ours loaded = peak RSS (VmHWM) of the load+search process (of which "
        f"{res['ours-search']['memory_before']['VmRSS']:,.0f} is Python, numpy and numba before loading); the "
        "others = RSS after build and search with the input array freed; ours built = "
        f"{res['ours-build']['memory']['VmRSS']:,.0f} (peak while building, input array included: "
        f"{res['ours-build']['memory']['VmHWM']:,.0f})",
        f"threads: ours {res['ours-search']['threads']} ({res['ours-search']['threading_layer']}), faiss "
        f"{res['multihash']['threads']}",
    ]
    for line in notes:
        out.print(f"  {line}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1_000_000, help="stored hashes")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--data", choices=["random", "clustered", "both"], default="random")
    ap.add_argument("--clustered", action="store_true", help="same as --data clustered")
    ap.add_argument(
        "--truth-queries",
        type=int,
        help="queries brute-forced for recall (default: all up to 2M hashes, else 300)",
    )
    ap.add_argument("--skip-flat", action="store_true", help="no brute force (so no recall)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--workdir", help="where the index and results go (default: a temporary directory)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--kind", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return

    kinds = (
        ["clustered"] if args.clustered else ["random", "clustered"] if args.data == "both" else [args.data]
    )
    console.print(f"load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="meldpunt-bench-", dir=args.workdir) as tmp:
        for kind in kinds:
            wd = Path(tmp) / kind
            wd.mkdir()
            with console.status(f"generating {args.size:,} {kind} hashes and {args.queries:,} queries"):
                data = gen_data(kind, args.size, args.seed)
                queries = gen_queries(data, args.queries, args.seed)
                del data
            np.save(wd / "queries.npy", queries, allow_pickle=False)
            k = args.truth_queries or (args.queries if args.size <= 2_000_000 else 300)
            np.save(
                wd / "truth_subset.npy",
                np.unique(np.linspace(0, args.queries - 1, min(k, args.queries)).astype(np.int64)),
            )
            res: dict[str, dict[str, Any]] = {}
            for name in ["ours-build", "ours-search", "multihash"] + ([] if args.skip_flat else ["flat"]):
                console.print(f"[bold]{kind}[/]: {name}")
                res[name] = run_worker(name, args, kind, wd)
            report(args, kind, res, wd, args.queries)
    console.print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
