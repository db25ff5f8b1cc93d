"""The in-browser hasher under test: a loopback server for static/survivor/ and its test harness,
and a Chromium page that hashes files and hands back the results (with every request it made)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from meldpunt.web.security import CSP
from tests.helpers.browser import ARGS, CHROMIUM

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "src" / "meldpunt" / "web" / "static" / "survivor"
HARNESS = ROOT / "tests" / "fixtures" / "survivor" / "pdqjs-harness.html"


class _Handler(SimpleHTTPRequestHandler):
    """Serves /harness.html, /harness.js and /static/survivor/*, nothing else, under the app's CSP."""

    def translate_path(self, path: str) -> str:
        path = path.split("?", 1)[0]
        if path == "/harness.html":
            return str(HARNESS)
        if path == "/harness.js":
            return str(HARNESS.with_suffix(".js"))
        prefix = "/static/survivor/"
        if path.startswith(prefix) and "/" not in path[len(prefix) :] and ".." not in path:
            return str(STATIC / path[len(prefix) :])
        return str(ROOT / "nonexistent")

    def end_headers(self) -> None:
        # the app's own policy, so the hasher is tested as the app serves it (no inline script)
        self.send_header("Content-Security-Policy", CSP)
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def static_server() -> Iterator[str]:
    """A loopback HTTP server for the harness; yields its base URL (127.0.0.1 is a secure context,
    which WebCrypto needs)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(STATIC)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Request:
    method: str
    url: str
    body: bytes | None


@dataclass
class HarnessPage:
    """A Chromium page on the harness; :meth:`hash` gives the worker's results for files."""

    page: Any
    requests: list[Request] = field(default_factory=list)

    def hash(self, files: list[Path], options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self.page.evaluate("o => { window.hashOptions = o; }", options or {})
        self.page.evaluate("() => document.body.removeAttribute('data-done')")
        self.page.set_input_files("#files", [str(f) for f in files])
        self.page.wait_for_selector("body[data-done]", state="attached", timeout=120_000)
        results: list[dict[str, Any]] = json.loads(self.page.inner_text("#results"))
        return results

    def hash_bytes(self, data: bytes, name: str) -> dict[str, Any]:
        """Hash one file given as bytes (Playwright hands them to the input as a file)."""
        self.page.evaluate("() => { window.hashOptions = {}; document.body.removeAttribute('data-done'); }")
        self.page.set_input_files("#files", [{"name": name, "mimeType": "", "buffer": data}])
        self.page.wait_for_selector("body[data-done]", state="attached", timeout=120_000)
        (result,) = json.loads(self.page.inner_text("#results"))
        return dict(result)


@contextmanager
def harness() -> Iterator[HarnessPage]:
    """Chromium (headless, Debian's) on the harness page, every request recorded with its body."""
    from playwright.sync_api import sync_playwright

    with static_server() as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            hp = HarnessPage(page)

            def record(request: Any) -> None:
                hp.requests.append(Request(request.method, request.url, request.post_data_buffer))

            # the context sees the page's requests and its worker's
            page.context.on("request", record)
            page.goto(f"{base}/harness.html")
            page.wait_for_selector("body[data-ready]", state="attached")
            yield hp
        finally:
            browser.close()
