"""Pure-numpy stand-ins for the numba kernels: exact but slow, for a Python without numba.

numba is a declared dependency, so these exist only so that the index never gives a wrong answer
(or none) where numba cannot be imported. Search is a vectorised brute force (``np.bitwise_count``
over blocks); tables are built with a stable argsort so that saved files are identical to the
numba build and stay loadable either way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

_BLOCK_ROWS = 1 << 16


def chunk_keys(codes: npt.NDArray[np.uint64], j: int, bits: int) -> npt.NDArray[np.int64]:
    """Chunk ``j`` of every row, as in the numba kernels (bit ``64 * w + i`` is bit ``i`` of word ``w``)."""
    start = j * bits
    w, sh = divmod(start, 64)
    x = codes[:, w] >> np.uint64(sh)
    if sh + bits > 64:
        x = x | (codes[:, w + 1] << np.uint64(64 - sh))
    return (x & np.uint64((1 << bits) - 1)).astype(np.int64)


def build_tables(codes: npt.NDArray[np.uint64], bits: int, offsets: Any, positions: Any) -> None:
    n = codes.shape[0]
    for j in range(offsets.shape[0]):
        keys = chunk_keys(codes, j, bits)
        order = np.argsort(keys, kind="stable")
        positions[j] = order.astype(np.uint32)
        counts = np.bincount(keys, minlength=1 << bits)
        offsets[j, 0] = 0
        np.cumsum(counts, out=offsets[j, 1:])
        assert int(offsets[j, -1]) == n


def check_tables(offsets: Any, positions: Any, n: int) -> bool:
    if offsets.shape[1] == 0:
        return False
    if (offsets[:, 0] != 0).any() or (offsets[:, -1] != n).any():
        return False
    for j in range(offsets.shape[0]):
        if (np.diff(offsets[j].astype(np.int64)) < 0).any():
            return False
        if positions.shape[1] and int(positions[j].max()) >= n:
            return False
    return True


def search_scan(
    queries: npt.NDArray[np.uint64],
    d: int,
    codes: npt.NDArray[np.uint64],
    alive: npt.NDArray[np.bool_],
    ids: npt.NDArray[np.int64],
    nrows: int,
    qblock: int,
    out_start: npt.NDArray[np.int64],
    out_ids: npt.NDArray[np.int64],
    out_dist: npt.NDArray[np.int32],
    counts: npt.NDArray[np.int64],
) -> None:
    """Same contract as ``_kernels.search_scan``."""
    del qblock
    for r0 in range(0, nrows, _BLOCK_ROWS):
        r1 = min(nrows, r0 + _BLOCK_ROWS)
        block = codes[r0:r1]
        live = alive[r0:r1]
        for qi in range(queries.shape[0]):
            dist = np.bitwise_count(block ^ queries[qi]).sum(axis=1, dtype=np.int64)
            hits = np.flatnonzero((dist <= d) & live)
            if hits.size == 0:
                continue
            base = int(out_start[qi])
            cap = int(out_start[qi + 1]) - base
            cnt = int(counts[qi])
            room = max(0, min(hits.size, cap - cnt))
            if room:
                out_ids[base + cnt : base + cnt + room] = ids[r0 + hits[:room]]
                out_dist[base + cnt : base + cnt + room] = dist[hits[:room]]
            counts[qi] = cnt + hits.size
