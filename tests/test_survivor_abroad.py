"""The survivor chain across borders (#12 part "abroad"): hotline A (BE) holds two survivor cases,
one that agreed that its hashes travel with forwards and one that did not; A's walk finds two
benign images on a page hosted in the Netherlands, A's analyst classifies, and both items are
forwarded to partner B (NL) over the signed channel. Only the consenting case's matching hashes
travel (under an opaque reference); B matches them both ways, later finds another copy on another
loopback site, sends its own notice, the provider removes it, and A's survivor timeline shows what
B found and did. A withdrawal at A deletes the hashes at B. Both databases; one injected clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import func, insert, select

from meldpunt.act import partners, survivor_abroad, survivors
from meldpunt.act.contacts import add_contact
from meldpunt.act.partners import Partners
from meldpunt.clock import ManualClock
from meldpunt.domain.acting import TakedownState
from meldpunt.pipeline.intake import ReportIn, submit_report
from meldpunt.settings import MailSettings, NoticeSettings, RecheckSettings, Settings, TriageSettings
from meldpunt.store.survivors import SurvivorCase
from meldpunt.store.survivors_abroad import (
    SurvivorFactAbroad,
    SurvivorHashIn,
    SurvivorLinkIn,
    SurvivorRefOut,
    SurvivorReportOut,
)
from tests.helpers.forward import Instance, pair, route_to, settle_all, start
from tests.helpers.providers import Providers, install, png
from tests.helpers.routing import T0
from tests.helpers.smtp import SmtpSink
from tests.helpers.survivors import PASS, device_hashes
from tests.helpers.survivorweb import token
from tests.helpers.world import ILLEGAL

PASSWORD = "a long benign test passphrase 42"


@pytest.fixture
def hotlines(
    db_url: str,
    db_b: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    smtp_sink: SmtpSink,
) -> Iterator[SimpleNamespace]:
    clock = ManualClock(T0)
    world = Providers(clock)
    install(monkeypatch, world)
    host = world.add("nlhost", "never")
    mirror = world.add("nlmirror", "complies", after=timedelta(minutes=30))

    def hotline(s: Settings) -> Settings:
        return replace(
            s,
            triage=TriageSettings(second_opinion=False),
            mail=MailSettings(
                smtp_host=smtp_sink.host,
                smtp_port=smtp_sink.port,
                sender="ntd@hotline.test",
                reply_to="ntd@hotline.test",
                public_url="http://127.0.0.1",
            ),
            notice=NoticeSettings(quiet_weekdays=(), holidays=(), batch_hours=0.5),
            # quick re-checks: the provider's removal is seen within the hour (fewer passes)
            recheck=RecheckSettings(first_min_minutes=20, first_max_minutes=30, miss_spacing_minutes=15),
        )

    a = start(db_url, "be-hotline", "BE", clock, tmp_path, resolver=world.resolve, settings=hotline)
    b = start(db_b, "nl-hotline", "NL", clock, tmp_path, resolver=world.resolve, settings=hotline)
    pair(a, b)
    add_contact(
        b.services,
        {
            "scope": "domain",
            "match": mirror.host,
            "name": "NL Mirror",
            "channel": "email",
            "address": "abuse@m.test",
        },
        "test",
    )
    try:
        yield SimpleNamespace(a=a, b=b, clock=clock, host=host, mirror=mirror, smtp=smtp_sink)
    finally:
        a.stop()
        b.stop()
        world.close()


def _classify(inst: Instance, item_id: int, who: str) -> None:
    accounts = inst.services.accounts()
    if accounts.user(who) is None:
        accounts.create_user(who, "analyst", PASSWORD)
    inst.services.triage.claim(item_id, who)
    inst.services.triage.classify(item_id, who, ILLEGAL)


def _count(inst: Instance, table: type) -> int:
    with inst.services.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _abroad(inst: Instance, case_id: int) -> list[survivors.Fact]:
    return [f for f in survivors.timeline(inst.services.engine, case_id) if f.kind.endswith("_abroad")]


def test_hashes_travel_with_consent_and_findings_abroad_come_back(hotlines: SimpleNamespace) -> None:
    h = hotlines
    a, b = h.a, h.b
    sa = a.services
    one, two = device_hashes(png(1), "one.png", sa), device_hashes(png(2), "two.png", sa)
    kinds = dict(one)
    # the consenting case registered image 1 by SHA-256 and PDQ; the other image 1's MD5, and image 2
    yes = survivors.register(
        sa,
        passphrase=PASS,
        hashes_=[("sha256", kinds["sha256"]), ("pdq", kinds["pdq"])],
        contact="me@mail.example",
        consent_forward=True,
    )
    no = survivors.register(sa, passphrase=PASS, hashes_=[("md5", kinds["md5"]), *two])
    items = submit_report(sa, ReportIn(urls=[h.host.url(1), h.host.url(2)])).item_ids
    settle_all(a)
    for item in items:
        _classify(a, item, "anna")
    settle_all(a)
    for item in items:
        route_to(a, item, country="NL", host=h.host.host, provider="NL Host", asn=64500)
    h.clock.advance(600)
    settle_all(a, b)
    assert all(a.takedown(i).state == TakedownState.FORWARDED for i in items)

    # the envelopes: image 1's forward carries the consenting case's hashes under one reference;
    # image 2's (only the other case) carries none
    sent = {int(f.item_id): partners.message(sa, int(f.message_id)) for f in a.forwards_out()}
    bodies = {i: m.body for i, m in sent.items() if m is not None}
    assert "survivor" not in bodies[items[1]]
    [part] = bodies[items[0]]["survivor"]
    assert sorted(x["type"] for x in part["hashes"]) == ["pdq", "sha256"]
    ref = part["ref"]
    # a keyed hash of the case for this partner: not the code, another one for another partner
    assert survivors.normal_code(yes.code) not in str(bodies)
    with sa.engine.connect() as conn:
        created = conn.execute(
            select(SurvivorCase.created_at).where(SurvivorCase.id == yes.case_id)
        ).scalar_one()
    keys = survivors.Keys.from_settings(sa)
    assert ref == survivor_abroad.reference(keys, yes.case_id, created, "nl-hotline")
    assert ref != survivor_abroad.reference(keys, yes.case_id, created, "fr-hotline")
    with sa.engine.connect() as conn:
        assert conn.execute(select(SurvivorRefOut.case_id, SurvivorRefOut.partner)).all() == [
            (yes.case_id, "nl-hotline")
        ]
    # B holds them in its own table, matched the forwarded item itself, and said so
    with b.services.engine.connect() as conn:
        assert sorted(conn.execute(select(SurvivorHashIn.signal_type, SurvivorHashIn.ref)).all()) == [
            ("pdq", ref),
            ("sha256", ref),
        ]
    [found] = _abroad(a, yes.case_id)
    assert (found.kind, found.domain, found.partner, found.partner_country) == (
        "found_abroad",
        h.host.host,
        "nl-hotline",
        "NL",
    )
    assert _abroad(a, no.case_id) == []

    # later B's own walk finds another copy on another site (B's analyst acts on it)
    copy = submit_report(b.services, ReportIn(urls=[h.mirror.url(1)])).item_ids[0]
    settle_all(a, b)
    assert len(_abroad(a, yes.case_id)) == 2
    _classify(b, copy, "bram")
    settle_all(a, b)
    route_to(b, copy, country="NL", host=h.mirror.host, provider="NL Mirror", asn=64501)
    settle_all(a, b)
    for _ in range(48):
        if h.smtp.to("abuse@m.test"):
            break
        h.clock.advance(1800)
        settle_all(a, b)
    assert h.smtp.to("abuse@m.test")
    h.mirror.notice()
    for _ in range(96):
        if any(f.kind == "removed_abroad" for f in _abroad(a, yes.case_id)):
            break
        h.clock.advance(1800)
        settle_all(a, b)
    facts = _abroad(a, yes.case_id)
    assert [f.kind for f in facts] == ["found_abroad", "found_abroad", "notice_sent_abroad", "removed_abroad"]
    assert facts[2].country == "NL" and facts[3].domain == h.mirror.host
    assert facts[1].country == "NL"  # the copy's hosting country, learned with the notice
    # the survivor was told there is news, and reads it in their language
    with sa.engine.connect() as conn:
        told = conn.execute(
            select(SurvivorCase.notified_through).where(SurvivorCase.id == yes.case_id)
        ).scalar()
    assert told == survivors._news_markers(sa.engine)[yes.case_id][1] and told >= 4
    with httpx.Client(base_url=a.base) as web:
        form = web.get("/survivor/sign-in?lang=nl")
        signed = web.post(
            "/survivor/sign-in",
            data={"token": token(form.text), "lang": "nl", "code": yes.code, "passphrase": PASS},
        )
        assert signed.status_code == 303
        page = web.get("/survivor/case?lang=nl").text
    assert (
        f"gevonden op {h.mirror.host} (land van hosting: Nederland) door een partnermeldpunt (nl-hotline, land: Nederland)"
        in page
    )
    assert (
        "Een partnermeldpunt (nl-hotline, land: Nederland) heeft een verzoek tot verwijdering gestuurd"
        in page
    )
    assert (
        f"Het beeld is verwijderd van {h.mirror.host}, meldt een partnermeldpunt (nl-hotline, land: Nederland)"
        in page
    )
    assert "http://" + h.mirror.host not in page

    # withdrawal at A: B deletes the reference's hashes, links and reports, and says nothing more
    assert survivors.withdraw(sa, yes.case_id)
    settle_all(a, b)
    for table in (SurvivorHashIn, SurvivorLinkIn, SurvivorReportOut):
        assert _count(b, table) == 0
    assert _count(a, SurvivorRefOut) == 0 and _count(a, SurvivorFactAbroad) == 0


def test_duplicates_unknown_references_and_bad_parts(hotlines: SimpleNamespace) -> None:
    """Facts are recorded once however often they come; a fact for a reference A does not know is
    dropped quietly; a malformed survivor part refuses the forward and applies nothing."""
    a, b = hotlines.a, hotlines.b
    sa = a.services
    case = survivors.register(sa, passphrase=PASS, hashes_=[("md5", "1" * 32)], consent_forward=True)
    ref, finding = "a" * 32, "b" * 32
    with sa.engine.begin() as conn:
        conn.execute(
            insert(SurvivorRefOut).values(
                case_id=case.case_id, partner="nl-hotline", ref=ref, created_at=sa.clock.now()
            )
        )
    sender = Partners(sa).get("nl-hotline")
    body = {
        "ref": ref,
        "finding": finding,
        "at": sa.clock.now().isoformat(),
        "domain": "x.test",
        "country": "nl",
    }
    for _ in range(2):  # a duplicate delivery (another message id, the same fact)
        with sa.engine.begin() as conn:
            survivor_abroad.on_found(sa, conn, sender, body, None)
            survivor_abroad.on_action(sa, conn, sender, {**body, "action": "removed", "domain": ""}, None)
    facts = _abroad(a, case.case_id)
    assert [(f.kind, f.domain, f.country) for f in facts] == [
        ("found_abroad", "x.test", "NL"),
        ("removed_abroad", "x.test", "NL"),
    ]
    dropped = sum(survivor_abroad.DROPPED.values())
    with sa.engine.begin() as conn:
        survivor_abroad.on_found(sa, conn, sender, {**body, "ref": "c" * 32}, None)
    assert sum(survivor_abroad.DROPPED.values()) == dropped + 1 and _count(a, SurvivorFactAbroad) == 2
    for bad in (
        {**body, "ref": "not hex"},
        {**body, "domain": "x" * 300},
        {**body, "action": "burned"},
    ):
        with pytest.raises(partners.Refused), sa.engine.begin() as conn:
            handler = survivor_abroad.on_action if "action" in bad else survivor_abroad.on_found
            handler(sa, conn, sender, bad, None)
    # B refuses a malformed survivor part with the forward it came in
    sb = b.services
    for part, words in (
        ("nope", "a list"),
        ([{"ref": ref, "hashes": [{"type": "md5", "value": "xyz"}]}], "32 hexadecimal"),
        ([{"ref": ref, "hashes": []}], "1 to"),
    ):
        with pytest.raises(partners.Refused, match=words), sb.engine.begin() as conn:
            survivor_abroad.take(sb, conn, "be-hotline", part)
    assert _count(b, SurvivorHashIn) == 0
