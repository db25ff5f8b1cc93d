"""Media URLs in an HTML page, found with the stdlib ``html.parser`` (no recursion, so deep nesting
is harmless; errors in the markup are skipped, never raised).

Found, in document order: ``img src``; every candidate of ``img srcset`` and ``picture > source
srcset`` (all of them, not just the largest: different candidates can be different files, and each
is a hash to match; a srcset may be as long as the page); lazy-loading attributes (``data-src``,
``data-srcset``, ``data-lazy-src``, ``data-original`` ... on ``img`` and ``source``, ``data-bg`` on
any element); ``video src``, ``video > source src``, ``video poster``; ``<meta>``
``og:image``/``og:video`` (also ``:url``/``:secure_url``) and ``twitter:image``/
``twitter:player:stream``; CSS ``background``/``background-image`` ``url(...)`` in ``style``
attributes and ``<style>`` blocks; ``<a href>`` whose path ends in an image or video extension;
``<object data>`` and ``<embed src>`` (unless their ``type`` says they are not an image or video);
SVG ``<image href>``/``xlink:href``; ``<input type=image src>``.

Relative URLs are resolved against the first ``<base href>`` (itself resolved against the page
URL), else the page URL. Only http(s) URLs are kept; ``data:`` URIs and other schemes are ignored.
Fragments are dropped, duplicates removed, the list capped. The order: every element's own media
first, in document order (a srcset gives its first candidate here), then the srcsets' further
candidates (other sizes of the same pictures, mostly), in document order — so a gallery whose
srcsets hold more candidates than the page's cap still has each of its pictures fetched, and one
long srcset cannot crowd out the images after it.

Budgets: a URL longer than :data:`MAX_URL_CHARS` is dropped; at most :data:`MAX_CANDIDATES`
candidates are collected from one page, and as many further srcset candidates (a
100,000-candidate srcset costs no more); parsing stops
after ``max_s`` seconds (checked between chunks of the page), keeping what was found.
"""

from __future__ import annotations

import codecs
import re
import time
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit, urlunsplit

#: attribute values longer than this are ignored (a URL, not an attack)
MAX_URL_CHARS = 8192
#: candidate URLs collected from one page before de-duplication; the rest are ignored
MAX_CANDIDATES = 20_000
#: seconds one page may take to parse; what was found by then is kept
MAX_PARSE_S = 5.0
_CHUNK = 64 * 1024

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
#: lazy-loading attributes holding one URL (img, source) / a srcset (img, source)
_LAZY_SRC = ("data-src", "data-lazy-src", "data-original", "data-lazy", "data-hi-res-src", "data-full-src")
_LAZY_SRCSET = ("data-srcset", "data-lazy-srcset")
#: attributes on any element that lazy loaders read a background image from
_LAZY_BG = ("data-bg", "data-background", "data-background-image")
#: a path ending in one of these is an image or a video (for <a href>, <object>, <embed>)
MEDIA_EXTENSIONS = frozenset(
    [
        "jpg",
        "jpeg",
        "jpe",
        "jfif",
        "pjpeg",
        "png",
        "apng",
        "gif",
        "webp",
        "bmp",
        "tif",
        "tiff",
        "avif",
        "heic",
        "heif",
        "mp4",
        "m4v",
        "mov",
        "webm",
        "mkv",
        "avi",
        "flv",
        "wmv",
        "mpg",
        "mpeg",
        "3gp",
        "ogv",
        "ts",
    ]
)
_CHARSET_META = re.compile(rb"""<meta[^>]{0,512}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.I)
#: a CSS background declaration's value (up to ; } or {); linear: matches never overlap
_CSS_BACKGROUND = re.compile(r"background(?:-image)?\s*:([^;{}]*)", re.I)
_CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)"'\s]*))\s*\)""", re.I)


class _Full(Exception):
    """The candidate budget is spent: stop parsing."""


def parse_srcset(value: str, limit: int | None = None) -> list[str]:
    """The URLs of every candidate in a ``srcset`` (WHATWG parsing: a URL may contain commas,
    a candidate ends at a comma outside parentheses), at most ``limit``. Linear in ``value``."""
    urls: list[str] = []
    i, n = 0, len(value)
    while i < n and (limit is None or len(urls) < limit):
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


def css_background_urls(css: str) -> list[str]:
    """The ``url(...)`` values of CSS ``background`` and ``background-image`` declarations."""
    out: list[str] = []
    for decl in _CSS_BACKGROUND.finditer(css):
        for m in _CSS_URL.finditer(decl.group(1)):
            out.append(m.group(1) or m.group(2) or m.group(3) or "")
    return out


def has_media_extension(raw: str) -> bool:
    """Whether the path of ``raw`` (a URL, maybe relative) ends in an image or video extension."""
    try:
        path = urlsplit(raw.strip()).path
    except ValueError:
        return False
    last = path.rsplit("/", 1)[-1]
    return "." in last and last.rsplit(".", 1)[-1].lower() in MEDIA_EXTENSIONS


def resolve_link(raw: str, base: str) -> str | None:
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


