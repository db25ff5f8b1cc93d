"""The ICCAM client and shapes on their own: what they send fits, what comes back is checked, and a
hostile answer — malformed, wrongly shaped, oversized, nested too deep — is refused within a budget
(peak memory measured beside reading the whole answer); log-in again on 401; the CLI."""

from __future__ import annotations

import contextlib
import gc
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from meldpunt.bootstrap import Services
from meldpunt.cli import app
from meldpunt.iccam.client import Credentials, IccamClient, IccamRefused, IccamRetryable
from meldpunt.iccam.shapes import (
    Action,
    Assessment,
    ContentItem,
    IccamReport,
    ReportUrl,
    ShapeError,
    decode,
)
from meldpunt.settings import Settings
from meldpunt.store.audit import AuditEntryRow
from tests.helpers.cli import runner
from tests.helpers.iccam import FakeIccam, seed_classified

AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def _client(fake: FakeIccam, **kw: Any) -> IccamClient:
    return IccamClient(fake.url, Credentials("nl-api", "secret-nl"), kw.pop("timeout", 2.0), **kw)


def _report(ref: str = "MP-1", country: str = "DE") -> IccamReport:
    a = Assessment(analyst="nl.analyst", classification=1, age=3)
    url = ReportUrl(
        url="http://198.51.100.40/p", reference=ref, country=country, ip="198.51.100.40", assessment=a
    )
    return IccamReport(analyst="nl.analyst", received=AT, reference=ref, urls=(url,))


def test_shapes_go_out_and_come_back_the_same() -> None:
    report = _report()
    assert IccamReport.from_json(report.to_json()) == report
    action = Action(type=4, analyst="x", date=AT, reason_text="gone")
    assert Action.from_json(action.to_json()) == Action(
        type=4, analyst="x", date=AT, reason_id=1, reason_text="gone"
    )
    assert report.to_json()["hotlineReceivedDate"] == "2026-12-01T09:30:00Z"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"classification": 9}, "classification: 9 is not one of"),
        ({"classification": "1"}, "classification: expected a whole number"),
        ({"ageCategorization": True}, "ageCategorization: expected a whole number"),
        ({"assessingAnalystName": ""}, "assessingAnalystName: required"),
    ],
)
def test_a_wrong_assessment_is_a_clear_error(change: dict[str, Any], message: str) -> None:
    data = Assessment(analyst="a", classification=1).to_json() | change
    with pytest.raises(ShapeError, match=message):
        Assessment.from_json(data)


def test_wrong_reports_and_actions_are_refused_before_sending() -> None:
    with pytest.raises(ShapeError, match="not an ISO 3166"):
        _report(country="Germany")
    with pytest.raises(ShapeError, match="needs a reasonText"):
        Action(type=7, analyst="x", date=AT)
    with pytest.raises(ShapeError, match="actionType: 6 is not one of"):
        Action(type=6, analyst="x", date=AT)
    with pytest.raises(ShapeError, match=r"content.url: expected an object"):
        ContentItem.from_json({"contentId": 1, "reportId": 2, "url": "http://x"})


def test_decode_keeps_to_its_budget() -> None:
    with pytest.raises(ShapeError, match="larger than 10 bytes"):
        decode(b"[" + b"1," * 10 + b"1]", max_bytes=10, max_depth=5)
    with pytest.raises(ShapeError, match="deeper than 32"):
        decode(b"[" * 100_000 + b"]" * 100_000, max_bytes=1_000_000, max_depth=32)
    assert decode(b'{"a": "[[[[[[["}', max_bytes=100, max_depth=1) == {"a": "[[[[[[["}  # in a string
    with pytest.raises(ShapeError, match="not JSON"):
        decode(b"{nope", max_bytes=100, max_depth=5)
    with pytest.raises(ShapeError, match="not UTF-8"):
        decode(b'"\xff"', max_bytes=100, max_depth=5)


def test_the_client_posts_a_report_and_reads_it_back(fake_iccam: FakeIccam) -> None:
    with _client(fake_iccam) as c:
        report_id = c.post_report(_report())
        view = c.get_report(report_id)
        [(content_id, url)] = view.contents
        assert url == "http://198.51.100.40/p" and view.reference == "MP-1"
        c.post_action(content_id, Action(type=2, analyst="nl.analyst", date=AT))
        assert [a.type for a in c.get_content(content_id).actions] == [2]
        with pytest.raises(IccamRefused, match="hotlineReference: \\['already used'\\]") as refused:
            c.post_report(_report())
        assert refused.value.status == 400 and not refused.value.retryable
        assert c.queue("no-reference") == []  # our own report is not in our queue
        with pytest.raises(ValueError, match="not an ICCAM queue"):
            c.queue("everything")


def test_an_expired_token_logs_in_again(fake_iccam: FakeIccam) -> None:
    with _client(fake_iccam) as c:
        c.queue("no-reference")
        fake_iccam.tokens.clear()  # ICCAM forgot the token
        assert c.queue("no-reference") == []
    logins = [call for call in fake_iccam.calls if call[1] == "Authentication"]
    assert len(logins) == 2


