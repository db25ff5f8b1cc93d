"""A survivor's whole journey (#12) in a real browser, on real components: a survivor registers two
benign generated images on ``/survivor/register`` in Chromium (hashed on the device); a loopback
"hosting provider" serves an edited copy of one (resized a little and re-encoded as JPEG, so only
PDQ can match); it is reported and walked; the survivor match links the item to the case; an
analyst classifies it in the browser; routing sends a notice to the provider's abuse address at a
real SMTP server; the provider removes the page and says so; the re-checks confirm it; the survivor
signs in again and the case timeline says, in Dutch, found -> notice sent -> removed. Every request
the survivor's browser made is recorded: none carries the pictures' bytes.

The web app runs in-process on the same ``Services`` and ``ManualClock`` as the ticks the test
settles. Screenshots at 390 px go to ``MELDPUNT_SCREENSHOTS`` when it is set. Every image is a benign generated scene.
"""

from __future__ import annotations

import base64
import io
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
from PIL import Image
from sqlalchemy import select

from meldpunt.act.contacts import add_contact
from meldpunt.act.ticks import settle as settle_here
from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock
from meldpunt.pipeline.intake import ReportIn, submit_report
from meldpunt.settings import LocateSettings, MailSettings, NoticeSettings, Settings, TriageSettings
from meldpunt.store.acting import Notice, Takedown
from meldpunt.store.reports import Item
from meldpunt.store.survivors import SurvivorLink
from tests.helpers.browser import ARGS, CHROMIUM, need_browser, screenshot
from tests.helpers.hosting import Hosting
from tests.helpers.imagegen import scene
from tests.helpers.smtp import SmtpSink, _free_port
from tests.helpers.survivorweb import case_code

PASSWORD = "a long benign test passphrase 42"
SURVIVOR_PASS = "my own quiet passphrase 7"
HOST = "pics.hosting.test"
ABUSE = "abuse@hosting.test"
PAGE = "/gallery/lake.html"
IMAGE = "/gallery/lake.jpg"
LINK_RE = re.compile(r"(https?://\S+/provider/\S+)")


def _pictures() -> dict[str, bytes]:
    """The survivor's two pictures: a PNG and a JPEG of two generated scenes."""
    out = {}
    for name, seed, fmt in (("lake.png", 20261202, "PNG"), ("forest.jpg", 20261203, "JPEG")):
        buf = io.BytesIO()
        scene(seed, 640, 480).save(buf, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))
        out[name] = buf.getvalue()
    return out


def _edited(original: bytes) -> bytes:
    """The copy online: resized a little and re-encoded, so no exact hash matches it."""
    img = Image.open(io.BytesIO(original)).convert("RGB").resize((600, 450), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=78)
    return buf.getvalue()


@dataclass
class Journey:
    services: Services
    clock: ManualClock
    hosting: Hosting
    base: str
    shots: Path
    pictures: dict[str, bytes]

    def takedowns(self) -> list[Any]:
        with self.services.engine.connect() as conn:
            return list(conn.execute(select(Takedown).order_by(Takedown.id)).all())

    def notices(self) -> list[Any]:
        with self.services.engine.connect() as conn:
            return list(conn.execute(select(Notice).order_by(Notice.id)).all())

    def item_state(self, item_id: int) -> str:
        with self.services.engine.connect() as conn:
            return str(conn.execute(select(Item.state).where(Item.id == item_id)).scalar_one())

    def shoot(self, page: Any, name: str) -> None:
        """At 390 px nothing may stick out sideways; a full-page screenshot for a person to look
        at when ``MELDPUNT_SCREENSHOTS`` is set."""
        page.set_viewport_size({"width": 390, "height": 844})
        screenshot(page, f"{name}-390")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, name


@pytest.fixture
def journey(sqlite_db: str, smtp_sink: SmtpSink, tmp_path: Path) -> Iterator[Journey]:
    need_browser()
    import uvicorn

    from meldpunt.web import create_app

    pictures = _pictures()
    page = f'<!doctype html><h1>Lake</h1><img src="{IMAGE}" alt="">'.encode()
    hosting = Hosting(HOST, {PAGE: page}, IMAGE, _edited(pictures["lake.png"])).start()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(
        db=sqlite_db,
        fetch_allowed_networks="127.0.0.0/8",
        triage=TriageSettings(second_opinion=False),
        locate=LocateSettings(rdap=False),
        mail=MailSettings(
            smtp_host=smtp_sink.host,
            smtp_port=smtp_sink.port,
            sender="ntd@hotline.test",
            reply_to="ntd@hotline.test",
            public_url=base,
        ),
        notice=NoticeSettings(quiet_weekdays=(), holidays=()),
    )
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))  # pyotp knows no other time
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
    shots = tmp_path / "shots"
    shots.mkdir()
    try:
        yield Journey(services, clock, hosting, base, shots, pictures)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        hosting.stop()
        services.close()


