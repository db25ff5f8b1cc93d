"""ThreatExchange / HMA signal files: ``<signal type> <hash>`` on each line.

The format python-threatexchange's local-file exchange reads and appends to (the type name, one
space, the signal; see ``threatexchange/exchanges/impl/file_api.py`` in facebook/ThreatExchange),
e.g. ``pdq 6d2f...``, ``video_md5 ...``, ``vpdq [{"hash": ...}]``. Any whitespace separates the two;
the type is any name ``signal_type_from_name`` knows (``SIGNAL_ALIASES``), in any case. An unknown
type, a missing hash, or text after a hex hash is a ``LineError``. Blank lines and ``#`` comments
are skipped. ``signal_type`` is ignored: every line names its own.

Writing uses our names (md5, sha1, sha256, pdq, vpdq, photodna). TE files carry no labels: they
come from ``--label``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO

from meldpunt.banks.formats.base import (
    HEX_DIGITS,
    HEX_LENGTH,
    NO_LABELS,
    HashRecord,
    LineError,
    hex_value,
    lines_without_bom,
    parse_value,
    preview,
)
from meldpunt.domain.labels import Labels
from meldpunt.domain.signals import SIGNAL_ALIASES, InvalidSignal, SignalType, signal_type_from_name

_CHUNK = 8192


def _lookup_type(name: bytes, cache: dict[bytes, SignalType]) -> SignalType | None:
    try:
        st = signal_type_from_name(name.decode("utf-8"))
    except (UnicodeDecodeError, InvalidSignal):
        return None
    if len(cache) < 256:  # remember spellings like "PDQ"; bounded against hostile files
        cache[name] = st
    return st


class TeFormat:
    name = "te"
    carries_labels = False

    def read(
        self, fp: BinaryIO, *, signal_type: SignalType | None = None, labels: Labels = NO_LABELS
    ) -> Iterator[HashRecord | LineError]:
        types = {k.encode(): v for k, v in SIGNAL_ALIASES.items()}
        hex_length = HEX_LENGTH
        hexdigits = HEX_DIGITS
        for lineno, line in enumerate(lines_without_bom(fp), 1):
            parts = line.split(None, 1)
            if not parts or parts[0][0] == 35:  # blank, or '#'
                continue
            if len(parts) != 2:
                yield LineError(lineno, "expected '<signal type> <hash>'", preview(line))
                continue
            name, value = parts
            st = types.get(name) or _lookup_type(name, types)
            if st is None:
                yield LineError(lineno, f"unknown signal type {preview(name)!r}", preview(line))
                continue
            value = value.rstrip()
            if len(value) == hex_length.get(st) and not value.translate(None, hexdigits):
                yield HashRecord(st, value.lower().decode("ascii"), labels, lineno)
            else:
                yield parse_value(value, st, labels, lineno, line)

    def write(self, records: Iterable[HashRecord], fp: BinaryIO) -> int:
        n = 0
        chunk: list[str] = []
        for r in records:
            chunk.append(f"{r.signal_type.value} {hex_value(r.signal_type, r.value)}\n")
            n += 1
            if len(chunk) >= _CHUNK:
                fp.write("".join(chunk).encode("utf-8"))
                chunk.clear()
        if chunk:
            fp.write("".join(chunk).encode("utf-8"))
        return n
