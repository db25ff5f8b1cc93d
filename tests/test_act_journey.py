"""The whole locate-and-act loop of #10 in a real browser, on real components: a benign page on a
loopback "hosting provider" is reported; the walk finds a new image; an analyst signs in (password
and TOTP) in Chromium and classifies it; the takedown is located and routed to the provider's abuse
contact; its notice collects for the batching window, then arrives at a real SMTP server; the
provider follows the notice's link in a browser without JavaScript and marks the URL removed; the
re-checks confirm it; the reporter's status page says "removed" (en, nl, fr) and the analyst's item
page shows the whole action timeline.

A second page with a copy of the image, reported an hour later, is known from the hotline's own
bank (no analyst looks at it) and joins the same notice: one e-mail for the two URLs.

The web app runs in-process (uvicorn in a thread) on the same ``Services`` — and so the same
``ManualClock`` — as the ticks and jobs the test settles, so a day of batching passes in a moment.
Skipped when Chromium or Playwright is missing, unless MELDPUNT_REQUIRE_BROWSER=1. Every image is a
benign generated scene.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from sqlalchemy import select

from meldpunt.act.contacts import add_contact
from meldpunt.act.ticks import settle as settle_here
from meldpunt.audit import entries as audit_entries
from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock
from meldpunt.pipeline.intake import ReportIn, submit_report
from meldpunt.settings import (
    LocateSettings,
    MailSettings,
    NoticeSettings,
    Settings,
    TriageSettings,
)
from meldpunt.store.acting import Notice, NoticeItem, Takedown
from meldpunt.store.reports import Item
from tests.helpers.browser import ARGS, CHROMIUM, need_browser, screenshot
from tests.helpers.hosting import Hosting
from tests.helpers.imagegen import scene
from tests.helpers.smtp import SmtpSink, _free_port

PASSWORD = "a long benign test passphrase 42"
HOST = "photos.hosting.test"
ABUSE = "abuse@hosting.test"
PAGE = "/albums/valley.html"
COPY_PAGE = "/albums/copy-of-valley.html"
#: what the clock moves between the steps (the figures the test records)
COPY_AFTER = timedelta(hours=1)  # the second report, after the first was classified
PROVIDER_TAKES = timedelta(hours=3)  # from the notice to the provider's answer
LINK_RE = re.compile(r"(https?://\S+/provider/\S+)")


def _jpeg() -> bytes:
    out = io.BytesIO()
    scene(20261201, 640, 480).save(out, format="JPEG", quality=90)
    return out.getvalue()


@dataclass
class Journey:
    services: Services
    clock: ManualClock
    hosting: Hosting
    base: str
    shots: Path

    def minutes(self, start: datetime, end: datetime) -> int:
        return int((end - start).total_seconds() // 60)

    def takedowns(self) -> list[Any]:
        with self.services.engine.connect() as conn:
            return list(conn.execute(select(Takedown).order_by(Takedown.id)).all())

    def notices(self) -> list[Any]:
        with self.services.engine.connect() as conn:
            return list(conn.execute(select(Notice).order_by(Notice.id)).all())

    def item_state(self, item_id: int) -> str:
        with self.services.engine.connect() as conn:
            return str(conn.execute(select(Item.state).where(Item.id == item_id)).scalar_one())


@pytest.fixture
def journey(sqlite_db: str, smtp_sink: SmtpSink, tmp_path: Path) -> Iterator[Journey]:
    need_browser()
    import uvicorn

    from meldpunt.web import create_app

    valley = b'<img src="/albums/valley.jpg" alt="">'
    pages = {
        PAGE: b"<!doctype html><h1>Valley</h1>" + valley,
        COPY_PAGE: b"<!doctype html><h1>Copy</h1>" + valley,
    }
    hosting = Hosting(HOST, pages, "/albums/valley.jpg", _jpeg()).start()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(
        db=sqlite_db,
        fetch_allowed_networks="127.0.0.0/8",  # the provider's server is on loopback
        triage=TriageSettings(second_opinion=False),
        locate=LocateSettings(rdap=False),  # no network: the embedded geo data only
        mail=MailSettings(
            smtp_host=smtp_sink.host,
            smtp_port=smtp_sink.port,
            sender="ntd@hotline.test",
            reply_to="ntd@hotline.test",
            public_url=base,
        ),
        notice=NoticeSettings(quiet_weekdays=(), holidays=()),
    )
    # the clock starts at the real now: the analyst's authenticator app (pyotp) knows no other
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    services = Services(settings, clock, resolver=hosting.resolve)
    server = uvicorn.Server(
        uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    shots = Path(os.environ.get("MELDPUNT_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    try:
        yield Journey(services, clock, hosting, base, shots)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        hosting.stop()
        services.close()


def settle(services: Services) -> int:
    """``act.ticks.settle`` in a thread of its own: the walk's fetcher runs an asyncio loop, and
    the thread driving Playwright's sync API already has one running."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(settle_here, services).result()


