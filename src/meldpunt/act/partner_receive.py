"""Messages from partner instances: verified, recorded replay-proof, and applied exactly once
(#11 part "wire").

:func:`receive` takes the raw bytes the inbox got and makes every check of
``meldpunt.exchange.envelope`` (size, nesting, shape, recipient, sender, key, signature, age), then,
in ONE transaction: records the nonce (an exact replay within the skew window is refused as a
replay; an older one is refused by its age — nonces are kept twice the skew, so none slips between),
claims the message id (unique: the same message applied twice is impossible, even from two
processes at once) and runs the kind's handler. A sender that retries a message we applied (its
answer was lost) sends the same id with a new nonce and is answered "duplicate", which it records as
delivered. A handler that raises :class:`Refused` has nothing it did applied; the refusal is
recorded in a second transaction (so a later retry of the same id, say once the item it speaks of
has arrived, is applied then) and answered with its status.

Refusals before the signature is checked are not recorded in the database (anyone can send bytes):
they are logged with their code and reason and counted (:data:`REFUSALS`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from meldpunt.act.partner_registry import Partner, PartnerNeeds, load
from meldpunt.act.partner_send import instance_name
from meldpunt.exchange.envelope import (
    EnvelopeError,
    Opened,
    check_recipient,
    check_signature,
    check_time,
    open_envelope,
)
from meldpunt.store.partners import PartnerInRow, PartnerNonceRow
from meldpunt.stores.signing import SigningKeyError, parse_public_key, verify_with

log = logging.getLogger(__name__)

#: refusal code -> how many this process answered (never reset; for logs and the health of the link)
REFUSALS: Counter[str] = Counter()


class Refused(Exception):
    """Raised by a handler: the message is authentic but cannot be applied here (``status`` 4xx:
    404 for an item we never got, 409 for a conflict, 422 for a body we cannot use)."""

    def __init__(self, reason: str, *, status: int = 422, code: str = "refused") -> None:
        super().__init__(reason)
        if not 400 <= status < 500:
            raise ValueError("a refusal is a 4xx status")
        self.reason = reason
        self.status = status
        self.code = code


@dataclass(frozen=True)
class InMeta:
    message_id: str
    seq: int
    sent_at: datetime
    received_at: datetime
    kid: str


@dataclass(frozen=True)
class Received:
    """What :func:`receive` did: ``status`` applied | duplicate | refused, the HTTP status to answer,
    and for a refusal its code and readable reason."""

    status: str
    http: int = 200
    code: str = ""
    message: str = ""
    sender: str = ""
    kind: str = ""

    def answer(self) -> dict[str, str]:
        if self.status == "refused":
            return {"error": self.code, "message": self.message}
        return {"status": self.status}


Handler = Callable[[PartnerNeeds, Connection, Partner, dict[str, Any], InMeta], None]
_HANDLERS: dict[str, Handler] = {}


def on_message(kind: str, fn: Handler) -> None:
    """Apply messages of ``kind`` with ``fn(services, conn, sender, body, meta)``, in the transaction
    that records the message (raise :class:`Refused` to refuse it)."""
    _HANDLERS[kind] = fn


def off_message(kind: str) -> None:
    """Stop taking messages of ``kind`` (tests)."""
    _HANDLERS.pop(kind, None)


def _refused(code: str, message: str, status: int, *, sender: str = "", kind: str = "") -> Received:
    REFUSALS[code] += 1
    log.warning(
        "partner message refused (%s, HTTP %d): %s [sender %r, kind %r]", code, status, message, sender, kind
    )
    return Received("refused", status, code, message, sender, kind)


@cache
def _insert_ignore(dialect: str, table: Any, index: tuple[str, ...], columns: tuple[str, ...]) -> Any:
    dialect_insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return (
        dialect_insert(table)
        .values({c: bindparam(c) for c in columns})
        .on_conflict_do_nothing(index_elements=list(index))
        .returning(table.c[index[0]])
    )


def _add_nonce(conn: Connection, nonce: str, now: datetime) -> bool:
    stmt = _insert_ignore(conn.dialect.name, PartnerNonceRow.__table__, ("nonce",), ("nonce", "seen_at"))
    return conn.execute(stmt, {"nonce": nonce, "seen_at": now}).first() is not None


_IN_COLUMNS = ("sender_id", "message_id", "nonce", "seq", "kind", "sent_at", "received_at", "state", "reason")


def _claim(conn: Connection, sender: Partner, opened: Opened, now: datetime, state: str, reason: str) -> bool:
    p = opened.payload
    stmt = _insert_ignore(conn.dialect.name, PartnerInRow.__table__, ("message_id",), _IN_COLUMNS)
    values = {
        "sender_id": sender.id,
        "message_id": p.id,
        "nonce": p.nonce,
        "seq": p.seq,
        "kind": p.kind,
        "sent_at": p.sent_at,
        "received_at": now,
        "state": state,
        "reason": reason,
    }
    return conn.execute(stmt, values).first() is not None


def verify(services: PartnerNeeds, raw: bytes) -> tuple[Partner, Opened]:
    """Every check that needs no write: raises :class:`EnvelopeError`."""
    settings = services.settings
    opened = open_envelope(raw, max_bytes=settings.partner.max_message_bytes)
    p = opened.payload
    check_recipient(p, instance_name(settings))
    with services.engine.connect() as conn:
        sender = load(conn, p.sender, removed=True)
    if sender is None:
        raise EnvelopeError("unknown_sender", "the sender is not a partner of ours", status=403)
    if sender.removed is not None:
        raise EnvelopeError("partner_removed", "the sender is no longer a partner of ours", status=403)
    now = services.clock.now()
    keys: dict[str, Any] = {}
    for k in sender.accepted_keys(now, timedelta(days=settings.keys.grace_days)):
        try:
            keys[k.kid] = parse_public_key(k.public)
        except SigningKeyError:
            continue
    check_signature(opened, keys, verify_with)
    check_time(p, now, timedelta(seconds=settings.partner.max_skew_s))
    return sender, opened


def receive(services: PartnerNeeds, raw: bytes) -> Received:
    """Verify, record and apply one message (see the module's docstring); never raises for bad
    input — the :class:`Received` says what to answer."""
    try:
        sender, opened = verify(services, raw)
    except EnvelopeError as e:
        return _refused(e.code, e.message, e.status)
    p = opened.payload
    now = services.clock.now()
    meta = InMeta(p.id, p.seq, p.sent_at, now, opened.kid)
    try:
        with services.engine.begin() as conn:
            if not _add_nonce(conn, p.nonce, now):
                raise EnvelopeError("replay", "this exact message was received before", status=409)
            if not _claim(conn, sender, opened, now, "applied", ""):
                seen = conn.execute(select(PartnerInRow).where(PartnerInRow.message_id == p.id)).one()
                if seen.sender_id != sender.id or seen.kind != p.kind:
                    raise EnvelopeError("replay", "this message id was used for another message", status=409)
                retried = conn.execute(
                    update(PartnerInRow)
                    .where(PartnerInRow.id == seen.id, PartnerInRow.state == "refused")
                    .values(state="applied", reason="", received_at=now, nonce=p.nonce)
                ).rowcount
                if not retried:
                    log.info("partner %s sent message %s again: already applied", sender.name, p.id)
                    return Received("duplicate", 200, sender=sender.name, kind=p.kind)
            handler = _HANDLERS.get(p.kind)
            if handler is None:
                raise Refused(
                    f"this instance does not take {p.kind!r} messages", status=422, code="unknown_kind"
                )
            handler(services, conn, sender, p.body, meta)
    except EnvelopeError as e:
        return _refused(e.code, e.message, e.status, sender=sender.name, kind=p.kind)
    except Refused as r:
        _record_refusal(services, sender, opened, now, f"{r.code}: {r.reason}")
        return _refused(r.code, r.reason, r.status, sender=sender.name, kind=p.kind)
    log.info("applied %s message %s (seq %d) from partner %s", p.kind, p.id, p.seq, sender.name)
    return Received("applied", 200, sender=sender.name, kind=p.kind)


def _record_refusal(
    services: PartnerNeeds, sender: Partner, opened: Opened, now: datetime, reason: str
) -> None:
    with services.engine.begin() as conn:
        _add_nonce(conn, opened.payload.nonce, now)
        if not _claim(conn, sender, opened, now, "refused", reason[:2000]):
            conn.execute(
                update(PartnerInRow)
                .where(PartnerInRow.message_id == opened.payload.id, PartnerInRow.state == "refused")
                .values(reason=reason[:2000], received_at=now)
            )


@dataclass(frozen=True)
class InMessage:
    sender: str
    message_id: str
    seq: int
    kind: str
    sent_at: datetime
    received_at: datetime
    state: str
    reason: str


def received(services: PartnerNeeds, sender: str, *, limit: int = 100) -> list[InMessage]:
    """The newest messages a partner sent us (``partner show``)."""
    from meldpunt.act.context import utc
    from meldpunt.store.partners import PartnerRow

    with services.engine.connect() as conn:
        rows = conn.execute(
            select(PartnerInRow)
            .join(PartnerRow, PartnerRow.id == PartnerInRow.sender_id)
            .where(PartnerRow.name == sender)
            .order_by(PartnerInRow.id.desc())
            .limit(limit)
        ).all()
    return [
        InMessage(sender, r.message_id, r.seq, r.kind, utc(r.sent_at), utc(r.received_at), r.state, r.reason)
        for r in rows
    ]
