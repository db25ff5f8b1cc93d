"""The survivor pages' gaps (#12) in Chromium, one browser for the module: what a screen reader
reads on the register, sign-in and case pages in nl, fr and en (Playwright's accessibility tree:
roles, names, descriptions, focus); files refused in plain words (not a picture, too many pixels,
a video too large to hash in the browser) with nothing of them sent; and a registration of 10,000
hashes through the form."""

from __future__ import annotations

import json
import re
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from meldpunt.store.survivors import SurvivorHash
from meldpunt.web.i18n import Translator
from tests.helpers.browser import ARGS, CHROMIUM, need_browser
from tests.helpers.pipeline import png
from tests.helpers.survivors import PASS
from tests.helpers.survivorweb import served, web_world


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _h1(page: Any) -> list[str]:
    """The level-1 headings a screen reader lists on the page."""
    tree = page.locator("body").aria_snapshot()
    return re.findall(r'- heading "([^"]+)" \[level=1\]', tree)


def _focused(page: Any) -> str:
    return str(page.evaluate("document.activeElement.id || document.activeElement.className"))


def _labelled(page: Any, *labels: str) -> None:
    for label in labels:
        assert page.get_by_label(label, exact=True).count() == 1, f"no field labelled {label!r}"


@pytest.mark.parametrize("lang", ["nl", "fr", "en"])
def test_a_screen_reader_reads_register_sign_in_and_case(
    browser: Any, sqlite_db: str, tmp_path: Path, lang: str
) -> None:
    from playwright.sync_api import expect

    t = Translator(lang)
    picture = tmp_path / "beach.png"
    picture.write_bytes(png(31))
    with web_world(sqlite_db) as ww, served(ww) as base:
        page = browser.new_page(viewport={"width": 390, "height": 844})
        try:
            # register: one h1, every field labelled, the hint read with the file chooser
            page.goto(f"{base}/survivor/register?lang={lang}")
            page.wait_for_selector("#files:not([disabled])")
            assert _h1(page) == [t("Register images")]
            _labelled(
                page,
                t("Choose pictures or videos"),
                t("Choose a passphrase (at least 10 characters)"),
                t("The same passphrase again"),
                t("E-mail address for news (optional)"),
                t("Language for messages"),
            )
            files = page.get_by_label(t("Choose pictures or videos"), exact=True)
            expect(files).to_have_accessible_description(
                re.compile(re.escape(t("They stay on your device: only their hashes are sent.")))
            )
            consent = t(
                "Yes, my hashes may travel with reports we pass to hotlines in other countries, so that a copy found abroad shows up on my timeline too."
            )
            expect(page.get_by_role("checkbox")).to_have_accessible_name(consent)
            send = page.get_by_role("button", name=t("Register"), exact=True)
            expect(send).to_be_disabled()
            looks_off = send.evaluate("b => getComputedStyle(b).backgroundColor")
            # the progress is said in words in a live region, not only drawn as a bar
            status = page.locator("#hash-status")
            assert status.get_attribute("role") == "status" and status.get_attribute("aria-live") == "polite"
            files.set_input_files(str(picture))
            expect(send).to_be_enabled(timeout=60_000)
            ready = t("Ready: {n} file(s) hashed, {h} hashes.", n=1, h=3)
            expect(page.get_by_role("status")).to_have_text(ready)
            assert send.evaluate("b => getComputedStyle(b).backgroundColor") != looks_off
            # an error is focused and read with the field it is about
            page.get_by_label(t("Choose a passphrase (at least 10 characters)"), exact=True).fill(PASS)
            page.get_by_label(t("The same passphrase again"), exact=True).fill(PASS + "!")
            send.click()
            page.wait_for_selector(".errors")
            assert _focused(page) == "errors"
            expect(
                page.get_by_label(t("The same passphrase again"), exact=True)
            ).to_have_accessible_description(t("The two passphrases are not the same."))
            expect(page.get_by_label(t("The same passphrase again"), exact=True)).to_have_attribute(
                "aria-invalid", "true"
            )
            # the hashes made before are kept: no need to choose the files again
            page.wait_for_selector("#files:not([disabled])")
            kept = t(
                "The hashes you made before are kept ({n}). You can add more files or register now.", n=3
            )
            expect(page.locator("#hash-kept")).to_have_text(kept)
            expect(send).to_be_enabled()
            # registered: the focus moves to the code
            page.get_by_label(t("Choose a passphrase (at least 10 characters)"), exact=True).fill(PASS)
            page.get_by_label(t("The same passphrase again"), exact=True).fill(PASS)
            send.click()
            page.wait_for_selector("#case-code")
            assert _h1(page) == [t("Your case code")] and _focused(page) == "case-code"
            code = page.inner_text("#case-code").strip()
            # the case page
            page.get_by_role("link", name=t("Go to my case")).click()
            page.wait_for_selector("#files:not([disabled])")
            assert _h1(page) == [t("Your case")]
            _labelled(page, t("Choose pictures or videos"))
            expect(page.get_by_role("button", name=t("Add"), exact=True)).to_be_disabled()
            for name in [t("Withdraw"), t("Sign out")]:
                expect(page.get_by_role("button", name=name, exact=True)).to_be_enabled()
            page.get_by_role("button", name=t("Sign out"), exact=True).click()
            # sign in: labelled, and one error read with both fields (it does not say which was wrong)
            page.goto(f"{base}/survivor/sign-in?lang={lang}")
            assert _h1(page) == [t("Sign in to your case")]
            _labelled(page, t("Case code"), t("Passphrase"))
            page.get_by_label(t("Case code"), exact=True).fill(code)
            page.get_by_label(t("Passphrase"), exact=True).fill("not the passphrase")
            page.get_by_role("button", name=t("Sign in"), exact=True).click()
            page.wait_for_selector(".errors")
            assert _focused(page) == "errors"
            wrong = t("The case code or the passphrase is not right. Please check both and try again.")
            for label in [t("Case code"), t("Passphrase")]:
                expect(page.get_by_label(label, exact=True)).to_have_accessible_description(wrong)
            page.get_by_label(t("Case code"), exact=True).fill(code)
            page.get_by_label(t("Passphrase"), exact=True).fill(PASS)
            page.get_by_role("button", name=t("Sign in"), exact=True).click()
            page.wait_for_selector("#files:not([disabled])")
            assert _h1(page) == [t("Your case")]
        finally:
            page.close()


