"""Survivor cases (#12): register hashes under a case code and a passphrase, sign in, add hashes,
export, withdraw; match registrations against the media the walk saw (both ways); the survivor's
timeline of facts; a notification "there is news" to the case's contact.

Privacy, by construction:
- the case code (120 random bits) is stored only as HMAC-SHA256 under a key derived from the review
  key; the passphrase as argon2id; the optional contact sealed with AES-GCM (the case id bound in);
- a sign-in does the same argon2 work whether the code exists or not, and answers the same
  :class:`SignInFailed`; failures are counted per keyed hash of the code and of the client (the
  caller passes something identifying the client, e.g. its address: only its keyed hash is kept);
- a match links a medium to the case and labels nothing: analysts learn only
  :func:`registered_items` ("belongs to a registered case"), never which case;
- withdrawal deletes the case, its hashes and its contact (and any queued message holding the
  address); its links stay with no case (``case_id`` NULL), which says nothing about whom.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from meldpunt.act.context import ActNeeds, Worker, utc
from meldpunt.act.outbox import queue_message
from meldpunt.audit import AuditEvent, record
from meldpunt.domain.acting import EventKind
from meldpunt.domain.pdq import pdq_usable
from meldpunt.domain.reports import FINAL_STATES
from meldpunt.index import PDQIndex
from meldpunt.pipeline.jobs import ClaimedJob, enqueue
from meldpunt.store.acting import ActionEvent, Location, OutboxMessage, Takedown
from meldpunt.store.models import Meta
from meldpunt.store.reports import Item, Medium
from meldpunt.store.survivors import SCAN_CURSOR, SurvivorAttempt, SurvivorCase, SurvivorHash, SurvivorLink
from meldpunt.store.survivors_abroad import SurvivorFactAbroad, SurvivorLinkIn

#: the job that matches a case's newly registered hashes against every medium already seen
MATCH = "survivor_match"
#: the outbox purpose of "there is news" messages (ref_id: the case id)
NEWS = "survivor_news"

SIGNAL_TYPES = ("md5", "sha256", "pdq")
_HEX_LEN = {"md5": 32, "sha256": 64, "pdq": 64}
_HEX = re.compile(r"^[0-9a-f]+$")
CODE_BYTES = 15  # 120 bits
MAX_HASHES = 100_000
LANGUAGES = ("en", "nl", "fr")
#: sign-in limits: failures per window, per case code and per client
WINDOW = timedelta(minutes=15)
PER_CODE = 5
PER_CLIENT = 20
_BATCH = 2000
_FINAL = frozenset(s.value for s in FINAL_STATES)
_MEDIA_CHUNK = 5000


class SurvivorError(ValueError):
    """Bad input, said in plain words (the web answers 422, the CLI exits 2)."""


class SignInFailed(Exception):
    """Wrong code or passphrase: the same answer for both, so a guessed code learns nothing."""


class SignInLimited(Exception):
    """Too many failed attempts for this code or this client: try again later."""


@dataclass(frozen=True)
class Registered:
    case_id: int
    #: shown once to the survivor, never stored
    code: str
    hashes: int


@dataclass(frozen=True)
class Fact:
    """One line of a survivor's timeline: facts only, never a URL."""

    at: datetime
    #: found | notice_sent | forwarded | referred_to_police | removed | still_online; what a
    #: partner hotline reported: found_abroad | notice_sent_abroad | removed_abroad
    kind: str
    domain: str = ""
    country: str = ""
    days: int | None = None
    #: for facts from abroad: the partner hotline (its name in our registry) and its country
    partner: str = ""
    partner_country: str = ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"at": self.at.isoformat(), "kind": self.kind}
        if self.domain:
            d["domain"] = self.domain
        if self.country:
            d["country"] = self.country
        if self.days is not None:
            d["days"] = self.days
        if self.partner:
            d["partner"] = self.partner
        if self.partner_country:
            d["partner_country"] = self.partner_country
        return d


# --- keys ----------------------------------------------------------------------------------------


