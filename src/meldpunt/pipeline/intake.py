"""Intake: a report becomes durable items and the jobs that walk them, in one transaction.

When ``submit_report`` returns, the report, its items and their first jobs are committed: the
receipt shown to a reporter always stands for work on disk. A URL reported again while its item is
still open (within the dedupe window) is linked to that item instead of copied. An idempotency key
(API clients) makes a retried request return the first request's receipt.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Engine, bindparam, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from meldpunt.domain.reports import OPEN_STATES, ItemState, MediumOutcome, SeenOn, public_status
from meldpunt.pipeline.jobs import enqueue
from meldpunt.store.reports import ApiToken, Item, Medium, Report, ReportItem
from meldpunt.store.triage import TriageStatus


class Services(Protocol):
    """What intake needs of ``meldpunt.bootstrap.Services`` (kept a protocol: the pipeline does not
    import the wiring that imports it)."""

    @property
    def engine(self) -> Engine: ...


SEEN_ON = tuple(s.value for s in SeenOn)
MAX_URLS = 100
MAX_URL_LENGTH = 2048
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


class InvalidReport(ValueError):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


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


def normalise_url(raw: str) -> str:
    """A reported URL in one canonical form (scheme and host lower-case, no fragment); raises
    ValueError with a short reason for anything that is not an http(s) URL."""
    text = raw.strip()
    if not text:
        raise ValueError("empty")
    if len(text) > MAX_URL_LENGTH:
        raise ValueError(f"longer than {MAX_URL_LENGTH} characters")
    if "://" not in text:
        text = "http://" + text  # people paste "example.com/page"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as e:
        raise ValueError(f"not a valid URL ({e})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("not an http(s) URL")
    host = (parts.hostname or "").lower()
    if not host or any(c.isspace() for c in text):
        raise ValueError("not a valid URL")
    netloc = host if ":" not in host else f"[{host}]"
    if parts.username or parts.password:
        netloc = f"{parts.username or ''}{':' + parts.password if parts.password else ''}@{netloc}"
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def validate(report: ReportIn) -> list[str]:
    errors = []
    urls = [u for u in report.urls if u.strip()]
    if not urls:
        errors.append("give at least one URL")
    if len(urls) > MAX_URLS:
        errors.append(f"at most {MAX_URLS} URLs per report")
    for n, u in enumerate(urls[:MAX_URLS], 1):
        try:
            normalise_url(u)
        except ValueError as e:
            errors.append(f"URL {n}: {e}")
    if report.seen_on not in SEEN_ON:
        errors.append(f"where it was seen must be one of: {', '.join(SEEN_ON)}")
    if len(report.description) > 10_000:
        errors.append("the description is longer than 10,000 characters")
    if len(report.contact) > 320:
        errors.append("the contact address is too long")
    return errors


def submit_report(services: Services, report: ReportIn) -> Receipt:
    errors = validate(report)
    if errors:
        raise InvalidReport(errors)
    engine = services.engine
    if report.idempotency_key:
        earlier = find_receipt(services, report.source, report.idempotency_key)
        if earlier is not None:
            return earlier
    urls = list(dict.fromkeys(normalise_url(u) for u in report.urls if u.strip()))
    code = new_receipt_code()
    now = _now()
    try:
        with engine.begin() as conn:
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
                    "created_at": now,
                },
            ).scalar_one()
            item_ids: list[int] = []
            linked: list[int] = []
            for url in urls:
                key = url_key(url)
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
    except IntegrityError:
        # A concurrent request with the same idempotency key won the race: answer as it did.
        if report.idempotency_key:
            earlier = find_receipt(services, report.source, report.idempotency_key)
            if earlier is not None:
                return earlier
        raise
    return Receipt(code=code, report_id=int(report_id), item_ids=item_ids, linked=linked)


def find_receipt(services: Services, source: str, idempotency_key: str) -> Receipt | None:
    """The receipt of an earlier report from ``source`` with this idempotency key, if any."""
    with services.engine.connect() as conn:
        row = conn.execute(
            select(Report.id, Report.receipt_code).where(
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
    return Receipt(code=row.receipt_code or "", report_id=int(row.id), item_ids=items, linked=linked)


def report_status(services: Services, code: str) -> StatusView | None:
    with services.engine.connect() as conn:
        row = conn.execute(
            select(Report.id, Report.created_at).where(Report.receipt_hash == receipt_hash(code))
        ).first()
        if row is None:
            return None
        listed = exists().where(Medium.item_id == Item.id, Medium.outcome == MediumOutcome.KNOWN.value)
        rows = conn.execute(
            select(Item.state, TriageStatus.illegal, listed.label("listed"))
            .join(ReportItem, ReportItem.item_id == Item.id)
            .outerjoin(TriageStatus, TriageStatus.item_id == Item.id)
            .where(ReportItem.report_id == row.id)
        ).all()
    items = [(ItemState(r.state), bool(r.listed or r.illegal)) for r in rows]
    return StatusView(state=public_status(items), received_at=row.created_at, items=len(items))


def list_items(services: Services, state: str | None = None, limit: int = 200) -> list[ItemView]:
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


def create_api_token(services: Services, name: str) -> str:
    token = "mp_" + secrets.token_urlsafe(32)
    with services.engine.begin() as conn:
        conn.execute(
            insert(ApiToken).values(
                name=name,
                token_hash=hashlib.sha256(token.encode()).hexdigest(),
                revoked=False,
                created_at=_now(),
            )
        )
    return token


def check_api_token(services: Services, token: str) -> str | None:
    if not token:
        return None
    with services.engine.connect() as conn:
        name = conn.execute(
            select(ApiToken.name).where(
                ApiToken.token_hash == hashlib.sha256(token.encode()).hexdigest(), ApiToken.revoked.is_(False)
            )
        ).scalar()
    return str(name) if name is not None else None
