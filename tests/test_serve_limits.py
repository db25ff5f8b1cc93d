"""Half-open connections cannot take the server down (issue #8): a real ``meldpunt serve``
process, with an open-files limit it cannot raise, gets a few hundred half-sent requests on
loopback; the form still answers, the half-open connections are closed after the (small)
configured header timeout, and the log stays small. Plus the storm filter and the body timeout."""

from __future__ import annotations

import io
import logging
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from meldpunt.web.serving import StormFilter

HALF_OPEN = 300
FD_LIMIT = 256  # below HALF_OPEN: without a cap the server runs out of descriptors


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: ``meldpunt`` with an open-files limit it cannot raise (set before anything is opened)
_LOW_FD_MELDPUNT = (
    "import resource, runpy, sys; "
    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({FD_LIMIT}, {FD_LIMIT})); "
    "sys.argv[0] = 'meldpunt'; runpy.run_module('meldpunt.cli', run_name='__main__')"
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port = _port()
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "MELDPUNT_SERVE_HEADER_TIMEOUT_S": "2",
        "MELDPUNT_SERVE_BODY_TIMEOUT_S": "2",
    }
    cmd = [sys.executable, "-c", _LOW_FD_MELDPUNT, "--db", str(tmp_path / "m.db"), "serve"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--port", str(port), "--workers", "0"],
            env=env,
            stdout=out,
            stderr=out,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
        limits = Path(f"/proc/{proc.pid}/limits")
        if limits.exists():  # Linux: the server could not raise its limit past the flood
            assert f"Max open files            {FD_LIMIT}" in limits.read_text()
        yield port, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _closed_by_peer(s: socket.socket) -> bool:
    try:
        return s.recv(4096) == b""
    except ConnectionResetError:
        return True
    except BlockingIOError:
        return False


def _wait_closed(socks: list[socket.socket], within_s: float) -> list[socket.socket]:
    """The sockets the server has not closed after ``within_s`` seconds."""
    open_ = list(socks)
    deadline = time.monotonic() + within_s
    while open_ and time.monotonic() < deadline:
        readable, _, _ = select.select(open_, [], [], 0.2)
        for s in readable:
            if _closed_by_peer(s):
                open_.remove(s)
    return open_


def test_half_open_connections_are_closed_and_the_form_still_answers(server: tuple[int, Path]) -> None:
    port, log = server
    socks: list[socket.socket] = []
    try:
        for n in range(HALF_OPEN):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.setblocking(False)
            s.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-%d: " % n)  # never finished
            socks.append(s)
        # The flood is in place (more connections than the server has descriptors): the form answers.
        r = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert r.status_code == 200 and "<form" in r.text
        still_open = _wait_closed(socks, within_s=20)
        assert not still_open, f"{len(still_open)} half-open connections were never closed"
        r = httpx.get(f"http://127.0.0.1:{port}/?lang=nl", timeout=10)
        assert r.status_code == 200
    finally:
        for s in socks:
            s.close()
    text = log.read_text(errors="replace")
    assert len(text) < 16_000, text[-3000:]
    assert text.count("socket.accept() out of system resource") <= 1
    assert "connection guard" in text  # what was done is said, once


def test_a_body_that_never_arrives_is_cut_off(server: tuple[int, Path]) -> None:
    port, _log = server
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(
            b"POST /report HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 1000\r\n\r\nurls=http"
        )
        s.setblocking(False)
        assert not _wait_closed([s], within_s=20)
    finally:
        s.close()


def test_storm_filter_logs_once_per_interval_with_a_count() -> None:
    now = [0.0]
    out = io.StringIO()
    logger = logging.getLogger("test.storm")
    logger.propagate = False
    handler = logging.StreamHandler(out)
    logger.addHandler(handler)
    logger.addFilter(StormFilter(interval_s=60, clock=lambda: now[0]))
    try:
        for n in range(100_000):
            now[0] = n / 1000  # 100,000 in 100 s
            logger.error("socket.accept() out of system resource\nsocket: <socket fd=%d>", n)
        logger.error("an ordinary error")
    finally:
        logger.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert len(out.getvalue()) < 1000
    assert lines[0].startswith("socket.accept() out of system resource")
    assert "(59999 more like it in the last 60 s, not logged)" in lines[2]
    assert lines[-1] == "an ordinary error"
