"""A client for ICCAM 3.0's REST API (the endpoints SCARt uses; see the package docstring): log in,
post reports, put assessments, post actions, read reports, content items and work queues.

Every call has one overall deadline (``timeout``: connecting, sending, the answer's headers and
body together) and a budget for the answer (size, nesting), so a slow or hostile server costs a
bounded time and memory. Errors say whether trying again can help: :class:`IccamRetryable`
(timeouts, broken connections, 408/425/429, 5xx, a malformed answer) or :class:`IccamRefused`
(other 4xx: ICCAM's ``errors`` text is the reason). ``sent`` on an error says whether the request
may have reached ICCAM — the caller must then not blindly post it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from meldpunt.domain.tls import ssl_context
from meldpunt.iccam.shapes import (
    MAX_QUEUE_RESULTS,
    QUEUES,
    Action,
    Assessment,
    ContentItem,
    IccamReport,
    QueueEntry,
    ReportView,
    ShapeError,
    decode,
    iccam_date,
    queue_from_json,
)

RETRY_STATUSES = frozenset({408, 425, 429})
#: the largest answer read (a queue of 200 content items is far below it)
MAX_ANSWER_BYTES = 4 * 1024 * 1024
MAX_ANSWER_DEPTH = 32


class IccamError(Exception):
    """An ICCAM call failed. ``retryable``: trying again later can help. ``status``: ICCAM's HTTP
    status (None: no answer). ``sent``: the request may have reached ICCAM (its effect unknown)."""

    retryable = False

    def __init__(self, reason: str, *, status: int | None = None, sent: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.sent = sent


class IccamRetryable(IccamError):
    retryable = True


class IccamRefused(IccamError):
    retryable = False


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


def _errors_text(data: Any) -> str:
    if isinstance(data, dict) and "errors" in data:
        errors = data["errors"]
        if isinstance(errors, dict):
            return "; ".join(f"{k}: {v}" for k, v in list(errors.items())[:10])[:1000]
        if isinstance(errors, list):
            return "; ".join(str(e) for e in errors[:10])[:1000]
        return str(errors)[:1000]
    return ""


class IccamClient:
    """One ICCAM API, logged in on first use (the bearer token renewed when it runs out, or when a
    call answers 401). ``transport``: an ``httpx`` transport (tests, a client certificate)."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
        *,
        max_bytes: int = MAX_ANSWER_BYTES,
        max_depth: int = MAX_ANSWER_DEPTH,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.base_url = base_url.rstrip("/") + "/"
        self.credentials = credentials
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self._monotonic = monotonic
        self._http = httpx.Client(
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": "meldpunt"},
            verify=ssl_context(trust_env=True),
        )
        self._token = ""
        self._refresh = ""
        self._expires = 0.0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> IccamClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the wire --------------------------------------------------------------------------------
    def _raw(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        auth: bool = True,
    ) -> tuple[int, Any]:
        """One HTTP exchange within the deadline: (status, decoded JSON or None)."""
        deadline = self._monotonic() + self.timeout
        headers = {"accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self._token}"
        sent = method != "GET"
        try:
            with self._http.stream(
                method,
                self.base_url + path,
                json=body,
                params=params,
                headers=headers,
                timeout=httpx.Timeout(self.timeout),
            ) as answer:
                chunks: list[bytes] = []
                size = 0
                for chunk in answer.iter_raw():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise IccamRetryable(
                            f"ICCAM {method} {path}: answer larger than {self.max_bytes} bytes",
                            status=answer.status_code,
                            sent=sent,
                        )
                    if self._monotonic() > deadline:
                        raise IccamRetryable(
                            f"ICCAM {method} {path}: no whole answer within {self.timeout:g} s",
                            status=answer.status_code,
                            sent=sent,
                        )
                    chunks.append(chunk)
                status = answer.status_code
        except httpx.TimeoutException as exc:
            raise IccamRetryable(
                f"ICCAM {method} {path}: timed out ({type(exc).__name__})", sent=sent
            ) from None
        except httpx.ConnectError as exc:
            raise IccamRetryable(f"ICCAM {method} {path}: cannot connect: {exc}") from None
        except httpx.HTTPError as exc:
            raise IccamRetryable(f"ICCAM {method} {path}: {type(exc).__name__}: {exc}", sent=sent) from None
        raw = b"".join(chunks)
        try:
            data = decode(raw, max_bytes=self.max_bytes, max_depth=self.max_depth) if raw.strip() else None
        except ShapeError as exc:
            if 200 <= status < 300:
                raise IccamRetryable(f"ICCAM {method} {path}: {exc}", status=status, sent=sent) from None
            data = None
        return status, data

    def _login(self) -> None:
        status, data = self._raw(
            "POST",
            "Authentication",
            body={"username": self.credentials.username, "password": self.credentials.password},
            auth=False,
        )
        if status != 200:
            self._fail("POST", "Authentication", status, data, sent=False)
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("bearerToken"), str)
            or not data["bearerToken"]
        ):
            raise IccamRetryable("ICCAM login: no bearerToken in the answer", status=status)
        self._token = data["bearerToken"]
        self._refresh = str(data.get("refreshToken") or "")
        expires = data.get("bearerTokenExpiresIn", 1800)
        seconds = (
            float(expires) if isinstance(expires, int | float) and not isinstance(expires, bool) else 1800.0
        )
        self._expires = self._monotonic() + max(0.0, seconds - 30.0)  # renew a little before the end

    def _ensure_login(self) -> None:
        if not self._token or self._monotonic() >= self._expires:
            self._token = ""
            self._login()

    def _fail(self, method: str, path: str, status: int, data: Any, *, sent: bool) -> None:
        reason = _errors_text(data) or f"HTTP {status}"
        text = f"ICCAM {method} {path} answered {status}: {reason}"
        if status >= 500 or status in RETRY_STATUSES:
            raise IccamRetryable(text, status=status, sent=sent)
        raise IccamRefused(text, status=status, sent=sent)

    def call(self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None) -> Any:
        """One authenticated call: the answer's JSON (None when empty). A 401 logs in again once."""
        self._ensure_login()
        status, data = self._raw(method, path, body=body, params=params)
        if status == 401:
            self._token = ""
            self._login()
            status, data = self._raw(method, path, body=body, params=params)
        if not 200 <= status < 300:
            self._fail(method, path, status, data, sent=method != "GET")
        return data

    def _shape(self, method: str, path: str, build: Callable[[Any], Any], data: Any) -> Any:
        try:
            return build(data)
        except ShapeError as exc:
            raise IccamRetryable(
                f"ICCAM {method} {path}: malformed answer: {exc}", sent=method != "GET"
            ) from None

    # -- the endpoints ---------------------------------------------------------------------------
    def post_report(self, report: IccamReport) -> int:
        """``POST rest/reports``: the new report's ID."""
        data = self.call("POST", "rest/reports", body=report.to_json())
        if isinstance(data, dict):  # tolerate {"id": N} / {"reportId": N} as well as a bare N
            data = data.get("reportId", data.get("id"))
        if isinstance(data, str) and data.isdigit():
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int) or data < 1:
            raise IccamRetryable("ICCAM POST rest/reports: the answer is not a report ID", sent=True)
        return data

    def get_report(self, report_id: int) -> ReportView:
        path = f"rest/Reports/{int(report_id)}"
        view: ReportView = self._shape("GET", path, ReportView.from_json, self.call("GET", path))
        return view

    def get_content(self, content_id: int) -> ContentItem:
        path = f"rest/Content/{int(content_id)}"
        item: ContentItem = self._shape("GET", path, ContentItem.from_json, self.call("GET", path))
        return item

    def put_assessment(self, content_id: int, assessment: Assessment) -> None:
        self.call("PUT", f"rest/Content/{int(content_id)}/assessment", body=assessment.to_json())

    def post_action(self, content_id: int, action: Action) -> None:
        self.call("POST", f"rest/Content/{int(content_id)}/actions", body=action.to_json())

    def put_hotline_reference(self, content_id: int, reference: str) -> None:
        self.call("PUT", f"rest/Content/{int(content_id)}/hotline-reference", params={"reference": reference})

    def put_new_hosting(self, content_id: int, ip: str, country: str) -> None:
        self.call(
            "PUT",
            f"rest/Content/{int(content_id)}/url/hosting",
            params={"newIpAddress": ip, "newCountryCode": country},
        )

    def queue(
        self, name: str, *, max_results: int = MAX_QUEUE_RESULTS, since: datetime | None = None
    ) -> list[QueueEntry]:
        """``GET rest/Content/{name}``: the content items in one of the hotline's work queues."""
        if name not in QUEUES:
            raise ValueError(f"not an ICCAM queue: {name!r} (one of {', '.join(QUEUES)})")
        params = {"maxResults": str(max(1, min(MAX_QUEUE_RESULTS, max_results)))}
        if since is not None:
            key = "hotlineAssignmentStartDate" if name == "offline" else "countryAssignmentStartDate"
            params[key] = iccam_date(since)
        path = f"rest/Content/{name}"
        entries: list[QueueEntry] = self._shape(
            "GET", path, queue_from_json, self.call("GET", path, params=params)
        )
        return entries
