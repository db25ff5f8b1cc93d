"""Every message that leaves meldpunt — notices, reminders, alerts — as a row of the ``outbox``,
written in the transaction that decides it and sent by a durable ``send`` job.

Why an outbox: a notice that was decided is never lost (the row commits with the decision, the job
with the row), and one that was *recorded as sent* is never sent again (the job re-reads the row
and skips anything not ``queued``). The one window left — the SMTP server took the message and the
process died before the row said so — sends it again after the lease runs out; its Message-ID is
stable (``<outbox-ID.ROUND@meldpunt>``) so the receiving side can tell the copy. At most one row
exists per (purpose, reference, round, channel, target): deciding twice queues once.

Channels are registered (:data:`CHANNELS`): ``email`` (SMTP, ``settings.mail``) and ``webhook``
(an HTTP POST of JSON, for a provider's API or a paging/chat service). Each raises
:class:`DeliveryError` saying whether a retry can help and whether the fault is the recipient's
(a refused address marks the contact suspect) or ours (no SMTP server configured). A failed
attempt is retried with backoff by the injected clock (``tick_outbox`` re-enqueues due rows) until
``notice.delivery_attempts``; then the row is ``failed`` and the purpose's hook hears of it.

Purposes (notice, alert, ...) register hooks (:func:`on`) that run in the transaction that records
the outcome, e.g. to write the timeline line or mark a contact suspect.
"""

from __future__ import annotations

import hashlib
import json
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from functools import cache
from typing import Any, Protocol

import httpcore
import httpx
from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from meldpunt.act.context import ActNeeds, Worker, utc
from meldpunt.domain.acting import DeliveryState
from meldpunt.locate.deadline import DeadlineBackend
from meldpunt.pipeline.jobs import ClaimedJob, enqueue
from meldpunt.settings import Settings
from meldpunt.store.acting import OutboxMessage

SEND = "send"
#: the first retry waits this long, each next one twice as long, up to BACKOFF_MAX
BACKOFF_FIRST = timedelta(minutes=2)
BACKOFF_MAX = timedelta(hours=6)


class DeliveryError(Exception):
    """A message could not be delivered. ``permanent``: a retry cannot help (address refused,
    invalid target, HTTP 4xx). ``theirs``: the recipient's side is at fault (False: ours, e.g. no
    SMTP server configured — that must not mark a provider's contact suspect)."""

    def __init__(self, reason: str, *, permanent: bool, theirs: bool = True) -> None:
        super().__init__(reason)
        self.permanent = permanent
        self.theirs = theirs


@dataclass(frozen=True)
class Message:
    id: int
    purpose: str
    ref_id: int
    round: int
    channel: str
    target: str
    subject: str
    body: str
    #: extra e-mail headers, or HTTP headers of a webhook
    headers: dict[str, str] = field(default_factory=dict)
    #: the JSON body of a webhook (None: ``{"subject", "text"}``)
    data: dict[str, Any] | None = None

    @property
    def message_id(self) -> str:
        return f"<outbox-{self.id}.{self.round}@meldpunt>"


class Channel(Protocol):
    """A way out: validates a target and sends a message there."""

    name: str

    def check_target(self, target: str) -> str | None:
        """Why ``target`` cannot be used by this channel; None when it can."""
        ...

    def send(self, settings: Settings, message: Message) -> None:
        """Deliver ``message`` or raise :class:`DeliveryError`."""
        ...


def _email_problem(address: str) -> str | None:
    if not address or any(c in address for c in "\r\n\t <>,;") or address.count("@") != 1:
        return f"not an e-mail address: {address!r}"
    local, domain = address.split("@")
    if not local or "." not in domain or domain.startswith(".") or domain.endswith("."):
        return f"not an e-mail address: {address!r}"
    return None


