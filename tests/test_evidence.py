"""The evidence store: media a classification keeps as evidence move out of the review store under a
key of their own, every read is audited, and what is past retention is purged (and audited).

Every medium here is a benign generated image (tests/imagegen.py)."""

from __future__ import annotations

import base64
import io
import secrets
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, update
from typer.testing import CliRunner

from meldpunt.audit import AuditLog
from meldpunt.cli import app
from meldpunt.pipeline.worker import _purge_evidence
from meldpunt.settings import Settings
from meldpunt.store.db import create_db_engine
from meldpunt.store.evidence import EvidenceBlob
from meldpunt.store.reports import Medium
from meldpunt.stores.evidence import EvidenceKeyError, EvidenceStore
from meldpunt.stores.review import ReviewStore
from meldpunt.triage import Triage, TriageConfig
from tests.helpers.imagegen import scene
from tests.helpers.world import ILLEGAL, NOT_ILLEGAL, T0, Clock, World

runner = CliRunner()
EVIDENCE = {**ILLEGAL, "flags": ["evidence"]}


def png(seed: int) -> bytes:
    out = io.BytesIO()
    scene(seed, 160, 120).save(out, format="PNG")
    return out.getvalue()


class Keys:
    def __init__(self) -> None:
        self.review = secrets.token_bytes(32)
        self.evidence = secrets.token_bytes(32)

    def env(self, db: str) -> dict[str, str]:
        return {
            "MELDPUNT_DB": db,
            "MELDPUNT_REVIEW_KEY": base64.b64encode(self.review).decode(),
            "MELDPUNT_EVIDENCE_KEY": base64.b64encode(self.evidence).decode(),
        }


class EvidenceWorld(World):
    keys: Keys
    evidence: EvidenceStore

    def triage(self, **config: object) -> Triage:
        return Triage(
            self.engine,
            settings=self.settings,
            config=TriageConfig(hotline="test", **config),  # type: ignore[arg-type]
            review_store=self.store,
            evidence_store=self.evidence,
            clock=self.clock,
        )

    def item_with_images(self, *seeds: int) -> tuple[int, list[int]]:
        """An item with one new medium per seed, each with a benign generated PNG in review."""
        item = self.item(pdqs=tuple(self.pdq() for _ in seeds), blobs=False)
        with self.engine.begin() as conn:
            mids = [
                int(m)
                for m in conn.execute(
                    select(Medium.id).where(Medium.item_id == item).order_by(Medium.id)
                ).scalars()
            ]
            for mid, seed in zip(mids, seeds, strict=True):
                self.store.put(conn, mid, png(seed))
        return item, mids


@pytest.fixture
def ew(db_url: str, tmp_path: Path) -> EvidenceWorld:
    keys = Keys()
    settings = Settings(db=db_url, review_key_file=str(tmp_path / "review.key"))
    review = ReviewStore(keys.review)
    w = EvidenceWorld(create_db_engine(db_url), settings, Clock(), review)
    w.keys = keys
    w.evidence = EvidenceStore(keys.evidence, retention_days=730, review_store=review)
    return w


def _kept(w: EvidenceWorld) -> tuple[int, list[int]]:
    """An item classified with the evidence flag (first and agreeing second opinion): final."""
    anna, bert = w.user("anna", "analyst"), w.user("bert", "analyst")
    item, mids = w.item_with_images(1, 2)
    t = w.triage()
    t.classify(item, anna, EVIDENCE)
    t.classify(item, bert, ILLEGAL)
    assert t.stage(item) == "final"
    return item, mids


