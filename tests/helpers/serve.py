"""A real ``meldpunt serve`` for browser journeys: the stack, ports, sign-in."""

from __future__ import annotations

import base64
import io
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from PIL import Image
from sqlalchemy import select

from meldpunt.bootstrap import Services
from meldpunt.domain.reports import FINAL_STATES
from meldpunt.pipeline.intake import create_api_token, report_status
from meldpunt.settings import Settings
from meldpunt.store.reports import Item
from tests.helpers.browser import need_browser
from tests.helpers.imagegen import scene

PASSWORD = "a long benign test passphrase 42"


def stop_processes(procs: list[subprocess.Popen[Any]]) -> None:
    """Ask every process to end, then kill the ones still running after 15 s."""
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, check: Callable[[], Any], timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Stack:
    base: str
    web: str
    services: Services
    token: str
    env: dict[str, str]
    logs: Path

    def report(self, path: str) -> tuple[int, str]:
        r = httpx.post(
            f"{self.base}/api/v1/reports",
            json={"urls": [f"{self.web}{path}"], "seen_on": "website"},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        return int(r.json()["item_ids"][0]), str(r.json()["receipt"])

    def public_words(self, receipt: str) -> str:
        view = report_status(self.services, receipt)
        assert view is not None
        return view.state

    def item_state(self, item_id: int) -> str:
        with self.services.engine.connect() as conn:
            return str(conn.execute(select(Item.state).where(Item.id == item_id)).scalar_one())

    def walked(self, item_id: int) -> str:
        return str(
            _wait(
                f"the worker to walk item {item_id}",
                lambda: (s := self.item_state(item_id)) in {x.value for x in FINAL_STATES} and s,
            )
        )


def _enrol_and_sign_in(page: Any, base: str, name: str, start: str = "/login") -> tuple[pyotp.TOTP, str]:
    """Open ``start`` (the sign-in, or a staff page, which sends a signed-out visitor to the
    sign-in), give the password, then the enrolment page: its QR code beside the key; type the key
    into "the app" (pyotp), confirm, keep the recovery codes: and on to ``start`` (or ``/me``).
    Returns the app and the code the enrolment used."""
    from playwright.sync_api import expect

    page.goto(f"{base}{start}")
    assert "/login" in page.url
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    assert "/enrol" in page.url
    qr = page.locator("#qr svg")  # drawn by the server: no script, no image request
    expect(qr).to_be_visible()  # waits: a click returns once the next page is committed, not drawn
    assert qr.bounding_box()["width"] >= 150
    secret = page.inner_text("#secret").replace(" ", "")
    app = pyotp.TOTP(secret)
    code = app.now()
    page.get_by_label("Then enter the 6-digit code the app shows").fill(code)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    assert len(page.locator(".recovery-codes li").all()) >= 8
    page.get_by_role("link", name="I have kept them: continue").click()
    assert page.url == f"{base}{'/me' if start == '/login' else start}"
    return app, code


def _jpeg(img: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=quality)
    return out.getvalue()


ORIGINAL = scene(20261122, 640, 480)


#: the pages of the loopback "web": a gallery with a new image, and later a copy of it elsewhere
FILES: dict[str, tuple[str, bytes]] = {
    "/gallery.html": ("text/html", b'<h1>Gallery</h1><img src="/img/valley.jpg" alt="">'),
    "/img/valley.jpg": ("image/jpeg", _jpeg(ORIGINAL, 90)),
    "/mirror/page.html": ("text/html", b'<p>mirror</p><img src="/mirror/copy.jpg">'),
    "/mirror/copy.jpg": ("image/jpeg", _jpeg(ORIGINAL.resize((600, 450), Image.Resampling.LANCZOS), 75)),
}


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        found = FILES.get(self.path.split("?", 1)[0])
        if found is None:
            self.send_error(404)
            return
        kind, body = found
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def stack(sqlite_db: str, tmp_path: Path) -> Iterator[Stack]:
    need_browser()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    web = f"http://127.0.0.1:{httpd.server_address[1]}"
    env = {
        **os.environ,
        "MELDPUNT_FETCH_ALLOWED_NETWORKS": "127.0.0.0/8",
        "MELDPUNT_WORKER_POLL_S": "0.1",
        "MELDPUNT_REVIEW_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "MELDPUNT_WEB_SECRET": secrets.token_hex(32),
    }
    services = Services(Settings.from_env(env, db=sqlite_db))
    services.engine  # noqa: B018 - migrated before the processes start
    token = create_api_token(services, "journey")
    port = _port()
    cli = [sys.executable, "-m", "meldpunt.cli", "--db", sqlite_db]
    logs = tmp_path / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with open(logs / "serve.log", "wb") as out:
            procs.append(
                subprocess.Popen(
                    [*cli, "serve", "--port", str(port), "--workers", "0"], env=env, stdout=out, stderr=out
                )
            )
        with open(logs / "worker.log", "wb") as out:
            procs.append(subprocess.Popen([*cli, "worker"], env=env, stdout=out, stderr=out))
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(f"{base}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        _wait("the web process", up, 60)
        yield Stack(base, web, services, token, env, logs)
    finally:
        stop_processes(procs)
        httpd.shutdown()
        services.close()
