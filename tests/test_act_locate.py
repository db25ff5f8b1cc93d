"""The locate job on SQLite and PostgreSQL: a takedown in ``to_locate`` is located (DNS, geo data,
RDAP from a registry on loopback, cached in ``rdap_cache``) and moves to ``to_route``; the timeline
says so; a fresh location lets the tick skip the job; requests are idempotent; the walk's fetch
enqueues a locate job for every fetched item; no network (RDAP on) still records a location from
the geo data; the item page's Hosting panel shows each fact with its source and age, in nl/fr/en."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from meldpunt.act import timeline
from meldpunt.act.locating import DbRdapCache, current_location, enqueue_locate, save_location, tick_locate
from meldpunt.act.ticks import settle
from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock
from meldpunt.domain.acting import EventKind, TakedownState
from meldpunt.locate import Cached, Locator
from meldpunt.pipeline.worker import drain
from meldpunt.settings import LocateSettings, Settings
from meldpunt.store.acting import Location as LocationRow
from meldpunt.store.acting import RdapCache, Takedown
from meldpunt.store.reports import Job
from tests.helpers.acting import seed_item, seed_location, seed_takedown
from tests.helpers.fakeweb import Served
from tests.helpers.locate import HOSTED, FakeResolver, Rdap, asn_mmdb, closed_port_url, country_mmdb
from tests.helpers.pipeline import Web, make_settings, submit
from tests.helpers.workspace import Workspace, _workspace

START = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
URL = "https://www.shop-one.nl/gallery/1"

#: where a located takedown is once ``settle`` has also run the route tick (this file is about
#: locating: which route it takes is tests/test_act_routing.py's)
ROUTED_ON = {
    TakedownState.TO_ROUTE.value,
    TakedownState.TO_NOTICE.value,
    TakedownState.NO_CONTACT.value,
    TakedownState.HELD.value,
    TakedownState.TO_FORWARD.value,
    TakedownState.CLOSED.value,
}


@pytest.fixture
def world(db_url: str, tmp_path: Path, rdap_server: Rdap) -> Iterator[tuple[Services, ManualClock, Rdap]]:
    """Services on ``db_url`` at a manual clock, with a locator that resolves through a fake
    resolver, reads the user's .mmdb files and asks the loopback registry."""
    locate = replace(
        LocateSettings(), rdap_bootstrap_url=f"{rdap_server.base}/bootstrap/", rdap_timeout_s=2.0
    )
    settings = make_settings(db_url, locate=locate)
    clock = ManualClock(START)
    services = Services(settings, clock=clock)
    geo = tmp_path / "geo"
    geo.mkdir()
    country_mmdb(geo / "country.mmdb", {"185.10.20.0/24": "BE"})
    asn_mmdb(geo / "asn.mmdb", {"185.10.20.0/23": (64500, "Hosting One B.V.")})
    resolver = FakeResolver({"www.shop-one.nl": [HOSTED, "185.10.20.31"]})
    services.locator = Locator(locate, geo_dir=geo, resolver=resolver)
    yield services, clock, rdap_server
    services.close()


def _locations(services: Services, item_id: int) -> int:
    with services.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(LocationRow).where(LocationRow.item_id == item_id)
            ).scalar_one()
        )


def _state(services: Services, takedown_id: int) -> tuple[str, int | None]:
    with services.engine.connect() as conn:
        row = conn.execute(
            select(Takedown.state, Takedown.location_id).where(Takedown.id == takedown_id)
        ).one()
    return str(row.state), row.location_id


def test_a_takedown_is_located_and_moves_on_to_routing(world: tuple[Services, ManualClock, Rdap]) -> None:
    services, clock, rdap = world
    item_id, _ = seed_item(services.engine, URL, now=START, server_ip=HOSTED)
    takedown = seed_takedown(services.engine, item_id, now=START, state=TakedownState.TO_LOCATE)
    settle(services)

    loc = current_location(services.engine, item_id)
    assert loc is not None and loc.located_at == START and loc.item_id == item_id
    assert (loc.host, loc.ip, loc.addresses) == ("www.shop-one.nl", HOSTED, [HOSTED, "185.10.20.31"])
    assert (loc.country, loc.asn, loc.prefix, loc.network_owner) == (
        "BE",
        64500,
        "185.10.20.0/23",
        "Hosting One B.V.",
    )
    assert (loc.provider, loc.abuse_email) == ("Hosting One B.V.", "abuse@hosting-one.example")
    assert (loc.registrar, loc.registrar_abuse) == ("Registrar Eén B.V.", "abuse@registrar-een.example")
    assert loc.cdn == "" and loc.error == ""
    assert loc.fact("country")["source"] == "GeoLite2-Country"
    assert loc.fact("abuse_email") == {
        "value": "abuse@hosting-one.example",
        "source": "rdap 127.0.0.1",
        "as_of": START.isoformat(),
    }
    state, location_id = _state(services, takedown)
    assert state in ROUTED_ON and location_id == loc.id  # located, then routed on by the route tick
    [line] = [e for e in timeline.for_item(services.engine, item_id) if e.kind == EventKind.LOCATED.value]
    assert (
        line.at.replace(tzinfo=UTC) == START
        and line.detail["reason"] == "takedown"
        and line.detail["country"] == "BE"
    )
    assert line.detail["location_id"] == loc.id and line.detail["provider"] == "Hosting One B.V."

    # the answers are in rdap_cache: another item on that network, a day later, asks nobody
    with services.engine.connect() as conn:
        kept = {(k, key) for k, key in conn.execute(select(RdapCache.kind, RdapCache.key))}
    assert {("ip", HOSTED), ("domain", "shop-one.nl"), ("bootstrap", "ipv4"), ("bootstrap", "dns")} <= kept
    asked = sum(rdap.hits.values())
    clock.advance(24 * 3600)
    other, _ = seed_item(
        services.engine, "https://www.shop-one.nl/gallery/2", now=clock.now(), server_ip=HOSTED
    )
    seed_takedown(services.engine, other, now=clock.now(), state=TakedownState.TO_LOCATE)
    services.locator = Locator(
        services.settings.locate, geo_dir=services.locator.geo_dir, resolver=services.locator.resolver
    )
    settle(services)  # a fresh locator (another worker): only the database cache is left
    again = current_location(services.engine, other)
    assert again is not None and again.abuse_email == "abuse@hosting-one.example"
    assert sum(rdap.hits.values()) == asked
    assert again.fact("abuse_email")["as_of"] == START.isoformat()  # the answer's age


