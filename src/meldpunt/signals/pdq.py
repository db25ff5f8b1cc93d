"""PDQ hashes of RGB pixel arrays with the ``pdqhash`` package, written as Meta writes them.

``pdqhash`` gives 256 bits, most significant first; packed big-endian they are exactly the hex that
Meta's reference tools print (checked against their bridge test images).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pdqhash

from meldpunt.domain.pdq import pdq_distance


def bits_to_hex(bits: npt.NDArray[np.integer]) -> str:
    """256 bits (most significant first) -> 64 lower-case hex digits."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def hex_to_bits(value: str) -> npt.NDArray[np.uint8]:
    return np.unpackbits(np.frombuffer(bytes.fromhex(value), dtype=np.uint8))


#: bits that differ between two PDQ hashes: the domain's one distance, under its older name
hamming = pdq_distance


def _rgb(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    # pdqhash reads the luma buffer as row-major whatever the input's layout, so a Fortran-ordered
    # or strided array would be hashed wrongly: hand it a C-contiguous one, always.
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"PDQ needs an HxWx3 uint8 array, got {rgb.shape} {rgb.dtype}")
    return np.ascontiguousarray(rgb)


def pdq_hash(rgb: npt.NDArray[np.uint8]) -> tuple[str, int]:
    """(hash hex, quality 0-100) of an HxWx3 uint8 RGB array."""
    bits, quality = pdqhash.compute(_rgb(rgb))
    return bits_to_hex(bits), int(quality)


def pdq_dihedral(rgb: npt.NDArray[np.uint8]) -> tuple[list[str], int]:
    """The 8 dihedral PDQ hashes (see ``DIHEDRAL_ORDER``; the first is :func:`pdq_hash`) and quality."""
    hashes, quality = pdqhash.compute_dihedral(_rgb(rgb))
    return [bits_to_hex(h) for h in hashes], int(quality)
