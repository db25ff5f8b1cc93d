"""Real-browser settings: where Chromium is, its arguments, whether it is required."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"


REQUIRE = os.environ.get("MELDPUNT_REQUIRE_BROWSER") == "1"


ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing() -> str | None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        return f"{CHROMIUM} not found (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; never `playwright install`)"
    return None


def need_browser() -> None:
    """Skip the calling test (fail it under ``MELDPUNT_REQUIRE_BROWSER=1``) when no browser can run."""
    reason = _missing()
    if reason:
        if REQUIRE:
            pytest.fail(reason)
        pytest.skip(reason)


def screenshot(target: Any, name: str) -> None:
    """A screenshot of a page (the whole page) or of a locator, for a person to look at: into
    ``$MELDPUNT_SCREENSHOTS`` as ``name``.png, and none when it is unset. Each costs 0.5-1 s of
    Chromium's time, and a copy in a test's tmp_path is one nobody looks at."""
    folder = os.environ.get("MELDPUNT_SCREENSHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    path = str(Path(folder) / f"{name}.png")
    if hasattr(target, "goto"):  # a page
        target.screenshot(path=path, full_page=True)
    else:
        target.screenshot(path=path)


def staff_sign_in(page: Any, base: str, name: str, password: str, code: str) -> None:
    """Sign a staff member in at ``base``/login in a Playwright page: name and password, then the
    TOTP code (a code is taken once: share the session with ``context.storage_state()``)."""
    page.goto(f"{base}/login")
    page.fill("#name", name)
    page.fill("#password", password)
    page.locator("main form button[type=submit]").first.click()
    page.fill("#code", code)
    page.locator("main form button[type=submit]").first.click()