def test_a_fresh_location_lets_the_tick_route_without_a_job(
    world: tuple[Services, ManualClock, Rdap],
) -> None:
    services, _clock, _rdap = world
    item_id, _ = seed_item(services.engine, URL, now=START, server_ip=HOSTED)
    location = seed_location(services.engine, item_id, now=START, country="NL")
    takedown = seed_takedown(services.engine, item_id, now=START, state=TakedownState.TO_LOCATE)
    assert tick_locate(services) == 1
    assert _state(services, takedown) == (TakedownState.TO_ROUTE.value, location)
    assert _locations(services, item_id) == 1
    with services.engine.connect() as conn:
        assert (
            conn.execute(select(func.count()).select_from(Job).where(Job.kind == "locate")).scalar_one() == 0
        )


def test_a_request_that_died_routes_on_the_location_there_is(
    world: tuple[Services, ManualClock, Rdap],
) -> None:
    services, clock, _rdap = world
    item_id, _ = seed_item(services.engine, URL, now=START, server_ip=HOSTED)
    seed_location(services.engine, item_id, now=START, country="NL")
    takedown = seed_takedown(services.engine, item_id, now=START, state=TakedownState.TO_LOCATE)
    with services.engine.begin() as conn:
        enqueue_locate(conn, item_id, reason="moved", now=clock.now())
        conn.execute(update(Job).where(Job.kind == "locate").values(state="dead"))
    assert tick_locate(services) == 1
    assert _state(services, takedown)[0] == TakedownState.TO_ROUTE.value


def test_requests_are_idempotent_and_a_move_asks_again(world: tuple[Services, ManualClock, Rdap]) -> None:
    services, clock, _rdap = world
    item_id, _ = seed_item(services.engine, URL, now=START, server_ip=HOSTED)
    with services.engine.begin() as conn:
        assert enqueue_locate(conn, item_id, reason="takedown", now=START) is True
        assert enqueue_locate(conn, item_id, reason="takedown", now=START) is False
    takedown = seed_takedown(services.engine, item_id, now=START, state=TakedownState.TO_LOCATE)
    assert tick_locate(services) == 0  # its job is pending: the job moves it
    settle(services)
    assert _locations(services, item_id) == 1 and _state(services, takedown)[0] in ROUTED_ON

    # a re-check saw it move: the takedown goes back to to_locate and asks again (a new request)
    clock.advance(3600)
    with services.engine.begin() as conn:
        conn.execute(
            update(Takedown).where(Takedown.id == takedown).values(state=TakedownState.TO_LOCATE.value)
        )
        assert enqueue_locate(conn, item_id, reason="moved", now=clock.now()) is True
    assert tick_locate(services) == 0  # the new request is pending: the old location does not count
    settle(services)
    assert _locations(services, item_id) == 2
    state, location_id = _state(services, takedown)
    newest = current_location(services.engine, item_id)
    assert state in ROUTED_ON and newest is not None and newest.id == location_id
    assert newest.located_at == clock.now()
    reasons = [e.detail["reason"] for e in timeline.for_item(services.engine, item_id) if e.kind == "located"]
    assert reasons == ["takedown", "moved"]
    # every job delivered once more (as after a crash): nothing is located twice
    with services.engine.begin() as conn:
        conn.execute(update(Job).values(state="queued", run_after=datetime.now(UTC) - timedelta(seconds=1)))
    settle(services)
    assert _locations(services, item_id) == 2


