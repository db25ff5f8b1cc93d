"""The CyberTipline-style XML (``meldpunt.referral.cybertip``), no database: it validates against
our XSD with xmlschema; documents out of order, missing a required element or with a bad
classification do not (so the XSD really checks order); children follow the documented sequences;
non-ASCII and hostile text is escaped, control characters refused; a file without a US category
carries none; several files; and validation fetches nothing (sockets blocked, a loopback server
named by schemaLocation and by an external entity is never asked)."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from xmlschema.validators import XsdComplexType, XsdGroup

from meldpunt.referral import cybertip as ct
from meldpunt.referral.cybertip import (
    CybertipError,
    CybertipFacts,
    FileFacts,
    PageFacts,
    Reporter,
    cybertip_problems,
    cybertip_xml,
    in_order,
    validate_cybertip,
)
from meldpunt.settings import ReferralSettings
from tests.helpers.cybertip import counting_server, fake_hashes

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
REPORTER = Reporter(
    email="cybertip@hotline.example",
    first_name="Hotline",
    last_name="Analyst",
    phone="+32 2 555 01 00",
    company_template="Example Hotline",
    legal_url="https://hotline.example/legal",
)


def _facts(**kw: Any) -> CybertipFacts:
    page1 = PageFacts(
        url="https://gallery.example/album/1",
        reported_at=NOW - timedelta(days=2),
        reference="item 1",
        final_url="https://gallery.example/album/1?page=1",
        server_ip="192.0.2.10",
        country="nl",
        asn=64500,
        network_owner="Example Hosting B.V.",
        located_at=NOW - timedelta(days=1),
        urgent=True,
        files=(
            FileFacts(
                url="https://cdn.gallery.example/img/a.jpg",
                hashes=fake_hashes("a"),
                industry_classification="A1",
                viewed=True,
                annotations=("infant",),
            ),
            FileFacts(
                url="https://cdn.gallery.example/img/b.png",
                hashes={"MD5": fake_hashes("b")["MD5"], "PDQ": fake_hashes("b")["PDQ"]},
                notes=("Known to the hotline's hash list (partner-list); not viewed by a person.",),
            ),
        ),
    )
    page2 = PageFacts(
        url="https://other.example/p",
        reported_at=NOW - timedelta(days=1),
        reference="item 2",
        files=(
            FileFacts(
                url="https://other.example/x.jpg",
                hashes=fake_hashes("c"),
                industry_classification="B2",
                viewed=True,
            ),
        ),
    )
    base = CybertipFacts(
        pages=(page1, page2), reporter=REPORTER, exported_at=NOW, notes=("Exported by a test.",)
    )
    return replace(base, **kw)


def _doc(facts: CybertipFacts | None = None) -> ET.Element:
    return ET.fromstring(cybertip_xml(facts or _facts()))


def _tags(el: ET.Element | None) -> list[str]:
    assert el is not None
    return [c.tag for c in el]


def _xml(root: ET.Element) -> bytes:
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


# --- valid, and in the documented order --------------------------------------------------------------


def test_the_export_validates_against_the_xsd() -> None:
    xml = cybertip_xml(_facts())
    assert xml.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert cybertip_problems(xml) == []
    validate_cybertip(xml)  # raises nothing


def test_children_follow_the_documented_order() -> None:
    root = _doc()
    assert root.tag == "cybertipExport" and root.get("version") == "1"
    assert root.get("exported") == "2026-12-01T12:00:00Z"
    assert _tags(root) == list(ct.EXPORT_ORDER)
    report = root.find("report")
    assert _tags(report) == [
        "incidentSummary",
        "internetDetails",
        "internetDetails",
        "reporter",
        "additionalInfo",
    ]
    assert in_order(_tags(report), ct.REPORT_ORDER)
    assert _tags(root.find("report/incidentSummary")) == list(ct.INCIDENT_SUMMARY_ORDER)
    for web in root.iterfind("report/internetDetails/webPageIncident"):
        assert in_order(_tags(web), ct.WEB_PAGE_INCIDENT_ORDER) and _tags(web)[0] == "url"
    assert _tags(root.find("report/reporter")) == ["reportingPerson", "companyTemplate", "legalURL"]
    assert _tags(root.find("report/reporter/reportingPerson")) == list(ct.PERSON_ORDER)
    first = root.find("uploadedFiles/fileDetails")
    assert _tags(first) == [
        "originalFileName",
        "locationOfFile",
        "fileViewedByEsp",
        "publiclyAvailable",
        "fileRelevance",
        "fileAnnotations",
        "industryClassification",
        "originalFileHash",
        "originalFileHash",
        "originalFileHash",
        "originalFileHash",
        "additionalInfo",
    ]
    for fd in root.iterfind("uploadedFiles/fileDetails"):
        assert in_order(_tags(fd), ct.FILE_DETAILS_ORDER)
    # the documented orders are the XSD's: each documented sequence is the schema's, in order
    schema = ct.cybertip_schema()
    for type_name, order in (
        ("report", ct.REPORT_ORDER),
        ("incidentSummary", ct.INCIDENT_SUMMARY_ORDER),
        ("webPageIncident", ct.WEB_PAGE_INCIDENT_ORDER),
        ("reporter", ct.REPORTER_ORDER),
        ("fileDetails", ct.FILE_DETAILS_ORDER),
        ("person", ct.PERSON_ORDER),
    ):
        xsd_type = schema.types[type_name]
        assert isinstance(xsd_type, XsdComplexType) and isinstance(xsd_type.content, XsdGroup)
        names = [e.local_name for e in xsd_type.content.iter_elements()]
        assert tuple(names) == order, type_name


def test_hashes_classification_and_annotations_are_written_the_ncmec_way() -> None:
    fd = _doc().find("uploadedFiles/fileDetails")
    assert fd is not None
    hashes = [(h.get("hashType"), h.text) for h in fd.iterfind("originalFileHash")]
    assert hashes == [(k, fake_hashes("a")[k]) for k in ("MD5", "SHA1", "SHA256", "PDQ")]
    assert fd.findtext("industryClassification") == "A1"
    assert _tags(fd.find("fileAnnotations")) == ["infant"]
    assert fd.findtext("fileViewedByEsp") == "true" and fd.findtext("fileRelevance") == "Reported"
    assert fd.findtext("originalFileName") == "a.jpg"
    assert fd.findtext("locationOfFile") == "https://cdn.gallery.example/img/a.jpg"


def test_the_incident_summary_and_the_page() -> None:
    root = _doc()
    assert root.findtext("report/incidentSummary/incidentType") == ct.CHILD_SEXUAL_ABUSE_MATERIAL
    assert (
        root.findtext("report/incidentSummary/incidentDateTime") == "2026-11-29T12:00:00Z"
    )  # the first report
    assert "urgent" in (root.findtext("report/incidentSummary/escalateToHighPriority") or "")
    web = root.find("report/internetDetails/webPageIncident")
    assert web is not None and web.findtext("url") == "https://gallery.example/album/1"
    info = web.findtext("additionalInfo") or ""
    assert "192.0.2.10" in info and "AS64500" in info and "country NL" in info and "item 1" in info
    assert "page=1" in info  # the final URL after redirects
    assert web.findtext("thirdPartyHostedContent") == "true"
    email = root.find("report/reporter/reportingPerson/email")
    assert email is not None and email.text == "cybertip@hotline.example" and email.get("type") == "Business"


def test_no_urgency_no_escalation_and_never_a_future_incident_time() -> None:
    facts = _facts()
    calm = tuple(replace(p, urgent=False, reported_at=NOW + timedelta(hours=1)) for p in facts.pages)
    root = _doc(replace(facts, pages=calm))
    assert root.find("report/incidentSummary/escalateToHighPriority") is None
    assert root.findtext("report/incidentSummary/incidentDateTime") == "2026-12-01T12:00:00Z"


def test_several_files_in_one_report() -> None:
    root = _doc()
    files = root.findall("uploadedFiles/fileDetails")
    assert len(files) == 3
    assert [f.findtext("locationOfFile") for f in files] == [
        "https://cdn.gallery.example/img/a.jpg",
        "https://cdn.gallery.example/img/b.png",
        "https://other.example/x.jpg",
    ]
    assert [f.findtext("industryClassification") for f in files] == ["A1", None, "B2"]
    assert len(root.findall("report")) == 1  # one report for the incident
    assert "other.example/p" in (files[2].findall("additionalInfo")[-1].text or "")


def test_a_file_without_a_us_category_gets_none_and_says_so() -> None:
    fd = _doc().findall("uploadedFiles/fileDetails")[1]
    assert fd.find("industryClassification") is None
    infos = [i.text or "" for i in fd.iterfind("additionalInfo")]
    assert any("No industry classification" in i for i in infos)
    assert fd.findtext("fileViewedByEsp") == "false"
    assert [h.get("hashType") for h in fd.iterfind("originalFileHash")] == ["MD5", "PDQ"]


def test_a_page_without_files_makes_no_files_element() -> None:
    facts = _facts()
    bare = replace(facts, pages=(replace(facts.pages[0], files=()),))
    xml = cybertip_xml(bare)
    assert ET.fromstring(xml).find("uploadedFiles") is None
    assert cybertip_problems(xml) == []


# --- hostile and non-ASCII text -----------------------------------------------------------------------


def test_non_ascii_and_markup_are_escaped_by_the_library() -> None:
    owner = "Ünïcødé Hosting <script>alert(\"x\")</script> & Co 'ltd' 中文 🚫"
    page = replace(_facts().pages[0], network_owner=owner, url="https://例え.example/ページ?a=1&b=<2>")
    facts = replace(_facts(), pages=(page,))
    xml = cybertip_xml(facts)
    assert b"<script>" not in xml and b"&lt;script&gt;" in xml and b"&amp; Co" in xml
    assert cybertip_problems(xml) == []
    root = ET.fromstring(xml)
    assert owner in (root.findtext("report/internetDetails/webPageIncident/additionalInfo") or "")
    assert (
        root.findtext("report/internetDetails/webPageIncident/url") == "https://例え.example/ページ?a=1&b=<2>"
    )


@pytest.mark.parametrize("bad", ["\x00", "\x01", "\x08", "\x0b", "\x1b", "\x7f", "\x85", "\ufffe"])
def test_control_characters_are_refused(bad: str) -> None:
    page = replace(_facts().pages[0], network_owner=f"Hosting{bad}Ltd")
    with pytest.raises(CybertipError, match="control character"):
        cybertip_xml(replace(_facts(), pages=(page,)))


@pytest.mark.parametrize(
    "url", ["https://a.example/x y", "https://a.example/\tx", "https://a.example/\x00", ""]
)
def test_urls_with_space_or_control_characters_are_refused(url: str) -> None:
    page = replace(_facts().pages[0], url=url)
    with pytest.raises(CybertipError, match="URL"):
        cybertip_xml(replace(_facts(), pages=(page,)))


def test_newlines_in_free_text_are_kept() -> None:
    facts = replace(_facts(), notes=("line one", "line two"))
    root = ET.fromstring(cybertip_xml(facts))
    assert root.findtext("report/additionalInfo") == "line one\nline two"


def test_long_text_is_cut_at_ncmecs_limit() -> None:
    page = replace(_facts().pages[0], files=(replace(_facts().pages[0].files[0], notes=("x" * 5000,)),))
    xml = cybertip_xml(replace(_facts(), pages=(page,)))
    texts = [i.text or "" for i in ET.fromstring(xml).iterfind("uploadedFiles/fileDetails/additionalInfo")]
    assert max(len(t) for t in texts) == ct.MAX_TEXT
    assert cybertip_problems(xml) == []


# --- facts that cannot make an export ------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        ({"industry_classification": "C1"}, "industry classification"),
        ({"industry_classification": "baseline"}, "industry classification"),
        ({"hashes": {"MD5": "abc"}}, "MD5"),
        ({"hashes": {"CRC32": "0" * 8}}, "hash type"),
        ({"hashes": {"SHA256": "z" * 64}}, "SHA256"),
        ({"annotations": ("cartoon",)}, "annotation"),
    ],
)
def test_bad_file_facts_are_refused(change: dict[str, Any], message: str) -> None:
    page = _facts().pages[0]
    bad = replace(page, files=(replace(page.files[0], **change),))
    with pytest.raises(CybertipError, match=message):
        cybertip_xml(replace(_facts(), pages=(bad,)))


def test_no_reporter_address_no_export() -> None:
    with pytest.raises(CybertipError, match="cybertip_reporter_email"):
        cybertip_xml(replace(_facts(), reporter=Reporter(email="")))
    with pytest.raises(CybertipError, match="at least one"):
        cybertip_xml(replace(_facts(), pages=()))
    with pytest.raises(CybertipError, match="incident type"):
        cybertip_xml(replace(_facts(), incident_type="Spam"))


def test_the_reporter_comes_from_the_referral_settings() -> None:
    r = Reporter.from_settings(
        ReferralSettings(cybertip_reporter_email=" a@b.example ", cybertip_company_template="Hotline X")
    )
    assert r.email == "a@b.example" and r.company_template == "Hotline X" and r.first_name == ""
    root = _doc(replace(_facts(), reporter=r))
    assert _tags(root.find("report/reporter/reportingPerson")) == ["email"]
    assert _tags(root.find("report/reporter")) == ["reportingPerson", "companyTemplate"]


# --- the XSD really checks --------------------------------------------------------------------------------


def _swap(parent: ET.Element, a: str, b: str) -> None:
    kids = list(parent)
    i = next(n for n, k in enumerate(kids) if k.tag == a)
    j = next(n for n, k in enumerate(kids) if k.tag == b)
    kids[i], kids[j] = kids[j], kids[i]
    parent[:] = kids


def _find(root: ET.Element, path: str) -> ET.Element:
    el = root.find(path)
    assert el is not None, path
    return el


def _broken(change: str) -> bytes:
    root = _doc()
    if change == "summary out of order":
        _swap(_find(root, "report/incidentSummary"), "incidentType", "incidentDateTime")
    elif change == "reporter before the pages":
        _swap(_find(root, "report"), "internetDetails", "reporter")
    elif change == "classification after the hashes":
        fd = _find(root, "uploadedFiles/fileDetails")
        ic = _find(fd, "industryClassification")
        fd.remove(ic)
        fd.insert(len(fd) - 1, ic)
    elif change == "person out of order":
        _swap(_find(root, "report/reporter/reportingPerson"), "firstName", "email")
    elif change == "files before the report":
        _swap(root, "report", "uploadedFiles")
    elif change == "no incident time":
        s = _find(root, "report/incidentSummary")
        s.remove(_find(s, "incidentDateTime"))
    elif change == "no reporter":
        r = _find(root, "report")
        r.remove(_find(r, "reporter"))
    elif change == "no reporter e-mail":
        p = _find(root, "report/reporter/reportingPerson")
        p.remove(_find(p, "email"))
    elif change == "no incident type":
        s = _find(root, "report/incidentSummary")
        s.remove(_find(s, "incidentType"))
    elif change == "no page URL":
        w = _find(root, "report/internetDetails/webPageIncident")
        w.remove(_find(w, "url"))
    elif change == "bad classification":
        _find(root, "uploadedFiles/fileDetails/industryClassification").text = "C1"
    elif change == "lower-case classification":
        _find(root, "uploadedFiles/fileDetails/industryClassification").text = "a1"
    elif change == "bad hash type":
        _find(root, "uploadedFiles/fileDetails/originalFileHash").set("hashType", "CRC32")
    elif change == "hash type twice":
        for h in _find(root, "uploadedFiles/fileDetails").iterfind("originalFileHash"):
            h.set("hashType", "MD5")
    elif change == "not a hash":
        _find(root, "uploadedFiles/fileDetails/originalFileHash").text = "not-hex"
    elif change == "bad incident type":
        _find(root, "report/incidentSummary/incidentType").text = "Spam"
    elif change == "time without zone":
        _find(root, "report/incidentSummary/incidentDateTime").text = "2026-11-29T12:00:00"
    elif change == "unknown element":
        ET.SubElement(_find(root, "report"), "mediaBytes").text = "AAAA"
    elif change == "annotation twice":
        ann = _find(root, "uploadedFiles/fileDetails/fileAnnotations")
        ET.SubElement(ann, "infant")
    elif change == "space in a URL":
        _find(root, "report/internetDetails/webPageIncident/url").text = "https://a.example/x y"
    elif change == "text too long":
        _find(root, "report/additionalInfo").text = "x" * 3001
    else:
        raise AssertionError(change)
    return _xml(root)


BROKEN = [
    "summary out of order",
    "reporter before the pages",
    "classification after the hashes",
    "person out of order",
    "files before the report",
    "no incident time",
    "no reporter",
    "no reporter e-mail",
    "no incident type",
    "no page URL",
    "bad classification",
    "lower-case classification",
    "bad hash type",
    "hash type twice",
    "not a hash",
    "bad incident type",
    "time without zone",
    "unknown element",
    "annotation twice",
    "space in a URL",
    "text too long",
]


@pytest.mark.parametrize("change", BROKEN)
def test_the_xsd_refuses(change: str) -> None:
    problems = cybertip_problems(_broken(change))
    assert problems, f"{change}: validated"
    with pytest.raises(CybertipError, match="not a valid CyberTipline export"):
        validate_cybertip(_broken(change))


def test_the_unbroken_document_passes_the_same_round_trip() -> None:
    assert cybertip_problems(_xml(_doc())) == []


def test_not_xml_is_a_problem_not_a_crash() -> None:
    assert cybertip_problems(b"<cybertipExport") != []
    assert cybertip_problems("") != []


# --- no network, ever -------------------------------------------------------------------------------------


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every outward connection (and name lookup) raises and is recorded."""
    tried: list[str] = []

    def refuse(*args: Any, **kw: Any) -> Any:
        tried.append(repr(args[:2]))
        raise OSError("network access during validation")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return tried


