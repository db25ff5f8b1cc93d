"""PDQIndex: exact Hamming-radius search over 256-bit PDQ hashes by multi-index hashing.

How it works, and why:

* **Multi-index hashing** (Norouzi, Punjani and Fleet, 2012). The 256 bits are cut into ``m``
  disjoint chunks of ``b`` bits. If two hashes differ in at most ``d`` bits, then writing
  ``d = r * m + a`` (``0 <= a < m``), one of the chunks ``0..a`` differs in at most ``r`` bits or
  one of the chunks ``a+1..m-1`` in at most ``r - 1`` (otherwise the chunk distances would add up to
  more than ``d``). So probing, per chunk, every key within that radius of the query's chunk finds
  every match; each candidate is then checked against all 256 bits. Nothing is approximate: the
  probes are a superset, the check is exact. Bits left over when ``m * b < 256`` are only checked,
  never probed, which is still exact (the pigeonhole argument holds on any subset of the bits).
* **Direct-addressed CSR tables**: one ``offsets`` array of ``2**b + 1`` uint32 per chunk and the
  rows sorted by chunk key. A probe is two adjacent loads, with no hashing and no collisions, and a
  counting sort builds a table in O(n). ``b`` is ``ceil(log2(n)) + 2``, at most 23 (11 chunks of
  32 MiB offsets each): emptier buckets mean fewer candidates, and a candidate (two cache misses)
  costs more than a probe (one miss, on a cache line shared with 15 neighbouring keys). At 10
  million a bucket holds ~1.2 rows; a radius-31 query costs ~2,800 probes and ~3,300 candidates,
  and the whole index ~120 bytes per hash (1.2 GB).
* **Main segment + delta segment**: rebuilding tables for each small ``add`` would cost seconds at
  10 million, so new hashes go to a small delta segment that is brute-forced (a tiled scan: about
  a billion hash comparisons per second per core), and are merged into the main
  segment by a rebuild once the delta exceeds ``merge_threshold``. Removal marks a tombstone;
  replacing an id is a removal plus an add. Tombstoned rows leave at the next rebuild.
* **Brute force when it is cheaper**: above radius 31 the number of probes grows quickly (radius 3
  per chunk is ~2,000 keys, radius 5 ~44,000); a cost estimate picks a tiled scan instead when the
  probing would touch more memory than reading every hash once. Both give the same answer.
* The main segment is kept **sorted by id**, so id lookups (replace, remove) are a binary search
  and need no id -> row map (another 120 MB as arrays at 10 million, gigabytes as a dict).

Not thread-safe for mutation (``add``/``remove``/``merge``) alongside anything else; concurrent
``search`` calls on an unchanging index are fine (the kernels release the GIL).
"""

from __future__ import annotations

import json
import math
import operator
import os
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from meldpunt.index import _numpy
from meldpunt.index._codes import CODE_BYTES, as_codes

_kernels: ModuleType | None
try:
    from meldpunt.index import _kernels
except ImportError:  # pragma: no cover - numba is a declared dependency
    _kernels = None

FORMAT = "meldpunt.pdq-index"
FORMAT_VERSION = 1
HASH_BITS = 256
MIN_CHUNK_BITS = 8
#: 23-bit chunks: 11 of them cover 253 bits, so radius 31 probes 10 chunks at radius 2 and one at
#: radius 1; 24 bits would double the offsets memory (64 MiB a chunk) for 10 chunks instead of 11.
MAX_CHUNK_BITS = 23
#: Chunk width is ceil(log2(n)) plus this: buckets of 1/4 to 1/2 of a row on average. Measured at
#: 1M: 22-bit chunks beat 20 and 21 (fewer candidates) and 23 (offsets twice the size).
_EXTRA_BITS = 2
#: Default delta size before a merge: a fixed floor (a rebuild at 10M takes seconds, so not too
#: often) and a fraction of the main segment (the delta scan costs ~0.7 ns per hash per query: at
#: 1/256 of 10 million, full, it adds ~30 us to a query that otherwise takes ~150 us on one core).
_DELTA_MIN = 32_768
_DELTA_FRACTION = 256
#: Results room per query on the first pass; queries with more are re-run with exact room.
_FIRST_CAP = 32
#: Queries per kernel call: bounds the output buffers (about 12 bytes x _FIRST_CAP per query).
_BATCH = 32_768
#: Cost model for choosing probing over scanning, in units of one probe (~10 ns: a bucket bound,
#: often a cache miss). A candidate costs ~4 (its position and its code, both cache misses), a
#: scanned hash ~0.07 (streamed and vectorised: ~0.7 ns). Measured on one core at 1M and 10M: at
#: 1M the crossover is between radius 44 and 48, at 10M near 55. Only speed depends on these; both
#: methods are exact.
_COST_PROBE = 1.0
_COST_CANDIDATE = 4.0
_COST_SCAN = 0.07
#: Never enumerate more than this many probe keys per chunk (memory for the mask list).
_MAX_MASKS = 1 << 22

