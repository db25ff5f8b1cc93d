"""Routing tests' world: services on a manual clock, takedowns waiting to be routed at a given
location, items whose media matched hash lists, and a real triage decision."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select

from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock
from meldpunt.domain import Labels, SignalType
from meldpunt.domain.acting import TakedownState
from meldpunt.domain.reports import ItemState, MediumOutcome
from meldpunt.pipeline.matching import Match
from meldpunt.settings import Settings
from meldpunt.store.acting import ActionEvent, Takedown
from meldpunt.store.reports import Medium
from meldpunt.stores.review import ReviewStore
from tests.helpers.acting import seed_item, seed_location, seed_takedown
from tests.helpers.world import ILLEGAL, Clock, World

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def make_services(db_url: str, **act: Any) -> Services:
    """Services on ``db_url`` at :data:`T0` (a :class:`ManualClock`), ``act`` settings replaced."""
    settings = Settings.from_env({}, db=db_url)
    if act:
        settings = replace(settings, act=replace(settings.act, **act))
    return Services(settings, clock=ManualClock(T0))


def now(services: Services) -> datetime:
    return services.clock.now()


def to_route(
    services: Services, url: str = "https://files.example.com/a/1.jpg", **location: Any
) -> tuple[int, int]:
    """An item with a location (``location``: column values; ``None``: none at all) and its
    takedown in ``to_route``: (item id, takedown id)."""
    item_id, _ = seed_item(services.engine, url, now=now(services))
    located = location.pop("located", True)
    if located:
        location.setdefault("host", url.split("/")[2])
        seed_location(services.engine, item_id, now=now(services), **location)
    tid = seed_takedown(services.engine, item_id, now=now(services), state=TakedownState.TO_ROUTE)
    return item_id, tid


def takedown(services: Services, item_id: int) -> dict[str, Any]:
    with services.engine.connect() as conn:
        row = conn.execute(select(Takedown).where(Takedown.item_id == item_id)).one()
    out = dict(row._mapping)
    out["route"] = json.loads(out["route"])
    out["labels"] = json.loads(out["labels"])
    return out


def takedowns(services: Services) -> list[dict[str, Any]]:
    with services.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(Takedown).order_by(Takedown.item_id))]


def events(
    services: Services, item_id: int | None = None
) -> list[tuple[int | None, str, str, dict[str, Any]]]:
    """(item, kind, actor, detail) of the timeline, oldest first."""
    q = select(ActionEvent).order_by(ActionEvent.id)
    if item_id is not None:
        q = q.where(ActionEvent.item_id == item_id)
    with services.engine.connect() as conn:
        return [(r.item_id, r.kind, r.actor, json.loads(r.detail)) for r in conn.execute(q)]


def codes(route: dict[str, Any]) -> list[str]:
    return [line["code"] for line in route["lines"]]


def known_item(services: Services, *matches: Match, url: str = "") -> int:
    """An item ``known`` by the walk, with one medium per match (its matches as the walk writes them)."""
    url = url or f"https://img.example.net/{secrets.token_hex(4)}"
    item_id, _ = seed_item(services.engine, url, now=now(services), state=ItemState.KNOWN)
    with services.engine.begin() as conn:
        for n, m in enumerate(matches):
            murl = f"{url}/m{n}.png"
            conn.execute(
                insert(Medium).values(
                    item_id=item_id,
                    url=murl,
                    url_key=hashlib.sha256(murl.encode()).hexdigest(),
                    kind="image",
                    sha256=secrets.token_hex(32),
                    outcome=MediumOutcome.KNOWN.value if m.policy == "auto" else MediumOutcome.IGNORED.value,
                    matches=json.dumps([m.to_json_dict()]),
                    created_at=now(services),
                )
            )
    return item_id


def match(bank: str = "national", policy: str = "auto", **labels: Any) -> Match:
    return Match(bank, 1, SignalType.MD5.value, 0, Labels.from_dict(labels), policy)


def triage_world(services: Services) -> World:
    return World(
        services.engine, services.settings, Clock(now(services)), ReviewStore(secrets.token_bytes(32))
    )


def decide_final(world: World, classification: dict[str, Any] = ILLEGAL) -> int:
    """An item two analysts classified alike (final); its id."""
    t = world.triage()
    anna, bert = (world.user(f"{n}{secrets.token_hex(2)}", "analyst") for n in ("anna", "bert"))
    item = world.item(pdqs=(world.pdq(),))
    t.claim(item, anna)
    t.classify(item, anna, classification)
    if t.schemes.is_illegal(t.schemes.validate(classification)):
        t.claim(item, bert)
        [o] = t.classify(item, bert, classification)
        assert o.stage == "final", o
    return item


def audit(services: Services, action: str | None = None) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(actor, action, subject, details) of the audit log, oldest first."""
    from meldpunt.audit import entries

    with services.engine.connect() as conn:
        return [
            (e.actor, e.action, e.subject, dict(e.details))
            for e in entries(conn)
            if action is None or e.action == action
        ]


def actions(services: Services) -> list[str]:
    return [a for _, a, _, _ in audit(services)]


def act_on_decided(services: Services, item_id: int, **location: Any) -> int:
    """The takedown of a decided item, located (``location``) and routed, as the ticks leave it
    (the locate step's row written directly); its id. For pages that show takedowns."""
    from sqlalchemy import update

    from meldpunt.act import routing

    routing.tick_takedowns(services)
    seed_location(services.engine, item_id, now=now(services), **{"country": "US", **location})
    with services.engine.begin() as conn:
        conn.execute(
            update(Takedown)
            .where(Takedown.item_id == item_id, Takedown.state == TakedownState.TO_LOCATE.value)
            .values(state=TakedownState.TO_ROUTE.value)
        )
    routing.tick_route(services)
    with services.engine.connect() as conn:
        return int(conn.execute(select(Takedown.id).where(Takedown.item_id == item_id)).scalar_one())
