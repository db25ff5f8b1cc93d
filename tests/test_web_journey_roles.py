"""The other roles' journeys in a real browser, against the same real processes as
``test_web_journey`` (``meldpunt serve --workers 0`` and a separate ``meldpunt worker``): two
analysts disagree, a senior analyst resolves the disagreement and later corrects the decision, the
police liaison reads the facts and hashes (never an image), and the administrator reads the audit
log, verified, and cannot open an item. Every image is a benign generated scene.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from meldpunt.accounts import Accounts
from meldpunt.store.banks import BankRepository
from meldpunt.store.reports import Medium
from tests import test_web_journey as journey
from tests.test_web_browser import ARGS, CHROMIUM
from tests.test_web_journey import PASSWORD, Stack, _enrol_and_sign_in

#: the same processes as the analysts' journey (the fixture, shared)
stack = journey.stack


def _classify(page: Any, base: str, item: int, status: str) -> None:
    page.goto(f"{base}/queue")
    page.get_by_role("link", name=re.compile(f"#{item}")).click()
    page.get_by_label(re.compile(status)).check()
    page.get_by_role("button", name="Save classification").click()
    assert "Classification saved." in page.inner_text("main")


def test_disagreement_resolution_correction_police_facts_and_the_audit_log(stack: Stack) -> None:
    from playwright.sync_api import sync_playwright

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

            # the administrator: the audit log, verified; no item pages
            adm.goto(f"{stack.base}/admin/audit")
            assert "Chain verified: ok" in adm.inner_text("#verification")
            log = adm.inner_text("main")
            for action in ("item.classify", "item.resolve", "staff.enrol"):
                assert action in log, action
            assert adm.request.get(f"{stack.base}/items/{item}").status == 403
        finally:
            browser.close()
