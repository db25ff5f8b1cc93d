"""Images -> PDQ: open safely, refuse bombs, decode (reduced for big JPEGs), orient, flatten to RGB.

Design choices, and why:

* Only the formats a hotline meets are opened (``_FORMATS``): Pillow's other plugins include EPS,
  which runs Ghostscript on the data, and a dozen rarely used parsers; none is worth that exposure.
* Decompression bombs are refused on ``width x height`` *before* decoding, against
  ``settings.max_image_pixels``: first from the raw header (PNG, GIF, BMP, WebP, JPEG), then from
  what Pillow read of the header. Pillow's own process-wide ``MAX_IMAGE_PIXELS`` is left alone
  (other code in the process may rely on it); its warning is silenced and its error translated.
* Cost is bounded by pixels, not by file size (a 190 KB PNG can hold 49 megapixels). Large JPEGs
  are decoded at 1/2, 1/4 or 1/8 scale by libjpeg's scaled DCT (``Image.draft``) to no less than
  ``settings.pdq_fast_decode_size`` pixels a side: PDQ filters every image down to 64x64, so the
  full 12 megapixels change the hash by a few bits at most and cost ~10x the time. Other formats
  cannot be decoded at reduced size: the one full-size copy the decoder makes is flattened to RGB
  and box-reduced strip by strip (:func:`decode_image`), never copied whole to float, 16-bit or
  RGBA arrays; images over :data:`REDUCE_ABOVE` pixels reach PDQ at no less than
  ``pdq_fast_decode_size`` a side. Smaller images hash exactly as before.
* EXIF orientation is applied, so a photo hashes the way it is shown; the turn is made on the
  reduced pixels (:meth:`Decoded.upright`). HEIF images come oriented from libheif already
  (pillow-heif drops the tag); AVIF and the rest are turned here.
* When the tag turns or mirrors the picture (2-8), the pixels *as stored* are hashed too
  (``ImageHash.stored_pdq``, from the same decode): Meta's hashers, HMA and python-threatexchange
  hash those, never turning the photo, so their lists hold that hash; the upright one would land
  ~128 bits away.
* A JPEG cut short (a download that stopped) is shown by browsers down to where the data ends; it
  is hashed the same way, with the PDQ quality of what decoded, and the record says ``truncated``.
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
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pillow_heif
from PIL import Image, UnidentifiedImageError

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
#: How each EXIF orientation is turned upright (as ``PIL.ImageOps.exif_transpose`` does).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
#: Orientations that move pixels (1 is "as stored"; other values are invalid and ignored).
_MOVED = range(2, 9)
#: Images of more pixels than this are box-reduced for PDQ (see :func:`pdq_factors`).
REDUCE_ABOVE = 2048 * 2048
#: Pixels flattened to RGB at a time (see :func:`_reduced_rgb`).
STRIP_PIXELS = 1 << 20


@dataclass(frozen=True, slots=True)
class ImageHash:
    pdq: str
    quality: int
    dihedral: list[str] | None
    width: int
    height: int
    format: str
    truncated: bool = False
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
    fast = settings.pdq_fast_decode_size
    decoded = decode_image(
        data,
        detected,
        settings.max_image_pixels,
        draft=fast,
        factors=(lambda w, h: pdq_factors(w, h, fast)) if fast > 0 else None,
    )
    rgb = decoded.upright()
    if dihedral:
        variants, quality = pdq_dihedral(rgb)
        upright = ImageHash(
            variants[0], quality, variants, decoded.width, decoded.height, decoded.format, decoded.truncated
        )
    else:
        value, quality = pdq_hash(rgb)
        upright = ImageHash(
            value, quality, None, decoded.width, decoded.height, decoded.format, decoded.truncated
        )
    if decoded.orientation not in _MOVED:
        return upright
    return with_stored(upright, decoded.orientation, decoded.rgb)


def with_stored(upright: ImageHash, orientation: int | None, stored: npt.NDArray[np.uint8]) -> ImageHash:
    """``upright`` with the PDQ of the pixels as stored, before the EXIF orientation turned them."""
    value, quality = pdq_hash(stored)
    return replace(upright, orientation=orientation, stored_pdq=value, stored_quality=quality)


@dataclass(frozen=True, slots=True)
class Decoded:
    """An image's pixels as stored (EXIF orientation *not* applied), flattened to RGB and reduced as
    the caller allowed; ``width`` x ``height`` is the full size as shown (orientation applied)."""

    rgb: npt.NDArray[np.uint8]
    orientation: int | None
    width: int
    height: int
    format: str
    #: the data ended early (a JPEG cut short): ``rgb`` holds what decodes, the rest is grey
    truncated: bool = False

    def upright(self) -> npt.NDArray[np.uint8]:
        """``rgb`` turned the way the EXIF orientation says the image is shown."""
        method = _TRANSPOSE.get(self.orientation or 1)
        if method is None:
            return self.rgb
        return np.asarray(Image.fromarray(self.rgb).transpose(method))


def pdq_factors(width: int, height: int, min_side: int) -> tuple[int, int]:
    """Box-reduction factors per axis for PDQ: each side kept at ``min_side`` pixels or more.

    PDQ filters each axis down to 64 samples on its own (Jarosz box filters), so averaging blocks of
    pixels first changes the hash by a few bits at most; images up to :data:`REDUCE_ABOVE` pixels are
    left as they are (their hashes stay exactly as before)."""
    if min_side <= 0 or width * height <= REDUCE_ABOVE:
        return 1, 1
    return max(1, width // min_side), max(1, height // min_side)


def decode_image(
    data: bytes,
    detected: Detected,
    limit: int,
    *,
    draft: int,
    factors: Callable[[int, int], tuple[int, int]] | None,
) -> Decoded:
    """Decode ``data`` with at most one full-size copy of its pixels in memory.

    JPEGs are decoded by libjpeg's scaled DCT to no less than ``draft`` pixels a side (0: full
    size). Other formats decode at full size (their decoders cannot scale), and are then flattened
    to RGB and box-reduced by ``factors(width, height)`` strip by strip, so the float, 16-bit and
    RGBA temporaries of flattening stay the size of a strip, not of the picture. A JPEG cut short is
    decoded as far as its data goes (the rest grey, as browsers show it) and marked ``truncated``.
    Raises :class:`MediaError` with a human message when it cannot decode.
    """
    label = detected.format or "image"
    im = _open(data, detected, label, limit)
    with im:
        width, height = im.size
        if width * height > limit:
            raise too_large(width, height, limit)
        fmt = "JPEG" if im.format == "MPO" else str(im.format)
        truncated = False
        try:
            if fmt == "JPEG" and draft > 0:
                im.draft("RGB", (draft, draft))
            try:
                im.load()
            except OSError as e:
                if fmt != "JPEG" or "truncated" not in str(e) or data.endswith(b"\xff\xd9"):
                    raise
                truncated = True
            if truncated:  # again, from bytes that end the way Pillow ends a truncated JPEG
                return _decode_truncated_jpeg(data, detected, limit, draft, factors)
            orientation = _orientation(im)
            fx, fy = factors(*im.size) if factors is not None else (1, 1)
            rgb = _reduced_rgb(im, fx, fy)
        except (MediaError, MemoryError):
            raise
        except Exception as e:
            raise MediaError(f"cannot decode {fmt} image: {_reason(e)}") from None
    if orientation in _TURNED:
        width, height = height, width
    return Decoded(rgb, orientation, width, height, fmt, truncated)


def _decode_truncated_jpeg(
    data: bytes,
    detected: Detected,
    limit: int,
    draft: int,
    factors: Callable[[int, int], tuple[int, int]] | None,
) -> Decoded:
    """A JPEG whose data stops early, decoded as a browser shows it: libjpeg is given an end-of-image
    marker where the data stops (what Pillow does under its process-wide ``LOAD_TRUNCATED_IMAGES``,
    here for this one image only), so the part that arrived decodes and the rest is grey."""
    if b"\xff\xda" not in data:  # no scan data at all: nothing was shown
        raise MediaError("cannot decode JPEG image: the file ends before its image data")
    decoded = decode_image(data + b"\xff\xd9", detected, limit, draft=draft, factors=factors)
    return Decoded(
        decoded.rgb, decoded.orientation, decoded.width, decoded.height, decoded.format, truncated=True
    )


def _open(data: bytes, detected: Detected, label: str, limit: int) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data), formats=_formats())
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


def _reduced_rgb(im: Image.Image, fx: int, fy: int) -> npt.NDArray[np.uint8]:
    """``im`` flattened to RGB (:func:`to_rgb`) and box-reduced by ``fx`` x ``fy``, in strips of
    about :data:`STRIP_PIXELS`, so no full-size temporary is made besides ``im`` itself."""
    width, height = im.size
    if width * height <= STRIP_PIXELS:
        rgb = to_rgb(im)
        if (fx, fy) == (1, 1):
            return rgb
        return np.asarray(Image.fromarray(rgb).reduce((fx, fy)))
    top = _wide_top(im)
    rows = max(1, STRIP_PIXELS // (width * fy)) * fy
    parts = []
    for y in range(0, height, rows):
        rgb = to_rgb(im.crop((0, y, width, min(height, y + rows))), top=top)
        if (fx, fy) != (1, 1):
            rgb = np.asarray(Image.fromarray(rgb).reduce((fx, fy)))
        parts.append(rgb)
    return np.ascontiguousarray(np.concatenate(parts))


def _wide_top(im: Image.Image) -> float | None:
    """The largest value of a 32-bit integer or float image (how it is scaled to 8 bits)."""
    if im.mode not in ("I", "F"):
        return None
    extrema = im.getextrema()
    return float(extrema[1]) if isinstance(extrema[1], (int, float)) else None


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


def to_rgb(im: Image.Image, *, top: float | None = None) -> npt.NDArray[np.uint8]:
    """An HxWx3 uint8 array of ``im`` (see the module notes for how each mode is flattened);
    ``top``: the largest value of the whole image, when ``im`` is a strip of a 32-bit one."""
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im)
    if mode.startswith("I") or mode == "F":
        grey = _wide_grey(np.asarray(im), sixteen_bit=mode.startswith("I;16"), top=top)
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


def _wide_grey(
    arr: npt.NDArray[np.generic], *, sixteen_bit: bool, top: float | None = None
) -> npt.NDArray[np.uint8]:
    """16-bit greyscale -> 8 bits; 32-bit integer or float: scaled to the range the values use."""
    a = arr.astype(np.float64)
    if top is None:
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
