"""Shared pieces of the survivor web tests: the survivor world with the web app and a client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anyio.from_thread

from meldpunt.settings import WebSettings
from meldpunt.web import create_app
from tests.helpers.survivors import World, world
from tests.helpers.webclient import WebClient


@dataclass
class WebWorld:
    world: World
    app: Any
    portal: Any

    def client(self, peer: tuple[str, int] = ("127.0.0.1", 123)) -> WebClient:
        return WebClient.on(self.portal, self.app, peer)


@contextmanager
def web_world(db_url: str, **settings: Any) -> Iterator[WebWorld]:
    with world(db_url, **settings) as w, anyio.from_thread.start_blocking_portal() as portal:
        app = create_app(w.services, WebSettings(secret="test secret"))
        yield WebWorld(w, app, portal)


def token(html: str) -> str:
    m = re.search(r'name="token" value="([^"]+)"', html)
    assert m, "no form token on the page"
    return m.group(1)


def case_code(html: str) -> str:
    m = re.search(r'id="case-code"><strong>([A-Z2-7-]+)</strong>', html)
    assert m, "no case code on the page"
    return m.group(1)


@contextmanager
def served(ww: WebWorld) -> Iterator[str]:
    """The world's app served by uvicorn in a thread on loopback; yields its base address."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(ww.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