class Keys:
    """Keys derived (HKDF-SHA256) from the review key: one for keyed hashes, one for contacts."""

    def __init__(self, master: bytes) -> None:
        def derive(info: bytes) -> bytes:
            return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)

        self._mac = derive(b"meldpunt:survivor-codes:v1")
        self._aead = AESGCM(derive(b"meldpunt:survivor-contacts:v1"))

    @classmethod
    def from_settings(cls, services: ActNeeds) -> Keys:
        from meldpunt.stores.review import review_key

        return cls(review_key(services.settings))

    def keyed(self, kind: str, value: str) -> str:
        return hmac.new(self._mac, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    def seal(self, case_id: int, contact: str) -> str:
        nonce = secrets.token_bytes(12)
        blob = nonce + self._aead.encrypt(nonce, contact.encode(), b"survivor-contact:%d" % case_id)
        return base64.urlsafe_b64encode(blob).decode()

    def open(self, case_id: int, sealed: str) -> str:
        if not sealed:
            return ""
        blob = base64.urlsafe_b64decode(sealed)
        try:
            return self._aead.decrypt(blob[:12], blob[12:], b"survivor-contact:%d" % case_id).decode()
        except InvalidTag as exc:
            raise SurvivorError("the contact address cannot be read with this key") from exc


_HASHER = PasswordHasher()


@functools.cache
def _dummy() -> str:
    """The hash a sign-in verifies against when no case has the code (the same work either way).
    Made at the first sign-in of the process, before the case is looked up, not at import: every
    process that loads this module (each web and worker process, each CLI command) paid 0.25 s."""
    return _HASHER.hash(secrets.token_hex(16))


def new_code() -> str:
    """120 random bits as 24 base32 characters in groups of four (no 0/1/8/9 to misread)."""
    raw = base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode()
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def normal_code(code: str) -> str:
    return re.sub(r"[\s-]", "", code).upper()


def check_hashes(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(signal_type, value) pairs, canonical and de-duplicated; SurvivorError on any bad one."""
    out: dict[tuple[str, str], None] = {}
    for n, (kind, value) in enumerate(pairs, 1):
        kind, value = kind.strip().lower(), value.strip().lower()
        if kind not in SIGNAL_TYPES:
            raise SurvivorError(f"hash {n}: unknown kind {kind!r} (md5, sha256 or pdq)")
        if len(value) != _HEX_LEN[kind] or not _HEX.match(value):
            raise SurvivorError(f"hash {n}: a {kind} hash is {_HEX_LEN[kind]} hexadecimal characters")
        out[(kind, value)] = None
        if len(out) > MAX_HASHES:
            raise SurvivorError(f"at most {MAX_HASHES} hashes per case")
    return list(out)


# --- registration and sign-in --------------------------------------------------------------------


def register(
    services: ActNeeds,
    *,
    passphrase: str,
    hashes_: Iterable[tuple[str, str]],
    contact: str = "",
    language: str = "en",
    consent_forward: bool = False,
) -> Registered:
    """A new case, its hashes and (optionally) its sealed contact in one transaction, with the job
    that matches the hashes against every medium already seen. The code is returned once."""
    if len(passphrase) < 10:
        raise SurvivorError("the passphrase needs at least 10 characters")
    if language not in LANGUAGES:
        raise SurvivorError(f"language must be one of {', '.join(LANGUAGES)}")
    contact = contact.strip()
    if contact and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", contact):
        raise SurvivorError("the contact address does not look like an e-mail address")
    pairs = check_hashes(hashes_)
    if not pairs:
        raise SurvivorError("register at least one hash")
    keys = Keys.from_settings(services)
    code = new_code()
    now = services.clock.now()
    with services.engine.begin() as conn:
        case_id = int(
            conn.execute(
                insert(SurvivorCase)
                .values(
                    code_hash=keys.keyed("code", normal_code(code)),
                    passphrase=_HASHER.hash(passphrase),
                    contact="",
                    language=language,
                    consent_forward=consent_forward,
                    created_at=now,
                    notified_through=0,
                )
                .returning(SurvivorCase.id)
            ).scalar_one()
        )
        if contact:
            conn.execute(
                update(SurvivorCase)
                .where(SurvivorCase.id == case_id)
                .values(contact=keys.seal(case_id, contact))
            )
        _add(conn, case_id, pairs, now)
        _audit(conn, "survivor.register", case_id, now, hashes=len(pairs), contact=bool(contact))
    return Registered(case_id, code, len(pairs))


def _audit(conn: Connection, action: str, case_id: int, now: datetime, **details: Any) -> None:
    """An audit line that says what was done to which case id, with counts: never the code, the
    contact or a hash (after withdrawal the id points at nothing)."""
    record(conn, AuditEvent("survivor", action, f"survivor_case:{case_id}", details, at=now))


def _add(conn: Connection, case_id: int, pairs: Sequence[tuple[str, str]], now: datetime) -> int:
    """Insert the new pairs (those the case has are skipped) and queue their match job."""
    have = {
        (r.signal_type, r.value)
        for r in conn.execute(
            select(SurvivorHash.signal_type, SurvivorHash.value).where(SurvivorHash.case_id == case_id)
        )
    }
    new = [p for p in pairs if p not in have]
    if not new:
        return 0
    for s in range(0, len(new), _BATCH):
        conn.execute(
            insert(SurvivorHash),
            [
                {"case_id": case_id, "signal_type": k, "value": v, "added_at": now}
                for k, v in new[s : s + _BATCH]
            ],
        )
    first, last = conn.execute(
        select(func.min(SurvivorHash.id), func.max(SurvivorHash.id)).where(
            SurvivorHash.case_id == case_id, SurvivorHash.added_at == now
        )
    ).one()
    # a random part: SQLite reuses the ids of a withdrawn case, and a job key is unique for good
    key = f"case:{case_id}:hashes:{first}-{last}:{secrets.token_hex(6)}"
    enqueue(conn, MATCH, key, {"case_id": case_id, "from": first, "to": last})
    return len(new)


def sign_in(services: ActNeeds, code: str, passphrase: str, client: str) -> int:
    """The case id for a right code and passphrase; :class:`SignInFailed` otherwise (the same
    argon2 work for an unknown code), :class:`SignInLimited` past the limits.

    Each attempt is counted *before* the passphrase is checked (and given back when it was
    right): counting after the check let guesses fired at the same moment all pass the limit
    while none of them had been counted yet."""
    keys = Keys.from_settings(services)
    now = services.clock.now()
    code_key = keys.keyed("code", normal_code(code))
    limits = ((keys.keyed("attempt-code", code_key), PER_CODE), (keys.keyed("client", client), PER_CLIENT))
    dummy = _dummy()  # made (once) whether the code exists or not
    _prune_attempts(services, now)
    with services.engine.begin() as conn:
        _reserve_attempts(conn, limits, now)
        case = conn.execute(
            select(SurvivorCase.id, SurvivorCase.passphrase).where(SurvivorCase.code_hash == code_key)
        ).first()
    try:
        _HASHER.verify(case.passphrase if case is not None else dummy, passphrase)
        ok = case is not None
    except (VerificationError, InvalidHashError):
        ok = False
    if ok and case is not None:
        with services.engine.begin() as conn:
            for key, _ in limits:  # a right passphrase is not a failure
                conn.execute(
                    update(SurvivorAttempt)
                    .where(SurvivorAttempt.key == key, SurvivorAttempt.failures > 0)
                    .values(failures=SurvivorAttempt.failures - 1)
                )
        return int(case.id)
    raise SignInFailed("the case code or the passphrase is not right")


def _reserve_attempts(conn: Connection, limits: Sequence[tuple[str, int]], now: datetime) -> None:
    """Count one attempt on each key, or raise :class:`SignInLimited` (counting nothing) when
    one is at its limit in its window. Each row is made or locked by one upsert (in key order,
    so two attempts never wait on each other crosswise); concurrent attempts on a key queue
    behind its row lock on PostgreSQL, SQLite serialises writers."""
    insert_ = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    rows = []
    for key, limit in sorted(limits):
        stmt = insert_(SurvivorAttempt).values(key=key, window_start=now, failures=0)
        row = conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["key"], set_={"failures": SurvivorAttempt.failures}
            ).returning(SurvivorAttempt.window_start, SurvivorAttempt.failures)
        ).one()
        fresh = utc(row.window_start) + WINDOW <= now
        start, failures = (now, 0) if fresh else (utc(row.window_start), int(row.failures))
        if failures >= limit:
            raise SignInLimited("too many attempts: try again later")
        rows.append((key, start, failures))
    for key, start, failures in rows:
        conn.execute(
            update(SurvivorAttempt)
            .where(SurvivorAttempt.key == key)
            .values(window_start=start, failures=failures + 1)
        )


def _prune_attempts(services: ActNeeds, now: datetime) -> None:
    """Drop the attempt rows whose window ended (they limit nothing any more): without it every
    guessed code left a row for good, and the table grew with every guess ever made."""
    with services.engine.begin() as conn:
        conn.execute(delete(SurvivorAttempt).where(SurvivorAttempt.window_start <= now - WINDOW))


def session_stamp(engine: Engine, case_id: int) -> str | None:
    """What a survivor's session is bound to besides the case id (None when there is no such
    case): a part of the keyed hash of its code, different for every case. SQLite gives a new
    case the id of the last one withdrawn, so a session bound to the id alone opened the next
    survivor's case with the withdrawn one's cookie."""
    with engine.connect() as conn:
        stamp = conn.execute(select(SurvivorCase.code_hash).where(SurvivorCase.id == case_id)).scalar()
    return stamp[:32] if stamp else None


def add_hashes(services: ActNeeds, case_id: int, hashes_: Iterable[tuple[str, str]]) -> int:
    """Add hashes to a signed-in case; how many were new (their match job is queued)."""
    pairs = check_hashes(hashes_)
    with services.engine.begin() as conn:
        if conn.execute(select(SurvivorCase.id).where(SurvivorCase.id == case_id)).first() is None:
            raise SurvivorError("no such case")
        total = conn.execute(
            select(func.count()).select_from(SurvivorHash).where(SurvivorHash.case_id == case_id)
        ).scalar_one()
        if total + len(pairs) > MAX_HASHES:
            raise SurvivorError(f"at most {MAX_HASHES} hashes per case")
        now = services.clock.now()
        added = _add(conn, case_id, pairs, now)
        _audit(conn, "survivor.add_hashes", case_id, now, hashes=added)
        return added


def export(services: ActNeeds, case_id: int) -> dict[str, Any]:
    """What is registered, for the survivor's download: hashes, language, consent, contact (opened)."""
    keys = Keys.from_settings(services)
    with services.engine.connect() as conn:
        case = conn.execute(select(SurvivorCase).where(SurvivorCase.id == case_id)).first()
        if case is None:
            raise SurvivorError("no such case")
        rows = conn.execute(
            select(SurvivorHash.signal_type, SurvivorHash.value, SurvivorHash.added_at)
            .where(SurvivorHash.case_id == case_id)
            .order_by(SurvivorHash.id)
        )
        hashes_ = [
            {"type": r.signal_type, "value": r.value, "added": utc(r.added_at).isoformat()} for r in rows
        ]
    return {
        "created": utc(case.created_at).isoformat(),
        "language": case.language,
        "consent_forward": bool(case.consent_forward),
        "contact": keys.open(case_id, case.contact),
        "hashes": hashes_,
        "timeline": [f.to_dict() for f in timeline(services.engine, case_id)],
    }


def label(services: ActNeeds, case_id: int) -> str:
    """A short label for the case on its statement ("S-" and 8 characters): a keyed hash of the
    case id, so it is neither the code (the survivor's secret) nor a count of cases."""
    return "S-" + Keys.from_settings(services).keyed("label", str(case_id))[:8].upper()


#: called in the withdrawal's transaction before the case is deleted: fn(services, conn, case_id)
_ON_WITHDRAW: list[Callable[[ActNeeds, Connection, int], None]] = []


def on_withdraw(fn: Callable[[ActNeeds, Connection, int], None]) -> None:
    """Run ``fn`` in every withdrawal's transaction, before the case is deleted (idempotent)."""
    if fn not in _ON_WITHDRAW:
        _ON_WITHDRAW.append(fn)


def withdraw(services: ActNeeds, case_id: int) -> bool:
    """Delete the case, its hashes (cascade) and its contact, and the news messages that hold the
    address; links keep no case. False when there was no such case. The :func:`on_withdraw`
    hooks run first (the partners that received the case's hashes are told to delete them)."""
    from meldpunt.act import survivor_abroad  # noqa: F401 - its hook tells the partners, in any process

    with services.engine.begin() as conn:
        if _lock_case(conn, case_id):
            for fn in _ON_WITHDRAW:
                fn(services, conn, case_id)
        conn.execute(update(SurvivorLink).where(SurvivorLink.case_id == case_id).values(case_id=None))
        conn.execute(delete(SurvivorHash).where(SurvivorHash.case_id == case_id))
        conn.execute(
            delete(OutboxMessage).where(OutboxMessage.purpose == NEWS, OutboxMessage.ref_id == case_id)
        )
        gone = conn.execute(delete(SurvivorCase).where(SurvivorCase.id == case_id)).rowcount == 1
        if gone:
            _audit(conn, "survivor.withdraw", case_id, services.clock.now())
        return gone


def _lock_case(conn: Connection, case_id: int) -> bool:
    """Lock the case row until the transaction ends (PostgreSQL; SQLite serialises writers)."""
    q = select(SurvivorCase.id).where(SurvivorCase.id == case_id)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()
    return conn.execute(q).first() is not None


# --- matching ------------------------------------------------------------------------------------

Found = tuple[int, int, str, int]  # (medium_id, item_id, matched_by, distance)
#: whose hashes matched: the values of a source's owner columns (``(case_id,)`` for registrations)
Owner = tuple[Any, ...]


@dataclass(frozen=True)
class Source:
    """A table of hashes matched against media like the registrations are: rows with ``id``,
    ``signal_type``, ``value`` and the ``owner`` columns that say whose they are, and ``link``,
    which records what matched for one owner (in the caller's transaction; the number linked).
    The registrations are the first; a partner's hashes received with forwards another
    (:mod:`meldpunt.act.survivor_abroad`)."""

    name: str
    table: Any
    owner: tuple[str, ...]
    link: Callable[[Connection, Owner, list[Found], datetime], int]


SOURCES: dict[str, Source] = {}


def add_source(source: Source) -> None:
    """Match ``source`` too in every :func:`tick_scan` pass (idempotent: one per name)."""
    SOURCES[source.name] = source


def _codes(values: Sequence[str]) -> np.ndarray[Any, Any]:
    return np.frombuffer(bytes.fromhex("".join(values)), dtype=np.uint8).reshape(-1, 32)


def _media_pdq(conn: Connection, where: Any, min_quality: int) -> Iterator[list[tuple[int, int, str]]]:
    """(medium, item, pdq) of hashed media in chunks (upright and stored hashes both), only the
    hashes good enough to match (:func:`~meldpunt.domain.pdq.pdq_usable`, as the bank matcher
    reads them): a flat picture hashes to all zeros with quality 0, and a registered hash of one
    linked the case to every flat picture the walk saw."""
    after = 0
    while True:
        rows = conn.execute(
            select(
                Medium.id,
                Medium.item_id,
                Medium.pdq,
                Medium.pdq_quality,
                Medium.pdq_stored,
                Medium.pdq_stored_quality,
            )
            .where(
                where,
                Medium.id > after,
                Medium.outcome != "",
                or_(Medium.pdq != "", Medium.pdq_stored.is_not(None)),
            )
            .order_by(Medium.id)
            .limit(_MEDIA_CHUNK)
        ).all()
        if not rows:
            return
        out = []
        for r in rows:
            for h, quality in ((r.pdq, r.pdq_quality), (r.pdq_stored, r.pdq_stored_quality)):
                if pdq_usable(h, quality, min_quality):
                    out.append((int(r.id), int(r.item_id), h))
        yield out
        after = int(rows[-1].id)


def _match_exact(conn: Connection, kind: str, values: Sequence[str], where: Any) -> list[Found]:
    col = Medium.md5 if kind == "md5" else Medium.sha256
    rows = conn.execute(
        select(Medium.id, Medium.item_id).where(where, Medium.outcome != "", col.in_(list(values)))
    )
    return [(int(r.id), int(r.item_id), kind, 0) for r in rows]


def _match_pdq(
    conn: Connection, values: Sequence[str], radius: int, where: Any, min_quality: int
) -> list[Found]:
    index = PDQIndex()
    index.add(_codes(values), np.arange(len(values), dtype=np.int64))
    found: dict[int, Found] = {}
    for chunk in _media_pdq(conn, where, min_quality):
        if not chunk:
            continue
        hits = index.search(_codes([h for _, _, h in chunk]), radius)
        for (medium, item, _), near in zip(chunk, hits, strict=True):
            if near:
                d = near[0][1]
                if medium not in found or d < found[medium][3]:
                    found[medium] = (medium, item, "pdq", d)
    return list(found.values())


def _link(conn: Connection, case_id: int, found: Iterable[Found], now: datetime) -> int:
    best: dict[int, Found] = {}
    for f in found:
        if f[0] not in best or f[3] < best[f[0]][3]:
            best[f[0]] = f
    if not best:
        return 0
    have = set(
        conn.execute(
            select(SurvivorLink.medium_id).where(
                SurvivorLink.case_id == case_id, SurvivorLink.medium_id.in_(list(best))
            )
        ).scalars()
    )
    rows = [
        {"case_id": case_id, "medium_id": m, "item_id": i, "matched_by": by, "distance": d, "at": now}
        for m, i, by, d in best.values()
        if m not in have
    ]
    if rows:
        stmt = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(SurvivorLink)
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["case_id", "medium_id"]), rows)
    return len(rows)


