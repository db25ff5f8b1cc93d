"""Guards of the password form: rate limits per account name and per client, and failures that
name no account counted per interval instead of written one audit row each.

The client is known only as a keyed hash of its address, as on the public form
(:class:`~meldpunt.web.security.RateLimiter`): no address is kept. A name is held the same way.
Every guard takes the account service's clock, so tests move time instead of waiting.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from meldpunt.web.security import RateLimiter


@dataclass(frozen=True)
class Summary:
    """What an audit row says about an interval of anonymous failures."""

    counts: dict[str, int]
    since: float
    until: float

    def details(self) -> dict[str, Any]:
        def iso(t: float) -> str:
            return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")

        return {"step": "password", **self.counts, "since": iso(self.since), "until": iso(self.until)}


class FailureTally:
    """Failed sign-ins that name no account (``unknown_name``) or were refused by a rate limit
    (``throttled``), counted per interval.

    The first of an interval is written at once (so a probe is seen at once), the rest of the
    interval as one row with their count when the interval is over (at the next sign-in request
    after it): a flood of made-up names costs two audit rows per interval, not one each. The
    names themselves are not written: a name nobody has is often a password typed in the wrong
    field.
    """

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._start: float | None = None
        self._pending: Counter[str] = Counter()

    def add(self, kind: str) -> list[Summary]:
        """Count one failure; returns the rows to write now."""
        now = self._clock()
        with self._lock:
            rows = self._close(now)
            if self._start is None:
                self._start = now
                rows.append(Summary({kind: 1}, now, now))
            else:
                self._pending[kind] += 1
            return rows

    def due(self) -> list[Summary]:
        """The summary of an interval that is over, if it counted anything after its first."""
        with self._lock:
            return self._close(self._clock())

    def _close(self, now: float) -> list[Summary]:
        if self._start is None or now - self._start < self.interval:
            return []
        rows = [Summary(dict(self._pending), self._start, now)] if self._pending else []
        self._start = None
        self._pending = Counter()
        return rows


class SignInGuard:
    """The password form's rate limits (per account name, per client) and its failure tally."""

    def __init__(self, per_name: int, per_client: int, window: float, clock: Callable[[], float]) -> None:
        self.by_name = RateLimiter(per_name, window, clock)
        self.by_client = RateLimiter(per_client, window, clock)
        self.tally = FailureTally(window, clock)

    def attempt(self, name: str, client: str) -> float | None:
        """Count one attempt against the name and the client; None when both allow it, else the
        seconds to wait. Counted before the password is checked, so a refused attempt costs no
        argon2 hash."""
        waits = [self.by_client.hit(client), self.by_name.hit(name.strip().casefold())]
        refused = [w for w in waits if w is not None]
        return max(refused) if refused else None
