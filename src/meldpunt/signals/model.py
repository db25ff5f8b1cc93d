"""What hashing one file gives back: the :class:`Signals` record and its JSON shape.

One flat record per file, whatever happened to it, so a batch of a million files is a stream of
records of one type: exact hashes are always there; perceptual hashes when the content could be
decoded; ``error`` (a sentence a person can act on) when it could not.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from meldpunt.domain.signals import VpdqFrame


class MediaKind(StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    #: Neither image nor video (text, archives, documents): exact hashes only, and no error.
    OTHER = "other"


#: The 8 dihedral variants of :attr:`Signals.pdq_dihedral`, in ``pdqhash.compute_dihedral``'s order
#: (Meta's ``pdqDihedralHash256esFromFloatLuma``). Variant *i* is (within a few bits) the PDQ of the
#: image transformed as named, given as the matching ``PIL.Image.Transpose`` (checked by a test):
#: the image as is; turned 90 degrees counter-clockwise (ROTATE_90); 180 degrees (ROTATE_180);
#: 90 degrees clockwise (ROTATE_270); upside down, "flip x" (FLIP_TOP_BOTTOM); mirrored left-right,
#: "flip y" (FLIP_LEFT_RIGHT); mirrored about the main diagonal, "flip +1" (TRANSPOSE); about the
#: other diagonal, "flip -1" (TRANSVERSE).
DIHEDRAL_ORDER = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flipx",
    "flipy",
    "flipplus1",
    "flipminus1",
)


@dataclass
class Signals:
    """The signals of one file. Hex values are lower-case.

    When ``error`` is set, no perceptual hash is given (``pdq``/``vpdq`` are ``None``): what could
    not be decoded completely is not hashed partly. The exact hashes are always given; they are
    empty strings only for a file that could not be read at all (then ``error`` says why).
    """

    path: str
    size: int
    md5: str
    sha1: str
    sha256: str
    kind: MediaKind
    pdq: str | None = None
    pdq_quality: int | None = None
    #: The EXIF orientation tag when it turns or mirrors the picture (2-8), else ``None``. ``pdq`` is
    #: then the hash of the picture turned upright (as shown), and ``pdq_stored`` the hash of the
    #: pixels as stored in the file, which is what Meta's hashers, HMA and python-threatexchange
    #: compute; matching tries both. For orientation 1 or no tag both would be the same: one hash.
    orientation: int | None = None
    pdq_stored: str | None = None
    pdq_stored_quality: int | None = None
    #: With ``dihedral=True``: 8 PDQ hashes in :data:`DIHEDRAL_ORDER`; the first equals ``pdq``.
    pdq_dihedral: list[str] | None = None
    vpdq: list[VpdqFrame] | None = None
    error: str | None = None
    width: int | None = None
    height: int | None = None
    #: "JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "HEIF", "AVIF", ... or "MP4", "MOV", "WebM",
    #: "Matroska", "AVI", ... (what the content is, whatever the file is called).
    format: str | None = None
    #: The data ended early (a JPEG cut short): the perceptual hash is of the part that decoded.
    truncated: bool = False

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: path, size, md5, sha1, sha256, kind always; other fields when set.

        vPDQ frames come as ``{"frame", "timestamp", "pdq", "quality"}`` with the timestamp in seconds
        rounded to milliseconds, as Meta's vpdq writes it.
        """
        out: dict[str, Any] = {
            "path": self.path,
            "size": self.size,
            "md5": self.md5,
            "sha1": self.sha1,
            "sha256": self.sha256,
            "kind": self.kind.value,
        }
        keys = (
            "format",
            "width",
            "height",
            "pdq",
            "pdq_quality",
            "orientation",
            "pdq_stored",
            "pdq_stored_quality",
        )
        for key in keys:
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.pdq_dihedral is not None:
            out["pdq_dihedral"] = list(self.pdq_dihedral)
        if self.vpdq is not None:
            out["vpdq"] = [
                {"frame": f.frame, "timestamp": round(f.timestamp, 3), "pdq": f.pdq, "quality": f.quality}
                for f in self.vpdq
            ]
        if self.truncated:
            out["truncated"] = True
        if self.error is not None:
            out["error"] = self.error
        return out


class MediaError(Exception):
    """Content that claims to be media but cannot be hashed; the message goes to ``Signals.error``."""
