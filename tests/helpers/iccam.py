"""A fake ICCAM 3.0 on loopback, written from the shapes SCARt's api3 shows (see meldpunt/iccam):
log-in with bearer tokens, reports, content items, assessments, actions, hotline references and the
work queues. It checks what it receives the way ICCAM would — required fields, codes in range, a
hotline reference not seen before — independently of meldpunt's own shapes (a shared mistake would
otherwise pass), and can be told to answer errors, hang, lose its answer, or answer junk.

Hotlines are users: each has a country; content is assigned to the country it is hosted in, and a
hotline's ``no-reference`` queue holds what is assigned to its country, reported by another hotline,
and has no reference of its own yet.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import Engine, insert

from meldpunt.act import timeline
from meldpunt.domain.acting import EventKind, TakedownState
from meldpunt.domain.reports import ItemState
from meldpunt.store.triage import TriageStatus
from tests.helpers.acting import seed_item, seed_location, seed_takedown

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
CLASSIFICATIONS = {1, 2, 3, 4}
AGES = {1, 2, 3, 4}
GENDERS = {1, 2, 3, 4}
ACTION_TYPES = {1, 2, 3, 4, 5, 7}
QUEUES = {"unassessed", "unactioned", "no-reference", "unassigned-to-hotline", "orphaned", "offline"}


@dataclass
class Hotline:
    name: str
    password: str
    country: str


@dataclass
class Content:
    id: int
    report_id: int
    url: dict[str, Any]
    assigned_country: str
    reporting_hotline: str
    assessment: dict[str, Any] | None
    actions: list[dict[str, Any]] = field(default_factory=list)
    references: dict[str, str] = field(default_factory=dict)

    def to_json(self, viewer: str) -> dict[str, Any]:
        return {
            "contentId": self.id,
            "reportId": self.report_id,
            "url": self.url,
            "assignedCountryCode": self.assigned_country,
            "hotlineReference": self.references.get(viewer, ""),
            "reportingHotline": self.reporting_hotline,
            "assessment": self.assessment,
            "actions": self.actions,
        }


@dataclass
class Fault:
    """What the next matching request gets instead of a normal answer."""

    method: str
    path: str  # a prefix of the request's path
    status: int = 500
    body: bytes = b'{"errors": {"general": ["internal error"]}}'
    #: "status": answer ``status``/``body``; "hang": answer nothing until released; "lose": do the
    #: work, then drop the connection without an answer; "raw": answer 200 with ``body``; "flood":
    #: answer 200 with ``size`` bytes of JSON-looking text, streamed (the fake holds 64 KiB at most)
    kind: str = "status"
    size: int = 0


@dataclass
class FakeIccam:
    hotlines: dict[str, Hotline] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    reports: dict[int, dict[str, Any]] = field(default_factory=dict)
    contents: dict[int, Content] = field(default_factory=dict)
    #: every request that reached the handler: (method, path, JSON body or None, user)
    calls: list[tuple[str, str, Any, str]] = field(default_factory=list)
    #: every call that changed something, in order: ("report", ref) / ("assessment", cid) / ("action", cid, type)
    effects: list[tuple[Any, ...]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0
    next_id: int = 1000

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def add_hotline(self, name: str, password: str, country: str) -> None:
        self.hotlines[name] = Hotline(name, password, country)

    def fail(self, method: str, path: str, status: int = 500, times: int = 1, **kw: Any) -> None:
        for _ in range(times):
            self.faults.append(Fault(method, path, status, **kw))

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def queued_for(self, hotline: str) -> list[Content]:
        h = self.hotlines[hotline]
        return [
            c
            for c in self.contents.values()
            if c.assigned_country == h.country
            and c.reporting_hotline != hotline
            and hotline not in c.references
        ]


class Invalid(Exception):
    def __init__(self, errors: dict[str, list[str]], status: int = 400) -> None:
        super().__init__(str(errors))
        self.errors = errors
        self.status = status


def _need(cond: bool, errors: dict[str, list[str]], name: str, text: str) -> None:
    if not cond:
        errors.setdefault(name, []).append(text)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_assessment(a: Any, where: str, errors: dict[str, list[str]]) -> None:
    if not isinstance(a, dict):
        errors.setdefault(where, []).append("required")
        return
    _need(
        isinstance(a.get("assessingAnalystName"), str) and bool(a.get("assessingAnalystName")),
        errors,
        f"{where}.assessingAnalystName",
        "required",
    )
    _need(
        a.get("classification") in CLASSIFICATIONS and _is_int(a.get("classification")),
        errors,
        f"{where}.classification",
        "out of range",
    )
    _need(
        a.get("ageCategorization") in AGES and _is_int(a.get("ageCategorization")),
        errors,
        f"{where}.ageCategorization",
        "out of range",
    )
    _need(
        a.get("genderCategorization") in GENDERS and _is_int(a.get("genderCategorization")),
        errors,
        f"{where}.genderCategorization",
        "out of range",
    )


def check_action(a: Any, errors: dict[str, list[str]]) -> None:
    if not isinstance(a, dict):
        raise Invalid({"body": ["an action object"]})
    t = a.get("actionType")
    _need(_is_int(t) and t in ACTION_TYPES, errors, "actionType", "out of range")
    _need(
        isinstance(a.get("actioningAnalystName"), str) and bool(a.get("actioningAnalystName")),
        errors,
        "actioningAnalystName",
        "required",
    )
    _need(
        isinstance(a.get("actionDate"), str) and bool(DATE.match(a.get("actionDate", ""))),
        errors,
        "actionDate",
        "not a date",
    )
    if isinstance(t, int) and not isinstance(t, bool) and t > 3:
        _need(_is_int(a.get("reasonId")), errors, "reasonId", "required for this action type")
        _need(
            isinstance(a.get("reasonText"), str) and bool(a.get("reasonText")),
            errors,
            "reasonText",
            "required for this action type",
        )


def check_report(r: Any, state: FakeIccam) -> None:
    errors: dict[str, list[str]] = {}
    if not isinstance(r, dict):
        raise Invalid({"body": ["a report object"]})
    _need(
        isinstance(r.get("reportingAnalystName"), str) and bool(r.get("reportingAnalystName")),
        errors,
        "reportingAnalystName",
        "required",
    )
    _need(
        isinstance(r.get("hotlineReceivedDate"), str) and bool(DATE.match(r.get("hotlineReceivedDate", ""))),
        errors,
        "hotlineReceivedDate",
        "not a date",
    )
    ref = r.get("hotlineReference")
    _need(isinstance(ref, str) and bool(ref), errors, "hotlineReference", "required")
    if any(rep["hotlineReference"] == ref for rep in state.reports.values()):
        errors.setdefault("hotlineReference", []).append("already used")
    urls = r.get("urls")
    _need(isinstance(urls, list) and bool(urls), errors, "urls", "at least one")
    for i, u in enumerate(urls if isinstance(urls, list) else []):
        if not isinstance(u, dict):
            errors.setdefault(f"urls[{i}]", []).append("an object")
            continue
        _need(
            isinstance(u.get("urlString"), str)
            and u.get("urlString", "").startswith(("http://", "https://")),
            errors,
            f"urls[{i}].urlString",
            "not a URL",
        )
        cc = u.get("hostingCountryCode")
        _need(
            isinstance(cc, str) and len(cc) == 2 and cc.isalpha() and cc.isupper(),
            errors,
            f"urls[{i}].hostingCountryCode",
            "not a country",
        )
        _need(u.get("contentType") in (1, 2), errors, f"urls[{i}].contentType", "out of range")
        _need(isinstance(u.get("isSourceUrl"), bool), errors, f"urls[{i}].isSourceUrl", "required")
        check_assessment(u.get("assessment"), f"urls[{i}].assessment", errors)
    if errors:
        raise Invalid(errors)


@pytest.fixture
def fake_iccam() -> Iterator[FakeIccam]:
    state = FakeIccam()
    state.add_hotline("nl-api", "secret-nl", "NL")
    state.add_hotline("de-api", "secret-de", "DE")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, data: Any = None, raw: bytes | None = None) -> None:
            body = raw if raw is not None else (b"" if data is None else json.dumps(data).encode())
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self, method: str) -> None:
            parts = urlsplit(self.path)
            path = parts.path.lstrip("/")
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                self._send(400, {"errors": {"body": ["not JSON"]}})
                return
            user = ""
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Bearer "):
                user = state.tokens.get(auth[7:], "")
            with state.lock:
                state.calls.append((method, path, body, user))
                fault = next(
                    (f for f in state.faults if f.method == method and path.startswith(f.path)), None
                )
                if fault is not None:
                    state.faults.remove(fault)
            if fault is not None and fault.kind == "status":
                self._send(fault.status, raw=fault.body)
                return
            if fault is not None and fault.kind == "hang":
                state.release.wait(10)
                self.close_connection = True
                return
            if fault is not None and fault.kind == "raw":
                self._send(200, raw=fault.body)
                return
            if fault is not None and fault.kind == "flood":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(fault.size))
                self.end_headers()
                chunk = b'"' + b"x" * 65534 + b'"'
                sent = 0
                try:
                    while sent < fault.size:
                        part = chunk[: fault.size - sent]
                        self.wfile.write(part)
                        sent += len(part)
                except OSError:
                    pass  # the client hung up: what it was meant to do
                self.close_connection = True
                return
            try:
                with state.lock:
                    status, data = self._route(method, path, query, body, user)
            except Invalid as exc:
                self._send(exc.status, {"errors": exc.errors})
                return
            if fault is not None and fault.kind == "lose":
                self.close_connection = True  # the work is done; the answer never leaves
                return
            if isinstance(data, int):
                self._send(status, raw=str(data).encode())
            else:
                self._send(status, data)

        def _route(
            self, method: str, path: str, query: dict[str, str], body: Any, user: str
        ) -> tuple[int, Any]:
            if path == "Authentication" and method == "POST":
                h = state.hotlines.get((body or {}).get("username", ""))
                if h is None or (body or {}).get("password") != h.password:
                    raise Invalid({"login": ["wrong user or password"]}, 401)
                token = secrets.token_hex(8)
                state.tokens[token] = h.name
                return 200, {
                    "bearerToken": token,
                    "refreshToken": secrets.token_hex(8),
                    "bearerTokenExpiresIn": 1800,
                }
            if not user:
                raise Invalid({"auth": ["not logged in"]}, 401)
            if path == "rest/reports" and method == "POST":
                check_report(body, state)
                report_id = state._id()
                state.reports[report_id] = {
                    "hotlineReference": body["hotlineReference"],
                    "by": user,
                    "body": body,
                    "contents": [],
                }
                for u in body["urls"]:
                    cid = state._id()
                    state.contents[cid] = Content(
                        id=cid,
                        report_id=report_id,
                        url={
                            k: u.get(k)
                            for k in ("urlString", "isSourceUrl", "hostingCountryCode", "hostingIpAddress")
                        }
                        | {"memo": u.get("memo", "")},
                        assigned_country=u["hostingCountryCode"],
                        reporting_hotline=user,
                        assessment=u["assessment"],
                    )
                    state.reports[report_id]["contents"].append(cid)
                state.effects.append(("report", body["hotlineReference"]))
                return 200, report_id
            m = re.fullmatch(r"rest/Reports/(\d+)", path)
            if m and method == "GET":
                rep = state.reports.get(int(m.group(1)))
                if rep is None:
                    raise Invalid({"report": ["not found"]}, 404)
                return 200, {
                    "id": int(m.group(1)),
                    "hotlineReference": rep["hotlineReference"],
                    "reportContents": [
                        {"contentId": c, "urlString": state.contents[c].url["urlString"]}
                        for c in rep["contents"]
                    ],
                }
            m = re.fullmatch(r"rest/Content/([a-z-]+)", path)
            if m and method == "GET":
                if m.group(1) not in QUEUES:
                    raise Invalid({"queue": ["unknown"]}, 404)
                n = int(query.get("maxResults", "30"))
                if not 1 <= n <= 200:
                    raise Invalid({"maxResults": ["1 to 200"]})
                items = state.queued_for(user) if m.group(1) == "no-reference" else []
                return 200, [{"reportId": c.report_id, "contentId": c.id} for c in items[:n]]
            m = re.fullmatch(r"rest/Content/(\d+)(/[a-z-/]+)?", path)
            if m:
                content = state.contents.get(int(m.group(1)))
                if content is None:
                    raise Invalid({"content": ["not found"]}, 404)
                tail = m.group(2) or ""
                if tail == "" and method == "GET":
                    return 200, content.to_json(user)
                if tail == "/assessment" and method == "PUT":
                    errors: dict[str, list[str]] = {}
                    check_assessment(body, "assessment", errors)
                    if errors:
                        raise Invalid(errors)
                    content.assessment = body
                    state.effects.append(("assessment", content.id))
                    return 200, None
                if tail == "/actions" and method == "POST":
                    errors = {}
                    check_action(body, errors)
                    if errors:
                        raise Invalid(errors)
                    content.actions.append(body)
                    state.effects.append(("action", content.id, body["actionType"]))
                    return 200, None
                if tail == "/hotline-reference" and method == "PUT":
                    ref = query.get("reference", "")
                    if not ref:
                        raise Invalid({"reference": ["required"]})
                    content.references[user] = ref
                    state.effects.append(("reference", content.id, ref))
                    return 200, None
            raise Invalid({"path": [f"no such endpoint: {method} {path}"]}, 404)

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


def seed_classified(
    engine: Engine,
    url: str,
    values: dict[str, str],
    *,
    now: datetime,
    country: str = "DE",
    removed: bool = True,
) -> int:
    """An item an analyst classified (``values``: scheme -> value), located in ``country``, its
    takedown noticed and (``removed``) removed — rows written straight in, timeline lines included."""
    item_id, _ = seed_item(engine, url, now=now, state=ItemState.CLASSIFIED)
    illegal = values.get("status") in ("baseline", "nationally_illegal")
    with engine.begin() as conn:
        conn.execute(
            insert(TriageStatus).values(
                item_id=item_id,
                stage="final",
                final=json.dumps(values, sort_keys=True),
                illegal=illegal,
                bank_pending=False,
                finalized_at=now,
                updated_at=now,
            )
        )
    if illegal:
        seed_location(engine, item_id, now=now, country=country, ip="192.0.2.7", provider="Example Hosting")
        seed_takedown(
            engine,
            item_id,
            now=now,
            state=TakedownState.REMOVED if removed else TakedownState.NOTICED,
            removed_at=now if removed else None,
        )
        with engine.begin() as conn:
            timeline.record(conn, EventKind.NOTICE_SENT, at=now, item_id=item_id)
            if removed:
                timeline.record(conn, EventKind.REMOVED, at=now, item_id=item_id, detail={"reason": "404"})
    return item_id
