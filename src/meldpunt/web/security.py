"""Form tokens (CSRF), rate limits that never keep an address, security headers, body limits.

No IP address is stored anywhere: a rate limit is keyed by HMAC-SHA256(secret of the day, address),
the secret is random, lives only in this process's memory and is replaced every UTC day (the
counters go with it), and counters expire after their window. The address itself is used for that
one computation and dropped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# -- form tokens ----------------------------------------------------------------------------------


class FormTokens:
    """Stateless, HMAC-signed form tokens: ``<issued>.<nonce>.<signature>``.

    The signature covers the purpose (which form), the time it was issued and a random nonce; a
    token is good for ``max_age`` seconds. No session, no cookie: the token is a hidden field, so the
    form works with JavaScript and cookies off (Tor Browser). A form sent twice makes two reports
    whose URLs join the same open items (intake's dedupe window); the public form does not use an
    idempotency key, which would mean keeping its receipt code in clear.
    """

    #: most spent nonces remembered; past it the oldest are forgotten first
    MAX_SPENT = 200_000

    def __init__(self, key: bytes, max_age: int, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        #: nonce -> when it stops mattering (its token has expired by then); insertion order
        self._spent: dict[str, float] = {}

    def _sign(self, purpose: str, issued: int, nonce: str) -> str:
        mac = hmac.new(self._key, f"{purpose}|{issued}|{nonce}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def issue(self, purpose: str) -> str:
        issued = int(self._clock())
        nonce = secrets.token_urlsafe(16)
        return f"{issued}.{nonce}.{self._sign(purpose, issued, nonce)}"

    def _verify(self, purpose: str, token: str | None) -> tuple[str, float] | None:
        """(nonce, age in seconds) of a genuine token, else None."""
        if not token or len(token) > 200:
            return None
        parts = token.split(".")
        if len(parts) != 3 or not (parts[0].isascii() and parts[0].isdigit()) or len(parts[0]) > 12:
            return None
        issued, nonce, sig = int(parts[0]), parts[1], parts[2]
        if not hmac.compare_digest(sig, self._sign(purpose, issued, nonce)):
            return None
        return nonce, self._clock() - issued

    def check(self, purpose: str, token: str | None) -> str | None:
        """The token's nonce when it is genuine and fresh, else None."""
        verified = self._verify(purpose, token)
        if verified is None or not -60 <= verified[1] <= self.max_age:
            return None
        return verified[0]

    def spend(self, purpose: str, token: str | None) -> bool:
        """Accept a genuine, fresh token once: a second use is refused (a replayed sign-in post).

        The spent nonces are kept in this process's memory until their token would have expired
        anyway (``MAX_SPENT`` at most). Several processes behind one address each keep their own.
        """
        nonce = self.check(purpose, token)
        if nonce is None:
            return False
        now = self._clock()
        with self._lock:
            if nonce in self._spent:
                return False
            if len(self._spent) >= self.MAX_SPENT:
                self._spent = {n: until for n, until in self._spent.items() if until > now}
                while len(self._spent) >= self.MAX_SPENT:
                    del self._spent[next(iter(self._spent))]
            self._spent[nonce] = now + self.max_age + 60
        return True

    def expired(self, purpose: str, token: str | None) -> bool:
        """A genuine token of ours that is too old (the form sat open too long): not a forgery."""
        verified = self._verify(purpose, token)
        return verified is not None and verified[1] > self.max_age


# -- rate limits ----------------------------------------------------------------------------------


class RateLimiter:
    """Fixed-window counters keyed by a keyed hash of the client address, in memory only."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._day = ""
        self._secret = b""
        self._counts: dict[bytes, tuple[float, int]] = {}

    def _key(self, address: str, now: float) -> bytes:
        day = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
        if day != self._day:  # a new secret every day; yesterday's counters are forgotten
            self._day = day
            self._secret = secrets.token_bytes(32)
            self._counts.clear()
        return hmac.new(self._secret, address.encode(), hashlib.sha256).digest()

    def hit(self, address: str) -> float | None:
        """Count one request; None when allowed, else the seconds until the window ends."""
        now = self._clock()
        with self._lock:
            key = self._key(address, now)
            if len(self._counts) > 10_000:
                self._expire(now)
            start, count = self._counts.get(key, (now, 0))
            if now - start >= self.window:
                start, count = now, 0
            count += 1
            self._counts[key] = (start, count)
            if count > self.limit:
                return max(1.0, self.window - (now - start))
            return None

    def _expire(self, now: float) -> None:
        old = [k for k, (start, _) in self._counts.items() if now - start >= self.window]
        for k in old:
            del self._counts[k]

    def keys(self) -> Iterable[bytes]:
        """What is held (for tests): keyed hashes, never an address."""
        with self._lock:
            return list(self._counts)


def client_address(scope: Scope) -> str:
    """The client's address for rate limiting only; never logged, never stored. Behind trusted
    proxies the scope's client is already the forwarded one (see :func:`trusted_networks`)."""
    client = scope.get("client")
    return str(client[0]) if client else ""


# -- behind a reverse proxy -----------------------------------------------------------------------


def trusted_networks(values: Iterable[str]) -> list[str]:
    """Proxy addresses or networks (CIDR) in canonical form; ValueError naming a bad one (uvicorn's
    middleware would silently treat it as a name that never matches).

    The app believes ``X-Forwarded-For`` and ``X-Forwarded-Proto`` from these peers only, through
    uvicorn's ``ProxyHeadersMiddleware``: the client becomes the right-most ``X-Forwarded-For`` hop
    that is not itself a trusted proxy (each proxy appends the address it was reached from, so the
    hops left of that are whatever the client chose to send), never the first; the scheme becomes
    ``X-Forwarded-Proto`` (``https``: staff cookies get ``Secure``). From any other peer both
    headers are ignored.
    """
    networks: list[str] = []
    for value in values:
        try:
            networks.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError:
            raise ValueError(
                f"trusted proxy {value!r} is not an IP address or network (e.g. 10.0.0.0/8, 127.0.0.1)"
            ) from None
    return networks


# -- links back to this site ----------------------------------------------------------------------


def local_href(path: str, params: Iterable[tuple[str, str]]) -> str:
    """A link to ``path`` on this site with the query ``params``: never to another site.

    The request's path is not trusted: ``//evil.example/x`` (or ``/\\evil.example``, or their
    percent-encoded forms, which arrive decoded) would make a protocol-relative link to another
    host. Leading slashes and backslashes are dropped, the rest is percent-encoded (a backslash, a
    tab, ``?`` and ``#`` included), and one ``/`` starts the result; the query is rebuilt, not copied.
    """
    rest = path.lstrip("/\\")
    href = "/" + quote(rest, safe="/-._~!$&'()*+,;=:@")
    query = urlencode(list(params))
    return f"{href}?{query}" if query else href


# -- headers and limits ---------------------------------------------------------------------------

CSP = (
    "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class HeaderPolicy:
    #: path prefix -> Content-Security-Policy for it (the first that matches wins; else CSP)
    csp_overrides: tuple[tuple[str, str], ...] = ()


class SecurityHeaders:
    """Adds the security headers to every response; ``no-store`` on everything but /static/."""

    def __init__(self, app: ASGIApp, policy: HeaderPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        csp = next((c for p, c in self.policy.csp_overrides if path.startswith(p)), CSP)
        static = path.startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in (b"cache-control", b"server")
                ]
                headers += [
                    (b"content-security-policy", csp.encode()),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"cross-origin-resource-policy", b"same-origin"),
                    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
                    (b"cache-control", b"public, max-age=3600" if static else b"no-store"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


TooLarge = Callable[[Scope, int], Awaitable[tuple[int, list[tuple[bytes, bytes]], bytes]]]


class _BodyTooLarge(Exception):
    """Raised into the app from ``receive`` when a streamed body passes its limit."""


#: bodies allowed to be larger than this are streamed through and counted, not held in memory
STREAM_ABOVE = 4 * 1024 * 1024


class BodyLimit:
    """Refuses (413) a request body larger than the limit for its path.

    Up to ``STREAM_ABOVE`` the body is read first, held in memory and replayed to the app, so the
    app never sees part of a refused body. Paths allowed more (bank imports) are streamed through
    and counted: past the limit the app's next read fails, the app is abandoned and the refusal is
    sent if the app has not answered yet (a multipart upload is then only partly in a temporary file
    the form parser removes). ``limit_for`` gives the limit of a path; ``too_large`` renders the
    refusal (HTML or JSON, by path).
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int], too_large: TooLarge) -> None:
        self.app = app
        self.limit_for = limit_for
        self.too_large = too_large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = next((v for k, v in scope.get("headers", []) if k == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(scope, send, limit)
            return
        if limit > STREAM_ABOVE:
            await self._stream(scope, receive, send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(scope, send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _stream(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        size = 0
        started = False

        async def counting() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    raise _BodyTooLarge
            return message

        async def watching(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting, watching)
        except _BodyTooLarge:
            if not started:
                await self._refuse(scope, send, limit)

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        status, headers, content = await self.too_large(scope, limit)
        headers = [*headers, (b"content-length", str(len(content)).encode()), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})
