"""ICCAM 3.0's JSON shapes as dataclasses: reports, their URLs, assessments, actions, content items
and queue entries, each with ``to_json`` and a validating ``from_json``; and :func:`decode`, which
reads an answer within a size and depth budget before anything is built from it.

Why validate both ways: what we send must be what ICCAM accepts (codes in range, required fields),
and what ICCAM (or anything answering in its place) sends back is untrusted input — a wrong type or
an unknown code is a clear :class:`ShapeError`, never a half-filled object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

#: ICCAM's codes, as SCARt's api3 uses them (see the package docstring)
CLASSIFICATIONS = {1: "baseline", 2: "national", 3: "doubtful", 4: "ignore"}
AGE_CATEGORIES = {1: "not_determined", 2: "infant", 3: "prepubescent", 4: "pubescent"}
GENDER_CATEGORIES = {1: "not_determined", 2: "female", 3: "male", 4: "both"}
ACTION_TYPES = {
    1: "lea",
    2: "isp",
    3: "content_removed",
    4: "content_unavailable",
    5: "moved",
    7: "not_illegal",
}
CONTENT_TYPES = {1: "media", 2: "website"}
QUEUES = ("unassessed", "unactioned", "no-reference", "unassigned-to-hotline", "orphaned", "offline")
MAX_QUEUE_RESULTS = 200
#: action types that need a reason (SCARt: "first three have NO actionReason")
REASONED_ACTIONS = frozenset({4, 5, 7})

MAX_TEXT = 4000
MAX_URL = 8192


class ShapeError(ValueError):
    """A JSON value that does not fit ICCAM's shape: which field, and why."""


def iccam_date(at: datetime) -> str:
    """ICCAM's date form: UTC, seconds, a ``Z`` (``2026-12-01T10:00:00Z``)."""
    return at.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_date(value: Any, where: str) -> datetime:
    text = _str(value, where, required=True)
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ShapeError(f"{where}: not a date: {text[:40]!r}") from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ShapeError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _str(value: Any, where: str, *, required: bool = False, limit: int = MAX_TEXT) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ShapeError(f"{where}: expected text, got {type(value).__name__}")
    if required and not value.strip():
        raise ShapeError(f"{where}: required")
    if len(value) > limit:
        raise ShapeError(f"{where}: longer than {limit} characters")
    return value


