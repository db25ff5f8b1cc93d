"""Benchmark: what a large video costs to hash in the browser (headless Chromium) beside Python's
hashlib on the same file in the same run.

A survivor's video gets MD5 and SHA-256 only, computed in the page's Web Worker
(static/survivor/hash-worker.js): the file is read in 4 MiB slices, MD5 in JavaScript, SHA-256
through WebCrypto up to 64 MiB and streamed in JavaScript above. This prints the worker's seconds
for a generated file (a WebM header, then pseudo-random bytes: nothing real) beside hashlib's, the
ratio, and the MB/s that decide the page's limit (``MAX_VIDEO_BYTES`` in web/survivors.py).

    python bench/survivor_video.py              # 1 GiB
    python bench/survivor_video.py --mib 256

Needs Playwright and Debian's chromium (as the browser tests); uses the tests' harness.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests.helpers

from tests.helpers.pdqjs import harness

WEBM = bytes.fromhex("1a45dfa3")


def make(path: Path, mib: int) -> None:
    """A file of ``mib`` MiB that sniffs as a WebM video (pseudo-random, generated fast)."""
    block = hashlib.shake_256(b"meldpunt bench").digest(1 << 20)
    with path.open("wb") as f:
        f.write(WEBM + block[4:])
        for n in range(1, mib):
            f.write(bytes([n & 0xFF]) + block[1:])


def hashlib_seconds(path: Path) -> tuple[float, str, str]:
    t0 = time.perf_counter()
    md5, sha = hashlib.md5(), hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(4 << 20):
            md5.update(chunk)
            sha.update(chunk)
    return time.perf_counter() - t0, md5.hexdigest(), sha.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "generated.webm"
        make(path, args.mib)
        base_s, md5, sha = hashlib_seconds(path)
        with harness() as hp:
            t0 = time.perf_counter()
            hp.page.evaluate("() => { window.hashOptions = {}; document.body.removeAttribute('data-done'); }")
            hp.page.set_input_files("#files", [str(path)])
            hp.page.wait_for_selector("body[data-done]", state="attached", timeout=3_600_000)
            (result,) = json.loads(hp.page.inner_text("#results"))
            wall = time.perf_counter() - t0
            sent = sum(len(r.body or b"") for r in hp.requests)
    assert result["md5"] == md5 and result["sha256"] == sha, "the browser's digests differ from hashlib's"
    worker_s = result["timings"]["digestMs"] / 1000
    mb = args.mib * 1.048576
    print(
        f"file: {args.mib} MiB generated video ({result['kind']}/{result['format']}), SHA-256 by {result['sha256By']}"
    )
    print(
        f"browser worker (MD5 + SHA-256): {worker_s:7.1f} s  {mb / worker_s:6.0f} MB/s  (page wall {wall:.1f} s)"
    )
    print(f"hashlib baseline (MD5 + SHA-256): {base_s:7.1f} s  {mb / base_s:6.0f} MB/s")
    print(f"ratio browser / hashlib: {worker_s / base_s:.1f}x; request bytes sent while hashing: {sent}")


if __name__ == "__main__":
    main()
