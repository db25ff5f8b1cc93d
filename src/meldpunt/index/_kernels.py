"""Compiled (numba) kernels behind PDQIndex: table build, multi-index probing, tiled brute-force scan.

Everything here works on codes as ``(n, 4) uint64`` rows (the 32 hash bytes viewed little-endian).
A *chunk* ``j`` is the bit range ``[j * bits, (j + 1) * bits)`` of the 256-bit number whose bit
``64 * w + i`` is bit ``i`` of word ``w``; which bits form a chunk does not matter for exactness
(Hamming distance ignores bit order), only that chunks are disjoint.

Kernels write results into caller-allocated flat buffers: query ``i`` owns the slots
``out_start[i]:out_start[i + 1]``, ``counts[i]`` is how many results it has so far (kernels add to
it, so one query can be run through several kernels), and a kernel keeps counting past the
capacity without writing. The caller then re-runs just the overflowing queries with exact room.
Sizing the output up front this way costs one extra pass for rare, result-heavy queries instead
of a count-then-fill double pass for every query, and needs no shared growable structure between
threads.

All functions are ``cache=True`` so only the first process on a machine pays the compile (10-20 s
for all of them; later processes load the cached machine code in well under a second);
``nogil=True`` so Python threads can run searches side by side.
"""

from __future__ import annotations

from typing import Any

import numba
import numba.core.cgutils
import numba.extending
import numpy as np
from llvmlite import ir
from numba import prange, types

# numba's own annotations do not describe compiled functions (intrinsics take ``typingctx``, jitted
# functions accept numpy scalars); to the type checker these are untyped.
njit: Any = numba.njit
intrinsic: Any = numba.extending.intrinsic
cgutils: Any = numba.core.cgutils

#: Rows of a scan tile: 2048 rows x 32 bytes = 64 KiB, transposed into word planes that stay in L1/L2
#: while a block of queries runs over them.
SCAN_TILE = 2048
#: Candidates gathered before they are verified: large enough that the gather and verify loops run
#: long, independent streams of loads (memory-level parallelism), small enough to stay in L1.
CAND_CAP = 2048
HASH_BITS = 256


@intrinsic  # type: ignore[untyped-decorator,misc]
def _ctpop(typingctx: Any, x: Any) -> Any:
    """popcount of a 64-bit word via LLVM's ctpop: compiles to ``popcnt`` (or ``vpopcntq`` when
    vectorised), which a SWAR bit trick cannot match."""
    if not isinstance(x, types.Integer) or getattr(x, "bitwidth", 0) != 64:
        return None
    sig = types.int64(x)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.ctpop(args[0])

    return sig, codegen


@intrinsic  # type: ignore[untyped-decorator,misc]
def _prefetch(typingctx: Any, arr: Any, row: Any) -> Any:
    """Hint the CPU to start loading ``arr[row]`` (its first element) into cache: ``prefetcht0``.

    Issued as soon as a row number is known, so that its cache miss overlaps the misses of the
    rows gathered after it instead of waiting until the row is verified."""
    if not isinstance(arr, types.Array) or not isinstance(row, types.Integer):
        return None
    sig = types.void(arr, row)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        first = context.cast(builder, args[1], signature.args[1], types.intp)
        idx = [first] + [context.get_constant(types.intp, 0)] * (aryty.ndim - 1)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, idx, wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        # read, high temporal locality, data cache
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")  # type: ignore[untyped-decorator,misc]
def _chunk_key(codes: Any, row: int, j: int, bits: int) -> np.int64:
    """Chunk ``j`` (``bits`` wide) of ``codes[row]`` as a non-negative int64."""
    start = j * bits
    w = start >> 6
    sh = start & 63
    x = codes[row, w] >> np.uint64(sh)
    if sh + bits > 64:
        x |= codes[row, w + 1] << np.uint64(64 - sh)
    return np.int64(x & np.uint64((1 << bits) - 1))


