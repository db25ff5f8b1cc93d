"""Videos -> vPDQ: PDQ of frames decoded with PyAV, chosen and numbered the way Meta's vpdq does.

Compatibility with Meta's vpdq (``vpdq/cpp/hashing/filehasher.cpp``) is what makes our hashes
match theirs, so its rules are followed, not improved on:

* The first video stream is hashed; its frame rate is ``avg_frame_rate``, else ``r_frame_rate``.
* Frames are numbered 0, 1, 2, ... in the order the decoder gives them out (presentation order),
  whatever their timestamps say.
* Frame *n* is hashed when ``n % int(seconds_per_hash * fps) == 0`` (the step is at least 1), so at
  1 s per hash and 29.97 fps frames 0, 29, 58, ... are hashed: vpdq truncates the step, it does not
  seek to whole seconds. ``every_frame`` hashes them all (step 1).
* A frame's timestamp is ``n / fps`` seconds, not its presentation time stamp.
* Frames are converted to RGB24 at their own size (no scaling) and hashed with PDQ; the display
  rotation of phone videos is not applied, as vpdq does not apply it either. Frames over
  ``REDUCE_ABOVE`` pixels (bigger than 2048x2048) are the exception: swscale reduces them while
  converting, to no less than ``settings.pdq_fast_decode_size`` a side (PDQ filters to 64x64
  anyway), so a huge frame never becomes a huge RGB and float array.
* Cost is bounded by pixels: frames over ``settings.max_image_pixels`` are refused before decoding
  (from the stream header) and while decoding, and the decoder's threads are limited so that the
  frames they hold stay within :data:`DECODER_BUDGET_BYTES`.

Checked against Meta's published vPDQ of the ThreatExchange test videos, every frame: frame numbers
and timestamps equal; frames of quality >= 50 within 22 bits (mean 5) on the doorknob video and
within 6 on the pattern videos (Meta's own regression test allows 31).

Bad input: a file that cannot be opened, has no video stream or gives no frame is an error, as is a
video over ``max_video_s`` (from its header, else while decoding) or with more than
``max_video_frames`` frames to hash. A stream cut short hashes the frames that are there, without an
error: FFmpeg, and so vpdq, stops quietly where the data ends. PyAV keeps FFmpeg's log off unless
the application turns it on (``av.logging.set_level``), in which case it goes to Python logging.
"""

from __future__ import annotations

import io
import logging
import math
import os
from dataclasses import dataclass
from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np
import numpy.typing as npt

from meldpunt.domain.signals import VpdqFrame
from meldpunt.settings import Settings
from meldpunt.signals.image import pdq_factors
from meldpunt.signals.model import MediaError
from meldpunt.signals.pdq import pdq_hash

log = logging.getLogger(__name__)

#: Demuxers allowed to read a file, and protocols allowed to open anything. Without them a text file
#: named ``.mp4`` holding an HLS playlist or an ffconcat script makes FFmpeg open the local files
#: and URLs it lists (a known way to read files off, or make requests from, a server).
_OPEN_OPTIONS = {
    "format_whitelist": "mov,mp4,matroska,webm,avi,flv,asf,mpeg,mpegts,mpegvideo,ogg,mxf",
    "protocol_whitelist": "file",
}


#: Bytes of decoded frames the decoder's threads may hold at once (see :func:`limit_decoder_threads`).
DECODER_BUDGET_BYTES = 256 * 1024 * 1024
#: Frames a frame-decoding thread may hold (its own, plus references).
FRAMES_PER_THREAD = 2


@dataclass(frozen=True, slots=True)
class VideoHash:
    frames: list[VpdqFrame]
    width: int
    height: int
    format: str
    fps: float


def frame_step(seconds_per_hash: float, fps: float) -> int:
    """vpdq's frame step: every ``int(seconds_per_hash * fps)``-th frame, at least every frame."""
    return max(1, int(seconds_per_hash * fps))


def hash_video(
    source: str | Path | bytes, fmt: str | None, settings: Settings, *, every_frame: bool = False
) -> VideoHash:
    """vPDQ of a video file (path) or its bytes; raises :class:`MediaError` when it cannot."""
    label = fmt or "video"
    # "file:" + an absolute path: FFmpeg must not read a name like "http:..." or "concat:..." as a URL.
    target = io.BytesIO(source) if isinstance(source, bytes) else "file:" + os.path.abspath(source)
    try:
        container = av.open(target, mode="r", metadata_errors="ignore", options=dict(_OPEN_OPTIONS))
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise MediaError(f"cannot decode {label}: {_reason(e)}") from None
    try:
        with container:
            return _hash_container(container, label, settings, every_frame)
    except MediaError:
        raise
    except (av.error.FFmpegError, OSError, ValueError, RuntimeError, MemoryError) as e:
        raise MediaError(f"cannot decode {label}: {_reason(e)}") from None


