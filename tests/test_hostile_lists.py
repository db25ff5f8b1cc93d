"""Hostile lists and bodies cost nothing: depth limits in bounded memory, clear 400s, output a
terminal cannot be steered by, an import and its audit entry in one transaction, and bank
policies that are chosen, never defaulted.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from meldpunt.audit import AuditLog
from meldpunt.banks.formats import HashRecord, LineError, ListFormatError, get_format
from meldpunt.cli import app
from meldpunt.domain import Labels
from meldpunt.domain.jsonlimits import JsonTooDeep, check_depth, loads
from meldpunt.domain.signals import InvalidSignal, SignalType, normalise_signal
from meldpunt.store.banks import BankRepository
from meldpunt.store.db import create_db_engine
from meldpunt.store.models import BankImport
from tests.helpers.banks import repo, upload
from tests.helpers.webclient import WebClient
from tests.helpers.workspace import Workspace, _workspace

runner = CliRunner()
DEPTH = 100_000
VICS_HEAD = b'{"odata.metadata": "http://github.com/ICMEC/ProjectVic/DataModels/1.2.xml#Media", "value": ['
#: what a kernel would let the import grow to before it is stopped (the original took 23 GB)
RSS_BUDGET_MB = 300


def deep_vics() -> bytes:
    """About 200 KB: one Media entry nested 100,000 arrays deep."""
    return VICS_HEAD + b"[" * DEPTH + b"]" * DEPTH + b"]}"


def md5(n: int) -> str:
    return hashlib.md5(f"benign hostile-list test {n}".encode()).hexdigest()


# -- depth limits ------------------------------------------------------------------------------------


def test_check_depth_counts_only_brackets_outside_strings() -> None:
    doc = '["[[[[[[", "\\"[[[[", {"a": [1, [2]]}]'  # 4 deep; the strings' brackets do not count
    check_depth(doc, 4)
    with pytest.raises(JsonTooDeep):
        check_depth(doc, 3)
    with pytest.raises(JsonTooDeep):
        check_depth("[[[[1]]]]", 3)
    with pytest.raises(JsonTooDeep):
        check_depth(b'["\\\\", [[[1]]]]', 3)  # an escaped backslash ends the string
    assert loads("[" * 64 + "]" * 64) == loads("[" * 64 + "]" * 64)
    with pytest.raises(ValueError, match="deeper than 64"):
        loads("[" * DEPTH + "]" * DEPTH)


def test_a_vpdq_value_nested_deep_is_an_invalid_signal_not_a_crash() -> None:
    with pytest.raises(InvalidSignal):
        normalise_signal(SignalType.VPDQ, "[" * DEPTH + "]" * DEPTH)


def test_a_csv_vics_cell_nested_deep_is_a_line_error() -> None:
    import io

    cell = "[" * DEPTH + "]" * DEPTH
    data = f"md5,vics\n{md5(1)},{cell}\n{md5(2)},\n".encode()
    got = list(get_format("csv").read(io.BytesIO(data)))
    assert isinstance(got[0], LineError) and "deeper than" in got[0].message
    assert isinstance(got[1], HashRecord)


def test_a_deeply_nested_vics_file_is_refused_by_the_parser() -> None:
    import io

    with pytest.raises(ListFormatError, match="nested deeper than 64"):
        list(get_format("vics").read(io.BytesIO(deep_vics())))
    # deep outside the value list too
    doc = VICS_HEAD[:-11] + b'"x": ' + b"[" * DEPTH + b"]" * DEPTH + b', "value": []}'
    with pytest.raises(ListFormatError, match="nested deeper than 64"):
        list(get_format("vics").read(io.BytesIO(doc)))


_CHILD = """
import resource, sys
limit = 3 << 30  # if the parser runs away, it fails here instead of taking the machine
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from meldpunt.cli import main
sys.argv = ["meldpunt", "--db", sys.argv[1], "bank", "import", "--policy", "hint", "deep", sys.argv[2]]
code = 0
try:
    main()
except SystemExit as e:
    code = e.code
except MemoryError:
    code = 99
