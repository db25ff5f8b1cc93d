"""Survivor registration: 10,000 hashes (half SHA-256, half PDQ) matched against the media already
seen, the real way (``register`` then the ``survivor_match`` job through the walk's worker), beside
a baseline from the same run: NumPy brute force of the same PDQ hashes against every medium's PDQ
(XOR and popcount, all pairs) plus one SQL ``IN`` lookup per SHA-256 batch.

    .venv/bin/python bench/survivors.py [--media 20000] [--hashes 10000] [--db URL]

The media rows are synthetic (random hashes, benign by construction; no image exists); 100 of the
registered PDQ hashes are planted within 8 bits of a medium so both sides must find them.
"""

from __future__ import annotations

import argparse
import base64
import secrets
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import func, insert, select

from meldpunt.act import survivors
from meldpunt.act.ticks import settle
from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock
from meldpunt.settings import Settings
from meldpunt.store.reports import Item, Medium, Report
from meldpunt.store.survivors import SurvivorLink

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _flip(h: str, bits: int, rng: np.random.Generator) -> str:
    v = int(h, 16)
    for b in rng.choice(256, size=bits, replace=False):
        v ^= 1 << int(b)
    return f"{v:064x}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--media", type=int, default=20_000)
    ap.add_argument("--hashes", type=int, default=10_000)
    ap.add_argument("--db", default="")
    args = ap.parse_args()
    rng = np.random.default_rng(12)
    tmp = tempfile.mkdtemp()
    db = args.db or str(Path(tmp) / "bench.db")
    settings = Settings(db=db, review_key=base64.b64encode(secrets.token_bytes(32)).decode())
    services = Services(settings, clock=ManualClock(NOW))
    media_pdq = [secrets.token_hex(32) for _ in range(args.media)]
    with services.engine.begin() as conn:
        rid = conn.execute(
            insert(Report)
            .values(receipt_hash="b" * 64, source="public", seen_on="website", created_at=NOW)
            .returning(Report.id)
        ).scalar_one()
        iid = conn.execute(
            insert(Item)
            .values(
                report_id=rid,
                url="http://bench.example/",
                url_key="k",
                host="bench.example",
                state="classified",
                created_at=NOW,
                updated_at=NOW,
            )
            .returning(Item.id)
        ).scalar_one()
        for s in range(0, args.media, 5000):
            conn.execute(
                insert(Medium),
                [
                    {
                        "item_id": iid,
                        "url": f"http://bench.example/{n}",
                        "url_key": f"{n}",
                        "md5": secrets.token_hex(16),
                        "sha256": secrets.token_hex(32),
                        "pdq": media_pdq[n],
                        "pdq_quality": 100,
                        "outcome": "new",
                        "created_at": NOW,
                    }
                    for n in range(s, min(args.media, s + 5000))
                ],
            )
    half = args.hashes // 2
    pdqs = [secrets.token_hex(32) for _ in range(half - 100)]
    pdqs += [_flip(media_pdq[int(i)], 8, rng) for i in rng.choice(args.media, 100, replace=False)]
    pairs = [("sha256", secrets.token_hex(32)) for _ in range(args.hashes - half)] + [
        ("pdq", p) for p in pdqs
    ]
    settle(services)  # the scan cursor passes the seeded media first (no registration yet)

    tracemalloc.start()
    t0 = time.perf_counter()
    reg = survivors.register(services, passphrase="bench passphrase", hashes_=pairs)
    settle(services)
    ours = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    with services.engine.connect() as conn:
        linked = conn.execute(
            select(func.count()).select_from(SurvivorLink).where(SurvivorLink.case_id == reg.case_id)
        ).scalar_one()

    t0 = time.perf_counter()
    q = np.frombuffer(bytes.fromhex("".join(pdqs)), dtype=np.uint64).reshape(-1, 4)
    with services.engine.connect() as conn:
        stored = [r for (r,) in conn.execute(select(Medium.pdq))]
        for s in range(0, len(pairs) - len(pdqs), 2000):
            conn.execute(
                select(Medium.id).where(Medium.sha256.in_([v for _, v in pairs[s : s + 2000]]))
            ).all()
    m = np.frombuffer(bytes.fromhex("".join(stored)), dtype=np.uint64).reshape(-1, 4)
    hits = 0
    for s in range(0, len(m), 2000):
        x = q[:, None, :] ^ m[None, s : s + 2000, :]
        d = np.unpackbits(x.view(np.uint8), axis=2).sum(axis=2)
        hits += int((d.min(axis=0) <= settings.pdq_threshold).sum())
    base = time.perf_counter() - t0
    print(
        f"{args.hashes} hashes against {args.media} media: ours {ours:.2f} s (peak {peak / 2**20:.1f} MiB traced), "
        f"linked {linked}; brute-force baseline {base:.2f} s, found {hits}; ratio baseline/ours {base / ours:.1f}x"
    )
    services.close()


if __name__ == "__main__":
    main()
