"""ThreatExchange / HMA signal files: ``<signal type> <hash>`` on each line.

The format python-threatexchange's local-file exchange reads and appends to (the type name, one
space, the signal; see ``threatexchange/exchanges/impl/file_api.py`` in facebook/ThreatExchange),
e.g. ``pdq 6d2f...``, ``video_md5 ...``, ``vpdq ["<pdq hex>,100,0.0", ...]``. Any whitespace
separates the two; the type is any name ``signal_type_from_name`` knows (``SIGNAL_ALIASES``, which
has HMA's ``video_md5``, ``video_sha256``, ``video_vpdq``), in any case. Blank lines and ``#``
comments are skipped. ``signal_type`` is ignored: every line names its own.

``threatexchange dataset -P`` prints the same lines with the opinion after the signal:
``<type> <signal> '<collaboration>' <CATEGORY> <tag>,<tag>`` (``-S`` leaves the opinion off; the
collaboration is left out when one was chosen with ``-c``). The collaboration becomes the ``source``
label, the tags ``tags``, and the category a tag ``te:<category>`` (``te:positive_class``,
``te:negative_class`` ...): what it means is the bank's policy to decide, so a dataset with
NEGATIVE_CLASS lines should be split or imported into an ``ignore`` bank.

A type python-threatexchange exchanges but meldpunt does not match (``url``, ``raw_text``,
``trend_query``, ``tlsh``, ...: ``FOREIGN_SIGNAL_TYPES``) gives a ``SkippedSignal``, which the
importer counts and reports. An unknown type, a missing hash, or other text after the hash is a
``LineError``.

Writing uses our names (md5, sha1, sha256, pdq, vpdq, photodna) and vPDQ in python-threatexchange's
compact serialisation (``foreign_value``), so its tools read what we write. TE files carry no
labels: they come from ``--label``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from meldpunt.banks.formats.base import (
    HEX_DIGITS,
    HEX_LENGTH,
    NO_LABELS,
    HashRecord,
    LineError,
    SkippedSignal,
    foreign_value,
    lines_without_bom,
    parse_value,
    preview,
)
from meldpunt.domain.labels import Labels
from meldpunt.domain.signals import (
    FOREIGN_SIGNAL_TYPES,
    SIGNAL_ALIASES,
    InvalidSignal,
    SignalType,
    signal_type_from_name,
)

_CHUNK = 8192
#: what ``threatexchange dataset -P`` prints after a signal: the collaboration (a Python repr),
#: then the aggregate opinion's category and its tags joined with commas
_OPINION = re.compile(
    rb"""\s*(?P<collab>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")?\s*"""
    rb"(?P<category>NEGATIVE_CLASS|INVESTIGATION_SEED|POSITIVE_CLASS|DISPUTED)"
    rb"(?:[ \t]+(?P<tags>\S.*?))?\s*"
)
_OPINION_CACHE = 1024


def opinion_labels(tail: bytes, labels: Labels, cache: dict[bytes, Labels]) -> Labels | None:
    """The labels a ``threatexchange dataset`` opinion (``'collab' CATEGORY tags``) adds to
    ``labels``; None when ``tail`` is not one."""
    hit = cache.get(tail)
    if hit is not None:
        return hit
    m = _OPINION.fullmatch(tail)
    if m is None:
        return None
    try:
        collab = ast.literal_eval(m["collab"].decode("utf-8")) if m["collab"] else None
        tags = m["tags"].decode("utf-8").split(",") if m["tags"] else []
    except (ValueError, SyntaxError, UnicodeDecodeError):
        return None
    tags.append("te:" + m["category"].decode("ascii").lower())
    got = labels.merged(Labels(source=str(collab) if collab else None, tags=tuple(tags)))
    if len(cache) >= _OPINION_CACHE:
        cache.clear()
    cache[tail] = got
    return got


def split_signal(rest: bytes) -> tuple[bytes, bytes]:
    """(signal, what follows it) of the text after a type name: a vPDQ JSON list runs to its
    ``]`` (it holds spaces), any other signal to the first whitespace."""
    if rest.startswith(b"["):
        end = rest.find(b"]")
        if end >= 0:
            return rest[: end + 1], rest[end + 1 :]
        return rest.rstrip(), b""
    parts = rest.split(None, 1)
    return (parts[0], parts[1]) if len(parts) == 2 else (rest.rstrip(), b"")


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
    ) -> Iterator[HashRecord | LineError | SkippedSignal]:
        types = {k.encode(): v for k, v in SIGNAL_ALIASES.items()}
        foreign = {k.encode() for k in FOREIGN_SIGNAL_TYPES}
        opinions: dict[bytes, Labels] = {}
        hex_length = HEX_LENGTH
        hexdigits = HEX_DIGITS
        for lineno, line in enumerate(lines_without_bom(fp), 1):
            parts = line.split(None, 1)
            if not parts or parts[0][0] == 35:  # blank, or '#'
                continue
            name = parts[0]
            if name.lower() in foreign:
                yield SkippedSignal(lineno, name.lower().decode("ascii"))
                continue
            if len(parts) != 2:
                yield LineError(lineno, "expected '<signal type> <hash>'", preview(line))
                continue
            st = types.get(name) or _lookup_type(name, types)
            if st is None:
                yield LineError(lineno, f"unknown signal type {preview(name)!r}", preview(line))
                continue
            value, tail = split_signal(parts[1])
            row_labels = labels
            if tail.strip():
                got = opinion_labels(tail, labels, opinions)
                if got is None:
                    yield LineError(lineno, "unexpected text after the hash", preview(line))
                    continue
                row_labels = got
            if len(value) == hex_length.get(st) and not value.translate(None, hexdigits):
                yield HashRecord(st, value.lower().decode("ascii"), row_labels, lineno)
            else:
                yield parse_value(value, st, row_labels, lineno, line)

    def write(self, records: Iterable[HashRecord], fp: BinaryIO) -> int:
        n = 0
        chunk: list[str] = []
        for r in records:
            chunk.append(f"{r.signal_type.value} {foreign_value(r.signal_type, r.value)}\n")
            n += 1
            if len(chunk) >= _CHUNK:
                fp.write("".join(chunk).encode("utf-8"))
                chunk.clear()
        if chunk:
            fp.write("".join(chunk).encode("utf-8"))
        return n
