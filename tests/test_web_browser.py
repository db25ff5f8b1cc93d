"""The public form in a real browser with JavaScript off (as in Tor Browser's safest mode): Debian's
Chromium driven by Playwright against the app served by uvicorn on loopback.

Skipped when Chromium or Playwright is missing, unless MELDPUNT_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meldpunt.bootstrap import Services
from meldpunt.pipeline.intake import list_items
from meldpunt.settings import Settings
from meldpunt.web import WebConfig, create_app, uvicorn_log_config
from tests.helpers.browser import ARGS, CHROMIUM, need_browser, screenshot, staff_sign_in
from tests.helpers.webclient import _database_text


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()}")


@pytest.fixture
def logs() -> _Records:
    """Every log record of the app and of uvicorn (access log included, were it on); attached by
    ``server`` once uvicorn has configured its loggers (which drops handlers added before)."""
    return _Records()


LOGGERS = ["", "uvicorn", "uvicorn.error", "uvicorn.access", "meldpunt"]


@pytest.fixture
def server(sqlite_db: str, logs: _Records) -> Iterator[tuple[str, Services]]:
    import uvicorn

    services = Services(Settings.from_env({}, db=sqlite_db))
    app = create_app(services, WebConfig(emergency_numbers=("112 (EU emergency number)",)))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        access_log=False,
        log_config=uvicorn_log_config(),
        log_level="warning",
    )
    for name in LOGGERS:
        logging.getLogger(name).addHandler(logs)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", services
    srv.should_exit = True
    thread.join(timeout=10)
    for name in LOGGERS:
        logging.getLogger(name).removeHandler(logs)
    services.close()


def test_report_in_dutch_with_javascript_off(
    server: tuple[str, Services], logs: _Records, tmp_path: Path
) -> None:
    need_browser()
    from playwright.sync_api import expect, sync_playwright

    base, services = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(java_script_enabled=False, locale="nl-NL")
            page = context.new_page()
            outside: list[str] = []
            page.on("request", lambda r: None if r.url.startswith(base) else outside.append(r.url))
            page.goto(f"{base}/", wait_until="load")
            assert page.locator("html").get_attribute("lang") == "nl"  # from Accept-Language
            assert "112 (Europees alarmnummer)" in page.inner_text(".emergency")
            screenshot(page, "form-nl")

            page.get_by_label("Webadressen (één per regel)").fill(
                "https://voorbeeld.invalid/pagina\nvoorbeeld.invalid/andere"
            )
            page.get_by_label("Een chat- of berichtenapp").check()
            page.get_by_label("Wilt u nog iets kwijt? (niet verplicht)").fill("Gezien in een groepsgesprek.")
            page.get_by_label("Dringend: een kind is nu in gevaar, of dit gebeurt live").check()
            # CSS alone shows the urgent advice once ticked (no JavaScript)
            assert page.locator(".urgent-now").is_visible()
            page.get_by_role("button", name="Melding versturen").click()
            page.wait_for_load_state("load")

            assert "/receipt/" in page.url and "lang=nl" in page.url
            expect(page.get_by_role("heading", name="Bedankt voor uw melding")).to_be_visible()
            code = page.inner_text(".code strong").strip()
            screenshot(page, "receipt-nl")
            assert re.fullmatch(r"[A-Z2-7]{5}(-[A-Z2-7]{5}){3}", code)
            assert "112 (Europees alarmnummer)" in page.inner_text(".emergency")

            page.get_by_role("link", name="Bekijk de status van deze melding").click()
            page.wait_for_load_state("load")
            assert page.url.startswith(f"{base}/status/{code}")
            assert "Wij hebben uw melding ontvangen." in page.inner_text("main")
            assert outside == []  # nothing was fetched from anywhere else
            assert context.cookies() == []  # and nothing was set
        finally:
            browser.close()

    items = list_items(services)
    assert {i.url for i in items} == {"https://voorbeeld.invalid/pagina", "http://voorbeeld.invalid/andere"}
    assert all(i.urgent for i in items)
    assert "127.0.0.1" not in _database_text(services)  # the reporter came from 127.0.0.1
    # the logs name the server's own address at most, never the browser's
    said = "\n".join(logs.lines).replace(base.removeprefix("http://"), "")
    assert "127.0.0.1" not in said, said


@pytest.mark.slow
def test_the_queue_and_an_item_page_fit_a_phone_in_french(
    server: tuple[str, Services], tmp_path: Path
) -> None:
    """At 390 px a senior's queue, item page, decisions and statistics do not scroll sideways: the
    menu and the queue's filter wrap, tables scroll in their own box, long addresses break."""
    need_browser()
    from playwright.sync_api import sync_playwright

    from meldpunt.demo.run import DEMO_PASSWORD, demo_accounts
    from meldpunt.pipeline.intake import ReportIn, submit_report

    base, services = server
    login = next(a for a in demo_accounts(services) if a.role == "senior")  # the longest menu
    long_path = "/gallery/" + "very-long-page-name-" * 4 + ".html"
    for i in range(3):
        submit_report(services, ReportIn(urls=[f"http://photos.example/{i}{long_path}"]))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(
                viewport={"width": 390, "height": 800}, extra_http_headers={"Accept-Language": "fr"}
            )
            page = context.new_page()
            staff_sign_in(page, base, login.name, DEMO_PASSWORD, login.code)
            for path in ("/queue", "/items/1", "/decisions", "/stats"):
                page.goto(f"{base}{path}")
                screenshot(page, f"phone-{path.strip('/').replace('/', '-')}")
                wide = page.evaluate("document.documentElement.scrollWidth")
                assert wide <= 390, f"{path} is {wide} px wide at 390 px: it scrolls sideways"
        finally:
            browser.close()


@pytest.mark.slow
def test_the_sign_in_page_after_too_many_attempts_in_dutch_on_a_phone(
    server: tuple[str, Services], tmp_path: Path
) -> None:
    """The throttled sign-in page says so in Dutch, as an error box, with fields as wide as the
    public form's (they were the browser's bare 170 px inputs), and does not scroll sideways."""
    need_browser()
    from playwright.sync_api import sync_playwright

    base, _ = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(
                java_script_enabled=False,
                viewport={"width": 390, "height": 800},
                extra_http_headers={"Accept-Language": "nl"},
            )
            page = context.new_page()
            for _ in range(WebConfig().login_rate_per_name + 1):
                page.goto(f"{base}/login")
                page.fill("#name", "somebody")
                page.fill("#password", "wrong")
                page.locator("main form button[type=submit]").first.click()
            screenshot(page, "login-throttled-nl")
            assert "Te veel aanmeldpogingen" in page.inner_text("[role=alert]")
            assert page.eval_on_selector("[role=alert]", "e => getComputedStyle(e).borderLeftWidth") != "0px"
            for field in ("#name", "#password"):
                assert page.eval_on_selector(field, "e => e.getBoundingClientRect().width") > 300
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
        finally:
            browser.close()
