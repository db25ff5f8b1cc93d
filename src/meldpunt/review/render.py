"""Media -> what the analyst's screen shows: small, blurred, greyscale renderings made on the server.

"Wellness by default": an analyst should see no more than it takes to decide. So the browser never
gets the original bytes; it gets an image rendered here, from the decoded pixels, and re-encoded.

* :func:`thumbnail` of an image: EXIF orientation applied, fitted within ``size`` x ``size``,
  greyscale and blurred by default. ``blur=False, greyscale=False`` is the *reveal* rendering,
  asked for on purpose (:func:`render_for_review` makes it 1024 pixels), and still a re-encoded
  thumbnail: never the original bytes, never their metadata.
* :func:`contact_sheet` of a video: up to ``frames`` frames spread evenly over the duration, in a
  grid, each tile blurred and greyscale by default, with its time written on it. It seeks (to the
  keyframe before each time, then decodes forward to the frame shown at that time, at most
  :data:`MAX_FRAMES_PER_TILE` frames); a file that cannot be seeked, or has no duration, is decoded
  once from the start instead, keeping a bounded sample of frames. Only the video stream is demuxed
  for decoding: audio packets are skipped, never decoded.
* :func:`render_for_review` says what the bytes are (``meldpunt.signals.sniff``) and picks one.

The blur. A Gaussian blur with a standard deviation of :data:`BLUR_SHARE` (6 %) of the longer side
of the rendering: 19 pixels on a 320-pixel thumbnail. That is strong on purpose. The blur's
half-height width is about 2.4 standard deviations (14 % of the picture), so what is smaller than
about a seventh of the frame (faces in a scene, text, skin texture, anything needing detail to
recognise) is gone, while the large shapes, the light and the layout of a scene (a room, a
landscape, a screenshot, a person-sized shape) remain, which is often enough to tell benign
material and obvious duplicates apart. Because the radius is a share of the rendering's own size,
the same picture is equally unreadable at every thumbnail size. The blur is applied after the
downscaling (cheaper, and the result is the same to the eye) and before encoding, so the sharp
picture never leaves this module.

Safety. Input is refused, with a :class:`RenderError` saying why, before anything is decoded when
it is empty, bigger than ``settings.max_file_bytes``, or an image whose header claims more than
``settings.max_image_pixels``; images are opened through the same format allow-list, pixel limit and
mode handling as the PDQ hasher (``meldpunt.signals.image``), videos through the same demuxer and
protocol allow-list as the vPDQ hasher (``meldpunt.signals.video``), with its limits on length
(``settings.max_video_s``) and a frame size limit (``settings.max_image_pixels``). The output
is built from a fresh pixel array, so no EXIF, ICC profile, XMP or comment can travel along.
Transparent pixels are shown on black (as the hasher flattens them).
"""

from __future__ import annotations

import io
import logging
import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, TypeVar

import av
import av.error
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from meldpunt.settings import Settings
from meldpunt.signals.image import _UNSUPPORTED, decode_image, too_large
from meldpunt.signals.model import MediaError, MediaKind
from meldpunt.signals.sniff import HEAD_BYTES, Detected, detect, header_dimensions
from meldpunt.signals.video import (
    _OPEN_OPTIONS,
    _clock,
    _duration,
    _too_long,
    check_frame_size,
    limit_decoder_threads,
)

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: What every rendering is encoded as.
CONTENT_TYPE = "image/jpeg"
#: Longer side of a review thumbnail, and of a contact sheet's tiles.
REVIEW_SIZE = 320
#: Longer side of a revealed image, and of a revealed contact sheet's tiles.
REVEAL_SIZE = 1024
REVEAL_TILE_SIZE = 480
#: Standard deviation of the blur, as a share of the rendering's longer side (see the module notes).
BLUR_SHARE = 0.06
#: Pixels between the tiles of a contact sheet, and around them.
GAP = 4
#: Grey of the contact sheet's background (in the gaps and around tiles of another shape).
BACKGROUND = 32
#: Most frames decoded after a seek to reach one tile's time: a file with rare keyframes costs at
#: most this many frames a tile (the tile then shows the last of them, and says its time).
MAX_FRAMES_PER_TILE = 300
MAX_TILES = 100
MIN_SIZE, MAX_SIZE = 16, 4096
JPEG_QUALITY = 85


class RenderError(Exception):
    """Content that cannot be rendered for review; the message says why, in words a person can use."""


