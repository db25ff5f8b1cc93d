"""What a file is: magic bytes first, the file name's extension second.

Magic bytes win because names lie (a JPEG saved as ``.txt``, a video renamed ``.jpg``); the
extension only decides for content without a signature we know. A file is *claimed* as media when
either says so, and claimed media that cannot be decoded is reported as an error, never silently
treated as "other".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import PurePath

from meldpunt.signals.model import MediaKind

#: How many leading bytes :func:`detect` needs.
HEAD_BYTES = 64

_IMAGE_EXTENSIONS = {
    **dict.fromkeys(("jpg", "jpeg", "jpe", "jfif", "pjpeg", "pjp"), "JPEG"),
    **dict.fromkeys(("png", "apng"), "PNG"),
    "gif": "GIF",
    "webp": "WEBP",
    **dict.fromkeys(("bmp", "dib"), "BMP"),
    **dict.fromkeys(("tif", "tiff"), "TIFF"),
    **dict.fromkeys(("heic", "heif", "hif", "heics", "heifs"), "HEIF"),
    **dict.fromkeys(("avif", "avifs"), "AVIF"),
    "ico": "ICO",
    **dict.fromkeys(("ppm", "pgm", "pbm", "pnm"), "PPM"),
    "tga": "TGA",
    "psd": "PSD",
    **dict.fromkeys(("jp2", "j2k", "jpx"), "JPEG2000"),
    "jxl": "JXL",
}
# ".ts" is left out on purpose: it is far more often TypeScript than MPEG-TS (which has magic bytes).
_VIDEO_EXTENSIONS = {
    **dict.fromkeys(("mp4", "m4v"), "MP4"),
    **dict.fromkeys(("mov", "qt"), "MOV"),
    "webm": "WebM",
    "mkv": "Matroska",
    "avi": "AVI",
    **dict.fromkeys(("wmv", "asf"), "ASF"),
    "flv": "FLV",
    **dict.fromkeys(("mpg", "mpeg", "m2v", "vob"), "MPEG"),
    **dict.fromkeys(("m2ts", "mts"), "MPEG-TS"),
    **dict.fromkeys(("3gp", "3g2"), "3GP"),
    "ogv": "Ogg",
    "mxf": "MXF",
}

# ISO base media (the "ftyp" box): brands of still images, and of audio-only files.
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
_BMP_DIB_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}


@dataclass(frozen=True, slots=True)
class Detected:
    kind: MediaKind
    #: A format label ("JPEG", "MP4", ...), or None for "other".
    format: str | None
    #: "magic" or "extension" (or "" for other).
    by: str


OTHER = Detected(MediaKind.OTHER, None, "")


def detect(head: bytes, name: str) -> Detected:
    """Classify a file from its first :data:`HEAD_BYTES` bytes and its name."""
    found = sniff_magic(head)
    if found is not None:
        kind, fmt = found
        return Detected(kind, fmt, "magic") if fmt is not None else OTHER
    ext = PurePath(name).suffix.lower().lstrip(".")
    if ext in _IMAGE_EXTENSIONS:
        return Detected(MediaKind.IMAGE, _IMAGE_EXTENSIONS[ext], "extension")
    if ext in _VIDEO_EXTENSIONS:
        return Detected(MediaKind.VIDEO, _VIDEO_EXTENSIONS[ext], "extension")
    return OTHER


def sniff_magic(head: bytes) -> tuple[MediaKind, str | None] | None:
    """(kind, format) from a signature; (OTHER, None) for a known non-media signature; None if unknown."""
    if head.startswith(b"\xff\xd8\xff"):
        return MediaKind.IMAGE, "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return MediaKind.IMAGE, "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return MediaKind.IMAGE, "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return MediaKind.IMAGE, "WEBP"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return MediaKind.VIDEO, "AVI"
    if head[:2] == b"BM" and len(head) >= 18 and struct.unpack_from("<I", head, 14)[0] in _BMP_DIB_SIZES:
        return MediaKind.IMAGE, "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return MediaKind.IMAGE, "TIFF"
    if head.startswith(b"\xff\x0a") or head.startswith(b"\x00\x00\x00\x0cJXL \r\n\x87\n"):
        return MediaKind.IMAGE, "JXL"
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n") or head.startswith(b"\xff\x4f\xff\x51"):
        return MediaKind.IMAGE, "JPEG2000"
    if head.startswith(b"8BPS"):
        return MediaKind.IMAGE, "PSD"
    if head[4:8] == b"ftyp":
        return _sniff_ftyp(head)
    if head[4:8] in (b"moov", b"mdat", b"wide", b"pnot"):
        return MediaKind.VIDEO, "MOV"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return MediaKind.VIDEO, "WebM" if b"webm" in head else "Matroska"
    if head.startswith(b"FLV\x01"):
        return MediaKind.VIDEO, "FLV"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return MediaKind.VIDEO, "ASF"
    if head.startswith(b"\x00\x00\x01\xba") or head.startswith(b"\x00\x00\x01\xb3"):
        return MediaKind.VIDEO, "MPEG"
    return None


def _sniff_ftyp(head: bytes) -> tuple[MediaKind, str | None]:
    major = head[8:12]
    if major in _HEIF_BRANDS:
        # A "mif1" file may be AVIF or HEIC: the compatible brands say which.
        box = head[16 : min(len(head), struct.unpack_from(">I", head, 0)[0])]
        compatible = {box[i : i + 4] for i in range(0, len(box) - 3, 4)}
        return MediaKind.IMAGE, "AVIF" if compatible & _AVIF_BRANDS and not compatible & {b"heic"} else "HEIF"
    if major in _AVIF_BRANDS:
        return MediaKind.IMAGE, "AVIF"
    if major in _AUDIO_BRANDS:
        return MediaKind.OTHER, None
    if major == b"qt  ":
        return MediaKind.VIDEO, "MOV"
    if major.startswith(b"3g"):
        return MediaKind.VIDEO, "3GP"
    return MediaKind.VIDEO, "MP4"


def header_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) read straight from the header of PNG, GIF, BMP, WebP and JPEG data.

    Used to refuse decompression bombs before any decoder (or Pillow's own, global, bomb check)
    sees the data. None when the format is not one of these or the header is too short to say.
    """
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            w, h = struct.unpack_from(">II", data, 16)
            return int(w), int(h)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            w, h = struct.unpack_from("<HH", data, 6)
            return int(w), int(h)
        if data[:2] == b"BM":
            w, h = struct.unpack_from("<ii", data, 18)
            return abs(int(w)), abs(int(h))
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_dimensions(data)
        if data.startswith(b"\xff\xd8"):
            return _jpeg_dimensions(data)
    except struct.error:
        return None
    return None


def _webp_dimensions(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if chunk == b"VP8L" and data[20:21] == b"\x2f":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack_from("<HH", data, 26)
        return int(w) & 0x3FFF, int(h) & 0x3FFF
    return None


def _jpeg_dimensions(data: bytes) -> tuple[int, int] | None:
    """Walk the marker segments to the first start-of-frame (SOF0..SOF15 but DHT/JPG/DAC)."""
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        (length,) = struct.unpack_from(">H", data, i + 2)
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack_from(">HH", data, i + 5)
            return int(w), int(h)
        if marker == 0xDA:  # start of scan before any frame header: give up
            return None
        i += 2 + int(length)
    return None
