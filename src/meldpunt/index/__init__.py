"""Exact Hamming-radius search over PDQ hashes: :class:`PDQIndex` and hex <-> code conversion."""

from meldpunt.index._codes import codes_to_hex, hex_to_codes
from meldpunt.index._index import PDQIndex

__all__ = ["PDQIndex", "codes_to_hex", "hex_to_codes"]
