"""Intake: a report becomes durable items and the jobs that walk them, in one transaction.

When ``submit_report`` returns, the report, its items and their first jobs are committed: the
receipt shown to a reporter always stands for work on disk. A URL reported again while its item is
still open (within the dedupe window) is linked to that item instead of copied; on PostgreSQL a
transaction-scoped advisory lock per URL key serialises reports of one URL, so under READ
COMMITTED two of them cannot both miss the open item and make two (SQLite has one writer at a
time). A lock rather than a partial unique index: "open" includes a time window (an index
predicate cannot use the clock) and items stay linkable for it after their walk ends.

An idempotency key (API clients) binds the request it was first used with (a hash of the canonical
request is stored): the same request again gets the first receipt; another request with that key
is refused (``IdempotencyConflict``), never answered with a receipt that does not cover it.

``validate`` is the one place that decides what text can be stored: besides the form's rules it
refuses what PostgreSQL would refuse and SQLite accept (NUL characters, text that is not valid
Unicode, host names over 253 characters or with labels over 63) and URLs the fetcher always
refuses (a user name or password, port 0), each as a :class:`~meldpunt.domain.problems.Problem`:
a code with its values and an English template (``MESSAGES``) that the public form translates.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Connection, Engine, bindparam, exists, func, insert, select, update
from sqlalchemy import text as sql
from sqlalchemy.exc import IntegrityError

from meldpunt.domain.acting import TakedownState
from meldpunt.domain.problems import Problem
from meldpunt.domain.reports import OPEN_STATES, ItemState, MediumOutcome, SeenOn, public_status
from meldpunt.fetch import FetchError, check_url
from meldpunt.pipeline.api_tokens import check_api_token as check_api_token  # tokens moved there
from meldpunt.pipeline.api_tokens import create_api_token as create_api_token
from meldpunt.pipeline.entities import enqueue_report
from meldpunt.pipeline.jobs import enqueue
from meldpunt.store.acting import Takedown
from meldpunt.store.reports import Item, Medium, Report, ReportItem
from meldpunt.store.triage import TriageStatus


class IntakeNeeds(Protocol):
    """What intake needs of ``meldpunt.bootstrap.Services`` (kept a protocol: the pipeline does not
    import the wiring that imports it)."""

    @property
    def engine(self) -> Engine: ...


SEEN_ON = tuple(s.value for s in SeenOn)
MAX_URLS = 100
MAX_URL_LENGTH = 2048
MAX_DESCRIPTION = 10_000
MAX_CONTACT = 320
MAX_IDEMPOTENCY_KEY = 200
MAX_HOST_LENGTH = 253  # DNS: 255 octets on the wire, 253 characters written out
MAX_LABEL_LENGTH = 63
DEDUPE_WINDOW = timedelta(days=7)
URGENT_PRIORITY = 100


# Statements built once: intake is the hot path of a hotline's busiest hour, and building a
# statement costs more Python than running it.
_INSERT_REPORT = insert(Report).returning(Report.id)
_INSERT_ITEM = insert(Item).returning(Item.id)
_LINK = insert(ReportItem)
_FIND_OPEN_ITEM = (
    select(Item.id)
    .where(
        Item.url_key == bindparam("key"),
        Item.state.in_([s.value for s in OPEN_STATES]),
        Item.created_at >= bindparam("since"),
    )
    .order_by(Item.id)
    .limit(1)
)
_RAISE_URGENT = (
    update(Item).where(Item.id == bindparam("item_id")).values(urgent=True, updated_at=bindparam("now"))
)
_LOCK_URL_KEY = sql("SELECT pg_advisory_xact_lock(:lock)")


class InvalidReport(ValueError):
    """A report ``validate`` refuses: ``problems`` as codes with values (a page translates them),
    ``errors`` the same as English sentences (the CLI, the API's ``detail``)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        self.errors = [str(p) for p in problems]
        super().__init__("; ".join(self.errors))


class IdempotencyConflict(ValueError):
    """The idempotency key was used before with a different request."""


class BadUrl(ValueError):
    """Why a reported URL is refused: ``code`` names the reason (for translations), the message
    says it in English (``validate`` reports it as ``url.<code>``). Codes: empty, too_long, not_url, not_http, credentials, port,
    host_too_long, bad_text."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ReportIn:
    urls: list[str]
    seen_on: str = "website"
    description: str = ""
    contact: str = ""
    urgent: bool = False
    source: str = "public"
    idempotency_key: str | None = None
    language: str = "en"


@dataclass(frozen=True)
class Receipt:
    code: str
    report_id: int
    item_ids: list[int]
    linked: list[int] = field(default_factory=list)
    #: True when an idempotent request was seen before and this is its first receipt again
    replayed: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class StatusView:
    state: str
    received_at: datetime
    items: int


@dataclass(frozen=True)
class ItemView:
    id: int
    report_id: int
    url: str
    host: str
    state: str
    urgent: bool
    error: str
    created_at: datetime
    media: int


def _now() -> datetime:
    return datetime.now(UTC)


def new_receipt_code() -> str:
    """100 random bits as 20 base32 letters in groups of five: easy to copy, impossible to guess."""
    raw = base64.b32encode(secrets.token_bytes(13)).decode()[:20]
    return "-".join(raw[i : i + 5] for i in range(0, 20, 5))


def receipt_hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().replace(" ", "").encode()).hexdigest()


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text on every database we support, or None: PostgreSQL
    refuses NUL characters, and no database can store half a surrogate pair as UTF-8."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains characters that are not valid text"
    return None


def _control(value: str) -> str | None:
    return "contains control characters" if any(ord(c) < 32 or ord(c) == 127 for c in value) else None


def _check_host(host: str) -> None:
    """Host names as DNS allows them: at most 253 characters (in their ASCII form), labels of at
    most 63. IP literals pass (the fetcher's guard judges them)."""
    if ":" in host:  # an IPv6 literal: urlsplit has checked its brackets
        return
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:  # an empty label, or one over 63 characters
        raise BadUrl(
            "host_too_long",
            f"the host name has an empty part or one longer than {MAX_LABEL_LENGTH} characters",
        ) from None
    if len(ascii_host.rstrip(".")) > MAX_HOST_LENGTH:
        raise BadUrl("host_too_long", f"the host name is longer than {MAX_HOST_LENGTH} characters")
    if any(len(label) > MAX_LABEL_LENGTH for label in ascii_host.split(".")):
        raise BadUrl("host_too_long", f"a part of the host name is longer than {MAX_LABEL_LENGTH} characters")


def normalise_url(raw: str) -> str:
    """A reported URL in one canonical form (scheme and host lower-case, no fragment); raises
    :class:`BadUrl` (a ValueError) with a short reason for anything that is not an http(s) URL the
    fetcher can use."""
    text = raw.strip()
    if not text:
        raise BadUrl("empty", "empty")
    if len(text) > MAX_URL_LENGTH:
        raise BadUrl("too_long", f"longer than {MAX_URL_LENGTH} characters")
    problem = text_problem(text) or _control(text)
    if problem is not None:
        raise BadUrl("bad_text", problem)
    if "://" not in text:
        text = "http://" + text  # people paste "example.com/page"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as e:
        raise BadUrl("not_url", f"not a valid URL ({e})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise BadUrl("not_http", "not an http(s) URL")
    host = (parts.hostname or "").lower()
    if not host or any(c.isspace() for c in text):
        raise BadUrl("not_url", "not a valid URL")
    if "@" in parts.netloc:  # the fetcher never sends credentials: such a URL is never fetched
        raise BadUrl("credentials", "contains a user name or password (the part before @)")
    if port == 0:
        raise BadUrl("port", "port 0 is not a port a web server can use")
    _check_host(host)
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None:
        netloc += f":{port}"
    url = urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))
    try:
        check_url(url)  # whatever else the fetcher would refuse without looking it up
    except FetchError:
        raise BadUrl("not_url", "not a valid URL") from None
    return url


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


#: Every reason ``validate`` gives, by code: the English template (the msgid the public form
#: translates). ``{n}`` is the URL's place in the list (a line of the form), ``{max}`` a limit.
MESSAGES: dict[str, str] = {
    "urls.none": "Please give at least one web address.",
    "urls.too_many": "Please give at most {max} web addresses in one report.",
    "url.empty": "Line {n}: this is not a web address (it should look like https://example.com/page).",
    "url.not_url": "Line {n}: this is not a web address (it should look like https://example.com/page).",
    "url.not_http": "Line {n}: this is not a web address (it should look like https://example.com/page).",
    "url.too_long": "Line {n}: this address is too long.",
    "url.credentials": (
        "Line {n}: please leave out the user name and password (the part before @): we never sign in."
    ),
    "url.port": "Line {n}: port 0 is not a port a web server can use.",
    "url.host_too_long": "Line {n}: the name of the website in this address is too long.",
    "url.bad_text": "Line {n}: this address contains characters that cannot be in a web address.",
    "seen_on.unknown": "Please choose where you saw it.",
    "description.too_long": "The description is too long (at most {max} characters).",
    "description.bad_text": "The description contains characters that cannot be stored (such as NUL).",
    "contact.too_long": "The contact address is too long.",
    "contact.bad_text": "The contact address contains characters that cannot be stored (such as NUL).",
    "idempotency_key.too_long": "The idempotency key is too long (at most {max} characters).",
    "idempotency_key.bad_text": "The idempotency key contains characters that cannot be stored.",
}


def _problem(code: str, **values: object) -> Problem:
    return Problem(MESSAGES[code], {k: str(v) for k, v in values.items()}, code)


def validate(report: ReportIn) -> list[Problem]:
    """Every reason ``report`` cannot be accepted, as codes with their values (empty when it can).
    A URL is numbered by its place in ``report.urls`` (blank entries are skipped but counted, so
    the form's line numbers hold)."""
    problems: list[Problem] = []
    urls = [(n, u) for n, u in enumerate(report.urls, 1) if u.strip()]
    if not urls:
        problems.append(_problem("urls.none"))
    if len(urls) > MAX_URLS:
        problems.append(_problem("urls.too_many", max=MAX_URLS))
    for n, u in urls[:MAX_URLS]:
        try:
            normalise_url(u[: MAX_URL_LENGTH + 1])  # longer is too long: no need to read it all
        except BadUrl as e:
            problems.append(_problem(f"url.{e.code}", n=n))
    if report.seen_on not in SEEN_ON:
        problems.append(_problem("seen_on.unknown"))
    if len(report.description) > MAX_DESCRIPTION:
        problems.append(_problem("description.too_long", max=MAX_DESCRIPTION))
    if len(report.contact) > MAX_CONTACT:
        problems.append(_problem("contact.too_long", max=MAX_CONTACT))
    key = report.idempotency_key or ""
    if len(key) > MAX_IDEMPOTENCY_KEY:
        problems.append(_problem("idempotency_key.too_long", max=MAX_IDEMPOTENCY_KEY))
    for name, value in (("description", report.description), ("contact", report.contact)):
        if text_problem(value) is not None:
            problems.append(_problem(f"{name}.bad_text"))
    if (text_problem(key) or _control(key)) is not None:
        problems.append(_problem("idempotency_key.bad_text"))
    return problems


def request_hash(report: ReportIn, urls: list[str]) -> str:
    """SHA-256 of the request in canonical form (normalised URLs, every field that makes the
    report): what an idempotency key is bound to."""
    canonical = {
        "urls": urls,
        "seen_on": report.seen_on,
        "description": report.description,
        "contact": report.contact,
        "urgent": report.urgent,
        "language": report.language,
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _lock_url_keys(conn: Connection, keys: list[str]) -> None:
    """On PostgreSQL, hold a transaction-scoped advisory lock per URL key (in sorted order: no
    deadlock between reports naming the same URLs), so that the search for an open item and the
    insert of a new one are one step for each URL. SQLite needs none: one writer at a time."""
    if conn.dialect.name != "postgresql":
        return
    for key in sorted(set(keys)):
        lock = int(key[:16], 16)
        conn.execute(_LOCK_URL_KEY, {"lock": lock - (1 << 64) if lock >= 1 << 63 else lock})


def submit_report(services: IntakeNeeds, report: ReportIn) -> Receipt:
    problems = validate(report)
    if problems:
        raise InvalidReport(problems)
    engine = services.engine
    urls = list(dict.fromkeys(normalise_url(u) for u in report.urls if u.strip()))
    digest = request_hash(report, urls) if report.idempotency_key else None
    if report.idempotency_key:
        earlier = _replay(services, report, digest)
        if earlier is not None:
            return earlier
    code = new_receipt_code()
    clock = getattr(services, "clock", None)  # the services' clock: a report's time is the clock's
    now = clock.now() if clock is not None else _now()
    try:
        with engine.begin() as conn:
            receipt = _insert(conn, report, urls, now, code, digest)
    except IntegrityError:
        # A concurrent request with the same idempotency key won the race: answer as it did.
        if report.idempotency_key:
            earlier = _replay(services, report, digest)
            if earlier is not None:
                return earlier
        raise
    return receipt


def add_report(conn: Connection, report: ReportIn, now: datetime) -> Receipt:
    """Take a report in, in the caller's transaction (a partner's forwarded item is taken in with
    the signed message that brought it: both or neither). Validated as ``submit_report`` does;
    no idempotency replay (the caller keeps its own key)."""
    problems = validate(report)
    if problems:
        raise InvalidReport(problems)
    urls = list(dict.fromkeys(normalise_url(u) for u in report.urls if u.strip()))
    return _insert(conn, report, urls, now, new_receipt_code(), None)


def _insert(
    conn: Connection, report: ReportIn, urls: list[str], now: datetime, code: str, digest: str | None
) -> Receipt:
    """The report, its items (or links to open ones) and their first jobs, in ``conn``."""
    keys = [url_key(url) for url in urls]
    _lock_url_keys(conn, keys)
    report_id = conn.execute(
        _INSERT_REPORT,
        {
            "receipt_hash": receipt_hash(code),
            "source": report.source,
            "seen_on": report.seen_on,
            "description": report.description,
            "contact": report.contact,
            "urgent": report.urgent,
            "language": report.language,
            "idempotency_key": report.idempotency_key,
            "receipt_code": code if report.idempotency_key else None,
            "request_hash": digest,
            "created_at": now,
        },
    ).scalar_one()
    if report.description.strip():  # link analysis (#13): its entities, read by a job
        enqueue_report(conn, int(report_id))
    item_ids: list[int] = []
    linked: list[int] = []
    for url, key in zip(urls, keys, strict=True):
        open_item = conn.execute(_FIND_OPEN_ITEM, {"key": key, "since": now - DEDUPE_WINDOW}).scalar()
        if open_item is not None:
            if report.urgent:
                conn.execute(_RAISE_URGENT, {"item_id": open_item, "now": now})
            item_id = int(open_item)
            linked.append(item_id)
        else:
            item_id = int(
                conn.execute(
                    _INSERT_ITEM,
                    {
                        "report_id": report_id,
                        "url": url,
                        "url_key": key,
                        "host": urlsplit(url).hostname or "",
                        "state": ItemState.RECEIVED.value,
                        "urgent": report.urgent,
                        "error": "",
                        "server_ip": "",
                        "created_at": now,
                        "updated_at": now,
                    },
                ).scalar_one()
            )
            enqueue(
                conn,
                "fetch",
                f"item:{item_id}",
                {"item_id": item_id},
                priority=URGENT_PRIORITY if report.urgent else 0,
            )
        conn.execute(_LINK, {"report_id": report_id, "item_id": item_id})
        item_ids.append(item_id)
    return Receipt(code=code, report_id=int(report_id), item_ids=item_ids, linked=linked)


def _replay(services: IntakeNeeds, report: ReportIn, digest: str | None) -> Receipt | None:
    """The first receipt of a request seen before with this idempotency key; None when the key is
    new; ``IdempotencyConflict`` when it was used with another request."""
    assert report.idempotency_key
    found = _find(services, report.source, report.idempotency_key)
    if found is None:
        return None
    receipt, first_hash = found
    if first_hash is not None and first_hash != digest:
        raise IdempotencyConflict(
            "this idempotency key was already used for a different report; send a new key with a "
            "new report (the same request with the same key gets the first receipt again)"
        )
    return receipt


def find_receipt(services: IntakeNeeds, source: str, idempotency_key: str) -> Receipt | None:
    """The receipt of an earlier report from ``source`` with this idempotency key, if any."""
    found = _find(services, source, idempotency_key)
    return found[0] if found is not None else None


def _find(services: IntakeNeeds, source: str, idempotency_key: str) -> tuple[Receipt, str | None] | None:
    with services.engine.connect() as conn:
        row = conn.execute(
            select(Report.id, Report.receipt_code, Report.request_hash).where(
                Report.source == source, Report.idempotency_key == idempotency_key
            )
        ).first()
        if row is None:
            return None
        items = [
            int(i)
            for i in conn.execute(
                select(ReportItem.item_id).where(ReportItem.report_id == row.id).order_by(ReportItem.item_id)
            ).scalars()
        ]
        linked = [
            int(i)
            for i in conn.execute(
                select(Item.id).where(Item.id.in_(items), Item.report_id != row.id)
            ).scalars()
        ]
    receipt = Receipt(
        code=row.receipt_code or "", report_id=int(row.id), item_ids=items, linked=linked, replayed=True
    )
    return receipt, row.request_hash


def report_status(services: IntakeNeeds, code: str) -> StatusView | None:
    with services.engine.connect() as conn:
        row = conn.execute(
            select(Report.id, Report.created_at).where(Report.receipt_hash == receipt_hash(code))
        ).first()
        if row is None:
            return None
        listed = exists().where(Medium.item_id == Item.id, Medium.outcome == MediumOutcome.KNOWN.value)
        removed = exists().where(
            Takedown.item_id == Item.id, Takedown.state == TakedownState.REMOVED.value
        )  # confirmed gone by the re-checks (meldpunt.act.recheck)
        rows = conn.execute(
            select(Item.state, TriageStatus.illegal, listed.label("listed"), removed.label("removed"))
            .join(ReportItem, ReportItem.item_id == Item.id)
            .outerjoin(TriageStatus, TriageStatus.item_id == Item.id)
            .where(ReportItem.report_id == row.id)
        ).all()
    items = [(ItemState(r.state), bool(r.listed or r.illegal), bool(r.removed)) for r in rows]
    return StatusView(state=public_status(items), received_at=row.created_at, items=len(items))


def list_items(services: IntakeNeeds, state: str | None = None, limit: int = 200) -> list[ItemView]:
    media = select(Medium.item_id, func.count().label("n")).group_by(Medium.item_id).subquery()
    q = (
        select(
            Item.id,
            Item.report_id,
            Item.url,
            Item.host,
            Item.state,
            Item.urgent,
            Item.error,
            Item.created_at,
            func.coalesce(media.c.n, 0),
        )
        .outerjoin(media, media.c.item_id == Item.id)
        .order_by(Item.urgent.desc(), Item.id.desc())
        .limit(limit)
    )
    if state:
        q = q.where(Item.state == state)
    with services.engine.connect() as conn:
        rows = conn.execute(q).all()
    return [
        ItemView(
            id=int(r[0]),
            report_id=int(r[1]),
            url=r[2],
            host=r[3],
            state=r[4],
            urgent=bool(r[5]),
            error=r[6],
            created_at=r[7],
            media=int(r[8]),
        )
        for r in rows
    ]
