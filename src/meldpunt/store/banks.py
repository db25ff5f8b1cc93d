"""The bank repository: hash lists in the database — create, import in bulk, look up, export, delete.

Imports run in one transaction (nothing half-imported) and insert in batches — executemany of an
upsert on SQLite, COPY into a staging table and one upsert on PostgreSQL — so a 10-million-line list
is minutes of work. Entries already in the bank
(same signal type and value) are relabelled by a later import rather than duplicated.

An import that yields no entry changes nothing: no bank is created, no import row written (an
empty or wholly malformed file must not leave an empty bank with a default policy behind). Each
entry remembers which Media record (or row) of its import it came from (``media_group``), so an
export writes exactly the hashes one Media held together again. What the caller must record with
the import (its audit entry) goes in the same transaction through ``finish``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from meldpunt.domain import Labels, SignalType
from meldpunt.store.models import Bank, BankEntry, BankImport, LabelSet, Meta

POLICIES = ("auto", "hint", "ignore")
#: Types whose value is too long to index directly: stored by the SHA-256 of the value.
LONG_VALUE_TYPES = frozenset({SignalType.VPDQ, SignalType.PHOTODNA})
BATCH = 20_000


class BankError(ValueError):
    """A request about banks that cannot be carried out (unknown bank, bad policy, ...)."""


class ImportRejected(BankError):
    """A strict import met a malformed line; nothing was written."""


@dataclass
class ImportErrorLine:
    line: int
    message: str
    text: str = ""


@dataclass
class ImportResult:
    bank: str
    import_id: int
    entries: int
    skipped: int
    errors: list[ImportErrorLine] = field(default_factory=list)
    by_type: dict[str, int] = field(default_factory=dict)
    #: lines of signal types other tools exchange and we do not match, by type name (skipped)
    unsupported: dict[str, int] = field(default_factory=dict)
    #: the SHA-256 of the file as read (``digest``), else the one given
    source_sha256: str = ""


@dataclass(frozen=True)
class BankInfo:
    id: int
    name: str
    description: str
    policy: str
    pdq_threshold: int | None
    entries: int
    by_type: dict[str, int]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class EntryHit:
    """One bank entry as the matcher needs it."""

    entry_id: int
    bank: str
    policy: str
    pdq_threshold: int | None
    signal_type: str
    value: str
    labels: Labels


def entry_key(signal_type: SignalType, value: str) -> tuple[str, str | None]:
    """(key, payload) for a canonical value: see the module docstring of ``models``."""
    if signal_type in LONG_VALUE_TYPES:
        return hashlib.sha256(value.encode()).hexdigest(), value
    return value, None


def _now() -> datetime:
    return datetime.now(UTC)


class BankRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- banks ------------------------------------------------------------------------------------
    def ensure_bank(
        self,
        conn: Connection,
        name: str,
        *,
        description: str | None = None,
        policy: str | None = None,
        pdq_threshold: int | None = None,
    ) -> int:
        if policy is not None and policy not in POLICIES:
            raise BankError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        if pdq_threshold is not None and not 0 <= pdq_threshold <= 256:
            raise BankError(f"a PDQ threshold is 0..256 bits, got {pdq_threshold}")
        row = conn.execute(select(Bank.id).where(Bank.name == name)).first()
        changes: dict[str, Any] = {}
        if description is not None:
            changes["description"] = description
        if policy is not None:
            changes["policy"] = policy
        if pdq_threshold is not None:
            changes["pdq_threshold"] = pdq_threshold
        now = _now()
        if row is None:
            if not name.strip():
                raise BankError("a bank needs a name")
            values = {"description": "", "policy": "auto", "pdq_threshold": None, **changes}
            return int(
                conn.execute(
                    insert(Bank)
                    .values(name=name, created_at=now, updated_at=now, **values)
                    .returning(Bank.id)
                ).scalar_one()
            )
        if changes:
            conn.execute(update(Bank).where(Bank.id == row.id).values(updated_at=now, **changes))
        return int(row.id)

    def configure(self, name: str, **kw: Any) -> None:
        with self.engine.begin() as conn:
            self._bank_id(conn, name)
            self.ensure_bank(conn, name, **kw)
            bump_counter(conn, BANKS_VERSION)  # a new policy or threshold: every matcher sees it

    def _bank_id(self, conn: Connection, name: str) -> int:
        bid = conn.execute(select(Bank.id).where(Bank.name == name)).scalar()
        if bid is None:
            raise BankError(f"no bank named {name!r}")
        return int(bid)

    def list_banks(self) -> list[BankInfo]:
        with self.engine.connect() as conn:
            counts: dict[int, dict[str, int]] = {}
            q = select(BankEntry.bank_id, BankEntry.signal_type, func.count()).group_by(
                BankEntry.bank_id, BankEntry.signal_type
            )
            for bank_id, st, n in conn.execute(q):
                counts.setdefault(bank_id, {})[st] = n
            out = []
            for b in conn.execute(select(Bank.__table__).order_by(Bank.name)):
                by_type = counts.get(b.id, {})
                out.append(
                    BankInfo(
                        id=b.id,
                        name=b.name,
                        description=b.description,
                        policy=b.policy,
                        pdq_threshold=b.pdq_threshold,
                        entries=sum(by_type.values()),
                        by_type=dict(sorted(by_type.items())),
                        created_at=b.created_at,
                        updated_at=b.updated_at,
                    )
                )
            return out

    def bank_settings(self) -> dict[str, tuple[str, int | None]]:
        """name -> (policy, pdq_threshold) for every bank, without counting entries (cheap at 10M)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(Bank.name, Bank.policy, Bank.pdq_threshold))
            return {name: (policy, threshold) for name, policy, threshold in rows}

    def get_bank(self, name: str) -> BankInfo:
        for b in self.list_banks():
            if b.name == name:
                return b
        raise BankError(f"no bank named {name!r}")

    def imports(self, name: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            bid = self._bank_id(conn, name)
            rows = conn.execute(
                select(BankImport.__table__).where(BankImport.bank_id == bid).order_by(BankImport.id)
            )
            return [dict(r._mapping) for r in rows]

    def delete_bank(self, name: str) -> int:
        """Delete a bank and its entries; returns how many entries went."""
        with self.engine.begin() as conn:
            bid = self._bank_id(conn, name)
            n = conn.execute(
                select(func.count()).select_from(BankEntry).where(BankEntry.bank_id == bid)
            ).scalar_one()
            had_pdq = self._delete_entries(conn, bid)
            conn.execute(delete(BankImport).where(BankImport.bank_id == bid))
            conn.execute(delete(Bank).where(Bank.id == bid))
            if had_pdq:
                bump_counter(conn, "pdq_epoch")
            bump_counter(conn, BANKS_VERSION)
            return int(n)

    def _delete_entries(self, conn: Connection, bank_id: int) -> bool:
        had_pdq = (
            conn.execute(
                select(BankEntry.id)
                .where(BankEntry.bank_id == bank_id, BankEntry.signal_type == SignalType.PDQ.value)
                .limit(1)
            ).first()
            is not None
        )
        conn.execute(delete(BankEntry).where(BankEntry.bank_id == bank_id))
        return had_pdq

    # -- import -----------------------------------------------------------------------------------
    def import_records(
        self,
        name: str,
        records: Iterable[Any],
        *,
        source_name: str,
        source_sha256: str,
        fmt: str,
        labels: Labels | None = None,
        replace: bool = False,
        strict: bool = False,
        description: str | None = None,
        policy: str | None = None,
        pdq_threshold: int | None = None,
        progress: Callable[[int], None] | None = None,
        max_errors_kept: int = 1000,
        digest: Any = None,
        finish: Callable[[Connection, ImportResult], None] | None = None,
    ) -> ImportResult:
        """Write ``records`` (``HashRecord``, ``LineError`` or ``SkippedSignal`` items from a list
        format) into bank ``name`` in one transaction. Malformed lines are skipped and reported, or
        with ``strict`` the first one rejects the whole file (``ImportRejected``) and nothing is
        written; lines of types we do not match are counted in ``unsupported``.
        ``digest``: a hashlib object fed while the file is read; its final value is the provenance's
        SHA-256 (so a streamed file is read once). ``finish(conn, result)`` runs in the import's
        transaction just before it commits (an audit entry: both stand or neither does).
        When no entry was read the transaction is rolled back: no bank, no import row
        (``result.import_id`` is 0) and ``finish`` is not called."""
        with self.engine.connect() as conn:
            trans = conn.begin()
            try:
                result = self._import(
                    conn,
                    name,
                    records,
                    source_name=source_name,
                    source_sha256=source_sha256,
                    fmt=fmt,
                    labels=labels,
                    replace=replace,
                    strict=strict,
                    description=description,
                    policy=policy,
                    pdq_threshold=pdq_threshold,
                    progress=progress,
                    max_errors_kept=max_errors_kept,
                    digest=digest,
                )
                if result.entries == 0:
                    trans.rollback()
                    result.import_id = 0
                    return result
                if finish is not None:
                    finish(conn, result)
                trans.commit()
                return result
            except BaseException:
                if trans.is_active:
                    trans.rollback()
                raise

    def _import(
        self,
        conn: Connection,
        name: str,
        records: Iterable[Any],
        *,
        source_name: str,
        source_sha256: str,
        fmt: str,
        labels: Labels | None,
        replace: bool,
        strict: bool,
        description: str | None,
        policy: str | None,
        pdq_threshold: int | None,
        progress: Callable[[int], None] | None,
        max_errors_kept: int,
        digest: Any,
    ) -> ImportResult:
        bank_id = self.ensure_bank(
            conn, name, description=description, policy=policy, pdq_threshold=pdq_threshold
        )
        if replace and self._delete_entries(conn, bank_id):
            bump_counter(conn, "pdq_epoch")
        import_id = int(
            conn.execute(
                insert(BankImport)
                .values(
                    bank_id=bank_id,
                    source_name=source_name,
                    source_sha256=source_sha256,
                    format=fmt,
                    labels=(labels or Labels()).to_json(),
                    replaced=replace,
                    imported_at=_now(),
                )
                .returning(BankImport.id)
            ).scalar_one()
        )
        result = ImportResult(bank=name, import_id=import_id, entries=0, skipped=0)
        label_ids = _LabelSetCache(conn)
        write = _batch_writer(conn)
        batch: list[tuple[Any, ...]] = []
        for rec in records:
            if hasattr(rec, "type_name"):  # a SkippedSignal: a type we do not match
                result.unsupported[rec.type_name] = result.unsupported.get(rec.type_name, 0) + 1
                continue
            if not hasattr(rec, "signal_type"):  # a LineError
                if strict:
                    raise ImportRejected(f"line {rec.line}: {rec.message}; nothing was imported (--strict)")
                result.skipped += 1
                if len(result.errors) < max_errors_kept:
                    result.errors.append(ImportErrorLine(rec.line, rec.message, getattr(rec, "text", "")))
                continue
            st = SignalType(rec.signal_type)
            key, payload = entry_key(st, rec.value)
            group = getattr(rec, "media", 0) or None
            batch.append((bank_id, st.value, key, payload, label_ids.get(rec.labels), import_id, group))
            result.by_type[st.value] = result.by_type.get(st.value, 0) + 1
            if len(batch) >= BATCH:
                write(batch)
                result.entries += len(batch)
                if progress:
                    progress(len(batch))
                batch = []
        if batch:
            write(batch)
            result.entries += len(batch)
            if progress:
                progress(len(batch))
        result.source_sha256 = digest.hexdigest() if digest is not None else source_sha256
        conn.execute(
            update(BankImport)
            .where(BankImport.id == import_id)
            .values(
                entry_count=result.entries, skipped_count=result.skipped, source_sha256=result.source_sha256
            )
        )
        conn.execute(update(Bank).where(Bank.id == bank_id).values(updated_at=_now()))
        bump_counter(conn, BANKS_VERSION)  # last: the row lock is held only until the commit
        return result

    # -- reading ----------------------------------------------------------------------------------
    def export_entries(self, name: str, *, batch: int = 50_000) -> Iterator[tuple[SignalType, str, Labels]]:
        """Every entry of a bank in insertion order, streamed in batches."""
        for st, value, labels, _media in self.export_groups(name, batch=batch):
            yield st, value, labels

    def export_groups(
        self, name: str, *, batch: int = 50_000
    ) -> Iterator[tuple[SignalType, str, Labels, int]]:
        """Like :meth:`export_entries`, with a fourth item: a key shared by exactly the entries that
        one Media record (or row) of one import held, 0 for an entry on its own — what
        ``HashRecord.media`` carries to a format that writes a file's hashes together."""
        with self.engine.connect() as conn:
            bid = self._bank_id(conn, name)
            labels_cache: dict[int, Labels] = {}
            last = -1
            while True:
                rows = conn.execute(
                    select(
                        BankEntry.id,
                        BankEntry.signal_type,
                        BankEntry.key,
                        BankEntry.payload,
                        LabelSet.id,
                        LabelSet.labels,
                        BankEntry.import_id,
                        BankEntry.media_group,
                    )
                    .join(LabelSet, LabelSet.id == BankEntry.label_set_id)
                    .where(BankEntry.bank_id == bid, BankEntry.id > last)
                    .order_by(BankEntry.id)
                    .limit(batch)
                ).all()
                if not rows:
                    return
                for eid, st, key, payload, lid, ljson, import_id, group in rows:
                    lab = labels_cache.get(lid)
                    if lab is None:
                        lab = labels_cache[lid] = Labels.from_json(ljson)
                    media = (int(import_id) << 32) + int(group) if import_id and group else 0
                    yield SignalType(st), payload if payload is not None else key, lab, media
                    last = eid

    def lookup_exact(
        self, pairs: Sequence[tuple[SignalType, str]], banks: Sequence[str] | None = None
    ) -> list[EntryHit]:
        """Entries whose (type, value) is one of ``pairs``."""
        hits: list[EntryHit] = []
        by_type: dict[str, list[str]] = {}
        for st, value in pairs:
            by_type.setdefault(st.value, []).append(entry_key(st, value)[0])
        with self.engine.connect() as conn:
            for st_name, keys in by_type.items():
                for chunk in _chunks(sorted(set(keys)), 500):
                    q = _hit_query(banks).where(BankEntry.signal_type == st_name, BankEntry.key.in_(chunk))
                    hits.extend(_hit(r) for r in conn.execute(q))
        return hits

    def browse(
        self,
        name: str,
        *,
        signal_type: SignalType | None = None,
        prefix: str = "",
        after: int | None = None,
        newest: bool = False,
        limit: int = 50,
    ) -> tuple[list[EntryHit], bool]:
        """A page of the bank's entries in the order they were added (``newest``: the other way),
        continuing past entry ``after`` (keyset paging: a page deep into ten million entries costs
        what the first one does); of one signal type, and whose value starts with the hex
        ``prefix`` (types stored by value only: a vPDQ or PhotoDNA value is not searched). With
        whether more follow. Raises ``BankError`` for an unknown bank."""
        limit = max(1, min(limit, 1000))
        q = _hit_query(None)
        if signal_type is not None:
            q = q.where(BankEntry.signal_type == signal_type.value)
        if prefix:
            short = [st.value for st in SignalType if st not in LONG_VALUE_TYPES]
            q = q.where(BankEntry.signal_type.in_(short), BankEntry.key.startswith(prefix, autoescape=True))
        if after is not None:
            q = q.where(BankEntry.id < after if newest else BankEntry.id > after)
        q = q.order_by(BankEntry.id.desc() if newest else BankEntry.id).limit(limit + 1)
        with self.engine.connect() as conn:
            q = q.where(BankEntry.bank_id == self._bank_id(conn, name))
            rows = [_hit(r) for r in conn.execute(q)]
        return rows[:limit], len(rows) > limit

    def entries_by_id(self, ids: Iterable[int], banks: Sequence[str] | None = None) -> dict[int, EntryHit]:
        out: dict[int, EntryHit] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(sorted(set(int(i) for i in ids)), 500):
                for r in conn.execute(_hit_query(banks).where(BankEntry.id.in_(chunk))):
                    h = _hit(r)
                    out[h.entry_id] = h
        return out

    def iter_signal(
        self,
        signal_type: SignalType,
        *,
        import_ids: Sequence[int] | None = None,
        batch: int = 200_000,
    ) -> Iterator[list[tuple[int, str]]]:
        """Batches of (entry id, value) of one signal type, for building indexes, in one streamed
        query: on (signal_type, key) the unique index covers it, so 10 million rows are one
        sequential read, not one sorted query per batch. ``import_ids`` narrows it to those imports
        (through their own index), which is how a saved index catches up."""
        col = BankEntry.payload if signal_type in LONG_VALUE_TYPES else BankEntry.key
        q = select(BankEntry.id, col).where(BankEntry.signal_type == signal_type.value)
        if import_ids is not None:
            if not import_ids:
                return
            q = q.where(BankEntry.import_id.in_(list(import_ids)))
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=batch).execute(q)
            for rows in result.partitions(batch):
                yield [(int(i), str(v)) for i, v in rows]

    def import_ids(self) -> list[int]:
        with self.engine.connect() as conn:
            return [int(i) for i in conn.execute(select(BankImport.id).order_by(BankImport.id)).scalars()]

    def counter(self, name: str) -> int:
        with self.engine.connect() as conn:
            v = conn.execute(select(Meta.value).where(Meta.name == name)).scalar()
            return int(v or 0)


