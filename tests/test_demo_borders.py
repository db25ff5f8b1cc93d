"""``meldpunt demo`` across borders (#11): a page hosted in the Netherlands is forwarded to the demo's
partner hotline (a second instance in the process during the play, its own database beside the
demo's), which notices NL Demo Hosting; the provider removes it a day later and ``removed`` comes
back to the demo's item. After the play, demo-senior makes a police referral package for the
stubborn Belgian item; other cases stay due. One prepared demo serves every test here (preparing
takes a while); the pages are looked at in headless Chromium at 390 px, in Dutch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from meldpunt.act import referrals
from meldpunt.act.forwarding import forward_of
from meldpunt.demo.acting import HOSTING_FACTS
from meldpunt.demo.borders import NL_HOST, PARTNER_NAME, partner_db
from meldpunt.demo.run import DEMO_PASSWORD, Demo, prepare
from meldpunt.domain.acting import EventKind, TakedownState
from meldpunt.settings import Settings
from meldpunt.store.acting import ActionEvent, Location, Takedown
from meldpunt.store.reports import Item
from tests.helpers.browser import ARGS, CHROMIUM, need_browser, screenshot, staff_sign_in


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    prepared = prepare(Settings.from_env({}), tmp_path_factory.mktemp("demo") / "demo.db")
    try:
        yield prepared
    finally:
        prepared.stop()
        prepared.services.close()


def test_the_demo_plays_every_state_of_locate_and_act(demo: Demo) -> None:
    """``meldpunt demo`` shows a notice sent, one overdue and escalated, one removed, one moved,
    one urgent alert acknowledged: nine days played through the real ticks and jobs (the module's
    prepared demo: one story for every test here)."""
    from meldpunt.act.notice_answers import provider_view

    assert demo.act is not None and demo.mailbox is not None
    with demo.services.engine.connect() as conn:
        takedowns = {
            url.split("/")[-1]: (state, police, moves, from_notice)
            for url, state, police, moves, from_notice in conn.execute(
                text(
                    "SELECT i.url, t.state, t.police, t.moves, t.minutes_from_notice "
                    "FROM takedowns t JOIN items i ON i.id = t.item_id"
                )
            )
        }
        notices = {
            c: (state, escalation, language)
            for c, state, escalation, language in conn.execute(
                text("SELECT contact_id, state, escalation, language FROM notices")
            )
        }
        alerts = conn.execute(text("SELECT state, ack_seconds FROM alerts")).all()
    # reminded, escalated; the police referral was due, and the demo made its package (#11)
    assert takedowns["stubborn.html"][:2] == ("noticed", "referred")
    assert takedowns["removed.html"][0] == "removed" and takedowns["removed.html"][3] > 0
    assert takedowns["moved.html"][0] == "removed" and takedowns["moved.html"][2] == 1
    assert takedowns["fresh.html"][0] == "noticed"
    assert sorted(notices.values()) == [("closed", 0, "en"), ("sent", 0, "fr"), ("sent", 2, "nl")]
    assert [tuple(a) for a in alerts] == [("acknowledged", 240)]
    assert demo.mailbox.count >= 10  # the notices, their reminders and the alert
    token = demo.act.provider_link.rsplit("/", 1)[-1]
    assert [line.url.split("/")[-1] for line in provider_view(demo.services, token).items] == ["fresh.html"]


def _forwarded(demo: Demo) -> int:
    assert demo.act is not None
    assert demo.act.forwarded_item is not None, "the forwarding story was left out"
    return demo.act.forwarded_item


def test_the_forwarded_item_is_removed_with_the_partners_statuses_on_its_timeline(demo: Demo) -> None:
    item = _forwarded(demo)
    services = demo.services
    fwd = forward_of(services, item)
    assert fwd is not None and fwd.partner == PARTNER_NAME
    assert [line.status for line in fwd.statuses] == ["received", "assessed", "notice_sent", "removed"]
    with services.engine.connect() as conn:
        td = conn.execute(select(Takedown).where(Takedown.item_id == item)).one()
        kinds = list(
            conn.execute(
                select(ActionEvent.kind).where(ActionEvent.item_id == item).order_by(ActionEvent.id)
            ).scalars()
        )
        statuses = [
            json.loads(d)["status"]
            for d in conn.execute(
                select(ActionEvent.detail)
                .where(ActionEvent.item_id == item, ActionEvent.kind == EventKind.PARTNER_STATUS.value)
                .order_by(ActionEvent.id)
            ).scalars()
        ]
        where = conn.execute(select(Location).where(Location.id == td.location_id)).one()
    assert td.state == TakedownState.REMOVED.value
    # removed by whichever saw it first: the partner's word, or the demo's own re-check of the page
    # (a forwarded item stays watched at home too); the partner's "removed" came back either way
    assert td.removal_reason in (f"partner {PARTNER_NAME}: removed", "404: http_status: HTTP 404")
    assert td.minutes_from_notice is not None and td.minutes_from_notice > 24 * 60  # a day after the notice
    assert EventKind.FORWARD_QUEUED.value in kinds and EventKind.FORWARD_SENT.value in kinds
    assert statuses == ["received", "assessed", "notice_sent", "removed"]
    # located by the demo's facts: the Netherlands, an AS number from the documentation range
    assert (where.country, where.asn, where.provider) == ("NL", 64499, "NL Demo Hosting B.V.")
    assert json.loads(where.facts)["country"]["source"] == "demo"


def test_the_partners_side_is_kept_beside_the_demo(demo: Demo) -> None:
    """The partner's own database: it took the item in, noticed NL Demo Hosting (in the demo's
    mailbox) and saw the page gone."""
    item = _forwarded(demo)
    assert demo.act is not None and demo.mailbox is not None
    path = partner_db(demo.services.settings.db)
    assert demo.act.partner_db == str(path) and path.is_file()
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(Item.url, Item.state, Takedown.state).join(Takedown, Takedown.item_id == Item.id)
            ).all()
            sender = conn.execute(text("SELECT sender FROM forwards_in")).scalars().all()
    finally:
        engine.dispose()
    assert [(r[0].split("/")[-1], r[2]) for r in rows] == [("abroad.html", "removed")]
    assert sender == ["meldpunt-demo"]
    assert any(NL_HOST[3] in to for to, _link in demo.mailbox.links())
    assert demo.act.forwarded_url.endswith("/act/abroad.html") and item > 0


def test_every_demo_provider_is_located_in_its_country(demo: Demo) -> None:
    """Loopback is "this machine" to the locator: the demo's own facts say where each provider is,
    and the nine-day story still routes each as before (Belgium is home: police due by rule)."""
    with demo.services.engine.connect() as conn:
        located = {(str(r[0]), str(r[1])) for r in conn.execute(select(Location.ip, Location.country))}
        police = {
            str(r[0]): str(r[1])
            for r in conn.execute(
                select(Item.url, Takedown.police).join(Takedown, Takedown.item_id == Item.id)
            )
        }
    assert located <= {(ip, facts[0]) for ip, facts in HOSTING_FACTS.items()}
    assert {c for _ip, c in located} == {"BE", "GB", "FR", "NL"}
    by_page = {url.split("/")[-1]: p for url, p in police.items()}
    assert by_page["stubborn.html"] == "referred"
    assert by_page["fresh.html"] in ("", "none", None)  # France: a notice, no police by rule


def test_the_demo_made_a_referral_that_verifies_and_leaves_cases_due(demo: Demo) -> None:
    assert demo.referral is not None
    made = referrals.list_referrals(demo.services)
    assert [r.reference for r in made] == [demo.referral]
    [view] = made
    assert view.created_by == "demo-senior"
    result = referrals.verify_package(demo.services, Path(view.path))
    assert result.ok, result
    due, total = referrals.due(demo.services)
    assert total >= 1 and due
    assert due[0].urgent  # the urgent report (hosted in Belgium at the time) comes first


@pytest.mark.slow
def test_the_forwarded_item_and_the_referrals_fit_a_phone_in_dutch(demo: Demo, tmp_path: Path) -> None:
    """At 390 px, without JavaScript, in Dutch, as demo-senior: the forwarded item's page and
    /referrals do not scroll sideways (screenshots in the test's tmp_path)."""
    need_browser()
    from playwright.sync_api import sync_playwright

    from meldpunt.demo.borders import serve

    item = _forwarded(demo)
    login = next(x for x in demo.logins if x.name == "demo-senior")
    served = serve(demo.services)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                context = browser.new_context(
                    java_script_enabled=False,
                    viewport={"width": 390, "height": 800},
                    extra_http_headers={"Accept-Language": "nl"},
                )
                page = context.new_page()
                staff_sign_in(page, served.url, login.name, DEMO_PASSWORD, login.code)
                page.goto(f"{served.url}/items/{item}")
                screenshot(page, "forwarded-item-390-nl")
                main = page.inner_text("main")
                assert f"Doorgestuurd naar {PARTNER_NAME}" in main
                assert "beoordeeld" in main and "verwijderd" in main
                assert page.evaluate("document.documentElement.scrollWidth") <= 390
                page.goto(f"{served.url}/referrals")
                screenshot(page, "referrals-390-nl")
                main = page.inner_text("main")
                assert "Doorverwijzingen naar de politie" in main and str(demo.referral) in main
                assert page.evaluate("document.documentElement.scrollWidth") <= 390
            finally:
                browser.close()
    finally:
        served.stop()


def test_the_demo_survivor_signs_in_and_reads_the_timeline(demo: Demo) -> None:
    """#12: the code and passphrase the banner prints open /survivor/case, whose timeline the real
    services wrote: the picture found at Elsewhere Hosting (country names, not codes), a notice,
    the forward to the Netherlands' hotline, removed; the statement PDF downloads."""
    import re

    import anyio.from_thread

    from meldpunt.web import create_app
    from tests.helpers.webclient import WebClient, token_of

    assert demo.act is not None and demo.act.survivor is not None
    case = demo.act.survivor
    with anyio.from_thread.start_blocking_portal() as portal:
        web = WebClient.on(portal, create_app(demo.services))
        form = web.get("/survivor/sign-in?lang=en")
        data = {"token": token_of(form.text), "lang": "en", "code": case.code, "passphrase": case.passphrase}
        signed = web.post("/survivor/sign-in", data=data)
        assert signed.status_code == 303, signed.text
        page = web.get(signed.headers["location"])
        assert page.status_code == 200
        kinds = re.findall(r'data-kind="([a-z_]+)"', page.text)
        for fact in ("found", "notice_sent", "forwarded", "removed"):
            assert fact in kinds, (fact, kinds)
        # per finding, in order: found before its notice, the notice before its removal
        assert kinds.index("found") < kinds.index("notice_sent") < kinds.index("removed")
        assert "elsewhere.demo.test (hosting country: United Kingdom)" in page.text
        assert "partner hotline (country: Netherlands)" in page.text and "http://" not in page.text
        fr = web.get("/survivor/case?lang=fr").text
        assert "Royaume-Uni" in fr and "Pays-Bas" in fr
        pdf = web.get("/survivor/case/statement.pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_the_banner_says_where_to_look(tmp_path: Path) -> None:
    """The forwarded item, the forwards, the partner's database and /referrals, each line whole."""
    import io
    from typing import Any, cast

    from rich.console import Console

    from meldpunt.cli.demo import print_banner
    from meldpunt.demo.acting import ActDemo, Mailbox
    from meldpunt.demo.run import DemoLogin
    from meldpunt.demo.survivor import PASSPHRASE, SurvivorDemo

    base = "http://127.0.0.1:8000"
    act = ActDemo(
        webs=[],
        story=["a line"],
        forwarded_item=5,
        partner_db=str(tmp_path / "demo.db.partner.db"),
        survivor=SurvivorDemo(1, "ABCD-EFGH-IJKL-MNOP-QRST-UVWX", PASSPHRASE, 3),
    )
    demo = Demo(
        services=cast(Any, None),
        web=cast(Any, type("Web", (), {"base": "http://127.0.0.1:45678"})()),
        token="mp_x",
        receipts=["K7QX-4M2P-9RTA"],
        logins=[DemoLogin("demo-senior", "senior", "p" * 20, "A" * 32, "123456")],
        mailbox=Mailbox(tmp_path / "mailbox"),
        act=act,
        referral="RF-20261201-ABCDEF",
    )
    out = io.StringIO()
    print_banner(Console(file=out, width=80, color_system=None), demo, tmp_path / "demo.db", base)
    lines = out.getvalue().splitlines()
    for wanted in (
        f"{base}/items/5",
        f"{base}/act/forwards",
        str(tmp_path / "demo.db.partner.db"),
        f"{base}/referrals  (package RF-20261201-ABCDEF made by demo-senior",
        f"{base}/survivor/sign-in  code ABCD-EFGH-IJKL-MNOP-QRST-UVWX  passphrase {PASSPHRASE}",
    ):
        assert any(wanted in line for line in lines), wanted
