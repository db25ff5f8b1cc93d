"""Plain hash lists: one hash per line, nothing else.

The commonest list there is (``md5sum`` columns cut down, exports of other tools). Blank lines and
lines starting with ``#`` are skipped; surrounding whitespace is ignored; lines end in LF or CRLF.

Without ``signal_type`` the type comes from the value: 32 hex digits is MD5, 40 is SHA-1, 64 is
SHA-256, a JSON list is vPDQ. **64 hex digits are always read as SHA-256**: a PDQ list must be read
with ``signal_type=SignalType.PDQ`` (``--type pdq``), because the two cannot be told apart. With
``signal_type`` given every line must be of that type. There is no per-line type prefix here: a
list that names the type on each line is a ThreatExchange list (``te``).

What other tools put around the hashes is understood, so their lists import as they are:

* a header line that only names the type, as forensic tools write one (X-Ways' hash sets start
  with a lone ``MD5``; ``SHA1``, ``PDQ``, ``hash`` likewise), is skipped and, without
  ``signal_type``, sets the type for the lines below (so a ``PDQ`` header reads 64 hex as PDQ);
* ``threatexchange dataset -P -s <type>`` lines, ``<hash> '<collaboration>' <CATEGORY> <tags>``:
  the opinion becomes labels as in the ``te`` format.

Writing puts one value per line whatever the types; it loses the type, so 64-hex PDQ values come
back as SHA-256 unless read with ``--type pdq``; vPDQ is written in python-threatexchange's compact
serialisation. Plain lists carry no labels: they come from ``--label``.

The hot loop avoids regexes and decoding: a length lookup plus ``bytes.translate`` (deleting the hex
digits leaves nothing exactly when the value is hex) decides almost every line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO

from meldpunt.banks.formats.base import (
    HEX_DIGITS,
    HEX_LENGTH,
    NO_LABELS,
    TYPE_BY_HEX_LENGTH,
    HashRecord,
    LineError,
    foreign_value,
    lines_without_bom,
    parse_value,
)
from meldpunt.banks.formats.te import opinion_labels, split_signal
from meldpunt.domain.labels import Labels
from meldpunt.domain.signals import SIGNAL_ALIASES, SignalType

_CHUNK = 8192
#: a first line that is one of these (any case) is a header naming the column, not a hash
HEADER_NAMES = {name.encode(): st for name, st in SIGNAL_ALIASES.items()}
_NEUTRAL_HEADERS = {b"hash", b"hashes", b"value"}


def _by_length(signal_type: SignalType | None) -> dict[int, SignalType]:
    if signal_type is None:
        return TYPE_BY_HEX_LENGTH
    return {HEX_LENGTH[signal_type]: signal_type} if signal_type in HEX_LENGTH else {}


class PlainFormat:
    name = "plain"
    carries_labels = False

    def read(
        self, fp: BinaryIO, *, signal_type: SignalType | None = None, labels: Labels = NO_LABELS
    ) -> Iterator[HashRecord | LineError]:
        by_length = _by_length(signal_type)
        hexdigits = HEX_DIGITS
        opinions: dict[bytes, Labels] = {}
        first = True
        for lineno, line in enumerate(lines_without_bom(fp), 1):
            value = line.strip()
            if not value or value[0] == 35:  # '#'
                continue
            st = by_length.get(len(value))
            if st is not None and not value.translate(None, hexdigits):
                first = False
                yield HashRecord(st, value.lower().decode("ascii"), labels, lineno)
                continue
            if first:
                first = False
                header = value.lower()
                if header in HEADER_NAMES or header in _NEUTRAL_HEADERS:
                    if signal_type is None and header in HEADER_NAMES:
                        signal_type = HEADER_NAMES[header]
                        by_length = _by_length(signal_type)
                    continue
            yield self._slow(value, line, lineno, signal_type, labels, opinions)

    @staticmethod
    def _slow(
        value: bytes,
        line: bytes,
        lineno: int,
        signal_type: SignalType | None,
        labels: Labels,
        opinions: dict[bytes, Labels],
    ) -> HashRecord | LineError:
        signal, tail = split_signal(value)
        if tail.strip():  # a threatexchange dataset opinion after the hash?
            got = opinion_labels(tail, labels, opinions)
            if got is not None:
                return parse_value(signal, signal_type, got, lineno, line)
        return parse_value(value, signal_type, labels, lineno, line)

    def write(self, records: Iterable[HashRecord], fp: BinaryIO) -> int:
        n = 0
        chunk: list[str] = []
        for r in records:
            chunk.append(foreign_value(r.signal_type, r.value))
            n += 1
            if len(chunk) >= _CHUNK:
                fp.write(("\n".join(chunk) + "\n").encode("utf-8"))
                chunk.clear()
        if chunk:
            fp.write(("\n".join(chunk) + "\n").encode("utf-8"))
        return n
