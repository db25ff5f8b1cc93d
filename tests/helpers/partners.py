"""Two meldpunt instances on loopback for the partner-channel tests: each its own database, key ring
and injected clock; the receiver's real web app served by uvicorn in a thread (or a closed port /
a 503 while it is "down")."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn

from meldpunt.act.partners import Partners
from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock
from meldpunt.settings import KeySettings, PartnerSettings, Settings

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Instance:
    name: str
    services: Services
    clock: ManualClock
    port: int
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    #: while set, the app answers every request 503 (a partner whose instance is unhealthy)
    unavailable: threading.Event = field(default_factory=threading.Event)
    #: how many messages reached the inbox (whatever the answer)
    posts: list[int] = field(default_factory=lambda: [0])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def public_key(self) -> str:
        return self.services.signing_keys().current.public_b64

    def start(self) -> None:
        """Serve this instance's real web app on its port (uvicorn in a thread)."""
        from meldpunt.web.app import create_app

        app = create_app(self.services)
        unavailable, posts = self.unavailable, self.posts

        async def gate(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"] == "/api/v1/partner/inbox":
                posts[0] += 1
            if scope["type"] == "http" and unavailable.is_set():
                await send(
                    {"type": "http.response.start", "status": 503, "headers": [(b"content-length", b"0")]}
                )
                await send({"type": "http.response.body", "body": b""})
                return
            await app(scope, receive, send)

        config = uvicorn.Config(gate, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        for _ in range(500):  # waits for the socket, not for time
            if self.server.started:
                return
            time.sleep(0.01)
        raise RuntimeError("uvicorn did not start")

    def stop(self) -> None:
        """Close the port (a partner that is down)."""
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(10)
            self.server = self.thread = None


def make_instance(
    name: str, db_url: str, tmp: Path, clock: ManualClock | None = None, **partner: Any
) -> Instance:
    clock = clock or ManualClock(START)
    settings = Settings(
        db=db_url,
        keys=KeySettings(file=str(tmp / f"{name}.signkeys")),
        partner=PartnerSettings(instance_name=name, **partner),
    )
    services = Services(settings, clock)
    services.signing_keys()
    return Instance(name, services, clock, free_port())


def pair(a: Instance, b: Instance) -> None:
    """Each instance configures the other (its current public key, by copying)."""
    Partners(a.services).add(b.name, b.url, ["BE"], [b.public_key], actor="cli:test")
    Partners(b.services).add(a.name, a.url, ["NL"], [a.public_key], actor="cli:test")


@contextmanager
def two_instances(
    db_a: str, db_b: str, tmp: Path, *, serve_b: bool = True, **partner: Any
) -> Iterator[tuple[Instance, Instance]]:
    """``nl-hotline`` (sender) and ``be-hotline`` (receiver, served), sharing one clock."""
    clock = ManualClock(START)
    a = make_instance("nl-hotline", db_a, tmp, clock, **partner)
    b = make_instance("be-hotline", db_b, tmp, clock, **partner)
    pair(a, b)
    if serve_b:
        b.start()
    try:
        yield a, b
    finally:
        b.stop()
        a.stop()
        a.services.close()
        b.services.close()