class EmailChannel:
    """SMTP through ``settings.mail``: a plain-text message, with a stable Message-ID."""

    name = "email"

    def check_target(self, target: str) -> str | None:
        return _email_problem(target)

    def send(self, settings: Settings, message: Message) -> None:
        mail = settings.mail
        if not mail.smtp_host:
            raise DeliveryError(
                "no SMTP server is configured (MELDPUNT_MAIL_SMTP_HOST)", permanent=False, theirs=False
            )
        problem = self.check_target(message.target)
        if problem:
            raise DeliveryError(problem, permanent=True)
        email = EmailMessage()
        try:
            email["From"] = mail.sender
            email["To"] = message.target
            email["Subject"] = message.subject
            email["Date"] = formatdate(localtime=False)
            email["Message-ID"] = message.message_id
            if mail.reply_to:
                email["Reply-To"] = mail.reply_to
            for name, value in message.headers.items():
                email[name] = value
            email.set_content(message.body)
        except (ValueError, TypeError) as exc:  # a header with a line break, say: never retried
            raise DeliveryError(
                f"the message cannot be written: {exc}", permanent=True, theirs=False
            ) from None
        try:
            with smtplib.SMTP(mail.smtp_host, mail.smtp_port, timeout=mail.smtp_timeout_s) as smtp:
                if mail.smtp_starttls:
                    smtp.starttls()
                if mail.smtp_user:
                    smtp.login(mail.smtp_user, mail.smtp_password)
                refused = smtp.send_message(email, from_addr=parseaddr(mail.sender)[1] or mail.sender)
        except smtplib.SMTPRecipientsRefused as exc:
            reasons = "; ".join(
                f"{a}: {c} {m.decode(errors='replace')}" for a, (c, m) in exc.recipients.items()
            )
            raise DeliveryError(f"recipient refused: {reasons}", permanent=True) from None
        except smtplib.SMTPResponseException as exc:
            text = (
                exc.smtp_error.decode(errors="replace")
                if isinstance(exc.smtp_error, bytes)
                else exc.smtp_error
            )
            permanent = 500 <= exc.smtp_code < 600
            raise DeliveryError(f"SMTP {exc.smtp_code} {text}", permanent=permanent) from None
        except (OSError, smtplib.SMTPException) as exc:  # unreachable, timed out, disconnected
            raise DeliveryError(
                f"SMTP server {mail.smtp_host}:{mail.smtp_port}: {type(exc).__name__}: {exc}",
                permanent=False,
                theirs=False,
            ) from None
        if refused:
            raise DeliveryError(f"recipient refused: {refused}", permanent=True)


#: what an HTTP exchange may raise (httpcore has no common base class)
_HTTP_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ProxyError,
)


class WebhookChannel:
    """An HTTP POST of JSON (a provider's notice API, a chat or paging service): 2xx is delivered,
    4xx (but 408/429) is refused for good, anything else is tried again.

    The whole exchange — connecting, sending, the answer's status line and headers — gets one
    ``mail.webhook_timeout_s``; the answer's body is never read. A target that says 2xx and then
    stalls has the message (a read timeout there once sent it again), an endless body costs no
    memory, and a target trickling its status line and headers (each byte within any per-read
    timeout) is cut off at the deadline instead of holding a worker for ever (the job's heartbeat
    keeps it leased, so nothing else would send the message either).

    Targets may be private addresses: webhooks are configured by staff (``alert.webhook_url``) or
    by a senior on a contact, and paging or chat services often run inside the hotline's own
    network; redirects are not followed, so a target cannot send the POST elsewhere.
    """

    name = "webhook"

    def check_target(self, target: str) -> str | None:
        url = httpx.URL(target) if "://" in target else None
        if url is None or url.scheme not in ("http", "https") or not url.host:
            return f"not an http(s) URL: {target!r}"
        return None

    def send(self, settings: Settings, message: Message) -> None:
        problem = self.check_target(message.target)
        if problem:
            raise DeliveryError(problem, permanent=True)
        data = (
            message.data if message.data is not None else {"subject": message.subject, "text": message.body}
        )
        payload = json.dumps(data).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "meldpunt",
            "Idempotency-Key": message.message_id.strip("<>"),
            **message.headers,
        }
        deadline = time.monotonic() + settings.mail.webhook_timeout_s
        try:
            with (
                httpcore.ConnectionPool(
                    ssl_context=httpx.create_ssl_context(), network_backend=DeadlineBackend(deadline)
                ) as pool,
                pool.stream(
                    "POST", str(httpx.URL(message.target)), headers=list(headers.items()), content=payload
                ) as answer,
            ):
                status = answer.status  # leaving the block drops the connection, body unread
        except _HTTP_ERRORS as exc:
            raise DeliveryError(
                f"webhook {message.target}: {type(exc).__name__}: {exc}", permanent=False
            ) from None
        if 200 <= status < 300:
            return
        permanent = 400 <= status < 500 and status not in (408, 425, 429)
        raise DeliveryError(f"webhook answered HTTP {status}", permanent=permanent)