def test_without_a_network_a_location_is_still_recorded_from_the_geo_data(db_url: str) -> None:
    locate = replace(LocateSettings(), rdap_bootstrap_url=closed_port_url())
    services = Services(make_settings(db_url, locate=locate), clock=ManualClock(START))
    try:
        item_id, _ = seed_item(services.engine, "https://185.10.20.30/a", now=START, server_ip=HOSTED)
        takedown = seed_takedown(services.engine, item_id, now=START, state=TakedownState.TO_LOCATE)
        settle(services)  # Services.locator: the embedded data, RDAP at a port nobody listens on
        loc = current_location(services.engine, item_id)
        assert loc is not None and loc.country != "" and loc.fact("country")["source"] == "geoip2fast"
        assert "bootstrap" in loc.fact("abuse_email")["unknown"] and loc.error.startswith("rdap network")
        assert _state(services, takedown)[0] in ROUTED_ON
        # the failure is cached: the next item does not ask again within the hour
        with services.engine.connect() as conn:
            row = conn.execute(select(RdapCache.ok).where(RdapCache.kind == "bootstrap")).one()
        assert row.ok is False
    finally:
        services.close()


def test_the_rdap_cache_table_keeps_and_replaces_answers(world: tuple[Services, ManualClock, Rdap]) -> None:
    services, _clock, _rdap = world
    cache = DbRdapCache(services.engine)
    assert cache.get("ip", HOSTED) is None
    cache.put("ip", HOSTED, Cached(START, True, {"holder": "A"}))
    cache.put("ip", HOSTED, Cached(START + timedelta(days=1), False, {"error": "HTTP 500"}))
    got = cache.get("ip", HOSTED)
    assert got == Cached(START + timedelta(days=1), False, {"error": "HTTP 500"})


def test_the_walk_locates_every_item_it_fetched(db_url: str) -> None:
    """The fetch step enqueues ``locate`` in the transaction that records the server address;
    draining the queue (as the walk's tests do) needs no network."""
    services = Services(make_settings(db_url))
    served = Served(Web(), "127.0.0.1")  # type: ignore[arg-type]
    try:
        [item_id] = submit(services, served.url("/one-new"))
        drain(services)
        with services.engine.connect() as conn:
            jobs = conn.execute(select(Job.key, Job.state).where(Job.kind == "locate")).all()
        assert [(k, s) for k, s in jobs] == [(f"item:{item_id}:0", "done")]
        loc = current_location(services.engine, item_id)
        assert loc is not None and loc.ip == "127.0.0.1" and "loopback" in loc.fact("country")["unknown"]
        assert [e.detail["reason"] for e in timeline.for_item(services.engine, item_id)] == ["fetched"]
    finally:
        served.close()
        services.close()


# --- the item page ----------------------------------------------------------------------------------


@pytest.fixture
def ws(sqlite_db: str) -> Iterator[Workspace]:
    with ExitStack() as stack:
        yield _workspace(sqlite_db, stack)


@pytest.mark.parametrize(
    ("language", "words"),
    [
        (
            None,
            ["Hosting", "Hosting provider", "geoip2fast, data of 2024-06-18", "RDAP 127.0.0.1, 2 hours ago"],
        ),
        (
            "nl-BE,nl;q=0.9",
            ["Hostingprovider", "geoip2fast, gegevens van 2024-06-18", "RDAP 127.0.0.1, 2 uur geleden"],
        ),
        (
            "fr-BE,fr;q=0.9",
            ["Hébergeur", "geoip2fast, données du 2024-06-18", "RDAP 127.0.0.1, il y a 2 heures"],
        ),
    ],
)
def test_the_item_page_shows_where_it_is_hosted(
    ws: Workspace, language: str | None, words: list[str]
) -> None:
    services: Services = ws.staff.app.state.ctx.services
    iid = ws.item(images=1)
    ana = ws.user("ana", "analyst")
    if language:
        ana.headers["Accept-Language"] = language
    page = ana.get(f"/items/{iid}")
    assert page.status_code == 200 and 'id="hosting"' in page.text
    assert "Not located yet." in page.text or "Nog niet" in page.text or "Pas encore" in page.text

    now = services.clock.now()
    loc = Locator(LocateSettings(rdap=False)).locate("104.16.1.1", "104.16.1.1", now=now)
    loc.set(
        "abuse_email", "abuse@hosting-one.example", "rdap 127.0.0.1", (now - timedelta(hours=2)).isoformat()
    )
    with services.engine.begin() as conn:
        save_location(conn, iid, loc, now)
    page = ana.get(f"/items/{iid}")
    text = re.sub(r"\s+", " ", page.text)
    for w in words:
        assert w in text, w
    assert "abuse@hosting-one.example" in text and "Cloudflare" in text and "104.16.0.0/12" in text
    assert "network 104.16.0.0/13" in text  # how the CDN was recognised
    assert "geo update" in text  # why the AS number is unknown


def test_settings_from_the_environment_reach_the_locator(tmp_path: Path) -> None:
    settings = Settings.from_env({"MELDPUNT_LOCATE_GEO_DIR": str(tmp_path / "g")}, db=str(tmp_path / "m.db"))
    assert Services(settings).locator.geo_dir == tmp_path / "g"
    assert Services(Settings(db=str(tmp_path / "x" / "m.db"))).locator.geo_dir == tmp_path / "x" / "geo"
