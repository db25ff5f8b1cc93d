"""The tamper-evident audit log: appends chain, verify finds every edit, gap, swap and cut (with a
checkpoint), concurrent writers never fork the chain, and a rolled-back event leaves nothing."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from typer.testing import CliRunner

from meldpunt.audit import (
    GENESIS_HASH,
    AuditEvent,
    AuditLog,
    Checkpoint,
    entry_hash,
    record,
)
from meldpunt.cli import audit as audit_cli
from meldpunt.cli.common import State
from meldpunt.settings import Settings
from meldpunt.store.db import create_db_engine
from tests.helpers.audit import tamper

T0 = datetime(2026, 11, 22, 9, 30, 0, 123456, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_db_engine(db_url)
    yield eng
    eng.dispose()


def fill(log: AuditLog, n: int = 5) -> None:
    for i in range(1, n + 1):
        log.append("anna", "item.reveal", f"item:{i}", {"reason": "triage", "n": i}, at=T0 + timedelta(i))


def test_appends_form_a_chain_that_verifies(engine: Engine) -> None:
    log = AuditLog(engine)
    assert log.verify().ok and log.checkpoint() == Checkpoint(0, GENESIS_HASH)
    fill(log)
    entries = log.entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert all(e.computed_hash() == e.hash for e in entries)
    e = entries[1]
    assert (e.actor, e.action, e.subject, e.details) == (
        "anna",
        "item.reveal",
        "item:2",
        {"n": 2, "reason": "triage"},
    )
    assert e.at == T0 + timedelta(2)  # to the microsecond, in UTC
    assert e.hash == entry_hash(
        2, T0 + timedelta(2), "anna", "item.reveal", "item:2", e.details_json, entries[0].hash
    )
    result = log.verify(log.checkpoint())
    assert result.ok and result.entries == 5 and result.head == Checkpoint(5, entries[-1].hash)
    assert [x.seq for x in log.entries(limit=2, newest=True)] == [4, 5]


def test_filters(engine: Engine) -> None:
    log = AuditLog(engine)
    log.append("anna", "bank.import", "bank:a")
    log.append("ben", "bank.delete", "bank:a")
    log.append("anna", "item.reveal", "item:1")
    log.append("cli:root", "bank_x.import", "bank:b")  # "_" is no wildcard
    assert [e.seq for e in log.entries(actor="anna")] == [1, 3]
    assert [e.seq for e in log.entries(action="bank.*")] == [1, 2]
    assert [e.seq for e in log.entries(action="item.reveal")] == [3]


@pytest.mark.parametrize(
    "edit",
    [
        'UPDATE audit_log SET details = \'{"n":3,"reason":"curiosity"}\' WHERE seq = 3',
        "UPDATE audit_log SET actor = 'ben' WHERE seq = 3",
        "UPDATE audit_log SET at = (SELECT at FROM audit_log WHERE seq = 1) WHERE seq = 3",
        "UPDATE audit_log SET subject = 'item:99' WHERE seq = 3",
        "UPDATE audit_log SET action = 'item.view' WHERE seq = 3",
    ],
)
def test_an_edited_entry_is_named(engine: Engine, edit: str) -> None:
    log = AuditLog(engine)
    fill(log)
    tamper(engine, edit)
    result = log.verify()
    assert not result.ok
    assert result.first is not None and (result.first.seq, result.first.kind) == (3, "hash mismatch")
    assert [p.seq for p in result.problems] == [3]


def test_an_edit_with_its_hash_recomputed_breaks_the_next_link(engine: Engine) -> None:
    log = AuditLog(engine)
    fill(log)
    e = log.entries()[2]
    forged = entry_hash(3, e.at, "ben", e.action, e.subject, e.details_json, e.prev_hash)
    tamper(engine, f"UPDATE audit_log SET actor = 'ben', hash = '{forged}' WHERE seq = 3")
    first = log.verify().first
    assert first is not None and (first.seq, first.kind) == (4, "link broken")


def test_a_deleted_entry_is_a_gap(engine: Engine) -> None:
    log = AuditLog(engine)
    fill(log)
    tamper(engine, "DELETE FROM audit_log WHERE seq = 3")
    result = log.verify()
    assert result.first is not None and (result.first.seq, result.first.kind) == (3, "gap")
    tamper(engine, "DELETE FROM audit_log WHERE seq = 1")
    first = log.verify().first
    assert first is not None and (first.seq, first.kind) == (1, "gap")


def test_swapped_entries_are_detected(engine: Engine) -> None:
    log = AuditLog(engine)
    fill(log)
    tamper(
        engine,
        "UPDATE audit_log SET seq = -2 WHERE seq = 2",
        "UPDATE audit_log SET seq = 2 WHERE seq = 4",
        "UPDATE audit_log SET seq = 4 WHERE seq = -2",
    )
    result = log.verify()
    # Each moved entry's hash no longer fits its number; the entries after them no longer chain.
    assert [(p.seq, p.kind) for p in result.problems] == [
        (2, "hash mismatch"),
        (3, "link broken"),
        (4, "hash mismatch"),
        (5, "link broken"),
    ]


def test_swapped_contents_with_hashes_are_detected(engine: Engine) -> None:
    """Every column but seq swapped: each entry's own hash is right for its seq no more."""
    log = AuditLog(engine)
    fill(log)
    cols = ["at", "actor", "action", "subject", "details", "prev_hash", "hash"]
    sets = ", ".join(f"{c} = (SELECT {c} FROM audit_log AS o WHERE o.seq = 6 - audit_log.seq)" for c in cols)
    tamper(engine, f"UPDATE audit_log SET {sets} WHERE seq IN (2, 4)")
    first = log.verify().first
    assert first is not None and (first.seq, first.kind) == (2, "hash mismatch")


