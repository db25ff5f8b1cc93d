"""Benign phone-style photos for the EXIF orientation tests: a generated scene stored turned, as a
camera stores it, with the orientation tag (0x0112) that says how to show it; and the PDQ hash
other tools (Meta's hashers, HMA, python-threatexchange) give it, computed here with the
``pdqhash`` package directly on the stored pixels, independently of meldpunt's code."""

from __future__ import annotations

import io

import numpy as np
import pdqhash
from PIL import Image

from tests.helpers.imagegen import scene

T = Image.Transpose
#: EXIF orientation -> how a camera's stored pixels are made from the upright picture.
STORED = {
    1: None,
    2: T.FLIP_LEFT_RIGHT,
    3: T.ROTATE_180,
    4: T.FLIP_TOP_BOTTOM,
    5: T.TRANSPOSE,
    6: T.ROTATE_90,
    7: T.TRANSVERSE,
    8: T.ROTATE_270,
}


def oriented_jpeg(seed: int, orientation: int | None, size: tuple[int, int] = (320, 240)) -> bytes:
    """A JPEG of scene ``seed`` (upright ``size``) stored turned for ``orientation`` and tagged with
    it; ``None``: no EXIF at all."""
    upright = scene(seed, *size)
    t = STORED[orientation or 1]
    stored = upright if t is None else upright.transpose(t)
    buf = io.BytesIO()
    if orientation is None:
        stored.save(buf, format="JPEG", quality=92)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        stored.save(buf, format="JPEG", quality=92, exif=exif.tobytes())
    return buf.getvalue()


def stored_pixels_pdq(data: bytes) -> str:
    """PDQ hex of the pixels as stored (Pillow's ``open`` never applies the orientation tag), the
    way python-threatexchange's ``PdqSignal`` hashes a file: ``pdqhash.compute`` on RGB."""
    with Image.open(io.BytesIO(data)) as im:
        rgb = np.ascontiguousarray(np.asarray(im.convert("RGB")))
    bits, _quality = pdqhash.compute(rgb)
    return f"{int(''.join(str(int(b)) for b in bits), 2):064x}"