def test_wrong_credentials_are_refused(fake_iccam: FakeIccam) -> None:
    c = IccamClient(fake_iccam.url, Credentials("nl-api", "wrong"), 2.0)
    with pytest.raises(IccamRefused, match="wrong user or password"):
        c.queue("no-reference")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>oops</html>", "not JSON"),
        (
            b'{"contentId": 1, "reportId": 2, "url": {"urlString": "http://x/"}, "assessment": {"assessingAnalystName": "a", "classification": 42}}',
            "classification: 42 is not one of",
        ),
        (b"[" * 50_000 + b"]" * 50_000, "nests deeper than"),
        (
            b'{"contentId": "1", "reportId": 2, "url": {"urlString": "http://x/"}}',
            "contentId: expected a whole number",
        ),
    ],
)
def test_a_malformed_answer_is_refused_clearly(fake_iccam: FakeIccam, body: bytes, message: str) -> None:
    fake_iccam.fail("GET", "rest/Content/7", kind="raw", body=body)
    with _client(fake_iccam) as c, pytest.raises(IccamRetryable, match=message):
        c.get_content(7)


def _peak(call: Any) -> int:
    gc.collect()
    tracemalloc.start()
    with contextlib.suppress(Exception):
        call()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def test_an_oversized_answer_is_cut_off_within_the_budget(fake_iccam: FakeIccam) -> None:
    size, budget = 32 * 1024 * 1024, 1024 * 1024
    fake_iccam.fail("GET", "rest/Content/8", kind="flood", size=size)
    with _client(fake_iccam, max_bytes=budget) as c:
        c.queue("no-reference")  # logged in: the measure is the answer alone
        with pytest.raises(IccamRetryable, match="larger than 1048576 bytes"):
            c.get_content(8)
        fake_iccam.fail("GET", "rest/Content/8", kind="flood", size=size)
        ours = _peak(lambda: c.get_content(8))
    # the baseline: what reading the whole answer (httpx's .json()) would hold
    fake_iccam.fail("GET", "rest/Content/8", kind="flood", size=size)
    with httpx.Client() as plain:
        baseline = _peak(lambda: plain.get(fake_iccam.url + "rest/Content/8").content)
    print(
        f"peak memory on a {size >> 20} MiB answer: ours {ours / 2**20:.1f} MiB, whole body {baseline / 2**20:.1f} MiB"
    )
    assert ours < 3 * budget
    assert baseline > size  # the measure would have seen it


def test_the_cli_exports_imports_and_says_how_it_went(
    tmp_path: Path, fake_iccam: FakeIccam, monkeypatch: pytest.MonkeyPatch
) -> None:
    nl_db, de_db = str(tmp_path / "nl.db"), str(tmp_path / "de.db")
    engine = Services(Settings(db=nl_db)).engine
    item_id = seed_classified(engine, "http://198.51.100.50/q", {"status": "baseline"}, now=datetime.now(UTC))
    monkeypatch.setenv("MELDPUNT_ICCAM_URL", fake_iccam.url)
    monkeypatch.setenv("MELDPUNT_ICCAM_USERNAME", "nl-api")
    monkeypatch.setenv("MELDPUNT_ICCAM_PASSWORD", "secret-nl")
    result = runner.invoke(app, ["--db", nl_db, "iccam", "export", "--since", "2000-01-01"])
    assert result.exit_code == 0, result.output
    assert "4 sent" in result.stdout  # report, assessment, ISP, removed
    assert [e[0] for e in fake_iccam.effects] == ["report", "assessment", "action", "action"]
    result = runner.invoke(app, ["--db", nl_db, "iccam", "status"])
    assert "4 sent" in result.stdout and "1 exported" in result.stdout
    result = runner.invoke(app, ["--db", nl_db, "iccam", "export", "--since", "last tuesday"])
    assert result.exit_code == 2 and "--since" in result.output
    monkeypatch.setenv("MELDPUNT_ICCAM_USERNAME", "de-api")
    monkeypatch.setenv("MELDPUNT_ICCAM_PASSWORD", "secret-de")
    result = runner.invoke(app, ["--db", de_db, "iccam", "import"])
    assert result.exit_code == 0, result.output
    assert "imported 1" in result.stdout and "actions 2" in result.stdout
    result = runner.invoke(app, ["--db", de_db, "iccam", "import"])
    assert "imported 0" in result.stdout
    for db, action in ((nl_db, "iccam.export"), (de_db, "iccam.import")):
        with Services(Settings(db=db)).engine.connect() as conn:
            assert conn.execute(select(AuditEntryRow.action).where(AuditEntryRow.action == action)).first()
    assert item_id
    monkeypatch.delenv("MELDPUNT_ICCAM_URL")
    result = runner.invoke(app, ["--db", nl_db, "iccam", "import"])
    assert result.exit_code == 2 and "bridge is off" in result.output
