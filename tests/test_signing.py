"""The instance's signing key ring: made once, shared by processes, rotated with a grace period."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meldpunt.cli import app
from meldpunt.settings import KeySettings, Settings
from meldpunt.stores.signing import (
    SigningKeyError,
    key_ring_path,
    load_key_ring,
    parse_public_key,
    rotate_key_ring,
    verify_with,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _settings(tmp_path: Path, grace_days: int = 30) -> Settings:
    return Settings(db=str(tmp_path / "m.db"), keys=KeySettings(grace_days=grace_days))


def test_made_once_with_mode_0600_and_shared(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with ThreadPoolExecutor(8) as pool:
        rings = list(pool.map(lambda _: load_key_ring(settings, now=T0), range(16)))
    assert len({r.current.kid for r in rings}) == 1
    path = key_ring_path(settings)
    assert path == tmp_path / "m.db.signkeys"
    assert path.stat().st_mode & 0o777 == 0o600
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_sign_and_verify_with_the_published_key(tmp_path: Path) -> None:
    ring = load_key_ring(_settings(tmp_path), now=T0)
    kid, sig = ring.sign(b"manifest")
    public = parse_public_key(ring.public_keys(T0)[0]["public"] or "")
    assert kid == ring.current.kid
    assert verify_with(public, b"manifest", sig)
    assert not verify_with(public, b"manifesT", sig)
    assert not verify_with(public, b"manifest", "not base64!")


def test_rotation_keeps_the_old_key_for_the_grace_period(tmp_path: Path) -> None:
    settings = _settings(tmp_path, grace_days=10)
    old = load_key_ring(settings, now=T0)
    kid, sig = old.sign(b"package")
    new = rotate_key_ring(settings, now=T0 + timedelta(days=1))
    assert new.current.kid != kid
    assert new.verify(kid, b"package", sig, now=T0 + timedelta(days=11))
    assert not new.verify(kid, b"package", sig, now=T0 + timedelta(days=11, seconds=1))
    assert [k["kid"] for k in new.public_keys(T0 + timedelta(days=2))] == [new.current.kid, kid]
    # a second rotation after the grace period drops the oldest key from the file
    third = rotate_key_ring(settings, now=T0 + timedelta(days=30))
    assert [k.kid for k in third.keys] == [third.current.kid, new.current.kid]


@pytest.mark.parametrize(
    "text",
    [
        "{",
        '{"format": "other", "keys": []}',
        '{"format": "meldpunt-signing-keys/1", "keys": [{"seed": "x"}]}',
    ],
)
def test_a_damaged_ring_is_a_clear_error(tmp_path: Path, text: str) -> None:
    settings = _settings(tmp_path)
    key_ring_path(settings).write_text(text)
    with pytest.raises(SigningKeyError):
        load_key_ring(settings, now=T0)


def test_public_keys_are_checked() -> None:
    with pytest.raises(SigningKeyError, match="32 bytes"):
        parse_public_key("AAAA")
    with pytest.raises(SigningKeyError, match="base64"):
        parse_public_key("@@@")


def test_keys_cli_show_and_rotate(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    runner = CliRunner()
    shown = runner.invoke(app, ["--db", db, "keys", "show", "--json"])
    assert shown.exit_code == 0, shown.output
    first = json.loads(shown.stdout)["keys"][0]["kid"]
    rotated = runner.invoke(app, ["--db", db, "keys", "rotate"])
    assert rotated.exit_code == 0, rotated.output
    keys = json.loads(runner.invoke(app, ["--db", db, "keys", "show", "--json"]).stdout)["keys"]
    assert keys[1]["kid"] == first and keys[1]["retired"] and keys[0]["retired"] is None
    audit = runner.invoke(app, ["--db", db, "audit", "verify"])
    assert audit.exit_code == 0, audit.output
