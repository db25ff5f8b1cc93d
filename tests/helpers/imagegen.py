"""Benign test images drawn on the spot: smooth "photo-like" scenes of shapes and gradients."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def scene(seed: int, w: int = 640, h: int = 480) -> Image.Image:
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, h)[:, None, None]
    top, bottom = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    arr = (top * (1 - y) + bottom * y) * np.ones((1, w, 1))
    img = Image.fromarray(arr.astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(20, w / 4)
        colour = tuple(int(c) for c in rng.uniform(0, 255, 3))
        if rng.random() < 0.5:
            d.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], fill=colour)
        else:
            d.rectangle([x0 - r, y0 - r / 2, x0 + r, y0 + r / 2], fill=colour)
    noisy = np.clip(np.asarray(img, float) + rng.normal(0, 4, (h, w, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(noisy).filter(ImageFilter.GaussianBlur(1.0))


def save_scene(path: Path, seed: int, **kw: object) -> Path:
    scene(seed).save(path, **kw)  # type: ignore[arg-type]
    return path