def _hash_container(
    container: av.container.InputContainer, label: str, settings: Settings, every: bool
) -> VideoHash:
    if not container.streams.video:
        raise MediaError(f"cannot decode {label}: the file has no video stream")
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.base_rate or stream.guessed_rate
    if not rate or rate <= 0:
        raise MediaError(f"cannot decode {label}: the frame rate cannot be determined")
    fps = float(rate)
    step = 1 if every else frame_step(settings.vpdq_frame_interval_s, fps)
    max_seconds = settings.max_video_s
    max_frames = settings.max_video_frames

    seconds = _duration(container, stream)
    if seconds is not None and seconds > max_seconds:
        raise _too_long(seconds, max_seconds)
    # Durations in headers are approximate: refuse up front only what is clearly over the limit;
    # the loop below enforces the limits exactly.
    if seconds is not None and math.ceil(seconds * fps / step) > max_frames * 1.01 + 1:
        raise _too_many(max_frames)

    width = stream.codec_context.width
    height = stream.codec_context.height
    check_frame_size(width, height, settings.max_image_pixels)
    limit_decoder_threads(stream, width, height)
    frames: list[VpdqFrame] = []
    for number, frame in enumerate(container.decode(stream)):
        timestamp = number / fps
        if timestamp > max_seconds:
            raise _too_long(timestamp, max_seconds)
        if number % step:
            continue
        if len(frames) >= max_frames:
            raise _too_many(max_frames)
        check_frame_size(frame.width, frame.height, settings.max_image_pixels)
        value, quality = pdq_hash(_frame_rgb(frame, settings.pdq_fast_decode_size))
        frames.append(VpdqFrame(frame=number, timestamp=timestamp, pdq=value, quality=quality))
        width, height = frame.width, frame.height
    if not frames:
        raise MediaError(f"cannot decode {label}: no frame could be decoded")
    return VideoHash(frames, width, height, label, fps)


def check_frame_size(width: int, height: int, limit: int) -> None:
    """Refuse frames over ``limit`` pixels (``settings.max_image_pixels``), before they are decoded
    when the header says their size: a 199 KB file can hold 30 frames of 8192x8192."""
    if width * height > limit:
        raise MediaError(
            f"video frames too large: {width}x{height} pixels exceeds the {limit:,}-pixel limit"
            " (settings.max_image_pixels)"
        )


def limit_decoder_threads(stream: av.video.stream.VideoStream, width: int, height: int) -> None:
    """Decode with threads, but no more than :data:`DECODER_BUDGET_BYTES` of frames in flight: each
    frame-decoding thread holds frames of its own, which on huge frames is what costs gigabytes."""
    frame_bytes = max(1, width * height) * 3 // 2 * FRAMES_PER_THREAD  # YUV 4:2:0
    threads = max(1, min(os.cpu_count() or 1, DECODER_BUDGET_BYTES // frame_bytes))
    stream.thread_type = "AUTO" if threads > 1 else "SLICE"
    stream.codec_context.thread_count = threads


def _frame_rgb(frame: av.VideoFrame, min_side: int) -> npt.NDArray[np.uint8]:
    """A frame as RGB24 for PDQ: at its own size (as vpdq does), except frames over
    ``REDUCE_ABOVE`` pixels, which swscale reduces (area averaging) to no less than ``min_side``
    pixels a side while converting, as :func:`meldpunt.signals.image.pdq_factors` does for images."""
    fx, fy = pdq_factors(frame.width, frame.height, min_side)
    if (fx, fy) == (1, 1):
        rgb = frame.to_ndarray(format="rgb24")
    else:
        small = frame.reformat(
            width=max(1, frame.width // fx),
            height=max(1, frame.height // fy),
            format="rgb24",
            interpolation="AREA",
        )
        rgb = small.to_ndarray()
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def _duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * Fraction(stream.time_base))
    if container.duration is not None and container.duration > 0:
        return float(container.duration) / av.time_base
    return None


def _clock(seconds: float) -> str:
    """H:MM:SS, with tenths when they are not zero (a 2.5 s limit must not read as 0:00:02)."""
    tenths = round(seconds * 10)
    whole = str(timedelta(seconds=tenths // 10))
    return whole if tenths % 10 == 0 else f"{whole}.{tenths % 10}"


def _too_long(seconds: float, limit: float) -> MediaError:
    return MediaError(
        f"video too long: {_clock(seconds)} exceeds the {_clock(limit)} limit (settings.max_video_s)"
    )


def _too_many(limit: int) -> MediaError:
    return MediaError(f"video too long: more than {limit:,} frames to hash (settings.max_video_frames)")


def _reason(e: BaseException) -> str:
    if isinstance(e, av.error.FFmpegError) and e.strerror:
        return str(e.strerror)
    text = str(e).strip()
    return text if text else type(e).__name__
