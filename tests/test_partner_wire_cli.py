"""``meldpunt partner add|list|show|remove|retry`` and ``keys rotate`` telling partners: every change in
the audit log, bad input a clear error (exit 2) that changes nothing."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from typer.testing import CliRunner

from meldpunt.act.partners import messages
from meldpunt.bootstrap import Services
from meldpunt.cli import app
from meldpunt.settings import KeySettings, Settings

runner = CliRunner()


def _key() -> str:
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("MELDPUNT_KEYS_FILE", str(tmp_path / "cli.signkeys"))
    monkeypatch.setenv("MELDPUNT_PARTNER_INSTANCE_NAME", "nl-hotline")
    return ["--db", db_url]


def _run(cli: list[str], *args: str) -> tuple[int, str, str]:
    r = runner.invoke(app, [*cli, *args], catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def test_add_list_show_remove_with_audit_entries(cli: list[str], db_url: str, tmp_path: Path) -> None:
    key = _key()
    code, out, _ = _run(cli, "partner", "add", "be-hotline", "--url", "https://be.example/", "--country", "be",
                        "--country", "LU", "--key", key, "--note", "Child Focus")  # fmt: skip
    assert code == 0 and "added partner be-hotline (BE, LU)" in out
    code, out, _ = _run(cli, "partner", "list", "--json")
    [p] = json.loads(out)["partners"]
    assert (p["name"], p["countries"], p["keys"][0]["public"], p["note"]) == (
        "be-hotline",
        ["BE", "LU"],
        key,
        "Child Focus",
    )
    code, out, _ = _run(cli, "partner", "show", "be-hotline")
    assert code == 0 and key in out and "queued and dead messages: 0" in out
    # rotation tells every partner (a keys message, queued)
    code, out, _ = _run(cli, "keys", "rotate")
    assert code == 0 and "announcing the new key to 1 partner(s): be-hotline" in out
    services = Services(Settings(db=db_url, keys=KeySettings(file=str(tmp_path / "cli.signkeys"))))
    try:
        [queued] = messages(services, "be-hotline")
        assert queued.kind == "keys" and queued.body["current"] == services.signing_keys().current.kid
        code, out, _ = _run(cli, "partner", "show", "be-hotline")
        assert f"#{queued.id}  seq 1  keys  queued" in out
        code, _, err = _run(cli, "partner", "retry", str(queued.id))
        assert code == 2 and "not a dead letter" in err
        code, out, _ = _run(cli, "partner", "remove", "be-hotline")
        assert code == 0 and _run(cli, "partner", "list")[1].strip() == "no partners"
        assert _run(cli, "partner", "remove", "be-hotline")[0] == 2
        actions = [(e.action, e.subject) for e in services.audit.entries() if e.action.startswith("partner.")]
        assert actions == [("partner.add", "partner:be-hotline"), ("partner.remove", "partner:be-hotline")]
        assert all(e.actor.startswith("cli:") for e in services.audit.entries(action="partner.add"))
    finally:
        services.close()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["Bad Name", "--url", "https://x.example", "--country", "BE"], "slug"),
        (["be", "--url", "ftp://x.example", "--country", "BE"], "http(s)"),
        (["be", "--url", "https://x.example", "--country", "Belgium"], "ISO 3166"),
        (["be", "--url", "https://x.example", "--country", "BE", "--key", "bm90IGEga2V5"], "32 bytes"),
        (["be", "--url", "https://x.example", "--country", "BE", "--key", "%%%"], "base64"),
    ],
)
def test_bad_input_is_a_clear_error_and_changes_nothing(cli: list[str], args: list[str], said: str) -> None:
    if "--key" not in args:
        args = [*args, "--key", _key()]
    code, _, err = _run(cli, "partner", "add", *args)
    assert code == 2 and said in err
    assert _run(cli, "partner", "list")[1].strip() == "no partners"


def test_a_name_is_added_once_and_a_removed_partner_comes_back(cli: list[str]) -> None:
    base = ["--url", "https://be.example", "--country", "BE", "--key", _key()]
    assert _run(cli, "partner", "add", "be-hotline", *base)[0] == 0
    code, _, err = _run(cli, "partner", "add", "be-hotline", *base)
    assert code == 2 and "exists" in err
    assert _run(cli, "partner", "remove", "be-hotline")[0] == 0
    assert _run(cli, "partner", "add", "be-hotline", *base)[0] == 0
    assert "be-hotline" in _run(cli, "partner", "list")[1]
    assert _run(cli, "partner", "show", "nobody")[0] == 2
