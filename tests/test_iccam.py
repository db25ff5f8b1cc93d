"""The ICCAM bridge against a loopback fake ICCAM (tests/helpers/iccam.py): the mapping of our schemes
one way and back, an exported item arriving as report, assessment and actions in order and once,
an imported report entering our walk once, the round trip between two hotlines' databases, and
ICCAM's error answers (retry then success; 4xx fails visibly; a lost answer sends nothing twice)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from meldpunt.act import iccam, iccam_import, timeline
from meldpunt.act.ticks import settle
from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock
from meldpunt.domain.acting import EventKind
from meldpunt.domain.reports import ItemState
from meldpunt.iccam import mapping as iccam_mapping
from meldpunt.iccam.shapes import Assessment
from meldpunt.settings import IccamSettings, Settings
from meldpunt.store.iccam import IccamLink, IccamSend
from meldpunt.store.reports import Item, Report
from meldpunt.triage.schemes import Schemes
from tests.helpers.iccam import Content, FakeIccam, seed_classified

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _services(
    db_url: str, fake: FakeIccam, user: str = "nl-api", **iccam_kw: Any
) -> tuple[Services, ManualClock]:
    clock = ManualClock(START)
    s = {
        "url": fake.url,
        "username": user,
        "password": fake.hotlines[user].password,
        "analyst": f"{user}.analyst",
        "country": fake.hotlines[user].country,
        "export_on": True,
        "timeout_s": 2.0,
        "attempts": 3,
        **iccam_kw,
    }
    return Services(Settings(db=db_url, iccam=IccamSettings(**s)), clock=clock), clock


def _classified(services: Services, url: str, values: dict[str, str], **kw: Any) -> int:
    return seed_classified(services.engine, url, values, now=services.clock.now(), **kw)


def _sends(services: Services, item_id: int) -> list[tuple[str, str]]:
    with services.engine.connect() as conn:
        rows = conn.execute(
            select(IccamSend.what, IccamSend.state)
            .where(IccamSend.item_id == item_id)
            .order_by(IccamSend.seq)
        ).all()
    return [(r.what, r.state) for r in rows]


def _events(services: Services, item_id: int, kind: EventKind) -> list[dict[str, Any]]:
    return [e.detail for e in timeline.for_item(services.engine, item_id) if e.kind == kind.value]


# --- the mapping ----------------------------------------------------------------------------------


def test_every_value_of_our_schemes_maps_to_iccam_and_back() -> None:
    schemes = Schemes.load()
    m = iccam_mapping.load()
    status = schemes.schemes["status"]
    ages = [v.value for v in schemes.schemes["age_band"].values]
    for s in status.values:
        for age in ages:
            values = {"status": s.value, "age_band": age}
            if s.value != "not_illegal":
                values |= {"us": "A1", "uk": "B"}
            a = m.assessment(values, "analyst")
            back = m.classification_of(Assessment.from_json(a.to_json()), m.memo(values))
            assert back == values, (values, a, back)
    for us in (v.value for v in schemes.schemes["us"].values):
        a = m.assessment({"status": "baseline", "us": us}, "analyst")
        assert a.age == (3 if us.startswith("A") else 4)  # the US category implies the age
        assert m.classification_of(a, m.memo({"us": us}))["us"] == us
    for uk in (v.value for v in schemes.schemes["uk"].values):
        assert m.classification_of(m.assessment({"status": "baseline"}, "x"), m.memo({"uk": uk}))["uk"] == uk


def test_the_mapping_file_is_checked_when_loaded(tmp_path: Path) -> None:
    bad = iccam_mapping.DEFAULT_FILE.read_text().replace("nationally_illegal: 2", "nationally_illegal: 9")
    path = tmp_path / "mapping.yaml"
    path.write_text(bad)
    with pytest.raises(iccam_mapping.MappingError, match="nationally_illegal: 9 is not an ICCAM code"):
        iccam_mapping.load(path)
    m = iccam_mapping.load()
    assert m.action_for("removed", {"reason": "404"}) == 3
    assert m.action_for("removed", {"reason": "dns_gone"}) == 4  # the host is gone: unavailable
    assert m.action_for("notice_sent") == 2 and m.action_for("referral_exported") == 1
    assert m.action_for("moved") == 5 and m.action_for("checked_online") is None


# --- export ---------------------------------------------------------------------------------------


def test_a_classified_noticed_removed_item_arrives_as_report_assessment_and_actions_in_order(
    db_url: str, fake_iccam: FakeIccam
) -> None:
    services, _ = _services(db_url, fake_iccam)
    item_id = _classified(
        services,
        "http://198.51.100.9/gallery",
        {"status": "baseline", "age_band": "prepubescent", "us": "A1"},
    )
    settle(services)
    settle(services)
    [report_ref] = [e[1] for e in fake_iccam.effects if e[0] == "report"]
    assert report_ref == f"MP-{item_id}"
    [content_id] = [c.id for c in fake_iccam.contents.values()]
    assert fake_iccam.effects == [
        ("report", report_ref),
        ("assessment", content_id),
        ("action", content_id, 2),  # notice sent: ISP
        ("action", content_id, 3),  # removed
    ]
    sent = next(c[2] for c in fake_iccam.calls if c[0] == "POST" and c[1] == "rest/reports")
    [url] = sent["urls"]
    assert url["hostingCountryCode"] == "DE" and url["hostingIpAddress"] == "192.0.2.7"
    assert url["assessment"]["classification"] == 1 and url["assessment"]["ageCategorization"] == 3
    assert "Example Hosting" in url["memo"] and "us=A1" in url["memo"]
    assert sent["hotlineReceivedDate"] == "2026-12-01T09:00:00Z"
    assert _sends(services, item_id) == [
        ("report", "sent"),
        ("assessment", "sent"),
        ("action:2", "sent"),
        ("action:3", "sent"),
    ]
    exported = _events(services, item_id, EventKind.ICCAM_EXPORTED)
    assert [e["what"] for e in exported] == ["report", "assessment", "action", "action"]
    with services.engine.connect() as conn:
        link = conn.execute(select(IccamLink).where(IccamLink.item_id == item_id)).one()
    assert (link.direction, link.content_id) == ("export", content_id)
    calls = len(fake_iccam.calls)
    settle(services)  # nothing is sent twice
    assert len(fake_iccam.calls) == calls


def test_a_not_illegal_item_is_reported_with_the_verdict(db_url: str, fake_iccam: FakeIccam) -> None:
    services, _ = _services(db_url, fake_iccam)
    item_id = _classified(services, "http://198.51.100.10/page", {"status": "not_illegal"})
    settle(services)
    [content] = fake_iccam.contents.values()
    assert content.assessment is not None and content.assessment["classification"] == 4
    assert content.url["hostingCountryCode"] == "NL"  # not located: the hotline's country
    [action] = content.actions
    assert action["actionType"] == 7 and action["reasonText"]
    assert [w for w, _ in _sends(services, item_id)] == ["report", "assessment", "action:7"]


def test_iccam_errors_are_retried_on_the_clock_then_succeed(db_url: str, fake_iccam: FakeIccam) -> None:
    services, clock = _services(db_url, fake_iccam)
    item_id = _classified(services, "http://198.51.100.11/a", {"status": "baseline"}, removed=False)
    fake_iccam.fail("POST", "rest/reports", 503)
    fake_iccam.fail("POST", "rest/reports", 429, body=b'{"errors": {"rate": ["slow down"]}}')
    settle(services)
    assert _sends(services, item_id)[0] == ("report", "queued") and not fake_iccam.reports
    clock.advance(60)
    settle(services)
    assert _sends(services, item_id)[0] == ("report", "queued") and not fake_iccam.reports  # 429, backoff
    clock.advance(120)
    settle(services)
    assert [s for _, s in _sends(services, item_id)] == ["sent", "sent", "sent"]
    assert len(fake_iccam.reports) == 1


def test_a_refusal_fails_visibly_and_blocks_what_comes_after(db_url: str, fake_iccam: FakeIccam) -> None:
    services, clock = _services(db_url, fake_iccam)
    item_id = _classified(services, "http://198.51.100.12/b", {"status": "baseline"}, removed=False)
    fake_iccam.fail("PUT", "rest/Content/", 400, body=b'{"errors": {"classification": ["not allowed here"]}}')
    settle(services)
    clock.advance(3600)
    settle(services)
    assert _sends(services, item_id) == [("report", "sent"), ("assessment", "failed"), ("action:2", "queued")]
    [failed] = _events(services, item_id, EventKind.ICCAM_FAILED)
    assert "not allowed here" in failed["reason"] and failed["what"] == "assessment"
    st = iccam.status(services)
    assert st.counts["failed"] == 1 and "not allowed here" in st.failed[0].reason
    assert not any(e[0] == "action" for e in fake_iccam.effects)  # nothing after the failed step
    assert iccam.retry_failed(services, item_id=item_id) == 1  # a person fixed the cause
    settle(services)
    assert [s for _, s in _sends(services, item_id)] == ["sent", "sent", "sent"]


def test_a_lost_answer_sends_nothing_twice(db_url: str, fake_iccam: FakeIccam) -> None:
    services, clock = _services(db_url, fake_iccam)
    item_id = _classified(services, "http://198.51.100.13/c", {"status": "baseline"}, removed=False)
    fake_iccam.fail("POST", "rest/Content/", kind="lose")  # the ISP action is recorded, the answer lost
    settle(services)
    clock.advance(60)
    settle(services)
    [content] = fake_iccam.contents.values()
    assert [a["actionType"] for a in content.actions] == [2]  # once, though the first answer was lost
    assert _sends(services, item_id)[-1] == ("action:2", "sent")
    # a report whose answer was lost: ICCAM refuses the same reference, and we say why
    other = _classified(services, "http://198.51.100.14/d", {"status": "baseline"}, removed=False)
    fake_iccam.fail("POST", "rest/reports", kind="lose")
    settle(services)
    clock.advance(60)
    settle(services)
    assert len([r for r in fake_iccam.reports.values() if r["hotlineReference"] == f"MP-{other}"]) == 1
    assert _sends(services, other)[0] == ("report", "failed")
    [failed] = _events(services, other, EventKind.ICCAM_FAILED)
    assert "already used" in failed["reason"] and "answer was lost" in failed["reason"]


def test_a_timeout_is_retried(db_url: str, fake_iccam: FakeIccam) -> None:
    services, clock = _services(db_url, fake_iccam, timeout_s=0.5)
    item_id = _classified(services, "http://198.51.100.15/e", {"status": "baseline"}, removed=False)
    fake_iccam.fail("GET", "rest/Reports/", kind="hang")
    settle(services)
    with services.engine.connect() as conn:
        row = conn.execute(
            select(IccamSend).where(IccamSend.item_id == item_id, IccamSend.what == "report")
        ).one()
    assert row.state == "queued" and "timed out" in row.last_error
    clock.advance(60)
    settle(services)
    assert [s for _, s in _sends(services, item_id)] == ["sent", "sent", "sent"]
    assert len(fake_iccam.reports) == 1  # the ID was kept: no second report


# --- import and the round trip ----------------------------------------------------------------------


def _second_db(db_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if "://" not in db_url:
        return str(tmp_path / "partner.db")
    return str(request.getfixturevalue("postgres_cluster").create_database())


def test_the_round_trip_between_two_hotlines(
    db_url: str, fake_iccam: FakeIccam, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    nl, _ = _services(db_url, fake_iccam, "nl-api")
    item_id = _classified(
        nl, "http://198.51.100.20/found", {"status": "nationally_illegal", "age_band": "pubescent", "uk": "C"}
    )
    settle(nl)
    assert len(fake_iccam.queued_for("de-api")) == 1
    de, de_clock = _services(
        _second_db(db_url, request, tmp_path), fake_iccam, "de-api", export_on=False, import_on=True
    )
    settle(de)
    with de.engine.connect() as conn:
        [(their_item, source, report_id, content_id)] = conn.execute(
            select(Item.id, Report.source, IccamLink.report_id, IccamLink.content_id)
            .join(Report, Report.id == Item.report_id)
            .join(IccamLink, IccamLink.item_id == Item.id)
        ).all()
    assert source == "iccam"
    [content] = fake_iccam.contents.values()
    assert (report_id, content_id) == (content.report_id, content.id)
    assert content.references["de-api"] == f"MP-{their_item}"  # out of DE's queue
    assert fake_iccam.queued_for("de-api") == []
    imported = _events(de, their_item, EventKind.ICCAM_IMPORTED)
    assert imported[0]["what"] == "report" and imported[0]["hotline"] == "nl-api"
    assert imported[0]["their_reference"] == f"MP-{item_id}"  # NL's reference kept
    with de.engine.connect() as conn:
        assert conn.execute(select(IccamLink.reference)).scalar() == f"MP-{item_id}"
    assert imported[0]["classification"] == {
        "status": "nationally_illegal",
        "age_band": "pubescent",
        "uk": "C",
    }
    assert [e["action"] for e in imported[1:]] == ["notice_sent_to_provider", "content_removed"]
    # NL's item moved on after the import: the next poll brings the new action, once
    with nl.engine.begin() as conn:
        timeline.record(conn, EventKind.REFERRAL_EXPORTED, at=nl.clock.now(), item_id=item_id)
    settle(nl)
    de_clock.advance(10 * 60)
    settle(de)
    de_clock.advance(10 * 60)
    settle(de)
    imported = _events(de, their_item, EventKind.ICCAM_IMPORTED)
    assert [e.get("action") for e in imported[1:]] == [
        "notice_sent_to_provider",
        "content_removed",
        "reported_to_police",
    ]
    # an import run twice adds nothing twice
    result = iccam_import.run_import(de)
    assert (result.imported, result.actions) == (0, 0)
    with de.engine.connect() as conn:
        assert conn.execute(select(Item.id)).all() == [(their_item,)]


def test_an_imported_report_enters_the_walk(db_url: str, fake_iccam: FakeIccam) -> None:
    # a report made in ICCAM by another hotline, hosted in NL
    fake_iccam.reports[1] = {"hotlineReference": "DE-77", "by": "de-api", "body": {}, "contents": [5]}
    fake_iccam.contents[5] = Content(
        id=5,
        report_id=1,
        url={
            "urlString": "http://198.51.100.30/x",
            "isSourceUrl": True,
            "hostingCountryCode": "NL",
            "hostingIpAddress": "198.51.100.30",
        },
        assigned_country="NL",
        reporting_hotline="de-api",
        assessment={
            "assessingAnalystName": "de",
            "classification": 3,
            "ageCategorization": 1,
            "genderCategorization": 1,
        },
    )
    nl, _ = _services(db_url, fake_iccam, "nl-api", export_on=False, import_on=True)
    settle(nl)
    with nl.engine.connect() as conn:
        [(item_id, state)] = conn.execute(select(Item.id, Item.state)).all()
        [job] = conn.execute(select(Report.source, Report.description)).all()
    assert job.source == "iccam" and "ICCAM report 1, content 5" in job.description
    # doubtful: no status carried over (our analysts decide); "age not determined" is "cannot tell"
    [line] = _events(nl, item_id, EventKind.ICCAM_IMPORTED)
    assert line["classification"] == {"age_band": "unknown"}
    assert state in {s.value for s in ItemState}
    assert fake_iccam.contents[5].references["nl-api"] == f"MP-{item_id}"
