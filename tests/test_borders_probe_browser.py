"""#11's pages in headless Chromium without JavaScript, as a senior, in en, nl and fr at 1280 and
390 px: /act/forwards, /referrals and the item page with its forwarding, referral and
CyberTipline panels. Nothing scrolls sideways; no English sentence is left on the nl and fr pages
(a line of the English page with English words found as it is on the other)."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import insert

from meldpunt.act import referrals
from meldpunt.bootstrap import Services
from meldpunt.clock import SystemClock
from meldpunt.domain.acting import TakedownState
from meldpunt.settings import Settings
from meldpunt.store.forwarding import ForwardOut
from meldpunt.web import create_app
from tests.helpers.acting import seed_item, seed_takedown
from tests.helpers.browser import ARGS, CHROMIUM, need_browser, staff_sign_in
from tests.helpers.referral import seed_classified

ENGLISH = re.compile(r"\b(the|to|of|is|and|for|by|was|not|this|with|no|has|it|its|are|be)\b", re.I)


def _seed(services: Services) -> tuple[int, int]:
    """A forward waiting for a senior (its item), and an item due for the police with a package."""
    now = services.clock.now()
    fwd, _ = seed_item(services.engine, f"https://nl.example/{'long-path-segment-' * 8}x.html", now=now)
    tid = seed_takedown(services.engine, fwd, now=now, state=TakedownState.FORWARDED, forward_to="nl-hotline")
    with services.engine.begin() as conn:
        conn.execute(
            insert(ForwardOut).values(
                takedown_id=tid,
                item_id=fwd,
                partner="nl-hotline",
                reference=f"BE-{tid}-TEST",
                message_id=None,
                state="sent",
                attention="failed",
                attention_reason="refused: the URL cannot be taken in",
                last_status="",
                created_at=now,
                updated_at=now,
            )
        )
    due, _ = seed_item(
        services.engine, f"https://files.example/{'very-long-path-segment-' * 6}.html", now=now
    )
    seed_classified(services.engine, due, now=now, seed="due")
    seed_takedown(services.engine, due, now=now, police="due")
    referrals.create(services, [due], by="demo-senior")
    return fwd, due


@pytest.mark.slow
def test_the_pages_fit_and_are_translated(sqlite_db: str, tmp_path: Path) -> None:
    need_browser()
    import uvicorn
    from playwright.sync_api import sync_playwright

    from meldpunt.demo.run import DEMO_PASSWORD, demo_accounts
    from meldpunt.settings import WebSettings

    services = Services(Settings.from_env({}, db=sqlite_db, web=WebSettings(secret="s")), SystemClock())
    problems: list[str] = []
    try:
        fwd, due = _seed(services)
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
        english: dict[str, set[str]] = {}
        pages = ["/act/forwards", "/referrals", f"/items/{fwd}", f"/items/{due}"]
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    first = browser.new_context(java_script_enabled=False)
                    page = first.new_page()
                    staff_sign_in(page, base, login.name, DEMO_PASSWORD, login.code)
                    signed_in = first.storage_state()  # one sign-in: a TOTP code is taken once
                    first.close()
                    for lang in ("en", "nl", "fr"):
                        for width in (1280, 390):
                            context = browser.new_context(
                                java_script_enabled=False,
                                viewport={"width": width, "height": 900},
                                extra_http_headers={"Accept-Language": lang},
                                storage_state=signed_in,
                            )
                            page = context.new_page()
                            for path in pages:
                                answer = page.goto(base + path)
                                assert answer is not None and answer.status == 200, (lang, path)
                                wide = page.evaluate("document.documentElement.scrollWidth")
                                if wide > width:
                                    page.screenshot(
                                        path=str(tmp_path / f"{lang}-{width}-{path.replace('/', '_')}.png"),
                                        full_page=True,
                                    )
                                    problems.append(f"{lang} {width}px {path}: {wide}px wide")
                                lines = {
                                    ln.strip() for ln in page.inner_text("main").splitlines() if ln.strip()
                                }
                                if lang == "en":
                                    english[path] = english.get(path, set()) | {
                                        ln for ln in lines if len(ENGLISH.findall(ln)) >= 2
                                    }
                                else:
                                    for ln in sorted(lines & english.get(path, set())):
                                        problems.append(f"{lang} {path}: English left: {ln!r}")
                            context.close()
                finally:
                    browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    finally:
        services.close()
    assert all(english[path] for path in pages), {
        k: len(v) for k, v in english.items()
    }  # the check had sentences to look for
    assert problems == [], "\n".join(sorted(set(problems)))
