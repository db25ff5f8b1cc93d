"""Every staff page, as each role sees it, in a real browser: one real ``meldpunt serve`` for the
whole module, four roles (analyst, senior, police, administrator) signed in once each, and every
page their role may open visited in Dutch and French at 390 px (a phone) and in English at
1280 px. On each: no horizontal scrolling, the workspace navigation holding exactly the role's
pages, and no English sentence left untranslated. The API reference and the internal items list
are checked the same way, without the reporters' chrome.

Screenshots go to ``MELDPUNT_SCREENSHOTS`` (a folder) when it is set, to look at. Every image is a
benign generated scene; every hash is synthetic.
"""

from __future__ import annotations

import base64
import io
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from meldpunt.accounts import Accounts
from meldpunt.act.contacts import seed_known_contacts
from meldpunt.bootstrap import Services
from meldpunt.pipeline.intake import create_api_token
from meldpunt.settings import Settings
from meldpunt.store.reports import Item, Medium
from meldpunt.stores.review import ReviewStore
from meldpunt.triage import Triage, TriageConfig
from meldpunt.web.i18n import catalog_ids
from tests.helpers.browser import ARGS, CHROMIUM, need_browser
from tests.helpers.imagegen import scene
from tests.helpers.routing import act_on_decided
from tests.helpers.serve import PASSWORD, _enrol_and_sign_in, _port, _wait
from tests.helpers.world import ILLEGAL, NATIONAL, NOT_ILLEGAL, Clock, World

#: (language, Accept-Language, viewport width): phones in the two languages of the staff, a desk in English
VIEWS = (("nl", "nl-BE,nl;q=0.9", 390), ("fr", "fr-BE,fr;q=0.9", 390), ("en", "en", 1280))

#: what each role's navigation offers (besides their own account): exactly the pages it may open
NAV = {
    "analyst": {"/queue", "/act/removals", "/notices", "/overdue", "/alerts"},
    "senior": {
        "/queue",
        "/disagreements",
        "/decisions",
        "/banks",
        "/stats",
        "/statistics",
        "/act/attention",
        "/act/contacts",
        "/act/removals",
        "/notices",
        "/overdue",
        "/alerts",
        "/referrals",
        "/estimate",
        "/links",
    },
    "police": {"/police/urgent", "/alerts", "/referrals", "/estimate", "/links"},
    "admin": {"/admin/users", "/admin/audit", "/admin/wellness-defaults"},
}

#: a reported URL as long as real ones are: it must wrap, not push the page sideways
LONG_URL = "https://benign-example-gallery.test/albums/2026/landscapes/" + "valley-at-dawn-" * 8 + "x.html"


@dataclass
class Site:
    base: str
    users: dict[str, str]  # role -> user name
    pages: dict[str, list[str]]  # role -> the paths it may open
    token: str  # an API token with internal:read


def _png(seed: int) -> bytes:
    out = io.BytesIO()
    scene(seed, 320, 240).save(out, format="PNG")
    return out.getvalue()


