"""The analyst's journey in a real browser, against real processes: ``meldpunt serve`` (web only)
and a separate ``meldpunt worker`` walking the reports, sharing one SQLite database, a benign
"web" on loopback, and Debian's Chromium driven by Playwright.

Two analysts enrol with TOTP and sign in; the first sees the blurred greyscale thumbnail of a new
image, reveals it on purpose (audited: shown once, beside the classification form), classifies it; the second gives a blind second opinion
that agrees, so the item is final and its hashes go into the hotline's own bank. Then a copy of
the image (scaled and re-compressed, so only PDQ can know it) is reported on another page: the
worker process, which never saw the classification happen, auto-classifies it and nobody views it.

Skipped when Chromium or Playwright is missing, unless MELDPUNT_REQUIRE_BROWSER=1. Every image is
a benign generated scene.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyotp
import pytest
from PIL import Image
from sqlalchemy import select

from meldpunt.accounts import Accounts
from meldpunt.audit import entries as audit_entries
from meldpunt.store.reports import Medium, ReviewBlob
from tests.helpers import serve
from tests.helpers.browser import ARGS, CHROMIUM, screenshot
from tests.helpers.serve import (
    FILES,
    PASSWORD,
    Stack,
    _enrol_and_sign_in,
)

#: the real processes (the fixture, shared)
stack = serve.stack

#: how far right the page's content (in ``main``) reaches, in CSS pixels
MAIN_RIGHT = "() => Math.max(...[...document.querySelectorAll('main, main *')].map(e => e.getBoundingClientRect().right))"
#: the elements sticking out past a 390 px page (for the message of a failed assertion)
WIDE = (
    "() => [...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > 391)"
    ".map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).slice(0, 20)"
)


def _sharpness(data: bytes) -> float:
    """Variance of a discrete Laplacian of the greyscale image (low: blurred)."""
    g = np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=float)
    lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return float(lap.var())


def _is_greyscale(data: bytes) -> bool:
    img = Image.open(io.BytesIO(data))
    if img.mode in ("L", "LA"):
        return True
    rgb = np.asarray(img.convert("RGB"), dtype=int)
    return (
        int(np.abs(rgb[..., 0] - rgb[..., 1]).max()) <= 2
        and int(np.abs(rgb[..., 1] - rgb[..., 2]).max()) <= 2
    )


def _sign_in_again(page: Any, base: str, name: str, app: pyotp.TOTP, used: str) -> None:
    """Sign out and in with password and a fresh code (the enrolment's code, ``used``, cannot be
    replayed)."""
    page.get_by_role("button", name="Log out", exact=True).click()
    page.goto(f"{base}/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    assert page.url.endswith("/login/totp")
    page.get_by_label(re.compile("6-digit code")).fill(used)  # the code of the enrolment: refused
    page.get_by_role("button", name="Sign in").click()
    assert "That code was not accepted." in page.inner_text("main")
    # the next step's code (the server accepts one step either side, each step once)
    page.get_by_label(re.compile("6-digit code")).fill(app.at(time.time() + 30))
    page.get_by_role("button", name="Sign in").click()
    assert page.url.endswith("/me")


@pytest.mark.slow
def test_enrol_review_reveal_classify_second_opinion_and_the_copy_is_known(
    stack: Stack, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    accounts = Accounts(stack.services.engine)
    for name in ("ana", "ben"):
        accounts.create_user(name, "analyst", PASSWORD)

    first, first_receipt = stack.report("/gallery.html")
    assert stack.walked(first) == "needs_review"
    shot = screenshot

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            outside: list[str] = []
            ana_ctx = browser.new_context()
            ana = ana_ctx.new_page()
            ana.on("request", lambda r: None if r.url.startswith(stack.base) else outside.append(r.url))
            ana_app, enrolled_with = _enrol_and_sign_in(ana, stack.base, "ana")
            _sign_in_again(ana, stack.base, "ana", ana_app, enrolled_with)

            # the queue: the new item, nothing resolved without viewing yet
            ana.goto(f"{stack.base}/queue")
            assert ana.get_by_role("heading", name="Queue").is_visible(), ana.inner_text("body")
            row = ana.locator("table.ws-queue tbody tr")
            assert row.count() == 1
            assert "/gallery.html" in row.inner_text()
            shot(ana, "journey-queue")

            # the item: a blurred greyscale thumbnail, never the original bytes
            with ana.expect_response(re.compile(r"/thumb$")) as thumb_info:
                ana.get_by_role("link", name=re.compile(f"#{first}")).click()
            thumb = thumb_info.value
            assert thumb.status == 200
            assert thumb.headers["cache-control"] == "no-store"
            blurred = thumb.body()
            assert blurred != FILES["/img/valley.jpg"][1]
            assert _is_greyscale(blurred)
            assert ana.evaluate("() => document.querySelector('img.ws-thumb').naturalWidth") > 0
            assert f"{stack.web}/gallery.html" in ana.inner_text(".ws-context")
            shot(ana, "journey-item")

            # reveal one medium on purpose: a sharp, coloured rendering, shown once, on the item's
            # page beside the classification form
            with ana.expect_response(re.compile(r"/revealed\.jpg")) as revealed_info:
                ana.get_by_role("button", name=re.compile("^Reveal medium")).click()
            sharp = revealed_info.value.body()
            assert revealed_info.value.status == 200
            assert not _is_greyscale(sharp)
            assert _sharpness(sharp) > 4 * _sharpness(blurred)
            again = ana.request.get(revealed_info.value.url)
            assert again.status in (403, 410), "a reveal grant renders once"
            assert re.search(f"/items/{first}[?]reveal=", ana.url)
            figure = ana.locator("figure.ws-revealed img").bounding_box()
            form = ana.locator("form.ws-classify").bounding_box()
            assert figure is not None and form is not None
            assert figure["x"] + figure["width"] <= form["x"] + 1, "side by side at 1280 px"
            assert figure["y"] < form["y"] + form["height"] and form["y"] < figure["y"] + figure["height"]
            assert ana.evaluate("() => document.querySelector('figure.ws-revealed img').naturalWidth") > 0
            shot(ana, "journey-revealed")
            # at 390 px: one above the other, no sideways scrolling
            ana.set_viewport_size({"width": 390, "height": 844})
            assert ana.evaluate("() => document.documentElement.scrollWidth") <= 390, ana.evaluate(WIDE)
            shot(ana, "journey-revealed-390")
            ana.set_viewport_size({"width": 1280, "height": 720})
            # a reload shows no broken image: the reveal was shown once, the page says so
            ana.reload()
            assert ana.locator("figure.ws-revealed").count() == 0
            assert "blurred again now" in ana.inner_text("#revealed")
            broken = "() => [...document.images].filter(i => i.complete && i.naturalWidth === 0).length"
            assert ana.evaluate(broken) == 0
            history = ana.inner_text(".ws-timeline")
            assert "revealed by you" in history and "Claimed by you" in history

            # classify on the same page: illegal, so a second analyst must agree
            ana.get_by_label(re.compile("^Baseline")).check()
            ana.get_by_label("Prepubescent", exact=True).check()
            ana.get_by_role("button", name="Save classification").click()
            assert "Classification saved." in ana.inner_text("main")

            # the second analyst classifies blind
            ben_ctx = browser.new_context()
            ben = ben_ctx.new_page()
            ben.on("request", lambda r: None if r.url.startswith(stack.base) else outside.append(r.url))
            # ben follows a link to the item while signed out: his first sign-in (with the
            # enrolment) ends on that item, not on /me
            _enrol_and_sign_in(ben, stack.base, "ben", start=f"/items/{first}")
            assert not ben.get_by_label(re.compile("^Baseline")).is_checked()
            assert "ana" not in ben.inner_text("main")
            ben.get_by_label(re.compile("^Baseline")).check()
            ben.get_by_label("Prepubescent", exact=True).check()
            ben.get_by_role("button", name="Save classification").click()
            assert "Classification saved." in ben.inner_text("main")
            assert ben.locator("table.ws-queue tbody tr").count() == 0
            shot(ben, "journey-final")

            # the copy, on another page: the worker process knows it from the own bank
            # what the reporter may learn: one rule for an analyst's decision and a list's match
            assert stack.public_words(first_receipt) == "action_taken"
            copy, copy_receipt = stack.report("/mirror/page.html")
            assert stack.walked(copy) == "known"
            assert stack.public_words(copy_receipt) == "action_taken"
            with stack.services.engine.connect() as conn:
                media = conn.execute(
                    select(Medium.outcome, Medium.matches).where(Medium.item_id == copy)
                ).all()
                blobs = conn.execute(select(ReviewBlob.medium_id)).scalars().all()
            assert [m.outcome for m in media] == ["known"]
            assert "hotline-own" in str(media[0].matches)
            assert blobs == []  # the first item's blob was purged at the final classification

            ana.goto(f"{stack.base}/queue")
            assert ana.locator("table.ws-queue tbody tr").count() == 0
            stats = ana.inner_text(".ws-stats")
            assert re.search(r"Resolved without anyone viewing them: 1 ", stats), stats
            shot(ana, "journey-queue-after")
            assert outside == []  # the staff pages fetched nothing from anywhere else
        finally:
            browser.close()

    with stack.services.engine.connect() as conn:
        events = [(e.actor, e.action, e.subject) for e in audit_entries(conn)]
    actions = [(a, act) for a, act, _ in events]
    for expected in [
        ("ana", "staff.enrol"),
        ("ana", "staff.login"),
        ("ana", "item.view"),
        ("ana", "item.reveal"),
        ("ana", "item.classify"),
        ("ben", "item.classify"),
    ]:
        assert expected in actions, expected
    assert not any(a == "ben" and act == "item.reveal" for a, act in actions)
    seen_copy = [s for _, act, s in events if act in ("item.view", "item.reveal") and s == f"item:{copy}"]
    assert seen_copy == [], "nobody viewed the copy"
    verify = subprocess.run(
        [sys.executable, "-m", "meldpunt.cli", "--db", str(stack.services.settings.db), "audit", "verify"],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.mark.slow
def test_a_senior_finds_and_pages_in_dutch_and_french_at_390_px(stack: Stack, tmp_path: Path) -> None:
    """The lists with search, sort and pages, an item with its matches and history, and a bank's
    entries: in nl and fr, at 390 px, without sideways scrolling; a search link is shareable."""
    from playwright.sync_api import sync_playwright

    from meldpunt.domain import Labels, SignalType
    from meldpunt.store.banks import BankRepository
    from meldpunt.triage.classify import HashRecord

    Accounts(stack.services.engine).create_user("sam", "senior", PASSWORD)
    item, _ = stack.report("/gallery.html")
    assert stack.walked(item) == "needs_review"
    records = [
        HashRecord(
            SignalType.MD5,
            f"{n:032x}",
            Labels(category="a-rather-long-synthetic-category-name", tags=("one", "two")),
        )
        for n in range(60)
    ]
    BankRepository(stack.services.engine).import_records(
        "partner-list", records, source_name="synthetic", source_sha256="0" * 64, fmt="csv"
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            _enrol_and_sign_in(page, stack.base, "sam")
            for lang in ("nl", "fr"):
                ctx = browser.new_context(
                    viewport={"width": 390, "height": 844},
                    extra_http_headers={"Accept-Language": lang},
                    storage_state=page.context.storage_state(),
                )
                sam = ctx.new_page()
                for path in (
                    "/queue?q=gallery&sort=newest",
                    f"/items/{item}",
                    "/decisions?q=gallery",
                    "/banks/partner-list/entries",
                ):
                    sam.goto(f"{stack.base}{path}")
                    assert sam.locator("html").get_attribute("lang") == lang, path
                    # the page's content (the header's navigation is the layout's, #9 "layout")
                    assert sam.evaluate(MAIN_RIGHT) <= 390, (lang, path, sam.evaluate(WIDE))
                    name = f"find-{lang}-{path.strip('/').split('?')[0].replace('/', '-')}"
                    screenshot(sam, name)
                queue = sam.goto(f"{stack.base}/queue?q=gallery&sort=newest")
                assert queue is not None and sam.locator("table.ws-queue tbody tr").count() == 1
                assert sam.locator("#q").input_value() == "gallery"
                sam.goto(f"{stack.base}/banks/partner-list/entries")
                sam.locator("a[rel=next]").click()  # the second page of 50
                assert sam.locator(".bk-entries li").count() == 10
                ctx.close()
        finally:
            browser.close()