def match_seen(
    conn: Connection, pairs: Sequence[tuple[str, str]], radius: int, min_quality: int
) -> list[Found]:
    """The media already seen that match these (signal_type, value) pairs: exact hashes by
    value, PDQ within ``radius`` of media PDQ hashes of at least ``min_quality`` (for a
    registration, or hashes a partner sent)."""
    found: list[Found] = []
    for kind in SIGNAL_TYPES:
        values = [v for k, v in pairs if k == kind]
        if not values:
            continue
        if kind == "pdq":
            found += _match_pdq(conn, values, radius, Medium.id > 0, min_quality)
        else:
            found += _match_exact(conn, kind, values, Medium.id > 0)
    return found


def step_match(services: ActNeeds, worker: Worker, job: ClaimedJob) -> str:
    """Match hashes ``from``..``to`` of a case against every medium already seen, a batch of
    hashes at a time (bounded memory), then link what matched in one transaction that first
    locks the case: a case withdrawn meanwhile gets nothing."""
    case_id, lo, hi = int(job.payload["case_id"]), int(job.payload["from"]), int(job.payload["to"])
    radius = services.settings.pdq_threshold
    found: list[Found] = []
    with services.engine.connect() as conn:
        after = lo - 1
        while True:
            rows = conn.execute(
                select(SurvivorHash.id, SurvivorHash.signal_type, SurvivorHash.value)
                .where(SurvivorHash.case_id == case_id, SurvivorHash.id > after, SurvivorHash.id <= hi)
                .order_by(SurvivorHash.id)
                .limit(_BATCH)
            ).all()
            if not rows:
                break
            after = int(rows[-1].id)
            found += match_seen(
                conn,
                [(r.signal_type, r.value) for r in rows],
                radius,
                services.settings.pdq_min_quality,
            )
    with services.engine.begin() as conn:
        linked = _link(conn, case_id, found, services.clock.now()) if _lock_case(conn, case_id) else 0
        worker.queue.finish(conn, job)
    return f"linked {linked}"


