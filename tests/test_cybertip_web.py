"""The CyberTipline export on the item page (``web.cybertip``): a senior sees the panel on an item
two analysts found illegal and downloads the XML with the page's own form token (valid against the
XSD, audited, on the timeline); analysts see no panel and are refused the download; a forged token
changes nothing; an item not found illegal says why; the panel speaks Dutch and French."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import replace

import pytest

from meldpunt.act import timeline
from meldpunt.bootstrap import Services
from meldpunt.domain.acting import EventKind
from meldpunt.referral.cybertip import cybertip_problems
from meldpunt.settings import ReferralSettings
from tests.helpers.staff import token
from tests.helpers.webclient import WebClient
from tests.helpers.workspace import Workspace, _workspace
from tests.helpers.world import ILLEGAL, NOT_ILLEGAL

FORM = re.compile(r'<form method="post" action="(/items/\d+/cybertip\.xml)">(.*?)</form>', re.S)


@pytest.fixture
def ws(db_url: str) -> Iterator[Workspace]:
    with ExitStack() as stack:
        w = _workspace(db_url, stack)
        services: Services = w.staff.app.state.ctx.services
        services.settings = replace(
            services.settings, referral=ReferralSettings(cybertip_reporter_email="tips@hotline.example")
        )
        yield w


def _decided(ws: Workspace, classification: Mapping[str, object]) -> int:
    t = ws.triage
    anna, bert = ws.world.user("anna", "analyst"), ws.world.user("bert", "analyst")
    item = ws.item(images=2)
    t.claim(item, anna)
    t.classify(item, anna, classification)
    if t.final_classification(item) is None:  # illegal: a second opinion makes it final
        t.claim(item, bert)
        t.classify(item, bert, classification)
    assert t.final_classification(item) is not None
    return item


def _download(client: WebClient, item: int) -> tuple[int, bytes, dict[str, str]]:
    page = client.get(f"/items/{item}").text
    form = FORM.search(page)
    assert form, page
    r = client.post(form.group(1), data={"token": token(form.group(2))})
    return r.status_code, r.content, dict(r.headers)


def test_a_senior_downloads_the_export_audited(ws: Workspace) -> None:
    item = _decided(ws, ILLEGAL)
    sara = ws.user("sara", "senior")
    page = sara.get(f"/items/{item}").text
    assert "CyberTipline export" in page and "never media" in page
    status, body, headers = _download(sara, item)
    assert status == 200, body[:500]
    assert headers["content-type"].startswith("application/xml")
    assert f'filename="cybertip-item-{item}.xml"' in headers["content-disposition"]
    assert cybertip_problems(body) == []
    root = ET.fromstring(body)
    assert [c.text for c in root.iterfind("uploadedFiles/fileDetails/industryClassification")] == ["A1", "A1"]
    audit = ws.audit("referral.cybertip")
    assert [(a, s) for a, s, _ in audit] == [("sara", f"item:{item}")]
    assert audit[0][2]["sha256"] == headers["x-content-sha256"]
    services: Services = ws.staff.app.state.ctx.services
    kinds = [e.kind for e in timeline.for_item(services.engine, item)]
    assert EventKind.CYBERTIP_EXPORTED in kinds
    assert "In a CyberTipline export (2 files)." in sara.get(f"/items/{item}").text


def test_analysts_see_no_panel_and_are_refused(ws: Workspace) -> None:
    item = _decided(ws, ILLEGAL)
    carl = ws.user("carl", "analyst")
    page = carl.get(f"/items/{item}").text
    assert "CyberTipline" not in page
    r = carl.post(f"/items/{item}/cybertip.xml", data={"token": token(page)})
    assert r.status_code == 403
    assert ws.audit("referral.cybertip") == []


def test_a_forged_token_changes_nothing(ws: Workspace) -> None:
    item = _decided(ws, ILLEGAL)
    sara = ws.user("sara", "senior")
    r = sara.post(f"/items/{item}/cybertip.xml", data={"token": "forged"})
    assert r.status_code == 400 and "This form has expired" in r.text
    assert ws.audit("referral.cybertip") == []


def test_an_item_not_found_illegal_says_why(ws: Workspace) -> None:
    item = _decided(ws, NOT_ILLEGAL)
    sara = ws.user("sara", "senior")
    page = sara.get(f"/items/{item}").text
    assert "Only an item found illegal can be exported to the CyberTipline." in page
    assert not FORM.search(page)
    release = re.search(rf'action="/items/{item}/release"(.*?)</form>', page, re.S)
    assert release  # the item page's own token, which the export's form would carry
    r = sara.post(f"/items/{item}/cybertip.xml", data={"token": token(release.group(1))})
    assert r.status_code == 422 and "Only an item found illegal" in r.text
    assert ws.audit("referral.cybertip") == []


@pytest.mark.parametrize(
    ("accept_language", "words"),
    [
        ("nl-BE,nl;q=0.9", ("CyberTipline-export", "De XML downloaden")),
        ("fr-BE,fr;q=0.9", ("Export CyberTipline", "Télécharger le XML")),
    ],
)
def test_the_panel_in_dutch_and_french(ws: Workspace, accept_language: str, words: tuple[str, ...]) -> None:
    item = _decided(ws, ILLEGAL)
    sara = ws.user("sara", "senior")
    page = sara.get(f"/items/{item}", headers={"Accept-Language": accept_language}).text
    for w in words:
        assert w in page, w
