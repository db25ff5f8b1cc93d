"""Fake loopback webs: pages served on 127.0.0.1 (``Served``) and a fake resolver."""

from __future__ import annotations

import asyncio
import gzip
import io
import ipaddress
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpcore
import pytest

from meldpunt.fetch import Fetcher, FetchError, FetchPolicy, Page
from tests.helpers.imagegen import scene


def png_bytes(seed: int = 1) -> bytes:
    buf = io.BytesIO()
    scene(seed, 160, 120).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(seed: int = 2) -> bytes:
    buf = io.BytesIO()
    scene(seed, 160, 120).save(buf, format="JPEG", quality=80)
    return buf.getvalue()


PAGE = b"""<!doctype html><html><head>
<meta property="og:image" content="/og.png">
<meta property="og:video" content="https://cdn.example.test/clip.mp4">
<title>benign</title></head><body>
<img src="img/a.png" alt="a">
<img src="/img/b.jpg" srcset="/img/b-1x.jpg 1x, /img/b,2x.jpg 2x, img/a.png 3x">
<picture><source srcset="/pic/small.webp 480w, /pic/large.webp 1080w" type="image/webp">
<img src="/pic/fallback.jpg"></picture>
<video src="/vid/one.mp4" poster="/vid/poster.jpg"><source src="/vid/two.webm" type="video/webm"></video>
<source src="/not-in-video.mp4">
<img src="data:image/png;base64,iVBORw0KGgo=">
<img src="javascript:alert(1)"><img src="ftp://x.test/y.png"><img src="  ">
<img src="/img/a.png#frag">
</body></html>"""