def tick_scan(services: ActNeeds) -> int:
    """Match the media hashed since the last pass against every registration (and every other
    :class:`Source`: hashes partners sent with forwards). The cursor moves
    over media in id order and stops at the first one not hashed yet; it moves by a conditional
    update, so of several workers only one links (the others' work is rolled back)."""
    radius = services.settings.pdq_threshold
    now = services.clock.now()
    with services.engine.begin() as conn:
        cursor = conn.execute(select(Meta.value).where(Meta.name == SCAN_CURSOR)).scalar()
        if cursor is None:  # the first pass: several workers may make the row at once
            stmt = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(Meta)
            conn.execute(
                stmt.values(name=SCAN_CURSOR, value=0).on_conflict_do_nothing(index_elements=["name"])
            )
            cursor = 0
    with services.engine.begin() as conn:
        media = conn.execute(
            select(Medium.id, Medium.item_id, Medium.outcome, Medium.md5, Medium.sha256, Item.state)
            .join(Item, Item.id == Medium.item_id)
            .where(Medium.id > cursor)
            .order_by(Medium.id)
            .limit(_MEDIA_CHUNK)
        ).all()
        ready = []
        for m in media:
            if m.outcome == "" and m.state not in _FINAL:
                break  # still being fetched (a medium of an item that gave up is never hashed)
            ready.append(m)
        if not ready:
            return 0
        last = int(ready[-1].id)
        moved = conn.execute(
            update(Meta).where(Meta.name == SCAN_CURSOR, Meta.value == cursor).values(value=last)
        ).rowcount
        if moved != 1:
            return 0
        window = and_(Medium.id > cursor, Medium.id <= last)
        usable = services.settings.pdq_min_quality
        flat = [x for chunk in _media_pdq(conn, window, usable) for x in chunk]
        n = 0
        for source in list(SOURCES.values()):
            for owner, found in _scan(conn, source, ready, flat, radius).items():
                n += source.link(conn, owner, found, now)
    return n + len(ready)


