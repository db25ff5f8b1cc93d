"""The CyberTipline export from the database (``act.cybertip``) on SQLite and PostgreSQL, and
``meldpunt cybertip``: an analyst's final classification gives the industry category of the media
it covers; a hash list's media go in without one; benign, failed and left-out media stay out; items
not found illegal are refused with the reason; every export is audited (with the XML's SHA-256) and
on each item's timeline; the CLI writes the file, or exits 2 and writes nothing."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meldpunt.act import cybertip as cybertip_module
from meldpunt.act import timeline
from meldpunt.act.cybertip import CybertipError, NotExportable, cybertip_facts, export_cybertip
from meldpunt.bootstrap import Services
from meldpunt.cli import app
from meldpunt.clock import ManualClock
from meldpunt.domain.acting import EventKind
from meldpunt.domain.reports import ItemState
from meldpunt.referral.cybertip import cybertip_problems
from meldpunt.settings import ReferralSettings, Settings
from tests.helpers.acting import seed_item, seed_location
from tests.helpers.cybertip import fake_hashes, seed_final, seed_medium

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
EMAIL = "cybertip@hotline.example"
REFERRAL = ReferralSettings(cybertip_reporter_email=EMAIL, cybertip_company_template="Example Hotline")


@pytest.fixture
def world(db_url: str) -> Iterator[tuple[Services, ManualClock]]:
    clock = ManualClock(START)
    services = Services(Settings(db=db_url, referral=REFERRAL), clock=clock)
    yield services, clock
    services.close()


def _classified(
    services: Services, url: str, classification: dict[str, object], *, illegal: bool = True
) -> int:
    item_id, _ = seed_item(services.engine, url, now=START, state=ItemState.CLASSIFIED)
    seed_final(services.engine, item_id, classification, illegal=illegal, now=START)
    return item_id


def test_an_item_with_a_us_category_its_media_and_a_hash_list_match(
    world: tuple[Services, ManualClock],
) -> None:
    services, clock = world
    item_id, _ = seed_item(
        services.engine, "https://gallery.example/a", now=START, state=ItemState.CLASSIFIED, urgent=True
    )
    seed_location(
        services.engine,
        item_id,
        now=START,
        ip="192.0.2.7",
        country="NL",
        asn=64500,
        network_owner="Hosting B.V.",
    )
    e = services.engine
    reviewed = seed_medium(e, item_id, "https://gallery.example/1.jpg", now=START, outcome="new", seed="one")
    left_out = seed_medium(
        e, item_id, "https://gallery.example/logo.png", now=START, outcome="new", seed="logo"
    )
    seed_medium(
        e,
        item_id,
        "https://gallery.example/2.jpg",
        now=START,
        outcome="known",
        seed="two",
        matches=[{"bank": "partner-list", "policy": "auto", "labels": {}}],
    )
    seed_medium(e, item_id, "https://gallery.example/benign.jpg", now=START, outcome="ignored", seed="benign")
    seed_medium(e, item_id, "https://gallery.example/broken.jpg", now=START, outcome="failed", seed="broken")
    seed_final(
        e,
        item_id,
        {"status": "baseline", "us": "A2", "age_band": "infant", "media": [reviewed]},
        illegal=True,
        now=START,
    )
    assert left_out != reviewed
    clock.advance(3600)

    made = export_cybertip(services, [item_id], actor="senior-sam")
    assert cybertip_problems(made.xml) == []
    assert made.files == 2 and made.uncategorised == 1 and made.item_ids == (item_id,)
    assert made.sha256 == hashlib.sha256(made.xml).hexdigest()
    root = ET.fromstring(made.xml)
    files = root.findall("uploadedFiles/fileDetails")
    assert [f.findtext("locationOfFile") for f in files] == [
        "https://gallery.example/1.jpg",
        "https://gallery.example/2.jpg",
    ]
    assert files[0].findtext("industryClassification") == "A2"
    assert [a.tag for a in files[0].find("fileAnnotations") or []] == ["infant"]
    assert files[0].findtext("fileViewedByEsp") == "true"
    assert {h.get("hashType"): h.text for h in files[0].iterfind("originalFileHash")} == fake_hashes("one")
    assert files[1].find("industryClassification") is None and files[1].findtext("fileViewedByEsp") == "false"
    assert any("partner-list" in (i.text or "") for i in files[1].iterfind("additionalInfo"))
    web = root.find("report/internetDetails/webPageIncident")
    assert web is not None and web.findtext("url") == "https://gallery.example/a"
    assert "192.0.2.7" in (web.findtext("additionalInfo") or "") and "AS64500" in (
        web.findtext("additionalInfo") or ""
    )
    assert root.findtext("report/incidentSummary/incidentDateTime") == "2026-11-20T09:00:00Z"
    assert root.find("report/incidentSummary/escalateToHighPriority") is not None
    assert root.findtext("report/reporter/reportingPerson/email") == EMAIL
    assert root.get("exported") == "2026-11-20T10:00:00Z"

    entry = services.audit.entries(action="referral.cybertip")[-1]
    assert entry.actor == "senior-sam" and entry.subject == f"item:{item_id}"
    assert entry.details["sha256"] == made.sha256 and entry.details["files"] == 2
    events = [
        ev for ev in timeline.for_item(services.engine, item_id) if ev.kind == EventKind.CYBERTIP_EXPORTED
    ]
    assert len(events) == 1 and events[0].detail["sha256"] == made.sha256 and events[0].actor == "senior-sam"


def test_no_us_category_no_classification_and_a_set_of_items(world: tuple[Services, ManualClock]) -> None:
    services, _ = world
    national = _classified(services, "https://one.example/p", {"status": "nationally_illegal"})
    seed_medium(services.engine, national, "https://one.example/a.jpg", now=START, outcome="new", seed="n1")
    seed_medium(services.engine, national, "https://one.example/b.jpg", now=START, outcome="new", seed="n2")
    known, _ = seed_item(
        services.engine, "https://two.example/q", now=START + timedelta(hours=2), state=ItemState.KNOWN
    )
    seed_medium(services.engine, known, "https://two.example/k.jpg", now=START, outcome="known", seed="k")

    facts = cybertip_facts(services, [known, national])
    assert [p.reference for p in facts.pages] == [f"item {known}", f"item {national}"]
    made = export_cybertip(services, [known, national, known], actor="cli:tester")
    assert made.item_ids == (known, national) and made.files == 3 and made.uncategorised == 3
    root = ET.fromstring(made.xml)
    assert cybertip_problems(made.xml) == []
    assert root.findall("uploadedFiles/fileDetails/industryClassification") == []
    assert len(root.findall("report/internetDetails")) == 2
    notes = [i.text or "" for i in root.iterfind("uploadedFiles/fileDetails/additionalInfo")]
    assert any("nationally_illegal" in n for n in notes)
    assert root.findtext("report/incidentSummary/incidentDateTime") == "2026-11-20T09:00:00Z"


def test_a_custom_us_value_is_never_passed_on_as_a_category(world: tuple[Services, ManualClock]) -> None:
    services, _ = world
    item = _classified(services, "https://odd.example/", {"status": "baseline", "us": "A3"})
    seed_medium(services.engine, item, "https://odd.example/x.jpg", now=START, outcome="new")
    root = ET.fromstring(export_cybertip(services, [item], actor="x").xml)
    assert root.find("uploadedFiles/fileDetails/industryClassification") is None
    assert any("'A3'" in (i.text or "") for i in root.iterfind("uploadedFiles/fileDetails/additionalInfo"))


def test_items_not_found_illegal_are_refused_and_nothing_is_recorded(
    world: tuple[Services, ManualClock],
) -> None:
    services, _ = world
    legal = _classified(services, "https://fine.example/", {"status": "not_illegal"}, illegal=False)
    waiting, _ = seed_item(services.engine, "https://wait.example/", now=START, state=ItemState.NEEDS_REVIEW)
    benign, _ = seed_item(services.engine, "https://benign.example/", now=START, state=ItemState.KNOWN)
    seed_medium(services.engine, benign, "https://benign.example/b.jpg", now=START, outcome="ignored")
    good = _classified(services, "https://bad.example/", {"status": "baseline", "us": "B1"})
    before = len(services.audit.entries())
    for ids, message in (
        ([good, legal], "not illegal"),
        ([waiting], "no final decision"),
        ([benign], "benign"),
        ([good, 999999], "no item 999999"),
        ([], "at least one item"),
    ):
        with pytest.raises(NotExportable, match=message):
            export_cybertip(services, ids, actor="x")
    assert len(services.audit.entries()) == before
    assert not [e for e in timeline.for_item(services.engine, good) if e.kind == EventKind.CYBERTIP_EXPORTED]


def test_no_reporter_address_refuses_and_records_nothing(db_url: str) -> None:
    services = Services(Settings(db=db_url), clock=ManualClock(START))
    try:
        item = _classified(services, "https://bad.example/", {"status": "baseline", "us": "B1"})
        with pytest.raises(CybertipError, match="cybertip_reporter_email"):
            export_cybertip(services, [item], actor="x")
        assert services.audit.entries(action="referral.cybertip") == []
    finally:
        services.close()


# --- the command ------------------------------------------------------------------------------------------


def test_the_command_writes_the_file_and_audits(db_url: str, tmp_path: Path) -> None:
    services = Services(Settings(db=db_url), clock=ManualClock(START))
    try:
        item = _classified(services, "https://cli.example/p", {"status": "baseline", "us": "A1"})
        seed_medium(services.engine, item, "https://cli.example/a.jpg", now=START, outcome="new")
    finally:
        services.close()
    env = {"MELDPUNT_REFERRAL_CYBERTIP_REPORTER_EMAIL": EMAIL}
    runner = CliRunner()
    out = tmp_path / "tip.xml"
    done = runner.invoke(app, ["--db", db_url, "referral", "cybertip", str(item), "--out", str(out)], env=env)
    assert done.exit_code == 0, done.output
    data = out.read_bytes()
    assert cybertip_problems(data) == []
    assert ET.fromstring(data).findtext("uploadedFiles/fileDetails/industryClassification") == "A1"
    assert hashlib.sha256(data).hexdigest() in done.stderr
    to_stdout = runner.invoke(app, ["--db", db_url, "referral", "cybertip", str(item)], env=env)
    assert to_stdout.exit_code == 0 and to_stdout.stdout.startswith("<?xml")
    assert cybertip_problems(to_stdout.stdout) == []

    missing = tmp_path / "none.xml"
    bad = runner.invoke(
        app, ["--db", db_url, "referral", "cybertip", "424242", "--out", str(missing)], env=env
    )
    assert bad.exit_code == 2 and "no item 424242" in bad.stderr and not missing.exists()
    nobody = runner.invoke(
        app, ["--db", db_url, "referral", "cybertip", str(item), "--out", str(missing)], env={}
    )
    assert nobody.exit_code == 2 and "cybertip_reporter_email" in nobody.stderr and not missing.exists()
    no_folder = runner.invoke(
        app,
        ["--db", db_url, "referral", "cybertip", str(item), "--out", str(tmp_path / "x" / "y.xml")],
        env=env,
    )
    assert no_folder.exit_code == 2

    services = Services(Settings(db=db_url))
    try:
        entries = services.audit.entries(action="referral.cybertip")
        assert len(entries) == 2 and entries[0].actor.startswith("cli:")
        assert entries[0].details["sha256"] == hashlib.sha256(data).hexdigest()
        assert services.audit.verify().problems == []
    finally:
        services.close()


def test_an_export_that_would_not_validate_is_neither_handed_out_nor_recorded(
    world: tuple[Services, ManualClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    services, _ = world
    item = _classified(services, "https://bad.example/", {"status": "baseline", "us": "B1"})
    monkeypatch.setattr(cybertip_module, "cybertip_xml", lambda facts: b"<cybertipExport/>")
    with pytest.raises(CybertipError, match="does not validate"):
        export_cybertip(services, [item], actor="x")
    assert services.audit.entries(action="referral.cybertip") == []
    assert not [e for e in timeline.for_item(services.engine, item) if e.kind == EventKind.CYBERTIP_EXPORTED]
