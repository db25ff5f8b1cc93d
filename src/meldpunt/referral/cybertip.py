"""CyberTipline-style XML for hotlines and platforms reporting to NCMEC: one incident (an item or a
set a senior chose), its web pages and its files' hashes and industry classification — never media.

Pure: plain facts in (:class:`CybertipFacts`), UTF-8 XML out (:func:`cybertip_xml`), checked by
:func:`validate_cybertip` against ``data/cybertip.xsd``, a schema written for meldpunt. Nothing here
opens a connection: the export is a file a person hands on; no call to NCMEC is ever made.

What was learnt, and where
--------------------------
NCMEC's CyberTipline reporting API takes XML whose children must come in the order of its XSD's
sequences (out of order: ``responseCode`` 4100). NCMEC gives its XSD to registered reporters only;
the shapes below were read (not copied) from ROOST Coop's open-source reporter, GitHub
``roostorg/coop``, ``server/services/ncmecService/``:

- ``ncmecReporting.ts`` (the ``Report`` and ``FileDetails`` types, written in XSD order because
  xml-js emits keys in insertion order; the enumerations ``NCMECIncidentType``,
  ``NCMECIndustryClassification``, ``NCMECFileAnnotation``, ``NCMECEvent``, ``NCMECEmailType``;
  the contact person built as firstName, lastName, phone, email; ``<url>`` left out when it holds
  whitespace or control characters; ``additionalInfo`` and ``escalateToHighPriority`` at most 3000
  characters; ``incidentDateTime`` never in the future; a reporter e-mail address required);
- ``fieldCoverage.test.ts`` (the "XSD ordering locks": the full sequences of ``incidentSummary``,
  ``personOrUserReported``, ``fileDetails`` and ``ipCaptureEvent``, and which fields the XSD
  strictly requires: incidentType, incidentDateTime, reportingPerson's email);
- ``ncmecReporting.builders.test.ts`` and ``toOriginalFileHashes.test.ts`` (``originalFileHash``:
  the hash as text, its algorithm upper-cased in the ``hashType`` attribute, one element per hash,
  empty ones dropped; ``fileRelevance`` "Reported"; annotations as empty child elements).

NCMEC takes a report in steps: ``/submit`` the ``<report>`` (it answers a reportId), ``/upload``
each file (a fileId), ``/fileinfo`` one ``<fileDetails>`` per file, ``/finish``. A hotline has no
media to upload, so this export is one document holding both parts, each in NCMEC's order:

``cybertipExport`` (ours: version, exported) >
  ``report`` (Appendix B) > incidentSummary (incidentType, [escalateToHighPriority],
  incidentDateTime, [incidentDateTimeDescription]); internetDetails* > webPageIncident (url,
  [additionalInfo], [thirdPartyHostedContent]); [lawEnforcement]; reporter > reportingPerson
  ([firstName], [lastName], [phone], email), [contactPerson], [companyTemplate],
  [termsOfService], [legalURL]; [personOrUserReported]; intendedRecipient*; victim*;
  [additionalInfo]
  ``uploadedFiles`` > fileDetails+ (Appendix C): [reportId], [fileId], [fileName],
  [originalFileName], [uploadedToEspTimestamp], [locationOfFile], [fileViewedByEsp],
  [exifViewedByEsp], [publiclyAvailable], [fileRelevance], [fileAnnotations],
  [industryClassification], originalFileHash* (@hashType), ipCaptureEvent*, deviceId*, details*,
  additionalInfo*

Two versions of Coop disagree on one spot of ``fileDetails``: its builder test once put
``ipCaptureEvent`` before ``industryClassification``; the later "XSD ordering locks" put it after
``originalFileHash``. The later one is followed here (meldpunt writes no ipCaptureEvent anyway: the
hosting server's address is not a person's event and goes into the page's additionalInfo).
``reportId`` and ``fileId`` (NCMEC's numbers, known only after submitting) are optional in our XSD.
``personOrUserReported`` is never written: a hotline knows a URL, not who put it there.

The industry classification comes from meldpunt's ``us`` scheme (A1/A2/B1/B2). A file nobody
categorised under it carries no ``industryClassification`` element — the element is optional, and
NCMEC's analysts then classify the file themselves — and an ``additionalInfo`` line says so. A
category is never guessed from another scheme.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from meldpunt.settings import ReferralSettings

if TYPE_CHECKING:
    import xmlschema

#: the export format's version (the ``version`` attribute of ``cybertipExport``)
VERSION = 1

#: NCMEC's incident types; a hotline's reports of web pages are the first
INCIDENT_TYPES = (
    "Child Pornography (possession, manufacture, and distribution)",
    "Child Sex Trafficking",
    "Child Sex Tourism",
    "Child Sexual Molestation",
    "Misleading Domain Name",
    "Misleading Words or Digital Images on the Internet",
    "Online Enticement of Children for Sexual Acts",
    "Unsolicited Obscene Material Sent to a Child",
)
CHILD_SEXUAL_ABUSE_MATERIAL = INCIDENT_TYPES[0]

#: the industry classification (the values of meldpunt's ``us`` scheme)
INDUSTRY_CLASSIFICATIONS = ("A1", "A2", "B1", "B2")

#: NCMEC's file annotations, as their XML element names, in the XSD's order
FILE_ANNOTATIONS = (
    "animeDrawingVirtualHentai",
    "potentialMeme",
    "viral",
    "possibleSelfProduction",
    "physicalHarm",
    "violenceGore",
    "bestiality",
    "liveStreaming",
    "infant",
    "generativeAi",
)

#: hash types meldpunt computes, as NCMEC's ``hashType`` spells them, in the order they are written
HASH_TYPES = ("MD5", "SHA1", "SHA256", "PDQ")
_HASH_LENGTHS = {"MD5": 32, "SHA1": 40, "SHA256": 64, "PDQ": 64}

#: the documented sequences (tests check the XML against them; the XSD enforces them)
EXPORT_ORDER = ("report", "uploadedFiles")
REPORT_ORDER = (
    "incidentSummary",
    "internetDetails",
    "lawEnforcement",
    "reporter",
    "personOrUserReported",
    "intendedRecipient",
    "victim",
    "additionalInfo",
)
INCIDENT_SUMMARY_ORDER = (
    "incidentType",
    "escalateToHighPriority",
    "incidentDateTime",
    "incidentDateTimeDescription",
)
WEB_PAGE_INCIDENT_ORDER = ("url", "additionalInfo", "thirdPartyHostedContent")
REPORTER_ORDER = ("reportingPerson", "contactPerson", "companyTemplate", "termsOfService", "legalURL")
PERSON_ORDER = ("firstName", "lastName", "phone", "email")
FILE_DETAILS_ORDER = (
    "reportId",
    "fileId",
    "fileName",
    "originalFileName",
    "uploadedToEspTimestamp",
    "locationOfFile",
    "fileViewedByEsp",
    "exifViewedByEsp",
    "publiclyAvailable",
    "fileRelevance",
    "fileAnnotations",
    "industryClassification",
    "originalFileHash",
    "ipCaptureEvent",
    "deviceId",
    "details",
    "additionalInfo",
)

#: NCMEC's limit on free text (additionalInfo, escalateToHighPriority)
MAX_TEXT = 3000

# C0 controls but tab, newline and carriage return; DEL and C1 controls; surrogates; non-characters
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_URL_BAD = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
_HEX = re.compile(r"[0-9a-fA-F]+")


class CybertipError(ValueError):
    """Facts that cannot make a valid export (a control character, no reporter address, a bad
    hash): nothing is written, the message says what to fix."""


@dataclass(frozen=True)
class Reporter:
    """Who reports: the hotline or platform, from the ``referral`` settings."""

    email: str
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    #: the name NCMEC registered the reporter under (its "company template")
    company_template: str = ""
    legal_url: str = ""

    @classmethod
    def from_settings(cls, referral: ReferralSettings) -> Reporter:
        return cls(
            email=referral.cybertip_reporter_email.strip(),
            first_name=referral.cybertip_reporter_first_name.strip(),
            last_name=referral.cybertip_reporter_last_name.strip(),
            phone=referral.cybertip_reporter_phone.strip(),
            company_template=referral.cybertip_company_template.strip(),
            legal_url=referral.cybertip_legal_url.strip(),
        )


@dataclass(frozen=True)
class FileFacts:
    """One image or video found on a reported page: where, its hashes, its category."""

    #: where the file was found (NCMEC's locationOfFile)
    url: str
    #: hash type (``HASH_TYPES``) -> hex digest; empty ones are left out
    hashes: Mapping[str, str]
    #: A1/A2/B1/B2 from the ``us`` scheme; None: nobody categorised it (no element is written)
    industry_classification: str | None = None
    #: a person at the hotline looked at the file (NCMEC's fileViewedByEsp); False: a hash list knew it
    viewed: bool = False
    #: NCMEC annotation element names (``FILE_ANNOTATIONS``)
    annotations: tuple[str, ...] = ()
    #: further lines for NCMEC (which hash list matched, why there is no category ...)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PageFacts:
    """One reported URL (an item) and where it was hosted."""

    url: str
    reported_at: datetime
    #: the hotline's own reference for the item (e.g. "item 42")
    reference: str = ""
    #: the page after redirects ("" : not fetched, or the same)
    final_url: str = ""
    #: the hosting server's address (a server's, never a person's)
    server_ip: str = ""
    country: str = ""
    asn: int | None = None
    network_owner: str = ""
    provider: str = ""
    located_at: datetime | None = None
    #: reported as urgent (a child may be in danger now)
    urgent: bool = False
    files: tuple[FileFacts, ...] = ()


@dataclass(frozen=True)
class CybertipFacts:
    """One incident: its pages (each with its files), who reports, when the export was made."""

    pages: tuple[PageFacts, ...]
    reporter: Reporter
    exported_at: datetime
    incident_type: str = CHILD_SEXUAL_ABUSE_MATERIAL
    #: the reporter does not host the content itself (a hotline: always)
    third_party_hosted: bool = True
    #: lines for the report's own additionalInfo (who exported, the hotline's references)
    notes: tuple[str, ...] = field(default_factory=tuple)
    generator: str = "meldpunt"


def _aware(at: datetime) -> datetime:
    """A time in UTC (one without a zone is taken as UTC, as the database stores them)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def utc_text(at: datetime) -> str:
    """``2026-12-01T16:34:54Z``: UTC to the second, as NCMEC's dateTime fields are written."""
    return _aware(at).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: str, where: str, *, limit: int | None = None) -> str:
    """``value`` stripped, refused if it holds a control character (XML 1.0 cannot carry most of
    them, and a report is no place for them); cut at ``limit`` with an ellipsis."""
    found = _CONTROL.search(value)
    if found:
        raise CybertipError(f"{where}: control character U+{ord(found.group()):04X} is not allowed")
    value = value.strip()
    if limit is not None and len(value) > limit:
        value = value[: limit - 1].rstrip() + "…"
    return value