#: channel name -> channel; more can be registered (:func:`register_channel`)
CHANNELS: dict[str, Channel] = {"email": EmailChannel(), "webhook": WebhookChannel()}


def register_channel(channel: Channel) -> None:
    CHANNELS[channel.name] = channel


def check_target(channel: str, target: str) -> str | None:
    """Why ``target`` is not usable on ``channel`` (None: it is)."""
    if channel not in CHANNELS:
        return f"no such channel: {channel!r}"
    return CHANNELS[channel].check_target(target)


# --- hooks per purpose -------------------------------------------------------------------------

Sent = Callable[[Connection, Message, datetime], None]
Failed = Callable[[Connection, Message, DeliveryError, datetime], None]


@dataclass
class Hooks:
    sent: Sent | None = None
    failed: Failed | None = None


HOOKS: dict[str, Hooks] = {}


def on(purpose: str, *, sent: Sent | None = None, failed: Failed | None = None) -> None:
    """Run ``sent``/``failed`` in the transaction that records a message of ``purpose`` as sent or
    as failed for good (the timeline line, a contact marked suspect, ...)."""
    HOOKS[purpose] = Hooks(sent, failed)


# --- queueing and sending ----------------------------------------------------------------------


@cache
def _insert_statement(dialect: str) -> Any:
    dialect_insert = pg_insert if dialect == "postgresql" else sqlite_insert
    columns = (
        "purpose", "ref_id", "round", "dedupe", "channel", "target", "subject", "body", "headers", "state",
        "attempts", "created_at",
    )  # fmt: skip
    return (
        dialect_insert(OutboxMessage)
        .values({c: bindparam(c) for c in columns})
        .on_conflict_do_nothing(index_elements=["dedupe"])
        .returning(OutboxMessage.id)
    )


def queue_message(
    conn: Connection,
    *,
    purpose: str,
    ref_id: int,
    channel: str,
    target: str,
    subject: str = "",
    body: str = "",
    round: int = 1,
    headers: dict[str, str] | None = None,
    data: dict[str, Any] | None = None,
    now: datetime,
) -> int | None:
    """Queue a message in the caller's transaction, with its ``send`` job; the outbox id, or None
    when this (purpose, ref_id, round, channel, target) was queued before."""
    dedupe = f"{purpose}:{ref_id}:{round}:{channel}:{hashlib.sha256(target.encode()).hexdigest()[:24]}"
    stored = {"headers": headers or {}, "data": data}
    row = conn.execute(
        _insert_statement(conn.dialect.name),
        {
            "purpose": purpose,
            "ref_id": ref_id,
            "round": round,
            "dedupe": dedupe,
            "channel": channel,
            "target": target,
            "subject": subject,
            "body": body,
            "headers": json.dumps(stored, sort_keys=True),
            "state": DeliveryState.QUEUED.value,
            "attempts": 0,
            "created_at": now,
        },
    ).first()
    if row is None:
        return None
    outbox_id = int(row[0])
    enqueue(conn, SEND, f"outbox:{outbox_id}:1", {"outbox_id": outbox_id})
    return outbox_id