def _seed(services: Services, store: ReviewStore, env: dict[str, str]) -> dict[str, int]:
    """Items in every stage a page shows: two awaiting review (one urgent, with a long URL), one
    in disagreement, one decided (illegal: its hashes are in the own bank)."""
    world = World(services.engine, services.settings, Clock(), store)
    items: dict[str, int] = {}
    for name, urgent in (("queued", False), ("urgent", True), ("disputed", False), ("decided", True)):
        iid = world.item(pdqs=(world.pdq(), world.pdq()), blobs=False, urgent=urgent)
        with services.engine.begin() as conn:
            values: dict[str, Any] = {"server_ip": "192.0.2.7"}
            if name == "urgent":
                values["url"] = LONG_URL
            conn.execute(update(Item).where(Item.id == iid).values(**values))
            mids = conn.execute(select(Medium.id).where(Medium.item_id == iid)).scalars().all()
            for n, mid in enumerate(mids):
                store.put(conn, int(mid), _png(iid * 10 + n))
        items[name] = iid
    triage = Triage(
        services.engine, settings=services.settings, config=TriageConfig.from_env(env), review_store=store
    )
    for user, item, opinion in (
        ("ana", "disputed", ILLEGAL),
        ("ben", "disputed", NOT_ILLEGAL),
        ("ana", "decided", NATIONAL),
        ("ben", "decided", NATIONAL),
    ):
        triage.item_for_review(items[item], user)
        triage.classify(items[item], user, opinion)
    assert triage.stage(items["disputed"]) == "disagreement"
    assert triage.stage(items["decided"]) == "final"
    return items


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    need_browser()
    tmp = tmp_path_factory.mktemp("layout")
    db = str(tmp / "meldpunt.db")
    env = {
        **os.environ,
        "MELDPUNT_REVIEW_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "MELDPUNT_WEB_SECRET": secrets.token_hex(32),
    }
    services = Services(Settings.from_env(env, db=db))
    store = ReviewStore.from_settings(services.settings)
    accounts = Accounts(services.engine)
    users = {"analyst": "ana", "senior": "sara", "police": "pol", "admin": "adm"}
    for name, role in (
        ("ana", "analyst"),
        ("ben", "analyst"),
        ("sara", "senior"),
        ("pol", "police"),
        ("adm", "admin"),
    ):
        accounts.create_user(name, role, PASSWORD)
    items = _seed(services, store, env)
    # a takedown of the decided item waiting for a senior (nobody to notice), and CDN contacts
    act_on_decided(services, items["decided"], host="benign-example-gallery.test")
    seed_known_contacts(services)
    token = create_api_token(services, "layout", ("internal:read",))
    mine = {"/me", "/me/preferences"}
    pages = {
        "analyst": [
            *mine,
            "/queue",
            f"/items/{items['queued']}",
            "/act/removals",
            "/notices",
            "/overdue",
            "/alerts",
        ],
        "senior": [
            *mine,
            "/queue",
            f"/items/{items['urgent']}",
            "/disagreements",
            f"/disagreements/{items['disputed']}",
            "/decisions",
            f"/decisions/{items['decided']}",
            "/banks",
            "/banks/hotline-own",
            "/stats",
            "/statistics",
            f"/items/{items['decided']}",
            "/act/attention",
            "/act/contacts",
            "/act/contacts/new",
            "/act/contacts/1",
            "/act/rules",
            "/act/removals",
            "/alerts",
            "/notices",
            "/overdue",
            "/referrals",
            "/estimate",
            "/links",
        ],
        "police": [
            *mine,
            "/police/urgent",
            f"/police/items/{items['decided']}",
            "/alerts",
            "/referrals",
            "/estimate",
            "/links",
        ],
        "admin": [*mine, "/admin/users", "/admin/audit", "/admin/wellness-defaults"],
    }
    port = _port()
    log = tmp / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "meldpunt.cli",
                "--db",
                db,
                "serve",
                "--port",
                str(port),
                "--workers",
                "0",
            ],
            env=env,
            stdout=out,
            stderr=out,
        )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return proc.poll() is not None  # ended: fail below, with its log

    try:
        _wait("the web process", up, 60)
        assert proc.poll() is None, log.read_text()
        yield Site(base, users, pages, token)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        services.close()


def _english_left(lang: str, text: str) -> list[str]:
    """English sentences of the catalogue (translated differently in ``lang``) found in ``text``:
    cheap, and it catches a label that skipped ``t(…)`` or a template that forgot a message."""
    return [
        msgid
        for msgid, msgstr in catalog_ids(lang).items()
        if msgstr and " " in msgid and "{" not in msgid and len(msgid) >= 12
        if msgid in text and msgid not in msgstr
    ]