def _url(value: str, where: str) -> str:
    bad = _URL_BAD.search(value.strip())
    if bad or not value.strip():
        what = "empty" if not value.strip() else f"character U+{ord(bad.group()):04X}" if bad else ""
        raise CybertipError(f"{where}: not a URL NCMEC accepts ({what})")
    return value.strip()


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _hosting_line(page: PageFacts, where: str) -> str:
    """The page's hosting facts as one readable line (NCMEC has no element for a server)."""
    parts: list[str] = []
    if page.final_url and page.final_url != page.url:
        parts.append(f"After redirects: {_url(page.final_url, where + ' final URL')}.")
    hosted: list[str] = []
    if page.server_ip:
        hosted.append(f"server address {_text(page.server_ip, where + ' server address')}")
    if page.asn is not None:
        hosted.append(f"AS{page.asn}")
    owner = _text(page.network_owner or page.provider, where + " network owner", limit=300)
    if owner:
        hosted.append(owner)
    if page.country:
        hosted.append(f"country {_text(page.country, where + ' country').upper()}")
    if hosted:
        when = f" (located {utc_text(page.located_at)})" if page.located_at else ""
        parts.append("Hosted at " + ", ".join(hosted) + when + ".")
    if page.reference:
        parts.append(f"Hotline reference: {_text(page.reference, where + ' reference', limit=200)}.")
    return " ".join(parts)