# VmHWM: this program's own peak; ru_maxrss would carry the forking test process's size over exec
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print("MAXRSS_KB", hwm.split()[1], file=sys.stderr)
sys.exit(code)
"""


def test_bank_import_of_a_deeply_nested_vics_file_stays_in_bounded_memory(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_bytes(deep_vics())
    assert 190_000 < deep.stat().st_size < 210_000
    db = tmp_path / "m.db"
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(db), str(deep)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    rss_mb = int(proc.stderr.rsplit("MAXRSS_KB", 1)[1].split()[0]) / 1024
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "nested deeper than 64 levels" in proc.stderr and "nothing was imported" in proc.stderr
    assert rss_mb < RSS_BUDGET_MB, f"peak RSS {rss_mb:.0f} MB"
    assert "deep" not in {b.name for b in BankRepository(create_db_engine(str(db))).list_banks()}


@pytest.fixture
def ws(db_url: str) -> Iterator[Workspace]:
    with ExitStack() as stack:
        yield _workspace(db_url, stack)


def test_the_web_import_of_a_deeply_nested_vics_file_answers_400(ws: Workspace) -> None:
    senior = ws.user("sen", "senior")
    r = upload(senior, "deep", deep_vics(), "deep.json")
    assert r.status_code == 400 and "nested deeper than 64 levels" in r.text
    assert "deep" not in {b.name for b in repo(ws).list_banks()}


def test_the_match_api_refuses_deep_json_with_400(client: WebClient, auth: dict[str, str]) -> None:
    headers = {**auth, "content-type": "application/json"}
    r = client.post("/api/v1/match", content=b"[" * DEPTH + b"]" * DEPTH, headers=headers)
    assert r.status_code == 400 and "deeper than 64" in r.json()["detail"]
    body = {"hashes": [{"type": "md5", "value": md5(1)}], "x": json.loads("[" * 60 + "]" * 60)}
    r = client.post("/api/v1/match", content=json.dumps(body), headers=headers)
    assert r.status_code != 400  # deep, but within the limit: judged on its content as before


# -- what a terminal shows ---------------------------------------------------------------------------


def test_list_text_is_neither_rich_markup_nor_escape_sequences_and_the_import_is_audited(
    db_url: str, tmp_path: Path
) -> None:
    lst = tmp_path / "hostile.txt"
    lst.write_bytes(
        (md5(1) + "\nzz[/]\n\x1b]52;c;ZXZpbA==\x07\x1b[2J[bold red]boo\n" + md5(2) + "\n").encode()
    )
    result = runner.invoke(
        app, ["--db", db_url, "bank", "import", "--policy", "hint", "h", str(lst)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    err = result.stderr
    assert "zz[/]" in err and "[bold red]boo" in err  # shown as text, not read as markup
    assert "\x1b" not in err and "\x07" not in err
    assert "\\x1b]52;c;ZXZpbA==\\x07\\x1b[2J" in err  # visible escapes instead
    assert "imported 2 entries" in err
    engine = create_db_engine(db_url)
    (entry,) = AuditLog(engine).entries(action="bank.import")
    assert entry.subject == "bank:h" and entry.details["entries"] == 2 and entry.details["skipped"] == 2


def test_an_import_whose_audit_entry_fails_is_not_kept(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lst = tmp_path / "l.txt"
    lst.write_text(md5(1) + "\n")

    def broken(*args: object) -> None:
        raise RuntimeError("the audit log is unavailable")

    monkeypatch.setattr("meldpunt.triage.banks.record", broken)  # the bank service audits
    with pytest.raises(RuntimeError, match="audit log"):
        runner.invoke(
            app, ["--db", db_url, "bank", "import", "--policy", "hint", "b", str(lst)], catch_exceptions=False
        )
    engine = create_db_engine(db_url)
    assert BankRepository(engine).list_banks() == []
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(BankImport)).scalar() == 0


# -- policies are chosen; nothing comes of nothing ---------------------------------------------------


def test_a_new_bank_needs_a_chosen_policy(db_url: str, tmp_path: Path) -> None:
    lst = tmp_path / "l.txt"
    lst.write_text(md5(1) + "\n")
    result = runner.invoke(app, ["--db", db_url, "bank", "import", "new", str(lst)])
    assert result.exit_code == 2
    assert all(p in result.stderr for p in ("--policy", "auto", "hint", "ignore"))
    repo_ = BankRepository(create_db_engine(db_url))
    assert repo_.list_banks() == []
    assert (
        runner.invoke(app, ["--db", db_url, "bank", "import", "--policy", "nope", "new", str(lst)]).exit_code
        == 2
    )
    assert (
        runner.invoke(
            app, ["--db", db_url, "bank", "import", "--policy", "ignore", "new", str(lst)]
        ).exit_code
        == 0
    )
    assert repo_.get_bank("new").policy == "ignore"
    # an existing bank keeps its policy without being told again
    lst.write_text(md5(2) + "\n")
    assert runner.invoke(app, ["--db", db_url, "bank", "import", "new", str(lst)]).exit_code == 0
    assert (repo_.get_bank("new").policy, repo_.get_bank("new").entries) == ("ignore", 2)


def test_an_import_of_nothing_creates_nothing(db_url: str, tmp_path: Path) -> None:
    engine = create_db_engine(db_url)
    repo_ = BankRepository(engine)
    lst = tmp_path / "l.te"
    for content in ("", "# only a comment\n", "not a hash\n", "url https://example.invalid/\nraw_text w\n"):
        lst.write_text(content)
        result = runner.invoke(app, ["--db", db_url, "bank", "import", "--policy", "auto", "empty", str(lst)])
        assert result.exit_code == 1 and "no bank was created" in result.stderr, result.stderr
        assert repo_.list_banks() == []
    assert "raw_text 1, url 1" in result.stderr  # skipped types are named, never silently dropped
    repo_.import_records(
        "kept",
        [HashRecord(SignalType.MD5, md5(1), Labels())],
        source_name="a",
        source_sha256="",
        fmt="plain",
        policy="hint",
    )
    result2 = repo_.import_records("kept", [], source_name="b", source_sha256="", fmt="plain")
    assert result2.import_id == 0 and result2.entries == 0
    assert len(repo_.imports("kept")) == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(BankImport)).scalar() == 1
    assert AuditLog(engine).entries(action="bank.import") == []


def test_the_web_import_needs_a_chosen_policy_for_a_new_bank(ws: Workspace) -> None:
    senior = ws.user("sen", "senior")
    r = upload(senior, "fresh", (md5(1) + "\n").encode(), policy="")
    assert r.status_code == 400
    assert "auto, hint, ignore" in r.text
    assert "fresh" not in {b.name for b in repo(ws).list_banks()}
    page = senior.get("/banks").text
    assert '<option value="" selected>' in page  # no policy is preselected
    assert upload(senior, "fresh", (md5(1) + "\n").encode(), policy="ignore").status_code == 200
    assert repo(ws).get_bank("fresh").policy == "ignore"
    # a dataset of only types we do not match imports nothing and says why
    r = upload(senior, "fresh", b"url https://example.invalid/\n", "s.txt")
    assert r.status_code == 400 and "url 1" in r.text


def test_scan_shows_a_hostile_lists_labels_as_text(sqlite_db: str, tmp_path: Path) -> None:
    from tests.helpers.imagegen import save_scene

    image = tmp_path / "scene.png"
    save_scene(image, 3)
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    lst = tmp_path / "labels.csv"
    lst.write_text(f'sha256,category,series\r\n{digest},"zz[/]","\x1b]0;pwned\x07[link=x]y"\r\n')
    db = ["--db", sqlite_db]
    assert runner.invoke(app, [*db, "bank", "import", "--policy", "hint", "h", str(lst)]).exit_code == 0
    result = runner.invoke(app, [*db, "scan", str(image)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    out = result.stdout.replace("\n", "").replace(" ", "").replace("│", "")
    assert "category=zz[/]" in out and "\\x1b]0;pwned\\x07[link=x]y" in out
    assert "\x1b" not in result.stdout


def test_a_vics_case_is_read_one_media_at_a_time() -> None:
    """A Cases document is one item holding every Media: reading it must not build the whole Case
    (nor the MediaFiles, which are dropped anyway)."""
    import io
    import tracemalloc

    n = 10_000
    files = [{"FileName": f"f{i}.jpg", "FilePath": "x/" * 50, "MD5": "0" * 32} for i in range(20)]
    media = [{"MediaID": i, "MD5": md5(i), "Category": 0, "MediaFiles": files} for i in range(n)]
    doc = json.dumps(
        {
            "@odata.context": "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Cases",
            "value": [{"CaseID": "c", "Media": media}],
        }
    ).encode()
    del media
    assert len(doc) > 30_000_000
    tracemalloc.start()
    try:
        count = sum(isinstance(r, HashRecord) for r in get_format("vics").read(io.BytesIO(doc)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == n
    assert peak < 20_000_000, f"peak {peak / 1e6:.0f} MB for a {len(doc) / 1e6:.0f} MB document"
