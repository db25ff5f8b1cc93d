"""Crawl rate: 1,000 page fetches from a loopback host that adds 200 ms to every response, at the
fetcher's default concurrency, against the ideal rate (concurrency / 0.2 s) from the same run.

    .venv/bin/python bench/crawl.py [--urls 1000] [--delay 0.2]

Everything is on 127.0.0.1: the "host" is a threaded HTTP server of this script's own.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from meldpunt.fetch import Fetcher, FetchError, FetchPolicy

PAGE = b"<!doctype html><html><body><p>benign page</p><img src='/a.png'></body></html>"


def serve(delay: float) -> ThreadingHTTPServer:
    class Slow(BaseHTTPRequestHandler):
        # HTTP/1.1 keep-alive and no Nagle: the host's only cost is the delay it was told to add
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            time.sleep(delay)
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256

    server = Server(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def crawl(urls: list[str], policy: FetchPolicy, progress: Progress) -> tuple[float, int]:
    task = progress.add_task("fetching", total=len(urls))
    failures = 0

    async def one(fetcher: Fetcher, url: str) -> None:
        nonlocal failures
        try:
            await fetcher.fetch_page(url)
        except FetchError:
            failures += 1
        progress.advance(task)

    start = time.perf_counter()
    async with Fetcher(policy) as fetcher:
        await asyncio.gather(*(one(fetcher, u) for u in urls))
    return time.perf_counter() - start, failures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--urls", type=int, default=1000)
    ap.add_argument("--delay", type=float, default=0.2, help="seconds the host adds to every response")
    args = ap.parse_args()
    server = serve(args.delay)
    port = server.server_address[1]
    policy = FetchPolicy(allowed_networks=("127.0.0.0/8",))
    urls = [f"http://127.0.0.1:{port}/page/{i}" for i in range(args.urls)]
    console = Console()
    with Progress(console=console, transient=True) as progress:
        elapsed, failures = asyncio.run(crawl(urls, policy, progress))
    server.shutdown()
    rate = args.urls / elapsed
    ideal = policy.max_concurrency / args.delay
    table = Table(
        title=f"{args.urls:,} pages, host adds {args.delay * 1000:.0f} ms, concurrency {policy.max_concurrency}"
    )
    for col in ("", "pages/s", "share of ideal"):
        table.add_column(col, justify="right")
    table.add_row("meldpunt.fetch", f"{rate:,.1f}", f"{rate / ideal:.0%}")
    table.add_row("ideal: concurrency / delay", f"{ideal:,.1f}", "100%")
    console.print(table)
    console.print(f"failures: {failures}; elapsed {elapsed:.1f} s (target: ≥ 80% of ideal)")


if __name__ == "__main__":
    main()
