"""One deadline for a whole HTTP exchange with an outside server: connecting, sending, the status
line and headers, the body — however the server spaces its bytes.

Why: httpx's timeouts are per operation, so a server that trickles its answer a byte at a time,
each byte within the read timeout, holds the caller for as long as it likes — and a job's
heartbeat keeps that job leased meanwhile, so the worker is simply wedged. The network backend
here gives every connect, read and write only what is left of the deadline, then raises
``httpcore.ReadTimeout`` (httpx reports it as ``httpx.ReadTimeout``).

The deadline is either fixed per backend (one request: a webhook POST) or set around a block with
:func:`within` (a shared client: the RDAP look-ups, redirects included); outside such a block a
shared backend behaves like httpcore's own.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

from meldpunt.domain.tls import ssl_context

_DEADLINE: ContextVar[float | None] = ContextVar("meldpunt_http_deadline", default=None)


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Every exchange through a :class:`DeadlineBackend` in this block (this thread) ends within
    ``seconds`` from now, all together."""
    token = _DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _left(deadline: float | None, timeout: float | None) -> float | None:
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("no complete answer in time")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write waits no longer than what is left of the deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float | None) -> None:
        self._inner = inner
        self._fixed = deadline

    def _deadline(self) -> float | None:
        return self._fixed if self._fixed is not None else _DEADLINE.get()

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(self._deadline(), timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(self._deadline(), timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, _left(self._deadline(), timeout))
        return DeadlineStream(inner, self._fixed)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's synchronous backend under a deadline: ``deadline`` (a ``time.monotonic()``
    value) when given, else the one :func:`within` set."""

    def __init__(self, deadline: float | None = None) -> None:
        self._inner = httpcore.SyncBackend()
        self._fixed = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        deadline = self._fixed if self._fixed is not None else _DEADLINE.get()
        inner = self._inner.connect_tcp(host, port, _left(deadline, timeout), local_address, socket_options)
        return DeadlineStream(inner, self._fixed)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:  # pragma: no cover - outside servers are URLs
        raise httpcore.ConnectError("no unix sockets here")

    def sleep(self, seconds: float) -> None:  # pragma: no cover - no retries are configured
        time.sleep(seconds)


def transport() -> httpx.HTTPTransport:
    """An httpx transport whose connections keep the deadline :func:`within` sets (httpx offers
    no way to give its transport a network backend but replacing the pool it made)."""
    made = httpx.HTTPTransport(verify=ssl_context(trust_env=True))
    made._pool = httpcore.ConnectionPool(
        ssl_context=ssl_context(trust_env=True),
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=DeadlineBackend(),
    )
    return made