def _embeddable(a: dict[str, str], url: str | None) -> bool:
    """An <object>/<embed> worth fetching: its type says image/video, or it has no type and its
    URL is not plainly another kind of document."""
    mime = a.get("type", "").strip().lower()
    if mime:
        return mime.startswith(("image/", "video/"))
    return bool(url) and not re.search(r"\.(swf|pdf|html?|xhtml|php|txt|svg|js)(\?|$)", url or "", re.I)


class _MediaParser(HTMLParser):
    def __init__(self, page_url: str, max_candidates: int) -> None:
        super().__init__(convert_charrefs=True)
        self.page_url = page_url
        self.base: str | None = None
        self.raw: list[str] = []
        self.room = max_candidates
        #: srcset candidates after each srcset's first: listed after every element's own media
        self.extra: list[str] = []
        self.extra_room = max_candidates
        self.in_video = 0
        self.in_picture = 0
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): v for k, v in attrs if v is not None}
        if "style" in a:
            self._add_all(css_background_urls(a["style"]))
        for name in _LAZY_BG:
            if name in a:
                found = css_background_urls(f"background:{a[name]}")
                self._add_all(found or [a[name]])
        if tag == "base" and self.base is None and "href" in a:
            self.base = resolve_link(a["href"], self.page_url)
        elif tag == "img":
            self._add(a.get("src"))
            self._add_srcset(a.get("srcset"))
            self._add_lazy(a)
        elif tag == "picture":
            self.in_picture += 1
        elif tag == "video":
            self.in_video += 1
            self._add(a.get("src"))
            self._add(a.get("poster"))
            self._add_lazy(a)
        elif tag == "source":
            if self.in_video:
                self._add(a.get("src"))
            if self.in_picture:
                self._add_srcset(a.get("srcset"))
            if self.in_video or self.in_picture:
                self._add_lazy(a)
        elif tag == "meta":
            key = (a.get("property") or a.get("name") or "").strip().lower()
            if key in _META_KEYS:
                self._add(a.get("content"))
        elif tag == "a":
            href = a.get("href")
            if href and (has_media_extension(href) or a.get("type", "").startswith(("image/", "video/"))):
                self._add(href)
        elif tag in ("object", "embed"):
            url = a.get("data") if tag == "object" else a.get("src")
            if _embeddable(a, url):
                self._add(url)
        elif tag == "image":  # SVG
            self._add(a.get("href") or a.get("xlink:href"))
        elif tag == "input" and a.get("type", "").lower() == "image":
            self._add(a.get("src"))
        elif tag == "style":
            self.in_style = True

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in ("video", "picture", "style"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "video":
            self.in_video = max(0, self.in_video - 1)
        elif tag == "picture":
            self.in_picture = max(0, self.in_picture - 1)
        elif tag == "style":
            self.in_style = False

    def handle_data(self, data: str) -> None:
        if self.in_style:
            self._add_all(css_background_urls(data))

    def _add(self, value: str | None) -> None:
        if not value or len(value) > MAX_URL_CHARS or value.lstrip()[:5].lower() == "data:":
            return
        if self.room <= 0:
            raise _Full
        self.room -= 1
        self.raw.append(value)

    def _add_all(self, values: list[str]) -> None:
        for v in values:
            self._add(v)

    def _add_srcset(self, value: str | None) -> None:
        if not value:
            return
        first, *rest = parse_srcset(value, limit=1 + self.extra_room) or [""]
        self._add(first)
        for v in rest:
            if len(v) <= MAX_URL_CHARS and v.lstrip()[:5].lower() != "data:":
                self.extra.append(v)
                self.extra_room -= 1

    def _add_lazy(self, a: dict[str, str]) -> None:
        for name in _LAZY_SRC:
            self._add(a.get(name))
        for name in _LAZY_SRCSET:
            self._add_srcset(a.get(name))


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


def extract_media_urls(
    html: str | bytes,
    page_url: str,
    limit: int | None = None,
    *,
    max_candidates: int = MAX_CANDIDATES,
    max_s: float = MAX_PARSE_S,
) -> list[str]:
    """Absolute http(s) image/video URLs in ``html``, de-duplicated, in document order, at most
    ``limit``. Never raises on bad markup: what was found before a parser error, the candidate
    budget or the time budget stopped it is returned."""
    text = decode_html(html) if isinstance(html, bytes) else html
    parser = _MediaParser(page_url, max_candidates)
    deadline = time.monotonic() + max_s
    try:
        for start in range(0, len(text), _CHUNK):
            parser.feed(text[start : start + _CHUNK])
            if time.monotonic() > deadline:
                break
        else:
            parser.close()
    except Exception:  # the budget is spent (_Full), or html.parser gave up: keep what was found
        pass
    base = parser.base or page_url
    out: dict[str, None] = {}
    for raw in [*parser.raw, *parser.extra]:
        url = resolve_link(raw, base)
        if url is not None:
            out.setdefault(url)
            if limit is not None and len(out) >= limit:
                break
    return list(out)
