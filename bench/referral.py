"""Police referral packages: how long making and verifying one takes for a large case, beside the
least any package could cost, from the same run.

    .venv/bin/python bench/referral.py [--items 200] [--media 3] [--rounds 3]

* build: our package (PDF and HTML summary, VICS 2.0, CSV, signed manifest, folder and zip)
  against a baseline of the same facts dumped as one JSON file and zipped (no summary, no
  signature): the ratio is what the readable summary and the signing cost.
* verify: ``meldpunt.referral.verify`` of the zip (every file hashed, the signature checked)
  against a baseline that only SHA-256s the same zip's members.

The case is synthetic (hashes of seed strings, example.test URLs). Nothing touches a database.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import statistics
import tempfile
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from meldpunt.referral import build_package, verify
from meldpunt.referral.case import Case, CaseItem, Decision, Event, Hosting, Medium
from meldpunt.settings import Settings
from meldpunt.stores.signing import load_key_ring

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _h(seed: str, algo: str) -> str:
    return hashlib.new(algo, seed.encode()).hexdigest()


def make_case(reference: str, items: int, media: int) -> Case:
    out = []
    for i in range(items):
        url = f"https://gallery-{i % 17}.example.test/albums/{i}/page.html"
        out.append(
            CaseItem(
                item_id=i + 1,
                url=url,
                final_url=url,
                host=f"gallery-{i % 17}.example.test",
                urgent=i % 50 == 0,
                reported_at=NOW - timedelta(days=2),
                reports=((NOW - timedelta(days=2), "public"),),
                classification={"status": "baseline", "us": "A1"},
                classified_at=NOW - timedelta(days=1),
                decisions=(
                    Decision(
                        {"status": "baseline", "us": "A1"},
                        "anna",
                        "analyst",
                        "first",
                        NOW - timedelta(days=1),
                    ),
                    Decision(
                        {"status": "baseline", "us": "A1"},
                        "sam",
                        "senior",
                        "second",
                        NOW - timedelta(hours=20),
                    ),
                ),
                decided_by="analyst",
                hosting=Hosting(ip="192.0.2.10", asn=64496, country="NL", provider="Example Hosting"),
                media=tuple(
                    Medium(
                        i * 100 + m,
                        f"{url[:-9]}{m}.jpg",
                        "image",
                        1000 + m,
                        _h(f"{i}-{m}", "md5"),
                        _h(f"{i}-{m}", "sha1"),
                        _h(f"{i}-{m}", "sha256"),
                        _h(f"{i}-{m}-pdq", "sha256"),
                    )
                    for m in range(media)
                ),
                timeline=(
                    Event(NOW - timedelta(hours=20), "takedown_opened", "system"),
                    Event(NOW - timedelta(hours=19), "notice_sent", "system", {"reference": "MP-AAAA-BBBB"}),
                ),
                takedown_state="noticed",
            )
        )
    return Case(reference, NOW, "Bench Hotline", "sam", tuple(out))


def _baseline_build(case: Case, out: Path) -> Path:
    data = json.dumps(dataclasses.asdict(case), default=str).encode()
    path = out / f"{case.reference}-baseline.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("case.json", data)
    return path


def _baseline_verify(path: Path) -> int:
    n = 0
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            hashlib.sha256(z.read(info)).hexdigest()
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--media", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ring = load_key_ring(Settings(db=f"sqlite:///{folder / 'bench.db'}"), now=NOW)
        keys = ring.public_keys(NOW)
        build, base_build, check, base_check = [], [], [], []
        size = 0
        for r in range(args.rounds):
            case = make_case(f"RF-BENCH-{r:03d}", args.items, args.media)
            t = time.perf_counter()
            pkg = build_package(case, folder / "out", signer=ring, public_keys=keys)
            build.append(time.perf_counter() - t)
            t = time.perf_counter()
            base = _baseline_build(case, folder)
            base_build.append(time.perf_counter() - t)
            t = time.perf_counter()
            assert verify(pkg.zip_path, keys).ok
            check.append(time.perf_counter() - t)
            t = time.perf_counter()
            _baseline_verify(pkg.zip_path)
            base_check.append(time.perf_counter() - t)
            size = pkg.zip_path.stat().st_size
            del base
    table = Table("what", "ours (median s)", "baseline (median s)", "ratio")
    for name, ours, theirs in (("build", build, base_build), ("verify", check, base_check)):
        o, b = statistics.median(ours), statistics.median(theirs)
        table.add_row(name, f"{o:.3f}", f"{b:.3f}", f"{o / b:.1f}x")
    console = Console()
    console.print(
        f"case: {args.items} items x {args.media} media; zip {size / 1e6:.2f} MB; {args.rounds} rounds"
    )
    console.print(table)


if __name__ == "__main__":
    main()
