"""The bank repository on real databases: SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import func, select

from meldpunt.banks.formats import HashRecord, get_format
from meldpunt.domain import Labels, SignalType
from meldpunt.store.banks import BankError, BankRepository, ImportRejected, ImportResult
from meldpunt.store.db import create_db_engine, table_names
from meldpunt.store.models import LabelSet


def _hex(i: int, n: int = 32) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()[: n * 2]


@pytest.fixture
def repo(db_url: str) -> BankRepository:
    return BankRepository(create_db_engine(db_url))


def _records(n: int, st: SignalType = SignalType.MD5, labels: Labels | None = None) -> list[HashRecord]:
    size = {SignalType.MD5: 16, SignalType.SHA1: 20}.get(st, 32)
    return [HashRecord(st, _hex(i, size), labels or Labels(), i + 1) for i in range(n)]


def _import(repo: BankRepository, name: str, records: Sequence[object], **kw: Any) -> ImportResult:
    return repo.import_records(
        name, records, source_name="list.txt", source_sha256="ab" * 32, fmt="plain", **kw
    )


@pytest.mark.empty_db  # the migrations themselves, from nothing
def test_new_database_is_migrated_and_reopens(db_url: str) -> None:
    engine = create_db_engine(db_url)
    assert {"banks", "bank_entries", "bank_imports", "label_sets", "meta"} <= set(table_names(engine))
    create_db_engine(db_url)  # second open: nothing to do, no error


def test_import_counts_and_provenance(repo: BankRepository) -> None:
    labels = Labels(category="demo-A", baseline=True, tags=("x",))
    r = _import(repo, "known", [*_records(30, labels=labels), *_records(5, SignalType.PDQ, labels)])
    assert r.entries == 35 and r.skipped == 0  # type: ignore[attr-defined]
    info = repo.get_bank("known")
    assert info.entries == 35 and info.by_type == {"md5": 30, "pdq": 5} and info.policy == "auto"
    (imp,) = repo.imports("known")
    assert imp["source_name"] == "list.txt" and imp["source_sha256"] == "ab" * 32 and imp["entry_count"] == 35
    # 35 entries, one set of labels stored once
    with repo.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(LabelSet)).scalar_one() == 1


def test_append_is_default_and_duplicates_are_relabelled_not_doubled(repo: BankRepository) -> None:
    _import(repo, "b", _records(10, labels=Labels(category="old")))
    _import(repo, "b", _records(15, labels=Labels(category="new")))
    assert repo.get_bank("b").entries == 15
    cats = {lab.category for _, _, lab in repo.export_entries("b")}
    assert cats == {"new"}
    _import(repo, "b", _records(3), replace=True)
    assert repo.get_bank("b").entries == 3


def test_malformed_lines_are_skipped_with_line_numbers_or_reject_everything(repo: BankRepository) -> None:
    data = b"# a comment\n" + _hex(1, 16).encode() + b"\nnot-a-hash\n" + _hex(2, 16).encode() + b"\nzz\n"
    fmt = get_format("plain")
    r = _import(repo, "p", list(fmt.read(io.BytesIO(data))))
    assert r.entries == 2 and [e.line for e in r.errors] == [3, 5]  # type: ignore[attr-defined]
    with pytest.raises(ImportRejected, match="line 3"):
        _import(repo, "strict", list(fmt.read(io.BytesIO(data))), strict=True)
    assert "strict" not in {b.name for b in repo.list_banks()}  # nothing half-imported


def test_lookup_exact_filters_by_bank(repo: BankRepository) -> None:
    _import(repo, "one", _records(5))
    _import(repo, "two", _records(3), policy="ignore")
    target = (SignalType.MD5, _hex(1, 16))
    assert sorted(h.bank for h in repo.lookup_exact([target])) == ["one", "two"]
    (hit,) = repo.lookup_exact([target], ["two"])
    assert hit.policy == "ignore" and hit.value == _hex(1, 16)
    assert repo.lookup_exact([(SignalType.MD5, "0" * 32)]) == []


def test_vpdq_values_are_kept_whole(repo: BankRepository) -> None:
    frames = ",".join(f'{{"hash":"{_hex(i)}","quality":90,"timestamp":{i}.0}}' for i in range(400))
    value = get_format("te")
    recs = list(value.read(io.BytesIO(f"vpdq [{frames}]\n".encode())))
    _import(repo, "videos", recs)
    ((st, stored, _),) = list(repo.export_entries("videos"))
    assert st is SignalType.VPDQ and len(stored) > 30_000  # far beyond an index row's limit
    (hit,) = repo.lookup_exact([(SignalType.VPDQ, stored)])
    assert hit.value == stored


def test_delete_bank_bumps_pdq_epoch_only_when_pdq_went(repo: BankRepository) -> None:
    _import(repo, "md5s", _records(3))
    _import(repo, "pdqs", _records(3, SignalType.PDQ))
    assert repo.counter("pdq_epoch") == 0
    assert repo.delete_bank("md5s") == 3
    assert repo.counter("pdq_epoch") == 0
    repo.delete_bank("pdqs")
    assert repo.counter("pdq_epoch") == 1
    with pytest.raises(BankError, match="no bank named"):
        repo.delete_bank("pdqs")


def test_bank_settings_are_validated(repo: BankRepository) -> None:
    _import(repo, "b", _records(1))
    repo.configure("b", policy="hint", pdq_threshold=20, description="partner list")
    b = repo.get_bank("b")
    assert (b.policy, b.pdq_threshold, b.description) == ("hint", 20, "partner list")
    with pytest.raises(BankError, match="policy"):
        repo.configure("b", policy="sometimes")
    with pytest.raises(BankError, match="threshold"):
        repo.configure("b", pdq_threshold=300)
