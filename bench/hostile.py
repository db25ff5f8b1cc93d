"""Benchmark: peak memory and seconds of hashing and rendering hostile media, beside benign media.

Hostile here means *costly*, not harmful: every file is a flat benign pattern. Each is small on
disk and huge in pixels (the 190 KB PNG of 7000x7000 RGBA, the 199 KB MP4 of 30 frames of
8192x8192), a decompression bomb, or cut short. Each file is hashed (``hash_bytes``: what the walk's
media job does) and rendered (``render_for_review``: the analyst's thumbnail or contact sheet) in a
fresh process, whose peak RSS is read from the kernel (``VmHWM``); an idle process
that only imports the same modules is measured too, and the benign file of the same type is the
baseline of each row. Ratios are what to read: the machines are shared and noisy.

    python bench/hostile.py            # all files (making the 8192x8192 video takes a minute)
    python bench/hostile.py --quick    # without the 8192x8192 video
    python bench/hostile.py --src /tmp/old/src   # the children import meldpunt from an older tree
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from meldpunt.signals.synthetic import flat_png, flat_video, jpeg_bytes, photo_like

console = Console(width=120)

#: Run in a fresh interpreter: ``python -c CHILD path op``; prints one JSON line.
CHILD = """
import json, sys, time
from meldpunt.review.render import RenderError, render_for_review
from meldpunt.signals import hash_bytes
path, op = sys.argv[1], sys.argv[2]
data = open(path, "rb").read() if op != "idle" else b""
t = time.perf_counter()
note = ""
if op == "hash":
    s = hash_bytes(data, path)
    done = f"{len(s.vpdq)} vPDQ frames" if s.vpdq else f"PDQ quality {s.pdq_quality}"
    note = s.error or ("truncated, " if getattr(s, "truncated", False) else "") + done
elif op == "render":
    try:
        out, _ = render_for_review(data, path)
        note = f"{len(out):,} bytes"
    except RenderError as e:
        note = str(e)
seconds = time.perf_counter() - t
# VmHWM: this process image's own peak (ru_maxrss would include the parent's, from before exec)
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "note": note, "rss_kb": int(hwm.split()[1])}))
"""


@dataclass(frozen=True)
class Run:
    rss_mb: float
    seconds: float
    note: str


def measure(path: Path, op: str, *, timeout: float = 900.0, src: str = "") -> Run:
    """Peak RSS (MB) and seconds of ``op`` ("hash", "render" or "idle") on ``path`` in a new process
    (importing meldpunt from ``src`` when given)."""
    env = dict(os.environ, PYTHONPATH=src) if src else None
    try:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), op], capture_output=True, env=env, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return Run(float("nan"), timeout, "timed out")
    if proc.returncode != 0:
        last = proc.stderr.decode().strip().splitlines()[-1:]
        return Run(float("nan"), float("nan"), f"exit {proc.returncode}: {last}")
    result = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return Run(result["rss_kb"] / 1024, float(result["seconds"]), str(result["note"])[:60])


def make_files(folder: Path, *, quick: bool) -> list[tuple[str, Path, Path]]:
    """(what, hostile file, benign file of the same type)."""

    def write(name: str, data: bytes) -> Path:
        (folder / name).write_bytes(data)
        return folder / name

    photo = photo_like(640, 480, seed=1)
    png = write("benign.png", _png(photo))
    jpeg_data = jpeg_bytes(photo_like(4000, 3000, seed=2))
    jpeg = write("benign.jpg", jpeg_data)
    video = write("benign.mp4", flat_video(320, 240, 30))
    rows = [
        ("PNG 7000x7000 RGBA", write("big.png", flat_png(7000, 7000)), png),
        ("PNG bomb (header 20000x20000)", write("bomb.png", _png_claiming(20000, 20000)), png),
        ("JPEG 4000x3000 cut in half", write("cut.jpg", jpeg_data[: len(jpeg_data) // 2]), jpeg),
        ("MP4 4096x4096, 30 frames", write("big4096.mp4", flat_video(4096, 4096, 30)), video),
    ]
    if not quick:
        rows.append(("MP4 8192x8192, 30 frames", write("big8192.mp4", flat_video(8192, 8192, 30)), video))
    return rows


def _png(im: object) -> bytes:
    import io

    from PIL import Image

    assert isinstance(im, Image.Image)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    import struct
    import zlib

    body = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    ihdr = struct.pack(">I", 13) + body + struct.pack(">I", zlib.crc32(body))
    return b"\x89PNG\r\n\x1a\n" + ihdr + bytes(64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="leave out the 8192x8192 video")
    parser.add_argument("--src", default="", help="import meldpunt from this folder in the children")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        console.print("making the files ...")
        rows = make_files(folder, quick=args.quick)
        idle = measure(rows[0][1], "idle", src=args.src)
        console.print(f"a process that only imports the modules: {idle.rss_mb:.0f} MB peak RSS")
        table = Table(title="hostile vs benign (each in a fresh process)")
        for column in ("file", "size", "op", "peak RSS MB", "x benign", "seconds", "x benign", "result"):
            table.add_column(column, justify="left" if column in ("file", "op", "result") else "right")
        for what, hostile, benign in rows:
            for op in ("hash", "render"):
                h, b = measure(hostile, op, src=args.src), measure(benign, op, src=args.src)
                table.add_row(
                    what,
                    f"{hostile.stat().st_size / 1024:,.0f} KB",
                    op,
                    f"{h.rss_mb:.0f} ({b.rss_mb:.0f})",
                    f"{h.rss_mb / b.rss_mb:.2f}",
                    f"{h.seconds:.2f} ({b.seconds:.2f})",
                    f"{h.seconds / b.seconds:.1f}" if b.seconds > 0 else "-",
                    h.note,
                )
        console.print(table)
        console.print("In brackets: the benign file of the same type (baseline) from this same run.")


if __name__ == "__main__":
    main()