def _enrol(j: Journey, name: str, role: str) -> pyotp.TOTP:
    """An account with its authenticator app set up (enrolled with the code of the step before
    the clock's: the sign-in's code is then not a replay)."""
    accounts = j.services.accounts()
    accounts.create_user(name, role, PASSWORD)
    info = accounts.user(name)
    assert info is not None
    secret = accounts.begin_enrolment(info.id)
    assert secret is not None
    app = pyotp.TOTP(secret)
    assert accounts.finish_enrolment(info.id, app.at(j.clock.now() - timedelta(seconds=30))) is not None
    return app


def _sign_in(page: Any, j: Journey, name: str, app: pyotp.TOTP, start: str) -> None:
    """Open ``start``; signed out, it sends us to the sign-in: password, then the code the app
    shows at the clock's time; and back to ``start``."""
    page.goto(f"{j.base}{start}")
    assert "/login" in page.url, page.url
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    assert "/login/totp" in page.url, page.url
    page.get_by_label(re.compile("6-digit code")).fill(app.at(j.clock.now()))
    page.get_by_role("button", name="Sign in").click()
    assert page.url == f"{j.base}{start}", page.url


def _shoot(page: Any, j: Journey, name: str, selector: str | None = None) -> None:
    """Screenshots at 1280 and 390 px (the page, or one of its parts); at 390 px nothing may
    stick out sideways."""
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(page.locator(selector) if selector else page, f"{name}-{width}")
        if width == 390:
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= 390, f"{name}: {wide} px wide at 390 px"
    page.set_viewport_size({"width": 1280, "height": 900})


