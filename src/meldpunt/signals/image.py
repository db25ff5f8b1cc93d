"""Images -> PDQ: open safely, refuse bombs, decode (reduced for big JPEGs), orient, flatten to RGB.

Design choices, and why:

* Only the formats a hotline meets are opened (``_FORMATS``): Pillow's other plugins include EPS,
  which runs Ghostscript on the data, and a dozen rarely used parsers; none is worth that exposure.
* Decompression bombs are refused on ``width x height`` *before* decoding, against
  ``settings.max_image_pixels``: first from the raw header (PNG, GIF, BMP, WebP, JPEG), then from
  what Pillow read of the header. Pillow's own process-wide ``MAX_IMAGE_PIXELS`` is left alone
  (other code in the process may rely on it); its warning is silenced and its error translated.
* Large JPEGs are decoded at 1/2, 1/4 or 1/8 scale by libjpeg's scaled DCT (``Image.draft``) to no
  less than ``settings.pdq_fast_decode_size`` pixels a side: PDQ filters every image down to 64x64,
  so the full 12 megapixels change the hash by a few bits at most and cost ~10x the time.
* EXIF orientation is applied, so a photo hashes the way it is shown. HEIF images come oriented
  from libheif already (pillow-heif drops the tag); AVIF and the rest are turned here.
* When the tag turns or mirrors the picture (2-8), the pixels *as stored* are hashed too
  (``ImageHash.stored_pdq``): Meta's hashers, HMA and python-threatexchange hash those, never
  turning the photo, so their lists hold that hash; the upright one would land ~128 bits away.
* Transparent images are composited on *black*. That is what dropping the alpha channel gives for the
  usual encoding of transparent pixels (all zero), which is what most other tools hashing with PIL's
  ``convert("RGB")`` do, so hashes stay comparable with theirs; white would be just as defensible
  to the eye but would disagree with those tools on every transparent area.
* 16-bit and 32-bit greyscale is scaled to 8 bits (not clipped, which would make it white); CMYK,
  palette and other modes go through Pillow's conversion to RGB. Animations give their first frame.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from meldpunt.settings import Settings
from meldpunt.signals.model import MediaError
from meldpunt.signals.pdq import pdq_dihedral, pdq_hash
from meldpunt.signals.sniff import Detected, header_dimensions

log = logging.getLogger(__name__)

pillow_heif.register_heif_opener()

_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "DIB", "TIFF", "HEIF", "AVIF", "ICO", "PPM", "TGA", "PSD")
_OPTIONAL_FORMATS = ("JPEG2000",)
#: Formats we recognise by their signature but cannot decode here.
_UNSUPPORTED = {"JXL": "JPEG XL"}
_ORIENTATION = 0x0112
_TURNED = {5, 6, 7, 8}
#: Orientations that move pixels (1 is "as stored"; other values are invalid and ignored).
_MOVED = range(2, 9)


@dataclass(frozen=True, slots=True)
class ImageHash:
    pdq: str
    quality: int
    dihedral: list[str] | None
    width: int
    height: int
    format: str
    #: Only for an EXIF orientation of 2-8: the tag, and the PDQ (and quality) of the stored pixels.
    orientation: int | None = None
    stored_pdq: str | None = None
    stored_quality: int | None = None


def _formats() -> tuple[str, ...]:
    Image.init()
    return _FORMATS + tuple(f for f in _OPTIONAL_FORMATS if f in Image.OPEN)


def too_large(width: int, height: int, limit: int) -> MediaError:
    return MediaError(
        f"image too large: {width}x{height} pixels exceeds the {limit:,}-pixel limit"
        " (settings.max_image_pixels)"
    )


def hash_image(data: bytes, detected: Detected, settings: Settings, *, dihedral: bool = False) -> ImageHash:
    """PDQ of image ``data``; raises :class:`MediaError` with a human message when it cannot."""
    if detected.format in _UNSUPPORTED and detected.by == "magic":
        raise MediaError(f"unsupported image format: {_UNSUPPORTED[detected.format]} (no decoder installed)")
    limit = settings.max_image_pixels
    dims = header_dimensions(data)
    if dims is not None and dims[0] * dims[1] > limit:
        raise too_large(*dims, limit)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return _decode_and_hash(data, detected, settings, dihedral)
        finally:
            for w in caught:
                log.info("while decoding an image: %s: %s", w.category.__name__, w.message)


def _decode_and_hash(data: bytes, detected: Detected, settings: Settings, dihedral: bool) -> ImageHash:
    limit = settings.max_image_pixels
    label = detected.format or "image"
    try:
        im = Image.open(io.BytesIO(data), formats=_formats())
    except Image.DecompressionBombError as e:
        # Pillow's own (process-wide) limit refused it while reading the header: say which limit.
        found = re.search(r"\((\d+) pixels\)", str(e))
        pixels = int(found.group(1)) if found else limit + 1
        which = (
            f"the {limit:,}-pixel limit (settings.max_image_pixels)"
            if pixels > limit
            else "Pillow's limit (PIL.Image.MAX_IMAGE_PIXELS)"
        )
        raise MediaError(f"image too large: {pixels:,} pixels exceeds {which}") from None
    except UnidentifiedImageError:
        if detected.by == "magic":
            raise MediaError(f"cannot decode {label} image: the header is damaged or unsupported") from None
        raise MediaError(
            f"cannot decode image: the content is not a recognised image format (the name says {label})"
        ) from None
    except Exception as e:  # every parser raises its own kind of error on bad headers
        raise MediaError(f"cannot decode {label} image: {_reason(e)}") from None
    with im:
        width, height = im.size
        if width * height > limit:
            raise too_large(width, height, limit)
        fmt = "JPEG" if im.format == "MPO" else str(im.format)
        fast = settings.pdq_fast_decode_size
        try:
            if fmt == "JPEG" and fast > 0:
                im.draft("RGB", (fast, fast))
            im.load()
            orientation = _orientation(im)
            if orientation in _TURNED:
                width, height = height, width
            stored = None
            if orientation in _MOVED:
                stored = to_rgb(im)
                ImageOps.exif_transpose(im, in_place=True)
            rgb = to_rgb(im)
        except MediaError:
            raise
        except Exception as e:
            raise MediaError(f"cannot decode {fmt} image: {_reason(e)}") from None
    if dihedral:
        variants, quality = pdq_dihedral(rgb)
        upright = ImageHash(variants[0], quality, variants, width, height, fmt)
    else:
        value, quality = pdq_hash(rgb)
        upright = ImageHash(value, quality, None, width, height, fmt)
    return upright if stored is None else with_stored(upright, orientation, stored)


def with_stored(upright: ImageHash, orientation: int | None, stored: npt.NDArray[np.uint8]) -> ImageHash:
    """``upright`` with the PDQ of the pixels as stored, before the EXIF orientation turned them."""
    value, quality = pdq_hash(stored)
    return replace(upright, orientation=orientation, stored_pdq=value, stored_quality=quality)


def _orientation(im: Image.Image) -> int | None:
    try:
        value = im.getexif().get(_ORIENTATION)
    except Exception:  # damaged EXIF: show the image as stored
        log.info("unreadable EXIF data; orientation ignored")
        return None
    return value if isinstance(value, int) else None


def _reason(e: BaseException) -> str:
    text = str(e).strip()
    return text if text else type(e).__name__


def to_rgb(im: Image.Image) -> npt.NDArray[np.uint8]:
    """An HxWx3 uint8 array of ``im`` (see the module notes for how each mode is flattened)."""
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im)
    if mode.startswith("I") or mode == "F":
        grey = _wide_grey(np.asarray(im), sixteen_bit=mode.startswith("I;16"))
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode in ("PA", "LA", "La", "RGBa"):
        im = im.convert("RGBA")
    elif mode != "RGBA":
        im = im.convert("RGB")
    if im.mode == "RGB":
        return np.asarray(im)
    rgba = np.asarray(im).astype(np.uint16)
    alpha = rgba[:, :, 3:4]
    return ((rgba[:, :, :3] * alpha + 127) // 255).astype(np.uint8)  # on black


def _wide_grey(arr: npt.NDArray[np.generic], *, sixteen_bit: bool) -> npt.NDArray[np.uint8]:
    """16-bit greyscale -> 8 bits; 32-bit integer or float: scaled to the range the values use."""
    a = arr.astype(np.float64)
    top = float(a.max()) if a.size else 0.0
    if sixteen_bit:
        scale = 255.0 / 65535.0
    elif arr.dtype.kind == "f":
        scale = 255.0 if top <= 1.0 else 1.0
    elif top <= 255:
        scale = 1.0
    elif top <= 65535:
        scale = 255.0 / 65535.0
    else:
        scale = 255.0 / top
    return np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)