def _int(value: Any, where: str, *, codes: dict[int, str] | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ShapeError(f"{where}: expected a whole number, got {type(value).__name__}")
    if codes is not None and value not in codes:
        raise ShapeError(f"{where}: {value} is not one of {sorted(codes)}")
    if codes is None and value < 1:
        raise ShapeError(f"{where}: {value} is not an ID")
    return value


def _bool(value: Any, where: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ShapeError(f"{where}: expected true or false, got {type(value).__name__}")
    return value


def _list(value: Any, where: str, *, limit: int = 10_000) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ShapeError(f"{where}: expected a list, got {type(value).__name__}")
    if len(value) > limit:
        raise ShapeError(f"{where}: more than {limit} entries")
    return value


def _country(value: Any, where: str) -> str:
    text = _str(value, where)
    if text and (len(text) != 2 or not text.isalpha()):
        raise ShapeError(f"{where}: {text!r} is not an ISO 3166 country code")
    return text.upper()


@dataclass(frozen=True)
class Assessment:
    analyst: str
    classification: int
    age: int = 1
    gender: int = 1
    virtual: bool = False
    user_generated: bool = False
    child_modeling: bool = False

    def __post_init__(self) -> None:
        _int(self.classification, "classification", codes=CLASSIFICATIONS)
        _int(self.age, "ageCategorization", codes=AGE_CATEGORIES)
        _int(self.gender, "genderCategorization", codes=GENDER_CATEGORIES)
        _str(self.analyst, "assessingAnalystName", required=True, limit=200)

    def to_json(self) -> dict[str, Any]:
        return {
            "assessingAnalystName": self.analyst,
            "classification": self.classification,
            "ageCategorization": self.age,
            "genderCategorization": self.gender,
            "virtualContentCategorization": self.virtual,
            "userGeneratedContentCategorization": self.user_generated,
            "childModelingCategorization": self.child_modeling,
        }

    @classmethod
    def from_json(cls, value: Any, where: str = "assessment") -> Assessment:
        data = _obj(value, where)
        return cls(
            analyst=_str(data.get("assessingAnalystName"), f"{where}.assessingAnalystName", required=True),
            classification=_int(data.get("classification"), f"{where}.classification", codes=CLASSIFICATIONS),
            age=_int(data.get("ageCategorization", 1), f"{where}.ageCategorization", codes=AGE_CATEGORIES),
            gender=_int(
                data.get("genderCategorization", 1), f"{where}.genderCategorization", codes=GENDER_CATEGORIES
            ),
            virtual=_bool(data.get("virtualContentCategorization"), f"{where}.virtualContentCategorization"),
            user_generated=_bool(
                data.get("userGeneratedContentCategorization"), f"{where}.userGeneratedContentCategorization"
            ),
            child_modeling=_bool(
                data.get("childModelingCategorization"), f"{where}.childModelingCategorization"
            ),
        )


@dataclass(frozen=True)
class Action:
    type: int
    analyst: str
    date: datetime
    reason_id: int | None = None
    reason_text: str = ""

    def __post_init__(self) -> None:
        _int(self.type, "actionType", codes=ACTION_TYPES)
        _str(self.analyst, "actioningAnalystName", required=True, limit=200)
        if self.type in REASONED_ACTIONS and not self.reason_text.strip():
            raise ShapeError(f"actionType {self.type} needs a reasonText")

    @property
    def name(self) -> str:
        return ACTION_TYPES[self.type]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "actionType": self.type,
            "actioningAnalystName": self.analyst,
            "actionDate": iccam_date(self.date),
        }
        if self.type in REASONED_ACTIONS:
            out["reasonId"] = self.reason_id if self.reason_id is not None else 1  # 1: "Other"
            out["reasonText"] = self.reason_text
        return out

    @classmethod
    def from_json(cls, value: Any, where: str = "action") -> Action:
        data = _obj(value, where)
        reason_id = data.get("reasonId")
        return cls(
            type=_int(data.get("actionType"), f"{where}.actionType", codes=ACTION_TYPES),
            analyst=_str(data.get("actioningAnalystName"), f"{where}.actioningAnalystName", required=True),
            date=parse_date(data.get("actionDate"), f"{where}.actionDate"),
            reason_id=None if reason_id is None else _int(reason_id, f"{where}.reasonId"),
            reason_text=_str(data.get("reasonText"), f"{where}.reasonText"),
        )


@dataclass(frozen=True)
class ReportUrl:
    url: str
    reference: str
    country: str
    ip: str
    assessment: Assessment
    is_source: bool = True
    content_type: int = 2
    memo: str = ""
    actions: tuple[Action, ...] = ()

    def __post_init__(self) -> None:
        _str(self.url, "urlString", required=True, limit=MAX_URL)
        _country(self.country, "hostingCountryCode")
        _int(self.content_type, "contentType", codes=CONTENT_TYPES)

    def to_json(self) -> dict[str, Any]:
        return {
            "urlString": self.url,
            "hotlineReference": self.reference,
            "hostingCountryCode": self.country,
            "hostingIpAddress": self.ip,
            "isSourceUrl": self.is_source,
            "memo": self.memo,
            "contentType": self.content_type,
            "assessment": self.assessment.to_json(),
            "actions": [a.to_json() for a in self.actions],
        }

    @classmethod
    def from_json(cls, value: Any, where: str = "url") -> ReportUrl:
        data = _obj(value, where)
        return cls(
            url=_str(data.get("urlString"), f"{where}.urlString", required=True, limit=MAX_URL),
            reference=_str(data.get("hotlineReference"), f"{where}.hotlineReference", limit=200),
            country=_country(data.get("hostingCountryCode"), f"{where}.hostingCountryCode"),
            ip=_str(data.get("hostingIpAddress"), f"{where}.hostingIpAddress", limit=64),
            is_source=_bool(data.get("isSourceUrl"), f"{where}.isSourceUrl"),
            content_type=_int(data.get("contentType"), f"{where}.contentType", codes=CONTENT_TYPES),
            memo=_str(data.get("memo"), f"{where}.memo"),
            assessment=Assessment.from_json(data.get("assessment"), f"{where}.assessment"),
            actions=tuple(
                Action.from_json(a, f"{where}.actions[{i}]")
                for i, a in enumerate(_list(data.get("actions"), f"{where}.actions"))
            ),
        )


@dataclass(frozen=True)
class IccamReport:
    """A report as ``POST rest/reports`` takes it."""

    analyst: str
    received: datetime
    reference: str
    urls: tuple[ReportUrl, ...]
    memo: str = ""
    referrer: str = ""
    site_type: int = 2
    commerciality: int = 1
    payment_methods: tuple[int, ...] = (1,)

    def __post_init__(self) -> None:
        _str(self.analyst, "reportingAnalystName", required=True, limit=200)
        _str(self.reference, "hotlineReference", required=True, limit=200)
        if not self.urls:
            raise ShapeError("urls: a report needs at least one URL")
        if sum(1 for u in self.urls if u.is_source) != 1:
            raise ShapeError("urls: exactly one URL must be the source URL (isSourceUrl)")

    def to_json(self) -> dict[str, Any]:
        return {
            "reportingAnalystName": self.analyst,
            "hotlineReceivedDate": iccam_date(self.received),
            "hotlineReference": self.reference,
            "memo": self.memo,
            "sourceUrlUsername": "",
            "sourceUrlPassword": "",
            "sourceUrlReferrer": self.referrer or None,
            "sourceUrlSiteType": self.site_type,
            "sourceUrlCommerciality": self.commerciality,
            "sourceUrlPaymentMethods": list(self.payment_methods),
            "urls": [u.to_json() for u in self.urls],
        }

    @classmethod
    def from_json(cls, value: Any, where: str = "report") -> IccamReport:
        data = _obj(value, where)
        methods = _list(data.get("sourceUrlPaymentMethods"), f"{where}.sourceUrlPaymentMethods", limit=20)
        return cls(
            analyst=_str(data.get("reportingAnalystName"), f"{where}.reportingAnalystName", required=True),
            received=parse_date(data.get("hotlineReceivedDate"), f"{where}.hotlineReceivedDate"),
            reference=_str(
                data.get("hotlineReference"), f"{where}.hotlineReference", required=True, limit=200
            ),
            memo=_str(data.get("memo"), f"{where}.memo"),
            referrer=_str(data.get("sourceUrlReferrer"), f"{where}.sourceUrlReferrer", limit=MAX_URL),
            site_type=_int(data.get("sourceUrlSiteType", 2), f"{where}.sourceUrlSiteType"),
            commerciality=_int(data.get("sourceUrlCommerciality", 1), f"{where}.sourceUrlCommerciality"),
            payment_methods=tuple(_int(m, f"{where}.sourceUrlPaymentMethods") for m in methods),
            urls=tuple(
                ReportUrl.from_json(u, f"{where}.urls[{i}]")
                for i, u in enumerate(_list(data.get("urls"), f"{where}.urls", limit=1000))
            ),
        )


@dataclass(frozen=True)
class ReportView:
    """A report as ``GET rest/Reports/{id}`` answers it: which content ID each URL got."""

    id: int
    reference: str
    contents: tuple[tuple[int, str], ...]  # (contentId, urlString)

    def content_id_of(self, url: str) -> int | None:
        return next((cid for cid, u in self.contents if u == url), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "hotlineReference": self.reference,
            "reportContents": [{"contentId": c, "urlString": u} for c, u in self.contents],
        }

    @classmethod
    def from_json(cls, value: Any, where: str = "report") -> ReportView:
        data = _obj(value, where)
        contents = []
        for i, entry in enumerate(_list(data.get("reportContents"), f"{where}.reportContents", limit=1000)):
            e = _obj(entry, f"{where}.reportContents[{i}]")
            cid = e.get("contentId", e.get("id"))  # older answers name it "id"
            contents.append(
                (
                    _int(cid, f"{where}.reportContents[{i}].contentId"),
                    _str(
                        e.get("urlString"),
                        f"{where}.reportContents[{i}].urlString",
                        required=True,
                        limit=MAX_URL,
                    ),
                )
            )
        return cls(
            id=_int(data.get("id", data.get("reportId")), f"{where}.id"),
            reference=_str(data.get("hotlineReference"), f"{where}.hotlineReference", limit=200),
            contents=tuple(contents),
        )


@dataclass(frozen=True)
class ContentItem:
    """One content item as ``GET rest/Content/{id}`` answers it."""

    id: int
    report_id: int
    url: str
    is_source: bool
    country: str
    ip: str
    assigned_country: str = ""
    hotline_reference: str = ""
    reporting_hotline: str = ""
    memo: str = ""
    assessment: Assessment | None = None
    actions: tuple[Action, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {
            "contentId": self.id,
            "reportId": self.report_id,
            "url": {
                "urlString": self.url,
                "isSourceUrl": self.is_source,
                "hostingCountryCode": self.country,
                "hostingIpAddress": self.ip,
                "memo": self.memo,
            },
            "assignedCountryCode": self.assigned_country,
            "hotlineReference": self.hotline_reference,
            "reportingHotline": self.reporting_hotline,
            "assessment": None if self.assessment is None else self.assessment.to_json(),
            "actions": [a.to_json() for a in self.actions],
        }

    @classmethod
    def from_json(cls, value: Any, where: str = "content") -> ContentItem:
        data = _obj(value, where)
        url = _obj(data.get("url"), f"{where}.url")
        assessment = data.get("assessment")
        return cls(
            id=_int(data.get("contentId"), f"{where}.contentId"),
            report_id=_int(data.get("reportId"), f"{where}.reportId"),
            url=_str(url.get("urlString"), f"{where}.url.urlString", required=True, limit=MAX_URL),
            is_source=_bool(url.get("isSourceUrl"), f"{where}.url.isSourceUrl"),
            country=_country(url.get("hostingCountryCode"), f"{where}.url.hostingCountryCode"),
            ip=_str(url.get("hostingIpAddress"), f"{where}.url.hostingIpAddress", limit=64),
            assigned_country=_country(data.get("assignedCountryCode"), f"{where}.assignedCountryCode"),
            hotline_reference=_str(data.get("hotlineReference"), f"{where}.hotlineReference", limit=200),
            reporting_hotline=_str(data.get("reportingHotline"), f"{where}.reportingHotline", limit=200),
            memo=_str(url.get("memo"), f"{where}.url.memo"),
            assessment=None
            if assessment is None
            else Assessment.from_json(assessment, f"{where}.assessment"),
            actions=tuple(
                Action.from_json(a, f"{where}.actions[{i}]")
                for i, a in enumerate(_list(data.get("actions"), f"{where}.actions", limit=1000))
            ),
        )


@dataclass(frozen=True)
class QueueEntry:
    report_id: int
    content_id: int

    def to_json(self) -> dict[str, Any]:
        return {"reportId": self.report_id, "contentId": self.content_id}

    @classmethod
    def from_json(cls, value: Any, where: str = "queue") -> QueueEntry:
        data = _obj(value, where)
        return cls(
            report_id=_int(data.get("reportId"), f"{where}.reportId"),
            content_id=_int(data.get("contentId"), f"{where}.contentId"),
        )


def queue_from_json(value: Any) -> list[QueueEntry]:
    return [
        QueueEntry.from_json(e, f"queue[{i}]")
        for i, e in enumerate(_list(value, "queue", limit=MAX_QUEUE_RESULTS))
    ]


def _depth_within(text: str, max_depth: int) -> bool:
    """Whether no array/object nests deeper than ``max_depth`` (brackets inside strings do not
    count): checked before ``json.loads`` builds anything, so a deep answer costs no recursion."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > max_depth:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def decode(body: bytes, *, max_bytes: int, max_depth: int) -> Any:
    """An answer's JSON within the budget: ShapeError when it is bigger than ``max_bytes``, nests
    deeper than ``max_depth``, is not UTF-8 or not JSON."""
    if len(body) > max_bytes:
        raise ShapeError(f"answer larger than {max_bytes} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ShapeError("answer is not UTF-8") from None
    if not _depth_within(text, max_depth):
        raise ShapeError(f"answer nests deeper than {max_depth}")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ShapeError(f"answer is not JSON: {exc}") from None
