"""Count tables for multiple systems estimation: read, check and complete a CSV of list patterns.

The input is the table the Rights Lab, SparseMSE and MultipleSystemsEstimation use: one 0/1 column per
list (the header names the list) and a last column with the number of people seen on exactly that
combination of lists. Reading refuses anything that would give a number without meaning, with the row
it is about: a bad cell, a negative or fractional count, the all-zero pattern (nobody can be counted as
seen on no list), a single list, and lists of which no two overlap (nothing links one list to another). A list that overlaps no
other is allowed (the existence check decides; Artificial_3 is such a table) and noted.
Two rows with the same pattern are **added up** (as SparseMSE's ``tidylists`` does), and the table says
so in its notes.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import numpy.typing as npt

#: 2**12 - 1 cells: far beyond any published analysis (New Orleans has 8 lists); the model search grows fast
MAX_LISTS = 12
#: more rows than any table of at most MAX_LISTS lists can need, duplicates included
MAX_ROWS = 100_000
_COUNT = re.compile(r"^\+?\d+(\.0*)?$")


class Said(ValueError):
    """An error told as an English template and its values: the CLI prints the English, the web page
    looks the template up in its catalogues (the templates are msgids there) and fills the values in."""

    def __init__(self, template: str, **values: object) -> None:
        self.template = template
        self.values = {k: str(v) for k, v in values.items()}
        super().__init__(template.format(**self.values))


class NoEstimate(Said):
    """No model gives an estimate for this table; the message says why."""


#: the ways a model is chosen (``meldpunt.estimate.select``) and stepwise's threshold: here, with the
#: table, so that the CLI and the web page know them without loading scipy and statsmodels (seconds)
METHODS = ("stepwise", "bic", "main")
PTHRESH = 0.02


class TableError(Said):
    """The count table cannot be used; the message says why (and which row)."""


@dataclass(frozen=True)
class Note:
    """Something the reader of an estimate should know about the table (a template, like ``Said``)."""

    template: str
    values: tuple[tuple[str, str], ...] = ()

    @staticmethod
    def of(template: str, **values: object) -> Note:
        return Note(template, tuple((k, str(v)) for k, v in values.items()))

    def __str__(self) -> str:
        return self.template.format(**dict(self.values))


@dataclass(frozen=True)
class CountTable:
    """A complete count table: every one of the 2**t - 1 observable patterns, in a fixed order.

    ``patterns`` is (2**t - 1, t) of 0/1, ordered by the number of lists then by binary code (as
    SparseMSE's ``tidylists``), and ``counts`` holds the number seen on exactly that pattern (0 for a
    pattern the file did not list)."""

    names: tuple[str, ...]
    patterns: npt.NDArray[np.int64]
    counts: npt.NDArray[np.int64]
    notes: tuple[Note, ...] = field(default=())

    @property
    def observed(self) -> int:
        return int(self.counts.sum())

    def overlap(self, i: int, j: int) -> int:
        """N*_ij: the people on both lists i and j, whatever other lists they are on."""
        both = self.patterns[:, i] * self.patterns[:, j]
        return int((both * self.counts).sum())

    def term(self, pair: tuple[int, int]) -> str:
        return f"{self.names[pair[0]]}:{self.names[pair[1]]}"

    def with_counts(self, counts: npt.NDArray[np.int64]) -> CountTable:
        return CountTable(self.names, self.patterns, counts.astype(np.int64), ())


def all_patterns(t: int) -> npt.NDArray[np.int64]:
    """Every non-empty pattern of t lists, by number of lists, then by binary code."""
    rows = [[(code >> i) & 1 for i in range(t)] for code in range(1, 2**t)]
    rows.sort(key=lambda r: (sum(r), [-x for x in r]))
    return np.array(rows, dtype=np.int64)


def pairs(t: int) -> list[tuple[int, int]]:
    return list(combinations(range(t), 2))


def from_rows(
    names: list[str], rows: list[tuple[list[int], int]], notes: list[Note] | None = None
) -> CountTable:
    """The complete table from (pattern, count) rows that were already checked cell by cell."""
    t = len(names)
    patterns = all_patterns(t)
    index = {tuple(int(x) for x in p): k for k, p in enumerate(patterns)}
    counts = np.zeros(len(patterns), dtype=np.int64)
    for pattern, n in rows:
        counts[index[tuple(pattern)]] += n
    table = CountTable(tuple(names), patterns, counts, ())
    more = _check_whole(table)
    return CountTable(table.names, patterns, counts, (*(notes or ()), *more))


def read_csv(text: str) -> CountTable:
    """Read a count table from CSV text (comma, semicolon or tab separated; a header row first)."""
    text = text.lstrip("\ufeff")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise TableError(
            "the table is empty: give a header row (one column per list, then the count) and rows"
        )
    delimiter = max(",;\t", key=lines[0].count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header: list[str] | None = None
    rows: list[tuple[list[int], int]] = []
    seen: dict[tuple[int, ...], int] = {}
    notes: list[Note] = []
    for rowno, cells in enumerate(reader, start=1):
        cells = [c.strip() for c in cells]
        if not any(cells):
            continue
        if header is None:
            header = _header(cells)
            continue
        if len(rows) >= MAX_ROWS:
            raise TableError("more than {n} rows: this is not a count table", n=MAX_ROWS)
        rows.append(_row(rowno, cells, header))
        pattern = tuple(rows[-1][0])
        if pattern in seen:
            notes.append(
                Note.of(
                    "rows {first} and {row} have the same pattern ({pattern}): their counts were added",
                    first=seen[pattern],
                    row=rowno,
                    pattern=_pattern_text(header, pattern),
                )
            )
        else:
            seen[pattern] = rowno
    if header is None:
        raise TableError(
            "the table is empty: give a header row (one column per list, then the count) and rows"
        )
    if not rows:
        raise TableError("the table has a header but no rows")
    return from_rows(header[:-1], rows, notes)


def _header(cells: list[str]) -> list[str]:
    if len(cells) < 2:
        raise TableError("row 1 (the header) needs one column per list and a last column with the counts")
    names = cells[:-1]
    for k, name in enumerate(names, start=1):
        if not name:
            raise TableError("row 1 (the header): column {k} has no list name", k=k)
        if ":" in name or len(name) > 60:
            raise TableError(
                "row 1 (the header): list name {name} must be at most 60 characters, without ':'",
                name=repr(name),
            )
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise TableError(
            "row 1 (the header): list names must differ ({names} repeated)", names=", ".join(dup)
        )
    if len(names) == 1:
        raise TableError(
            "there is a single list: estimating the unseen needs at least two lists that overlap (nothing to estimate)"
        )
    if len(names) > MAX_LISTS:
        raise TableError(
            "{n} lists: at most {max} are supported (merge small lists first)", n=len(names), max=MAX_LISTS
        )
    return cells


def _row(rowno: int, cells: list[str], header: list[str]) -> tuple[list[int], int]:
    if len(cells) != len(header):
        raise TableError(
            "row {row}: {n} cells where the header has {m}", row=rowno, n=len(cells), m=len(header)
        )
    pattern = []
    for name, cell in zip(header[:-1], cells[:-1], strict=True):
        if cell not in ("0", "1"):
            raise TableError(
                "row {row}, list {name}: {cell} is not 0 or 1", row=rowno, name=name, cell=repr(cell)
            )
        pattern.append(int(cell))
    count = cells[-1]
    if count.startswith("-") and _COUNT.match(count[1:]):
        raise TableError("row {row}: the count {count} is negative", row=rowno, count=count)
    if not _COUNT.match(count):
        raise TableError("row {row}: the count {count} is not a whole number", row=rowno, count=repr(count))
    n = int(float(count)) if "." in count else int(count)
    if not any(pattern):
        raise TableError(
            "row {row}: the pattern is on no list at all: nobody can be counted as seen on no list (that number is what is estimated); remove the row",
            row=rowno,
        )
    return pattern, n


def _pattern_text(header: list[str], pattern: tuple[int, ...]) -> str:
    return "+".join(n for n, x in zip(header, pattern, strict=False) if x) or "none"


def _check_whole(table: CountTable) -> list[Note]:
    """Refuse a table without any overlap; the notes on lists that overlap no other list."""
    t = len(table.names)
    if t < 2:
        raise TableError("there is a single list: nothing to estimate")
    if table.observed == 0:
        raise TableError("every count is zero: nobody was seen")
    for i, name in enumerate(table.names):
        if int((table.patterns[:, i] * table.counts).sum()) == 0:
            raise TableError("list {name} has nobody on it: remove the column", name=name)
    links = {(i, j) for i, j in pairs(t) if table.overlap(i, j) > 0}
    if not links:
        raise TableError(
            "the lists never overlap: nobody is on two lists, so nothing links one list to another and the unseen number cannot be estimated"
        )
    return [
        Note.of(
            "list {name} never overlaps any other list: its pairs are -inf in any model that has them, and the estimate leans on the model's assumptions for it (Chan, Silverman & Vincent 2021)",
            name=name,
        )
        for i, name in enumerate(table.names)
        if not any(i in p for p in links)
    ]
