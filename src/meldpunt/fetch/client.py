"""Fetching with limits: size (streamed, counted after decompression too), time (a total for the
whole fetch, which a caller may shorten with its own budget, and a stall limit: seconds without a
byte), redirects (followed by hand, each hop checked), concurrency; every connection goes through
the SSRF guard.

A server that answers and then stalls (``stalled``) or trickles its body past the total
(``too_slow``) has shown what it is: callers record these and do not try again, unlike a
connection that failed or timed out before any answer (``unreachable``, ``timeout``).

    async with Fetcher(FetchPolicy()) as f:
        page = await f.fetch_page("https://example.org/")
        for url in page.media_urls:
            media = await f.fetch_media(url)
"""

from __future__ import annotations

import time
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urljoin, urlsplit

import anyio
import httpcore
import httpx

from meldpunt.domain.tls import ssl_context
from meldpunt.fetch.errors import FetchError
from meldpunt.fetch.extract import decode_html, extract_media_urls
from meldpunt.fetch.guard import AddressGuard, BlockedAddress, GuardedBackend, Resolver, parse_ip_literal

MiB = 1024 * 1024
_REDIRECTS = {301, 302, 303, 307, 308}
_HTML_TYPES = {"text/html", "application/xhtml+xml"}
_MAYBE_HTML_TYPES = {"", "text/plain", "application/octet-stream", "application/unknown"}
_SNIFF_BYTES = 64