def _scan(
    conn: Connection, source: Source, ready: Sequence[Any], flat: Sequence[tuple[int, int, str]], radius: int
) -> dict[Owner, list[Found]]:
    """What of a source matches these media (exact hashes of ``ready``, PDQ hashes ``flat``), by
    owner; the source's PDQ hashes are indexed 50,000 at a time (bounded memory)."""
    table = source.table
    owner_cols = [getattr(table, c) for c in source.owner]
    links: dict[Owner, list[Found]] = {}
    for kind in ("md5", "sha256"):
        by_value: dict[str, list[Any]] = {}
        for m in ready:
            if getattr(m, kind):
                by_value.setdefault(getattr(m, kind), []).append(m)
        values = sorted(by_value)
        for s in range(0, len(values), _BATCH):
            for row in conn.execute(
                select(table.value, *owner_cols).where(
                    table.signal_type == kind, table.value.in_(values[s : s + _BATCH])
                )
            ):
                for m in by_value[row[0]]:
                    links.setdefault(tuple(row[1:]), []).append((int(m.id), int(m.item_id), kind, 0))
    if flat:
        queries = _codes([h for _, _, h in flat])
        after = 0
        while True:
            rows = conn.execute(
                select(table.id, table.value, *owner_cols)
                .where(table.signal_type == "pdq", table.id > after)
                .order_by(table.id)
                .limit(50_000)
            ).all()
            if not rows:
                break
            after = int(rows[-1][0])
            index = PDQIndex()
            index.add(_codes([r[1] for r in rows]), np.arange(len(rows), dtype=np.int64))
            for (medium, item, _), near in zip(flat, index.search(queries, radius), strict=True):
                for pos, d in near:
                    links.setdefault(tuple(rows[pos][2:]), []).append((medium, item, "pdq", d))
    return links