#: ``meta`` counter bumped in every transaction that changes what the banks match (imports,
#: deletions, a bank's policy or threshold): one row any process can poll cheaply
BANKS_VERSION = "banks_version"


def bump_counter(conn: Connection, name: str) -> None:
    if conn.execute(update(Meta).where(Meta.name == name).values(value=Meta.value + 1)).rowcount == 0:
        conn.execute(insert(Meta).values(name=name, value=1))


class _LabelSetCache:
    """Label set ids by canonical JSON, inserting unseen sets as they come."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.ids: dict[str, int] = {}
        # List readers hand the same Labels object to every record without labels of its own:
        # recognising it by identity saves serialising it ten million times. The object is kept
        # in the cache, so its id cannot be reused by another while it is there.
        self.by_identity: dict[int, tuple[Labels, int]] = {}

    def get(self, labels: Labels) -> int:
        hit = self.by_identity.get(id(labels))
        if hit is not None and hit[0] is labels:
            return hit[1]
        lid = self._get(labels)
        if len(self.by_identity) >= 10_000:
            self.by_identity.clear()
        self.by_identity[id(labels)] = (labels, lid)
        return lid

    def _get(self, labels: Labels) -> int:
        text = labels.to_json()
        lid = self.ids.get(text)
        if lid is None:
            digest = hashlib.sha256(text.encode()).hexdigest()
            lid = self.conn.execute(select(LabelSet.id).where(LabelSet.digest == digest)).scalar()
            if lid is None:
                lid = self.conn.execute(
                    insert(LabelSet).values(digest=digest, labels=text).returning(LabelSet.id)
                ).scalar_one()
            self.ids[text] = lid = int(lid)
        return lid


def _by_key(row: tuple[Any, ...]) -> tuple[str, str]:
    return row[1], row[2]


_COLUMNS = "bank_id, signal_type, key, payload, label_set_id, import_id, media_group"
_ON_CONFLICT = (
    "ON CONFLICT (signal_type, key, bank_id) DO UPDATE SET "
    "label_set_id = excluded.label_set_id, import_id = excluded.import_id, "
    "media_group = excluded.media_group"
)


def _batch_writer(conn: Connection) -> Callable[[list[tuple[Any, ...]]], None]:
    """A function that upserts a batch of entry rows, the fastest way the database offers.

    SQLite: executemany of an upsert, rows sorted by key so each batch touches fewer B-tree pages.
    PostgreSQL: COPY into a temporary table, then one INSERT ... SELECT ... ON CONFLICT — an order
    of magnitude faster than row-by-row statements. A batch may name the same hash twice (a list
    that repeats itself); PostgreSQL refuses to update one row twice in a statement, so the last
    occurrence is kept, as SQLite's row-by-row upsert would."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "CREATE TEMP TABLE IF NOT EXISTS bank_entries_stage "
            "(bank_id integer, signal_type varchar(16), key varchar(64), payload text, "
            "label_set_id integer, import_id integer, media_group bigint) ON COMMIT DROP"
        )
        raw: Any = conn.connection.dbapi_connection

        def write_pg(batch: list[tuple[Any, ...]]) -> None:
            rows = list({(r[1], r[2]): r for r in batch}.values())
            rows.sort(key=_by_key)
            with raw.cursor() as cur:
                with cur.copy(f"COPY bank_entries_stage ({_COLUMNS}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                cur.execute(
                    f"INSERT INTO bank_entries ({_COLUMNS}) SELECT {_COLUMNS} FROM bank_entries_stage "
                    + _ON_CONFLICT
                )
                cur.execute("TRUNCATE bank_entries_stage")

        return write_pg

    p = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO bank_entries ({_COLUMNS}) VALUES ({', '.join([p] * 7)}) {_ON_CONFLICT}"

    def write_many(batch: list[tuple[Any, ...]]) -> None:
        batch.sort(key=_by_key)
        conn.exec_driver_sql(sql, batch)

    return write_many


def _hit_query(banks: Sequence[str] | None) -> Any:
    q = (
        select(
            BankEntry.id,
            Bank.name,
            Bank.policy,
            Bank.pdq_threshold,
            BankEntry.signal_type,
            BankEntry.key,
            BankEntry.payload,
            LabelSet.labels,
        )
        .join(Bank, Bank.id == BankEntry.bank_id)
        .join(LabelSet, LabelSet.id == BankEntry.label_set_id)
    )
    if banks:
        q = q.where(Bank.name.in_(list(banks)))
    return q


def _hit(r: Any) -> EntryHit:
    return EntryHit(
        entry_id=int(r[0]),
        bank=r[1],
        policy=r[2],
        pdq_threshold=r[3],
        signal_type=r[4],
        value=r[6] if r[6] is not None else r[5],
        labels=Labels.from_json(r[7]),
    )


def _chunks(items: Sequence[Any], n: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


__all__ = [
    "POLICIES",
    "BankError",
    "BankRepository",
    "EntryHit",
    "ImportErrorLine",
    "ImportRejected",
    "ImportResult",
]
