"""Media URLs in an HTML page, found with the stdlib ``html.parser`` (no recursion, so deep nesting
is harmless; errors in the markup are skipped, never raised).

Found: ``img src``, every candidate of ``img srcset`` and ``picture > source srcset`` (all of them,
not just the largest: different candidates can be different files, and each is a hash to match),
``video src``, ``video > source src``, ``video poster``, and ``<meta>`` ``og:image``/``og:video``
(also ``:url``/``:secure_url``) and ``twitter:image``/``twitter:player:stream``. Relative URLs are
resolved against the first ``<base href>`` (itself resolved against the page URL), else the page
URL. Only http(s) URLs are kept; ``data:`` URIs and other schemes are ignored. Fragments are
dropped, duplicates removed, document order kept, the list capped.
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit, urlunsplit

#: attribute values longer than this are ignored (a URL, not an attack)
MAX_URL_CHARS = 8192

_META_KEYS = {
    "og:image",
    "og:image:url",
    "og:image:secure_url",
    "og:video",
    "og:video:url",
    "og:video:secure_url",
    "twitter:image",
    "twitter:image:src",
    "twitter:player:stream",
}
_CHARSET_META = re.compile(rb"""<meta[^>]{0,512}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.I)


def parse_srcset(value: str) -> list[str]:
    """The URLs of every candidate in a ``srcset`` (WHATWG parsing: a URL may contain commas,
    a candidate ends at a comma outside parentheses)."""
    urls: list[str] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and (value[i].isspace() or value[i] == ","):
            i += 1
        if i >= n:
            break
        start = i
        while i < n and not value[i].isspace():
            i += 1
        url = value[start:i]
        if url.endswith(","):
            url = url.rstrip(",")
        else:  # skip descriptors up to the next comma outside parentheses
            depth = 0
            while i < n:
                c = value[i]
                if c == "(":
                    depth += 1
                elif c == ")":
                    depth = max(0, depth - 1)
                elif c == "," and depth == 0:
                    i += 1
                    break
                i += 1
        if url:
            urls.append(url)
    return urls


def normalise_url(raw: str, base: str) -> str | None:
    """``raw`` resolved against ``base``, as an absolute http(s) URL without fragment, or None."""
    raw = raw.strip()
    if not raw or len(raw) > MAX_URL_CHARS:
        return None
    try:
        joined = urljoin(base, raw)
        parts = urlsplit(joined)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return urlunsplit((parts.scheme.lower(), parts.netloc, parts.path or "/", parts.query, ""))


class _MediaParser(HTMLParser):
    def __init__(self, page_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page_url = page_url
        self.base: str | None = None
        self.raw: list[str] = []
        self.in_video = 0
        self.in_picture = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): v for k, v in attrs if v is not None and len(v) <= MAX_URL_CHARS * 4}
        if tag == "base" and self.base is None and "href" in a:
            self.base = normalise_url(a["href"], self.page_url)
        elif tag == "img":
            self._add(a.get("src"))
            self._add_srcset(a.get("srcset"))
        elif tag == "picture":
            self.in_picture += 1
        elif tag == "video":
            self.in_video += 1
            self._add(a.get("src"))
            self._add(a.get("poster"))
        elif tag == "source":
            if self.in_video:
                self._add(a.get("src"))
            if self.in_picture:
                self._add_srcset(a.get("srcset"))
        elif tag == "meta":
            key = (a.get("property") or a.get("name") or "").strip().lower()
            if key in _META_KEYS:
                self._add(a.get("content"))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in ("video", "picture"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "video":
            self.in_video = max(0, self.in_video - 1)
        elif tag == "picture":
            self.in_picture = max(0, self.in_picture - 1)

    def _add(self, value: str | None) -> None:
        if value and not value.lstrip().lower().startswith("data:"):
            self.raw.append(value)

    def _add_srcset(self, value: str | None) -> None:
        if value:
            for url in parse_srcset(value):
                self._add(url)


def decode_html(body: bytes, charset: str | None = None) -> str:
    """Text of an HTML body: the declared charset (header, else ``<meta charset>``, else UTF-8);
    undecodable bytes become U+FFFD, an unknown charset falls back to UTF-8."""
    if body.startswith(codecs.BOM_UTF8):
        return body[3:].decode("utf-8", "replace")
    if charset is None:
        m = _CHARSET_META.search(body[:4096])
        charset = m.group(1).decode("ascii") if m else None
    try:
        codecs.lookup(charset or "utf-8")
        return body.decode(charset or "utf-8", "replace")
    except (LookupError, ValueError):
        return body.decode("utf-8", "replace")


def extract_media_urls(html: str | bytes, page_url: str, limit: int | None = None) -> list[str]:
    """Absolute http(s) image/video URLs in ``html``, de-duplicated, in document order, at most
    ``limit``. Never raises on bad markup: what was found before a parser error is returned."""
    text = decode_html(html) if isinstance(html, bytes) else html
    parser = _MediaParser(page_url)
    try:
        parser.feed(text)
        parser.close()
    except Exception:  # html.parser is lenient, but hostile input must never cost the page
        pass
    base = parser.base or page_url
    out: dict[str, None] = {}
    for raw in parser.raw:
        url = normalise_url(raw, base)
        if url is not None:
            out.setdefault(url)
            if limit is not None and len(out) >= limit:
                break
    return list(out)
