"""The web test client: a cookie- and CSRF-aware client for a real app, and its helpers."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
from sqlalchemy import MetaData, select

from meldpunt.bootstrap import Services

WEB = Path(__file__).parents[2] / "src" / "meldpunt" / "web"


class WebClient:
    """The one web test client: httpx's async client on a real app (it keeps cookies), driven from
    sync tests through an anyio portal. ``WebClient.on(portal, app, peer)`` builds one on an app,
    with ``peer`` as the client address the app sees."""

    def __init__(self, portal: Any, client: httpx.AsyncClient) -> None:
        self._portal = portal
        self._client = client
        self.cookies = client.cookies
        self.headers = client.headers  # e.g. Accept-Language, sent with every request

    @classmethod
    def on(cls, portal: Any, app: Any, peer: tuple[str, int] = ("127.0.0.1", 123)) -> WebClient:
        transport = httpx.ASGITransport(app=app, client=peer)
        return cls(portal, httpx.AsyncClient(transport=transport, base_url="http://meldpunt.test"))

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        response: httpx.Response = self._portal.call(
            functools.partial(self._client.request, method, url, **kw)
        )
        return response

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)

    def close(self) -> None:
        self._portal.call(self._client.aclose)


def make_client(app: Any) -> Iterator[WebClient]:
    with anyio.from_thread.start_blocking_portal() as portal:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://meldpunt.test")
        yield WebClient(portal, client)
        portal.call(client.aclose)


def token_of(html: str) -> str:
    m = re.search(r'name="token" value="([^"]+)"', html)
    assert m, "no form token on the page"
    return m.group(1)


def form(client: WebClient, lang: str = "en", **fields: str) -> httpx.Response:
    page = client.get(f"/report?lang={lang}")
    data = {"token": token_of(page.text), "lang": lang, "seen_on": "website", **fields}
    return client.post("/report", data=data)


def receipt_code(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    m = re.match(r"/receipt/([A-Z2-7-]+)\?", response.headers["location"])
    assert m, response.headers["location"]
    return m.group(1)


def _database_text(services: Services) -> str:
    meta = MetaData()
    meta.reflect(services.engine)
    parts: list[str] = []
    with services.engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                parts.append(repr(tuple(row)))
    return "\n".join(parts)