def test_cutting_the_end_needs_a_checkpoint(engine: Engine) -> None:
    log = AuditLog(engine)
    fill(log)
    cp = log.checkpoint()
    assert str(cp).startswith("meldpunt-audit 5 ") and Checkpoint.parse(str(cp)) == cp
    h3 = log.entries()[2].hash
    # A careless cut leaves audit_head behind: detected even without a checkpoint.
    tamper(engine, "DELETE FROM audit_log WHERE seq > 3")
    first = log.verify().first
    assert first is not None and (first.seq, first.kind) == (4, "truncated")
    # A careful one also moves the head: the chain itself is intact ...
    tamper(engine, f"UPDATE audit_head SET seq = 3, hash = '{h3}'")
    assert log.verify().ok
    # ... but not against the checkpoint kept elsewhere.
    result = log.verify(cp)
    assert result.first is not None and (result.first.seq, result.first.kind) == (4, "truncated")
    # Cut and regrown to the same length: the checkpoint's entry differs.
    log.append("mallory", "item.view", "item:1")
    log.append("mallory", "item.view", "item:2")
    result = log.verify(cp)
    assert result.first is not None and (result.first.seq, result.first.kind) == (5, "checkpoint mismatch")
    assert log.verify(Checkpoint(3, h3)).ok


def test_the_database_refuses_updates_and_deletes(engine: Engine) -> None:
    log = AuditLog(engine)
    fill(log, 2)
    for statement in (
        "UPDATE audit_log SET actor = 'ben' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 2",
        "DELETE FROM audit_head",
    ):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    assert log.verify().ok and len(log.entries()) == 2


def test_concurrent_appends_never_fork_the_chain(db_url: str) -> None:
    create_db_engine(db_url).dispose()  # migrate once
    threads, per_thread = 4, 15
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def work(t: int) -> None:
        eng = create_db_engine(db_url, migrate=False)
        try:
            log = AuditLog(eng)
            barrier.wait()
            for i in range(per_thread):
                log.append(f"worker-{t}", "item.view", f"item:{i}", {"t": t, "i": i})
        except BaseException as e:
            errors.append(e)
        finally:
            eng.dispose()

    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    assert not errors
    eng = create_db_engine(db_url, migrate=False)
    try:
        log = AuditLog(eng)
        entries = log.entries()
        assert [e.seq for e in entries] == list(range(1, threads * per_thread + 1))
        assert {(e.details["t"], e.details["i"]) for e in entries} == {
            (t, i) for t in range(threads) for i in range(per_thread)
        }
        result = log.verify()
        assert result.ok and result.entries == threads * per_thread
    finally:
        eng.dispose()


def test_an_event_commits_or_rolls_back_with_the_callers_transaction(engine: Engine) -> None:
    log = AuditLog(engine)
    fill(log, 2)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.execute(text("INSERT INTO meta (name, value) VALUES ('audit-test', 1)"))
        record(conn, AuditEvent("anna", "setting.change", "setting:x", {"to": 1}))
        raise RuntimeError("the action failed")
    assert len(log.entries()) == 2 and log.verify().ok
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO meta (name, value) VALUES ('audit-test', 2)"))
        entry = record(conn, AuditEvent("anna", "setting.change", "setting:x", {"to": 2}))
    assert entry.seq == 3
    with engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM meta WHERE name = 'audit-test'")).scalar() == 2
    assert [e.seq for e in log.entries()] == [1, 2, 3] and log.verify().ok


