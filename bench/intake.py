"""Intake rate: acknowledged reports/s through the API against a bare endpoint of the same app and
middleware that writes nothing — same run, same client concurrency, pipeline workers running.

Acknowledged means committed durably: SQLite in WAL mode with synchronous=FULL (meldpunt's
default), or PostgreSQL's defaults with ``--db postgresql://...``.

    .venv/bin/python bench/intake.py [--requests 2000] [--concurrency 16] [--db URL]

The server runs in its own process on 127.0.0.1. Reported URLs point at 127.0.0.1, which the SSRF
guard refuses, so the workers walk every item to "unavailable" without sending anything anywhere.
(No ``from __future__ import annotations`` here: FastAPI reads the bare route's annotations at run
time, and they name classes imported inside the server process.)
"""

import argparse
import asyncio
import multiprocessing
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(db: str, port: int, token_file: str) -> None:
    import threading

    import uvicorn
    from fastapi import Depends

    from meldpunt.bootstrap import Services
    from meldpunt.cli.serve import start_workers
    from meldpunt.pipeline.intake import create_api_token
    from meldpunt.settings import Settings
    from meldpunt.web import create_app, uvicorn_log_config
    from meldpunt.web.api import ReportRequest, api_scope

    services = Services(Settings.from_env({}, db=db))
    Path(token_file).write_text(create_api_token(services, "bench"))
    app = create_app(services)

    # The same app, middleware, token check and body validation — and no write.
    @app.post("/bench/bare", status_code=201)
    def bare(body: ReportRequest, client: Annotated[str, Depends(api_scope("reports"))]) -> dict[str, Any]:
        return {"receipt": "BARE", "report_id": 0, "item_ids": [], "linked": []}

    start_workers(services, 2, threading.Event())
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_config=uvicorn_log_config())


async def _load(
    base: str, path: str, token: str, n: int, concurrency: int, tag: str, progress: Progress
) -> float:
    task = progress.add_task(f"{path} ({tag})", total=n)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    headers = {"Authorization": f"Bearer {token}"}

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
            while not queue.empty():
                i = queue.get_nowait()
                body = {"urls": [f"http://127.0.0.1:9/{tag}/{i}"], "seen_on": "website"}
                r = await http.post(path, json=body)
                if r.status_code != 201:
                    raise RuntimeError(f"{path}: {r.status_code} {r.text[:200]}")
                progress.advance(task)

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000, help="per endpoint, in two rounds each")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="meldpunt-bench-"))
    db = args.db or str(tmp / "bench.db")
    port = _free_port()
    token_file = tmp / "token"
    server = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(db, port, str(token_file)), daemon=True
    )
    server.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200 and token_file.exists():
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the server did not start")
        time.sleep(0.2)
    token = token_file.read_text()
    console = Console()
    rates: dict[str, list[float]] = {"bare": [], "reports": []}
    half = args.requests // 2
    with Progress(console=console, transient=True) as progress:
        for rnd in range(2):  # interleaved, so machine noise hits both alike
            rates["bare"].append(
                asyncio.run(_load(base, "/bench/bare", token, half, args.concurrency, f"bare{rnd}", progress))
            )
            rates["reports"].append(
                asyncio.run(
                    _load(base, "/api/v1/reports", token, half, args.concurrency, f"r{rnd}", progress)
                )
            )
    server.terminate()
    bare = sum(rates["bare"]) / 2
    real = sum(rates["reports"]) / 2
    backend = "PostgreSQL" if db.startswith("postgres") else "SQLite WAL, synchronous=FULL"
    table = Table(title=f"intake, {args.concurrency} concurrent clients, {backend}, 2 workers running")
    for col in ("", "requests/s", "share of bare"):
        table.add_column(col, justify="right")
    table.add_row("POST /api/v1/reports (acknowledged: committed)", f"{real:,.0f}", f"{real / bare:.0%}")
    table.add_row("bare endpoint, same app and middleware, no write", f"{bare:,.0f}", "100%")
    console.print(table)
    console.print(f"target: ≥ 50% of bare; {os.cpu_count()} CPU(s); rounds: {rates}")


if __name__ == "__main__":
    main()