@pytest.mark.slow
def test_report_classify_notice_provider_answer_recheck_removed(
    journey: Journey, smtp_sink: SmtpSink
) -> None:
    from playwright.sync_api import sync_playwright

    j = journey
    clock = j.clock
    add_contact(
        j.services,
        {
            "scope": "network",
            "match": "127.0.0.1/32",
            "name": "Hosting Test BV",
            "channel": "email",
            "address": ABUSE,
            "language": "en",
        },
        actor="sara",
    )
    ana = _enrol(j, "ana", "analyst")

    # 1. the report, and the walk: a new image, so an analyst must look
    reported_at = clock.now()
    receipt = submit_report(j.services, ReportIn(urls=[j.hosting.url(PAGE)]))
    [item_id] = receipt.item_ids
    settle(j.services)
    assert j.item_state(item_id) == "needs_review"

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            # 2. the analyst classifies it in the browser
            analyst = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            _sign_in(analyst, j, "ana", ana, f"/items/{item_id}")
            assert HOST in analyst.inner_text("main")
            analyst.get_by_label(re.compile("^Baseline")).check()
            analyst.get_by_label("Prepubescent", exact=True).check()
            analyst.get_by_role("button", name="Save classification").click()
            assert "Classification saved." in analyst.inner_text("main")

            # 3. the takedown: located, routed to the contact, collecting into a notice
            settle(j.services)
            [td] = j.takedowns()
            assert td.item_id == item_id and td.state == "to_notice", td.state
            [notice] = j.notices()
            assert notice.state == "collecting" and notice.address == ABUSE
            assert smtp_sink.received == []
            # an hour later a copy of the image on another page: known from the own bank (nobody
            # looks at it), found illegal by the bank entry's label, into the same notice
            clock.advance(COPY_AFTER.total_seconds())
            copy = submit_report(j.services, ReportIn(urls=[j.hosting.url(COPY_PAGE)]))
            [copy_id] = copy.item_ids
            settle(j.services)
            assert j.item_state(copy_id) == "known"
            assert [t.item_id for t in j.takedowns()] == [item_id, copy_id]
            [notice] = j.notices()
            with j.services.engine.connect() as conn:
                listed = conn.execute(
                    select(NoticeItem.takedown_id).where(NoticeItem.notice_id == notice.id)
                ).all()
            assert len(listed) == 2
            # the batching window: nothing a minute before it closes, the notice at its end
            opened = notice.opened_at.replace(tzinfo=UTC)
            window = timedelta(hours=j.services.settings.notice.batch_hours)
            clock.advance((opened + window - clock.now()).total_seconds() - 60)
            settle(j.services)
            assert smtp_sink.received == []
            clock.advance(60)
            settle(j.services)
            [mail] = smtp_sink.to(ABUSE)
            [notice] = j.notices()
            sent_at = notice.sent_at.replace(tzinfo=UTC)
            assert sent_at == opened + window

            # what the provider gets: the reference, both URLs, the image's hashes, no media
            text = mail.text
            assert notice.reference in mail.subject and notice.reference in text
            assert j.hosting.url(PAGE) in text and j.hosting.url(COPY_PAGE) in text
            assert hashlib.sha256(j.hosting.image).hexdigest() in text
            assert hashlib.md5(j.hosting.image).hexdigest() in text
            assert list(mail.message.iter_attachments()) == []
            assert not any(part.get_content_maintype() == "image" for part in mail.message.walk())
            assert mail.message["Reply-To"] == "ntd@hotline.test"
            found = LINK_RE.search(text)
            assert found, text
            link = found.group(1)
            assert link.startswith(f"{j.base}/provider/")

            # 4. three hours later the provider takes both pages down and says so, without JavaScript
            clock.advance(PROVIDER_TAKES.total_seconds())
            settle(j.services)  # a scheduled re-check may come in between: still online
            j.hosting.gone |= {PAGE, COPY_PAGE}
            provider_ctx = browser.new_context(java_script_enabled=False)
            provider = provider_ctx.new_page()
            provider.goto(link)
            assert notice.reference in provider.inner_text("main")
            _shoot(provider, j, "provider")
            answered_at = clock.now()
            for _ in range(2):
                provider.get_by_role("button", name="It is removed").first.click()
                assert "You told us it is removed." in provider.inner_text("main")
                provider.goto(link)
            assert provider.get_by_role("button", name="It is removed").count() == 0
            _shoot(provider, j, "provider-answered")
            provider_ctx.close()

            # the re-checks: three misses, miss_spacing_minutes apart, make it removed
            spacing = j.services.settings.recheck.miss_spacing_minutes
            misses = j.services.settings.recheck.removal_misses
            for n in range(1, misses + 1):
                settle(j.services)
                states = {t.state for t in j.takedowns()}
                if n < misses:
                    assert states == {"noticed"} and {t.misses for t in j.takedowns()} == {n}
                    clock.advance(spacing * 60)
            assert states == {"removed"}
            first, second = j.takedowns()
            # time to removal, to the minute: from the first of the misses (the answer's re-check)
            assert first.removed_at.replace(tzinfo=UTC) == answered_at
            assert first.minutes_from_notice == j.minutes(sent_at, answered_at)
            assert first.minutes_from_notice == PROVIDER_TAKES.total_seconds() // 60
            assert first.minutes_from_report == j.minutes(reported_at, answered_at)
            assert second.minutes_from_notice == first.minutes_from_notice
            assert second.minutes_from_report == first.minutes_from_report - COPY_AFTER.total_seconds() // 60
            print(
                f"\njourney figures: notice of {len(listed)} URLs sent "
                f"{j.minutes(opened, sent_at)} min after it opened (batch_hours "
                f"{j.services.settings.notice.batch_hours:g}); removed {first.minutes_from_notice} min "
                f"from the notice, {first.minutes_from_report} and {second.minutes_from_report} min "
                f"from the reports; confirmed by {misses} misses {spacing} min apart"
            )

            # 5. the reporter's status page says removed, in en, nl and fr
            reporter_ctx = browser.new_context(java_script_enabled=False)
            reporter = reporter_ctx.new_page()
            for lang, words in (
                ("en", "The material you reported has been removed."),
                ("nl", "Het materiaal dat u meldde is verwijderd."),
                ("fr", "Le contenu que vous avez signalé a été retiré."),
            ):
                reporter.goto(f"{j.base}/status/{receipt.code}?lang={lang}")
                assert reporter.get_attribute("html", "lang") == lang
                assert words in reporter.inner_text("main"), reporter.inner_text("main")
                _shoot(reporter, j, f"status-{lang}")
            reporter_ctx.close()

            # the analyst's item page: the session ended with the clock's day; sign in again
            _sign_in(analyst, j, "ana", ana, f"/items/{item_id}")
            action = analyst.inner_text("section.act-panel")
            assert "removed" in analyst.inner_text("#act-state").lower()
            assert ABUSE in action
            for line in (
                "Found illegal: a takedown was opened.",
                "Located.",
                "Notice sent.",
                "The provider says it is removed.",
                "Checked: not found.",
                "Removed.",
            ):
                assert line in action, (line, action)
            # its own lines of the notice it shares with the copy, once each
            assert action.count("Notice sent.") == action.count("The provider says it is removed.") == 1
            assert action.count("Checked: not found.") == misses
            assert "The notice was closed." in action
            hosting = analyst.inner_text("section.ws-hosting")
            assert "127.0.0.1" in hosting
            _shoot(analyst, j, "item-hosting", "section.ws-hosting")
            _shoot(analyst, j, "item-action", "section.act-panel")
            _shoot(analyst, j, "item")
        finally:
            browser.close()

    with j.services.engine.connect() as conn:
        actions = [(e.actor, e.action) for e in audit_entries(conn)]
    assert ("ana", "item.classify") in actions
    assert ("sara", "contact.add") in actions


