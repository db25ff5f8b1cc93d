"""Reading the audit log as people do: filtered (by actor, by action or a ``prefix.*``, by item),
a page at a time (newest first, keyed by sequence number, so a page stays put while entries are
appended), with page views left out or grouped, and every matching entry for a CSV export.

Page views (``item.view``) are most of a busy log: an administrator looking for a decision should
not scroll past a hundred of them. :attr:`AuditFilter.views` leaves them out (the default on the
audit page); when they are shown, :func:`group_views` folds consecutive views of one item by one
person into one row with a count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, Engine, and_, func, or_, select

from meldpunt.audit.log import _COLUMNS, AuditEntry, AuditEvent, _row_entry, record
from meldpunt.store.audit import AuditEntryRow

#: actions that record looking, not doing
VIEW_ACTIONS = frozenset({"item.view"})
_BATCH = 1000


@dataclass(frozen=True)
class AuditFilter:
    """Which entries: ``actor`` exactly, ``action`` a name or ``prefix.*``, ``item`` the entries about
    an item (its own and its media's: evidence access names the item in its details)."""

    actor: str = ""
    action: str = ""
    item: int | None = None
    #: page views too (``item.view``)
    views: bool = True

    def where(self) -> list[ColumnElement[bool]]:
        col = AuditEntryRow
        out: list[ColumnElement[bool]] = []
        if self.actor:
            out.append(col.actor == self.actor)
        if self.action.endswith("*"):
            out.append(col.action.startswith(self.action[:-1], autoescape=True))
        elif self.action:
            out.append(col.action == self.action)
        if self.item is not None:
            n = int(self.item)
            # canonical JSON: sorted keys, no spaces — "item":12 is followed by , or }
            out.append(
                or_(
                    col.subject == f"item:{n}",
                    col.details.contains(f'"item":{n},', autoescape=True),
                    col.details.contains(f'"item":{n}}}', autoescape=True),
                )
            )
        if not self.views and not (self.action and self.action.rstrip("*") in VIEW_ACTIONS):
            out.append(col.action.not_in(sorted(VIEW_ACTIONS)))
        return out


@dataclass(frozen=True)
class AuditPage:
    #: newest first
    entries: list[AuditEntry]
    #: the ``before`` of the next (older) page; None on the last
    older: int | None
    #: entries matching the filter (all pages)
    total: int
    #: page views the filter left out (when it leaves them out)
    views_hidden: int = 0


def page(conn: Connection, f: AuditFilter, *, before: int | None = None, size: int = 50) -> AuditPage:
    """One page of matching entries, newest first, with a sequence number below ``before``."""
    conds = f.where()
    q = select(*_COLUMNS).where(*conds)
    if before is not None:
        q = q.where(AuditEntryRow.seq < before)
    rows = [_row_entry(r) for r in conn.execute(q.order_by(AuditEntryRow.seq.desc()).limit(size + 1))]
    total = int(conn.execute(select(func.count()).select_from(AuditEntryRow).where(*conds)).scalar_one())
    hidden = 0
    if not f.views:
        shown = AuditFilter(f.actor, f.action, f.item, views=True)
        hidden = (
            int(
                conn.execute(
                    select(func.count())
                    .select_from(AuditEntryRow)
                    .where(and_(*shown.where(), AuditEntryRow.action.in_(sorted(VIEW_ACTIONS))))
                ).scalar_one()
            )
            if not f.action
            else 0
        )
    older = rows[size - 1].seq if len(rows) > size else None
    return AuditPage(rows[:size], older, total, hidden)


def matching(conn: Connection, f: AuditFilter) -> Iterator[AuditEntry]:
    """Every matching entry, oldest first, read in batches (for an export of any size)."""
    last = 0
    conds = f.where()
    while True:
        q = (
            select(*_COLUMNS)
            .where(*conds, AuditEntryRow.seq > last)
            .order_by(AuditEntryRow.seq)
            .limit(_BATCH)
        )
        batch = [_row_entry(r) for r in conn.execute(q)]
        yield from batch
        if len(batch) < _BATCH:
            return
        last = batch[-1].seq


@dataclass
class Grouped:
    """An entry, or a run of consecutive views of one subject by one actor (``count`` > 1: the
    entry is the newest of the run, ``first`` the oldest)."""

    entry: AuditEntry
    count: int = 1
    first: AuditEntry | None = None


def group_views(entries: list[AuditEntry]) -> list[Grouped]:
    """Fold runs of views (in the order given) of one subject by one actor into one row."""
    out: list[Grouped] = []
    for e in entries:
        last = out[-1] if out else None
        if (
            last is not None
            and e.action in VIEW_ACTIONS
            and (last.entry.action, last.entry.actor, last.entry.subject) == (e.action, e.actor, e.subject)
        ):
            last.count += 1
            last.first = e
            continue
        out.append(Grouped(e))
    return out


def read_page(engine: Engine, f: AuditFilter, *, before: int | None = None, size: int = 50) -> AuditPage:
    """:func:`page` in a connection of its own (the audit page's one call)."""
    with engine.connect() as conn:
        return page(conn, f, before=before, size=size)


def export(engine: Engine, actor: str, f: AuditFilter, each: Callable[[AuditEntry], None], fmt: str) -> int:
    """Hand every entry ``f`` matches, oldest first, to ``each`` and audit the export as ``actor``
    in the same transaction (the entry count, the format, the filter); returns the count."""
    with engine.begin() as conn:
        n = 0
        for e in matching(conn, f):
            each(e)
            n += 1
        details = {
            "entries": n,
            "format": fmt,
            **{k: v for k, v in vars(f).items() if v not in ("", None)},
        }
        record(conn, AuditEvent(actor, "audit.export", "", details))
    return n
