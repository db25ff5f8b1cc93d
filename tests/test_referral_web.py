"""Police referrals in the workspace (SQLite and PostgreSQL): who may see, make and download
packages; the due list urgent first; a senior makes one from the list and from the item page; the
police liaison downloads the zip (audited) and sees facts, never media; the page in nl and fr; and
at 390 px in Chromium."""

from __future__ import annotations

import io
import re
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import pytest

from meldpunt.act import referrals
from meldpunt.bootstrap import Services
from meldpunt.clock import SystemClock
from meldpunt.domain.acting import TakedownState
from meldpunt.domain.reports import ItemState
from meldpunt.referral import verify
from meldpunt.settings import Settings
from meldpunt.web import create_app
from tests.helpers.acting import seed_item, seed_location, seed_takedown
from tests.helpers.browser import ARGS, CHROMIUM, need_browser, screenshot, staff_sign_in
from tests.helpers.referral import seed_classified
from tests.helpers.workspace import Workspace, _workspace


@pytest.fixture
def ws(db_url: str) -> Iterator[Workspace]:
    with ExitStack() as stack:
        yield _workspace(db_url, stack)


def _sv(ws: Workspace) -> Services:
    services: Services = ws.staff.app.state.ctx.services
    return services


def _due(
    ws: Workspace, name: str, *, urgent: bool, hours: int, state: ItemState = ItemState.CLASSIFIED
) -> int:
    engine = ws.world.engine
    at = _sv(ws).clock.now() - timedelta(hours=hours)
    item_id, _ = seed_item(
        engine, f"https://files.example/{name}/index.html", now=at, urgent=urgent, state=state
    )
    seed_classified(engine, item_id, now=at, seed=name)
    loc = seed_location(engine, item_id, now=at, country="NL", provider="Example Hosting")
    seed_takedown(engine, item_id, now=at, state=TakedownState.NOTICED, location_id=loc, police="due")
    return item_id


def _form_token(html: str, action: str) -> str:
    m = re.search(
        rf'action="{re.escape(action)}"[^>]*>\s*<input type="hidden" name="token" value="([^"]+)"', html
    )
    assert m, f"no form posting to {action}"
    return m.group(1)


def test_police_see_facts_and_download_but_do_not_make_packages(ws: Workspace) -> None:
    old = _due(ws, "old", urgent=False, hours=48)
    urgent = _due(ws, "urgent", urgent=True, hours=1)
    made = referrals.create(_sv(ws), [old], by="sam")
    police = ws.user("pol", "police")
    page = police.get("/referrals")
    assert page.status_code == 200
    html = page.text
    assert html.index(f'id="due-{urgent}"') < html.index('id="made"')
    assert "https://files.example/urgent/index.html" in html
    assert "<img" not in html and "/media/" not in html  # facts and hashes, never media
    assert 'name="item"' not in html  # no choosing: the police do not make packages
    assert made.referral.reference in html
    assert 'href="/referrals"' in html  # in the navigation
    tok = _form_token(html, f"/referrals/{made.referral.id}/download")
    r = police.post(f"/referrals/{made.referral.id}/download", data={"token": tok})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/zip"
    assert f'filename="{made.referral.reference}.zip"' in r.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert f"{made.referral.reference}/manifest.json" in z.namelist()
    (Path(made.package.folder).parent / "downloaded.zip").write_bytes(r.content)
    assert verify(Path(made.package.folder).parent / "downloaded.zip", referrals.accepted_keys(_sv(ws))).ok
    [(actor, subject, _)] = ws.audit("referral.download")
    assert actor == "pol" and subject == f"referral:{made.referral.reference}"
    assert "downloaded 1 time, last by pol" in police.get("/referrals").text
    # the police cannot make one
    assert police.post("/referrals", data={"token": tok, "item": str(urgent)}).status_code == 403
    assert police.post(f"/items/{urgent}/referral", data={"token": tok}).status_code == 403
    # a forged token downloads nothing
    assert police.post(f"/referrals/{made.referral.id}/download", data={"token": "forged"}).status_code == 400
    assert police.post("/referrals/99999/download", data={"token": tok}).status_code == 404
    assert len(ws.audit("referral.download")) == 1


def test_an_analyst_may_not_open_or_download(ws: Workspace) -> None:
    item = _due(ws, "a", urgent=False, hours=3)
    made = referrals.create(_sv(ws), [item], by="sam")
    analyst = ws.user("ana", "analyst")
    assert analyst.get("/referrals").status_code == 403
    assert analyst.post(f"/referrals/{made.referral.id}/download", data={"token": "x"}).status_code == 403
    assert 'href="/referrals"' not in analyst.get("/me").text
    assert ws.audit("referral.download") == []


