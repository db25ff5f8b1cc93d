"""Plain hash lists: one hash per line, nothing else.

The commonest list there is (``md5sum`` columns cut down, exports of other tools). Blank lines and
lines starting with ``#`` are skipped; surrounding whitespace is ignored; lines end in LF or CRLF.

Without ``signal_type`` the type comes from the value: 32 hex digits is MD5, 40 is SHA-1, 64 is
SHA-256, a JSON list is vPDQ. **64 hex digits are always read as SHA-256**: a PDQ list must be read
with ``signal_type=SignalType.PDQ`` (``--type pdq``), because the two cannot be told apart. With
``signal_type`` given every line must be of that type. There is no per-line type prefix here: a
list that names the type on each line is a ThreatExchange list (``te``).

Writing puts one value per line whatever the types; it loses the type, so 64-hex PDQ values come
back as SHA-256 unless read with ``--type pdq``. Plain lists carry no labels: they come from
``--label``.

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
    hex_value,
    lines_without_bom,
    parse_value,
)
from meldpunt.domain.labels import Labels
from meldpunt.domain.signals import SignalType

_CHUNK = 8192


class PlainFormat:
    name = "plain"
    carries_labels = False

    def read(
        self, fp: BinaryIO, *, signal_type: SignalType | None = None, labels: Labels = NO_LABELS
    ) -> Iterator[HashRecord | LineError]:
        by_length = TYPE_BY_HEX_LENGTH if signal_type is None else {}
        if signal_type in HEX_LENGTH:
            by_length = {HEX_LENGTH[signal_type]: signal_type}
        hexdigits = HEX_DIGITS
        for lineno, line in enumerate(lines_without_bom(fp), 1):
            value = line.strip()
            if not value or value[0] == 35:  # '#'
                continue
            st = by_length.get(len(value))
            if st is not None and not value.translate(None, hexdigits):
                yield HashRecord(st, value.lower().decode("ascii"), labels, lineno)
            else:
                yield parse_value(value, signal_type, labels, lineno, line)

    def write(self, records: Iterable[HashRecord], fp: BinaryIO) -> int:
        n = 0
        chunk: list[str] = []
        for r in records:
            chunk.append(hex_value(r.signal_type, r.value))
            n += 1
            if len(chunk) >= _CHUNK:
                fp.write(("\n".join(chunk) + "\n").encode("utf-8"))
                chunk.clear()
        if chunk:
            fp.write(("\n".join(chunk) + "\n").encode("utf-8"))
        return n
