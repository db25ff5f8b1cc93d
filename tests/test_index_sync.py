"""The saved PDQ index beside the database: small imports go to a small delta file, the big base
is rewritten only when the delta has grown past its share (or entries were deleted); a delta cut
short is read again from the database. Synthetic hashes only."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from meldpunt.banks.formats.base import HashRecord
from meldpunt.domain import Labels, SignalType
from meldpunt.pipeline import index_sync
from meldpunt.pipeline.index_sync import PersistentPDQIndex
from meldpunt.store.banks import BankRepository
from meldpunt.store.db import create_db_engine

RNG = random.Random(2026)


def _hashes(n: int) -> list[str]:
    return [f"{RNG.getrandbits(256):064x}" for _ in range(n)]


def _import(repo: BankRepository, bank: str, hexes: list[str]) -> None:
    repo.import_records(
        bank,
        [HashRecord(SignalType.PDQ, h, Labels()) for h in hexes],
        source_name=f"{bank}.txt",
        source_sha256=f"{RNG.getrandbits(256):064x}",
        fmt="plain",
    )


def _base_times(store: PersistentPDQIndex) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in store.path.iterdir()}


def _found(store: PersistentPDQIndex, hexes: list[str]) -> bool:
    index, _ = store.open()
    return all(hits and hits[0][1] == 0 for hits in index.search(hexes, 0))


def test_small_imports_go_to_the_delta_and_the_base_stays(
    sqlite_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = BankRepository(create_db_engine(sqlite_db))
    base_hashes = _hashes(3000)
    _import(repo, "big", base_hashes)
    first = PersistentPDQIndex(repo)
    index, report = first.open()
    assert report.size == 3000 and not first.delta_path.exists()
    base = _base_times(first)

    # a final classification adds a few hashes: another process sees them, the base is untouched
    own = _hashes(3)
    _import(repo, "hotline-own", own)
    other = PersistentPDQIndex(repo)
    _, report = other.open()
    assert report.added == 3 and report.size == 3003
    assert _base_times(other) == base
    assert len(np.load(other.delta_path)) == 3
    more = _hashes(2)
    _import(repo, "hotline-own", more)
    assert _found(PersistentPDQIndex(repo), own + more + base_hashes[:5])
    assert _base_times(other) == base and len(np.load(other.delta_path)) == 5

    # nothing new: nothing written
    delta_time = other.delta_path.stat().st_mtime_ns
    _, report = PersistentPDQIndex(repo).open()
    assert report.added == 0 and other.delta_path.stat().st_mtime_ns == delta_time

    # a delta cut short (or overtaken by another process) is read again from the database
    np.save(other.delta_path, np.load(other.delta_path)[:2])
    assert _found(PersistentPDQIndex(repo), own + more)
    assert len(np.load(other.delta_path)) == 5

    # past its share the delta is folded into a new base
    monkeypatch.setattr(index_sync, "DELTA_MIN", 10)
    monkeypatch.setattr(index_sync, "DELTA_SHARE", 0.0)
    extra = _hashes(8)
    _import(repo, "hotline-own", extra)
    store = PersistentPDQIndex(repo)
    assert _found(store, extra + own + more + base_hashes[-5:])
    assert not store.delta_path.exists() and _base_times(store) != base

    # a deletion bumps the epoch: rebuilt from the database, the deleted bank's hashes gone
    repo.delete_bank("big")
    index, report = PersistentPDQIndex(repo).open()
    assert report.size == 13 and index.search(base_hashes[:3], 0) == [[], [], []]


def test_a_delta_file_is_never_unpickled(sqlite_db: str) -> None:
    repo = BankRepository(create_db_engine(sqlite_db))
    _import(repo, "a", _hashes(10))
    store = PersistentPDQIndex(repo)
    store.open()
    _import(repo, "b", _hashes(2))
    store.open()
    Path(store.delta_path).write_bytes(b"\x80\x04not an array")  # hostile bytes where the delta was
    index, _ = PersistentPDQIndex(repo).open()
    assert len(index) == 12


def _flip(pdq: str, bits: int) -> str:
    value = int(pdq, 16)
    for b in RNG.sample(range(256), bits):
        value ^= 1 << b
    return f"{value:064x}"


def test_near_matches_beyond_a_banks_threshold_are_hints_only(sqlite_db: str) -> None:
    """An image an analyst must review is shown with entries of any bank farther than that bank's
    threshold but within the hint distance; they never make it known."""
    from meldpunt.pipeline.matching import Matcher
    from meldpunt.pipeline.walk import medium_outcome
    from meldpunt.settings import Settings
    from meldpunt.signals import MediaKind, Signals

    repo = BankRepository(create_db_engine(sqlite_db))
    [query] = _hashes(1)
    close, farther, far = _flip(query, 38), _flip(query, 47), _flip(query, 70)
    _import(repo, "auto-list", [close, farther, far])
    repo.configure("auto-list", policy="auto")
    index, _ = PersistentPDQIndex(repo).open()
    settings = Settings(db=sqlite_db)
    matcher = Matcher(repo, index, settings)
    signals = Signals("x.png", 1, "", "", "", MediaKind.IMAGE, pdq=query, pdq_quality=100)
    matches = matcher.match(signals)
    assert matches == [] and medium_outcome(matches, signals)[0].value == "new"
    hints = matcher.near(signals, settings.pdq_hint_distance)
    assert [(h.distance, h.near, h.policy) for h in hints] == [(38, True, "auto"), (47, True, "auto")]
    assert hints[0].to_json_dict()["near"] is True
    assert matcher.near(signals, 0) == []


def test_threads_of_one_process_saving_the_index_at_once_do_not_trip_over_each_other(
    sqlite_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The web's matcher and the serve's worker threads share a pid: their temporary files must not
    (one thread's rmtree or rename took another's half-written index: "could not save")."""
    import shutil
    import threading

    repo = BankRepository(create_db_engine(sqlite_db))
    hexes = _hashes(2000)
    _import(repo, "big", hexes)
    path = PersistentPDQIndex(repo).path
    caplog.set_level("WARNING", logger="meldpunt.pipeline.index_sync")
    for _ in range(6):
        shutil.rmtree(path, ignore_errors=True)  # every thread rebuilds and saves the whole index
        start = threading.Barrier(4)

        def open_one(start: threading.Barrier) -> None:
            start.wait()
            PersistentPDQIndex(repo).open()

        threads = [threading.Thread(target=open_one, args=(start,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        _, report = PersistentPDQIndex(repo).open()
        assert report.loaded and not report.rebuilt and report.size == 2000
    assert not [r for r in caplog.records if "could not save" in r.getMessage()]
    assert _found(PersistentPDQIndex(repo), hexes[:10])