class Web:
    """Routes and a log of what was asked (path, Host header)."""

    def __init__(self) -> None:
        self.png = png_bytes()
        self.jpeg = jpeg_bytes()
        self.hits: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=6)
        self.page_gz = gzip.compress(PAGE)

    def count(self, path: str) -> int:
        with self.lock:
            return sum(1 for p, _ in self.hits if p == path)

    def route(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        path, query = parts.path, parse_qs(parts.query)
        with self.lock:
            self.hits.append((path, h.headers.get("Host", "")))
        send: Callable[..., None] = lambda *a, **k: _send(h, *a, **k)  # noqa: E731
        if path == "/page":
            send(200, PAGE, "text/html; charset=utf-8")
        elif path == "/page-gz":
            send(200, self.page_gz, "text/html", {"Content-Encoding": "gzip"})
        elif path == "/page-no-type":
            send(200, PAGE, None)
        elif path == "/based":
            body = b'<html><head><base href="https://media.example.test/dir/"></head><body><img src="x.png"><img src="/y.png"></body></html>'
            send(200, body, "text/html")
        elif path in ("/img/a.png", "/og.png"):
            send(200, self.png, "image/png")
        elif path == "/img/b.jpg":
            send(200, self.jpeg, "image/jpeg")
        elif path == "/image-as-octet":
            send(200, self.png, "application/octet-stream")
        elif path == "/image-as-html":
            send(200, self.png, "text/html")
        elif path == "/text":
            send(200, b"just some text, no markup at all", "text/plain")
        elif path == "/json":
            send(200, b'{"a": 1}', "application/json")
        elif path == "/malformed":
            send(200, malformed_html(), "text/html; charset=bogus-charset")
        elif path == "/many":
            imgs = b"".join(b'<img src="/m/%d.png">' % i for i in range(50))
            send(200, b"<html><body>" + imgs + b"</body></html>", "text/html")
        elif path == "/slow":
            time.sleep(float(query.get("s", ["3"])[0]))
            send(200, b"<html>late</html>", "text/html")
        elif path == "/slow-body":
            _slow_body(h)
        elif path == "/stall-body":  # headers and a first part, then nothing
            h.send_response(200)
            h.send_header("Content-Type", "image/png")
            h.send_header("Content-Length", "100000")
            h.end_headers()
            h.wfile.write(self.png[:1000])
            h.wfile.flush()
            time.sleep(3)
            h.close_connection = True
        elif path == "/huge":
            _stream(h, "text/html", 20 * 1024 * 1024)
        elif path == "/huge-declared":
            send(200, b"x" * 10, "text/html", {"Content-Length": str(10**10)}, raw_length=True)
        elif path == "/bomb":
            send(200, self.bomb, "text/html", {"Content-Encoding": "gzip"})
        elif path == "/bad-gzip":
            send(200, b"this is not gzip at all" * 10, "text/html", {"Content-Encoding": "gzip"})
        elif path == "/brotli":
            send(200, b"xx", "text/html", {"Content-Encoding": "br"})
        elif path == "/loop":
            send(302, b"", "text/plain", {"Location": "/loop"})
        elif path == "/chain":
            n = int(query.get("n", ["0"])[0])
            target = f"/chain?n={n - 1}" if n > 0 else "/page"
            send(301, b"", "text/plain", {"Location": target})
        elif path == "/go":
            send(302, b"", "text/plain", {"Location": query["to"][0]})
        elif path == "/canary":
            send(200, b"<html>you should never see this</html>", "text/html")
        else:
            send(404, b"not here", "text/plain")


def malformed_html() -> bytes:
    deep = b"<div>" * 100_000 + b'<img src="/deep.png">' + b"</span>" * 1000
    huge_attr = b'<img alt="' + b"A" * 2_000_000 + b'" src="/after-huge.png">'
    huge_src = b'<img src="/' + b"B" * 100_000 + b'.png">'
    junk = bytes(range(256)) * 50 + b"\xff\xfe\x00\x00<img src='/\xff\xfe.png'>"
    broken = b"<img src=/noquotes.png <img <<<>>> <!-- unterminated <script>var a='<img src=/in-script.png>'"
    return b"<html><body>" + deep + huge_attr + huge_src + junk + b'<img src="/ok.png">' + broken


def _send(
    h: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    ctype: str | None,
    headers: dict[str, str] | None = None,
    raw_length: bool = False,
) -> None:
    h.send_response(status)
    if ctype is not None:
        h.send_header("Content-Type", ctype)
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    if not raw_length:
        h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def _stream(h: BaseHTTPRequestHandler, ctype: str, total: int) -> None:
    h.send_response(200)
    h.send_header("Content-Type", ctype)
    h.end_headers()  # no length: read until close
    h.close_connection = True
    chunk = b"<p>" + b"x" * 65533
    sent = 0
    while sent < total:
        h.wfile.write(chunk)
        sent += len(chunk)


def _slow_body(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.end_headers()
    h.close_connection = True
    for _ in range(40):  # a trickle: each read is quick, the whole is slow
        h.wfile.write(b"<p>tick</p>")
        h.wfile.flush()
        time.sleep(0.1)


class _Handler(BaseHTTPRequestHandler):
    web: Web
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        try:
            self.web.route(self)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up on huge bodies is the point


class Served:
    def __init__(self, web: Web, host: str) -> None:
        handler = type("Handler", (_Handler,), {"web": web})
        self.server = _Server((host, 0), handler)
        self.host = host
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """The backend behind the guard: records every address it is asked to connect to, and as a
    safety net refuses anything but loopback, so a test can never reach another machine."""

    def __init__(self) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.connects: list[tuple[str, int]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        if not ipaddress.ip_address(host).is_loopback:  # also fails on a hostname: must be an IP
            raise AssertionError(f"test tried to connect outside loopback: {host}")
        return await self.inner.connect_tcp(host, port, timeout=timeout, socket_options=socket_options)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class FakeResolver:
    """Names from a table (a list of answers is given out in turn); anything else fails to
    resolve. No real DNS is ever asked."""

    def __init__(self, table: dict[str, list[list[str]]]) -> None:
        self.table = table
        self.calls: list[str] = []

    def __call__(self, host: str) -> list[str]:
        self.calls.append(host)
        answers = self.table.get(host)
        if not answers:
            raise OSError(f"no such name in the test table: {host}")
        return answers.pop(0) if len(answers) > 1 else answers[0]


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


def local_policy(**kw: Any) -> FetchPolicy:
    base: dict[str, Any] = {"allowed_networks": ("127.0.0.1/32",), "timeout_s": 5.0}
    base.update(kw)
    return FetchPolicy(**base)


async def page(url: str, policy: FetchPolicy | None = None, backend: RecordingBackend | None = None) -> Page:
    async with Fetcher(policy or local_policy(), connect_backend=backend or RecordingBackend()) as f:
        return await f.fetch_page(url)


def error_of(coro: Awaitable[Any]) -> FetchError:
    with pytest.raises(FetchError) as info:
        run(coro)
    return info.value
