"""A hosting provider's web server on 127.0.0.1 for the journeys (locate, notice, re-check until
removed): pages showing one generated image under a provider's host name, which only the
services' resolver (:meth:`Hosting.resolve`) knows; a path the provider removed answers 404."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Hosting:
    """``pages`` (path → HTML) and the ``image`` at ``image_path`` under ``host``; paths in ``gone``
    and any other path answer 404."""

    host: str
    pages: dict[str, bytes]
    image_path: str
    image: bytes
    gone: set[str] = field(default_factory=set)
    server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def resolve(self, host: str) -> list[str]:
        """The services' resolver: the provider's name is 127.0.0.1; nothing else resolves."""
        if host == self.host:
            return ["127.0.0.1"]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def start(self) -> Hosting:
        hosting = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path in hosting.gone or path not in (*hosting.pages, hosting.image_path):
                    body, kind, status = b"not found", "text/plain", 404
                elif path in hosting.pages:
                    body, kind, status = hosting.pages[path], "text/html; charset=utf-8", 200
                else:
                    body, kind, status = hosting.image, "image/jpeg", 200
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