def registered_items(engine: Engine, item_ids: Sequence[int]) -> set[int]:
    """Which of these items belong to a registered case, ours or a partner hotline's (for
    analysts: never which case)."""
    if not item_ids:
        return set()
    with engine.connect() as conn:
        return set(
            conn.execute(
                select(SurvivorLink.item_id)
                .where(SurvivorLink.item_id.in_(list(item_ids)), SurvivorLink.case_id.is_not(None))
                .distinct()
            ).scalars()
        ) | set(
            conn.execute(
                select(SurvivorLinkIn.item_id).where(SurvivorLinkIn.item_id.in_(list(item_ids))).distinct()
            ).scalars()
        )


def consented_hashes(engine: Engine, item_id: int, radius: int) -> list[tuple[str, str]]:
    """The registered hashes that matched this item's media, of cases whose survivor agreed that
    they travel with forwarded items (for the forwarding part to send to a partner hotline): only
    those hashes, never the case, never its other hashes."""
    with engine.connect() as conn:
        per_case = consented_by_case(conn, item_id, radius)
    return list({p: None for pairs in per_case.values() for p in pairs})


def consented_by_case(conn: Connection, item_id: int, radius: int) -> dict[int, list[tuple[str, str]]]:
    """:func:`consented_hashes` per case id (the sender keeps which reference went where)."""
    out: dict[int, dict[tuple[str, str], None]] = {}
    rows = conn.execute(
        select(SurvivorLink.case_id, Medium.md5, Medium.sha256, Medium.pdq, Medium.pdq_stored)
        .join(Medium, Medium.id == SurvivorLink.medium_id)
        .join(SurvivorCase, SurvivorCase.id == SurvivorLink.case_id)
        .where(SurvivorLink.item_id == item_id, SurvivorCase.consent_forward.is_(True))
        .order_by(SurvivorLink.id)
    ).all()
    for r in rows:
        mine = conn.execute(
            select(SurvivorHash.signal_type, SurvivorHash.value)
            .where(
                SurvivorHash.case_id == r.case_id,
                or_(
                    and_(SurvivorHash.signal_type == "md5", SurvivorHash.value == r.md5),
                    and_(SurvivorHash.signal_type == "sha256", SurvivorHash.value == r.sha256),
                    SurvivorHash.signal_type == "pdq",
                ),
            )
            .order_by(SurvivorHash.id)
        ).all()
        found = [h for h in (r.pdq, r.pdq_stored) if h and len(h) == 64]
        for kind, value in mine:
            if kind != "pdq" or (found and index_distance(value, found) <= radius):
                out.setdefault(int(r.case_id), {})[(kind, value)] = None
    return {c: list(pairs) for c, pairs in out.items()}