def settle(services: Services) -> int:
    """``act.ticks.settle`` in its own thread: Playwright's sync API already runs a loop here."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(settle_here, services).result()


def _enrol(j: Journey, name: str, role: str) -> pyotp.TOTP:
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
    page.goto(f"{j.base}{start}")
    assert "/login" in page.url, page.url
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label(re.compile("6-digit code")).fill(app.at(j.clock.now()))
    page.get_by_role("button", name="Sign in").click()
    assert page.url == f"{j.base}{start}", page.url


@pytest.mark.slow
def test_survivor_registers_on_the_device_and_sees_found_notice_removed(
    journey: Journey, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    j = journey
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
    for name, data in j.pictures.items():
        (tmp_path / name).write_bytes(data)
    requests: list[tuple[str, bytes]] = []

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            # 1. the survivor registers both pictures, hashed in the browser, in Dutch
            survivor_ctx = browser.new_context(viewport={"width": 390, "height": 844})
            survivor_ctx.on("request", lambda r: requests.append((r.url, r.post_data_buffer or b"")))
            survivor = survivor_ctx.new_page()
            survivor.goto(f"{j.base}/survivor/register?lang=nl")
            assert survivor.get_attribute("html", "lang") == "nl"
            survivor.wait_for_selector("#files:not([disabled])")
            survivor.set_input_files("#files", [str(tmp_path / n) for n in j.pictures])
            survivor.wait_for_selector("#send:not([disabled])", timeout=120_000)
            survivor.fill("#passphrase", SURVIVOR_PASS)
            survivor.fill("#passphrase2", SURVIVOR_PASS)
            j.shoot(survivor, "survivor-register")
            survivor.click("#send")
            survivor.wait_for_selector("#case-code")
            code = case_code(survivor.content())

            # 2. the edited copy is reported and walked: new to the hotline, linked to the case by PDQ
            receipt = submit_report(j.services, ReportIn(urls=[j.hosting.url(PAGE)]))
            [item_id] = receipt.item_ids
            settle(j.services)
            assert j.item_state(item_id) == "needs_review"
            with j.services.engine.connect() as conn:
                links = conn.execute(select(SurvivorLink.item_id, SurvivorLink.matched_by)).all()
            assert {(i, by) for i, by in links} == {(item_id, "pdq")}, links

            # 3. an analyst classifies it in the browser
            analyst = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            _sign_in(analyst, j, "ana", ana, f"/items/{item_id}")
            analyst.get_by_label(re.compile("^Baseline")).check()
            analyst.get_by_label("Prepubescent", exact=True).check()
            analyst.get_by_role("button", name="Save classification").click()
            assert "Classification saved." in analyst.inner_text("main")

            # 4. routed to the provider's abuse contact; the notice goes out when its batch closes
            settle(j.services)
            [td] = j.takedowns()
            assert td.item_id == item_id and td.state == "to_notice", td.state
            [notice] = j.notices()
            opened = notice.opened_at.replace(tzinfo=UTC)
            window = timedelta(hours=j.services.settings.notice.batch_hours)
            j.clock.advance((opened + window - j.clock.now()).total_seconds())
            settle(j.services)
            [mail] = smtp_sink.to(ABUSE)
            assert j.hosting.url(PAGE) in mail.text
            assert list(mail.message.iter_attachments()) == []
            found = LINK_RE.search(mail.text)
            assert found, mail.text

            # 5. the provider removes the page and says so; the re-checks confirm it
            j.clock.advance(3 * 3600)
            settle(j.services)  # a scheduled re-check comes in between: still online
            j.hosting.gone |= {PAGE, IMAGE}
            provider_ctx = browser.new_context(java_script_enabled=False)
            provider = provider_ctx.new_page()
            provider.goto(found.group(1))
            provider.get_by_role("button", name="It is removed").first.click()
            provider_ctx.close()
            spacing = j.services.settings.recheck.miss_spacing_minutes
            for n in range(j.services.settings.recheck.removal_misses):
                if n:
                    j.clock.advance(spacing * 60)
                settle(j.services)
            assert [t.state for t in j.takedowns()] == ["removed"]

            # 6. the survivor signs in again: found -> notice sent -> removed, in Dutch
            survivor_ctx.clear_cookies()
            survivor.goto(f"{j.base}/survivor/sign-in?lang=nl")
            survivor.fill("#code", code)
            survivor.fill("#passphrase", SURVIVOR_PASS)
            survivor.click("button[type=submit]")
            survivor.wait_for_selector("ol.timeline")
            assert "/survivor/case" in survivor.url
            kinds = survivor.eval_on_selector_all(
                "ol.timeline [data-kind]", "els => els.map(e => e.dataset.kind)"
            )
            # a re-check between the notice and the removal found it still online: said, in place
            assert [k for k in kinds if k != "still_online"] == ["found", "notice_sent", "removed"], kinds
            assert kinds.index("notice_sent") < kinds.index("still_online") < kinds.index("removed")
            text = survivor.inner_text("ol.timeline")
            assert f"Een van uw beelden is gevonden op {HOST}" in text, text
            assert "Er is een verzoek tot verwijdering gestuurd naar de hostingprovider" in text, text
            assert f"Het beeld is verwijderd van {HOST}." in text, text
            assert re.search(rf"Het beeld stond na \d+ dag(?:en)? nog online op {re.escape(HOST)}\.", text), (
                text
            )
            assert PAGE not in text and "http" not in text
            j.shoot(survivor, "survivor-timeline")
        finally:
            browser.close()

    # 7. no request of the survivor's browser carried the pictures
    assert any(url.endswith("/survivor/register") and body for url, body in requests)
    for data in j.pictures.values():
        middle = data[len(data) // 2 : len(data) // 2 + 48]
        for url, body in requests:
            assert data not in body and middle not in body, url
            assert base64.b64encode(middle)[:40] not in body, url
    print(f"\nsurvivor journey: {len(requests)} requests by the survivor's browser, none with image bytes")
