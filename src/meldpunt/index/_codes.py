"""Conversion between 64-character PDQ hex strings and ``(n, 32) uint8`` code arrays, vectorised.

Byte ``i`` of a code is ``bytes.fromhex(hex)[i]``. Conversion goes through one joined ASCII buffer
and a 256-entry lookup table rather than ``bytes.fromhex`` per string: at 10 million hashes that is
a couple of seconds instead of tens, and the lookup table finds the first malformed string so the
error can name it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

HEX_LEN = 64
CODE_BYTES = 32
_BLOCK = 1 << 18

_NIBBLE = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _NIBBLE[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _NIBBLE[_c] = 10 + _i


def hex_to_codes(hexes: Iterable[str]) -> npt.NDArray[np.uint8]:
    """64-character hex strings (any case, nothing else: no whitespace, no ``0x``) -> ``(n, 32) uint8``.

    Raises ``ValueError`` naming the index of the first malformed string."""
    items: Sequence[str] = hexes if isinstance(hexes, list | tuple) else list(hexes)
    n = len(items)
    if n == 0:
        return np.empty((0, CODE_BYTES), dtype=np.uint8)
    for i, h in enumerate(items):
        if not isinstance(h, str) or len(h) != HEX_LEN:
            what = f"type {type(h).__name__}" if not isinstance(h, str) else f"{len(h)} characters"
            raise ValueError(f"hash {i}: a PDQ hash is {HEX_LEN} hex characters, got {what}")
    out = np.empty((n, CODE_BYTES), dtype=np.uint8)
    for lo in range(0, n, _BLOCK):  # in blocks: the joined text is 64 bytes a hash, twice over
        block = items[lo : lo + _BLOCK]
        try:
            raw = "".join(block).encode("ascii")
        except UnicodeEncodeError as e:
            raise ValueError(
                f"hash {lo + e.start // HEX_LEN}: not hexadecimal (non-ASCII character)"
            ) from None
        nib = _NIBBLE[np.frombuffer(raw, dtype=np.uint8)].reshape(len(block), HEX_LEN)
        bad = (nib == 255).any(axis=1)
        if bad.any():
            i = lo + int(np.flatnonzero(bad)[0])
            raise ValueError(f"hash {i}: not hexadecimal: {items[i]!r}")
        out[lo : lo + len(block)] = (nib[:, 0::2] << 4) | nib[:, 1::2]
    return out


def codes_to_hex(codes: npt.ArrayLike) -> list[str]:
    """``(n, 32) uint8`` -> lower-case 64-character hex strings."""
    arr = np.ascontiguousarray(codes)
    if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != CODE_BYTES:
        raise ValueError(f"codes must be an (n, {CODE_BYTES}) uint8 array, got {arr.dtype} {arr.shape}")
    s = arr.tobytes().hex()
    return [s[i : i + HEX_LEN] for i in range(0, len(s), HEX_LEN)]


def as_codes(hashes: object) -> npt.NDArray[np.uint8]:
    """Accept hex strings or an ``(n, 32) uint8`` array; return a C-contiguous ``(n, 32) uint8`` array."""
    if isinstance(hashes, str | bytes):
        raise TypeError("expected a batch of hashes (a list of hex strings or an (n, 32) array), got one")
    if isinstance(hashes, np.ndarray):
        if hashes.dtype.kind in "USO":
            return hex_to_codes([str(h) for h in hashes.ravel()])
        if hashes.dtype != np.uint8 or hashes.ndim != 2 or hashes.shape[1] != CODE_BYTES:
            raise ValueError(
                f"hash arrays must be (n, {CODE_BYTES}) uint8, got {hashes.dtype} with shape {hashes.shape}"
            )
        return np.ascontiguousarray(hashes)
    if not isinstance(hashes, Iterable):
        raise TypeError(
            f"expected hex strings or an (n, {CODE_BYTES}) uint8 array, got {type(hashes).__name__}"
        )
    return hex_to_codes(hashes)
