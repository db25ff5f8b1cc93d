"""The notice pages in a real browser (Debian chromium), without JavaScript: the provider follows
the link in the e-mail the SMTP sink received and marks a URL removed with a plain form post; the
staff pages and the provider page fit a 390 px phone in Dutch and French, a long URL wrapping."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

import pytest
import uvicorn

from meldpunt.act.context import utc
from meldpunt.act.ticks import settle
from meldpunt.web.i18n import catalog_ids
from tests.helpers.accounts import PASSWORD
from tests.helpers.browser import ARGS, CHROMIUM, need_browser
from tests.helpers.notices import World, link_of, world
from tests.helpers.smtp import SmtpSink, _free_port
from tests.helpers.staff import Staff, enrol

LONG_URL = "https://benign-example-gallery.test/albums/2026/landscapes/" + "valley-at-dawn-" * 8 + "x.html"
PHONES = (("nl", "nl-BE,nl;q=0.9"), ("fr", "fr-BE,fr;q=0.9"))


def _overflow(page: Any) -> int:
    """How many pixels the page sticks out sideways (0: it fits)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def _english_left(lang: str, text: str) -> list[str]:
    return [
        msgid
        for msgid, msgstr in catalog_ids(lang).items()
        if msgstr and " " in msgid and "{" not in msgid and len(msgid) >= 12
        if msgid in text and msgid not in msgstr
    ]


@pytest.fixture
def served(sqlite_db: str, smtp_sink: SmtpSink) -> Iterator[tuple[World, Staff, str]]:
    need_browser()
    w = world(sqlite_db, smtp_sink)
    w.contact("alpha")
    w.takedown("alpha", LONG_URL, media=3)
    w.takedown("alpha", "http://a.example/short")
    settle(w.services)
    w.advance(24)
    settle(w.services)
    with ExitStack() as stack:
        staff = Staff(w.services, stack)
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(staff.app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            yield w, staff, f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def test_the_provider_marks_removed_in_a_browser_without_javascript_on_a_phone(
    served: tuple[World, Staff, str], smtp_sink: SmtpSink, browser: Any
) -> None:
    w, _, base = served
    [message] = smtp_sink.received
    link, _ = link_of(message)
    path = link.replace("https://hotline.example", "")
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 800})
    page = context.new_page()
    try:
        for lang, accept in PHONES:
            page.set_extra_http_headers({"Accept-Language": accept})
            page.goto(f"{base}{path}")
            assert page.get_attribute("html", "lang") == lang
            assert _overflow(page) <= 0, lang
            assert not _english_left(lang, page.inner_text("body")), lang
        page.goto(f"{base}{path}?lang=en")
        page.get_by_role("button", name="It is removed").first.click()
        assert "your answer is recorded" in page.inner_text("main")
        assert "You told us it is removed." in page.inner_text("main")
        page.go_back()
        page.reload()
        assert page.get_by_role("button", name="It is removed").count() == 1  # one URL left to answer
    finally:
        context.close()
    soon = w.now + timedelta(hours=1)  # the world's scheduled re-checks are a month away
    [first] = [
        t
        for t in w.takedown_row_ids()
        if (at := w.takedown_row(t).next_check_at) is not None and utc(at) <= soon
    ]
    assert w.takedown_row(first).state == "noticed"  # the re-check decides; it is asked to look now


def test_staff_notice_pages_fit_a_phone_in_dutch_and_french(
    served: tuple[World, Staff, str], browser: Any
) -> None:
    w, staff, base = served
    staff.accounts.create_user("sara", "senior", PASSWORD)
    client = staff.client()
    enrol(staff, client, "sara")
    cookie = client.cookies.get("mp_staff")
    assert cookie
    [notice] = w.notices()
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 800})
    context.add_cookies([{"name": "mp_staff", "value": cookie, "url": base}])
    page = context.new_page()
    problems: list[str] = []
    try:
        for lang, accept in PHONES:
            page.set_extra_http_headers({"Accept-Language": accept})
            for where in ("/notices", "/overdue", f"/notices/{notice.id}"):
                response = page.goto(f"{base}{where}")
                assert response is not None and response.status == 200, (where, lang)
                if page.get_attribute("html", "lang") != lang:
                    problems.append(f"{lang} {where}: not in {lang}")
                if (wide := _overflow(page)) > 0:
                    problems.append(f"{lang} {where}: {wide} px too wide")
                if left := _english_left(lang, page.inner_text("body")):
                    problems.append(f"{lang} {where}: English left: {left}")
    finally:
        context.close()
    assert not problems, "\n".join(problems)
