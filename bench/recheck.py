"""Re-check rate: one re-check round of 10,000 monitored URLs on a loopback host that adds 200 ms to
every answer, at the default re-check concurrency, against the concurrency-ideal rate
(concurrency / 0.2 s) from the same run.

    .venv/bin/python bench/recheck.py [--urls 10000] [--delay 0.2] [--direct] [--db URL]

The round is the real one: the tick claims the due takedowns and enqueues ``recheck`` jobs
(``recheck.batch_size`` each), one walk worker (``pipeline.walk.Walker``) runs them, fetching each
batch concurrently with its fetcher and committing each batch's effects in one transaction. Each
URL is a page with one image (two answers: the page, then the image, compared by SHA-256), or
with ``--direct`` the image itself (one answer). The ideal counts answers: ``answers x delay /
concurrency`` seconds. Everything is on 127.0.0.1 (the host in a process of its own, as another machine would be);
the images are a generated benign pattern.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import multiprocessing
import tempfile
import time
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, insert, select

from meldpunt.act import recheck
from meldpunt.bootstrap import Services
from meldpunt.domain.acting import TakedownState
from meldpunt.fetch import Fetcher
from meldpunt.pipeline.walk import Walker, fetch_policy
from meldpunt.settings import Settings
from meldpunt.store.acting import Takedown
from meldpunt.store.reports import Item, Medium, Report, ReportItem


def benign_png() -> bytes:
    img = Image.new("RGB", (160, 120))
    img.putdata([((x * 7) % 256, (y * 5) % 256, ((x + y) * 3) % 256) for y in range(120) for x in range(160)])
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _serve(delay: float, image: bytes, port: Any, answers: Any, ready: Any) -> None:
    """The slow host's process: a threaded HTTP server that adds ``delay`` to every answer."""

    class Slow(BaseHTTPRequestHandler):
        # HTTP/1.1 keep-alive and no Nagle: the host's only cost is the delay it was told to add
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            time.sleep(delay)
            with answers.get_lock():
                answers.value += 1
            if self.path.startswith("/item/"):
                n = self.path.rsplit("/", 1)[-1]
                body = f"<!doctype html><html><body><img src='/media/{n}.png'></body></html>".encode()
                ctype = "text/html; charset=utf-8"
            else:
                body, ctype = image, "image/png"
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 512

    server = Server(("127.0.0.1", 0), Slow)
    port.value = int(server.server_address[1])
    ready.set()
    server.serve_forever()


class Host:
    """The slow host, in a process of its own (another machine's work is not this one's): adds
    ``delay`` to every answer and counts them."""

    def __init__(self, delay: float, image: bytes) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._port = ctx.Value("i", 0)
        self._answers = ctx.Value("q", 0)
        ready = ctx.Event()
        self.process = ctx.Process(
            target=_serve, args=(delay, image, self._port, self._answers, ready), daemon=True
        )
        self.process.start()
        if not ready.wait(30):
            raise RuntimeError("the slow host did not start")
        self.port = int(self._port.value)

    @property
    def answers(self) -> int:
        return int(self._answers.value)

    @answers.setter
    def answers(self, value: int) -> None:
        with self._answers.get_lock():
            self._answers.value = value

    def close(self) -> None:
        self.process.terminate()
        self.process.join(10)