def _message(row: Any) -> Message:
    stored = json.loads(row.headers or "{}")
    return Message(
        id=row.id,
        purpose=row.purpose,
        ref_id=row.ref_id,
        round=row.round,
        channel=row.channel,
        target=row.target,
        subject=row.subject,
        body=row.body,
        headers=dict(stored.get("headers") or {}),
        data=stored.get("data"),
    )


def backoff(attempts: int) -> timedelta:
    """How long after its ``attempts``-th failed attempt a message is tried again."""
    wait: timedelta = BACKOFF_FIRST * 2 ** min(16, max(0, attempts - 1))
    return min(BACKOFF_MAX, wait)


def step_send(services: ActNeeds, worker: Worker, job: ClaimedJob) -> str:
    """Send one queued message; record sent, retry later, or failed — with the purpose's hook."""
    outbox_id = int(job.payload["outbox_id"])
    now = services.clock.now()
    with services.engine.connect() as conn:
        row = conn.execute(select(OutboxMessage).where(OutboxMessage.id == outbox_id)).first()
    if (
        row is None
        or row.state != DeliveryState.QUEUED.value
        or (row.next_attempt_at is not None and utc(row.next_attempt_at) > now)
    ):
        with services.engine.begin() as conn:  # sent already, failed for good, or not due yet
            worker.queue.finish(conn, job)
        return "skipped"
    message = _message(row)
    channel = CHANNELS.get(message.channel)
    try:
        if channel is None:
            raise DeliveryError(f"no such channel: {message.channel!r}", permanent=True, theirs=False)
        channel.send(services.settings, message)
    except DeliveryError as exc:
        return _record_failure(services, worker, job, message, row.attempts + 1, exc)
    hooks = HOOKS.get(message.purpose, Hooks())
    with services.engine.begin() as conn:
        moved = conn.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == outbox_id, OutboxMessage.state == DeliveryState.QUEUED.value)
            .values(
                state=DeliveryState.SENT.value,
                sent_at=now,
                attempts=OutboxMessage.attempts + 1,
                last_error="",
            )
        ).rowcount
        if moved == 1 and hooks.sent is not None:
            hooks.sent(conn, message, now)
        worker.queue.finish(conn, job)
    return "sent"


def _record_failure(
    services: ActNeeds, worker: Worker, job: ClaimedJob, message: Message, attempts: int, exc: DeliveryError
) -> str:
    now = services.clock.now()
    final = exc.permanent or attempts >= services.settings.notice.delivery_attempts
    hooks = HOOKS.get(message.purpose, Hooks())
    with services.engine.begin() as conn:
        values: dict[str, Any] = {"attempts": attempts, "last_error": str(exc)[:2000]}
        if final:
            values["state"] = DeliveryState.FAILED.value
            values["next_attempt_at"] = None
        else:
            values["next_attempt_at"] = now + backoff(attempts)
        moved = conn.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message.id, OutboxMessage.state == DeliveryState.QUEUED.value)
            .values(**values)
        ).rowcount
        if moved == 1 and final and hooks.failed is not None:
            hooks.failed(conn, message, exc, now)
        worker.queue.finish(conn, job)
    return "failed" if final else "retry"


def tick_outbox(services: ActNeeds) -> int:
    """Queued messages whose retry is due: enqueue their next ``send`` attempt (one job key per
    attempt, so this may run in every worker at once). The number enqueued."""
    now = services.clock.now()
    with services.engine.connect() as conn:
        due = conn.execute(
            select(OutboxMessage.id, OutboxMessage.attempts).where(
                OutboxMessage.state == DeliveryState.QUEUED.value,
                OutboxMessage.next_attempt_at.is_not(None),
                OutboxMessage.next_attempt_at <= now,
            )
        ).all()
    added = 0
    with services.engine.begin() as conn:
        for outbox_id, attempts in due:
            added += enqueue(conn, SEND, f"outbox:{outbox_id}:{attempts + 1}", {"outbox_id": outbox_id})
    return added