def test_a_keeping_flag_moves_the_blobs_into_the_evidence_store(ew: EvidenceWorld) -> None:
    item, (a, b) = _kept(ew)
    assert ew.blobs_of(item) == 0  # nothing left in the review store
    with ew.engine.connect() as conn:
        kept = ew.evidence.list(conn)
        assert [r.medium_id for r in kept] == [a, b]
        assert ew.evidence.list(conn, item_id=item + 1000) == []
        rows = {r.medium_id: r for r in conn.execute(select(EvidenceBlob))}
    for r in kept:
        assert r.item_id == item and r.reason == ("evidence",) and r.kept_by == "bert"
        assert r.kept_at == T0 and r.retain_until == T0 + timedelta(days=730)
    # Encrypted at rest: the image's bytes are not in the row, and the review key does not open it.
    raw = rows[a]
    assert png(1)[100:300] not in bytes(raw.ciphertext)
    aad = f"meldpunt-evidence-blob:v1:medium:{a}".encode()
    assert AESGCM(ew.keys.evidence).decrypt(bytes(raw.nonce), bytes(raw.ciphertext), aad) == png(1)
    with pytest.raises(InvalidTag):
        AESGCM(ew.keys.review).decrypt(bytes(raw.nonce), bytes(raw.ciphertext), aad)
    review_aad = f"meldpunt-review-blob:v1:medium:{a}".encode()
    with pytest.raises(InvalidTag):  # a prefix of its own: not a review blob either
        AESGCM(ew.keys.evidence).decrypt(bytes(raw.nonce), bytes(raw.ciphertext), review_aad)
    other = EvidenceStore(secrets.token_bytes(32))
    with ew.engine.begin() as conn:
        assert ew.evidence.get(conn, a, actor="carl", purpose="case 2026-17") == png(1)
        with pytest.raises(EvidenceKeyError):
            other.get(conn, a, actor="carl", purpose="case 2026-17")
        # Bound to its medium: a blob copied onto another medium's row does not decrypt.
        conn.execute(
            update(EvidenceBlob)
            .where(EvidenceBlob.medium_id == b)
            .values(nonce=raw.nonce, ciphertext=raw.ciphertext, sha256=raw.sha256)
        )
        with pytest.raises(EvidenceKeyError):
            ew.evidence.get(conn, b, actor="carl", purpose="case 2026-17")
        with pytest.raises(KeyError):
            ew.evidence.get(conn, a + b + 1000, actor="carl", purpose="case 2026-17")
        with pytest.raises(ValueError, match="purpose"):
            ew.evidence.get(conn, a, actor="carl", purpose=" ")


def test_every_read_is_audited_and_the_chain_verifies(ew: EvidenceWorld) -> None:
    _item, (a, _b) = _kept(ew)
    with ew.engine.begin() as conn:
        ew.evidence.get(conn, a, actor="carl", purpose="case 2026-17", now=T0)
    [e] = AuditLog(ew.engine).entries(action="evidence.*")
    assert (e.actor, e.action, e.subject) == ("carl", "evidence.access", f"medium:{a}")
    assert e.details["purpose"] == "case 2026-17" and len(e.details["sha256"]) == 64
    assert AuditLog(ew.engine).verify().ok
    # listing reads no bytes: not an access
    with ew.engine.connect() as conn:
        ew.evidence.list(conn)
    assert len(AuditLog(ew.engine).entries(action="evidence.*")) == 1


def test_without_the_flag_the_blobs_are_purged_as_before(ew: EvidenceWorld) -> None:
    anna = ew.user("anna", "analyst")
    item, _mids = ew.item_with_images(3)
    ew.triage().classify(item, anna, NOT_ILLEGAL)
    assert ew.blobs_of(item) == 0
    with ew.engine.connect() as conn:
        assert ew.evidence.list(conn) == []


def test_expired_evidence_is_purged_and_the_purge_audited(ew: EvidenceWorld) -> None:
    _item, mids = _kept(ew)
    with ew.engine.begin() as conn:
        assert ew.evidence.list(conn, expired_at=T0 + timedelta(days=729)) == []
        assert ew.evidence.purge_expired(conn, T0 + timedelta(days=729)) == 0
    assert AuditLog(ew.engine).entries(action="evidence.purge") == []
    with ew.engine.begin() as conn:
        assert len(ew.evidence.list(conn, expired_at=T0 + timedelta(days=731))) == 2
        assert ew.evidence.purge_expired(conn, T0 + timedelta(days=731)) == 2
        assert ew.evidence.list(conn) == []
    [e] = AuditLog(ew.engine).entries(action="evidence.purge")
    assert e.actor == "system" and e.details == {"count": 2, "media": mids}
    assert AuditLog(ew.engine).verify().ok