def test_duplicate_sequence_numbers_are_refused(engine: Engine) -> None:
    log = AuditLog(engine)
    e = log.append("anna", "item.view", "item:1")
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, hash) "
                "VALUES (1, :at, 'x', 'y', '', '{}', :p, :h)"
            ),
            {"at": T0, "p": GENESIS_HASH, "h": e.hash},
        )


def test_events_are_checked_when_made() -> None:
    with pytest.raises(ValueError):
        AuditEvent("anna", "item.reveal", at=datetime(2026, 1, 1))  # naive
    with pytest.raises(ValueError):
        AuditEvent("anna", "Reveal item!")
    with pytest.raises(ValueError):
        AuditEvent("", "item.reveal")
    with pytest.raises(TypeError):
        AuditEvent("anna", "item.reveal", details={"x": object()})
    with pytest.raises(ValueError):
        AuditEvent("anna", "item.reveal", details={"x": float("nan")})
    with pytest.raises(ValueError):
        Checkpoint.parse("meldpunt-audit 3 xyz")
    at = datetime(2026, 1, 1, 12, tzinfo=UTC).astimezone(ZoneInfo("Europe/Brussels"))
    assert AuditEvent("anna", "item.reveal", at=at).at.tzinfo is UTC


runner = CliRunner()


def cli(db: str, *args: str) -> tuple[int, str]:
    st = State(Settings.from_env(db=db))
    try:
        result = runner.invoke(audit_cli.app, list(args), obj=st, catch_exceptions=False)
    finally:
        st.close()
    return result.exit_code, result.stdout


def test_cli_verify_checkpoint_list(db_url: str) -> None:
    engine = create_db_engine(db_url)
    try:
        log = AuditLog(engine)
        fill(log, 4)
        code, out = cli(db_url, "verify")
        assert code == 0 and out.startswith("ok: 4 entries")
        code, line = cli(db_url, "checkpoint")
        line = line.strip()
        assert code == 0 and line == str(log.checkpoint()) and line.startswith("meldpunt-audit 4 ")
        code, out = cli(db_url, "list", "--limit", "2")
        rows = [r.split("\t") for r in out.splitlines()]
        assert (
            code == 0
            and [r[0] for r in rows] == ["3", "4"]
            and rows[0][2:5] == ["anna", "item.reveal", "item:3"]
        )
        code, out = cli(db_url, "list", "--json", "--actor", "nobody")
        assert code == 0 and out == ""
        assert cli(db_url, "verify", "--checkpoint", "nonsense")[0] == 2

        tamper(engine, "UPDATE audit_log SET details = '{}' WHERE seq = 2")
        code, out = cli(db_url, "verify")
        assert code == 1 and "seq 2" in out and "hash mismatch" in out

        tamper(engine, 'UPDATE audit_log SET details = \'{"n":2,"reason":"triage"}\' WHERE seq = 2')
        h3 = log.entries()[2].hash
        tamper(engine, "DELETE FROM audit_log WHERE seq = 4", f"UPDATE audit_head SET seq = 3, hash = '{h3}'")
        assert cli(db_url, "verify")[0] == 0
        code, out = cli(db_url, "verify", "--checkpoint", line)
        assert code == 1 and "seq 4" in out and "truncated" in out
    finally:
        engine.dispose()


def test_cli_mounted_like_the_lead_will(sqlite_db: str) -> None:
    """``app.add_typer(audit_cli.app, name="audit")`` under the real root options (``--db``)."""
    import typer

    from meldpunt.cli import main_options

    root = typer.Typer()
    root.callback()(main_options)
    root.add_typer(audit_cli.app, name="audit")
    result = runner.invoke(root, ["--db", sqlite_db, "audit", "verify"], catch_exceptions=False)
    assert result.exit_code == 0 and result.stdout.startswith("ok: 0 entries")
    result = runner.invoke(root, ["--db", sqlite_db, "audit", "checkpoint"], catch_exceptions=False)
    assert result.stdout.strip() == f"meldpunt-audit 0 {GENESIS_HASH}"