def _file_name(url: str) -> str:
    """The last path segment of a file's URL, decoded (``a/my%20cat.jpg`` -> ``my cat.jpg``)."""
    segment = urlsplit(url).path.rsplit("/", 1)[-1]
    try:
        name = unquote(segment, errors="strict")
    except UnicodeDecodeError:
        name = segment
    return "" if _CONTROL.search(name) else name.strip()


def _hashes(file: FileFacts, where: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    unknown = set(file.hashes) - set(HASH_TYPES)
    if unknown:
        raise CybertipError(
            f"{where}: hash type {sorted(unknown)[0]!r} is not one of {', '.join(HASH_TYPES)}"
        )
    for kind in HASH_TYPES:
        value = (file.hashes.get(kind) or "").strip().lower()
        if not value:
            continue
        if len(value) != _HASH_LENGTHS[kind] or not _HEX.fullmatch(value):
            raise CybertipError(f"{where}: {kind} is not {_HASH_LENGTHS[kind]} hex digits")
        out.append((kind, value))
    return out


def _file_details(parent: ET.Element, file: FileFacts, page: PageFacts, where: str) -> None:
    fd = _sub(parent, "fileDetails")
    location = _url(file.url, where + " URL")
    name = _file_name(location)
    if name:
        _sub(fd, "originalFileName", name)
    _sub(fd, "locationOfFile", location)
    _sub(fd, "fileViewedByEsp", _bool(file.viewed))
    # it was on a page anyone could open: the hotline's fetcher needs no account
    _sub(fd, "publiclyAvailable", "true")
    _sub(fd, "fileRelevance", "Reported")
    wrong = [a for a in file.annotations if a not in FILE_ANNOTATIONS]
    if wrong:
        raise CybertipError(f"{where}: {wrong[0]!r} is not an NCMEC file annotation")
    if file.annotations:
        box = _sub(fd, "fileAnnotations")
        for name in FILE_ANNOTATIONS:
            if name in file.annotations:
                _sub(box, name)
    notes = list(file.notes)
    category = file.industry_classification
    if category is not None:
        if category not in INDUSTRY_CLASSIFICATIONS:
            raise CybertipError(
                f"{where}: {category!r} is not an industry classification ({', '.join(INDUSTRY_CLASSIFICATIONS)})"
            )
        _sub(fd, "industryClassification", category)
    else:
        notes.append(
            "No industry classification: the hotline did not categorise this file under the "
            "A1/A2/B1/B2 scheme."
        )
    for kind, value in _hashes(file, where):
        _sub(fd, "originalFileHash", value, hashType=kind)
    notes.append(f"Found on the reported page {_url(page.url, where + ' page URL')}.")
    for line in notes:
        text = _text(line, where + " note", limit=MAX_TEXT)
        if text:
            _sub(fd, "additionalInfo", text)


def _person(parent: ET.Element, tag: str, reporter: Reporter) -> None:
    person = _sub(parent, tag)
    if reporter.first_name:
        _sub(person, "firstName", _text(reporter.first_name, "reporter first name", limit=200))
    if reporter.last_name:
        _sub(person, "lastName", _text(reporter.last_name, "reporter last name", limit=200))
    if reporter.phone:
        _sub(person, "phone", _text(reporter.phone, "reporter phone", limit=60))
    _sub(person, "email", reporter.email, type="Business")


def cybertip_tree(facts: CybertipFacts) -> ET.Element:
    """The export as an ElementTree element (:func:`cybertip_xml` serialises it)."""
    if not facts.pages:
        raise CybertipError("an export needs at least one reported page")
    if facts.incident_type not in INCIDENT_TYPES:
        raise CybertipError(f"{facts.incident_type!r} is not an NCMEC incident type")
    email = _text(facts.reporter.email, "reporter e-mail")
    if not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
        raise CybertipError(
            "NCMEC needs the reporter's e-mail address: set referral.cybertip_reporter_email "
            "(MELDPUNT_REFERRAL_CYBERTIP_REPORTER_EMAIL)"
        )
    exported = facts.exported_at
    root = ET.Element(
        "cybertipExport",
        {
            "version": str(VERSION),
            "exported": utc_text(exported),
            "generator": _text(facts.generator, "generator", limit=200) or "meldpunt",
        },
    )
    report = _sub(root, "report")

    summary = _sub(report, "incidentSummary")
    _sub(summary, "incidentType", facts.incident_type)
    if any(p.urgent for p in facts.pages):
        _sub(
            summary,
            "escalateToHighPriority",
            "Reported to the hotline as urgent: a child may be in danger now.",
        )
    # the first report to the hotline, never after the export (NCMEC refuses future times)
    first = min(min(_aware(p.reported_at) for p in facts.pages), _aware(exported))
    _sub(summary, "incidentDateTime", utc_text(first))
    _sub(
        summary,
        "incidentDateTimeDescription",
        "When the hotline first received a report of this content; it may have been online earlier.",
    )

    for i, page in enumerate(facts.pages, 1):
        where = f"page {i}"
        web = _sub(_sub(report, "internetDetails"), "webPageIncident")
        _sub(web, "url", _url(page.url, where + " URL"))
        hosting = _hosting_line(page, where)
        if hosting:
            _sub(web, "additionalInfo", _text(hosting, where, limit=MAX_TEXT))
        _sub(web, "thirdPartyHostedContent", _bool(facts.third_party_hosted))

    reporter = _sub(report, "reporter")
    _person(reporter, "reportingPerson", replace(facts.reporter, email=email))
    if facts.reporter.company_template:
        _sub(
            reporter, "companyTemplate", _text(facts.reporter.company_template, "company template", limit=200)
        )
    if facts.reporter.legal_url:
        _sub(reporter, "legalURL", _url(facts.reporter.legal_url, "reporter legal URL"))

    notes = [_text(n, "note", limit=MAX_TEXT) for n in facts.notes]
    note = _text("\n".join(n for n in notes if n), "notes", limit=MAX_TEXT)
    if note:
        _sub(report, "additionalInfo", note)

    files = [
        (page, f, f"page {i} file {j}")
        for i, page in enumerate(facts.pages, 1)
        for j, f in enumerate(page.files, 1)
    ]
    if files:
        box = _sub(root, "uploadedFiles")
        for page, file, where in files:
            _file_details(box, file, page, where)
    return root


def cybertip_xml(facts: CybertipFacts) -> bytes:
    """The export as UTF-8 XML with its declaration. Escaping (``<``, ``&``, quotes) is
    ElementTree's; control characters are refused (:class:`CybertipError`), never written."""
    root = cybertip_tree(facts)
    ET.indent(root, space="  ")
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


# --- validation ------------------------------------------------------------------------------


def xsd_text() -> str:
    """The schema (``data/cybertip.xsd``), for people who validate with their own tools."""
    return resources.files("meldpunt.referral").joinpath("data/cybertip.xsd").read_text("utf-8")


@cache
def cybertip_schema() -> xmlschema.XMLSchema10:
    """The schema, loaded once with every outside resource refused: ``allow="sandbox"`` lets it
    read only files beside itself (it includes none), ``defuse="always"`` parses without entity
    expansion, so building it never fetches anything (XSD's own meta-schema ships in xmlschema)."""
    import xmlschema

    path = resources.files("meldpunt.referral").joinpath("data/cybertip.xsd")
    with resources.as_file(path) as file:
        return xmlschema.XMLSchema10(str(file), allow="sandbox", defuse="always")


def cybertip_problems(document: bytes | str) -> list[str]:
    """What is wrong with ``document`` against the schema ([] : valid). The document is parsed
    with entities refused and no resource allowed (``allow="none"``): a ``schemaLocation``, a DTD
    or an entity naming a URL is never fetched, and the schema used is ours, never the one a
    document asks for."""
    import xmlschema

    data = document.encode("utf-8") if isinstance(document, str) else document
    try:
        resource = xmlschema.XMLResource(data, allow="none", defuse="always")
    except Exception as e:  # malformed XML, a DTD with entities, ...: xmlschema's own errors vary
        return [f"not well-formed or not allowed: {e}"]
    return [_problem(e) for e in cybertip_schema().iter_errors(resource, use_location_hints=False)]


def _problem(error: Any) -> str:
    path = getattr(error, "path", None) or ""
    reason = getattr(error, "reason", None) or str(error)
    return f"{path}: {reason}" if path else str(reason)


def validate_cybertip(document: bytes | str) -> None:
    """Raise :class:`CybertipError` with every problem when ``document`` does not validate."""
    problems = cybertip_problems(document)
    if problems:
        raise CybertipError("not a valid CyberTipline export: " + "; ".join(problems[:10]))


def child_tags(element: ET.Element) -> list[str]:
    return [c.tag for c in element]


def in_order(tags: Sequence[str], order: Sequence[str]) -> bool:
    """``tags`` (repeats allowed) follow ``order``: each is named there, none goes backwards."""
    position = {t: i for i, t in enumerate(order)}
    if any(t not in position for t in tags):
        return False
    seq = [position[t] for t in tags]
    return seq == sorted(seq)