def index_distance(value: str, others: Sequence[str]) -> int:
    """The smallest Hamming distance between one PDQ hash and others."""
    a = int(value, 16)
    return min(bin(a ^ int(o, 16)).count("1") for o in others)


# --- the survivor's timeline and news ------------------------------------------------------------

_EVENT_FACTS = {
    EventKind.NOTICE_SENT.value: "notice_sent",
    EventKind.FORWARD_SENT.value: "forwarded",
    EventKind.REFERRAL_EXPORTED.value: "referred_to_police",
    EventKind.REMOVED.value: "removed",
    EventKind.PROVIDER_REMOVED.value: "removed",
    EventKind.CHECKED_ONLINE.value: "still_online",
}


def timeline(engine: Engine, case_id: int) -> list[Fact]:
    """The case's facts, oldest first: each item found (date, domain, hosting country) and what
    was done about it, read from the action timeline of the linked items. Never a URL."""
    facts: list[Fact] = []
    with engine.connect() as conn:
        found = conn.execute(
            select(SurvivorLink.item_id, func.min(SurvivorLink.at).label("at"))
            .where(SurvivorLink.case_id == case_id)
            .group_by(SurvivorLink.item_id)
        ).all()
        for item_id, at in found:
            at = utc(at)
            host = conn.execute(select(Item.host).where(Item.id == item_id)).scalar() or ""
            country = (
                conn.execute(
                    select(Location.country)
                    .where(Location.item_id == item_id)
                    .order_by(Location.located_at.desc(), Location.id.desc())
                    .limit(1)
                ).scalar()
                or ""
            )
            forward_to = (
                conn.execute(select(Takedown.forward_to).where(Takedown.item_id == item_id)).scalar() or ""
            )
            facts.append(Fact(at, "found", domain=host, country=country))
            events = conn.execute(
                select(ActionEvent.at, ActionEvent.kind)
                .where(ActionEvent.item_id == item_id, ActionEvent.kind.in_(list(_EVENT_FACTS)))
                .order_by(ActionEvent.at, ActionEvent.id)
            ).all()
            removed = False
            # "still online" lines: only the latest between two other facts of this finding, so
            # a long takedown shows one line per stretch, not one per re-check
            online: Fact | None = None
            for e_at, kind in events:
                fact = _EVENT_FACTS[kind]
                e_at = utc(e_at)
                if fact == "still_online":
                    online = Fact(e_at, fact, domain=host, days=max(0, (e_at - at).days))
                    continue
                if fact == "removed" and removed:
                    continue
                if online is not None:
                    facts.append(online)
                    online = None
                if fact == "removed":
                    removed = True
                    facts.append(Fact(e_at, fact, domain=host))
                elif fact == "forwarded":
                    # a takedown is forwarded to the hotline of the hosting country
                    facts.append(Fact(e_at, fact, country=_partner_country(forward_to) or country))
                elif fact == "notice_sent":
                    facts.append(Fact(e_at, fact, country=country))
                else:
                    facts.append(Fact(e_at, fact))
            if online is not None:
                facts.append(online)
        for r in conn.execute(
            select(SurvivorFactAbroad)
            .where(SurvivorFactAbroad.case_id == case_id)
            .order_by(SurvivorFactAbroad.at, SurvivorFactAbroad.id)
        ):
            facts.append(
                Fact(
                    utc(r.at),
                    f"{r.fact}_abroad",
                    domain=r.domain,
                    country=r.country,
                    partner=r.partner,
                    partner_country=r.partner_country,
                )
            )
    facts.sort(key=lambda f: f.at)
    return facts


