"""What the removals page shows (#10 part "recheck"): items confirmed removed with their time to
removal, and per provider (abuse contact) how many and how fast — the hotline's figures for its
annual report and for telling providers how they compare. Queries only; the page is
``web/act_recheck.py``."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from meldpunt.domain.acting import MONITORED_STATES, TakedownState
from meldpunt.store.acting import Contact, Location, Takedown
from meldpunt.store.reports import Item

#: how an item without a contact or a located provider is listed
UNKNOWN = ""


@dataclass(frozen=True)
class Removal:
    item_id: int
    url: str
    #: the abuse contact's name, else the located provider ("" : unknown)
    provider: str
    removed_at: datetime
    minutes_from_notice: int | None
    minutes_from_report: int | None
    reason: str
    moves: int


@dataclass(frozen=True)
class ProviderFigures:
    provider: str
    removed: int
    #: still online (monitored) at this provider
    online: int
    #: the median time to removal, in minutes (None when none was noticed / reported)
    median_from_notice: float | None
    median_from_report: float | None


@dataclass(frozen=True)
class Removals:
    items: list[Removal]
    providers: list[ProviderFigures]
    removed: int
    online: int
    median_from_notice: float | None
    median_from_report: float | None


def _median(values: list[int | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(statistics.median(known)) if known else None


def removals(engine: Engine, *, limit: int = 200) -> Removals:
    """Every removed takedown's figures (the newest ``limit`` listed) and per provider the count
    and the medians, slowest first; with how many are still online."""
    name = func.coalesce(func.nullif(Contact.name, ""), Contact.match, Location.provider, UNKNOWN)
    q = (
        select(
            Takedown.item_id,
            Item.url,
            name.label("provider"),
            Takedown.state,
            Takedown.removed_at,
            Takedown.minutes_from_notice,
            Takedown.minutes_from_report,
            Takedown.removal_reason,
            Takedown.moves,
        )
        .join(Item, Item.id == Takedown.item_id)
        .outerjoin(Contact, Contact.id == Takedown.contact_id)
        .outerjoin(Location, Location.id == Takedown.location_id)
        .where(Takedown.state.in_([TakedownState.REMOVED.value, *(s.value for s in MONITORED_STATES)]))
    )
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    done = [r for r in rows if r.state == TakedownState.REMOVED.value]
    done.sort(key=lambda r: (r.removed_at, r.item_id), reverse=True)
    items = [
        Removal(
            item_id=int(r.item_id),
            url=str(r.url),
            provider=str(r.provider or UNKNOWN),
            removed_at=r.removed_at,
            minutes_from_notice=r.minutes_from_notice,
            minutes_from_report=r.minutes_from_report,
            reason=str(r.removal_reason or ""),
            moves=int(r.moves or 0),
        )
        for r in done[:limit]
    ]
    by: dict[str, list[Any]] = {}
    for r in rows:
        by.setdefault(str(r.provider or UNKNOWN), []).append(r)
    providers = []
    for provider, group in by.items():
        gone = [r for r in group if r.state == TakedownState.REMOVED.value]
        providers.append(
            ProviderFigures(
                provider=provider,
                removed=len(gone),
                online=len(group) - len(gone),
                median_from_notice=_median([r.minutes_from_notice for r in gone]),
                median_from_report=_median([r.minutes_from_report for r in gone]),
            )
        )
    providers.sort(key=lambda p: (-(p.median_from_notice or p.median_from_report or 0), p.provider))
    return Removals(
        items=items,
        providers=providers,
        removed=len(done),
        online=len(rows) - len(done),
        median_from_notice=_median([r.minutes_from_notice for r in done]),
        median_from_report=_median([r.minutes_from_report for r in done]),
    )
