"""Forwarding between meldpunt instances (#11 part "forward"): what travels on the signed partner
channel, both ends — the forward (hashes and facts, never media), the receiver's intake into its own
walk, the statuses back, and what the sender does with them. Two real instances (each its own
database, key ring and web app on loopback) on one manual clock; the fake provider is on loopback
and serves benign generated images."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select, update

from meldpunt.act import forward_in, forwarding, partners, routing
from meldpunt.clock import ManualClock
from meldpunt.domain.acting import EventKind, TakedownState
from meldpunt.domain.reports import ItemState
from meldpunt.settings import TriageSettings
from meldpunt.store.acting import Location, Takedown
from meldpunt.store.reports import Item, Report
from meldpunt.web.i18n import Translator
from tests.helpers.forward import Instance, pair, settle_all, start
from tests.helpers.providers import Providers, install, seed_watched
from tests.helpers.routing import T0
from tests.helpers.world import ILLEGAL, NOT_ILLEGAL

LABELS = {
    "source": "analyst",
    "classification": {"status": "baseline", "us": "A1"},
    "categories": ["A1", "baseline"],
    "flags": [],
}


@pytest.fixture
def two(db_url: str, db_b: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """Instance A (BE) and B (NL) partnered both ways, and a fake provider in NL."""
    clock = ManualClock(T0)
    world = Providers(clock)
    install(monkeypatch, world)
    single = lambda s: _with_triage(s)  # noqa: E731  (one analyst's decision is final)
    a = start(db_url, "be-hotline", "BE", clock, tmp_path, resolver=world.resolve, settings=single)
    b = start(db_b, "nl-hotline", "NL", clock, tmp_path, resolver=world.resolve, settings=single)
    pair(a, b)
    try:
        yield SimpleNamespace(a=a, b=b, clock=clock, world=world, provider=world.add("nlhost", "complies"))
    finally:
        a.stop()
        b.stop()
        world.close()


def _with_triage(s: Any) -> Any:
    from dataclasses import replace

    return replace(s, triage=TriageSettings(second_opinion=False))


def _to_forward(t: SimpleNamespace, n: int = 1, **takedown: Any) -> Any:
    """An item at A found illegal at the NL provider, located in NL, its takedown ``to_forward``."""
    w = seed_watched(
        t.a.services,
        t.provider,
        n,
        noticed_at=None,
        reported_at=t.clock.now(),
        state=TakedownState.TO_FORWARD,
        forward_to=takedown.pop("forward_to", "nl-hotline"),
        labels=LABELS,
        **takedown,
    )
    with t.a.services.engine.begin() as conn:
        conn.execute(update(Location).where(Location.item_id == w.item_id).values(country="NL", asn=64500))
    return w


def _b_item(t: SimpleNamespace) -> int:
    [fin] = t.b.forwards_in()
    return int(fin.item_id)


def _classify(inst: Instance, item_id: int, classification: dict[str, Any], who: str = "nora") -> None:
    accounts = inst.services.accounts()
    if accounts.user(who) is None:
        accounts.create_user(who, "analyst", "a long benign test passphrase 42")
    triage = inst.services.triage
    triage.claim(item_id, who)
    triage.classify(item_id, who, classification)


def test_a_forward_carries_hashes_and_facts_and_the_partner_takes_it_into_its_walk(
    two: SimpleNamespace,
) -> None:
    t = two
    w = _to_forward(t)
    settle_all(t.a, t.b)
    td = t.a.takedown(w.item_id)
    assert td.state == TakedownState.FORWARDED and td.first_notice_at is not None
    [out] = t.a.forwards_out()
    assert out.state == "sent" and out.partner == "nl-hotline" and out.reference.startswith("BE-")
    kinds = [k for k, _, _ in t.a.events(w.item_id)]
    assert kinds[:2] == [EventKind.FORWARD_QUEUED, EventKind.FORWARD_SENT]
    statuses = [d["status"] for k, d, _ in t.a.events(w.item_id, EventKind.PARTNER_STATUS)]
    assert statuses == ["received"]
    # B: a report from the partner, walked by B's own walk, with the sender's facts kept
    [fin] = t.b.forwards_in()
    assert (fin.sender, fin.reference, fin.url) == ("be-hotline", out.reference, w.url)
    assert json.loads(fin.classification)["values"] == {"status": "baseline", "us": "A1"}
    assert json.loads(fin.hosting)["country"] == "NL"
    media = json.loads(fin.media)
    assert media and set(media[0]) >= {"sha256", "md5", "sha1"} and "data" not in media[0]
    with t.b.services.engine.connect() as conn:
        item = conn.execute(select(Item).where(Item.id == fin.item_id)).one()
        source = conn.execute(select(Report.source).where(Report.id == fin.report_id)).scalar_one()
    assert source == "partner:be-hotline"
    assert item.state == ItemState.NEEDS_REVIEW  # fetched and hashed by B: new to B's lists
    assert t.b.events(fin.item_id)[0][0] == EventKind.FORWARD_RECEIVED


def test_a_duplicate_forward_is_taken_in_once(two: SimpleNamespace) -> None:
    t = two
    _to_forward(t)
    settle_all(t.a, t.b)
    [fin] = t.b.forwards_in()
    sender = partners.Partners(t.b.services).get("be-hotline")
    body = {"reference": fin.reference, "url": fin.url, "media": [], "classification": {}, "hosting": {}}
    with t.b.services.engine.begin() as conn:
        forward_in.on_forward(t.b.services, conn, sender, body, None)
    assert len(t.b.forwards_in()) == 1
    with t.b.services.engine.connect() as conn:
        assert (
            conn.execute(select(Report.id).where(Report.source == "partner:be-hotline")).all().__len__() == 1
        )


def test_the_partners_verdict_notice_and_removal_come_back_and_remove_ours(two: SimpleNamespace) -> None:
    t = two
    w = _to_forward(t)
    settle_all(t.a, t.b)
    forwarded_at = t.a.takedown(w.item_id).first_notice_at
    t.clock.advance(3600)
    _classify(t.b, _b_item(t), ILLEGAL)
    settle_all(t.a, t.b)
    got = [d for _, d, _ in t.a.events(w.item_id, EventKind.PARTNER_STATUS)]
    assert [d["status"] for d in got] == ["received", "assessed"]
    assert got[1]["verdict"] == "illegal" and got[1]["classification"]["status"] == "baseline"
    # B's own takedown is removed (its notice and re-checks are the journey's): say so directly
    b_item = _b_item(t)
    t.clock.advance(7200)
    removed_at = t.clock.now()
    with t.b.services.engine.begin() as conn:
        conn.execute(
            update(Takedown)
            .where(Takedown.item_id == b_item)
            .values(state="removed", removed_at=removed_at, first_notice_at=removed_at - timedelta(hours=1))
        )
    settle_all(t.a, t.b)
    statuses = [d["status"] for _, d, _ in t.a.events(w.item_id, EventKind.PARTNER_STATUS)]
    assert statuses == ["received", "assessed", "notice_sent", "removed"]
    td = t.a.takedown(w.item_id)
    assert td.state == TakedownState.REMOVED and td.removal_reason == "partner nl-hotline: removed"
    assert td.minutes_from_notice == int(
        (removed_at - forwarded_at.replace(tzinfo=removed_at.tzinfo)).total_seconds() // 60
    )
    assert t.b.forwards_in()[0].done is True
    # the removals report counts it, from the forward
    from meldpunt.act.removals import removals

    assert [r.item_id for r in removals(t.a.services.engine).items] == [w.item_id]


def test_not_illegal_there_stays_forwarded_and_waits_for_a_senior(two: SimpleNamespace) -> None:
    t = two
    w = _to_forward(t)
    settle_all(t.a, t.b)
    _classify(t.b, _b_item(t), NOT_ILLEGAL)
    settle_all(t.a, t.b)
    statuses = [d["status"] for _, d, _ in t.a.events(w.item_id, EventKind.PARTNER_STATUS)]
    assert statuses == ["received", "assessed", "not_illegal"]
    assert t.a.takedown(w.item_id).state == TakedownState.FORWARDED
    [waiting] = forwarding.attention(t.a.services)
    assert waiting.attention == "not_illegal" and waiting.item_id == w.item_id
    forwarding.noted(t.a.services, waiting.id, "sara")
    assert forwarding.attention(t.a.services) == []
    with pytest.raises(forwarding.NotWaiting):
        forwarding.noted(t.a.services, waiting.id, "sara")


def _status(t: SimpleNamespace, body: dict[str, Any]) -> None:
    sender = partners.Partners(t.a.services).get("nl-hotline")
    with t.a.services.engine.begin() as conn:
        forwarding.on_status(t.a.services, conn, sender, body, None)


def test_an_unknown_reference_is_refused_and_a_status_twice_changes_nothing_twice(
    two: SimpleNamespace,
) -> None:
    t = two
    w = _to_forward(t)
    settle_all(t.a, t.b)
    with pytest.raises(partners.Refused) as e:
        _status(t, {"reference": "BE-999-XXXX", "status": "removed"})
    assert e.value.status == 404
    with pytest.raises(partners.Refused) as e:
        _status(t, {"reference": t.a.forwards_out()[0].reference, "status": "exploded"})
    assert e.value.status == 422
    ref = t.a.forwards_out()[0].reference
    at = (t.clock.now() - timedelta(minutes=5)).isoformat()
    _status(t, {"reference": ref, "status": "removed", "at": at})
    _status(t, {"reference": ref, "status": "removed", "at": at})
    assert len(t.a.events(w.item_id, EventKind.REMOVED)) == 1
    assert [d["status"] for _, d, _ in t.a.events(w.item_id, EventKind.PARTNER_STATUS)].count("removed") == 1
    assert t.a.takedown(w.item_id).state == TakedownState.REMOVED


def test_unavailable_there_is_a_removal_unless_our_recheck_saw_it_online(two: SimpleNamespace) -> None:
    t = two
    first = _to_forward(t, 1)
    second = _to_forward(t, 2)
    settle_all(t.a, t.b)
    with t.a.services.engine.begin() as conn:  # our own re-check saw the second online
        conn.execute(
            update(Takedown).where(Takedown.item_id == second.item_id).values(last_check="online", misses=0)
        )
    refs = {r.item_id: r.reference for r in t.a.forwards_out()}
    _status(t, {"reference": refs[first.item_id], "status": "unavailable"})
    _status(t, {"reference": refs[second.item_id], "status": "unavailable"})
    assert t.a.takedown(first.item_id).state == TakedownState.REMOVED
    assert t.a.takedown(second.item_id).state == TakedownState.FORWARDED
    assert [f.attention for f in forwarding.attention(t.a.services)] == ["unavailable_online"]


def test_a_partner_nobody_configured_holds_the_takedown_for_a_senior(two: SimpleNamespace) -> None:
    t = two
    w = _to_forward(t, forward_to="lu-hotline")
    settle_all(t.a, t.b)
    td = t.a.takedown(w.item_id)
    assert td.state == TakedownState.HELD
    assert json.loads(td.route)["lines"][-1] == {"code": "partner_unknown", "partner": "lu-hotline"}
    rows, total = routing.attention(t.a.services)
    assert total == 1 and rows[0].item_id == w.item_id
    assert t.a.forwards_out() == [] and t.b.forwards_in() == []


def test_a_forward_the_partner_refuses_is_a_dead_letter_a_senior_sees(two: SimpleNamespace) -> None:
    t = two
    w = _to_forward(t)
    with t.a.services.engine.begin() as conn:  # a URL the partner's intake cannot take
        conn.execute(
            update(Item).where(Item.id == w.item_id).values(url="http://nlhost.test:0/x", final_url="")
        )
    settle_all(t.a, t.b)
    [out] = t.a.forwards_out()
    assert out.state == "failed" and out.attention == "failed" and "URL" in out.attention_reason
    assert [k for k, _, _ in t.a.events(w.item_id)][-1] == EventKind.FORWARD_FAILED
    assert t.b.forwards_in() == []
    # a senior sends it again: the channel's dead letter is queued again, refused again
    forwarding.retry(t.a.services, out.id, "sara")
    assert t.a.forwards_out()[0].state == "queued"
    settle_all(t.a, t.b)
    assert t.a.forwards_out()[0].state == "failed"
    assert len(t.a.events(w.item_id, EventKind.FORWARD_FAILED)) == 2
    with pytest.raises(LookupError):
        forwarding.retry(t.a.services, out.id + 999, "sara")


def test_the_item_pages_show_the_forward_on_both_sides(two: SimpleNamespace) -> None:
    t = two
    w = _to_forward(t)
    settle_all(t.a, t.b)
    for inst, item_id, expect in (
        (t.a, w.item_id, ["nl-hotline", t.a.forwards_out()[0].reference]),
        (t.b, _b_item(t), ["be-hotline", "status: baseline", "us: A1"]),
    ):
        from meldpunt.web import create_app

        env = create_app(inst.services).state.ctx.env
        for lang, heading in (("en", "Forwarded"), ("nl", "Doorgestuurd"), ("fr", "Transmis")):
            html = env.get_template("forwarding_panel.html").render(
                item=SimpleNamespace(item_id=item_id),
                user=SimpleNamespace(role="analyst"),
                t=Translator(lang),
                when=str,
            )
            assert heading in html and all(x in html for x in expect), html
    html = env.get_template("forwarding_panel.html").render(
        item=SimpleNamespace(item_id=w.item_id),
        user=SimpleNamespace(role="none"),
        t=Translator("en"),
        when=str,
    )
    assert "Forwarded" not in html


def test_which_statuses_are_due() -> None:
    f = forward_in.Facts
    at = T0
    base: dict[str, Any] = dict(
        item_updated_at=at, stage=None, final="", illegal=False, finalized_at=None,
        takedown_state=None, labels="", first_notice_at=None, removed_at=None,
    )  # fmt: skip
    assert forward_in.due(f(item_state="fetched", **base)) == []
    assert [s for s, _, _ in forward_in.due(f(item_state="unavailable", **base))] == ["unavailable"]
    final = {**base, "stage": "final", "final": json.dumps({"status": "not_illegal"}), "finalized_at": at}
    assert [s for s, _, _ in forward_in.due(f(item_state="classified", **final))] == [
        "assessed",
        "not_illegal",
    ]
    done = {**final, "illegal": True, "final": json.dumps(ILLEGAL), "takedown_state": "removed",
            "first_notice_at": at, "removed_at": at + timedelta(hours=2)}  # fmt: skip
    assert [s for s, _, _ in forward_in.due(f(item_state="classified", **done))] == [
        "assessed",
        "notice_sent",
        "removed",
    ]
    assert [s for s, _, _ in forward_in.due(f(item_state="known", **base), None)] == [
        "assessed",
        "not_illegal",
    ]
    assert [s for s, _, _ in forward_in.due(f(item_state="known", **base), {"categories": ["baseline"]})] == [
        "assessed"
    ]


def test_a_removal_dated_before_the_forward_counts_from_the_forward(two: SimpleNamespace) -> None:
    """A partner's clock far behind (or a year-0001 date) must not make a negative time to removal."""
    t = two
    w = _to_forward(t)
    settle_all(t.a, t.b)
    [out] = t.a.forwards_out()
    _status(t, {"reference": out.reference, "status": "removed", "at": "0001-01-01T00:00:00+00:00"})
    td = t.a.takedown(w.item_id)
    assert td.state == TakedownState.REMOVED
    assert td.minutes_from_notice == 0 and td.removed_at == td.first_notice_at