def _shot(page: Any, name: str) -> None:
    folder = os.environ.get("MELDPUNT_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def _overflow(page: Any) -> str:
    """'' when the page fits its viewport; else how wide it is and which elements stick out."""
    width: int = page.evaluate("document.documentElement.scrollWidth")
    inner: int = page.evaluate("window.innerWidth")
    if width <= inner:
        return ""
    culprits = page.evaluate(
        """(inner) => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > inner + 1)
            .slice(0, 4).map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : ''))""",
        inner,
    )
    return f"{width} px wide at {inner}: {', '.join(culprits)}"


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.mark.slow
@pytest.mark.parametrize("role", ["analyst", "senior", "police", "admin"])
def test_every_staff_page_of_each_role_fits_a_phone_in_its_language_with_the_role_navigation(
    site: Site, browser: Any, role: str
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        _enrol_and_sign_in(page, site.base, site.users[role])
        problems: list[str] = []
        for lang, accept, width in VIEWS:
            page.set_extra_http_headers({"Accept-Language": accept})
            page.set_viewport_size({"width": width, "height": 900})
            for path in site.pages[role]:
                response = page.goto(f"{site.base}{path}")
                assert response is not None and response.status == 200, (path, lang)
                where = f"{role} {lang} {width}px {path}"
                _shot(page, f"{role}-{lang}-{width}{path.replace('/', '_')}")
                if page.get_attribute("html", "lang") != lang:
                    problems.append(f"{where}: not in {lang}")
                if trouble := _overflow(page):
                    problems.append(f"{where}: scrolls sideways, {trouble}")
                nav = set(
                    page.locator("header .ws-nav a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
                )
                if nav != NAV[role] | {"/me"}:
                    problems.append(f"{where}: navigation {sorted(nav)}")
                if lang != "en" and (left := _english_left(lang, page.inner_text("body"))):
                    problems.append(f"{where}: English left: {left}")
        assert not problems, "\n".join(problems)
        # every link the navigation offers opens (none answers 403)
        for href in NAV[role]:
            assert page.request.get(f"{site.base}{href}").status == 200, href
    finally:
        context.close()


@pytest.mark.slow
def test_api_reference_and_internal_items_fit_a_phone_without_the_reporters_chrome(
    site: Site, browser: Any
) -> None:
    auth = "Basic " + base64.b64encode(f"layout:{site.token}".encode()).decode()
    problems: list[str] = []
    for lang, accept, width in VIEWS:
        context = browser.new_context(
            viewport={"width": width, "height": 900},
            extra_http_headers={"Accept-Language": accept, "Authorization": auth},
        )
        page = context.new_page()
        try:
            for path in ("/api/docs", "/internal/items"):
                assert page.goto(f"{site.base}{path}").status == 200
                _shot(page, f"doc-{lang}-{width}{path.replace('/', '_')}")
                where = f"{lang} {width}px {path}"
                if trouble := _overflow(page):
                    problems.append(f"{where}: scrolls sideways, {trouble}")
                # for engineers, not reporters: no language links, no help-line footer
                if page.locator("ul.langs, footer.site").count():
                    problems.append(f"{where}: the reporters' chrome")
            # the long URL wraps as a URL (a few lines), not every few characters
            cell = page.locator("td.url", has_text="valley-at-dawn").first
            box = cell.bounding_box()
            assert box is not None and box["width"] >= min(width * 0.5, 240), (lang, box)
        finally:
            context.close()
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_the_forbidden_page_keeps_the_navigation_of_the_role(site: Site, browser: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        _enrol_and_sign_in(page, site.base, "ben")
        page.set_extra_http_headers({"Accept-Language": "nl"})
        response = page.goto(f"{site.base}/admin/audit")
        assert response is not None and response.status == 403
        nav = page.locator("header .ws-nav a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
        assert set(nav) == NAV["analyst"] | {"/me"}
        assert re.search("Niet toegestaan", page.inner_text("main"))
    finally:
        context.close()


def test_the_navigation_table_opens_only_what_each_role_may() -> None:
    """Without a browser: the table behind the navigation, against the roles' permissions."""
    from meldpunt.web.nav import home, nav_links

    for role, hrefs in NAV.items():
        assert {link.href for link in nav_links(role)} == hrefs, role
    assert home("police") == "/police/urgent" and home("analyst") == "/queue" and home(None) == "/me"
