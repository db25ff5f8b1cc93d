"""Benign synthetic photo-like images, for tests, benchmarks and demonstrations.

A smooth colour field (a few random colours interpolated over the frame, like sky and light),
random shapes in random colours (the "objects"), a little blur and sensor-like noise. Random
noise alone would be a poor stand-in: PDQ keys on low frequencies, and white noise has none, so
its hashes would flip on the least change and say nothing about real photos.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def photo_like(width: int, height: int, seed: int, *, shapes: int = 12, noise: int = 6) -> Image.Image:
    """A deterministic (per ``seed``) RGB photo-like image of ``width`` x ``height`` pixels."""
    rng = np.random.default_rng(seed)
    field = rng.integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    base = Image.fromarray(field).resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(base)
    scale = min(width, height)
    for _ in range(shapes):
        x, y = float(rng.uniform(0, width)), float(rng.uniform(0, height))
        r = float(rng.uniform(0.05, 0.3)) * scale
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        box = (x - r, y - r * float(rng.uniform(0.4, 1.0)), x + r, y + r)
        match int(rng.integers(0, 3)):
            case 0:
                draw.ellipse(box, fill=colour)
            case 1:
                draw.rectangle(box, fill=colour)
            case _:
                pts = [(float(rng.uniform(x - r, x + r)), float(rng.uniform(y - r, y + r))) for _ in range(5)]
                draw.polygon(pts, fill=colour)
    base = base.filter(ImageFilter.BoxBlur(radius=max(1.0, scale / 400)))
    if noise <= 0:
        return base
    arr = np.asarray(base, dtype=np.int16)
    grain = rng.integers(-noise, noise + 1, size=(height, width, 1), dtype=np.int16)  # luminance grain
    return Image.fromarray(np.clip(arr + grain, 0, 255).astype(np.uint8))


def jpeg_bytes(im: Image.Image, quality: int = 90, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality, **kw)
    return buf.getvalue()
