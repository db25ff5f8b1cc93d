"""The other roles' journeys in a real browser, against the same real processes as
``test_web_journey`` (``meldpunt serve --workers 0`` and a separate ``meldpunt worker``): two
analysts disagree, a senior analyst resolves the disagreement and later corrects the decision, the
police liaison reads the facts and hashes (never an image), and the administrator reads the audit
log in sentences, verified, cannot open an item, and administers a user they add (at 390 px in nl
and fr too, without sideways scrolling). Every image is a benign generated scene.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from meldpunt.accounts import Accounts
from meldpunt.store.banks import BankRepository
from meldpunt.store.reports import Medium
from tests.helpers import serve
from tests.helpers.browser import ARGS, CHROMIUM, screenshot
from tests.helpers.serve import PASSWORD, Stack, _enrol_and_sign_in

#: the same processes as the analysts' journey (the fixture, shared)
stack = serve.stack


def _classify(page: Any, base: str, item: int, status: str) -> None:
    page.goto(f"{base}/queue")
    page.get_by_role("link", name=re.compile(f"#{item}")).click()
    page.get_by_label(re.compile(status)).check()
    page.get_by_role("button", name="Save classification").click()
    assert "Classification saved." in page.inner_text("main")


def _administer(browser: Any, adm: Any, base: str, shot: Any) -> None:
    """Add a user through the form, sign in as them with the password the page showed once;
    change their role, reset their second factor, disable and enable them again."""
    adm.goto(f"{base}/admin/users")
    adm.get_by_label("User name").fill("nina")
    adm.locator("form.ad-add").get_by_label("Role").select_option("analyst")
    adm.get_by_role("button", name="Add user").click()
    assert "nina added as analyst" in adm.inner_text("main")
    password = adm.inner_text("#new-password").strip()
    shot(adm, "admin-user-added")
    nina = browser.new_context().new_page()
    nina.goto(f"{base}/login")
    nina.get_by_label("User name").fill("nina")
    nina.get_by_label("Password").fill(password)
    nina.get_by_role("button", name="Continue").click()
    assert nina.url.endswith("/enrol")  # the first sign-in sets up the authenticator

    card = adm.locator("li.ad-user", has=adm.get_by_role("heading", name="nina", exact=True))
    adm.goto(f"{base}/admin/users")
    card.get_by_label("Role").select_option("senior")
    card.get_by_role("button", name="Change role").click()
    assert "nina now has the role senior analyst" in adm.inner_text("main")
    card.get_by_role("button", name="Disable").click()
    assert "nina is disabled" in adm.inner_text("main")
    assert "disabled" in card.inner_text()
    card.get_by_role("button", name="Enable").click()
    assert "nina can sign in again." in adm.inner_text("main")
    shot(adm, "admin-users")
    adm.goto(f"{base}/admin/audit?action=user.*")
    log = adm.inner_text("main")
    for sentence in (
        "adm added user nina as analyst",
        "adm made nina senior analyst",
        "adm disabled user nina",
    ):
        assert sentence in log, sentence


@pytest.mark.slow
def test_disagreement_resolution_correction_police_facts_and_the_audit_log(
    stack: Stack, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    shot = screenshot

    accounts = Accounts(stack.services.engine)
    for name, role in (
        ("ana", "analyst"),
        ("ben", "analyst"),
        ("sara", "senior"),
        ("pol", "police"),
        ("adm", "admin"),
    ):
        accounts.create_user(name, role, PASSWORD)
    item, _ = stack.report("/gallery.html")
    assert stack.walked(item) == "needs_review"

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pages: dict[str, Any] = {}
        try:
            for name in ("ana", "ben", "sara", "pol", "adm"):
                pages[name] = browser.new_context().new_page()
                _enrol_and_sign_in(pages[name], stack.base, name)
            ana, ben, sara, pol, adm = (pages[n] for n in ("ana", "ben", "sara", "pol", "adm"))

            # two analysts disagree: the item leaves their queues and waits for a senior
            _classify(ana, stack.base, item, "^Baseline")
            _classify(ben, stack.base, item, "^Illegal under national law")
            assert ben.locator("table.ws-queue tbody tr").count() == 0

            # the senior sees both opinions and decides
            sara.goto(f"{stack.base}/disagreements")
            sara.get_by_role("link", name=re.compile(f"#{item}")).click()
            opinions = sara.inner_text("table.ws-opinions")
            assert "ana" in opinions and "ben" in opinions
            assert "Legal status (ICCAM): Baseline" in opinions  # by their titles, not codes
            assert "Legal status (ICCAM): Illegal under national law" in opinions
            sara.get_by_label(re.compile("^Baseline")).check()
            sara.get_by_role("button", name="Resolve").click()
            assert "Disagreement resolved." in sara.inner_text("main")

            # the decision's hashes went into the own list; the senior corrects it: withdrawn again
            own = BankRepository(stack.services.engine)
            assert len(list(own.export_entries("hotline-own"))) >= 3
            sara.get_by_role("link", name="Decisions").click()
            row = sara.locator("table.ws-decisions tbody tr").first
            assert "a senior's resolution" in row.inner_text()
            row.get_by_role("link", name=f"#{item}").click()
            assert "Illegal under national law" in sara.inner_text("table.ws-opinions")
            assert sara.get_by_label(re.compile("^Baseline")).is_checked()  # the decision as it stands
            sara.get_by_label("Not illegal", exact=True).check()
            sara.get_by_role("button", name="Save the correction").click()
            assert "Correction saved" in sara.inner_text("main")
            assert list(own.export_entries("hotline-own")) == []
            sara.goto(f"{stack.base}/decisions/{item}")
            sara.get_by_label(re.compile("^Baseline")).check()
            sara.get_by_role("button", name="Save the correction").click()
            assert len(list(own.export_entries("hotline-own"))) >= 3  # illegal again: back in the list

            # the police liaison: facts and hashes of the decided item, no image, no reveal
            pol.goto(f"{stack.base}/police/items/{item}")
            assert "baseline" in pol.inner_text("#classification")
            with stack.services.engine.connect() as conn:
                md5 = conn.execute(select(Medium.md5).where(Medium.item_id == item)).scalar_one()
            assert md5 in pol.inner_text("main")
            assert pol.locator("img").count() == 0
            assert pol.request.get(f"{stack.base}/items/{item}").status == 403
            assert pol.locator('a[href="/queue"]').count() == 0

            # the administrator: the audit log in sentences, verified; no item pages
            adm.goto(f"{stack.base}/admin/audit")
            assert "Chain verified: ok" in adm.inner_text("#verification")
            log = adm.inner_text("main")
            for sentence in (
                f"ana classified item {item}",
                f"sara resolved the disagreement on item {item}",
                f"sara corrected the decision on item {item}",
                "adm set up their second factor",
            ):
                assert sentence in log, sentence
            assert "item.classify" not in log and '"classification"' not in log  # no codes, no JSON
            adm.get_by_label("Item", exact=True).fill(str(item))
            adm.get_by_role("button", name="Filter").click()
            assert "adm set up their second factor" not in adm.inner_text("main")
            assert adm.request.get(f"{stack.base}/items/{item}").status == 403

            # ... and administers: adds a user, who signs in with the password shown once
            _administer(browser, adm, stack.base, shot)
            for lang, accept in (("nl", "nl-BE,nl;q=0.9"), ("fr", "fr-BE,fr;q=0.9")):
                narrow = browser.new_context(
                    viewport={"width": 390, "height": 844}, extra_http_headers={"Accept-Language": accept}
                )
                narrow.add_cookies(adm.context.cookies())
                page = narrow.new_page()
                for path in ("/admin/users", "/admin/audit", "/admin/audit?views=1"):
                    page.goto(f"{stack.base}{path}")
                    assert page.locator("html").get_attribute("lang") == lang
                    wide = page.evaluate(
                        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                    )
                    assert wide <= 0, (lang, path, wide)
                shot(page, f"admin-audit-{lang}-390")
                narrow.close()
        finally:
            browser.close()
