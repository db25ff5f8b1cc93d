"""The survivor register page in Chromium (#12): two generated benign pictures and a text file are
chosen, hashed on the device, and registered; every request the browser made is recorded and none
carries the pictures' bytes. The registered exact hashes are the files' own."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

from sqlalchemy import select

from meldpunt.store.survivors import SurvivorHash
from tests.helpers.browser import ARGS, CHROMIUM, need_browser
from tests.helpers.pipeline import jpeg, png
from tests.helpers.survivors import PASS
from tests.helpers.survivorweb import case_code, served, web_world


def test_register_in_chromium_sends_hashes_never_the_pictures(sqlite_db: str, tmp_path: Path) -> None:
    need_browser()
    from playwright.sync_api import sync_playwright

    pictures = {"beach.png": png(21), "garden.jpg": jpeg(22)}
    for name, data in pictures.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "notes.txt").write_bytes(b"just some words, not a picture\n" * 20)
    bodies: list[tuple[str, bytes]] = []
    with web_world(sqlite_db) as ww, served(ww) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})

            def seen(request: Any) -> None:
                bodies.append((request.url, request.post_data_buffer or b""))

            page.on("request", seen)
            page.goto(f"{base}/survivor/register?lang=en")
            page.wait_for_selector("#files:not([disabled])")
            page.set_input_files("#files", [str(tmp_path / n) for n in [*pictures, "notes.txt"]])
            page.wait_for_selector("#send:not([disabled])", timeout=60_000)
            status = page.inner_text("#hash-status")
            assert "2 file(s) hashed" in status, status
            assert "notes.txt: not a picture or video" in page.inner_text("#hash-notes")
            page.fill("#passphrase", PASS)
            page.fill("#passphrase2", PASS)
            page.click("#send")
            page.wait_for_selector("#case-code")
            code = case_code(page.content())
            assert len(code.replace("-", "")) == 24
            # the page fits a phone: nothing wider than the screen
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
        finally:
            browser.close()
        with ww.world.services.engine.connect() as conn:
            stored = {(r.signal_type, r.value) for r in conn.execute(select(SurvivorHash))}
    for data in pictures.values():
        assert ("md5", hashlib.md5(data).hexdigest()) in stored
        assert ("sha256", hashlib.sha256(data).hexdigest()) in stored
    assert sum(1 for kind, _ in stored if kind == "pdq") >= 2
    posts = [(url, body) for url, body in bodies if body]
    assert any(url.endswith("/survivor/register") for url, _ in posts)
    for data in pictures.values():
        middle = data[len(data) // 2 : len(data) // 2 + 48]
        for url, body in bodies:
            assert data not in body and middle not in body, url
            assert base64.b64encode(middle)[:40] not in body, url
