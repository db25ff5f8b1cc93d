"""Fake hosting providers on loopback for re-check tests: each serves pages of generated (benign)
images under its own host name, and after a notice does what real providers do — takes the
content down, never does, takes it down and it comes back, moves it to another machine, drops the
domain, swaps or re-encodes the image, empties the page, or falls over.

Two HTTP servers on the same port, one on 127.0.0.1 and one on 127.0.0.2 (all of 127/8 is loopback
on Linux), are the providers' two machines; the resolver hook (``Providers.resolve``, put into the
walk's fetch policy by :func:`install`) says where each host name points at the injected clock's
time. Every answer closes its connection, so a move is seen at once (no pooled connection to the
old machine). Behaviour is driven by the clock: ``provider.notice(at)`` and ``clock.advance``.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock
from meldpunt.domain.acting import TakedownState
from meldpunt.pipeline import walk
from meldpunt.pipeline.intake import receipt_hash
from meldpunt.settings import Settings
from meldpunt.signals import hash_bytes
from meldpunt.store.reports import Item, Medium, Report
from tests.helpers.acting import seed_item, seed_location, seed_takedown
from tests.helpers.imagegen import scene

HOME = "127.0.0.1"
AWAY = "127.0.0.2"

#: what a provider does once noticed (after its ``after`` delay)
BEHAVIOURS = (
    "complies",  # 404 from then on
    "gone410",  # 410 from then on
    "never",  # keeps it online
    "relapses",  # 404 until ``down_for`` after it was first asked for and gone, then back online
    "moves",  # the host name points at the other machine, which serves the same content
    "drops_domain",  # the name no longer resolves (NXDOMAIN)
    "swaps_media",  # the page shows another picture
    "reencodes",  # the same picture, as a JPEG (other bytes)
    "strips_page",  # the page stays, without its images (which are still served at their address)
    "deletes_media",  # the page stays as it was, its images answer 404
    "falls_over",  # 503 for everything
)


def png(seed: int) -> bytes:
    buf = io.BytesIO()
    scene(seed, 160, 120).save(buf, format="PNG")
    return buf.getvalue()


def jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    scene(seed, 160, 120).convert("RGB").save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@dataclass
class Provider:
    name: str
    host: str
    behaviour: str
    clock: ManualClock
    port: int
    after: timedelta = timedelta(hours=2)
    down_for: timedelta = timedelta(minutes=7)
    noticed_at: datetime | None = None
    #: the machine the content is on before any move
    home: str = HOME
    #: a relapse: when the content was first seen gone (it is back ``down_for`` later)
    first_gone_at: datetime | None = None

    def notice(self, at: datetime | None = None) -> None:
        """The provider received a notice (by the clock's time unless given)."""
        self.noticed_at = at or self.clock.now()

    def acting(self) -> bool:
        """Whether, by the clock, the provider has acted on the notice."""
        return self.noticed_at is not None and self.clock.now() >= self.noticed_at + self.after

    def phase(self) -> str:
        """The behaviour in force now: "online" until it acts, then its behaviour (a relapse is
        back online after ``down_for``)."""
        if not self.acting():
            return "online"
        assert self.noticed_at is not None
        back = self.first_gone_at is not None and self.clock.now() >= self.first_gone_at + self.down_for
        if self.behaviour == "relapses" and back:
            return "online"
        return self.behaviour

    def address(self) -> str | None:
        """Where the host name points now (None: it does not resolve)."""
        phase = self.phase()
        if phase == "drops_domain":
            return None
        return AWAY if phase == "moves" else self.home

    def url(self, n: int, *, direct: bool = False) -> str:
        path = f"/media/{n}.png" if direct else f"/item/{n}"
        return f"http://{self.host}:{self.port}{path}"

    def media_url(self, n: int) -> str:
        return f"http://{self.host}:{self.port}/media/{n}.png"


@dataclass
class Hits:
    lock: threading.Lock = field(default_factory=threading.Lock)
    paths: list[tuple[str, str, str]] = field(default_factory=list)  # (host, path, machine)
    in_flight: int = 0
    most_in_flight: int = 0


class Providers:
    """The two loopback machines and the providers on them."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.providers: dict[str, Provider] = {}
        self.hits = Hits()
        #: when set: each answer waits until this many requests are in at once (or 5 s pass),
        #: so a test can see that re-checks run concurrently without timing anything
        self.rendezvous: threading.Barrier | None = None
        self.rendezvous_met = 0
        self.servers: list[ThreadingHTTPServer] = []
        first = self._serve(HOME, 0)
        self.port = int(first.server_address[1])
        self._serve(AWAY, self.port)

    def _serve(self, ip: str, port: int) -> ThreadingHTTPServer:
        world = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                world.answer(self, ip)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

        server = Server((ip, port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers.append(server)
        return server

    def add(self, name: str, behaviour: str, **kw: Any) -> Provider:
        assert behaviour in BEHAVIOURS, behaviour
        host = f"{name}.test"
        p = Provider(name, host, behaviour, self.clock, self.port, **kw)
        self.providers[host] = p
        return p

    def resolve(self, host: str) -> list[str]:
        """The resolver hook: a provider's host points where its behaviour says; every other name
        (and a dropped domain) is NXDOMAIN, as the system resolver says it."""
        p = self.providers.get(host.lower())
        where = p.address() if p is not None else None
        if where is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [where]

    def close(self) -> None:
        for s in self.servers:
            s.shutdown()
            s.server_close()

    # --- the answers ----------------------------------------------------------------------

    def answer(self, h: BaseHTTPRequestHandler, machine: str) -> None:
        host = (h.headers.get("Host") or "").split(":")[0].lower()
        path = h.path.split("?")[0]
        with self.hits.lock:
            self.hits.paths.append((host, path, machine))
            self.hits.in_flight += 1
            self.hits.most_in_flight = max(self.hits.most_in_flight, self.hits.in_flight)
        try:
            if self.rendezvous is not None:
                try:
                    self.rendezvous.wait(timeout=5)
                    with self.hits.lock:
                        self.rendezvous_met += 1
                except threading.BrokenBarrierError:
                    pass
            status, body, ctype = self.content(host, path, machine)
        finally:
            with self.hits.lock:
                self.hits.in_flight -= 1
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(body)
        h.close_connection = True

    def content(self, host: str, path: str, machine: str) -> tuple[int, bytes, str]:
        p = self.providers.get(host)
        if p is None:
            return 404, b"no such site", "text/plain"
        phase = p.phase()
        if machine != (p.address() or p.home):  # the machine the name no longer points at
            return 404, b"not here", "text/plain"
        if phase in ("complies", "relapses"):
            if p.first_gone_at is None:
                p.first_gone_at = self.clock.now()
            return 404, b"removed", "text/plain"
        if phase == "gone410":
            return 410, b"gone", "text/plain"
        if phase == "falls_over":
            return 503, b"try later", "text/plain"
        if path.startswith("/item/"):
            n = int(path.rsplit("/", 1)[-1])
            img = "" if phase == "strips_page" else f'<img src="/media/{n}.png">'
            page = f"<!doctype html><html><body><h1>benign page {n}</h1>{img}</body></html>"
            return 200, page.encode(), "text/html; charset=utf-8"
        if path.startswith("/media/") and path.endswith(".png"):
            n = int(path.rsplit("/", 1)[-1][: -len(".png")])
            if phase == "swaps_media":
                return 200, png(10_000 + n), "image/png"
            if phase == "deletes_media":
                return 404, b"removed", "text/plain"
            if phase == "reencodes":
                return 200, jpeg(n), "image/jpeg"
            return 200, png(n), "image/png"
        return 404, b"not here", "text/plain"


def install(monkeypatch: pytest.MonkeyPatch, world: Providers) -> None:
    """The walk's fetcher resolves through ``world`` (the resolver hook of ``FetchPolicy``)."""
    original = walk.fetch_policy

    def policy(settings: Settings) -> Any:
        return replace(original(settings), resolver=world.resolve)

    monkeypatch.setattr(walk, "fetch_policy", policy)


@dataclass
class Watched:
    item_id: int
    takedown_id: int
    code: str
    url: str


def seed_watched(
    services: Services,
    provider: Provider,
    n: int,
    *,
    noticed_at: datetime | None,
    reported_at: datetime,
    state: TakedownState = TakedownState.NOTICED,
    direct: bool = False,
    **takedown: Any,
) -> Watched:
    """An item found illegal at ``provider`` (its page ``n`` with one image, or the image itself),
    its medium hashed as the walk would have, its location (the provider's home machine) and a
    monitored takedown first noticed at ``noticed_at``."""
    now = services.clock.now()
    url = provider.url(n, direct=direct)
    item_id, code = seed_item(services.engine, url, now=reported_at, server_ip=provider.home)
    with services.engine.begin() as conn:  # /status hashes the code as the public pages do
        report_id = conn.execute(select(Item.report_id).where(Item.id == item_id)).scalar_one()
        conn.execute(update(Report).where(Report.id == report_id).values(receipt_hash=receipt_hash(code)))
    data = png(n)
    s = hash_bytes(data, f"{n}.png", services.settings)
    media_url = provider.media_url(n)
    with services.engine.begin() as conn:
        conn.execute(
            insert(Medium).values(
                item_id=item_id,
                url=media_url,
                url_key=hashlib.sha256(media_url.encode()).hexdigest(),
                created_at=reported_at,
                outcome="known",  # on a hash list: found illegal (the reporter's status says so)
                kind=s.kind.value,
                size=s.size,
                md5=s.md5,
                sha1=s.sha1,
                sha256=s.sha256,
                pdq=s.pdq or "",
                pdq_quality=s.pdq_quality,
                server_ip=provider.home,
                matches="[]",
            )
        )
    location_id = seed_location(
        services.engine,
        item_id,
        now=reported_at,
        host=provider.host,
        ip=provider.home,
        addresses=json.dumps([provider.home]),
        provider=provider.name,
    )
    takedown_id = seed_takedown(
        services.engine,
        item_id,
        now=now,
        state=state,
        location_id=location_id,
        reported_at=reported_at,
        first_notice_at=noticed_at,
        **takedown,
    )
    return Watched(item_id, takedown_id, code, url)
