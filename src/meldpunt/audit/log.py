"""The tamper-evident audit log: events appended to a SHA-256 hash chain, and its verification.

Appending (``record``) works inside the caller's transaction: the entry commits with the action it
records, or not at all. It serialises every appender on the one row of ``audit_head``:

1. PostgreSQL only: ``pg_advisory_xact_lock(AUDIT_LOCK_ID)`` (held until the transaction ends);
2. ``UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash`` — on SQLite the first write
   of a transaction takes the database's write lock (pysqlite begins a transaction at the first
   INSERT/UPDATE, so the read that follows sees every committed append); on PostgreSQL a row lock,
   and RETURNING gives the newest committed head even after waiting for another appender;
3. INSERT the entry chained from that head, then UPDATE the head to it.

The head stays locked until the caller's transaction ends, so record the event as late in the
transaction as possible. The primary key on ``seq`` is the last line of defence: two appenders that
somehow read the same head cannot both commit. There is deliberately no API to change or remove an
entry.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, text, update

from meldpunt.store.audit import GENESIS_HASH, HEAD_ID, AuditEntryRow, AuditHead

__all__ = [
    "AUDIT_LOCK_ID",
    "GENESIS_HASH",
    "AuditEntry",
    "AuditEvent",
    "AuditLog",
    "Checkpoint",
    "Problem",
    "Verification",
    "checkpoint",
    "entries",
    "entry_hash",
    "record",
    "verify",
]

#: The PostgreSQL advisory lock appends take (transaction level): the bytes "mp-audit" as a number.
AUDIT_LOCK_ID = int.from_bytes(b"mp-audit", "big")
#: Version tag hashed with every entry, so the serialisation can change later without ambiguity.
HASH_VERSION = "meldpunt-audit-v1"

MAX_ACTOR, MAX_ACTION, MAX_SUBJECT = 200, 100, 200
_ACTION = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$")
_CHECKPOINT = re.compile(r"^meldpunt-audit (\d+) ([0-9a-f]{64})$")
_BATCH = 1000


def canonical_json(details: Mapping[str, Any]) -> str:
    """Sorted keys, no spaces, UTF-8 kept, no NaN: one text for one value."""
    return json.dumps(
        dict(details), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _utc(at: datetime) -> datetime:
    # SQLite gives back naive datetimes: they were stored in UTC.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def canonical_time(at: datetime) -> str:
    return _utc(at).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def entry_hash(
    seq: int, at: datetime, actor: str, action: str, subject: str, details_json: str, prev_hash: str
) -> str:
    """SHA-256 (hex) of an entry: a JSON array of the version tag, the sequence number, the UTC time
    to the microsecond, actor, action, subject, the details' canonical JSON text and the previous
    entry's hash. (A JSON array: no field can run into the next.)"""
    payload = [HASH_VERSION, seq, canonical_time(at), actor, action, subject, details_json, prev_hash]
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AuditEvent:
    """Something someone did, as plain data: ``AuditEvent("anna", "item.reveal", "item:42")``."""

    #: a user name, "system" or "cli:<user>"
    actor: str
    #: a short dotted name: "item.reveal", "bank.import", "setting.change"
    action: str
    #: what it was done to: "item:42", "bank:ncmec-pdq"; "" when nothing in particular
    subject: str = ""
    #: anything JSON can carry (no NaN); stored and hashed as canonical JSON
    details: Mapping[str, Any] = field(default_factory=dict)
    #: when; timezone-aware (kept in UTC, to the microsecond)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if not self.actor or len(self.actor) > MAX_ACTOR:
            raise ValueError(f"actor must be 1 to {MAX_ACTOR} characters")
        if len(self.action) > MAX_ACTION or not _ACTION.match(self.action):
            raise ValueError(f"action must be a short dotted name like 'item.reveal', not {self.action!r}")
        if len(self.subject) > MAX_SUBJECT:
            raise ValueError(f"subject must be at most {MAX_SUBJECT} characters")
        if not isinstance(self.details, Mapping):
            raise TypeError("details must be a mapping")
        if self.at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        object.__setattr__(self, "at", _utc(self.at))
        canonical_json(self.details)  # raises TypeError/ValueError now, not at append time

    @property
    def details_json(self) -> str:
        return canonical_json(self.details)


