"""Signal types (hashes of content) and the rules for writing their values down.

Hex is accepted in any case and always given back lower-case. A vPDQ value (one video) is a
compact JSON list of frames, canonically ``[{"frame": int, "hash": <pdq hex>, "quality": int,
"timestamp": float}, ...]``, so it fits on one line of any list format. python-threatexchange's
vpdq signal (``VpdqCompactFeature`` in ``threatexchange/extensions/vpdq/vpdq_util.py``) writes a
video as a JSON list of ``"<pdq hex>,<quality>,<timestamp>"`` strings instead, with no frame
numbers; both are read (frames numbered in order), and :func:`serialise_vpdq_compact` writes
that shape for lists meant for its tools.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from enum import StrEnum

from meldpunt.domain.jsonlimits import loads as _loads_limited


class SignalType(StrEnum):
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    PDQ = "pdq"
    VPDQ = "vpdq"
    #: PhotoDNA values arrive in VICS lists; they are kept and exported again but cannot be matched.
    PHOTODNA = "photodna"


EXACT_SIGNAL_TYPES = frozenset({SignalType.MD5, SignalType.SHA1, SignalType.SHA256})
MATCHABLE_SIGNAL_TYPES = EXACT_SIGNAL_TYPES | {SignalType.PDQ, SignalType.VPDQ}

_HEX_LENGTH = {SignalType.MD5: 32, SignalType.SHA1: 40, SignalType.SHA256: 64, SignalType.PDQ: 64}
_HEX = re.compile(r"^[0-9a-fA-F]+$")

#: Aliases seen in the wild (ThreatExchange/HMA names, VICS field names) -> our names.
SIGNAL_ALIASES = {
    "md5": SignalType.MD5,
    "video_md5": SignalType.MD5,
    "photo_md5": SignalType.MD5,
    "sha1": SignalType.SHA1,
    "sha-1": SignalType.SHA1,
    "sha256": SignalType.SHA256,
    "sha-256": SignalType.SHA256,
    "video_sha256": SignalType.SHA256,
    "pdq": SignalType.PDQ,
    "vpdq": SignalType.VPDQ,
    "video_vpdq": SignalType.VPDQ,
    "photodna": SignalType.PHOTODNA,
}

#: Signal types python-threatexchange and HMA exchange that meldpunt does not match (names as their
#: ``SignalType.get_name()`` gives them). A list line of one of these is skipped and counted, not
#: an error: a collaboration's dataset mixes them with hashes we do match.
FOREIGN_SIGNAL_TYPES = frozenset(
    {
        "url",
        "url_md5",
        "raw_text",
        "text_md5",
        "trend_query",
        "tlsh",
        "tlsh_pdf",
        "pdq_ocr",
        "video_tmk_pdqf",
        "clip",
    }
)


class InvalidSignal(ValueError):
    """A hash value that is not what its signal type says it is."""


@dataclass(frozen=True, slots=True)
class VpdqFrame:
    frame: int
    timestamp: float
    pdq: str
    quality: int


def signal_type_from_name(name: str) -> SignalType:
    try:
        return SIGNAL_ALIASES[name.strip().lower()]
    except KeyError:
        raise InvalidSignal(f"unknown signal type {name!r}") from None


def detect_signal_type(value: str) -> SignalType | None:
    """Guess a type from the value alone: 32 hex is MD5, 40 is SHA-1, 64 is SHA-256.

    A 64-hex value may also be PDQ; that cannot be told from the value, so a list of PDQ hashes
    must say so (``--type pdq``, a column name, a TE line prefix)."""
    v = value.strip()
    if v.startswith("[") and v.endswith("]"):
        return SignalType.VPDQ
    if not _HEX.match(v):
        return None
    return {32: SignalType.MD5, 40: SignalType.SHA1, 64: SignalType.SHA256}.get(len(v))


def normalise_signal(signal_type: SignalType, value: str) -> str:
    """Validate ``value`` for ``signal_type`` and return its canonical form (lower-case hex)."""
    v = value.strip()
    if signal_type in _HEX_LENGTH:
        n = _HEX_LENGTH[signal_type]
        if len(v) != n or not _HEX.match(v):
            raise InvalidSignal(f"{signal_type.value} must be {n} hex digits, got {_preview(v)}")
        return v.lower()
    if signal_type is SignalType.VPDQ:
        return serialise_vpdq(parse_vpdq(v))
    if signal_type is SignalType.PHOTODNA:
        if not v:
            raise InvalidSignal("empty PhotoDNA value")
        return v
    raise InvalidSignal(f"unknown signal type {signal_type!r}")


def parse_vpdq(value: str) -> list[VpdqFrame]:
    try:
        raw = _loads_limited(value, 4)
    except json.JSONDecodeError as e:
        raise InvalidSignal(f"vpdq value is not JSON: {e.msg}") from None
    except ValueError as e:  # nested too deep
        raise InvalidSignal(f"vpdq value is not a list of frames: {e}") from None
    if not isinstance(raw, list) or not raw:
        raise InvalidSignal("vpdq value must be a non-empty JSON list of frames")
    frames = []
    for i, f in enumerate(raw):
        if isinstance(f, str):  # python-threatexchange's "<pdq hex>,<quality>,<timestamp>"
            f = _compact_frame(f, i)
        if not isinstance(f, dict) or "hash" not in f:
            raise InvalidSignal(f"vpdq frame {i} has no 'hash'")
        pdq = normalise_signal(SignalType.PDQ, str(f["hash"]))
        try:
            quality = int(f.get("quality", 100))
            timestamp = float(f.get("timestamp", float(i)))
            frame = int(f.get("frame", i))
        except (TypeError, ValueError):
            raise InvalidSignal(f"vpdq frame {i} has a malformed quality/timestamp") from None
        if not math.isfinite(timestamp) or not 0 <= quality <= 100:
            raise InvalidSignal(f"vpdq frame {i}: timestamp must be finite and quality 0..100")
        frames.append(VpdqFrame(frame=frame, timestamp=timestamp, pdq=pdq, quality=quality))
    return frames


def serialise_vpdq(frames: list[VpdqFrame]) -> str:
    return json.dumps(
        [
            {"frame": f.frame, "hash": f.pdq, "quality": f.quality, "timestamp": round(f.timestamp, 3)}
            for f in frames
        ],
        separators=(",", ":"),
    )


def serialise_vpdq_compact(frames: list[VpdqFrame]) -> str:
    """The value as python-threatexchange's vpdq signal writes and reads it: a JSON list of
    ``"<pdq hex>,<quality>,<timestamp>"`` strings (frame numbers are implied by the order)."""
    return json.dumps([f"{f.pdq},{f.quality},{round(f.timestamp, 3)!r}" for f in frames])


def _compact_frame(text: str, i: int) -> dict[str, object]:
    parts = text.split(",")
    if len(parts) != 3:
        raise InvalidSignal(f"vpdq frame {i} is not '<pdq hex>,<quality>,<timestamp>': {_preview(text)}")
    return {"hash": parts[0], "quality": parts[1], "timestamp": parts[2], "frame": i}


def _preview(v: str) -> str:
    return repr(v if len(v) <= 80 else v[:77] + "...")
