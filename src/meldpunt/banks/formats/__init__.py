"""Hash-list formats in and out: plain, ThreatExchange (te), CSV and Project VIC VICS JSON.

Pure (no database) and streaming: ``get_format(name).read(fp)`` yields ``HashRecord`` for every
hash and ``LineError`` for every line it could not read, never stopping at one; ``write`` takes
records and returns how many it wrote. The importer and the CLI build on this; a third party adds a
format with ``register_format``. See ``base`` for the shared rules (labels given by the caller are
defaults under a record's own), and each format's module for its details.
"""

from __future__ import annotations

from meldpunt.banks.formats.base import (
    NO_LABELS,
    HashRecord,
    LineError,
    ListFormat,
    ListFormatError,
    SkippedSignal,
)
from meldpunt.banks.formats.csv_format import CsvFormat
from meldpunt.banks.formats.detect import detect_format
from meldpunt.banks.formats.plain import PlainFormat
from meldpunt.banks.formats.registry import FORMATS, get_format, register_format
from meldpunt.banks.formats.te import TeFormat
from meldpunt.banks.formats.vics import VicsFormat

for _fmt in (PlainFormat(), TeFormat(), CsvFormat(), VicsFormat()):
    register_format(_fmt)

__all__ = [
    "FORMATS",
    "NO_LABELS",
    "CsvFormat",
    "HashRecord",
    "LineError",
    "ListFormat",
    "ListFormatError",
    "PlainFormat",
    "SkippedSignal",
    "TeFormat",
    "VicsFormat",
    "detect_format",
    "get_format",
    "register_format",
]
