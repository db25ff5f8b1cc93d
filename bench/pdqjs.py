"""Benchmark: seconds per photo of the in-browser hasher (headless Chromium) beside the server's.

The browser hashes in a Web Worker (static/survivor/hash-worker.js): MD5, SHA-256 (WebCrypto) and PDQ
of the full picture, upright and, for EXIF-turned photos, as stored. Baselines from the same run, on
the same files: Pillow full decode + ``pdqhash`` (what the browser computes, on the server's CPU) and
``meldpunt.signals.hash_file`` (the server: reduced JPEG decode). Also prints how far the browser's
PDQ lands from ``pdqhash``'s (bits; Meta's rule: <= 10 for quality >= 80).

    python bench/pdqjs.py                    # 5 generated photo-like 4000x3000 JPEGs (12 MP)
    python bench/pdqjs.py --size 6000x4000   # 24 MP

Needs Playwright and Debian's chromium (as the browser tests). It uses the tests' harness
(tests/helpers/pdqjs.py: a loopback server for static/survivor/ and a page that hashes files).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pdqhash
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests.helpers

from tests.helpers.pdqjs import harness

from meldpunt.settings import Settings
from meldpunt.signals.core import hash_file
from meldpunt.signals.synthetic import jpeg_bytes, photo_like


def full_pdqhash(path: Path) -> str:
    with Image.open(path) as im:
        rgb = np.ascontiguousarray(np.asarray(ImageOps.exif_transpose(im).convert("RGB")))
    bits, _quality = pdqhash.compute(rgb)
    return np.packbits(bits.astype(np.uint8)).tobytes().hex()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--count", type=int, default=5)
    ap.add_argument("--size", default="4000x3000", help="WIDTHxHEIGHT of generated photos")
    args = ap.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    settings = Settings()
    with tempfile.TemporaryDirectory() as tmp, harness() as page:
        files = []
        for seed in range(args.count):
            path = Path(tmp) / f"photo-{seed}.jpg"
            path.write_bytes(jpeg_bytes(photo_like(width, height, seed)))
            files.append(path)
        page.hash(files[:1])  # warm up the worker (module load, JIT)
        browser = []
        bits = []
        for path in files:
            (got,) = page.hash([path])
            browser.append(got["wallMs"] / 1000)
            bits.append(bin(int(got["pdq"]["hash"], 16) ^ int(full_pdqhash(path), 16)).count("1"))
        full = []
        server = []
        for path in files:
            t0 = time.perf_counter()
            full_pdqhash(path)
            full.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            hash_file(path, settings)
            server.append(time.perf_counter() - t0)
    b, f, s = statistics.median(browser), statistics.median(full), statistics.median(server)
    print(f"{args.count} photos {width}x{height}, median seconds per photo")
    print(f"  browser worker (MD5, SHA-256, full PDQ):  {b:.3f} s")
    print(f"  Pillow full decode + pdqhash:            {f:.3f} s   browser/this = {b / f:.2f}x")
    print(f"  server hash_file (reduced decode):       {s:.3f} s   browser/this = {b / s:.2f}x")
    print(f"  browser PDQ vs pdqhash: max {max(bits)} bits, mean {statistics.mean(bits):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