def test_the_schema_loads_and_validates_with_sockets_blocked(no_sockets: list[str]) -> None:
    ct.cybertip_schema.cache_clear()
    try:
        assert cybertip_problems(cybertip_xml(_facts())) == []
        assert cybertip_problems(_broken("bad classification")) != []
    finally:
        ct.cybertip_schema.cache_clear()
    assert no_sockets == []


def test_the_schema_names_nothing_outside_itself() -> None:
    xsd = ct.xsd_text()
    for word in ("xs:import", "xs:include", "xs:redefine", "schemaLocation", "http://", "https://"):
        if word == "http://":  # the XSD namespace itself is a name, not a location
            assert xsd.count("http://") == 1 and "http://www.w3.org/2001/XMLSchema" in xsd
            continue
        assert word not in xsd, word


def test_a_document_naming_a_schema_or_an_entity_on_the_network_fetches_nothing() -> None:
    with counting_server() as (base, hits):
        located = _doc()
        located.set(
            "{http://www.w3.org/2001/XMLSchema-instance}noNamespaceSchemaLocation", f"{base}/evil.xsd"
        )
        xml = _xml(located)
        assert b"evil.xsd" in xml
        assert cybertip_problems(xml) == []  # our schema decides, the hint is not followed
        entity = (
            f'<?xml version="1.0"?><!DOCTYPE cybertipExport [<!ENTITY x SYSTEM "{base}/entity">]>'
            "<cybertipExport>&x;</cybertipExport>"
        ).encode()
        assert cybertip_problems(entity) != []
        dtd = (
            f'<?xml version="1.0"?><!DOCTYPE cybertipExport SYSTEM "{base}/x.dtd"><cybertipExport/>'.encode()
        )
        assert cybertip_problems(dtd) != []
        assert hits == []