def test_an_items_timeline_shows_its_own_lines_of_a_shared_notice(db_url: str, smtp_sink: SmtpSink) -> None:
    """Regression (found by the journey): a notice batches several items, and an item's timeline
    showed every item's lines of it — two "Notice sent.", and "The provider says it is removed."
    for the other URL. Now: its own lines, and the notice's own (closed), said as the notice's."""
    from meldpunt.act.notice_answers import provider_answer
    from meldpunt.act.routing import timeline_of
    from meldpunt.web.act_routing import panel
    from meldpunt.web.i18n import Translator
    from tests.helpers.notices import link_of, world

    w = world(db_url, smtp_sink, quiet_weekdays=())
    try:
        w.contact("alpha")
        first = w.takedown("alpha", "http://a.example/one")
        second = w.takedown("alpha", "http://a.example/two")
        settle_here(w.services)
        w.advance(24)
        settle_here(w.services)
        [message] = smtp_sink.received
        _, token = link_of(message)
        provider_answer(w.services, token, second, "removed")
        w.remove(first)
        w.remove(second)
        settle_here(w.services)
        item_one, item_two = (w.takedown_row(t).item_id for t in (first, second))

        def kinds(item_id: int) -> list[str]:
            return [e.kind for e in timeline_of(w.services, item_id)]

        assert kinds(item_one).count("notice_sent") == 1
        assert "provider_removed" not in kinds(item_one)
        assert kinds(item_two).count("provider_removed") == 1
        assert kinds(item_one).count("closed") == kinds(item_two).count("closed") == 1
        words = panel(w.services)(item_one, "analyst", Translator("en"))
        assert words is not None
        assert words["events"][-1]["words"] == "The notice was closed."
        nl = panel(w.services)(item_one, "analyst", Translator("nl"))
        assert nl is not None and nl["events"][-1]["words"] == "De melding werd afgesloten."
    finally:
        w.services.close()
