"""Seeds for locate-and-act tests: a report with an item, an abuse contact, a takedown in a given
state — rows written straight into the tables, so each part is tested without walking the rest."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert

from meldpunt.domain.acting import TakedownState
from meldpunt.domain.reports import ItemState
from meldpunt.pipeline.intake import receipt_hash
from meldpunt.store.acting import Contact, Location, Takedown
from meldpunt.store.reports import Item, Report, ReportItem


def seed_report_item(
    engine: Engine,
    url: str,
    *,
    now: datetime,
    state: str,
    urgent: bool = False,
    description: str = "",
    **item: Any,
) -> tuple[int, int, str]:
    """A public report naming ``url`` and its item in ``state``, as intake stores them (no jobs):
    (report id, item id, receipt code). ``item``: more of the item's columns."""
    code = secrets.token_hex(8)
    host = url.split("/")[2].split(":")[0] if "://" in url else ""
    with engine.begin() as conn:
        report_id = conn.execute(
            insert(Report)
            .values(
                receipt_hash=receipt_hash(code),  # as intake stores it: /status finds it
                source="public",
                seen_on="website",
                description=description,
                urgent=urgent,
                created_at=now,
            )
            .returning(Report.id)
        ).scalar_one()
        item_id = conn.execute(
            insert(Item)
            .values(
                report_id=report_id,
                url=url,
                url_key=hashlib.sha256(url.encode()).hexdigest(),
                host=host,
                state=state,
                urgent=urgent,
                created_at=now,
                updated_at=now,
                **item,
            )
            .returning(Item.id)
        ).scalar_one()
        conn.execute(insert(ReportItem).values(report_id=report_id, item_id=item_id))
    return int(report_id), int(item_id), code


def seed_item(
    engine: Engine,
    url: str,
    *,
    now: datetime,
    state: ItemState = ItemState.CLASSIFIED,
    server_ip: str = "127.0.0.1",
    urgent: bool = False,
) -> tuple[int, str]:
    """A public report naming ``url`` and its item in ``state``, fetched from ``server_ip``:
    (item id, receipt code)."""
    _, item_id, code = seed_report_item(
        engine, url, now=now, state=state.value, urgent=urgent, server_ip=server_ip, final_url=url
    )
    return item_id, code


def seed_contact(engine: Engine, *, now: datetime, **values: Any) -> int:
    """An abuse contact; defaults: an e-mail contact for provider "example hosting"."""
    row = {
        "scope": "provider",
        "match": "example hosting",
        "name": "Example Hosting",
        "channel": "email",
        "address": "abuse@hosting.example",
        "language": "en",
        "created_at": now,
        "updated_at": now,
        **values,
    }
    with engine.begin() as conn:
        return int(conn.execute(insert(Contact).values(row).returning(Contact.id)).scalar_one())


def seed_location(engine: Engine, item_id: int, *, now: datetime, **values: Any) -> int:
    row = {"item_id": item_id, "located_at": now, "ip": "127.0.0.1", "country": "BE", **values}
    with engine.begin() as conn:
        return int(conn.execute(insert(Location).values(row).returning(Location.id)).scalar_one())


def seed_takedown(
    engine: Engine,
    item_id: int,
    *,
    now: datetime,
    state: TakedownState = TakedownState.TO_NOTICE,
    contact_id: int | None = None,
    location_id: int | None = None,
    labels: dict[str, Any] | None = None,
    **values: Any,
) -> int:
    row = {
        "item_id": item_id,
        "state": state.value,
        "decided_by": "analyst",
        "labels": json.dumps(labels or {"category": "baseline"}),
        "contact_id": contact_id,
        "location_id": location_id,
        "reported_at": now,
        "created_at": now,
        "updated_at": now,
        **values,
    }
    with engine.begin() as conn:
        return int(conn.execute(insert(Takedown).values(row).returning(Takedown.id)).scalar_one())
