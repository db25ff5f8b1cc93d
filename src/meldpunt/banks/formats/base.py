"""The shared vocabulary of the hash-list formats: records, per-line errors, the format protocol.

Every format reads a binary stream into a stream of ``HashRecord`` and ``LineError`` items and
never stops at a bad line: the caller (the importer) decides whether to skip and report, or to
reject the whole file. Only a file that cannot be read as a whole (a VICS file that is not JSON,
a CSV header naming unknown columns) raises, with ``ListFormatError``.

Labels given by the caller (``--label``) are defaults: a record's own labels, where the format
carries any, win field by field (``Labels.merged``), tags are united and ``vics`` dicts merged.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, runtime_checkable

from meldpunt.domain.labels import Labels
from meldpunt.domain.signals import (
    InvalidSignal,
    SignalType,
    detect_signal_type,
    normalise_signal,
    parse_vpdq,
    serialise_vpdq_compact,
)

#: The labels of a record that has none of its own; shared, never copied.
NO_LABELS = Labels()

#: Hex digits in both cases; ``b.translate(None, HEX_DIGITS)`` is empty exactly when ``b`` is hex.
HEX_DIGITS = b"0123456789abcdefABCDEF"

#: Hex length of the fixed-length types (PDQ shares 64 with SHA-256).
HEX_LENGTH = {SignalType.MD5: 32, SignalType.SHA1: 40, SignalType.SHA256: 64, SignalType.PDQ: 64}

#: A hex value's type guessed from its length alone (64 hex is SHA-256, see ``plain``).
TYPE_BY_HEX_LENGTH = {32: SignalType.MD5, 40: SignalType.SHA1, 64: SignalType.SHA256}
_BOM = b"\xef\xbb\xbf"
_PREVIEW = 120


class ListFormatError(ValueError):
    """A file that cannot be read as a list of this format at all (not one bad line)."""


@dataclass(frozen=True, slots=True)
class HashRecord:
    """One hash from a list. ``value`` is canonical (``normalise_signal``); ``line`` is the 1-based
    line of the source it came from (for VICS: the 1-based ordinal of its Media entry), 0 if none.

    ``media`` says which file of the list the hash describes: records with the same non-zero
    ``media`` are hashes of one file (one VICS Media record, one CSV row) and a format that can
    hold several hashes per file writes them together again (VICS); 0 means "on its own". Readers
    set it to the Media ordinal or row line; exports from the database to a key unique per
    (import, Media)."""

    signal_type: SignalType
    value: str
    labels: Labels
    line: int = 0
    #: a grouping hint, not part of what the record says: records compare equal without it
    media: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class SkippedSignal:
    """A line holding a signal type other tools exchange that meldpunt does not match (a URL, text,
    TMK+PDQF ...; ``FOREIGN_SIGNAL_TYPES``): not an error, but never dropped silently either — the
    importer counts these by type and says so."""

    line: int
    type_name: str


@dataclass(frozen=True, slots=True)
class LineError:
    """A line (or VICS Media entry) that could not be read; ``text`` is the line, cut to ~120 chars."""

    line: int
    message: str
    text: str = ""


@runtime_checkable
class ListFormat(Protocol):
    """A hash-list format. ``carries_labels`` says whether the file itself can hold labels."""

    name: str
    carries_labels: bool

    def read(
        self, fp: BinaryIO, *, signal_type: SignalType | None = None, labels: Labels = NO_LABELS
    ) -> Iterator[HashRecord | LineError | SkippedSignal]:
        """Stream the records of ``fp``; ``labels`` are defaults under each record's own."""
        ...

    def write(self, records: Iterable[HashRecord], fp: BinaryIO) -> int:
        """Write ``records`` to ``fp`` (hex lower-case) and return how many were written."""
        ...


# -- helpers shared by the line formats -------------------------------------------------------------


def lines_without_bom(fp: BinaryIO) -> Iterator[bytes]:
    """The lines of ``fp`` (endings kept) with a UTF-8 byte-order mark dropped from the first."""
    it = iter(fp)
    first = next(it, None)
    if first is None:
        return iter(())
    if first.startswith(_BOM):
        first = first[len(_BOM) :]
    return itertools.chain((first,), it)


def preview(text: bytes | str) -> str:
    """``text`` as a short, printable string for a ``LineError`` (invalid UTF-8 shown as U+FFFD)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = text.rstrip("\r\n")
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 3] + "..."


def parse_value(
    raw: bytes,
    signal_type: SignalType | None,
    labels: Labels,
    lineno: int,
    line: bytes,
    media: int = 0,
) -> HashRecord | LineError:
    """The slow, general path from one value to a record: decode, detect the type, normalise.

    ``raw`` is the value (stripped), ``line`` the whole line for the error text, ``media`` the
    record's ``HashRecord.media``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return LineError(lineno, "line is not valid UTF-8", preview(line))
    st = signal_type
    if st is None:  # a value of a hex length that is not hex gets the message of that type
        st = detect_signal_type(text) or TYPE_BY_HEX_LENGTH.get(len(text))
    if st is None:
        return LineError(
            lineno,
            f"cannot tell the signal type of a {len(text)}-character value "
            "(not 32, 40 or 64 hex digits, nor a vPDQ list)",
            preview(line),
        )
    try:
        return HashRecord(st, normalise_signal(st, text), labels, lineno, media)
    except InvalidSignal as e:
        return LineError(lineno, str(e), preview(line))


def hex_value(signal_type: SignalType, value: str) -> str:
    """A value as written out: hex types lower-cased (records should already be canonical)."""
    return value.lower() if signal_type in HEX_LENGTH else value


def foreign_value(signal_type: SignalType, value: str) -> str:
    """A value as the lists of other tools write it: vPDQ in python-threatexchange's compact
    serialisation (``serialise_vpdq_compact``), everything else as :func:`hex_value`."""
    if signal_type is SignalType.VPDQ:
        try:
            return serialise_vpdq_compact(parse_vpdq(value))
        except InvalidSignal:
            return value
    return hex_value(signal_type, value)