@dataclass(frozen=True)
class AuditEntry:
    """An event as stored: its place in the chain and the hashes that bind it there."""

    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    #: the canonical JSON text, exactly as hashed
    details_json: str
    prev_hash: str
    hash: str

    @property
    def details(self) -> Any:
        return json.loads(self.details_json)

    def computed_hash(self) -> str:
        return entry_hash(
            self.seq, self.at, self.actor, self.action, self.subject, self.details_json, self.prev_hash
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": canonical_time(self.at),
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head as of some moment, kept elsewhere: ``meldpunt-audit <seq> <hash>``."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"meldpunt-audit {self.seq} {self.hash}"

    @classmethod
    def parse(cls, line: str) -> Checkpoint:
        m = _CHECKPOINT.match(line.strip())
        if not m:
            raise ValueError("a checkpoint reads 'meldpunt-audit <seq> <64 hex digits>'")
        cp = cls(int(m.group(1)), m.group(2))
        if cp.seq == 0 and cp.hash != GENESIS_HASH:
            raise ValueError("the checkpoint of an empty log has the genesis hash")
        return cp


#: kinds of Problem
HASH_MISMATCH = "hash mismatch"
GAP = "gap"
LINK_BROKEN = "link broken"
TRUNCATED = "truncated"
CHECKPOINT_MISMATCH = "checkpoint mismatch"
HEAD_MISMATCH = "head mismatch"


@dataclass(frozen=True)
class Problem:
    seq: int
    kind: str
    message: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.kind}: {self.message}"


@dataclass
class Verification:
    #: entries read
    entries: int = 0
    #: the last entry read (seq 0 and the genesis hash for an empty log)
    head: Checkpoint = field(default_factory=lambda: Checkpoint(0, GENESIS_HASH))
    problems: list[Problem] = field(default_factory=list)
    #: more problems were found than are listed
    more: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None


