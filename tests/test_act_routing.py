"""Takedowns from real triage decisions and hash-list matches, and routing: every branch, on
SQLite and PostgreSQL, and several workers ticking at once (#10 part "routing")."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select, update

from meldpunt.act import contacts, routing
from meldpunt.bootstrap import Services
from meldpunt.domain.acting import EventKind, TakedownState
from meldpunt.pipeline.worker import drain
from meldpunt.settings import Settings
from meldpunt.store.acting import Takedown
from tests.helpers.acting import seed_contact
from tests.helpers.fakeweb import Served
from tests.helpers.pipeline import Web as PipelineWeb
from tests.helpers.pipeline import make_settings, seed_banks, submit
from tests.helpers.routing import (
    T0,
    actions,
    codes,
    decide_final,
    events,
    known_item,
    make_services,
    match,
    now,
    takedown,
    takedowns,
    to_route,
    triage_world,
)
from tests.helpers.world import ILLEGAL, NATIONAL, NOT_ILLEGAL


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    s = make_services(db_url)
    yield s
    s.close()


# -- takedowns ------------------------------------------------------------------------------------------


def test_an_analysts_final_illegal_decision_opens_one_takedown(services: Services) -> None:
    world = triage_world(services)
    illegal = decide_final(world, ILLEGAL)
    national = decide_final(world, NATIONAL)
    benign = decide_final(world, NOT_ILLEGAL)
    waiting = world.item(pdqs=(world.pdq(),))  # no decision yet
    assert routing.tick_takedowns(services) == 2
    assert routing.tick_takedowns(services) == 0  # nothing twice
    opened = {t["item_id"]: t for t in takedowns(services)}
    assert set(opened) == {illegal, national}
    assert benign not in opened and waiting not in opened
    t = takedown(services, illegal)
    assert t["state"] == TakedownState.TO_LOCATE
    assert t["decided_by"] == "analyst"
    assert t["labels"]["categories"] == ["A1", "baseline", "prepubescent"]
    assert t["labels"]["classification"]["status"] == "baseline"
    assert t["reported_at"] is not None
    [(item, kind, actor, detail)] = events(services, illegal)
    assert (item, kind, actor) == (illegal, EventKind.TAKEDOWN_OPENED, "system")
    assert detail["decided_by"] == "analyst"


def test_a_first_opinion_alone_opens_nothing(services: Services) -> None:
    world = triage_world(services)
    t = world.triage()
    anna = world.user("anna", "analyst")
    item = world.item(pdqs=(world.pdq(),))
    t.claim(item, anna)
    t.classify(item, anna, ILLEGAL)  # awaits a second opinion: not final
    assert routing.tick_takedowns(services) == 0


def test_an_auto_list_whose_labels_say_illegal_opens_a_takedown(services: Services) -> None:
    listed = known_item(services, match(category="A"))
    baseline = known_item(services, match(bank="interpol", baseline=True))
    not_illegal = known_item(services, match(bank="hotline-own", category="not_illegal"))
    unlabelled = known_item(services, match(bank="plain"))
    assert routing.tick_takedowns(services) == 2
    assert {t["item_id"] for t in takedowns(services)} == {listed, baseline}
    t = takedown(services, listed)
    assert t["decided_by"] == "hash_list"
    assert t["labels"] == {
        "source": "hash_list",
        "banks": ["national"],
        "categories": ["A"],
        "baseline": False,
    }
    assert takedown(services, baseline)["labels"]["categories"] == ["baseline"]
    assert not_illegal and unlabelled
    assert routing.tick_takedowns(services) == 0


def test_a_walked_item_known_by_an_auto_list_opens_a_takedown(
    db_url: str, services_factory: Callable[[Settings], Services]
) -> None:
    """The walk's own matches JSON (not a hand-written one): what the tick's text prefilter reads."""
    served = Served(PipelineWeb(), "127.0.0.1")  # type: ignore[arg-type]
    try:
        s = services_factory(make_settings(db_url))
        seed_banks(s)
        all_known, one_new = submit(s, served.url("/all-known"), served.url("/one-new"))
        drain(s)
        assert routing.tick_takedowns(s) == 1
        [t] = takedowns(s)
        assert t["item_id"] == all_known and t["decided_by"] == "hash_list"
        assert takedown(s, all_known)["labels"]["categories"] == ["A"]
        assert one_new  # waits for an analyst: nothing yet
    finally:
        served.close()


def test_hash_list_items_are_left_to_analysts_when_the_setting_says_so(db_url: str) -> None:
    s = make_services(db_url, act_on_hash_list=False)
    try:
        known_item(s, match(category="A"))
        assert routing.tick_takedowns(s) == 0
    finally:
        s.close()


def test_hint_matches_decide_nothing() -> None:
    assert routing.hash_list_labels([match(policy="hint", category="A").to_json_dict()], ["A"]) is None
    near = {**match(category="A").to_json_dict(), "near": True}
    assert routing.hash_list_labels([near], ["A"]) is None


def _race(n: int, target: Callable[[], object]) -> list[BaseException]:
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            target()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return errors


@pytest.mark.postgres
def test_workers_ticking_at_once_open_one_takedown_and_route_it_once(postgres_cluster: Any) -> None:
    s = make_services(str(postgres_cluster.create_database()))
    try:
        world = triage_world(s)
        items = [decide_final(world) for _ in range(3)] + [
            known_item(s, match(category="A")) for _ in range(3)
        ]
        assert not _race(8, lambda: routing.tick_takedowns(s))
        assert sorted(t["item_id"] for t in takedowns(s)) == sorted(items)
        opened = [e for e in events(s) if e[1] == EventKind.TAKEDOWN_OPENED]
        assert sorted(e[0] or 0 for e in opened) == sorted(items)  # one line each
        # routing: the default rules are seeded once, each takedown routed once
        seed_contact(s.engine, now=now(s), scope="domain", match="example.com")
        routed = [to_route(s, f"https://x{n}.example.com/p")[0] for n in range(5)]
        assert not _race(8, lambda: routing.tick_route(s))
        assert len(contacts.list_rules(s)) == 2
        lines = [e for e in events(s) if e[1] == EventKind.ROUTED]
        assert sorted(e[0] or 0 for e in lines) == sorted(routed)
        assert all(takedown(s, i)["state"] == TakedownState.TO_NOTICE for i in routed)
    finally:
        s.close()


# -- routing --------------------------------------------------------------------------------------------


def test_hosted_at_home_a_notice_and_a_police_referral(services: Services) -> None:
    cid = seed_contact(services.engine, now=now(services), scope="domain", match="example.com", language="nl")
    item, _ = to_route(services, country="BE")
    assert routing.tick_route(services) == 1
    t = takedown(services, item)
    assert t["state"] == TakedownState.TO_NOTICE
    assert t["contact_id"] == cid and t["police"] == "due"
    r = t["route"]
    assert r["action"] == "notice" and r["contact_id"] == cid and r["police"] is True and not r["ask_origin"]
    assert codes(r) == ["country_home", "contact_domain", "police", "notice"]
    kinds = [e[1] for e in events(services, item)]
    assert kinds == [EventKind.ROUTED, EventKind.POLICE_DUE]
    assert routing.tick_route(services) == 0


def test_hosted_elsewhere_a_notice_to_the_provider_directly(services: Services) -> None:
    seed_contact(services.engine, now=now(services), scope="asn", match="64500")
    item, _ = to_route(services, country="US", asn=64500)
    routing.tick_route(services)
    t = takedown(services, item)
    assert t["state"] == TakedownState.TO_NOTICE and t["police"] == ""
    assert codes(t["route"]) == ["country_other", "contact_asn", "notice"]


def test_a_partner_hotlines_country_is_to_be_forwarded(services: Services) -> None:
    contacts.add_rule(services, {"country": "NL", "action": "forward", "partner": "Offlimits"}, "sara")
    item, _ = to_route(services, country="NL")
    routing.tick_route(services)
    t = takedown(services, item)
    assert t["state"] == TakedownState.TO_FORWARD and t["forward_to"] == "Offlimits"
    assert t["route"]["action"] == "forward"
    assert codes(t["route"]) == ["country_partner", "forward"]
    assert [e[1] for e in events(services, item)] == [EventKind.ROUTED, EventKind.FORWARD_PENDING]


def test_a_rule_saying_none_closes(services: Services) -> None:
    contacts.add_rule(services, {"country": "FR", "action": "none"}, "sara")
    item, _ = to_route(services, country="FR")
    routing.tick_route(services)
    t = takedown(services, item)
    assert t["state"] == TakedownState.CLOSED and codes(t["route"]) == ["rule_none"]
    assert [e[1] for e in events(services, item)] == [EventKind.ROUTED, EventKind.CLOSED]


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"do_not_contact": True}, "do_not_contact"),
        ({"accepts": False}, "not_accepting"),
        ({"channel": "none", "address": ""}, "no_channel"),
    ],
)
def test_a_contact_not_to_be_noticed_holds_it_for_a_senior(
    services: Services, values: dict[str, object], reason: str
) -> None:
    seed_contact(services.engine, now=now(services), scope="provider", match="shady hosting", **values)
    item, _ = to_route(services, country="BE", provider="Shady  Hosting")
    routing.tick_route(services)
    t = takedown(services, item)
    assert t["state"] == TakedownState.HELD and t["police"] == "due"
    assert codes(t["route"])[-1] == reason
    assert "notice" not in codes(t["route"])


def test_behind_a_cdn_the_notice_asks_for_the_origin(services: Services) -> None:
    assert contacts.seed_known_contacts(services) == 2
    assert contacts.seed_known_contacts(services) == 0
    item, _ = to_route(services, country="US", asn=13335, cdn="Cloudflare", provider="Cloudflare, Inc.")
    routing.tick_route(services)
    t = takedown(services, item)
    assert t["state"] == TakedownState.TO_NOTICE and t["route"]["ask_origin"] is True
    assert "cdn" in codes(t["route"])
    # the site's own domain contact wins over the CDN, and is not asked for an origin
    seed_contact(services.engine, now=now(services), scope="domain", match="imagehost.example")
    item2, _ = to_route(
        services, "https://i.imagehost.example/x.png", country="US", asn=13335, cdn="Cloudflare"
    )
    routing.tick_route(services)
    r = takedown(services, item2)["route"]
    assert codes(r)[1] == "contact_domain" and r["ask_origin"] is False


def test_the_rdap_abuse_address_becomes_a_contact_a_senior_can_correct(services: Services) -> None:
    item, _ = to_route(
        services,
        country="DE",
        prefix="198.51.100.0/24",
        ip="198.51.100.7",
        abuse_email="Abuse@Net.Example",
        network_owner="Net GmbH",
    )
    routing.tick_route(services)
    t = takedown(services, item)
    assert t["state"] == TakedownState.TO_NOTICE
    c = contacts.get_contact(services, t["contact_id"])
    assert (c.scope, c.match, c.address, c.note, c.name) == (
        "network",
        "198.51.100.0/24",
        "abuse@net.example",
        "from RDAP",
        "Net GmbH",
    )
    assert codes(t["route"]) == ["country_other", "contact_rdap", "notice"]
    assert "contact.auto" in actions(services) and c.cdn is False
    # the next item on that network finds the contact itself
    item2, _ = to_route(services, country="DE", ip="198.51.100.9", abuse_email="other@net.example")
    routing.tick_route(services)
    assert takedown(services, item2)["contact_id"] == c.id
    assert codes(takedown(services, item2)["route"])[1] == "contact_network"


def test_an_rdap_address_behind_a_cdn_becomes_a_cdn_contact(services: Services) -> None:
    item, _ = to_route(services, country="US", asn=64510, abuse_email="abuse@cdn.example", cdn="SomeCDN")
    routing.tick_route(services)
    t = takedown(services, item)
    assert t["route"]["ask_origin"] is True and codes(t["route"]) == [
        "country_other",
        "contact_rdap",
        "cdn",
        "notice",
    ]
    c = contacts.get_contact(services, t["contact_id"])
    assert (c.scope, c.match, c.cdn) == ("asn", "64510", True)


def test_the_rdap_contact_is_for_the_network_else_the_asn_else_the_address() -> None:
    scope = routing._rdap_scope
    assert scope(routing.Place(prefix="192.0.2.0/24", asn=64500, ip="192.0.2.1")) == (
        "network",
        "192.0.2.0/24",
    )
    assert scope(routing.Place(prefix="garbage", asn=64500, ip="192.0.2.1")) == ("asn", "64500")
    assert scope(routing.Place(ip="2001:db8::1")) == ("network", "2001:db8::1/128")
    assert scope(routing.Place(ip="not an address")) == ("", "")


def test_a_takedown_that_cannot_be_routed_does_not_hold_up_the_others(services: Services) -> None:
    bad, _ = to_route(services, country="US", asn=64520)
    good, _ = to_route(services, country="US")
    with services.engine.begin() as conn:  # a row routing trips over (a broken labels column)
        conn.execute(update(Takedown).where(Takedown.item_id == bad).values(labels="{not json"))
    assert routing.tick_route(services) == 1
    assert takedown(services, good)["state"] == TakedownState.NO_CONTACT
    with services.engine.connect() as conn:
        assert conn.execute(select(Takedown.state).where(Takedown.item_id == bad)).scalar_one() == "to_route"


def test_nobody_to_notice(services: Services) -> None:
    item, _ = to_route(services, country="US")
    bad, _ = to_route(services, country="US", asn=64501, abuse_email="not an address")
    nowhere, _ = to_route(services, located=False)
    routing.tick_route(services)
    assert takedown(services, item)["state"] == TakedownState.NO_CONTACT
    assert codes(takedown(services, item)["route"]) == ["country_other", "no_contact"]
    assert codes(takedown(services, bad)["route"]) == ["country_other", "rdap_invalid", "no_contact"]
    assert codes(takedown(services, nowhere)["route"]) == [
        "location_unknown",
        "country_unknown",
        "no_contact",
    ]
    views, total = routing.attention(services)
    assert total == 3 and {v.item_id for v in views} == {item, bad, nowhere}


def test_a_senior_routes_it_again_once_a_contact_is_added(services: Services) -> None:
    item, tid = to_route(services, country="US", provider="Tiny Host")
    routing.tick_route(services)
    assert takedown(services, item)["state"] == TakedownState.NO_CONTACT
    contacts.add_contact(
        services, {"scope": "provider", "match": "tiny host", "address": "abuse@tiny.example"}, "sara"
    )
    routing.reroute(services, tid, "sara")
    with pytest.raises(routing.RerouteError):
        routing.reroute(services, tid, "sara")
    routing.tick_route(services)
    assert takedown(services, item)["state"] == TakedownState.TO_NOTICE
    assert "takedown.reroute" in actions(services)


def test_police_categories_narrow_the_referral(services: Services) -> None:
    [home] = [r for r in contacts.list_rules(services) if r.country == "BE"]
    contacts.edit_rule(
        services,
        home.id,
        {"country": "BE", "action": "notice", "police": "1", "police_categories": "A1, B1"},
        "sara",
    )
    seed_contact(services.engine, now=now(services), scope="domain", match="example.com")
    item, _ = to_route(services, country="BE")  # seeded labels: category "baseline" only
    routing.tick_route(services)
    assert takedown(services, item)["police"] == ""
    assert "police" not in codes(takedown(services, item)["route"])


# -- matching precedence (pure) --------------------------------------------------------------------------


def _contact(cid: int, scope: str, match: str, cdn: bool = False) -> contacts.ContactView:
    return contacts.ContactView(
        cid, scope, match, f"c{cid}", "email", "a@b.example", "", True, False, cdn, False, "", "", T0, ""
    )


def test_the_most_specific_contact_wins() -> None:
    cs = [
        _contact(1, "provider", "big host"),
        _contact(2, "asn", "64500"),
        _contact(3, "network", "192.0.2.0/24"),
        _contact(4, "network", "192.0.2.0/28"),
        _contact(5, "domain", "example.com"),
        _contact(6, "domain", "files.example.com"),
    ]
    place = routing.Place(host="a.files.example.com", ip="192.0.2.5", asn=64500, provider="Big Host")
    assert routing.match_contact(place, cs) == (cs[5], "domain")
    assert routing.match_contact(routing.Place(**{**place.__dict__, "host": "www.example.com"}), cs) == (
        cs[4],
        "domain",
    )
    other = routing.Place(**{**place.__dict__, "host": "elsewhere.example"})
    assert routing.match_contact(other, cs) == (cs[3], "network")
    assert routing.match_contact(routing.Place(**{**other.__dict__, "ip": "192.0.2.100"}), cs) == (
        cs[2],
        "network",
    )
    assert routing.match_contact(routing.Place(**{**other.__dict__, "ip": "203.0.113.1"}), cs) == (
        cs[1],
        "asn",
    )
    assert routing.match_contact(routing.Place(host="x.example", provider="big   HOST"), cs) == (
        cs[0],
        "provider",
    )
    assert routing.match_contact(routing.Place(host="notexample.com"), cs) is None
    assert routing.match_contact(routing.Place(ip="2001:db8::1"), cs) is None