def test_a_senior_makes_packages_from_the_due_list_and_the_item_page(ws: Workspace) -> None:
    a = _due(ws, "a", urgent=True, hours=2)
    b = _due(ws, "b", urgent=False, hours=30)
    c = _due(ws, "c", urgent=False, hours=10, state=ItemState.NEEDS_REVIEW)
    senior = ws.user("sam", "senior")
    html = senior.get("/referrals").text
    assert html.index(f'id="due-{a}"') < html.index(f'id="due-{b}"') < html.index(f'id="due-{c}"')
    tok = _form_token(html, "/referrals")
    assert senior.post("/referrals", data={"token": tok}).headers["location"] == "/referrals?msg=none"
    assert senior.post("/referrals", data={"token": tok, "item": "x1"}).status_code == 400
    assert senior.post("/referrals", data={"token": "forged", "item": str(a)}).status_code == 400
    r = senior.post("/referrals", data={"token": tok, "item": [str(a), str(b)]})
    assert r.status_code == 303 and "msg=created" in r.headers["location"]
    [made] = referrals.list_referrals(_sv(ws))
    assert made.items == (a, b) and made.created_by == "sam" and not made.with_media
    [(actor, _, details)] = ws.audit("referral.create")
    assert actor == "sam" and details["items"] == [a, b]
    listed = senior.get("/referrals").text
    assert f'id="due-{a}"' not in listed and f'id="due-{c}"' in listed
    assert "The package is made and signed" in senior.get("/referrals?msg=created").text
    # from the item page: the button, then the package listed there and the timeline line
    page = senior.get(f"/items/{c}").text
    assert "Make a police referral package for this item" in page
    item_tok = _form_token(page, f"/items/{c}/referral")
    r = senior.post(f"/items/{c}/referral", data={"token": item_tok, "with_media": "1"})
    assert r.status_code == 303
    again = senior.get(f"/items/{c}").text
    ref = referrals.for_item(_sv(ws), c)[0]
    assert ref.reference in again and ref.with_media
    assert f"Referred to the police: package {ref.reference}." in again
    assert senior.post("/items/999999/referral", data={"token": item_tok}).status_code == 400
    assert referrals.due(_sv(ws))[1] == 0


def test_the_page_speaks_dutch_and_french(ws: Workspace) -> None:
    _due(ws, "a", urgent=True, hours=2)
    senior = ws.user("sam", "senior")
    nl = senior.get("/referrals", headers={"Accept-Language": "nl"}).text
    assert "Doorverwijzingen naar de politie" in nl and "Eén pakket maken van de aangevinkte zaken" in nl
    fr = senior.get("/referrals", headers={"Accept-Language": "fr"}).text
    assert "Signalements à la police" in fr and "Créer un dossier des cas cochés" in fr


@pytest.mark.slow
def test_the_referrals_page_fits_a_phone(sqlite_db: str, tmp_path: Path) -> None:
    """At 390 px, without JavaScript, the due list and the packages do not scroll sideways."""
    need_browser()
    import uvicorn
    from playwright.sync_api import sync_playwright

    from meldpunt.demo.run import DEMO_PASSWORD, demo_accounts
    from meldpunt.settings import WebSettings

    services = Services(Settings.from_env({}, db=sqlite_db, web=WebSettings(secret="s")), SystemClock())
    try:
        now = services.clock.now()
        for n in range(3):
            item_id, _ = seed_item(
                services.engine,
                f"https://files.example/{'very-long-path-segment-' * 6}{n}.html",
                now=now,
                urgent=n == 0,
            )
            seed_classified(services.engine, item_id, now=now, seed=str(n))
            seed_takedown(services.engine, item_id, now=now, police="due")
        referrals.create(services, [1], by="demo-senior")
        login = next(a for a in demo_accounts(services) if a.role == "senior")
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
                    context = browser.new_context(
                        java_script_enabled=False, viewport={"width": 390, "height": 800}
                    )
                    page = context.new_page()
                    staff_sign_in(page, base, login.name, DEMO_PASSWORD, login.code)
                    page.goto(f"{base}/referrals")
                    screenshot(page, "referrals-390")
                    assert "Police referrals" in page.inner_text("main")
                    assert page.evaluate("document.documentElement.scrollWidth") <= 390
                    page.check("#pick-2")
                    page.locator("form.ref-create button[type=submit]").click()
                    assert "The package is made and signed" in page.inner_text("main")
                finally:
                    browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    finally:
        services.close()