def _row_entry(row: Any) -> AuditEntry:
    return AuditEntry(
        seq=int(row.seq),
        at=_utc(row.at),
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        details_json=row.details,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


_COLUMNS = (
    AuditEntryRow.seq,
    AuditEntryRow.at,
    AuditEntryRow.actor,
    AuditEntryRow.action,
    AuditEntryRow.subject,
    AuditEntryRow.details,
    AuditEntryRow.prev_hash,
    AuditEntryRow.hash,
)


def record(conn: Connection, event: AuditEvent) -> AuditEntry:
    """Append ``event`` in ``conn``'s transaction (begun if none is): it commits or rolls back with
    the caller's work. For an ORM session pass ``session.connection()``. The head stays locked until
    that transaction ends: record the event as the transaction's last statement where possible."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": AUDIT_LOCK_ID})
    head = conn.execute(
        update(AuditHead)
        .where(AuditHead.id == HEAD_ID)
        .values(seq=AuditHead.seq)
        .returning(AuditHead.seq, AuditHead.hash)
    ).one_or_none()
    if head is None:
        raise RuntimeError("audit_head has no row: the database was not migrated by meldpunt")
    details_json = event.details_json
    seq = int(head.seq) + 1
    digest = entry_hash(seq, event.at, event.actor, event.action, event.subject, details_json, head.hash)
    entry = AuditEntry(
        seq, event.at, event.actor, event.action, event.subject, details_json, head.hash, digest
    )
    conn.execute(
        insert(AuditEntryRow).values(
            seq=seq,
            at=event.at,
            actor=event.actor,
            action=event.action,
            subject=event.subject,
            details=details_json,
            prev_hash=head.hash,
            hash=digest,
        )
    )
    conn.execute(update(AuditHead).where(AuditHead.id == HEAD_ID).values(seq=seq, hash=digest))
    return entry


def entries(
    conn: Connection,
    *,
    limit: int | None = None,
    actor: str | None = None,
    action: str | None = None,
    after: int = 0,
    newest: bool = False,
) -> list[AuditEntry]:
    """Entries in sequence order; ``newest``: the last ``limit`` of them (still oldest first).
    ``action`` is a name, or a prefix followed by ``*`` (``"bank.*"``)."""
    q = select(*_COLUMNS).where(AuditEntryRow.seq > after)
    if actor is not None:
        q = q.where(AuditEntryRow.actor == actor)
    if action is not None:
        if action.endswith("*"):
            q = q.where(AuditEntryRow.action.startswith(action[:-1], autoescape=True))
        else:
            q = q.where(AuditEntryRow.action == action)
    q = q.order_by(AuditEntryRow.seq.desc() if newest else AuditEntryRow.seq)
    if limit is not None:
        q = q.limit(limit)
    found = [_row_entry(r) for r in conn.execute(q)]
    return found[::-1] if newest else found


def _walk(conn: Connection) -> Iterator[AuditEntry]:
    last = -1
    while True:
        q = select(*_COLUMNS).where(AuditEntryRow.seq > last).order_by(AuditEntryRow.seq).limit(_BATCH)
        batch = [_row_entry(r) for r in conn.execute(q)]
        yield from batch
        if len(batch) < _BATCH:
            return
        last = batch[-1].seq


def checkpoint(conn: Connection) -> Checkpoint:
    """The last entry's ``(seq, hash)``; ``(0, genesis)`` for an empty log."""
    row = conn.execute(
        select(AuditEntryRow.seq, AuditEntryRow.hash).order_by(AuditEntryRow.seq.desc()).limit(1)
    ).one_or_none()
    return Checkpoint(0, GENESIS_HASH) if row is None else Checkpoint(int(row.seq), row.hash)


def verify(
    conn: Connection, checkpoint: Checkpoint | None = None, *, max_problems: int = 100
) -> Verification:
    """Walk the whole chain; report every entry that was edited (its content no longer gives its
    hash), removed (a gap in the numbers) or re-chained (its ``prev_hash`` is not the hash of the one
    before), and — against ``audit_head`` and the ``checkpoint`` kept elsewhere — entries cut from the
    end. Entries appended while it runs are harmless: the head is read first."""
    result = Verification()

    def problem(seq: int, kind: str, message: str) -> None:
        if len(result.problems) < max_problems:
            result.problems.append(Problem(seq, kind, message))
        else:
            result.more = True

    stored = conn.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == HEAD_ID)).one_or_none()
    head_seq = None if stored is None else int(stored.seq)
    if stored is None:
        problem(0, HEAD_MISMATCH, "audit_head has no row")
    hashes_wanted = {s for s in (head_seq, checkpoint.seq if checkpoint else None) if s}
    hashes_at: dict[int, str] = {}

    prev = Checkpoint(0, GENESIS_HASH)
    for e in _walk(conn):
        result.entries += 1
        expected = prev.seq + 1
        gap = e.seq != expected
        if gap:
            missing = str(expected) if e.seq == expected + 1 else f"{expected} to {e.seq - 1}"
            problem(expected, GAP, f"entries {missing} are missing (the next entry is {e.seq})")
        if e.computed_hash() != e.hash:
            problem(e.seq, HASH_MISMATCH, "the entry's content does not give its stored hash: it was edited")
        elif not gap and e.prev_hash != prev.hash:
            problem(
                e.seq,
                LINK_BROKEN,
                f"its prev_hash is not the hash of entry {prev.seq}: entries were rewritten or reordered",
            )
        if e.seq in hashes_wanted:
            hashes_at[e.seq] = e.hash
        prev = Checkpoint(e.seq, e.hash)
    result.head = prev

    if stored is not None and head_seq is not None:
        if head_seq > prev.seq:
            problem(
                prev.seq + 1,
                TRUNCATED,
                f"audit_head says the chain reaches {head_seq} but it ends at {prev.seq}: entries were cut",
            )
        elif hashes_at.get(head_seq, GENESIS_HASH) != stored.hash:
            problem(head_seq, HEAD_MISMATCH, "the entry's hash differs from the one audit_head recorded")
    if checkpoint is not None:
        if checkpoint.seq > prev.seq:
            problem(
                prev.seq + 1,
                TRUNCATED,
                f"the chain ends at {prev.seq} but the checkpoint has {checkpoint.seq}: entries were cut",
            )
        elif hashes_at.get(checkpoint.seq, GENESIS_HASH) != checkpoint.hash:
            problem(
                checkpoint.seq,
                CHECKPOINT_MISMATCH,
                "the entry's hash differs from the checkpoint's: it was replaced",
            )
    result.problems.sort(key=lambda p: p.seq)
    return result


class AuditLog:
    """The log on an engine, each call in a transaction of its own. Inside a transaction of yours,
    use :func:`record` with your connection instead."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self.clock = clock or (lambda: datetime.now(UTC))

    def record(self, event: AuditEvent) -> AuditEntry:
        with self.engine.begin() as conn:
            return record(conn, event)

    def append(
        self,
        actor: str,
        action: str,
        subject: str = "",
        details: Mapping[str, Any] | None = None,
        *,
        at: datetime | None = None,
    ) -> AuditEntry:
        event = AuditEvent(actor, action, subject, details or {}, at or self.clock())
        return self.record(event)

    def entries(
        self,
        *,
        limit: int | None = None,
        actor: str | None = None,
        action: str | None = None,
        after: int = 0,
        newest: bool = False,
    ) -> list[AuditEntry]:
        with self.engine.connect() as conn:
            return entries(conn, limit=limit, actor=actor, action=action, after=after, newest=newest)

    def checkpoint(self) -> Checkpoint:
        with self.engine.connect() as conn:
            return checkpoint(conn)

    def verify(self, checkpoint: Checkpoint | None = None, *, max_problems: int = 100) -> Verification:
        with self.engine.connect() as conn:
            return verify(conn, checkpoint, max_problems=max_problems)