@dataclass(frozen=True, slots=True)
class _Tile:
    image: Image.Image
    seconds: float


def blur_radius(width: int, height: int) -> float:
    """The blur's standard deviation for a rendering of ``width`` x ``height`` (see the notes)."""
    return max(1.0, BLUR_SHARE * max(width, height))


# --- images ------------------------------------------------------------------------------------


def thumbnail(
    data: bytes,
    name: str,
    *,
    size: int = REVIEW_SIZE,
    blur: bool = True,
    greyscale: bool = True,
    settings: Settings | None = None,
) -> bytes:
    """A JPEG of image ``data`` fitted within ``size`` x ``size`` (never enlarged), oriented as shown,
    greyscale and blurred unless asked otherwise, without metadata. Raises :class:`RenderError`."""
    _check_size(size)
    settings = Settings.from_env() if settings is None else settings
    detected = _check_input(data, name, settings, MediaKind.IMAGE)
    picture = _decode_image(data, detected, settings, size)
    if greyscale:
        picture = picture.convert("L")
    if blur:
        picture = picture.filter(ImageFilter.GaussianBlur(blur_radius(*picture.size)))
    return _encode(picture)


def _decode_image(data: bytes, detected: Detected, settings: Settings, size: int) -> Image.Image:
    if detected.format in _UNSUPPORTED and detected.by == "magic":
        raise RenderError(f"unsupported image format: {_UNSUPPORTED[detected.format]} (no decoder installed)")
    limit = settings.max_image_pixels
    dims = header_dimensions(data)
    if dims is not None and dims[0] * dims[1] > limit:
        raise RenderError(str(too_large(*dims, limit)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            decoded = decode_image(
                data, detected, limit, draft=size, factors=lambda w, h: fit_factors(w, h, size)
            )
        except MediaError as e:
            raise RenderError(str(e)) from None
        finally:
            for w in caught:
                log.info("while rendering an image: %s: %s", w.category.__name__, w.message)
    # A fresh image from the pixels alone: no EXIF, ICC profile, XMP or comment comes along.
    picture = Image.fromarray(decoded.upright())
    picture.thumbnail((size, size), Image.Resampling.LANCZOS)
    return picture


def fit_factors(width: int, height: int, size: int) -> tuple[int, int]:
    """One box-reduction factor for both axes that keeps the longer side at twice ``size`` or
    more (what ``Image.thumbnail``'s own reducing gap keeps), so the sharp resampling after it
    looks the same while a 49-megapixel PNG is never flattened or resampled at full size."""
    factor = max(1, max(width, height) // (2 * size))
    return factor, factor


# --- videos ------------------------------------------------------------------------------------


def contact_sheet(
    data: bytes,
    name: str,
    *,
    frames: int = 9,
    size: int = REVIEW_SIZE,
    blur: bool = True,
    greyscale: bool = True,
    settings: Settings | None = None,
) -> bytes:
    """A JPEG grid of up to ``frames`` frames of video ``data``, evenly spread over its duration.

    Each tile is fitted within ``size`` x ``size`` (never enlarged), greyscale and blurred unless
    asked otherwise, and labelled with its time. The grid has ``ceil(sqrt(n))`` columns and as many
    rows as it takes for the ``n`` tiles there are (fewer than ``frames`` when the video has fewer
    distinct frames), :data:`GAP` pixels apart. Raises :class:`RenderError`.
    """
    if not 1 <= frames <= MAX_TILES:
        raise ValueError(f"frames must be between 1 and {MAX_TILES}, not {frames}")
    _check_size(size)
    settings = Settings.from_env() if settings is None else settings
    detected = _check_input(data, name, settings, MediaKind.VIDEO)
    label = detected.format or "video"
    tiles: list[_Tile] | None = None
    with _open_video(data, label) as container:
        tiles = _run(label, lambda: _by_seeking(container, label, frames, size, greyscale, settings))
    if not tiles:  # no index, no duration, or seeking gave nothing: read it once from the start
        with _open_video(data, label) as container:
            tiles = _run(label, lambda: _sequentially(container, label, frames, size, greyscale, settings))
    return _encode(_layout(tiles, blur=blur, greyscale=greyscale))


def grid(count: int) -> tuple[int, int]:
    """(columns, rows) of a contact sheet of ``count`` tiles."""
    columns = math.ceil(math.sqrt(count))
    return columns, math.ceil(count / columns)


@contextmanager
def _open_video(data: bytes, label: str) -> Iterator[Any]:
    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore", options=dict(_OPEN_OPTIONS))
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise RenderError(f"cannot decode {label}: {_reason(e)}") from None
    with container:
        yield container


def _run(label: str, work: Callable[[], _T]) -> _T:
    """``work()``, with whatever the decoder raises turned into a :class:`RenderError`."""
    try:
        return work()
    except RenderError:
        raise
    except MediaError as e:  # the signals' limits (too long) say it in their own words
        raise RenderError(str(e)) from None
    except (av.error.FFmpegError, OSError, ValueError, RuntimeError, MemoryError) as e:
        raise RenderError(f"cannot decode {label}: {_reason(e)}") from None


def _video_stream(container: Any, label: str, settings: Settings) -> Any:
    if not container.streams.video:
        raise RenderError(f"cannot decode {label}: the file has no video stream")
    stream = container.streams.video[0]
    width, height = stream.codec_context.width or 0, stream.codec_context.height or 0
    _check_frame_size(width, height, settings)
    limit_decoder_threads(stream, width, height)
    return stream


def _by_seeking(
    container: Any, label: str, count: int, size: int, greyscale: bool, settings: Settings
) -> list[_Tile] | None:
    """Tiles at the middle of ``count`` equal spans of the video; None when it cannot be seeked."""
    stream = _video_stream(container, label, settings)
    seconds = _duration(container, stream)
    if seconds is not None and seconds > settings.max_video_s:
        raise _too_long(seconds, settings.max_video_s)
    if seconds is None or stream.time_base is None:
        return None
    base = Fraction(stream.time_base)
    start = stream.start_time if stream.start_time is not None else 0
    tiles: list[_Tile] = []
    shown: set[int] = set()
    for i in range(count):
        target = start + int(Fraction(seconds) * (2 * i + 1) / (2 * count) / base)
        try:
            container.seek(target, stream=stream, backward=True, any_frame=False)
        except (av.error.FFmpegError, OSError, ValueError):
            log.info("cannot seek in a %s; decoding it from the start", label)
            return None
        # The frame on screen at the target time: the last one that starts at or before it.
        frame = None
        for decoded, candidate in enumerate(container.decode(stream)):
            if candidate.pts is None:
                return None
            if candidate.pts > target and frame is not None:
                break
            frame = candidate
            if candidate.pts >= target or decoded + 1 >= MAX_FRAMES_PER_TILE:
                break
        if frame is None:
            return None
        if frame.pts in shown:  # a short video: fewer distinct frames than tiles
            continue
        shown.add(frame.pts)
        tiles.append(_tile(frame, float((frame.pts - start) * base), size, greyscale, settings))
    return tiles


def _sequentially(
    container: Any, label: str, count: int, size: int, greyscale: bool, settings: Settings
) -> list[_Tile]:
    """Decode from the start, keeping every ``step``-th frame; the step doubles to keep at most
    ``4 * count`` tiles, and ``count`` of them evenly spread are shown."""
    stream = _video_stream(container, label, settings)
    rate = stream.average_rate or stream.base_rate or stream.guessed_rate
    fps = float(rate) if rate and rate > 0 else None
    limit = settings.max_video_s
    kept: list[_Tile] = []
    step = 1
    for number, frame in enumerate(container.decode(stream)):
        if fps is not None:
            seconds = number / fps
        elif frame.time is not None:
            seconds = float(frame.time)
        elif number >= settings.max_video_frames:
            raise RenderError(f"video too long: more than {settings.max_video_frames:,} frames")
        else:
            seconds = 0.0
        if seconds > limit:
            raise _too_long(seconds, limit)
        if number % step:
            continue
        kept.append(_tile(frame, seconds, size, greyscale, settings))
        if len(kept) > 4 * count:
            kept = kept[::2]
            step *= 2
    if not kept:
        raise RenderError(f"cannot decode {label}: no frame could be decoded")
    if len(kept) <= count:
        return kept
    return [kept[(2 * i + 1) * len(kept) // (2 * count)] for i in range(count)]


def _tile(frame: Any, seconds: float, size: int, greyscale: bool, settings: Settings) -> _Tile:
    _check_frame_size(frame.width, frame.height, settings)
    scale = min(1.0, size / max(frame.width, frame.height, 1))
    width, height = max(1, round(frame.width * scale)), max(1, round(frame.height * scale))
    small = frame.reformat(
        width=width, height=height, format="gray" if greyscale else "rgb24", interpolation="AREA"
    )
    pixels = np.ascontiguousarray(small.to_ndarray(), dtype=np.uint8)
    return _Tile(Image.fromarray(pixels), seconds)


def _check_frame_size(width: int, height: int, settings: Settings) -> None:
    try:
        check_frame_size(width, height, settings.max_image_pixels)
    except MediaError as e:
        raise RenderError(str(e)) from None


def _layout(tiles: list[_Tile], *, blur: bool, greyscale: bool) -> Image.Image:
    columns, rows = grid(len(tiles))
    cell_w = max(t.image.width for t in tiles)
    cell_h = max(t.image.height for t in tiles)
    mode = "L" if greyscale else "RGB"
    background: int | tuple[int, int, int] = BACKGROUND if greyscale else (BACKGROUND,) * 3
    sheet = Image.new(
        mode, (columns * cell_w + (columns + 1) * GAP, rows * cell_h + (rows + 1) * GAP), background
    )
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=max(9, min(cell_w, cell_h) // 10))
    white: int | tuple[int, int, int] = 255 if greyscale else (255, 255, 255)
    black: int | tuple[int, int, int] = 0 if greyscale else (0, 0, 0)
    for k, tile in enumerate(tiles):
        row, column = divmod(k, columns)
        picture = tile.image.convert(mode)
        if blur:
            picture = picture.filter(ImageFilter.GaussianBlur(blur_radius(*picture.size)))
        x = GAP + column * (cell_w + GAP) + (cell_w - picture.width) // 2
        y = GAP + row * (cell_h + GAP) + (cell_h - picture.height) // 2
        sheet.paste(picture, (x, y))
        # The time, drawn after the blur so that it stays readable, in the tile's lower left corner.
        text = _clock(tile.seconds)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tx, ty = x + 2, y + picture.height - (bottom - top) - 4
        draw.rectangle((tx, ty, tx + right - left + 3, ty + bottom - top + 3), fill=black)
        draw.text((tx + 2 - left, ty + 2 - top), text, font=font, fill=white)
    return sheet


# --- both --------------------------------------------------------------------------------------


def render_for_review(
    data: bytes, name: str, *, reveal: bool = False, settings: Settings | None = None
) -> tuple[bytes, str]:
    """(image bytes, content type) to show for ``data``: a blurred greyscale thumbnail or contact
    sheet, or with ``reveal`` a larger sharp colour one. Raises :class:`RenderError` for content
    that is neither image nor video, or that cannot be rendered."""
    kind = detect(data[:HEAD_BYTES], name).kind
    if kind is MediaKind.IMAGE:
        size = REVEAL_SIZE if reveal else REVIEW_SIZE
        out = thumbnail(data, name, size=size, blur=not reveal, greyscale=not reveal, settings=settings)
    elif kind is MediaKind.VIDEO:
        size = REVEAL_TILE_SIZE if reveal else REVIEW_SIZE
        out = contact_sheet(data, name, size=size, blur=not reveal, greyscale=not reveal, settings=settings)
    else:
        raise RenderError("nothing to show: the content is neither an image nor a video")
    return out, CONTENT_TYPE


def _check_size(size: int) -> None:
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be between {MIN_SIZE} and {MAX_SIZE} pixels, not {size}")


def _check_input(data: bytes, name: str, settings: Settings, kind: MediaKind) -> Detected:
    if not data:
        raise RenderError("empty file: nothing to render")
    if len(data) > settings.max_file_bytes:
        raise RenderError(
            f"file too large: {len(data):,} bytes exceeds the {settings.max_file_bytes:,}-byte limit"
            " (settings.max_file_bytes)"
        )
    detected = detect(data[:HEAD_BYTES], name)
    if detected.kind is not kind:
        names = {MediaKind.IMAGE: "an image", MediaKind.VIDEO: "a video"}
        what = names.get(detected.kind, "neither an image nor a video")
        raise RenderError(f"not {names[kind]}: the content is {what}")
    return detected


def _encode(picture: Image.Image) -> bytes:
    picture.info.clear()
    buf = io.BytesIO()
    picture.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def _reason(e: BaseException) -> str:
    if isinstance(e, av.error.FFmpegError) and e.strerror:
        return str(e.strerror)
    text = str(e).strip()
    return text if text else type(e).__name__
