"""PDQIndex: exactly the brute-force answer, whatever the data, radius, history or storage.

All hashes here are random or synthetic (random centres with flipped bits); no real material.
"""

from __future__ import annotations

import json
import pickle
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meldpunt.index import PDQIndex, _index, _kernels, _numpy, codes_to_hex, hex_to_codes

Codes = np.ndarray[Any, np.dtype[np.uint8]]

# -- reference and data ----------------------------------------------------------------------------


def brute(codes: Codes, ids: np.ndarray[Any, Any], queries: Codes, d: int) -> list[list[tuple[int, int]]]:
    out = []
    for q in queries:
        dist = np.bitwise_count(codes ^ q).sum(axis=1, dtype=np.int64) if len(codes) else np.zeros(0)
        hits = np.flatnonzero(dist <= d)
        out.append(sorted(((int(ids[i]), int(dist[i])) for i in hits), key=lambda t: (t[1], t[0])))
    return out


def flip(rng: np.random.Generator, code: Codes, nbits: int) -> Codes:
    out = code.copy()
    for b in rng.choice(256, size=nbits, replace=False):
        out[b // 8] ^= np.uint8(1 << (b % 8))
    return out


def make_data(kind: str, n: int, rng: np.random.Generator) -> Codes:
    if kind == "random":
        return rng.integers(0, 256, (n, 32), dtype=np.uint8)
    if kind == "clustered":  # a few centres, many hashes a few bits away from one of them
        centres = rng.integers(0, 256, (int(rng.integers(1, 5)), 32), dtype=np.uint8)
        pick = rng.integers(0, len(centres), n)
        return np.array(
            [flip(rng, centres[c], int(rng.integers(0, 9))) for c in pick], dtype=np.uint8
        ).reshape(n, 32)
    # "duplicates": few distinct hashes, each stored under many ids (more than a query's first-pass room)
    distinct = rng.integers(0, 256, (max(1, n // 40), 32), dtype=np.uint8)
    return distinct[rng.integers(0, len(distinct), n)]


def make_queries(rng: np.random.Generator, codes: Codes, nq: int) -> Codes:
    qs = []
    for i in range(nq):
        if len(codes) and i % 3 != 2:
            qs.append(flip(rng, codes[rng.integers(0, len(codes))], int(rng.integers(0, 41))))
        else:
            qs.append(rng.integers(0, 256, 32, dtype=np.uint8))
    return np.array(qs, dtype=np.uint8).reshape(nq, 32)


def make_ids(rng: np.random.Generator, n: int) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Distinct ids spread over all of int64: negatives and values far above 2**40."""
    ids = np.unique(rng.integers(-(2**62), 2**62, n + 16, dtype=np.int64))[:n]
    rng.shuffle(ids)
    return ids


RADII = st.one_of(st.integers(0, 64), st.sampled_from([70, 90, 128, 200, 255, 256, 300]))
BITS = st.sampled_from([None, 8, 11, 13, 16])
FAST = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(idx: PDQIndex, codes: Codes, ids: Any, queries: Codes, radii: list[int]) -> None:
    for d in radii:
        want = brute(codes, np.asarray(ids), queries, d)
        methods = ["auto", "scan"] + (["mih"] if d <= 64 else [])
        for method in methods:
            got = idx.search(queries, d, method=method)  # type: ignore[arg-type]
            assert got == want, (d, method)


# -- properties ------------------------------------------------------------------------------------


@pytest.mark.slow
@FAST
@given(
    kind=st.sampled_from(["random", "clustered", "duplicates"]),
    n=st.integers(0, 400),
    seed=st.integers(0, 2**32 - 1),
    bits=BITS,
    radii=st.lists(RADII, min_size=1, max_size=4),
    merged=st.booleans(),
)
def test_search_equals_brute_force(
    kind: str, n: int, seed: int, bits: int | None, radii: list[int], merged: bool
) -> None:
    rng = np.random.default_rng(seed)
    codes = make_data(kind, n, rng)
    ids = make_ids(rng, n)
    idx = PDQIndex(chunk_bits=bits)
    idx.add(codes, ids)
    if merged:
        idx.merge()  # main segment (probed) instead of delta (scanned)
    assert len(idx) == n
    check(idx, codes, ids, make_queries(rng, codes, 12), radii)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["random", "clustered", "duplicates"]),
    seed=st.integers(0, 2**32 - 1),
    bits=BITS,
    threshold=st.integers(0, 60),
    ops=st.lists(
        st.tuples(
            st.sampled_from(["add", "replace", "remove", "readd", "merge", "save"]), st.integers(0, 50)
        ),
        min_size=1,
        max_size=10,
    ),
    radii=st.lists(RADII, min_size=1, max_size=3),
)
def test_history_equals_brute_force(
    kind: str, seed: int, bits: int | None, threshold: int, ops: list[tuple[str, int]], radii: list[int]
) -> None:
    """Interleaved adds, replacements, removals, re-adds, merges (automatic: a small threshold, and
    explicit) and save/load round trips: the index always answers like a brute force over the model."""
    rng = np.random.default_rng(seed)
    pool = make_data(kind, 600, rng)
    model: dict[int, bytes] = {}
    removed: list[int] = []
    next_id = -25
    idx = PDQIndex(merge_threshold=threshold, chunk_bits=bits)
    with tempfile.TemporaryDirectory() as tmp:
        for op, k in ops:
            if op == "add" or (op in ("replace", "remove") and not model) or (op == "readd" and not removed):
                new_ids = np.arange(next_id, next_id + k, dtype=np.int64) * (2**41 + 1)
                next_id += k
                batch = pool[rng.integers(0, len(pool), k)]
                idx.add(batch, new_ids)
                model.update(zip(new_ids.tolist(), map(bytes, batch), strict=True))
            elif op == "replace":  # existing ids, new hashes, and one repeated id in the same call
                chosen: Any = rng.choice(list(model), size=min(k + 1, len(model)), replace=False)
                batch = make_data("random", len(chosen), rng)
                idx.add([*codes_to_hex(batch), codes_to_hex(batch[:1])[0].upper()], [*chosen, chosen[0]])
                model.update(zip(chosen.tolist(), map(bytes, batch), strict=True))
            elif op == "remove":
                chosen = rng.choice(list(model), size=min(k, len(model)), replace=False).tolist()
                absent = [10**15 + i for i in range(3)]
                assert idx.remove(np.array(chosen + absent + chosen[:1], dtype=np.int64)) == len(chosen)
                for i in chosen:
                    del model[i]
                removed.extend(chosen)
            elif op == "readd":
                chosen = removed[: k + 1]
                del removed[: k + 1]
                batch = pool[rng.integers(0, len(pool), len(chosen))]
                idx.add(batch, chosen)
                model.update(zip(chosen, map(bytes, batch), strict=True))
            elif op == "merge":
                idx.merge()
            else:
                path = Path(tmp) / "idx"
                idx.save(path)
                idx = PDQIndex.load(path, mmap=bool(k % 2))
            assert len(idx) == len(model)
            assert idx.ids().tolist() == sorted(model)
        ids = np.array(list(model), dtype=np.int64)
        codes = np.frombuffer(b"".join(model.values()), dtype=np.uint8).reshape(-1, 32)
        queries = np.concatenate([make_queries(rng, codes, 8), pool[:2]])
        check(idx, codes, ids, queries, radii)


# -- the production geometry -----------------------------------------------------------------------


def test_23_bit_chunks_near_duplicates() -> None:
    """11 x 23-bit chunks (the 10-million geometry), including chunks that straddle 64-bit words."""
    rng = np.random.default_rng(7)
    codes = make_data("random", 3000, rng)
    ids = make_ids(rng, 3000)
    idx = PDQIndex(chunk_bits=23)
    idx.add(codes, ids)
    idx.merge()
    assert repr(idx).startswith("PDQIndex(3000 hashes: main 3000 live of 3000 (11 x 23-bit chunks)")
    check(idx, codes, ids, make_queries(rng, codes, 60), [0, 1, 10, 22, 23, 31, 32, 33, 44, 45])


def test_auto_geometry_and_cost_model() -> None:
    idx = PDQIndex()
    assert (_index._auto_chunk_bits(10_000_000), _index._auto_chunk_bits(1_000_000)) == (23, 22)
    rng = np.random.default_rng(3)
    idx.add(make_data("random", 20_000, rng), np.arange(20_000))
    idx.merge()
    assert idx._mih_is_cheaper(idx._radii(31))
    assert not idx._mih_is_cheaper(idx._radii(200))
    # radius 31 over 11 chunks: 10 chunks at radius 2 and one at radius 1
    idx._m = 11
    assert idx._radii(31).tolist() == [2] * 10 + [1]
    assert idx._radii(5).tolist() == [0] * 6 + [-1] * 5


# -- inputs ----------------------------------------------------------------------------------------


def test_hex_round_trip_any_case() -> None:
    rng = np.random.default_rng(1)
    codes = make_data("random", 5, rng)
    hexes = codes_to_hex(codes)
    assert all(h == h.lower() and len(h) == 64 for h in hexes)
    assert [bytes.fromhex(h) for h in hexes] == [bytes(c) for c in codes]
    assert np.array_equal(hex_to_codes(hexes), codes)
    assert np.array_equal(hex_to_codes([h.upper() for h in hexes]), codes)
    assert np.array_equal(hex_to_codes(h[:32].upper() + h[32:] for h in hexes), codes)
    assert hex_to_codes([]).shape == (0, 32)
    idx = PDQIndex()
    idx.add([h.upper() for h in hexes], [1, 2, 3, 4, 5])
    assert idx.search(hexes[:1], 0) == [[(1, 0)]]
    assert idx.search(np.array(hexes[1:2]), 0) == [[(2, 0)]]


@pytest.mark.parametrize(
    "bad",
    ["0" * 63, "0" * 65, "g" + "0" * 63, " " + "0" * 63, "0x" + "0" * 62, "é" + "0" * 63, 12],
)
def test_malformed_hex_names_the_index(bad: Any) -> None:
    good = "ab" * 32
    with pytest.raises(ValueError, match="hash 2"):
        hex_to_codes([good, good, bad, good])
    with pytest.raises(ValueError, match="hash 2"):
        PDQIndex().add([good, good, bad], [1, 2, 3])


def test_bad_arguments() -> None:
    idx = PDQIndex()
    with pytest.raises(TypeError):
        idx.search("ab" * 32)  # always a batch
    with pytest.raises(ValueError):
        idx.add(np.zeros((2, 31), np.uint8), [1, 2])
    with pytest.raises(ValueError):
        idx.add(np.zeros((2, 32), np.int64), [1, 2])
    with pytest.raises(ValueError, match="2 hashes but 1 ids"):
        idx.add(np.zeros((2, 32), np.uint8), [1])
    with pytest.raises(ValueError):
        idx.add(np.zeros((1, 32), np.uint8), [1.5])
    with pytest.raises(ValueError):
        idx.add(np.zeros((1, 32), np.uint8), np.array([2**63], dtype=np.uint64))
    with pytest.raises((ValueError, OverflowError)):
        idx.add(np.zeros((1, 32), np.uint8), [2**64])
    with pytest.raises(ValueError):
        idx.search(np.zeros((1, 32), np.uint8), -1)
    with pytest.raises(ValueError):
        idx.search(np.zeros((1, 32), np.uint8), 3, method="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PDQIndex(chunk_bits=24)


def test_empty_index_and_empty_batches(tmp_path: Path) -> None:
    idx = PDQIndex()
    q = np.zeros((3, 32), np.uint8)
    assert len(idx) == 0
    assert idx.ids().dtype == np.int64 and idx.ids().size == 0
    assert idx.search(q, 256) == [[], [], []]
    assert idx.search([], 31) == []
    assert idx.search(np.zeros((0, 32), np.uint8)) == []
    assert idx.remove([]) == 0 and idx.remove([5]) == 0
    idx.add([], [])
    idx.add(np.zeros((0, 32), np.uint8), np.zeros(0, np.int64))
    idx.save(tmp_path / "e")
    again = PDQIndex.load(tmp_path / "e")
    assert len(again) == 0 and again.search(q) == [[], [], []]
    again.add(q[:1], [9])
    assert again.search(q, 0) == [[(9, 0)]] * 3


def test_ids_extremes_negative_and_large() -> None:
    """Any int64 is an id: negatives, 0, values above 2**40, both ends of the range."""
    ids = [np.iinfo(np.int64).min, -(2**40) - 3, -1, 0, 2**40 + 7, np.iinfo(np.int64).max]
    codes = make_data("random", len(ids), np.random.default_rng(2))
    for merged in (False, True):
        idx = PDQIndex()
        idx.add(codes, ids)
        if merged:
            idx.merge()
        assert idx.ids().tolist() == sorted(ids)
        assert idx.search(codes, 0) == [[(i, 0)] for i in ids]
        assert idx.remove([ids[0], ids[-1], 12345]) == 2
        assert idx.search(codes[[0, -1]], 0) == [[], []]


def test_replace_and_duplicates_last_wins() -> None:
    rng = np.random.default_rng(5)
    a, b, c = make_data("random", 3, rng)
    idx = PDQIndex()
    idx.add(np.stack([a, a, a]), [1, 2, 3])  # one hash under three ids: all come back
    assert idx.search(a[None], 0) == [[(1, 0), (2, 0), (3, 0)]]
    idx.merge()
    idx.add(np.stack([b, c]), [2, 2])  # repeated id in one call: the last one wins
    assert idx.search(np.stack([a, b, c]), 0) == [[(1, 0), (3, 0)], [], [(2, 0)]]
    assert len(idx) == 3


def test_large_radius_many_results_per_query() -> None:
    """More results per query than the first pass has room for, in both segments."""
    rng = np.random.default_rng(11)
    codes = make_data("duplicates", 500, rng)
    ids = make_ids(rng, 500)
    idx = PDQIndex(merge_threshold=100)
    idx.add(codes[:400], ids[:400])
    idx.add(codes[400:], ids[400:])  # stays in the delta
    check(idx, codes, ids, np.concatenate([codes[:3], make_queries(rng, codes, 3)]), [0, 40, 256])


def test_buckets_larger_than_the_candidate_buffer() -> None:
    """Thousands of rows in one bucket (copies and near-copies): the candidate buffer fills, is
    verified and refilled, one bucket goes through in pieces, and queries overflow their first-pass
    room."""
    rng = np.random.default_rng(13)
    centres = make_data("random", 3, rng)
    copies = np.repeat(centres, [2500, 1500, 700], axis=0)
    near = np.array([flip(rng, centres[i % 3], int(rng.integers(1, 4))) for i in range(900)])
    codes = np.concatenate([copies, near, make_data("random", 800, rng)])
    ids = make_ids(rng, len(codes))
    idx = PDQIndex(chunk_bits=8)
    idx.add(codes, ids)
    idx.merge()
    assert _kernels.CAND_CAP < 2500
    queries = np.concatenate([centres, [flip(rng, c, 5) for c in centres], make_queries(rng, codes, 3)])
    check(idx, codes, ids, queries, [0, 3, 31, 40])


# -- persistence -----------------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    codes = make_data("clustered", 900, rng)
    ids = make_ids(rng, 900)
    idx = PDQIndex(merge_threshold=50)
    idx.add(codes[:800], ids[:800])
    idx.remove(ids[:10])
    idx.add(codes[800:], ids[800:])
    idx.remove(ids[850:860])
    keep = np.ones(900, bool)
    keep[:10] = keep[850:860] = False
    queries = make_queries(rng, codes[keep], 20)
    want = brute(codes[keep], ids[keep], queries, 31)
    idx.save(tmp_path / "i")
    manifest = json.loads((tmp_path / "i" / "manifest.json").read_text())
    assert (manifest["format"], manifest["version"], manifest["live"]) == ("meldpunt.pdq-index", 1, 880)
    for mmap in (True, False):
        loaded = PDQIndex.load(tmp_path / "i", mmap=mmap)
        assert loaded.search(queries, 31) == want
        assert loaded.ids().tolist() == sorted(ids[keep].tolist())
    # mutate a memory-mapped index and save it over the files it is mapped from
    loaded = PDQIndex.load(tmp_path / "i", mmap=True)
    loaded.remove(ids[10:20])
    keep[10:20] = False
    loaded.save(tmp_path / "i")
    assert loaded.search(queries, 31) == brute(codes[keep], ids[keep], queries, 31)
    assert PDQIndex.load(tmp_path / "i").search(queries, 31) == brute(codes[keep], ids[keep], queries, 31)


unpickled: list[str] = []


def _record_unpickling() -> str:
    unpickled.append("yes")
    return "payload"


class _Payload:
    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (_record_unpickling, ())


@pytest.mark.parametrize("target", ["main_ids.npy", "main_codes.npy", "delta_ids.npy", "manifest.json"])
@pytest.mark.parametrize("how", ["object-npy", "raw-pickle"])
@pytest.mark.parametrize("mmap", [True, False])
def test_load_never_unpickles(tmp_path: Path, target: str, how: str, mmap: bool) -> None:
    idx = PDQIndex()
    idx.add(make_data("random", 4, np.random.default_rng(0)), [1, 2, 3, 4])
    idx.merge()
    idx.save(tmp_path)
    if how == "object-npy":
        with open(tmp_path / target, "wb") as f:  # a file handle: np.save would append ".npy" to a name
            np.save(f, np.array([_Payload()] * 4, dtype=object), allow_pickle=True)
    else:
        (tmp_path / target).write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(ValueError):
        PDQIndex.load(tmp_path, mmap=mmap)
    assert unpickled == []


def test_load_refuses_inconsistent_files(tmp_path: Path) -> None:
    idx = PDQIndex()
    idx.add(make_data("random", 50, np.random.default_rng(0)), np.arange(50))
    idx.merge()
    idx.save(tmp_path)
    positions = np.load(tmp_path / "main_positions.npy")
    positions[0, 0] = 50  # a row that does not exist: would read out of bounds
    np.save(tmp_path / "main_positions.npy", positions)
    with pytest.raises(ValueError, match="inconsistent"):
        PDQIndex.load(tmp_path)
    idx.save(tmp_path)
    np.save(tmp_path / "main_ids.npy", np.arange(50)[::-1].copy())
    with pytest.raises(ValueError, match="ascending"):
        PDQIndex.load(tmp_path)
    idx.save(tmp_path)
    np.save(tmp_path / "main_codes.npy", np.zeros((50, 32), np.int8))
    with pytest.raises(ValueError, match="expected uint8"):
        PDQIndex.load(tmp_path)
    idx.save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "version": 99}))
    with pytest.raises(ValueError, match="version"):
        PDQIndex.load(tmp_path)
    with pytest.raises(ValueError, match="not a PDQ index"):
        PDQIndex.load(tmp_path / "nowhere")


# -- the numpy fallback ----------------------------------------------------------------------------


def test_numpy_fallback_is_exact(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without numba the index still answers exactly (brute force); tables built either way agree."""
    rng = np.random.default_rng(4)
    codes = make_data("clustered", 700, rng)
    ids = make_ids(rng, 700)
    words = codes.view(np.uint64)
    for bits in (8, 13, 17):
        m = 256 // bits
        tables = [(np.empty((m, (1 << bits) + 1), np.uint32), np.empty((m, 700), np.uint32)) for _ in "ab"]
        _numpy.build_tables(words, bits, *tables[0])
        _kernels.build_tables(_index._ro(words), bits, *tables[1])
        assert np.array_equal(tables[0][0], tables[1][0]) and np.array_equal(tables[0][1], tables[1][1])
        offsets, positions = (_index._ro(t) for t in tables[0])
        assert _numpy.check_tables(offsets, positions, 700) and _kernels.check_tables(offsets, positions, 700)
    queries = make_queries(rng, codes, 15)
    with_numba = PDQIndex()
    with_numba.add(codes, ids)
    with_numba.merge()
    with_numba.save(tmp_path)
    monkeypatch.setattr(_index, "_kernels", None)
    idx = PDQIndex(merge_threshold=100)
    idx.add(codes[:600], ids[:600])
    idx.add(codes[600:], ids[600:])
    check(idx, codes, ids, queries, [0, 12, 31, 64, 256])
    assert PDQIndex.load(tmp_path).search(queries, 31) == brute(codes, ids, queries, 31)
