"""CSV hash lists with labels: a header row naming the columns, then one row per media item.

Reading. The header (the first row that is not blank or a ``#`` comment) names the columns, in any
case and order:

* hashes, either as a pair ``signal_type`` (or ``type``) + ``value`` (or ``hash``), where an empty
  type is detected from the value as in plain lists (64 hex = SHA-256 unless ``signal_type`` is
  given), or as one column per type: ``md5``, ``sha1``, ``sha256``, ``pdq``, ``vpdq``, ``photodna``
  (and their ``SIGNAL_ALIASES`` spellings, e.g. ``sha-1``, ``video_md5``). A row may fill several
  hash columns: each becomes a record, all sharing the row's labels. A row with no hash is an error.
* labels: ``category``, ``baseline``, ``series``, ``victim_identified``, ``source``, ``tags``,
  ``vics_category``, ``vics_profile`` and ``vics`` (a JSON object). Booleans are
  yes/no/true/false/1/0 (``parse_bool``). Tags are separated by ``|`` or ``,`` inside the cell
  (quote the cell if it holds commas), so a tag cannot itself contain either.
* columns starting with ``x_`` are ignored (room for notes). Any other column name makes the whole
  file unreadable (``ListFormatError`` listing them): a misspelt label column must not silently
  drop labels from thousands of rows.

Cells are stripped of surrounding whitespace; empty cells mean "not given". Blank rows and rows
whose first cell starts with ``#`` are skipped anywhere. The cell size limit of Python's csv module
is raised (process-wide) to 64 MiB, for vPDQ values of long videos. Rows with too few or too many
cells, bad hashes, bad booleans, an unknown type or invalid UTF-8 are ``LineError``s with the row's
first line number. The row's labels win over the ``labels`` given by the caller.

Lists other tools write read as they are:

* the separator is taken from the header row: ``,``, ``;`` (INTERPOL ICSE-style exports and
  spreadsheets in European locales) or a tab, whichever splits it into known column names;
* ``threatexchange dataset -P --csv`` (python-threatexchange): columns ``signal_type, signal_str,
  collab, category, tags``. ``signal_str`` is the value, ``collab`` the ``source`` label, tags are
  separated by spaces there, and its ``category`` (the opinion: POSITIVE_CLASS, NEGATIVE_CLASS,
  ...) becomes a tag ``te:<category>`` as in the ``te`` format, not our ``category`` label. Rows of
  a signal type we do not match (``url``, ``raw_text``, ...) are ``SkippedSignal``s, counted.

Writing: ``signal_type,value,category,baseline,series,victim_identified,source,tags,vics_category,
vics_profile,vics``, one row per record, CRLF line ends (RFC 4180), booleans as ``true``/``false``,
tags joined with ``|``, ``vics`` as compact JSON; so every label round-trips (bar surrounding
whitespace, which reading strips).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from meldpunt.banks.formats.base import (
    HEX_DIGITS,
    HEX_LENGTH,
    NO_LABELS,
    TYPE_BY_HEX_LENGTH,
    HashRecord,
    LineError,
    ListFormatError,
    SkippedSignal,
    hex_value,
    parse_value,
)
from meldpunt.domain.jsonlimits import loads as json_loads
from meldpunt.domain.labels import LabelError, Labels
from meldpunt.domain.signals import FOREIGN_SIGNAL_TYPES, SIGNAL_ALIASES, SignalType

if TYPE_CHECKING:
    from _csv import Reader

LABEL_COLUMNS = (
    "category",
    "baseline",
    "series",
    "victim_identified",
    "source",
    "tags",
    "vics_category",
    "vics_profile",
    "vics",
)
HEADER = ("signal_type", "value", *LABEL_COLUMNS)
TYPE_COLUMNS = ("signal_type", "type")
VALUE_COLUMNS = ("value", "hash", "signal_str")
#: python-threatexchange's dataset CSV: the collaboration a signal came from
TE_COLUMNS = ("collab",)
#: Every column name that means something (lower-case), for ``detect_format``.
KNOWN_COLUMNS = frozenset({*TYPE_COLUMNS, *VALUE_COLUMNS, *LABEL_COLUMNS, *TE_COLUMNS, *SIGNAL_ALIASES})
#: the separators a header may use, the first winning a tie
DELIMITERS = (",", ";", "\t")

_TAG_SPLIT = re.compile(r"[|,]")
_LABEL_CACHE_SIZE = 4096
#: The csv module refuses cells over 128 KiB by default; a vPDQ value of a long video is more.
_FIELD_LIMIT = 64 * 1024 * 1024


class _Columns:
    """Where things are in a row, worked out once from the header."""

    def __init__(self, header: list[str]) -> None:
        names = [h.strip().lower() for h in header]
        unknown = [
            h for h, n in zip(header, names, strict=True) if n not in KNOWN_COLUMNS and not n.startswith("x_")
        ]
        if unknown:
            raise ListFormatError(
                f"unknown CSV column(s): {', '.join(map(repr, unknown))}; known are "
                f"{', '.join(sorted(KNOWN_COLUMNS))} (prefix a column with x_ to ignore it)"
            )
        dupes = sorted({n for n in names if names.count(n) > 1 and not n.startswith("x_")})
        if dupes:
            raise ListFormatError(f"CSV column(s) named twice: {', '.join(dupes)}")
        idx = {n: i for i, n in enumerate(names)}
        self.width = len(names)
        self.type_col = next((idx[n] for n in TYPE_COLUMNS if n in idx), None)
        self.value_col = next((idx[n] for n in VALUE_COLUMNS if n in idx), None)
        if self.type_col is not None and self.value_col is None:
            raise ListFormatError("the CSV has a signal_type column but no value (or hash) column")
        self.hash_cols = [(idx[n], SIGNAL_ALIASES[n]) for n in names if n in SIGNAL_ALIASES]
        if self.value_col is None and not self.hash_cols:
            raise ListFormatError(
                "the CSV names no hash column: give value (with signal_type) or md5, sha1, sha256, "
                "pdq, vpdq, photodna"
            )
        self.label_cols = [(idx[n], n) for n in (*LABEL_COLUMNS, *TE_COLUMNS) if n in idx]
        #: a threatexchange dataset CSV: its category is an opinion, its tags space-separated
        self.te = "signal_str" in idx or "collab" in idx


def _row_labels(cells: list[str], cols: _Columns) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for i, key in cols.label_cols:
        cell = cells[i].strip()
        if not cell:
            continue
        if key == "tags":
            data.setdefault(key, []).extend(cell.split() if cols.te else _TAG_SPLIT.split(cell))
        elif key == "collab":
            data["source"] = cell
        elif key == "category" and cols.te:
            data.setdefault("tags", []).append("te:" + cell.lower())
        elif key == "vics":
            try:
                data[key] = json_loads(cell)
            except json.JSONDecodeError as e:
                raise LabelError(f"the vics column is not JSON: {e.msg}") from None
            except ValueError as e:  # nested too deep
                raise LabelError(f"the vics column: {e}") from None
        else:
            data[key] = cell
    return data


def _delimiter(header: str) -> str:
    """The separator that splits ``header`` into the most known column names (``,`` on a tie)."""

    def known(d: str) -> int:
        return sum(c.strip().strip('"').lower() in KNOWN_COLUMNS for c in header.split(d))

    return max(DELIMITERS, key=known)


def _has_bad_utf8(cells: list[str]) -> bool:
    for c in cells:
        if not c.isascii():
            try:
                c.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates: undecodable bytes (surrogateescape)
                return True
    return False


def _row_text(cells: list[str]) -> str:
    text = ",".join(cells).encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
    return text if len(text) <= 120 else text[:117] + "..."


class CsvFormat:
    name = "csv"
    carries_labels = True

    def read(
        self, fp: BinaryIO, *, signal_type: SignalType | None = None, labels: Labels = NO_LABELS
    ) -> Iterator[HashRecord | LineError | SkippedSignal]:
        if csv.field_size_limit() < _FIELD_LIMIT:
            csv.field_size_limit(_FIELD_LIMIT)
        text = io.TextIOWrapper(fp, encoding="utf-8-sig", errors="surrogateescape", newline="")
        try:
            lines = iter(text)
            head: list[str] = []
            for line in lines:  # up to the header row, to take its separator
                head.append(line)
                if line.strip() and not line.startswith("#"):
                    break
            delimiter = _delimiter(head[-1]) if head else ","
            reader = csv.reader(itertools.chain(head, lines), delimiter=delimiter)
            yield from self._read(reader, signal_type, labels)
        except csv.Error as e:
            raise ListFormatError(f"not readable as CSV: {e}") from None
        finally:
            text.detach()  # leave the caller's stream open

    def _read(
        self, reader: Reader, signal_type: SignalType | None, labels: Labels
    ) -> Iterator[HashRecord | LineError | SkippedSignal]:
        cols: _Columns | None = None
        label_cache: dict[tuple[str, ...], Labels | LabelError] = {}
        line_num = 0  # lines consumed before the current row
        for raw_cells in reader:
            lineno = line_num + 1
            line_num = reader.line_num
            cells = [_unguard(c) for c in raw_cells]
            if not cells or (len(cells) == 1 and not cells[0].strip()) or cells[0].startswith("#"):
                continue
            if cols is None:
                if _has_bad_utf8(cells):
                    raise ListFormatError(f"the CSV header (line {lineno}) is not valid UTF-8")
                cols = _Columns(cells)
                continue
            if len(cells) != cols.width:
                yield LineError(
                    lineno,
                    f"expected {cols.width} columns as in the header, got {len(cells)}",
                    _row_text(cells),
                )
                continue
            if _has_bad_utf8(cells):
                yield LineError(lineno, "line is not valid UTF-8", _row_text(cells))
                continue
            # labels: rows of a big list mostly repeat a few label combinations
            row_labels = labels
            if cols.label_cols:
                key = tuple(cells[i] for i, _ in cols.label_cols)
                if any(key):
                    got = label_cache.get(key)
                    if got is None:
                        try:
                            got = labels.merged(Labels.from_dict(_row_labels(cells, cols)))
                        except LabelError as e:
                            got = e
                        if len(label_cache) >= _LABEL_CACHE_SIZE:
                            label_cache.clear()
                        label_cache[key] = got
                    if isinstance(got, LabelError):
                        yield LineError(lineno, str(got), _row_text(cells))
                        continue
                    row_labels = got
            yield from self._hashes(cells, cols, signal_type, row_labels, lineno)

    def _hashes(
        self, cells: list[str], cols: _Columns, signal_type: SignalType | None, labels: Labels, lineno: int
    ) -> Iterator[HashRecord | LineError | SkippedSignal]:
        found = False
        if cols.value_col is not None and (value := cells[cols.value_col].strip()):
            found = True
            name = cells[cols.type_col].strip() if cols.type_col is not None else ""
            st = SIGNAL_ALIASES.get(name.lower()) if name else signal_type
            if name.lower() in FOREIGN_SIGNAL_TYPES:
                yield SkippedSignal(lineno, name.lower())
            elif name and st is None:
                yield LineError(lineno, f"unknown signal type {name!r}", _row_text(cells))
            else:
                yield self._record(value, st, labels, lineno, cells)
        elif cols.type_col is not None and cells[cols.type_col].strip():
            found = True
            yield LineError(lineno, "a signal type but no value", _row_text(cells))
        for i, st in cols.hash_cols:
            if value := cells[i].strip():
                found = True
                yield self._record(value, st, labels, lineno, cells)
        if not found:
            yield LineError(lineno, "no hash in this row", _row_text(cells))

    @staticmethod
    def _record(
        value: str, st: SignalType | None, labels: Labels, lineno: int, cells: list[str]
    ) -> HashRecord | LineError:
        raw = value.encode("utf-8")
        fast = st if st is not None else TYPE_BY_HEX_LENGTH.get(len(raw))
        if fast is not None and len(raw) == HEX_LENGTH.get(fast) and not raw.translate(None, HEX_DIGITS):
            return HashRecord(fast, value.lower(), labels, lineno, lineno)
        got = parse_value(raw, st, labels, lineno, b"", lineno)
        if isinstance(got, LineError):
            return LineError(lineno, got.message, _row_text(cells))
        return got

    def write(self, records: Iterable[HashRecord], fp: BinaryIO) -> int:
        text = io.TextIOWrapper(fp, encoding="utf-8", newline="")
        try:
            w = csv.writer(text)  # RFC 4180: CRLF, and so a lone CR in a cell gets quoted
            w.writerow(HEADER)
            n = 0
            for r in records:
                cells = (r.signal_type.value, hex_value(r.signal_type, r.value), *_label_cells(r.labels))
                w.writerow([_guard(c) for c in cells])
                n += 1
            return n
        finally:
            text.detach()


#: what makes a spreadsheet read a cell as a formula (CSV injection): such cells are written with a
#: leading apostrophe, which spreadsheets hide and this reader takes off again
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


_ESCAPED = (*FORMULA_START, "'")


def _guard(cell: str) -> str:
    """A formula-like cell, or one that starts with an apostrophe already, gets one more in front."""
    return "'" + cell if cell.startswith(_ESCAPED) else cell


def _unguard(cell: str) -> str:
    """Undo :func:`_guard` (an apostrophe before a formula character or another apostrophe)."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(_ESCAPED) else cell


def _bool(v: bool | None) -> str:
    return "" if v is None else ("true" if v else "false")


def _label_cells(lb: Labels) -> tuple[str, ...]:
    return (
        lb.category or "",
        _bool(lb.baseline),
        lb.series or "",
        _bool(lb.victim_identified),
        lb.source or "",
        "|".join(lb.tags),
        lb.vics_category or "",
        lb.vics_profile or "",
        json.dumps(dict(lb.vics), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if lb.vics
        else "",
    )
