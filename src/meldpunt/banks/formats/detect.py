"""Guessing a list's format from its name and first bytes, for imports that do not say.

By extension first: ``.json`` is VICS, ``.csv`` is CSV, ``.te`` is a ThreatExchange list. Anything
else (``.txt``, ``.lst``, ``.md5``, no extension) is sniffed: a document starting with ``{`` is
VICS; a first line (after blank and ``#`` lines) with commas naming a known column is CSV; a first
line ``<known signal type> <something>`` is TE; anything else is plain. Pass at least the first
few KB; a guess is only a guess, so the CLI lets ``--format`` override it.
"""

from __future__ import annotations

from pathlib import PurePath

from meldpunt.banks.formats.csv_format import KNOWN_COLUMNS
from meldpunt.domain.signals import SIGNAL_ALIASES

_BY_EXTENSION = {".json": "vics", ".csv": "csv", ".te": "te"}


def detect_format(first_bytes: bytes, filename: str) -> str:
    """The registered name of the format ``first_bytes`` of ``filename`` look like."""
    by_ext = _BY_EXTENSION.get(PurePath(filename).suffix.lower())
    if by_ext is not None:
        return by_ext
    text = first_bytes.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="replace")
    if text.lstrip().startswith("{"):
        return "vics"
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "," in line and any(c.strip().strip('"').lower() in KNOWN_COLUMNS for c in line.split(",")):
            return "csv"
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0].lower() in SIGNAL_ALIASES:
            return "te"
        return "plain"
    return "plain"