@njit(cache=True, nogil=True)  # type: ignore[untyped-decorator,misc]
def combination_masks(bits: int, radius: int) -> Any:
    """All ``bits``-wide masks with popcount <= radius, ordered by popcount (then value).

    Ordered by popcount so that the masks for any smaller radius are a prefix of the array: one
    array serves every chunk of a query even when chunks are probed at different radii."""
    r = min(radius, bits)
    total = 0
    binom = 1
    for k in range(r + 1):
        total += binom
        binom = binom * (bits - k) // (k + 1)
    out = np.empty(total, np.int64)
    out[0] = 0
    i = 1
    limit = np.int64(1) << bits
    for k in range(1, r + 1):
        v = (np.int64(1) << k) - 1
        while v < limit:
            out[i] = v
            i += 1
            # Gosper's hack: the next larger integer with the same popcount.
            c = v & -v
            nxt = v + c
            v = (((nxt ^ v) >> 2) // c) | nxt
    return out


@njit(cache=True, nogil=True, parallel=True)  # type: ignore[untyped-decorator,misc]
def build_tables(codes: Any, bits: int, offsets: Any, positions: Any) -> None:
    """Fill one CSR table per chunk by counting sort: ``positions[j, offsets[j, k]:offsets[j, k + 1]]``
    are the rows whose chunk ``j`` equals ``k``, ascending.

    A counting sort is O(n) per chunk with no temporary array (keys are recomputed from the codes,
    which stream sequentially); chunks are built in parallel."""
    n = codes.shape[0]
    m = offsets.shape[0]
    nk = np.int64(1) << bits
    for j in prange(m):
        off = offsets[j]
        off[:] = 0
        for i in range(n):
            off[_chunk_key(codes, i, j, bits)] += 1
        acc = np.uint32(0)
        for k in range(nk):
            acc += off[k]
            off[k] = acc  # end of bucket k
        for i in range(n - 1, -1, -1):
            k = _chunk_key(codes, i, j, bits)
            e = off[k] - np.uint32(1)
            off[k] = e  # after the last row of bucket k is placed: its start
            positions[j, e] = np.uint32(i)
        off[nk] = np.uint32(n)


@njit(cache=True, nogil=True, parallel=True)  # type: ignore[untyped-decorator,misc]
def check_tables(offsets: Any, positions: Any, n: int) -> bool:
    """Structural check of loaded tables: every bucket range lies in ``[0, n]`` and is ordered, and
    every position is a valid row. Guarantees the search kernels never read out of bounds."""
    m = offsets.shape[0]
    nk = offsets.shape[1] - 1
    ok = np.ones(m, np.bool_)
    for j in prange(m):
        if offsets[j, 0] != 0 or offsets[j, nk] != n:
            ok[j] = False
            continue
        for k in range(nk):
            if offsets[j, k] > offsets[j, k + 1]:
                ok[j] = False
                break
        for p in range(positions.shape[1]):
            if positions[j, p] >= n:
                ok[j] = False
                break
    return bool(ok.all())


@njit(cache=True, nogil=True, inline="always")  # type: ignore[untyped-decorator,misc]
def _verify(
    cand: Any,
    cdist: Any,
    nc: int,
    j: int,
    qkeys: Any,
    q0: np.uint64,
    q1: np.uint64,
    q2: np.uint64,
    q3: np.uint64,
    d: int,
    codes: Any,
    alive: Any,
    ids: Any,
    bits: int,
    radii: Any,
    out_ids: Any,
    out_dist: Any,
    base: int,
    cap: int,
    cnt: int,
) -> int:
    """Check ``nc`` candidates found through chunk ``j``; record those within ``d``.

    Deduplication without a hash set: a row found through chunk ``j`` is reported only if no earlier
    chunk ``i < j`` is within its probe radius ``radii[i]`` (then chunk ``i`` already reported it).
    The test runs only for rows that verify, which are rare."""
    for t in range(nc):
        row = np.int64(cand[t])
        cdist[t] = (
            _ctpop(codes[row, 0] ^ q0)
            + _ctpop(codes[row, 1] ^ q1)
            + _ctpop(codes[row, 2] ^ q2)
            + _ctpop(codes[row, 3] ^ q3)
        )
    for t in range(nc):
        dist = cdist[t]
        if dist > d:
            continue
        row = np.int64(cand[t])
        if alive[row]:
            seen = False
            for i in range(j):
                ri = radii[i]
                if ri >= 0 and _ctpop(np.uint64(_chunk_key(codes, row, i, bits) ^ qkeys[i])) <= ri:
                    seen = True
                    break
            if not seen:
                if cnt < cap:
                    out_ids[base + cnt] = ids[row]
                    out_dist[base + cnt] = dist
                cnt += 1
    return cnt


@njit(cache=True, nogil=True, parallel=True)  # type: ignore[untyped-decorator,misc]
def search_mih(
    queries: Any,
    d: int,
    codes: Any,
    alive: Any,
    ids: Any,
    offsets: Any,
    positions: Any,
    bits: int,
    radii: Any,
    masks: Any,
    nmasks: Any,
    qblock: int,
    out_start: Any,
    out_ids: Any,
    out_dist: Any,
    counts: Any,
) -> None:
    """Multi-index hashing: for each chunk ``j`` with ``radii[j] >= 0``, probe every key within
    ``radii[j]`` of the query's chunk and verify the rows found against the full 256 bits.

    Each chunk is done in stages (bucket bounds for all probes, then gather positions, then verify)
    rather than one nested loop: the stages have no data-dependent branches between a load and the
    next independent load, so the CPU keeps many cache misses in flight at once; nested, every bucket
    bound miss stalls behind a branch. Each stage also prefetches what the next one will load (a
    bucket's positions, a row's code): about a quarter faster at 10 million.
    ``nmasks[r]`` is how many leading ``masks`` have popcount <= r.
    """
    nq = queries.shape[0]
    m = offsets.shape[0]
    nblocks = (nq + qblock - 1) // qblock
    maxr = -1
    for j in range(m):
        maxr = max(maxr, radii[j])
    if maxr < 0 or positions.shape[1] == 0:
        return
    maxprobes = nmasks[maxr]
    for b in prange(nblocks):
        blo = np.empty(maxprobes, np.int64)
        bhi = np.empty(maxprobes, np.int64)
        cand = np.empty(CAND_CAP, np.uint32)
        cdist = np.empty(CAND_CAP, np.int64)
        qkeys = np.empty(m, np.int64)
        for qi in range(b * qblock, min(nq, (b + 1) * qblock)):
            q0 = queries[qi, 0]
            q1 = queries[qi, 1]
            q2 = queries[qi, 2]
            q3 = queries[qi, 3]
            for j in range(m):
                qkeys[j] = _chunk_key(queries, qi, j, bits)
            base = out_start[qi]
            cap = out_start[qi + 1] - base
            cnt = counts[qi]
            for j in range(m):
                rj = radii[j]
                if rj < 0:
                    continue
                qk = qkeys[j]
                npr = nmasks[rj]
                offj = offsets[j]
                posj = positions[j]
                for t in range(npr):
                    k = qk ^ masks[t]
                    lo = offj[k]
                    blo[t] = lo
                    bhi[t] = offj[k + 1]
                    _prefetch(posj, lo)
                nc = 0
                for t in range(npr):
                    a = blo[t]
                    e = bhi[t]
                    if nc + (e - a) > CAND_CAP:  # rare: flush; a huge bucket goes in pieces
                        cnt = _verify(
                            cand, cdist, nc, j, qkeys, q0, q1, q2, q3, d, codes, alive, ids, bits, radii,
                            out_ids, out_dist, base, cap, cnt,
                        )  # fmt: skip
                        nc = 0
                        while e - a > CAND_CAP:
                            for p in range(CAND_CAP):
                                cand[p] = posj[a + p]
                            cnt = _verify(
                                cand, cdist, CAND_CAP, j, qkeys, q0, q1, q2, q3, d, codes, alive, ids, bits,
                                radii, out_ids, out_dist, base, cap, cnt,
                            )  # fmt: skip
                            a += CAND_CAP
                    for p in range(a, e):
                        row = posj[p]
                        cand[nc] = row
                        nc += 1
                        _prefetch(codes, row)
                if nc > 0:
                    cnt = _verify(
                        cand, cdist, nc, j, qkeys, q0, q1, q2, q3, d, codes, alive, ids, bits, radii,
                        out_ids, out_dist, base, cap, cnt,
                    )  # fmt: skip
            counts[qi] = cnt


@njit(cache=True, nogil=True, parallel=True)  # type: ignore[untyped-decorator,misc]
def search_scan(
    queries: Any,
    d: int,
    codes: Any,
    alive: Any,
    ids: Any,
    nrows: int,
    qblock: int,
    out_start: Any,
    out_ids: Any,
    out_dist: Any,
    counts: Any,
) -> None:
    """Exact brute force over ``codes[:nrows]``, tiled: a tile of rows is transposed into four word
    planes (so the distance loop vectorises: xor, ``vpopcntq``, add, over 8 rows per instruction)
    and a whole block of queries runs over it while it is in cache. Used for the small delta segment
    and when a radius is so large that probing would touch more than a scan does."""
    nq = queries.shape[0]
    nblocks = (nq + qblock - 1) // qblock
    for b in prange(nblocks):
        planes = np.empty((4, SCAN_TILE), np.uint64)
        dist = np.empty(SCAN_TILE, np.int64)
        qlo = b * qblock
        qhi = min(nq, qlo + qblock)
        for t0 in range(0, nrows, SCAN_TILE):
            t1 = min(nrows, t0 + SCAN_TILE)
            nt = t1 - t0
            for r in range(nt):
                planes[0, r] = codes[t0 + r, 0]
                planes[1, r] = codes[t0 + r, 1]
                planes[2, r] = codes[t0 + r, 2]
                planes[3, r] = codes[t0 + r, 3]
            p0 = planes[0]
            p1 = planes[1]
            p2 = planes[2]
            p3 = planes[3]
            for qi in range(qlo, qhi):
                q0 = queries[qi, 0]
                q1 = queries[qi, 1]
                q2 = queries[qi, 2]
                q3 = queries[qi, 3]
                low = np.int64(HASH_BITS)
                for r in range(nt):
                    x = _ctpop(p0[r] ^ q0) + _ctpop(p1[r] ^ q1) + _ctpop(p2[r] ^ q2) + _ctpop(p3[r] ^ q3)
                    dist[r] = x
                    low = min(low, x)
                if low > d:  # the usual case at small radii: no hit in this tile, skip the row loop
                    continue
                base = out_start[qi]
                cap = out_start[qi + 1] - base
                cnt = counts[qi]
                for r in range(nt):
                    if dist[r] <= d and alive[t0 + r]:
                        if cnt < cap:
                            out_ids[base + cnt] = ids[t0 + r]
                            out_dist[base + cnt] = dist[r]
                        cnt += 1
                counts[qi] = cnt


def set_threads(n: int) -> None:
    """Limit the kernels to ``n`` threads (the benchmark pins everything to the same core count)."""
    numba.set_num_threads(n)


def get_threads() -> int:
    return int(numba.get_num_threads())