def seed(services: Services, n: int, port: int, image: bytes, direct: bool) -> None:
    """``n`` reports, items (each with its image hashed), and noticed takedowns due now."""
    now = services.clock.now()
    sha = hashlib.sha256(image).hexdigest()
    base = f"http://127.0.0.1:{port}"
    with services.engine.begin() as conn:
        for start in range(1, n + 1, 1000):
            ids = range(start, min(n, start + 999) + 1)
            conn.execute(
                insert(Report),
                [
                    {
                        "id": i,
                        "receipt_hash": f"{i:064x}",
                        "source": "public",
                        "seen_on": "website",
                        "created_at": now,
                    }
                    for i in ids
                ],
            )
            urls = {i: f"{base}/media/{i}.png" if direct else f"{base}/item/{i}" for i in ids}
            conn.execute(
                insert(Item),
                [
                    {
                        "id": i,
                        "report_id": i,
                        "url": urls[i],
                        "url_key": hashlib.sha256(urls[i].encode()).hexdigest(),
                        "host": "127.0.0.1",
                        "state": "known",
                        "server_ip": "127.0.0.1",
                        "final_url": urls[i],
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in ids
                ],
            )
            conn.execute(insert(ReportItem), [{"report_id": i, "item_id": i} for i in ids])
            media = {i: f"{base}/media/{i}.png" for i in ids}
            conn.execute(
                insert(Medium),
                [
                    {
                        "item_id": i,
                        "url": media[i],
                        "url_key": hashlib.sha256(media[i].encode()).hexdigest(),
                        "created_at": now,
                        "outcome": "known",
                        "sha256": sha,
                        "matches": "[]",
                    }
                    for i in ids
                ],
            )
            conn.execute(
                insert(Takedown),
                [
                    {
                        "item_id": i,
                        "state": TakedownState.NOTICED.value,
                        "reported_at": now - timedelta(hours=6),
                        "first_notice_at": now - timedelta(hours=2),
                        "next_check_at": now - timedelta(minutes=1),
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in ids
                ],
            )


async def bare(settings: Settings, urls: list[str], concurrency: int, direct: bool) -> float:
    """The baseline from the same run: the same fetches with the bare fetcher (no jobs, no
    database, no hashing), ``concurrency`` at once; seconds taken."""
    gate = asyncio.Semaphore(concurrency)

    async def one(fetcher: Fetcher, url: str) -> None:
        async with gate:
            if direct:
                await fetcher.fetch_page(url)
                return
            page = await fetcher.fetch_page(url)
            await fetcher.fetch_media(page.media_urls[0])

    start = time.perf_counter()
    async with Fetcher(fetch_policy(settings)) as fetcher:
        await asyncio.gather(*(one(fetcher, u) for u in urls))
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--urls", type=int, default=10_000)
    ap.add_argument("--delay", type=float, default=0.2, help="seconds the host adds to every answer")
    ap.add_argument("--direct", action="store_true", help="each URL is the image itself (one answer)")
    ap.add_argument("--db", default="", help="a database URL (default: a fresh SQLite file)")
    ap.add_argument("--baseline", type=int, default=2000, help="URLs the bare-fetcher baseline fetches")
    args = ap.parse_args()
    console = Console()
    image = benign_png()
    host = Host(args.delay, image)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or str(Path(tmp) / "bench.db")
        settings = Settings(db=db, fetch_allowed_networks="127.0.0.0/8", worker_poll_s=0.05)
        settings = replace(settings, recheck=replace(settings.recheck))  # the defaults
        services = Services(settings)
        concurrency = min(settings.recheck.concurrency, settings.fetch_concurrency)
        with console.status(f"seeding {args.urls:,} monitored URLs"):
            seed(services, args.urls, host.port, image, args.direct)
        sample = min(args.urls, args.baseline)
        base_url = f"http://127.0.0.1:{host.port}"
        sample_urls = [
            f"{base_url}/media/{i}.png" if args.direct else f"{base_url}/item/{i}" for i in range(sample)
        ]
        with console.status(f"baseline: the bare fetcher, {sample:,} URLs"):
            before = host.answers
            bare_s = asyncio.run(bare(settings, sample_urls, concurrency, args.direct))
            bare_answers = host.answers - before
        host.answers = 0
        start = time.perf_counter()
        claimed = recheck.tick_recheck(services)
        with (
            Progress(
                TextColumn("re-checking"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as progress,
            Walker(services, worker="bench") as walker,
        ):
            task = progress.add_task("re-checking", total=args.urls)
            while (job := walker.claim()) is not None:
                walker.run_job(job)
                progress.update(task, advance=len(job.payload.get("takedowns", [])))
        elapsed = time.perf_counter() - start
        with services.engine.connect() as conn:
            checked = conn.execute(
                select(func.count()).select_from(Takedown).where(Takedown.checks == 1)
            ).scalar_one()
            online = conn.execute(
                select(func.count()).select_from(Takedown).where(Takedown.last_check == recheck.ONLINE)
            ).scalar_one()
        services.close()
    host.close()
    answers = host.answers
    ideal_s = answers * args.delay / concurrency
    per_url = answers / max(1, args.urls)
    what = "images" if args.direct else "pages with one image"
    table = Table(
        title=f"{args.urls:,} {what}, host adds {args.delay * 1000:.0f} ms, concurrency {concurrency}, "
        f"batches of {settings.recheck.batch_size}"
    )
    for col in ("", "URLs/s", "answers/s", "seconds", "share of ideal"):
        table.add_column(col, justify="right")
    table.add_row(
        "re-check round (tick, jobs, effects)",
        f"{args.urls / elapsed:,.1f}",
        f"{answers / elapsed:,.1f}",
        f"{elapsed:,.1f}",
        f"{ideal_s / elapsed:.0%}",
    )
    bare_rate = bare_answers / bare_s
    table.add_row(
        f"baseline: bare fetcher, {sample:,} URLs",
        f"{sample / bare_s:,.1f}",
        f"{bare_rate:,.1f}",
        f"{bare_s:,.1f}",
        f"{bare_rate / (concurrency / args.delay):.0%}",
    )
    table.add_row(
        "ideal: concurrency / delay",
        f"{concurrency / args.delay / per_url:,.1f}",
        f"{concurrency / args.delay:,.1f}",
        f"{ideal_s:,.1f}",
        "100%",
    )
    console.print(table)
    console.print(
        f"claimed {claimed:,}; checked {checked:,}, online {online:,}; {answers:,} answers "
        f"({per_url:.1f} a URL) (target: ≥ 80% of ideal)"
    )
    console.print(
        f"re-check round / ideal: {ideal_s / elapsed:.0%}; re-check round / bare fetcher: "
        f"{answers / elapsed / bare_rate:.0%}"
    )


if __name__ == "__main__":
    main()
