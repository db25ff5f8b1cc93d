"""Regenerate the demo's benign media and hash lists (src/meldpunt/demo/): landscapes and patterns
drawn with NumPy and Pillow, a short video of a moving pattern. Run once; the output is committed so
the demo's exact hashes stay fixed whatever Pillow version encodes them later."""

from __future__ import annotations

import csv
import hashlib
import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from meldpunt.signals import hash_file

OUT = Path(__file__).resolve().parents[1] / "src" / "meldpunt" / "demo"
IMAGES = OUT / "media"


def landscape(w: int, h: int, seed: int, sun: tuple[int, int], palette: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, h)[:, None]
    skies = [
        ((255, 140, 60), (40, 60, 140)),
        ((120, 190, 255), (230, 240, 255)),
        ((60, 20, 90), (250, 120, 80)),
    ]
    top, bottom = (np.array(c, float) for c in skies[palette])
    sky = (top * (1 - y) + bottom * y)[:, None, :] * np.ones((1, w, 1))
    img = Image.fromarray(sky.astype(np.uint8))
    d = ImageDraw.Draw(img)
    d.ellipse([sun[0] - 40, sun[1] - 40, sun[0] + 40, sun[1] + 40], fill=(255, 230, 150))
    for layer in range(3):
        base = h * (0.55 + 0.12 * layer)
        xs = np.linspace(0, w, 12)
        ys = base - rng.uniform(20, 120 - 30 * layer, size=xs.size)
        pts = [(0, h), *zip(xs.tolist(), ys.tolist(), strict=True), (w, h)]
        shade = 30 + 35 * layer
        d.polygon(pts, fill=(shade, 60 + 30 * layer, shade + 20))
    noise = rng.normal(0, 6, (h, w, 3))
    arr = np.clip(np.asarray(img, float) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(arr).filter(ImageFilter.GaussianBlur(0.8))


def checker(w: int, h: int, cell: int) -> Image.Image:
    yy, xx = np.mgrid[0:h, 0:w]
    on = ((yy // cell) + (xx // cell)) % 2 == 0
    arr = np.where(on[..., None], np.array([30, 110, 200]), np.array([240, 220, 90])).astype(np.uint8)
    return Image.fromarray(arr)


def waves(w: int, h: int) -> Image.Image:
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    v = np.sin(xx / 23.0 + np.sin(yy / 31.0) * 2) * 0.5 + 0.5
    arr = np.stack([v * 40 + 20, v * 120 + 60, v * 200 + 40], axis=-1).astype(np.uint8)
    return Image.fromarray(arr)


def video(path: Path, seconds: int = 4, fps: int = 10) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 192, 128, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        # A drifting strip of patterned landscape: enough detail for PDQ quality well above 50.
        sky = np.asarray(landscape(384, 128, 7, (300, 50), 2), float)
        texture = np.asarray(waves(384, 128), float)
        board = np.asarray(checker(384, 128, 16), float)
        base = np.clip(0.5 * sky + 0.3 * texture + 0.2 * board, 0, 255).astype(np.uint8)
        for i in range(seconds * fps):
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(base[:, i * 2 : i * 2 + 192]), format="rgb24"
            )
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    big = landscape(1200, 800, 1, (900, 180), 0)
    big.save(IMAGES / "sunset-over-hills.jpg", quality=90)
    small = big.resize((480, 320), Image.Resampling.LANCZOS)
    small.save(IMAGES / "sunset-over-hills-resized-copy.jpg", quality=70)
    landscape(1000, 700, 2, (200, 150), 1).save(IMAGES / "morning-valley.jpg", quality=88)
    checker(640, 480, 40).save(IMAGES / "checkerboard.png")
    waves(800, 600).save(IMAGES / "blue-waves.webp", quality=85)
    (IMAGES / "notes.txt").write_text("Benign demo files for meldpunt: landscapes and patterns.\n")
    data = (IMAGES / "morning-valley.jpg").read_bytes()
    (IMAGES / "truncated-download.jpg").write_bytes(data[: len(data) // 3])
    video(IMAGES / "drifting-dusk.mp4")

    # The "known" list (policy auto): a landscape by PDQ, the checkerboard by SHA-256, the video by vPDQ.
    sunset = hash_file(IMAGES / "sunset-over-hills.jpg")
    board = hash_file(IMAGES / "checkerboard.png")
    clip = hash_file(IMAGES / "drifting-dusk.mp4")
    assert sunset.pdq and clip.vpdq
    vpdq_value = json.dumps(
        [
            {"frame": f.frame, "hash": f.pdq, "quality": f.quality, "timestamp": round(f.timestamp, 3)}
            for f in clip.vpdq
        ],
        separators=(",", ":"),
    )
    with (OUT / "demo-known.csv").open("w", newline="") as fp:
        w = csv.writer(fp)
        w.writerow(
            ["signal_type", "value", "category", "baseline", "series", "victim_identified", "source", "tags"]
        )
        w.writerow(
            [
                "pdq",
                sunset.pdq,
                "demo-category-A",
                "yes",
                "demo-landscapes",
                "no",
                "meldpunt demo",
                "demo|landscape",
            ]
        )
        w.writerow(
            [
                "sha256",
                board.sha256,
                "demo-category-B",
                "no",
                "demo-patterns",
                "no",
                "meldpunt demo",
                "demo|pattern",
            ]
        )
        w.writerow(
            ["vpdq", vpdq_value, "demo-category-A", "no", "demo-video", "no", "meldpunt demo", "demo|video"]
        )
        # Synthetic entries that match nothing here, as any real list mostly does.
        rng = np.random.default_rng(42)
        for _ in range(50):
            w.writerow(
                ["pdq", rng.bytes(32).hex(), "demo-category-B", "no", "", "no", "meldpunt demo", "synthetic"]
            )
    # The benign list (policy ignore): the waves by MD5, in the ThreatExchange file format.
    waves_md5 = hashlib.md5((IMAGES / "blue-waves.webp").read_bytes()).hexdigest()
    (OUT / "demo-benign.te").write_text(f"md5 {waves_md5}\n")
    print("wrote", sorted(p.name for p in IMAGES.iterdir()))


if __name__ == "__main__":
    main()
