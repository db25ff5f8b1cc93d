"""Messages to partner instances: queued in the caller's transaction, delivered durably and strictly
in order, one partner at a time (#11 part "wire").

Order. Every message gets the partner's next ``seq`` (an UPDATE of the partner's row hands it out, so
two transactions queueing at once are serialised and never share one). Only the partner's *head* —
its lowest queued ``seq`` — is ever sent: the ``partner-send`` job is keyed ``partner:seq:attempt``,
so however many workers tick at once there is one job per attempt at the head, and the next message
is only looked at once the head is delivered or dead. A partner that is down for a day keeps its
head retried with backoff on the injected clock (up to ``partner.backoff_max_minutes`` apart, for
``partner.retry_max_hours``); everything after it waits and then follows, in order.

Each attempt is a fresh envelope: a new nonce and ``sent_at`` (a message that waited a day is not
refused as stale), the same message id (so a receiver that applied it but whose answer was lost
answers "duplicate", and we record it delivered: nothing is applied twice).

Dead letters. A permanent refusal (HTTP 4xx but 408/425/429, e.g. 404 "no such item", 401 "bad
signature") makes the head ``dead`` — kept, with the receiver's reason — and the messages after it go
on: one message the partner will never take (a status for an item it never got) must not stop every
later forward to that partner. The dead letter's kind hears of it (:func:`on_dead`: the timeline
line on the item); a senior may :func:`retry` it, which makes it the head again (it is then
delivered out of its original order, which receivers must tolerate: ``InMeta.seq`` tells them).
A transient failure that lasts longer than ``partner.retry_max_hours`` also ends dead.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import httpx
from sqlalchemy import Connection, delete, func, insert, select, update

from meldpunt.act.context import Worker, utc
from meldpunt.act.partner_registry import PartnerError, PartnerNeeds, key_ring, load_by_id
from meldpunt.audit import AuditEvent, record
from meldpunt.domain.tls import ssl_context
from meldpunt.exchange.envelope import Payload, new_message_id, new_nonce, seal
from meldpunt.pipeline.jobs import ClaimedJob, enqueue
from meldpunt.settings import Settings
from meldpunt.store.partners import PartnerOutRow, PartnerRow
from meldpunt.stores.signing import KeyRing, SigningKeyError

log = logging.getLogger(__name__)

PARTNER_SEND = "partner-send"
BACKOFF_FIRST = timedelta(minutes=1)
MAX_KEY = 200
_KIND = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")
#: the most of a partner's answer read (its JSON reason)
MAX_ANSWER = 16 * 1024


class OutState(StrEnum):
    QUEUED = "queued"
    DELIVERED = "delivered"
    DEAD = "dead"


@dataclass(frozen=True)
class OutMessage:
    id: int
    partner: str
    kind: str
    key: str
    seq: int
    body: dict[str, Any]
    state: str
    attempts: int
    last_error: str
    created: datetime
    delivered_at: datetime | None
    #: the envelope's message id (the same on every attempt)
    message_id: str = ""
    next_attempt_at: datetime | None = None


Delivered = Callable[[Connection, OutMessage], None]
Dead = Callable[[Connection, OutMessage, str], None]
_DELIVERED: dict[str, list[Delivered]] = {}
_DEAD: dict[str, list[Dead]] = {}


def on_delivered(kind: str, fn: Delivered) -> None:
    """Run ``fn(conn, message)`` in the transaction that records a message of ``kind`` delivered."""
    hooks = _DELIVERED.setdefault(kind, [])
    if fn not in hooks:
        hooks.append(fn)


def on_dead(kind: str, fn: Dead) -> None:
    """Run ``fn(conn, message, reason)`` in the transaction that makes a message of ``kind`` a dead
    letter (refused for good, or its retries spent)."""
    hooks = _DEAD.setdefault(kind, [])
    if fn not in hooks:
        hooks.append(fn)


def instance_name(settings: Settings) -> str:
    """Our name as partners know us (``partner.instance_name``, else the hotline's name)."""
    return settings.partner.instance_name or settings.web.hotline_name


def _out(row: Any, partner: str) -> OutMessage:
    return OutMessage(
        id=row.id,
        partner=partner,
        kind=row.kind,
        key=row.key,
        seq=row.seq,
        body=json.loads(row.body or "{}"),
        state=row.state,
        attempts=row.attempts,
        last_error=row.last_error,
        created=utc(row.created_at),
        delivered_at=utc(row.delivered_at) if row.delivered_at else None,
        message_id=row.message_id,
        next_attempt_at=utc(row.next_attempt_at) if row.next_attempt_at else None,
    )


def send(
    conn: Connection, services: PartnerNeeds, partner: str, kind: str, body: dict[str, Any], *, key: str
) -> int:
    """Queue ``body`` as a ``kind`` message to ``partner`` in the caller's transaction; its id. The
    same (partner, key) queued again is a no-op that returns the first one's id."""
    if not _KIND.match(kind):
        raise ValueError(f"a message kind is a short lower-case word, not {kind!r}")
    if not key or len(key) > MAX_KEY:
        raise ValueError(f"a message key is 1 to {MAX_KEY} characters")
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if len(data.encode()) * 4 // 3 + 1024 > services.settings.partner.max_message_bytes:
        raise ValueError("the message is larger than partner.max_message_bytes once signed")
    row = conn.execute(
        select(PartnerRow.id).where(PartnerRow.name == partner, PartnerRow.removed_at.is_(None))
    ).first()
    if row is None:
        raise PartnerError([f"no partner called {partner!r}"])
    pid = int(row.id)
    existing = _by_key(conn, pid, key)
    if existing is not None:
        return existing
    # the partner's row is locked from here to the commit: queueing to one partner is serialised
    seq = conn.execute(
        update(PartnerRow)
        .where(PartnerRow.id == pid)
        .values(next_seq=PartnerRow.next_seq + 1)
        .returning(PartnerRow.next_seq)
    ).scalar_one()
    existing = _by_key(conn, pid, key)  # queued by a transaction we waited for
    if existing is not None:
        return existing
    now = services.clock.now()
    message_id = conn.execute(
        insert(PartnerOutRow)
        .values(
            partner_id=pid,
            seq=seq,
            key=key,
            message_id=new_message_id(),
            kind=kind,
            body=data,
            state=OutState.QUEUED.value,
            attempts=0,
            last_error="",
            created_at=now,
        )
        .returning(PartnerOutRow.id)
    ).scalar_one()
    kick(conn, pid, now)
    return int(message_id)


def _by_key(conn: Connection, pid: int, key: str) -> int | None:
    found = conn.execute(
        select(PartnerOutRow.id).where(PartnerOutRow.partner_id == pid, PartnerOutRow.key == key)
    ).scalar()
    return None if found is None else int(found)


def _head(conn: Connection, pid: int) -> Any:
    return conn.execute(
        select(PartnerOutRow)
        .where(PartnerOutRow.partner_id == pid, PartnerOutRow.state == OutState.QUEUED.value)
        .order_by(PartnerOutRow.seq)
        .limit(1)
    ).first()


def kick(conn: Connection, pid: int, now: datetime) -> bool:
    """Enqueue the attempt at the partner's head when it is due (idempotent: one job key per
    partner, seq and attempt). True when a job was added."""
    head = _head(conn, pid)
    if head is None or (head.next_attempt_at is not None and utc(head.next_attempt_at) > now):
        return False
    return enqueue(conn, PARTNER_SEND, f"{pid}:{head.seq}:{head.attempts + 1}", {"partner_id": pid})


def backoff(attempts: int, settings: Settings) -> timedelta:
    wait: timedelta = BACKOFF_FIRST * 2 ** min(20, max(0, attempts - 1))
    return min(wait, timedelta(minutes=settings.partner.backoff_max_minutes))


class _Failure(Exception):
    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.permanent = permanent


def _signer(ring: KeyRing, signs_with: str, now: datetime) -> Callable[[bytes], tuple[str, str]]:
    """Sign with the key of ours this partner is known to accept while we still hold it (see
    ``partner_keys``), else with our current key."""
    for k in ring.accepted(now):
        if signs_with and k.kid == signs_with:
            key = k
            return lambda data: (key.kid, base64.b64encode(key.private.sign(data)).decode())
    return ring.sign


def _post(settings: Settings, url: str, envelope: bytes) -> None:
    timeout = settings.partner.request_timeout_s
    try:
        with (
            httpx.Client(
                timeout=timeout, follow_redirects=False, trust_env=False, verify=ssl_context()
            ) as client,
            client.stream(
                "POST",
                url,
                content=envelope,
                headers={"Content-Type": "application/json", "User-Agent": "meldpunt-partner"},
            ) as answer,
        ):
            status = answer.status_code
            text = b""
            for chunk in answer.iter_bytes():
                text += chunk
                if len(text) > MAX_ANSWER:
                    break
    except httpx.HTTPError as exc:
        raise _Failure(f"{url}: {type(exc).__name__}: {exc}", permanent=False) from None
    if 200 <= status < 300:
        if _inbox_answer(text):
            return
        # a proxy's or a web server's page, or junk: not the partner's inbox saying it took the message
        raise _Failure(
            f"HTTP {status} but not an inbox's answer (applied/duplicate): {text[:120]!r}", permanent=False
        )
    try:
        said = json.loads(text[:MAX_ANSWER])
        reason = f"{said.get('error', '')}: {said.get('message', '')}" if isinstance(said, dict) else ""
    except ValueError:
        reason = ""
    permanent = 400 <= status < 500 and status not in (408, 425, 429)
    raise _Failure(f"HTTP {status} {reason}".strip()[:2000], permanent=permanent)


def _inbox_answer(text: bytes) -> bool:
    """Whether a 2xx answer is the inbox's ``{"status": "applied" | "duplicate"}``. Any 2xx was
    taken as delivered: a partner URL that reached a proxy's or web server's page (200, HTML) lost
    the message, marked delivered."""
    try:
        said = json.loads(text[:MAX_ANSWER])
    except ValueError:
        return False
    return isinstance(said, dict) and said.get("status") in ("applied", "duplicate")


def step_partner_send(services: PartnerNeeds, worker: Worker, job: ClaimedJob) -> str:
    """One attempt at a partner's head message: delivered, retried later, or dead."""
    pid = int(job.payload["partner_id"])
    seq_text, attempt_text = job.key.split(":")[1:3]
    now = services.clock.now()
    with services.engine.connect() as conn:
        partner = load_by_id(conn, pid)
        head = _head(conn, pid)
        signs_with = conn.execute(select(PartnerRow.signs_with).where(PartnerRow.id == pid)).scalar() or ""
    if (
        partner is None
        or partner.removed is not None
        or head is None
        or head.seq != int(seq_text)
        or head.attempts + 1 != int(attempt_text)
        or (head.next_attempt_at is not None and utc(head.next_attempt_at) > now)
    ):
        with services.engine.begin() as conn:  # stale: delivered, dead, or not due; kick the right one
            kick(conn, pid, now)
            worker.queue.finish(conn, job)
        return "skipped"
    message = _out(head, partner.name)
    payload = Payload(
        sender=instance_name(services.settings),
        to=partner.name,
        id=head.message_id,
        seq=head.seq,
        kind=head.kind,
        nonce=new_nonce(),
        sent_at=now,
        body=message.body,
    )
    try:
        try:
            envelope = seal(payload, _signer(key_ring(services), signs_with, now))
        except (SigningKeyError, OSError, ValueError) as exc:
            # our side (the key ring unreadable): recorded like a partner that is down, so the
            # next attempt gets its own job instead of this one dying in the job queue
            raise _Failure(f"cannot sign: {exc}", permanent=False) from None
        _post(services.settings, partner.inbox, envelope)
    except _Failure as exc:
        return _failed(services, worker, job, message, head, exc)
    with services.engine.begin() as conn:
        moved = conn.execute(
            update(PartnerOutRow)
            .where(PartnerOutRow.id == head.id, PartnerOutRow.state == OutState.QUEUED.value)
            .values(
                state=OutState.DELIVERED.value,
                delivered_at=now,
                attempts=PartnerOutRow.attempts + 1,
                next_attempt_at=None,
                failing_since=None,
                last_error="",
            )
        ).rowcount
        if moved == 1:
            done = replace(
                message, state=OutState.DELIVERED.value, delivered_at=now, attempts=head.attempts + 1
            )
            for fn in _DELIVERED.get(head.kind, []):
                fn(conn, done)
        kick(conn, pid, now)
        worker.queue.finish(conn, job)
    return "delivered"


def _failed(
    services: PartnerNeeds, worker: Worker, job: ClaimedJob, message: OutMessage, head: Any, exc: _Failure
) -> str:
    now = services.clock.now()
    since = utc(head.failing_since) if head.failing_since else now
    window = timedelta(hours=services.settings.partner.retry_max_hours)
    attempts = head.attempts + 1
    final = exc.permanent or now - since >= window
    reason = str(exc) if exc.permanent else (f"retries spent ({attempts}): {exc}" if final else str(exc))
    values: dict[str, Any] = {"attempts": attempts, "last_error": reason[:2000], "failing_since": since}
    if final:
        values.update(state=OutState.DEAD.value, next_attempt_at=None)
    else:
        values["next_attempt_at"] = now + backoff(attempts, services.settings)
    log.warning(
        "message %d (%s, seq %d) to partner %s: %s",
        message.id,
        message.kind,
        message.seq,
        message.partner,
        "dead letter: " + reason if final else f"will retry: {reason}",
    )
    with services.engine.begin() as conn:
        moved = conn.execute(
            update(PartnerOutRow)
            .where(PartnerOutRow.id == head.id, PartnerOutRow.state == OutState.QUEUED.value)
            .values(**values)
        ).rowcount
        if moved == 1 and final:
            dead = replace(message, state=OutState.DEAD.value, attempts=attempts, last_error=reason)
            for fn in _DEAD.get(head.kind, []):
                fn(conn, dead, reason)
            kick(conn, head.partner_id, now)  # the messages after a dead letter go on
        worker.queue.finish(conn, job)
    return "dead" if final else "retry"


def tick_partners(services: PartnerNeeds) -> int:
    """Enqueue the due attempt at every partner's head (safe in every worker at once: one job key
    per attempt), and drop nonces older than twice the allowed skew. The number enqueued."""
    from meldpunt.store.partners import PartnerNonceRow

    now = services.clock.now()
    with services.engine.connect() as conn:
        pids = (
            conn.execute(
                select(PartnerOutRow.partner_id)
                .join(PartnerRow, PartnerRow.id == PartnerOutRow.partner_id)
                .where(PartnerOutRow.state == OutState.QUEUED.value, PartnerRow.removed_at.is_(None))
                .group_by(PartnerOutRow.partner_id)
            )
            .scalars()
            .all()
        )
    added = 0
    with services.engine.begin() as conn:
        for pid in pids:
            added += kick(conn, pid, now)
        horizon = now - 2 * timedelta(seconds=services.settings.partner.max_skew_s)
        conn.execute(delete(PartnerNonceRow).where(PartnerNonceRow.seen_at < horizon))
    return added


def messages(
    services: PartnerNeeds, partner: str, *, states: tuple[str, ...] = ("queued", "dead"), limit: int = 200
) -> list[OutMessage]:
    """A partner's messages in these states, in seq order (``partner show``, the item page)."""
    with services.engine.connect() as conn:
        pid = conn.execute(select(PartnerRow.id).where(PartnerRow.name == partner)).scalar()
        if pid is None:
            raise PartnerError([f"no partner called {partner!r}"])
        rows = conn.execute(
            select(PartnerOutRow)
            .where(PartnerOutRow.partner_id == pid, PartnerOutRow.state.in_(states))
            .order_by(PartnerOutRow.seq)
            .limit(limit)
        ).all()
    return [_out(r, partner) for r in rows]


def message(services: PartnerNeeds, message_id: int) -> OutMessage | None:
    with services.engine.connect() as conn:
        row = conn.execute(select(PartnerOutRow).where(PartnerOutRow.id == message_id)).first()
        if row is None:
            return None
        name = conn.execute(select(PartnerRow.name).where(PartnerRow.id == row.partner_id)).scalar_one()
    return _out(row, name)


def counts(services: PartnerNeeds) -> dict[str, dict[str, int]]:
    """Messages per partner and state."""
    with services.engine.connect() as conn:
        rows = conn.execute(
            select(PartnerRow.name, PartnerOutRow.state, func.count())
            .join(PartnerRow, PartnerRow.id == PartnerOutRow.partner_id)
            .group_by(PartnerRow.name, PartnerOutRow.state)
        ).all()
    out: dict[str, dict[str, int]] = {}
    for name, state, n in rows:
        out.setdefault(name, {})[state] = int(n)
    return out


def retry(services: PartnerNeeds, message_id: int, *, actor: str) -> OutMessage:
    """Queue a dead letter again (a senior's decision, audited). It becomes its partner's head: it
    is sent before the messages still queued, after those already delivered."""
    now = services.clock.now()
    with services.engine.begin() as conn:
        row = conn.execute(select(PartnerOutRow).where(PartnerOutRow.id == message_id)).first()
        if row is None:
            raise PartnerError([f"no partner message {message_id}"])
        moved = conn.execute(
            update(PartnerOutRow)
            .where(PartnerOutRow.id == message_id, PartnerOutRow.state == OutState.DEAD.value)
            .values(state=OutState.QUEUED.value, next_attempt_at=None, failing_since=None)
        ).rowcount
        if not moved:
            raise PartnerError([f"message {message_id} is {row.state}, not a dead letter"])
        name = conn.execute(select(PartnerRow.name).where(PartnerRow.id == row.partner_id)).scalar_one()
        details = {"partner": name, "kind": row.kind, "seq": row.seq, "reason": row.last_error}
        record(conn, AuditEvent(actor, "partner.retry", f"partner-message:{message_id}", details, at=now))
        kick(conn, row.partner_id, now)
    found = message(services, message_id)
    assert found is not None
    return found