def _partner_country(partner: str) -> str:
    """A partner hotline's country when its name carries one (``nl-meldpunt`` -> NL), else ""."""
    head = partner.split("-", 1)[0].split(":", 1)[0]
    return head.upper() if len(head) == 2 and head.isalpha() else ""


_NEWS_TEXT = {
    "en": ("News about your registration", "There is news about your registration. Sign in to read it."),
    "nl": ("Nieuws over uw registratie", "Er is nieuws over uw registratie. Meld u aan om het te lezen."),
    "fr": (
        "Du nouveau sur votre enregistrement",
        "Il y a du nouveau sur votre enregistrement. Connectez-vous pour le lire.",
    ),
}


def _news_markers(engine: Engine) -> dict[int, tuple[int, int]]:
    """(told, now) per case with a contact: ``now`` counts its links and the timeline lines of
    their items that make facts, in two grouped queries (no timeline is built on a quiet pass)."""
    with engine.connect() as conn:
        told = dict(
            conn.execute(
                select(SurvivorCase.id, SurvivorCase.notified_through).where(SurvivorCase.contact != "")
            ).all()
        )
        if not told:
            return {}
        links = dict(
            conn.execute(
                select(SurvivorLink.case_id, func.count(func.distinct(SurvivorLink.item_id)))
                .where(SurvivorLink.case_id.in_(list(told)))
                .group_by(SurvivorLink.case_id)
            ).all()
        )
        events = dict(
            conn.execute(
                select(SurvivorLink.case_id, func.count(func.distinct(ActionEvent.id)))
                .join(ActionEvent, ActionEvent.item_id == SurvivorLink.item_id)
                .where(SurvivorLink.case_id.in_(list(told)), ActionEvent.kind.in_(list(_EVENT_FACTS)))
                .group_by(SurvivorLink.case_id)
            ).all()
        )
        abroad = dict(
            conn.execute(
                select(SurvivorFactAbroad.case_id, func.count())
                .where(SurvivorFactAbroad.case_id.in_(list(told)))
                .group_by(SurvivorFactAbroad.case_id)
            ).all()
        )
    return {
        int(c): (int(seen), int(links.get(c, 0)) + int(events.get(c, 0)) + int(abroad.get(c, 0)))
        for c, seen in told.items()
    }


def tick_news(services: ActNeeds) -> int:
    """For each case with a contact whose facts grew since it was last told (a new finding, a
    new action on a finding), one outbox message that says only that there is news, in the
    case's language (a conditional update on ``notified_through``: one worker queues it)."""
    keys: Keys | None = None
    now = services.clock.now()
    markers = _news_markers(services.engine)
    queued = 0
    for case_id, (seen, count) in markers.items():
        if count <= seen:
            continue
        keys = keys or Keys.from_settings(services)
        with services.engine.begin() as conn:
            row = conn.execute(
                select(SurvivorCase.contact, SurvivorCase.language).where(SurvivorCase.id == case_id)
            ).first()
            moved = conn.execute(
                update(SurvivorCase)
                .where(SurvivorCase.id == case_id, SurvivorCase.notified_through == seen)
                .values(notified_through=count)
            ).rowcount
            if moved != 1 or row is None:
                continue
            subject, body = _NEWS_TEXT.get(row.language, _NEWS_TEXT["en"])
            queue_message(
                conn,
                purpose=NEWS,
                ref_id=int(case_id),
                channel="email",
                target=keys.open(int(case_id), row.contact),
                subject=subject,
                body=body,
                round=count,
                now=now,
            )
            queued += 1
    return queued


add_source(
    Source(
        "registrations",
        SurvivorHash,
        ("case_id",),
        lambda conn, owner, found, now: _link(conn, int(owner[0]), found, now),
    )
)
