"""A small benign "web" on loopback for the demo and the tests: pages with generated landscapes and
patterns (some of them in the demo hash lists), a redirect, a dead link, a slow host, direct media.

Served by the standard library's threading HTTP server on 127.0.0.1; nothing leaves the machine.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from meldpunt.demo import MEDIA

PAGES: dict[str, str] = {
    # every medium on a list: the item is known, nobody needs to look
    "/gallery/sunset.html": '<img src="/media/sunset-over-hills-resized-copy.jpg"><img src="/media/checkerboard.png">',
    # one new image beside a known one: an analyst must look
    "/gallery/mixed.html": (
        '<picture><source srcset="/media/morning-valley.jpg 1x"></picture>'
        '<img src="/media/sunset-over-hills.jpg" alt="">'
    ),
    # only a file on the benign list
    "/blog/waves.html": '<meta property="og:image" content="/media/blue-waves.webp"><p>waves</p>',
    # a known video
    "/clips/dusk.html": '<video controls><source src="/media/drifting-dusk.mp4" type="video/mp4"></video>',
    # a page whose only image is broken
    "/broken.html": '<img src="/media/truncated-download.jpg">',
}
REDIRECTS = {"/old-link": "/gallery/sunset.html"}
SLOW_PREFIX = "/slow/"
SLOW_SECONDS = 3.0
TYPES = {
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".mp4": "video/mp4",
    ".txt": "text/plain",
}


class _Handler(BaseHTTPRequestHandler):
    server_version = "meldpunt-demo-web"

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        web: _Server = self.server  # type: ignore[assignment]
        if path in web.gone:  # taken down by its provider (the demo's locate-and-act story)
            self._send(404, "text/html; charset=utf-8", b"<!doctype html><p>removed</p>")
            return
        if path in web.extra:
            body = (
                f"<!doctype html><html><head><title>demo</title></head><body>{web.extra[path]}</body></html>"
            )
            self._send(200, "text/html; charset=utf-8", body.encode())
            return
        if path.startswith(SLOW_PREFIX):
            time.sleep(SLOW_SECONDS)
            path = "/" + path[len(SLOW_PREFIX) :]
        if path in REDIRECTS:
            self.send_response(301)
            self.send_header("Location", REDIRECTS[path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path in PAGES:
            body = f"<!doctype html><html><head><title>demo</title></head><body>{PAGES[path]}</body></html>"
            self._send(200, "text/html; charset=utf-8", body.encode())
            return
        if path.startswith("/media/"):
            f = MEDIA / Path(path).name
            if f.is_file():
                self._send(200, TYPES.get(f.suffix, "application/octet-stream"), f.read_bytes())
                return
        self._send(404, "text/html; charset=utf-8", b"<!doctype html><p>not found</p>")

    def _send(self, status: int, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    #: pages of this web beyond :data:`PAGES`, and paths its provider took down (404 now)
    extra: dict[str, str]
    gone: set[str]


class DemoWeb:
    """``with DemoWeb() as web: web.url("/gallery/sunset.html")``; ``extra`` pages beside the
    usual ones, and ``gone``: paths taken down since (they answer 404)."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, extra: dict[str, str] | None = None
    ) -> None:
        self.server = _Server((host, port), _Handler)
        self.server.daemon_threads = True
        self.server.extra = dict(extra or {})
        self.server.gone = set()
        self.thread = threading.Thread(target=self.server.serve_forever, name="demo-web", daemon=True)

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def gone(self) -> set[str]:
        return self.server.gone

    def start(self) -> DemoWeb:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> DemoWeb:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def demo_reports(web: DemoWeb) -> list[tuple[list[str], bool]]:
    """The reports the demo files at start: (URLs, urgent)."""
    return [
        ([web.url("/gallery/sunset.html"), web.url("/old-link")], False),
        ([web.url("/gallery/mixed.html")], True),
        ([web.url("/blog/waves.html"), web.url("/clips/dusk.html")], False),
        ([web.url("/gone.html"), web.url("/broken.html")], False),
        ([web.url("/slow/gallery/mixed.html")], False),
        ([web.url("/media/sunset-over-hills.jpg")], False),
    ]
