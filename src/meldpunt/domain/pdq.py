"""PDQ rules shared by matching, grouping and banking: one distance and one "usable" rule.

A PDQ hash is usable when it is a full 256-bit hash (64 hex digits) and its quality is known and
at least the configured minimum. A *missing* quality counts as unusable: meldpunt's own hasher
always reports the quality beside the hash, so a PDQ without one comes from somewhere that cannot
vouch for it, and a flat or tiny image's hash matches far too widely. The matcher has always read
it this way; grouping and banking now agree with it, so a hash that would never match is neither
banked nor used to group items.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

PDQ_HEX_LEN = 64

_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint16)


def pdq_distance(a: str, b: str) -> int:
    """Hamming distance of two hex-encoded hashes of the same length."""
    return int.bit_count(int(a, 16) ^ int(b, 16))


def pdq_distances(query: str, codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint16]:
    """The distance of ``query`` to each row of ``codes`` (hashes as rows of 32 bytes): the same
    distance as :func:`pdq_distance`, for many hashes at once."""
    q = np.frombuffer(bytes.fromhex(query), dtype=np.uint8)
    return np.asarray(_POPCOUNT[np.bitwise_xor(codes, q)].sum(axis=1), dtype=np.uint16)


def pdq_usable(pdq: str | None, quality: int | None, min_quality: int) -> bool:
    """Whether a PDQ hash is good enough to match, group or bank (see the module's docstring)."""
    return bool(pdq) and len(pdq or "") == PDQ_HEX_LEN and quality is not None and quality >= min_quality
