"""Connection limits for ``meldpunt serve``: half-sent requests time out, connections are capped,
and a storm of them is logged once per interval instead of filling the disk.

uvicorn (0.3x, h11) times out only idle keep-alive connections: a client that sends half a request
line or headers, or a body byte now and then (slowloris), holds its connection and its file
descriptor for ever, and once the process runs out of descriptors asyncio logs
``socket.accept() out of system resource`` in a loop while the form and the API stop answering.
:class:`GuardedH11Protocol` (uvicorn's h11 protocol, subclassed) adds:

* a **header timeout**: the request line and headers must arrive within ``serve_header_timeout_s``
  of the connection (or of the first byte of the next request on a kept-alive connection);
* a **body timeout**: the body must arrive within ``serve_body_timeout_s`` of the headers;
* a **connection cap** (``serve_max_connections``, and never more than the descriptors allow):
  a connection over the cap makes room by closing the oldest connection that has not yet sent a
  whole request (a half-open or idle one), else it is itself closed; requests in progress are
  never cut.

:func:`connection_limits` raises the process's descriptor limit to its hard limit, installs
:class:`StormFilter` on the ``asyncio`` and ``uvicorn.error`` loggers, and returns the keyword
arguments for ``uvicorn.run``. In production a reverse proxy in front (nginx, Caddy, HAProxy)
buffers requests and absorbs such floods first; these limits are the server's own floor.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from meldpunt.settings import Settings

log = logging.getLogger("meldpunt.web.serving")

#: descriptors kept free for the database, log files and the workers' fetches
RESERVED_FDS = 128
#: messages logged at most once per interval (with a count of those left out)
STORM_MESSAGES = (
    "socket.accept() out of system resource",
    "Invalid HTTP request received.",
    "Exceeded concurrency limit.",
)


@dataclass(frozen=True)
class ServeLimits:
    header_timeout_s: float
    body_timeout_s: float
    keep_alive_s: float
    max_connections: int
    log_interval_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings, fd_limit: int | None = None) -> ServeLimits:
        cap = settings.serve_max_connections
        if fd_limit is not None:
            cap = min(cap, max(16, fd_limit - RESERVED_FDS))
        return cls(
            header_timeout_s=settings.serve_header_timeout_s,
            body_timeout_s=settings.serve_body_timeout_s,
            keep_alive_s=settings.serve_keep_alive_s,
            max_connections=max(1, cap),
        )


def raise_fd_limit() -> int | None:
    """Raise the soft limit of open files to the hard limit; the soft limit now (None where the
    platform has no such limit)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 65536) if soft != resource.RLIM_INFINITY else soft
    if soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            log.warning("could not raise the open-files limit from %d to %d", soft, hard)
    return None if soft == resource.RLIM_INFINITY else int(soft)


class StormFilter(logging.Filter):
    """Lets one record of each storm message through per interval; the next one that passes says
    how many were left out. Other records pass untouched."""

    def __init__(self, interval_s: float = 60.0, clock: Any = time.monotonic) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._dropped: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        key = next((m for m in STORM_MESSAGES if text.startswith(m)), None)
        if key is None:
            return True
        now = self.clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval_s:
                self._dropped[key] = self._dropped.get(key, 0) + 1
                return False
            self._last[key] = now
            dropped = self._dropped.pop(key, 0)
        if dropped:
            record.msg = f"{key} ({dropped} more like it in the last {self.interval_s:g} s, not logged)"
            record.args = ()
        if last is not None:
            record.exc_info = None  # the traceback was logged with the first one
            record.exc_text = None
        return True


@dataclass
class _Counts:
    timed_out: int = 0
    shed: int = 0
    refused: int = 0
    logged_at: float = 0.0


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with header and body timeouts and a connection cap. Subclassed per
    server by :func:`guarded_protocol`, which sets ``limits``."""

    limits: ClassVar[ServeLimits]
    counts: ClassVar[_Counts]

    _timer: asyncio.TimerHandle | None = None
    _phase = "head"  # head: waiting for a request's headers; body: for its body; app: answering
    _since = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head()
        if len(self.connections) > self.limits.max_connections:
            self._make_room()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._track()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE and self._phase != "head":
            self._cancel()  # idle until the next request: uvicorn's keep-alive timeout applies
            self._phase, self._since = "head", self.loop.time()
        self._track()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    # --- timeouts --------------------------------------------------------------------------

    def _start_head(self) -> None:
        self._phase, self._since = "head", self.loop.time()
        self._arm(self.limits.header_timeout_s)

    def _track(self) -> None:
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._timer is None and self.conn.trailing_data[0]:  # part of the next request
                self._arm(self.limits.header_timeout_s)
        elif state is h11.SEND_BODY:
            if self._phase != "body":
                self._phase = "body"
                self._arm(self.limits.body_timeout_s)
        elif self._phase != "app":
            self._phase = "app"
            self._cancel()

    def _arm(self, seconds: float) -> None:
        self._cancel()
        self._timer = self.loop.call_later(seconds, self._expire)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if self._phase == "app" or self.transport.is_closing():
            return
        self.counts.timed_out += 1
        self.transport.close()
        self._note()

    # --- the cap ---------------------------------------------------------------------------

    def _waiting(self) -> bool:
        """Not answering a request: the connection may be closed without losing work."""
        return self._phase == "head" and (self.cycle is None or self.cycle.response_complete)

    def _make_room(self) -> None:
        victims = [
            c
            for c in self.connections
            if c is not self
            and isinstance(c, GuardedH11Protocol)
            and c._waiting()
            and not c.transport.is_closing()
        ]
        if victims:
            oldest = min(victims, key=lambda c: c._since)
            oldest._cancel()
            oldest.transport.close()
            self.counts.shed += 1
        else:
            self._cancel()
            self.transport.close()
            self.counts.refused += 1
        self._note()

    def _note(self) -> None:
        """Say what the guard did, at most once per interval."""
        c, now = self.counts, time.monotonic()
        if now - c.logged_at < self.limits.log_interval_s:
            return
        log.warning(
            "connection guard: closed %d connection(s) whose request did not arrive in time "
            "(headers %g s, body %g s); at the cap of %d connections %d waiting one(s) closed for "
            "new ones and %d new one(s) refused",
            c.timed_out,
            self.limits.header_timeout_s,
            self.limits.body_timeout_s,
            self.limits.max_connections,
            c.shed,
            c.refused,
        )
        c.logged_at, c.timed_out, c.shed, c.refused = now, 0, 0, 0


def guarded_protocol(limits: ServeLimits) -> type[GuardedH11Protocol]:
    """A protocol class bound to ``limits`` (uvicorn builds one instance per connection)."""
    return type("MeldpuntH11Protocol", (GuardedH11Protocol,), {"limits": limits, "counts": _Counts()})


def install_storm_filter(interval_s: float = 60.0) -> StormFilter:
    """One :class:`StormFilter` on the loggers that repeat themselves under a connection flood."""
    storm = StormFilter(interval_s)
    for name in ("asyncio", "uvicorn.error"):
        logging.getLogger(name).addFilter(storm)
    return storm


def connection_limits(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``: the guarded protocol and the keep-alive timeout
    (uvicorn's bound on request heads stays); raises the descriptor limit and installs the storm
    filter first."""
    limits = ServeLimits.from_settings(settings, raise_fd_limit())
    install_storm_filter(limits.log_interval_s)
    return {
        "http": guarded_protocol(limits),
        "timeout_keep_alive": max(1, round(limits.keep_alive_s)),
        "backlog": min(2048, limits.max_connections),
    }
