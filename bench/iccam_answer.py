"""The ICCAM client on a huge or deeply nested answer: peak memory (tracemalloc) and time of
``IccamClient.get_content`` — which stops at ``iccam.max_answer_bytes`` and checks nesting before
parsing — against reading the whole answer and parsing it (httpx ``.json()``), from the same run.

    .venv/bin/python bench/iccam_answer.py [--mib 64] [--budget-mib 4]

A server answering ICCAM's address (a broken proxy, a hostile one) must not be able to make a
worker hold its whole answer, nor recurse through a nesting bomb.
"""

from __future__ import annotations

import argparse
import gc
import threading
import time
import tracemalloc
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from meldpunt.iccam.client import Credentials, IccamClient, IccamError

CHUNK = b'"' + b"x" * 65534 + b'"'


def serve(size: int, deep: int) -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # the log-in
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b'{"bearerToken": "t", "bearerTokenExpiresIn": 1800}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            deep_answer = self.path.startswith("/rest/Content/2")
            total = 2 * deep if deep_answer else size
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(total))
            self.end_headers()
            try:
                if deep_answer:
                    self.wfile.write(b"[" * deep + b"]" * deep)
                    return
                sent = 0
                while sent < total:
                    part = CHUNK[: total - sent]
                    self.wfile.write(part)
                    sent += len(part)
            except OSError:
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def measure(call: Callable[[], Any]) -> tuple[float, float, str]:
    gc.collect()
    tracemalloc.start()
    start = time.perf_counter()
    try:
        call()
        outcome = "parsed"
    except (IccamError, ValueError, RecursionError) as exc:
        outcome = type(exc).__name__
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20, seconds, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=64, help="size of the huge answer")
    parser.add_argument("--budget-mib", type=int, default=4, help="iccam.max_answer_bytes")
    parser.add_argument("--deep", type=int, default=200_000, help="nesting of the deep answer")
    args = parser.parse_args()
    server, port = serve(args.mib * 2**20, args.deep)
    base = f"http://127.0.0.1:{port}/"
    client = IccamClient(base, Credentials("u", "p"), 30.0, max_bytes=args.budget_mib * 2**20)
    client._ensure_login()  # logged in before measuring: the measure is the answer alone
    rows = []
    with httpx.Client() as plain:
        for name, path in (
            (f"{args.mib} MiB answer", "rest/Content/1"),
            (f"nesting {args.deep}", "rest/Content/2"),
        ):
            content_id = int(path.rsplit("/", 1)[1])

            def ours_call(cid: int = content_id) -> Any:
                return client.get_content(cid)

            def whole_call(p: str = path) -> Any:
                return plain.get(base + p).json()

            ours, whole = measure(ours_call), measure(whole_call)
            rows.append((name, ours, whole))
    client.close()
    server.shutdown()
    table = Table(title="ICCAM answer budget: peak memory and time, ours beside reading the whole answer")
    for col in ("answer", "ours MiB", "ours s", "ours", "whole MiB", "whole s", "whole", "memory ratio"):
        table.add_column(col)
    for name, (om, os_, oo), (wm, ws, wo) in rows:
        table.add_row(
            name, f"{om:.1f}", f"{os_:.2f}", oo, f"{wm:.1f}", f"{ws:.2f}", wo, f"{wm / max(om, 0.01):.0f}x"
        )
    Console().print(table)


if __name__ == "__main__":
    main()
