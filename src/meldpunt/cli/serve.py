"""``meldpunt serve`` and ``meldpunt worker``: the web app and the workers that walk reports."""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer

from meldpunt.bootstrap import Services
from meldpunt.cli.common import state, stderr, usage_error

if TYPE_CHECKING:
    from meldpunt.settings import WebSettings

log = logging.getLogger(__name__)


def start_workers(services: Services, count: int, stop: threading.Event) -> list[threading.Thread]:
    """``count`` workers as threads of this process (each claims jobs on its own)."""
    from meldpunt.pipeline.worker import run_worker

    threads = []
    for n in range(count):
        t = threading.Thread(
            target=run_worker, args=(services,), kwargs={"stop": stop}, name=f"worker-{n}", daemon=True
        )
        t.start()
        threads.append(t)
    return threads


def serve_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(help="Pipeline workers run inside the server (0: run `meldpunt worker` separately)."),
    ] = 2,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            metavar="CIDR",
            help="A reverse proxy in front (address or network; repeatable; default "
            "MELDPUNT_WEB_TRUSTED_PROXIES). Only from these are X-Forwarded-For (its right-most "
            "untrusted address) and X-Forwarded-Proto believed.",
        ),
    ] = None,
) -> None:
    """Serve the web app (public reporting form, API, internal pages) with pipeline workers.

    No access log is written: a reporter's address appears in no log and no table."""
    from meldpunt.web import run

    services = state(ctx).services
    config = web_config(services.settings.web, trusted_proxy)
    services.engine  # noqa: B018 - create and migrate the database before accepting reports
    _check_keys(services)
    stop = threading.Event()
    start_workers(services, workers, stop)
    stderr.print(f"meldpunt on [bold]http://{host}:{port}/[/] with {workers} worker(s); Ctrl-C stops")
    try:
        run(services, host=host, port=port, config=config)
    finally:
        stop.set()


def web_config(config: WebSettings, trusted_proxy: list[str] | None) -> WebSettings:
    """The web settings with the proxy options of the command line; a bad proxy is a usage error
    (exit 2) before anything starts."""
    from meldpunt.web.security import trusted_networks

    try:
        if trusted_proxy:
            config = replace(config, trusted_proxies=tuple(trusted_networks(trusted_proxy)))
        trusted_networks(config.trusted_proxies)
    except ValueError as e:
        usage_error(str(e))
    return config


def _check_keys(services: Services) -> None:
    """Refuse to start with keys that cannot work (malformed, or the evidence key equal to the
    review key): better a clear error now than a failed classification later."""
    from meldpunt.stores.review import StoreKeyError

    try:
        services.evidence_store  # noqa: B018 - opens the review store too, and compares their keys
    except StoreKeyError as e:
        usage_error(str(e))


def worker_command(
    ctx: typer.Context,
    threads: Annotated[int, typer.Option(help="Workers in this process.")] = 1,
) -> None:
    """Run pipeline workers until stopped (SIGINT/SIGTERM). Any number may run, on any machine
    sharing a PostgreSQL database (or processes beside one SQLite file)."""
    services = state(ctx).services
    services.engine  # noqa: B018 - migrate before claiming
    _check_keys(services)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    running = start_workers(services, threads, stop)
    stderr.print(f"{threads} worker(s) running; SIGINT/SIGTERM stops them after their current job")
    while any(t.is_alive() for t in running):
        for t in running:
            t.join(timeout=0.5)
