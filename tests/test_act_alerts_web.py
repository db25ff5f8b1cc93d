"""Urgent alerts through the web: the public form's urgent box raises an alert (e-mail to on-call
#1 and the webhook in one settle), an analyst acknowledges it in the workspace (in-process client,
signed in) and it stops escalating; a senior marks an item urgent on its page; many urgent reports
from one client are taken but not as urgent (no address kept); the emergency numbers of the
hotline's country in nl, fr and en; and the alerts page in Chromium at 390 px."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from meldpunt.act import alerts
from meldpunt.act.ticks import settle
from meldpunt.audit import entries
from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock, SystemClock
from meldpunt.domain.reports import ItemState
from meldpunt.pipeline.intake import list_items
from meldpunt.settings import WebSettings
from meldpunt.web import create_app
from meldpunt.web.emergency import parse
from tests.helpers.acting import seed_item
from tests.helpers.alerts import START, Desk, HookServer, alert_events, alert_services, hook_server
from tests.helpers.browser import ARGS, CHROMIUM, need_browser, screenshot, staff_sign_in
from tests.helpers.smtp import SmtpSink, smtp_sink
from tests.helpers.staff import token
from tests.helpers.webclient import _database_text, form, receipt_code

__all__ = ["hook_server", "smtp_sink"]  # fixtures

ANN, BERT = "ann@hotline.example", "bert@hotline.example"
BELGIUM = (
    "112=EU emergency number",
    "101=Police",
    "116 000=en:Missing children (Child Focus)|nl:Vermiste kinderen (Child Focus)|fr:Enfants disparus (Child Focus)",
)


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as s:
        yield s


def _desk(
    db_url: str,
    stack: ExitStack,
    sink: SmtpSink | None,
    hooks: HookServer | None,
    web: WebSettings | None = None,
) -> tuple[Desk, Services, ManualClock]:
    services, clock = alert_services(db_url, sink, hooks, web=web or WebSettings(secret="test secret"))
    stack.callback(services.close)
    return Desk(services, stack), services, clock


def test_an_urgent_public_report_is_acknowledged_in_the_workspace_and_stops_escalating(
    db_url: str, stack: ExitStack, smtp_sink: SmtpSink, hook_server: HookServer
) -> None:
    desk, services, clock = _desk(db_url, stack, smtp_sink, hook_server)
    public = desk.client(("198.51.100.7", 5000))
    code = receipt_code(form(public, "nl", urls="http://127.0.0.1:9/live", urgent="1"))
    settle(services)
    [alert] = alerts.open_alerts(services.engine)
    assert len(smtp_sink.to(ANN)) == 1 and hook_server.bodies()[0]["level"] == 1 and code

    analyst = desk.user("ana", "analyst")
    clock.advance(3 * 60 + 20)
    page = analyst.get("/alerts")
    assert page.status_code == 200
    html = page.text
    assert f'id="alert-{alert.id}"' in html and f"ALERT-{alert.id}" in html
    assert "3 min ago" in html and "to Bert Backup" in html  # the timer and who is next
    assert 'http-equiv="refresh"' in html and 'data-seconds="400"' in html  # 6 min 40 s left
    assert "127.0.0.1:9" not in html  # the alert names the item, not the URL
    assert '<strong class="ws-count">(1)</strong>' in html  # the navigation's count

    refused = analyst.post(f"/alerts/{alert.id}/ack", data={"token": "forged"})
    assert refused.status_code == 400 and alerts.open_alerts(services.engine)
    r = analyst.post(f"/alerts/{alert.id}/ack", data={"token": token(html)})
    assert r.status_code == 303 and r.headers["location"].startswith("/alerts?msg=acknowledged")
    [done] = alerts.acknowledged_alerts(services.engine)
    assert done.acknowledged_by == "ana" and done.ack_seconds == 200
    after = analyst.get(r.headers["location"]).text
    assert "acknowledged by ana after 3 min" in after and "No open alerts." in after
    assert "ws-count" not in after

    clock.advance(3600)
    settle(services)
    assert smtp_sink.to(BERT) == [] and hook_server.bodies("escalated") == []
    assert [b["by"] for b in hook_server.bodies("acknowledged")] == ["ana"]
    assert "alert_acknowledged" in [e.kind for e in alert_events(services, alert.id)]
    with services.engine.connect() as conn:
        [audit] = list(entries(conn, action="alert.acknowledge"))
    assert audit.actor == "ana" and audit.details["ack_seconds"] == 200

    # a second acknowledgement (another tab) says who was first
    again = analyst.post(f"/alerts/{alert.id}/ack", data={"token": token(html)})
    assert again.status_code == 409 and "ana acknowledged this alert already." in again.text
    assert analyst.post("/alerts/999999/ack", data={"token": token(html)}).status_code == 404


def test_the_alerts_page_is_for_signed_in_staff_who_may_acknowledge(db_url: str, stack: ExitStack) -> None:
    desk, services, _ = _desk(db_url, stack, None, None)
    anonymous = desk.client()
    r = anonymous.get("/alerts")
    assert r.status_code in (302, 303) and "/login" in r.headers["location"]
    police = desk.user("pol", "police")
    page = police.get("/alerts", headers={"Accept-Language": "fr"})
    assert page.status_code == 200 and "Aucune alerte ouverte." in page.text
    assert "MELDPUNT_ALERT_ONCALL" not in page.text  # on-call people are configured
    item_id, _ = seed_item(services.engine, "http://x.test/p", now=START, urgent=True)
    settle(services)
    listed = police.get("/alerts").text
    assert f'href="/police/items/{item_id}"' in listed and f'href="/items/{item_id}"' not in listed
    urgent = police.get("/police/urgent").text  # the police's urgent list says which are alerted
    assert 'href="/alerts#alert-1">ALERT-1</a> · waiting for a person' in urgent
    admin = desk.user("adm", "admin")
    assert admin.get("/alerts").status_code == 403


def test_a_senior_marks_an_item_urgent_on_its_page(
    db_url: str, stack: ExitStack, smtp_sink: SmtpSink, hook_server: HookServer
) -> None:
    desk, services, _ = _desk(db_url, stack, smtp_sink, hook_server)
    item_id, _ = seed_item(services.engine, "http://x.test/a", now=START, state=ItemState.NEEDS_REVIEW)
    other, _ = seed_item(services.engine, "http://x.test/b", now=START, state=ItemState.NEEDS_REVIEW)
    analyst = desk.user("ana", "analyst")
    senior = desk.user("sam", "senior")
    seen = analyst.get(f"/items/{other}").text  # opening it claims it: another item for the senior
    assert f"Item {other}" in seen and "Mark urgent and alert the on-call people" not in seen
    assert analyst.post(f"/items/{item_id}/alert", data={"token": "x"}).status_code == 403
    page = senior.get(f"/items/{item_id}", headers={"Accept-Language": "nl"}).text
    assert "Als dringend markeren en de mensen van wacht alarmeren" in page
    raise_token = re.search(
        r'action="/items/\d+/alert"[^>]*>\s*<input type="hidden" name="token" value="([^"]+)"', page
    )
    assert raise_token
    assert senior.post(f"/items/{item_id}/alert", data={"token": "forged"}).status_code == 400
    r = senior.post(f"/items/{item_id}/alert", data={"token": raise_token.group(1), "reason": "live now"})
    assert r.status_code == 303 and "msg=raised" in r.headers["location"]
    settle(services)
    assert len(smtp_sink.to(ANN)) == 1 and "live now" not in smtp_sink.to(ANN)[0].text
    shown = senior.get(f"/items/{item_id}").text
    assert "nobody has acknowledged it yet" in shown and "Mark urgent" not in shown
    listed = senior.get("/alerts").text
    assert "live now" in listed and "sam" in listed
    assert senior.post("/items/999999/alert", data={"token": raise_token.group(1)}).status_code == 400


def test_too_many_urgent_reports_from_one_client_are_taken_but_not_urgent(
    db_url: str, stack: ExitStack, smtp_sink: SmtpSink
) -> None:
    web = WebSettings(secret="test secret", urgent_rate=2, emergency_numbers=BELGIUM)
    desk, services, _ = _desk(db_url, stack, smtp_sink, None, web)
    one, other = desk.client(("198.51.100.7", 5000)), desk.client(("203.0.113.9", 5000))
    locations = [
        form(one, "nl", urls=f"http://127.0.0.1:9/{n}", urgent="1").headers["location"] for n in range(3)
    ]
    assert ["urgent=1" in loc for loc in locations] == [True, True, False]
    assert "urgent=limited" in locations[2]
    receipt = one.get(locations[2]).text
    assert "niet als dringend gemarkeerd" in receipt and "101" in receipt  # the numbers all the same
    assert "urgent=1" in form(other, "nl", urls="http://127.0.0.1:9/x", urgent="1").headers["location"]
    # a report that is not urgent is not counted, nor limited
    plain = form(one, "nl", urls="http://127.0.0.1:9/plain")
    assert plain.status_code == 303 and "urgent" not in plain.headers["location"]
    items = {i.url: i.urgent for i in list_items(services)}
    assert items == {
        "http://127.0.0.1:9/0": True,
        "http://127.0.0.1:9/1": True,
        "http://127.0.0.1:9/2": False,  # taken, nothing lost, not urgent
        "http://127.0.0.1:9/x": True,
        "http://127.0.0.1:9/plain": False,
    }
    limiter = desk.app.state.ctx.urgent_limit
    held = list(limiter.keys())
    assert len(held) == 2 and all(len(k) == 32 for k in held)  # keyed hashes, never an address
    assert "198.51.100.7" not in _database_text(services) and "203.0.113.9" not in _database_text(services)
    settle(services)
    assert len(alerts.open_alerts(services.engine)) == 3


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("nl", ["112 (Europees alarmnummer)", "101 (Politie)", "116 000 (Vermiste kinderen (Child Focus))"]),
        (
            "fr",
            ["112 (numéro d'urgence européen)", "101 (Police)", "116 000 (Enfants disparus (Child Focus))"],
        ),
        ("en", ["112 (EU emergency number)", "101 (Police)", "116 000 (Missing children (Child Focus))"]),
    ],
)
def test_the_emergency_numbers_of_the_country_in_the_pages_language(
    sqlite_db: str, stack: ExitStack, lang: str, expected: list[str]
) -> None:
    desk, _services, _ = _desk(
        sqlite_db, stack, None, None, WebSettings(secret="s", emergency_numbers=BELGIUM)
    )
    client = desk.client()
    page = client.get(f"/report?lang={lang}").text.replace("&#39;", "'")
    assert ", ".join(expected) in page  # in the urgent box's sentence
    receipt = client.get(form(client, lang, urls="http://127.0.0.1:9/a", urgent="1").headers["location"]).text
    text = re.sub(r"<[^>]+>", "", receipt).replace("&#39;", "'")
    for line in expected:
        assert line in text
    assert 'href="tel:116000"' in receipt and 'href="tel:101"' in receipt


def test_emergency_numbers_old_form_default_and_bad_entries() -> None:
    old = parse(("112 (EU emergency number)",))
    assert old[0].number == "" and old[0].text == "112 (EU emergency number)"
    assert [(n.number, n.labels) for n in parse(WebSettings().emergency_numbers)] == [
        ("112", {"": "EU emergency number"})
    ]
    assert parse(("+32 2 000=fr:Ligne|en:Line",))[0].labels == {"fr": "Ligne", "en": "Line"}
    for bad, says in [
        ("call-me=Police", "not a phone number"),
        ("101=de:Polizei", "not a language"),
        ("101=en:A|en:B", "two labels"),
    ]:
        with pytest.raises(ValueError, match=says):
            parse((bad,))


def test_a_bad_emergency_number_stops_the_app_at_start(sqlite_db: str) -> None:
    services = Services(alert_services(sqlite_db, None, None)[0].settings)
    try:
        with pytest.raises(ValueError, match=r"web\.emergency_numbers"):
            create_app(services, WebSettings(emergency_numbers=("police=Police",)))
    finally:
        services.close()


@pytest.mark.slow
def test_the_alerts_page_fits_a_phone(sqlite_db: str, tmp_path: Path) -> None:
    """At 390 px the alerts page (an open alert with its timer and button, an acknowledged one)
    does not scroll sideways, with JavaScript (the countdown runs) and without."""
    need_browser()
    import uvicorn
    from playwright.sync_api import sync_playwright

    from meldpunt.demo.run import DEMO_PASSWORD, demo_accounts

    services, _ = alert_services(sqlite_db, None, None, web=WebSettings(secret="s"))
    services = Services(services.settings, SystemClock())
    try:
        for n in range(2):
            item_id, _ = seed_item(
                services.engine, f"http://x.test/{n}", now=services.clock.now(), urgent=True
            )
            alerts.raise_alert(services, item_id, by="demo-senior", reason="a long reason " * 8)
        alerts.acknowledge(services, 1, by="demo-analyst")
        login = next(a for a in demo_accounts(services) if a.role == "analyst")
        app = create_app(services, services.settings.web)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    signed_in = None
                    for js in (True, False):
                        context = browser.new_context(
                            java_script_enabled=js,
                            viewport={"width": 390, "height": 800},
                            extra_http_headers={"Accept-Language": "nl"},
                            storage_state=signed_in,
                        )
                        page = context.new_page()
                        if signed_in is None:  # sign in once; the second context reuses the session
                            staff_sign_in(page, base, login.name, DEMO_PASSWORD, login.code)
                            signed_in = context.storage_state()
                        page.goto(f"{base}/alerts")
                        screenshot(page, f"alerts-390-js-{js}")
                        assert "Ik neem het op me" in page.inner_text("main")
                        assert page.evaluate("document.documentElement.scrollWidth") <= 390
                        countdown = page.inner_text(".countdown")
                        assert re.fullmatch(r"\d+:\d\d", countdown) if js else "min" in countdown
                        button = page.eval_on_selector(
                            ".alert-card button", "e => e.getBoundingClientRect().width"
                        )
                        assert button > 300  # a full-width button to press on a phone
                        context.close()
                finally:
                    browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    finally:
        services.close()