def _huge_png(path: Path, width: int, height: int) -> None:
    """A PNG of more pixels than the limit that is small on disk (one grey, compressed)."""
    import struct

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = b"\x00" + b"\x80" * width
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def test_bad_files_are_refused_in_plain_words_and_nothing_of_them_is_sent(
    browser: Any, sqlite_db: str, tmp_path: Path
) -> None:
    import hashlib

    from playwright.sync_api import expect

    t = Translator("en")
    files = {
        "beach.png": png(32),
        "notes.txt": b"just some words, not a picture\n" * 20,
        "clip.webm": bytes.fromhex("1a45dfa3") + b"\x01" * 3000,
        "long.webm": bytes.fromhex("1a45dfa3") + b"\x02" * 9000,
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    _huge_png(tmp_path / "huge.png", 10_000, 6_000)  # 60 million pixels: more than the 50 million limit
    files["huge.png"] = (tmp_path / "huge.png").read_bytes()
    bodies: list[bytes] = []
    with web_world(sqlite_db) as ww, served(ww) as base:
        page = browser.new_page()
        try:
            page.context.on("request", lambda r: bodies.append(r.post_data_buffer or b""))
            page.goto(f"{base}/survivor/register?lang=en")
            page.wait_for_selector("#files:not([disabled])")
            # the page's video limit, lowered so that a small generated file is over it
            page.evaluate("document.querySelector('[data-survivor-hashing]').dataset.maxVideoBytes = '5000'")
            page.set_input_files("#files", [str(tmp_path / n) for n in files])
            expect(page.locator("#send")).to_be_enabled(timeout=60_000)
            notes = page.inner_text("#hash-notes")
            for words in [
                t("{name}: not a picture or video, so it was not used.").format(name="notes.txt"),
                t("{name}: a video gets exact hashes only (MD5 and SHA-256).").format(name="clip.webm"),
                t(
                    "{name}: this picture has too many pixels to be hashed as a picture here. Only its exact hashes (MD5 and SHA-256) are used, so only an identical copy can be found. The picture itself is not sent."
                ).format(name="huge.png"),
                t(
                    "{name}: this video ({size} MB) is larger than {limit} MB, too large to hash in your browser. It was not used and nothing about it is sent."
                ).format(name="long.webm", size=0, limit=0),
            ]:
                assert words in notes, (words, notes)
            assert page.inner_text("#hash-status") == t("Ready: {n} file(s) hashed, {h} hashes.", n=3, h=7)
            pairs = {tuple(p) for p in json.loads(page.input_value("#hashes"))}
            for name in ["beach.png", "clip.webm", "huge.png"]:
                assert ("md5", hashlib.md5(files[name]).hexdigest()) in pairs
            for name in ["notes.txt", "long.webm"]:
                assert ("md5", hashlib.md5(files[name]).hexdigest()) not in pairs
            assert sum(1 for kind, _ in pairs if kind == "pdq") == 1  # the beach only
            page.fill("#passphrase", PASS)
            page.fill("#passphrase2", PASS)
            page.click("#send")
            page.wait_for_selector("#case-code")
        finally:
            page.close()
    assert any(b"hashes" in body for body in bodies)
    for name, data in files.items():
        middle = data[len(data) // 2 : len(data) // 2 + 48]
        assert not any(middle in body for body in bodies), name


def test_a_registration_of_10000_hashes_through_the_form(browser: Any, sqlite_db: str) -> None:
    """The form posts what the page's script would after hashing many files: 10,000 hashes."""
    many = [["sha256", f"{n:064x}"] for n in range(5_000)] + [["pdq", f"{n:064x}"] for n in range(1, 5_001)]
    with web_world(sqlite_db) as ww, served(ww) as base:
        page = browser.new_page()
        try:
            page.goto(f"{base}/survivor/register?lang=en")
            page.wait_for_selector("#files:not([disabled])")
            page.evaluate(
                "v => { document.getElementById('hashes').value = v; document.getElementById('send').disabled = false; }",
                json.dumps(many),
            )
            page.fill("#passphrase", PASS)
            page.fill("#passphrase2", PASS)
            started = time.perf_counter()
            page.click("#send")
            page.wait_for_selector("#case-code", timeout=120_000)
            took = time.perf_counter() - started
            assert "10000 hashes are registered" in page.inner_text("main")
        finally:
            page.close()
        with ww.world.services.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(SurvivorHash)).scalar_one() == 10_000
    print(
        f"10,000 hashes through the form: {len(json.dumps(many)) / 1e6:.2f} MB posted, {took:.1f} s to the code"
    )
