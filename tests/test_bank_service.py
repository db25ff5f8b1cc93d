"""One bank service for the CLI and the web: its rules hold whichever front end asks."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from meldpunt.cli import app
from meldpunt.store.banks import BankRepository
from meldpunt.store.db import create_db_engine
from meldpunt.triage.banks import BankService, OwnBankProtected

runner = CliRunner()
#: a synthetic MD5 (no file has it on purpose)
MD5 = "0123456789abcdef0123456789abcdef"


def _list(tmp_path: Path) -> Path:
    lst = tmp_path / "md5s.txt"
    lst.write_text(MD5 + "\n")
    return lst


def test_cli_refuses_to_delete_the_hotlines_own_bank(db_url: str, tmp_path: Path) -> None:
    db = ["--db", db_url]
    made = runner.invoke(
        app, [*db, "bank", "import", "--policy", "auto", "hotline-own", str(_list(tmp_path))]
    )
    assert made.exit_code == 0, made.stderr
    refused = runner.invoke(app, [*db, "bank", "delete", "hotline-own"])
    assert refused.exit_code == 2
    assert "own bank" in refused.stderr and "cannot be deleted" in refused.stderr
    assert "hotline-own" in runner.invoke(app, [*db, "bank", "list"]).stdout
    # any other bank still goes
    runner.invoke(app, [*db, "bank", "import", "--policy", "hint", "other", str(_list(tmp_path))])
    assert runner.invoke(app, [*db, "bank", "delete", "other"]).exit_code == 0
    assert "other" not in runner.invoke(app, [*db, "bank", "list"]).stdout


def test_the_service_keeps_the_own_bank_and_audits_imports_in_their_transaction(
    db_url: str, tmp_path: Path
) -> None:
    from meldpunt.audit import AuditLog
    from meldpunt.banks.formats import get_format

    engine = create_db_engine(db_url)
    service = BankService(BankRepository(engine), own_bank="ours")
    fmt = get_format("plain")
    with _list(tmp_path).open("rb") as fp:
        result = service.import_list(
            "ours",
            fmt.read(fp),
            actor="alice",
            list_format=fmt.name,
            source_name="md5s.txt",
            audit_details={"via": "test"},
            source_sha256="ab" * 32,
            policy="auto",
        )
    assert result.entries == 1
    with pytest.raises(OwnBankProtected):
        service.delete("ours")
    assert service.repo.get_bank("ours").entries == 1
    imports = AuditLog(engine).entries(action="bank.import")
    assert len(imports) == 1 and imports[0].actor == "alice" and imports[0].details["via"] == "test"
    assert imports[0].details["entries"] == 1 and imports[0].details["sha256"] == "ab" * 32