def _doc(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class FetchPolicy:
    """How the fetcher behaves; every field has a default and a line of help (:meth:`documented`)."""

    max_page_bytes: int = _doc(
        5 * MiB, "Largest HTML page read (bytes after decompression); more is too_large."
    )
    max_media_bytes: int = _doc(
        256 * MiB, "Largest image/video read (bytes after decompression); more is too_large."
    )
    timeout_s: float = _doc(30.0, "Total seconds for one fetch: connecting, all redirects and the body.")
    read_timeout_s: float = _doc(
        10.0, "Seconds without a byte from a connected server before the fetch is abandoned as stalled."
    )
    connect_timeout_s: float = _doc(10.0, "Seconds for resolving and connecting to one server.")
    max_redirects: int = _doc(
        5, "Redirects followed (each hop is checked by the SSRF guard); more is an error."
    )
    max_media_per_page: int = _doc(
        200, "Most media URLs taken from one page (the rest are dropped, flagged)."
    )
    max_concurrency: int = _doc(32, "Fetches running at once in one Fetcher (also its connection-pool size).")
    user_agent: str = _doc("meldpunt-fetch/0.1", "User-Agent header sent with every request.")
    verify_tls: bool = _doc(True, "Verify TLS certificates (for the URL's hostname).")
    allowed_networks: tuple[str, ...] = _doc(
        (), "CIDRs the SSRF guard allows despite its rules (e.g. 127.0.0.0/8 for a local test web)."
    )
    resolver: Resolver | None = _doc(  # noqa: RUF009
        None, "Hook: host -> list of IP strings (sync or async); None asks the system resolver."
    )

    @classmethod
    def documented(cls) -> list[tuple[str, str, Any]]:
        """(name, help, default) for every field."""
        p = cls()
        return [(f.name, f.metadata.get("help", ""), getattr(p, f.name)) for f in fields(cls)]


@dataclass(frozen=True)
class FetchResult:
    """One fetched URL. ``body`` is decoded (Content-Encoding undone); ``fetched_bytes`` counts
    bytes as they came over the wire; ``server_ip`` is the address actually connected to for the
    final response; ``redirects`` lists every URL before ``final_url``, starting with ``url``."""

    url: str
    final_url: str
    status: int
    content_type: str
    body: bytes
    server_ip: str | None
    redirects: tuple[str, ...]
    fetched_bytes: int
    elapsed_s: float


@dataclass(frozen=True)
class Page(FetchResult):
    """A fetched page: its media URLs, or — for a direct media link — ``direct_media`` with the
    media itself in ``body`` and ``media_urls == (final_url,)``."""

    media_urls: tuple[str, ...] = ()
    direct_media: bool = False
    media_truncated: bool = False


def sniff_media(head: bytes) -> str | None:
    """The media type the first bytes announce (images and videos), or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head.startswith(b"BM") and len(head) >= 14:
        return "image/bmp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"avif", b"hevc"):
            return "image/heif" if brand != b"avif" else "image/avif"
        return "video/mp4"
    if head.startswith(b"\x1aE\xdf\xa3"):
        return "video/webm"
    if head.startswith(b"FLV\x01"):
        return "video/x-flv"
    return None


def looks_like_html(head: bytes) -> bool:
    h = head[:1024].lstrip().lower()
    return h.startswith((b"<!doctype html", b"<html")) or any(t in h for t in (b"<head", b"<body", b"<img"))


def check_url(url: str, guard: AddressGuard | None = None) -> httpx.URL:
    """``url`` parsed, or ``bad_url`` (not http(s), no host, credentials, unparsable) /
    ``blocked_address`` (a numeric host the guard refuses: checked here without DNS)."""
    if len(url) > 8192:
        raise FetchError("bad_url", "URL too long", url[:200])
    if guard is not None:  # numeric hosts httpx cannot parse (0177.0.0.1) are still refused as such
        try:
            host = urlsplit(url.strip()).hostname or ""
        except ValueError:
            host = ""
        _check_literal(host, guard, url)
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise FetchError("bad_url", str(exc), url) from None
    if parsed.scheme not in ("http", "https"):
        raise FetchError("bad_url", f"scheme not allowed: {parsed.scheme or '(none)'}", url)
    if not parsed.host:
        raise FetchError("bad_url", "no host", url)
    if parsed.userinfo:
        raise FetchError("bad_url", "credentials in the URL", url)
    if guard is not None:
        _check_literal(parsed.host, guard, url)
    return parsed.copy_with(fragment=None)


def _check_literal(host: str, guard: AddressGuard, url: str) -> None:
    literal = parse_ip_literal(host) if host else None
    if literal is not None:
        try:
            guard.check(literal, host)
        except BlockedAddress as exc:
            raise BlockedAddress(exc.message, url) from None


class _Client(httpx.AsyncClient):
    """httpx's client, minus the redirect request it builds even when not following (it fails on
    Location URLs httpx cannot parse); redirects are followed by hand, each hop checked."""

    def _build_redirect_request(self, request: httpx.Request, response: httpx.Response) -> httpx.Request:
        return request


class _Decoder:
    """Undoes Content-Encoding (gzip, deflate, identity; several layers) chunk by chunk, never
    producing more than ``room`` bytes in one step — a gzip bomb stops at the limit."""

    def __init__(self, header: str) -> None:
        names = [e.strip().lower() for e in header.split(",") if e.strip()]
        names = [n for n in names if n != "identity"]
        for n in names:
            if n not in ("gzip", "x-gzip", "deflate"):
                raise FetchError("bad_encoding", f"unsupported Content-Encoding: {n}")
        self.layers: list[Any] = [None] * len(names)
        self.names = list(reversed(names))  # decode the last-applied encoding first

    def _obj(self, i: int, data: bytes) -> Any:
        if self.layers[i] is None:
            if self.names[i] in ("gzip", "x-gzip"):
                self.layers[i] = zlib.decompressobj(16 + zlib.MAX_WBITS)
            elif len(data) >= 2 and data[0] & 0x0F == 8 and ((data[0] << 8) | data[1]) % 31 == 0:
                self.layers[i] = zlib.decompressobj()
            else:  # "deflate" as raw deflate, as some servers send it
                self.layers[i] = zlib.decompressobj(-zlib.MAX_WBITS)
        return self.layers[i]

    def feed(self, data: bytes, room: int) -> bytes:
        try:
            for i in range(len(self.names)):
                if not data:
                    return b""
                obj = self._obj(i, data)
                data = obj.decompress(data, room + 1)
                if obj.unconsumed_tail or len(data) > room:
                    raise FetchError("too_large", "decompressed body over the limit")
            return data
        except zlib.error as exc:
            raise FetchError("bad_encoding", f"corrupt compressed body: {exc}") from None

    def flush(self, room: int) -> bytes:
        out = b""
        for i in range(len(self.names)):
            obj = self.layers[i]
            data = out if obj is None else (obj.decompress(out, room + 1) if out else b"") + obj.flush()
            if len(data) > room:
                raise FetchError("too_large", "decompressed body over the limit")
            out = data
        return out


def _media_type(response: httpx.Response) -> str:
    return str(response.headers.get("content-type", "")).split(";", 1)[0].strip().lower()


def _charset(response: httpx.Response) -> str | None:
    for part in response.headers.get("content-type", "").split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return str(value.strip().strip("\"'"))
    return None


def _server_ip(response: httpx.Response) -> str | None:
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    try:
        addr = stream.get_extra_info("server_addr")
    except Exception:
        return None
    return str(addr[0]) if addr else None


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool rebuilt on the :class:`GuardedBackend`
    (httpx takes no network backend argument; ``_pool`` is what it sends requests through)."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend, policy: FetchPolicy) -> None:
        context = ssl_context(policy.verify_tls)
        super().__init__(verify=context, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=policy.max_concurrency,
            max_keepalive_connections=policy.max_concurrency,
            keepalive_expiry=5.0,
            http1=True,
            http2=False,
            retries=0,
            network_backend=backend,
        )


class Fetcher:
    """Fetches pages and media under a :class:`FetchPolicy`. Use as ``async with``.

    ``connect_backend`` is the backend that opens TCP connections *after* the guard has resolved
    and checked the host (it is handed the checked IP); tests wrap it to record what is contacted.
    """

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        *,
        connect_backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy or FetchPolicy()
        self.guard = AddressGuard(self.policy.allowed_networks)
        self.backend = GuardedBackend(self.guard, self.policy.resolver, connect_backend)
        self._client: httpx.AsyncClient | None = None
        self._sem = anyio.Semaphore(max(1, self.policy.max_concurrency))

    async def __aenter__(self) -> Fetcher:
        p = self.policy
        self._client = _Client(
            transport=_GuardedTransport(self.backend, p),
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(p.timeout_s, connect=p.connect_timeout_s, read=p.read_timeout_s),
            headers={"User-Agent": p.user_agent, "Accept-Encoding": "gzip, deflate"},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def fetch_page(self, url: str, budget_s: float | None = None) -> Page:
        """A page and its media URLs; a URL that is itself an image/video (by Content-Type or by
        its first bytes) comes back as ``direct_media``. ``budget_s`` shortens the policy's total
        time for this one fetch. Raises :class:`FetchError`."""
        p = self.policy

        def limit(ctype: str, head: bytes | None) -> int:
            if ctype.startswith(("image/", "video/")) or (head is not None and sniff_media(head)):
                return p.max_media_bytes
            return p.max_page_bytes

        r = await self._fetch(url, limit, budget_s)
        head = r.body[:_SNIFF_BYTES]
        sniffed = sniff_media(head)
        if r.content_type.startswith(("image/", "video/")) or sniffed:
            return Page(**_fields(r), media_urls=(r.final_url,), direct_media=True)
        html = r.content_type in _HTML_TYPES or (
            r.content_type in _MAYBE_HTML_TYPES and looks_like_html(r.body[:1024])
        )
        if not html:
            raise FetchError("not_html", f"content type {r.content_type or '(none)'}", url)
        text = decode_html(r.body, r.charset)
        found = extract_media_urls(text, r.final_url, limit=p.max_media_per_page + 1)
        return Page(
            **_fields(r),
            media_urls=tuple(found[: p.max_media_per_page]),
            media_truncated=len(found) > p.max_media_per_page,
        )

    async def fetch_media(self, url: str, budget_s: float | None = None) -> FetchResult:
        """An image or video (by Content-Type, or by its first bytes); else ``not_media``.
        ``budget_s`` shortens the policy's total time for this one fetch."""
        r = await self._fetch(url, lambda _c, _h: self.policy.max_media_bytes, budget_s)
        if not (r.content_type.startswith(("image/", "video/")) or sniff_media(r.body[:_SNIFF_BYTES])):
            raise FetchError("not_media", f"content type {r.content_type or '(none)'}", url)
        return FetchResult(**_fields(r))

    async def _fetch(
        self, url: str, limit: Callable[[str, bytes | None], int], budget_s: float | None = None
    ) -> _Raw:
        total = self.policy.timeout_s if budget_s is None else max(0.0, min(budget_s, self.policy.timeout_s))
        async with self._sem:
            start = time.monotonic()
            answered: list[bool] = []  # set once a response's headers are in: what a timeout means
            try:
                with anyio.fail_after(total):
                    raw = await self._follow(url, limit, answered)
            except FetchError as exc:
                exc.url = exc.url or url
                raise
            except (httpx.ReadTimeout, httpcore.ReadTimeout):
                what = "sent part of its answer and then" if answered else "accepted the connection but"
                raise FetchError(
                    "stalled", f"the server {what} sent nothing for {self.policy.read_timeout_s:g} s", url
                ) from None
            except (TimeoutError, httpx.TimeoutException, httpcore.TimeoutException):
                if answered:
                    raise FetchError("too_slow", f"the body took over {total:g} s", url) from None
                raise FetchError("timeout", f"over {total:g} s", url) from None
            except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                raise FetchError("bad_url", str(exc), url) from None
            except (httpx.RemoteProtocolError, httpx.LocalProtocolError) as exc:
                raise FetchError("protocol_error", str(exc) or type(exc).__name__, url) from None
            except (httpx.TransportError, OSError) as exc:
                raise FetchError("unreachable", str(exc) or type(exc).__name__, url) from None
            raw.elapsed_s = time.monotonic() - start
            return raw

    async def _follow(
        self, url: str, limit: Callable[[str, bytes | None], int], answered: list[bool]
    ) -> _Raw:
        assert self._client is not None, "use Fetcher in 'async with'"
        current = check_url(url, self.guard)
        chain: list[str] = []
        while True:
            async with self._send(current) as response:
                location = response.headers.get("location")
                if response.status_code in _REDIRECTS and location:
                    if len(chain) >= self.policy.max_redirects:
                        raise FetchError("too_many_redirects", f"more than {self.policy.max_redirects}", url)
                    target = urljoin(str(current), location.strip())
                    chain.append(str(current))
                    try:
                        current = check_url(target, self.guard)
                    except FetchError as exc:
                        raise FetchError(
                            exc.code, f"redirect to {target[:200]}: {exc.message}", url
                        ) from None
                    continue
                if not 200 <= response.status_code < 300:
                    raise FetchError("http_status", f"HTTP {response.status_code}", url, response.status_code)
                # Read while the connection is open: a server that closes it after the body (HTTP/1.0,
                # "Connection: close") would otherwise leave no address to record.
                server_ip = _server_ip(response)
                answered.append(True)
                body, wire = await self._read(response, limit)
                return _Raw(
                    url=url,
                    final_url=str(current),
                    status=response.status_code,
                    content_type=_media_type(response),
                    charset=_charset(response),
                    body=body,
                    server_ip=server_ip,
                    redirects=tuple(chain),
                    fetched_bytes=wire,
                )

    @asynccontextmanager
    async def _send(self, url: httpx.URL) -> AsyncIterator[httpx.Response]:
        assert self._client is not None
        request = self._client.build_request("GET", url)
        response = await self._client.send(request, stream=True, follow_redirects=False)
        try:
            yield response
        finally:
            await response.aclose()

    async def _read(
        self, response: httpx.Response, limit: Callable[[str, bytes | None], int]
    ) -> tuple[bytes, int]:
        ctype = _media_type(response)
        cap = limit(ctype, None)
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max(cap, limit(ctype, b"\x89PNG\r\n\x1a\n")):
            raise FetchError("too_large", f"Content-Length {declared} over the limit")
        decoder = _Decoder(response.headers.get("content-encoding", ""))
        parts: list[bytes] = []
        size = wire = 0
        sniffed = False
        async for chunk in response.aiter_raw():
            wire += len(chunk)
            if wire > cap:
                raise FetchError("too_large", f"body over {cap} bytes")
            data = decoder.feed(chunk, cap - size)
            if not data:
                continue
            parts.append(data)
            size += len(data)
            if not sniffed and size >= _SNIFF_BYTES:  # the first bytes may show a page is media
                cap = limit(ctype, b"".join(parts)[:_SNIFF_BYTES])
                sniffed = True
            if size > cap:
                raise FetchError("too_large", f"body over {cap} bytes")
        tail = decoder.flush(cap - size)
        if tail:
            parts.append(tail)
        return b"".join(parts), wire


@dataclass
class _Raw:
    url: str
    final_url: str
    status: int
    content_type: str
    charset: str | None
    body: bytes
    server_ip: str | None
    redirects: tuple[str, ...]
    fetched_bytes: int
    elapsed_s: float = 0.0


def _fields(r: _Raw) -> dict[str, Any]:
    return {f.name: getattr(r, f.name) for f in fields(FetchResult)}
