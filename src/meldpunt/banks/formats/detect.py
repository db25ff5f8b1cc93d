"""Guessing a list's format from its name and first bytes, for imports that do not say.

By extension first: ``.json`` is VICS, ``.csv`` is CSV, ``.te`` is a ThreatExchange list. Anything
else (``.txt``, ``.lst``, ``.md5``, no extension) is sniffed: a document starting with ``{`` is
VICS; a first line (after blank and ``#`` lines) that ``,``, ``;`` or a tab splits into cells
naming a known column is CSV; a list where **any** line of the sample reads ``<signal type>
<something>`` is TE — not only the first, because ``threatexchange dataset -S`` may well start
with a ``url`` or ``raw_text`` line (types we skip) before the hashes; anything else is plain (a
lone ``MD5`` header line included). Pass at least the first few KB; a guess is only a guess, so
the CLI lets ``--format`` override it.
"""

from __future__ import annotations

from pathlib import PurePath

from meldpunt.banks.formats.csv_format import DELIMITERS, KNOWN_COLUMNS
from meldpunt.domain.signals import FOREIGN_SIGNAL_TYPES, SIGNAL_ALIASES

_BY_EXTENSION = {".json": "vics", ".csv": "csv", ".te": "te"}
_TYPE_NAMES = frozenset(SIGNAL_ALIASES) | FOREIGN_SIGNAL_TYPES


def _is_csv_header(line: str) -> bool:
    for d in DELIMITERS:
        cells = line.split(d)
        if len(cells) > 1 and any(c.strip().strip('"').lower() in KNOWN_COLUMNS for c in cells):
            return True
    return False


def detect_format(first_bytes: bytes, filename: str) -> str:
    """The registered name of the format ``first_bytes`` of ``filename`` look like."""
    by_ext = _BY_EXTENSION.get(PurePath(filename).suffix.lower())
    if by_ext is not None:
        return by_ext
    text = first_bytes.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="replace")
    if text.lstrip().startswith("{"):
        return "vics"
    first = True
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if first and _is_csv_header(line):
            return "csv"
        first = False
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0].lower() in _TYPE_NAMES:
            return "te"
    return "plain"
