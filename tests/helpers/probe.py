"""Loopback servers that misbehave the way outside servers do, for the outside probe of #10:
a registry that compresses its answers, a webhook that answers 2xx and then never finishes its
body, one that pours out an endless body."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Route = Callable[[BaseHTTPRequestHandler, "Served"], None]


@dataclass
class Served:
    """One loopback server: ``base`` URL, ``posts`` (JSON bodies received), ``done`` set when the
    test is over (handlers that hang wait on it), ``cut_short`` counts answers the client dropped."""

    base: str = ""
    posts: list[Any] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    cut_short: int = 0
    finished: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def serve(route: Route) -> Iterator[Served]:
    state = Served()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            route(self, state)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.lock:
                state.posts.append(json.loads(body or b"null"))
            route(self, state)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.done.set()
        server.shutdown()
        server.server_close()


def gzip_json(h: BaseHTTPRequestHandler, doc: Any) -> None:
    """Answer ``doc`` as JSON, gzip-compressed when the client says it accepts gzip (as the
    registries' web servers do)."""
    body = json.dumps(doc).encode()
    accepts = h.headers.get("Accept-Encoding", "")
    h.send_response(200)
    h.send_header("Content-Type", "application/rdap+json")
    if "gzip" in accepts:
        body = gzip.compress(body)
        h.send_header("Content-Encoding", "gzip")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def ok_then_silence(h: BaseHTTPRequestHandler, state: Served) -> None:
    """200 with a promised body that never comes (until the test ends)."""
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", "100")
    h.end_headers()
    h.wfile.flush()
    state.done.wait(30)


def ok_then_endless(h: BaseHTTPRequestHandler, state: Served) -> None:
    """200 and then a body that goes on (64 MiB in 64 KiB pieces), unless the client hangs up."""
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(64 * 1024 * 1024))
    h.end_headers()
    piece = b" " * 65536
    try:
        for _ in range(1024):
            if state.done.is_set():
                return
            h.wfile.write(piece)
    except OSError:
        with state.lock:
            state.cut_short += 1
        return
    with state.lock:
        state.finished += 1


def trickle_ok(h: BaseHTTPRequestHandler, state: Served) -> None:
    """A 200 whose status line and headers come one byte every 0.2 s (about 8 s in all), each
    byte well within any per-read timeout; ``cut_short`` when the client hangs up first."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    try:
        for i in range(len(answer)):
            if state.done.wait(0.2):
                return
            h.wfile.write(answer[i : i + 1])
            h.wfile.flush()
        h.wfile.write(b"\r\n")  # one write more, so a hang-up at the end shows too
        h.wfile.flush()
    except OSError:
        with state.lock:
            state.cut_short += 1
        h.close_connection = True
        return
    with state.lock:
        state.finished += 1
    h.close_connection = True
