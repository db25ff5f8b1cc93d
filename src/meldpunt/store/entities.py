"""Tables of link analysis (#13): the entities found in reports and fetched pages, and which
report or item each was found in, first and last seen.

An entity is stored once per (kind, normalised value) — found by ``key``, the SHA-256 of both, so
one unique index serves PostgreSQL (whose B-tree rows are limited to a few kB; a URL may be long)
and SQLite alike. The links cascade with their report or item: an entity whose last source is
deleted is an orphan, and :func:`prune_orphans` deletes it (entities follow the retention of the
reports they came from). The page text an entity was found in is never stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import (
    Connection,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    delete,
    exists,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from meldpunt.store.models import Base, BigId, HexKey


class Entity(Base):
    __tablename__ = "entities"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: handle | crypto | payment | iban | phone | email | domain | url (``entities.KINDS``)
    kind: Mapped[str] = mapped_column(String(16))
    #: normalised: ``telegram:name``, ``btc:bc1q…``, ``+3212345678``, ``example.com`` …
    value: Mapped[str] = mapped_column(Text)
    #: SHA-256 of ``kind`` NUL ``value``: unique
    key: Mapped[str] = mapped_column(HexKey, unique=True)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_entities_kind", "kind", "id"),)


class EntityReport(Base):
    """An entity found in a report's description."""

    __tablename__ = "entity_reports"
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"), primary_key=True)
    report_id: Mapped[int] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EntityItem(Base):
    """An entity found on an item's fetched page (text, links, metadata)."""

    __tablename__ = "entity_items"
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def entity_key(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}\x00{value}".encode()).hexdigest()


def _dialect(conn: Connection) -> object:
    return postgresql if conn.dialect.name == "postgresql" else sqlite


def link_entities(
    conn: Connection,
    found: Iterable[tuple[str, str]],
    now: datetime,
    *,
    report_id: int | None = None,
    item_id: int | None = None,
) -> int:
    """Record ``(kind, value)`` pairs as found in report ``report_id`` or item ``item_id``, in the
    caller's transaction: each entity inserted if absent, each link inserted or its ``last_seen``
    moved. Safe when several workers record the same entity at once (unique keys, ON CONFLICT).
    Returns the number of pairs recorded."""
    assert (report_id is None) != (item_id is None), "one source: a report or an item"
    pairs = list(dict.fromkeys(found))
    if not pairs:
        return 0
    d = _dialect(conn)
    ins_entity = d.insert(Entity).on_conflict_do_nothing(index_elements=["key"])  # type: ignore[attr-defined]
    keys = {entity_key(k, v): (k, v) for k, v in pairs}
    conn.execute(
        ins_entity,
        [
            {"kind": k, "value": v, "key": key, "first_seen": now, "last_seen": now}
            for key, (k, v) in keys.items()
        ],
    )
    ids = [
        int(i)
        for i in conn.execute(
            select(Entity.id).where(Entity.key.in_(list(keys))).order_by(Entity.id)
        ).scalars()
    ]
    conn.execute(update(Entity).where(Entity.id.in_(ids), Entity.last_seen < now).values(last_seen=now))
    table, column, source = (
        (EntityReport, "report_id", report_id) if report_id is not None else (EntityItem, "item_id", item_id)
    )
    stmt = d.insert(table)  # type: ignore[attr-defined]
    stmt = stmt.on_conflict_do_update(
        index_elements=["entity_id", column], set_={"last_seen": stmt.excluded.last_seen}
    )
    conn.execute(stmt, [{"entity_id": i, column: source, "first_seen": now, "last_seen": now} for i in ids])
    return len(ids)


def prune_orphans(conn: Connection) -> int:
    """Delete the entities no report and no item links to any more (their sources were deleted
    under the retention rules); the number deleted."""
    orphan = ~exists().where(EntityReport.entity_id == Entity.id) & ~exists().where(
        EntityItem.entity_id == Entity.id
    )
    return int(conn.execute(delete(Entity).where(orphan)).rowcount or 0)


__all__ = ["Entity", "EntityItem", "EntityReport", "entity_key", "link_entities", "prune_orphans"]