Method = Literal["auto", "mih", "scan"]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]


def _auto_chunk_bits(n: int) -> int:
    return max(MIN_CHUNK_BITS, min(MAX_CHUNK_BITS, math.ceil(math.log2(max(n, 1))) + _EXTRA_BITS))


def _ro(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A read-only view. Every array handed to a kernel is read-only, in memory or memory-mapped
    alike, so numba compiles (and caches) one specialisation instead of one per combination."""
    v = a.view()
    v.flags.writeable = False
    return v


def _ball(bits: int, r: int) -> int:
    """Number of ``bits``-wide keys within Hamming radius ``r`` of a key."""
    return sum(math.comb(bits, k) for k in range(min(r, bits) + 1)) if r >= 0 else 0


@lru_cache(maxsize=16)
def _masks(bits: int, rmax: int) -> tuple[I64, I64]:
    """Probe masks up to radius ``rmax`` (popcount order) and their prefix counts per radius."""
    assert _kernels is not None
    masks = _kernels.combination_masks(bits, rmax)
    nmasks = np.array([_ball(bits, r) for r in range(rmax + 1)], dtype=np.int64)
    return _ro(masks), _ro(nmasks)


def _as_ids(ids: object, n: int | None) -> I64:
    """ids as a contiguous int64 array (``n``: the length it must have, if known)."""
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"ids must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        arr = arr.astype(np.int64)
    elif arr.dtype.kind == "u":
        if int(arr.max()) > np.iinfo(np.int64).max:
            raise ValueError("ids must fit in int64")
    elif arr.dtype.kind == "O":
        try:
            arr = np.array([operator.index(x) for x in arr.tolist()], dtype=np.int64)
        except (TypeError, OverflowError) as e:
            raise ValueError(f"ids must be int64 integers: {e}") from None
    elif arr.dtype.kind not in "i":
        raise ValueError(f"ids must be integers, got dtype {arr.dtype}")
    out = np.ascontiguousarray(arr, dtype=np.int64)
    if n is not None and out.shape[0] != n:
        raise ValueError(f"{n} hashes but {out.shape[0]} ids")
    return out


class PDQIndex:
    """Exact search for every stored PDQ hash within a Hamming distance of each query.

    ``merge_threshold``: delta rows that trigger a rebuild of the main segment (default: the larger
    of 32,768 and 1/256 of the main segment). ``chunk_bits``: force the chunk width (8..23) instead
    of choosing it from the size; for tests and experiments.
    """

    def __init__(self, *, merge_threshold: int | None = None, chunk_bits: int | None = None) -> None:
        if merge_threshold is not None and merge_threshold < 0:
            raise ValueError("merge_threshold must be >= 0")
        if chunk_bits is not None and not MIN_CHUNK_BITS <= chunk_bits <= MAX_CHUNK_BITS:
            raise ValueError(f"chunk_bits must be in {MIN_CHUNK_BITS}..{MAX_CHUNK_BITS}")
        self._merge_threshold = merge_threshold
        self._chunk_bits = chunk_bits
        self._set_main(np.empty((0, 4), np.uint64), np.empty(0, np.int64))
        self._reset_delta()

    # -- state -------------------------------------------------------------------------------------

    def _set_main(
        self,
        codes: U64,
        ids: I64,
        alive: npt.NDArray[np.bool_] | None = None,
        tables: tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], int] | None = None,
    ) -> None:
        """Install a main segment (ids sorted, unique); build its tables unless given."""
        n = codes.shape[0]
        if n >= np.iinfo(np.uint32).max:
            raise ValueError("at most 2**32 - 2 hashes per index")
        self._codes = codes
        self._ids = ids
        self._alive = np.ones(n, dtype=np.bool_) if alive is None else alive
        self._dead = int(n - np.count_nonzero(self._alive))
        if tables is None:
            bits = self._chunk_bits or _auto_chunk_bits(n)
            m = HASH_BITS // bits
            # Release the old tables before allocating new ones: peak memory is one set, not two.
            self._offsets = self._positions = np.empty((0, 0), np.uint32)
            offsets = np.empty((m, (1 << bits) + 1), dtype=np.uint32)
            positions = np.empty((m, n), dtype=np.uint32)
            (_kernels or _numpy).build_tables(_ro(codes), bits, offsets, positions)
            tables = (offsets, positions, bits)
        self._offsets, self._positions, self._bits = tables
        self._m = self._offsets.shape[0]

    def _reset_delta(self, capacity: int = 0) -> None:
        self._dcodes = np.empty((capacity, 4), dtype=np.uint64)
        self._dids = np.empty(capacity, dtype=np.int64)
        self._dalive = np.zeros(capacity, dtype=np.bool_)
        self._dn = 0
        self._dslot: dict[int, int] = {}

    @property
    def _n_main(self) -> int:
        return int(self._codes.shape[0])

    def _threshold(self) -> int:
        if self._merge_threshold is not None:
            return self._merge_threshold
        return max(_DELTA_MIN, self._n_main // _DELTA_FRACTION)

    def _append_delta(self, codes: U64, ids: I64) -> None:
        k = codes.shape[0]
        need = self._dn + k
        if need > self._dcodes.shape[0]:
            cap = max(need, 2 * self._dcodes.shape[0], 1024)
            old = (self._dcodes, self._dids, self._dalive, self._dn, self._dslot)
            self._reset_delta(cap)
            self._dcodes[: old[3]] = old[0][: old[3]]
            self._dids[: old[3]] = old[1][: old[3]]
            self._dalive[: old[3]] = old[2][: old[3]]
            self._dn, self._dslot = old[3], old[4]
        lo = self._dn
        self._dcodes[lo:need] = codes
        self._dids[lo:need] = ids
        self._dalive[lo:need] = True
        self._dslot.update(zip(ids.tolist(), range(lo, need), strict=True))
        self._dn = need

    def _remove_ids(self, ids: I64) -> int:
        """Tombstone each of ``ids`` (unique) wherever it is live; return how many were."""
        removed = 0
        n = self._n_main
        if n and ids.size:
            pos = np.minimum(np.searchsorted(self._ids, ids), n - 1)
            rows = pos[(self._ids[pos] == ids) & self._alive[pos]]
            self._alive[rows] = False
            self._dead += int(rows.size)
            removed += int(rows.size)
        if self._dslot and ids.size:
            if ids.size <= len(self._dslot):
                pop = self._dslot.pop
                slots = [s for s in (pop(i, None) for i in ids.tolist()) if s is not None]
            else:
                hit = np.flatnonzero(np.isin(self._dids[: self._dn], ids) & self._dalive[: self._dn])
                slots = [self._dslot.pop(i) for i in self._dids[hit].tolist()]
            self._dalive[slots] = False
            removed += len(slots)
        return removed

    def _rebuild(self, extra_codes: U64 | None = None, extra_ids: I64 | None = None) -> None:
        """Main (live rows) + delta (live rows) + extra -> a new main segment; empty delta."""
        parts_c: list[U64] = []
        parts_i: list[I64] = []
        if self._n_main - self._dead > 0:
            if self._dead:
                parts_c.append(self._codes[self._alive])
                parts_i.append(self._ids[self._alive])
            else:
                parts_c.append(self._codes)
                parts_i.append(self._ids)
        if self._dslot:
            live = np.flatnonzero(self._dalive[: self._dn])
            parts_c.append(self._dcodes[live])
            parts_i.append(self._dids[live])
        if extra_codes is not None and extra_ids is not None and extra_ids.size:
            parts_c.append(extra_codes)
            parts_i.append(extra_ids)
        if len(parts_i) == 1:
            codes, ids = parts_c[0], parts_i[0]
        elif parts_i:
            codes, ids = np.concatenate(parts_c), np.concatenate(parts_i)
        else:
            codes, ids = np.empty((0, 4), np.uint64), np.empty(0, np.int64)
        del parts_c, parts_i
        self._reset_delta()
        order = np.argsort(ids, kind="stable")
        ids = ids[order]
        codes = np.ascontiguousarray(codes[order])
        del order
        if ids.size > 1 and bool((ids[1:] == ids[:-1]).any()):  # pragma: no cover - an invariant
            raise AssertionError("duplicate ids in the index")
        self._codes = self._ids = np.empty(0)  # type: ignore[assignment]  # free before building
        self._set_main(codes, ids)

    # -- public API --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n_main - self._dead + len(self._dslot)

    def __repr__(self) -> str:
        return (
            f"PDQIndex({len(self)} hashes: main {self._n_main - self._dead} live of "
            f"{self._n_main} ({self._m} x {self._bits}-bit chunks), delta {len(self._dslot)})"
        )

    def ids(self) -> I64:
        """The live ids, ascending."""
        main = self._ids[self._alive] if self._dead else self._ids
        delta = self._dids[: self._dn][self._dalive[: self._dn]]
        return np.sort(np.concatenate([main, delta]))

    def add(self, hashes: object, ids: object) -> None:
        """Add hashes (hex strings or an ``(n, 32) uint8`` array) under int64 ids (any int64 value,
        negative included). An id already present is replaced; if one call repeats an id, its last
        occurrence wins."""
        codes8 = as_codes(hashes)
        id_arr = _as_ids(ids, codes8.shape[0])
        if id_arr.size == 0:
            return
        uniq, first_from_end = np.unique(id_arr[::-1], return_index=True)
        if uniq.size != id_arr.size:
            keep = np.sort(id_arr.size - 1 - first_from_end)
            codes8, id_arr = codes8[keep], id_arr[keep]
        self._remove_ids(id_arr)
        codes = codes8.view(np.uint64)
        if self._dn + id_arr.size > self._threshold():
            self._rebuild(codes, id_arr)
        else:
            self._append_delta(codes, id_arr)

    def remove(self, ids: object) -> int:
        """Remove the given ids (those not present are ignored); return how many were removed."""
        id_arr = np.unique(_as_ids(ids, None))
        removed = self._remove_ids(id_arr)
        n = self._n_main
        if self._dead > max(self._threshold(), n // 2):
            self._rebuild()  # mostly tombstones: reclaim the memory and the wasted probes
        return removed

    def merge(self) -> None:
        """Fold the delta segment and tombstones into a freshly built main segment now."""
        if self._dn or self._dead:
            self._rebuild()

    def search(
        self, queries: object, max_distance: int = 31, *, method: Method = "auto"
    ) -> list[list[tuple[int, int]]]:
        """For each query, ``(id, distance)`` of every stored hash within ``max_distance`` bits,
        sorted by distance, then id.

        ``queries``: hex strings or an ``(n, 32) uint8`` array (always a batch). ``method``:
        ``"auto"`` (by cost estimate), ``"mih"`` (always probe) or ``"scan"`` (always brute force);
        all three return the same results."""
        if method not in ("auto", "mih", "scan"):
            raise ValueError(f"unknown method {method!r}")
        q8 = as_codes(queries)
        d = operator.index(max_distance)
        if d < 0:
            raise ValueError("max_distance must be >= 0")
        d = min(d, HASH_BITS)
        nq = q8.shape[0]
        if nq == 0:
            return []
        if len(self) == 0:
            return [[] for _ in range(nq)]
        q = q8.view(np.uint64)
        radii = self._radii(d)
        use_mih = method == "mih" or (method == "auto" and self._mih_is_cheaper(radii))
        out: list[list[tuple[int, int]]] = []
        for s in range(0, nq, _BATCH):
            out.extend(self._search_batch(_ro(q[s : s + _BATCH]), d, radii if use_mih else None))
        return out

    # -- search internals --------------------------------------------------------------------------

    def _radii(self, d: int) -> I64:
        """Per-chunk probe radius for distance ``d`` (see the module docstring); -1: not probed."""
        r, a = divmod(d, self._m)
        radii = np.array([r if j <= a else r - 1 for j in range(self._m)], dtype=np.int64)
        return np.minimum(radii, self._bits)

    def _mih_is_cheaper(self, radii: I64) -> bool:
        n = self._n_main
        per_chunk = [_ball(self._bits, int(r)) for r in radii]
        if max(per_chunk) > _MAX_MASKS:
            return False
        probes = sum(per_chunk)
        candidates = probes * n / (1 << self._bits)
        return probes * _COST_PROBE + candidates * _COST_CANDIDATE < n * _COST_SCAN

    def _run(
        self,
        q: U64,
        d: int,
        radii: I64 | None,
        out_start: I64,
        out_ids: I64,
        out_dist: npt.NDArray[np.int32],
        counts: I64,
    ) -> None:
        nq = q.shape[0]
        n = self._n_main
        k = _kernels
        threads = k.get_threads() if k is not None else 1
        qblock = max(1, min(64, -(-nq // (4 * threads))))
        outs = (out_start, out_ids, out_dist, counts)
        if k is None:
            _numpy.search_scan(q, d, self._codes, self._alive, self._ids, n, qblock, *outs)
            _numpy.search_scan(q, d, self._dcodes, self._dalive, self._dids, self._dn, qblock, *outs)
            return
        alive = _ro(self._alive)
        if n - self._dead > 0:
            if radii is not None:
                masks, nmasks = _masks(self._bits, int(radii.max()))
                k.search_mih(
                    q, d, _ro(self._codes), alive, _ro(self._ids), _ro(self._offsets), _ro(self._positions),
                    self._bits, _ro(radii), masks, nmasks, qblock, *outs,
                )  # fmt: skip
            else:
                k.search_scan(q, d, _ro(self._codes), alive, _ro(self._ids), n, qblock, *outs)
        if self._dslot:
            k.search_scan(
                q, d, _ro(self._dcodes), _ro(self._dalive), _ro(self._dids), self._dn, qblock, *outs
            )

    def _search_batch(self, q: U64, d: int, radii: I64 | None) -> list[list[tuple[int, int]]]:
        nq = q.shape[0]
        cap = _FIRST_CAP
        out_ids = np.empty(nq * cap, dtype=np.int64)
        out_dist = np.empty(nq * cap, dtype=np.int32)
        counts = np.zeros(nq, dtype=np.int64)
        self._run(q, d, radii, np.arange(nq + 1, dtype=np.int64) * cap, out_ids, out_dist, counts)
        over = np.flatnonzero(counts > cap)
        keep = np.arange(cap)[None, :] < np.minimum(counts, cap)[:, None]
        keep[over] = False
        qidx = np.nonzero(keep)[0]
        ids = out_ids.reshape(nq, cap)[keep]
        dist = out_dist.reshape(nq, cap)[keep]
        if over.size:
            oc = counts[over]
            ostart = np.zeros(over.size + 1, dtype=np.int64)
            np.cumsum(oc, out=ostart[1:])
            o_ids = np.empty(int(ostart[-1]), dtype=np.int64)
            o_dist = np.empty(int(ostart[-1]), dtype=np.int32)
            o_counts = np.zeros(over.size, dtype=np.int64)
            self._run(_ro(np.ascontiguousarray(q[over])), d, radii, ostart, o_ids, o_dist, o_counts)
            if not np.array_equal(o_counts, oc):  # pragma: no cover - the kernels are deterministic
                raise AssertionError("search re-run disagrees with the first pass")
            qidx = np.concatenate([qidx, np.repeat(over, oc)])
            ids = np.concatenate([ids, o_ids])
            dist = np.concatenate([dist, o_dist])
        order = np.lexsort((ids, dist, qidx))
        pairs = list(zip(ids[order].tolist(), dist[order].tolist(), strict=True))
        bounds = [0, *np.cumsum(counts).tolist()]
        return [pairs[bounds[i] : bounds[i + 1]] for i in range(nq)]

    # -- persistence -------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to directory ``path``: raw ``.npy`` arrays and ``manifest.json``.

        Each file is written beside its final name and renamed over it, so saving over the
        directory an index was memory-mapped from does not pull the pages out from under it; the
        manifest goes last."""
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        live = np.flatnonzero(self._dalive[: self._dn])
        arrays: dict[str, npt.NDArray[Any]] = {
            "main_codes": self._codes.view(np.uint8).reshape(-1, CODE_BYTES),
            "main_ids": self._ids,
            "main_alive": self._alive,
            "main_offsets": self._offsets,
            "main_positions": self._positions,
            "delta_codes": self._dcodes[live].view(np.uint8).reshape(-1, CODE_BYTES),
            "delta_ids": self._dids[live],
        }
        for name, arr in arrays.items():
            tmp = p / f"{name}.npy.tmp"
            with open(tmp, "wb") as f:
                np.save(f, np.ascontiguousarray(arr), allow_pickle=False)
            os.replace(tmp, p / f"{name}.npy")
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "main_rows": int(self._n_main),
            "chunk_bits": int(self._bits),
            "chunks": int(self._m),
            "delta_rows": int(live.size),
            "live": len(self),
            "options": {"merge_threshold": self._merge_threshold, "chunk_bits": self._chunk_bits},
        }
        tmp = p / "manifest.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, p / "manifest.json")

    @classmethod
    def load(cls, path: str | os.PathLike[str], mmap: bool = True) -> PDQIndex:
        """Open an index written by :meth:`save`. Never unpickles (``allow_pickle=False``); with
        ``mmap`` the large arrays are memory-mapped read-only and pages load on first use.

        Raises ``ValueError`` for anything that is not a well-formed index of this format."""
        p = Path(path)
        try:
            manifest = json.loads((p / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{p}: not a PDQ index (manifest.json: {e})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError(f"{p}: not a PDQ index (manifest format)")
        if manifest.get("version") != FORMAT_VERSION:
            raise ValueError(f"{p}: PDQ index format version {manifest.get('version')!r} is not supported")
        try:
            n = _nonneg_int(manifest["main_rows"])
            bits = _nonneg_int(manifest["chunk_bits"])
            m = _nonneg_int(manifest["chunks"])
            k = _nonneg_int(manifest["delta_rows"])
            options = manifest.get("options") or {}
            merge_threshold = options.get("merge_threshold")
            chunk_bits = options.get("chunk_bits")
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ValueError(f"{p}: malformed manifest: {e!r}") from None
        if not MIN_CHUNK_BITS <= bits <= MAX_CHUNK_BITS or m != HASH_BITS // bits:
            raise ValueError(f"{p}: unsupported chunk geometry {m} x {bits} bits")
        mode: Literal["r"] | None = "r" if mmap else None

        def arr(name: str, dtype: type, shape: tuple[int, ...], mapped: bool = True) -> npt.NDArray[Any]:
            f = p / f"{name}.npy"
            try:
                a = np.load(f, mmap_mode=mode if mapped else None, allow_pickle=False)
            except (OSError, ValueError, EOFError) as e:
                raise ValueError(f"{f}: {e}") from None
            if not isinstance(a, np.ndarray) or a.dtype != np.dtype(dtype) or a.shape != shape:
                got = f"{a.dtype} {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
                raise ValueError(f"{f}: expected {np.dtype(dtype)} {shape}, got {got}")
            return np.asarray(a)

        codes = arr("main_codes", np.uint8, (n, CODE_BYTES)).view(np.uint64)
        ids = arr("main_ids", np.int64, (n,))
        alive = np.array(arr("main_alive", np.bool_, (n,), mapped=False))
        offsets = arr("main_offsets", np.uint32, (m, (1 << bits) + 1))
        positions = arr("main_positions", np.uint32, (m, n))
        dcodes = arr("delta_codes", np.uint8, (k, CODE_BYTES), mapped=False).view(np.uint64)
        dids = arr("delta_ids", np.int64, (k,), mapped=False)
        if n > 1 and not bool((ids[1:] > ids[:-1]).all()):
            raise ValueError(f"{p}: main ids are not strictly ascending")
        if not (_kernels or _numpy).check_tables(_ro(offsets), _ro(positions), n):
            raise ValueError(f"{p}: chunk tables are inconsistent")
        if np.unique(dids).size != k:
            raise ValueError(f"{p}: duplicate delta ids")
        if n and k:
            pos = np.minimum(np.searchsorted(ids, dids), n - 1)
            if bool(((ids[pos] == dids) & alive[pos]).any()):
                raise ValueError(f"{p}: an id is live in both segments")
        idx = cls.__new__(cls)
        idx._merge_threshold = merge_threshold if isinstance(merge_threshold, int) else None
        idx._chunk_bits = chunk_bits if isinstance(chunk_bits, int) else None
        idx._set_main(codes, ids, alive, (offsets, positions, bits))
        idx._reset_delta()
        if k:
            idx._append_delta(np.ascontiguousarray(dcodes), dids)
        return idx


def _nonneg_int(x: object) -> int:
    if not isinstance(x, int) or isinstance(x, bool) or x < 0:
        raise ValueError(f"expected a non-negative integer, got {x!r}")
    return x