def test_an_idle_worker_purges_expired_evidence(ew: EvidenceWorld) -> None:
    _item, mids = _kept(ew)
    with ew.engine.begin() as conn:  # kept long ago: past retention now
        conn.execute(update(EvidenceBlob).values(retain_until=T0 - timedelta(days=1)))
    _purge_evidence(SimpleNamespace(engine=ew.engine))  # type: ignore[arg-type]
    with ew.engine.connect() as conn:
        assert ew.evidence.list(conn) == []
    [e] = AuditLog(ew.engine).entries(action="evidence.purge")
    assert e.details == {"count": 2, "media": mids}


def test_cli_lists_exports_audited_to_a_private_file_and_purges(ew: EvidenceWorld, tmp_path: Path) -> None:
    _item, (a, _b) = _kept(ew)
    env = ew.keys.env(ew.settings.db)
    listed = runner.invoke(app, ["evidence", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert str(a) in listed.stdout and "bert" in listed.stdout
    out = tmp_path / "export" / "medium.png"
    out.parent.mkdir()
    result = runner.invoke(
        app, ["evidence", "export", str(a), "--out", str(out), "--purpose", "police request 17"], env=env
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == png(1) and out.stat().st_mode & 0o777 == 0o600
    [e] = AuditLog(ew.engine).entries(action="evidence.access")
    assert e.actor.startswith("cli:") and e.subject == f"medium:{a}"
    assert e.details["purpose"] == "police request 17" and e.details["export"] == str(out.resolve())
    # never over an existing file; a purpose is required; an unknown medium leaves no file
    again = runner.invoke(app, ["evidence", "export", str(a), "-o", str(out), "--purpose", "x"], env=env)
    assert again.exit_code == 2
    assert (
        runner.invoke(app, ["evidence", "export", str(a), "-o", str(tmp_path / "n")], env=env).exit_code == 2
    )
    missing = tmp_path / "missing.png"
    gone = runner.invoke(app, ["evidence", "export", "999999", "-o", str(missing), "--purpose", "x"], env=env)
    assert gone.exit_code == 2 and not missing.exists()
    assert len(AuditLog(ew.engine).entries(action="evidence.access")) == 1
    purged = runner.invoke(app, ["evidence", "purge"], env=env)
    assert purged.exit_code == 0 and "purged 0" in purged.stdout  # kept T0: two years to go
    assert runner.invoke(app, ["audit", "verify"], env=env).exit_code == 0


def test_the_evidence_key_must_not_be_the_review_key(tmp_path: Path) -> None:
    key = secrets.token_bytes(32)
    with pytest.raises(EvidenceKeyError, match="review key"):
        EvidenceStore(key, review_store=ReviewStore(key))
    text = base64.b64encode(key).decode()
    db = str(tmp_path / "m.db")
    with pytest.raises(EvidenceKeyError, match="review key"):
        EvidenceStore.from_settings(Settings(db=db, review_key=text, evidence_key=text))
    # one key file named for both
    shared = str(tmp_path / "shared.key")
    ReviewStore.from_settings(Settings(db=db, review_key_file=shared))
    with pytest.raises(EvidenceKeyError, match="review key"):
        EvidenceStore.from_settings(Settings(db=db, review_key_file=shared, evidence_key_file=shared))
    env = {"MELDPUNT_DB": db, "MELDPUNT_REVIEW_KEY": text, "MELDPUNT_EVIDENCE_KEY": text}
    refused = runner.invoke(app, ["evidence", "list"], env=env)
    assert refused.exit_code == 2 and "review key" in refused.output
    # serve and worker refuse to start with them, rather than fail a classification later
    for command in (["serve", "--workers", "0", "--port", "1"], ["worker"]):
        refused = runner.invoke(app, command, env=env)
        assert refused.exit_code == 2 and "review key" in refused.output, command


def test_keys_come_from_their_own_files_beside_the_database(sqlite_db: str) -> None:
    settings = Settings(db=sqlite_db)
    review = ReviewStore.from_settings(settings)
    evidence = EvidenceStore.from_settings(settings, review)
    key_file = Path(sqlite_db + ".evidencekey")
    assert key_file.exists() and key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_text() != Path(sqlite_db + ".reviewkey").read_text()
    assert evidence.retention == timedelta(days=730)
    assert EvidenceStore.from_settings(
        Settings(db=sqlite_db, evidence_retention_days=30)
    ).retention == timedelta(days=30)
