"""Entities of a fetched HTML page: its visible text, its links and its metadata.

Data minimisation: the caller keeps only the entities this returns, never the page text. Links to
the page's own site are navigation, not facts, and are skipped; ``mailto:`` and ``tel:`` links give
e-mail addresses and phone numbers; ``<meta>`` values (description, author, ``twitter:site`` and
``twitter:creator`` — X handles —, ``og:url``, ``og:see_also``) and ``<link rel=me>`` are read like
text. Parsed with the stdlib ``html.parser`` (no recursion: deep nesting is harmless; broken
markup is skipped, never raised); at most :data:`MAX_PAGE_CHARS` of markup, :data:`MAX_LINKS`
links and :data:`~meldpunt.entities.extract.MAX_CHARS` of text are read.
"""

from __future__ import annotations

import time
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from meldpunt.entities.extract import MAX_CHARS, MAX_ENTITIES, MAX_S, Entity, extract, normal_host

#: characters of markup parsed (a page is capped by the fetcher too)
MAX_PAGE_CHARS = 2_000_000
#: links read from one page
MAX_LINKS = 5000
_CHUNK = 64 * 1024
_SKIP = {"script", "style", "noscript", "template", "svg"}
_META = {"description", "author", "twitter:site", "twitter:creator", "og:url", "og:see_also", "profile"}


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.text_chars = 0
        self.links: list[str] = []
        self.meta: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): v for k, v in attrs if v is not None}
        if tag in _SKIP:
            self.skip += 1
        elif (tag in ("a", "area") and "href" in a and len(self.links) < MAX_LINKS) or (
            tag == "link" and "me" in a.get("rel", "").lower().split() and "href" in a
        ):
            self.links.append(a["href"][:4096])
        elif tag == "meta":
            key = (a.get("property") or a.get("name") or "").strip().lower()
            if key in _META and a.get("content"):
                prefix = "twitter " if key.startswith("twitter:") else ""
                self.meta.append(prefix + a["content"][:4096])

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _SKIP:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)

    def handle_data(self, data: str) -> None:
        if not self.skip and self.text_chars < MAX_CHARS:
            self.text.append(data)
            self.text_chars += len(data)


def _site(host: str) -> str:
    """The last two labels of a host: links within one site are navigation."""
    return ".".join(host.split(".")[-2:])


def extract_page(
    html: str, page_url: str, *, region: str | None = None, max_s: float = MAX_S
) -> list[Entity]:
    """The entities in a page's text, outbound links and metadata (see the module's note)."""
    deadline = time.monotonic() + max_s
    parser = _PageParser()
    html = html[:MAX_PAGE_CHARS]
    try:
        for start in range(0, len(html), _CHUNK):
            parser.feed(html[start : start + _CHUNK])
            if time.monotonic() > deadline:
                break
        else:
            parser.close()
    except Exception:  # html.parser gave up on broken markup: keep what was read
        pass
    own = _site(normal_host(urlsplit(page_url).hostname or "") or "")
    lines: list[str] = []
    for raw in parser.links:
        low = raw.strip().lower()
        if low.startswith(("mailto:", "tel:")):
            lines.append(raw.strip().split(":", 1)[1].split("?", 1)[0])
            continue
        if low.startswith(("bitcoin:", "ethereum:", "litecoin:", "monero:")):
            lines.append(raw.strip())
            continue
        try:
            url = urljoin(page_url, raw.strip())
            host = normal_host(urlsplit(url).hostname or "")
        except ValueError:
            continue
        if host is not None and _site(host) != own:
            lines.append(url)
    remaining = max(0.05, deadline - time.monotonic())
    text = "\n".join([*parser.meta, *lines, " ".join(parser.text)])
    return extract(text, region=region, max_s=remaining)[:MAX_ENTITIES]


__all__ = ["MAX_LINKS", "MAX_PAGE_CHARS", "extract_page"]
