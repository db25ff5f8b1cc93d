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


# --- hostile in size only: few bytes, many pixels (for bench/hostile.py and the memory tests) ----


def flat_png(width: int, height: int, *, mode: str = "RGBA") -> bytes:
    """A PNG of ``width`` x ``height`` pixels that compresses to almost nothing: a few flat coloured
    bands (half transparent in RGBA). 7000x7000 RGBA is about 190 KB for 196 MB of pixels."""
    im = Image.new(mode, (width, height), (30, 90, 160, 255)[: len(mode)])
    draw = ImageDraw.Draw(im)
    for k in range(4):
        colour = (200 - 40 * k, 60 + 30 * k, 90, 128 + 30 * k)[: len(mode)]
        draw.rectangle((k * width // 5, k * height // 5, width - 1, (k + 1) * height // 5), fill=colour)
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=9)
    return buf.getvalue()


def flat_video(width: int, height: int, frames: int, *, rate: int = 30) -> bytes:
    """An H.264 MP4 of ``frames`` flat two-colour frames of ``width`` x ``height``: 30 frames of
    8192x8192 are about 200 KB. Slow to make when huge (the encoder still reads every pixel)."""
    import av  # only where videos are made

    buf = io.BytesIO()
    picture = np.zeros((height, width, 3), np.uint8)
    picture[:, : width // 2] = (40, 120, 200)
    frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "40"}
        for i in range(frames):
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()
