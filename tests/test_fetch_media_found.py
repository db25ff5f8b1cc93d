"""Media a page plainly shows are found (issue #8): a srcset longer than 32,768 characters,
lazy-loading attributes, CSS backgrounds (inline and in <style>), links to images and videos,
<object>/<embed> and SVG <image>. Each page is benign but shaped the hostile way and is served on
loopback and read through the real fetcher; the extractor's budgets hold on a 100,000-candidate
srcset."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from meldpunt.fetch import extract_media_urls, parse_srcset
from meldpunt.fetch.extract import MAX_CANDIDATES, css_background_urls
from tests.helpers.fakeweb import Served, _send, local_policy, page, run

#: a srcset of 12 signed-CDN-style candidates, 36,000+ characters, whose last one is the widest
_SIGNED = "?sig=" + "a1b2c3d4" * 375
_LONG_SRCSET = ", ".join(f"/thumbs/filler-{n:05d}.jpg{_SIGNED} {n + 1}00w" for n in range(12))

PAGES: dict[str, tuple[bytes, list[str]]] = {
    "/long-srcset": (  # 32,768+ characters: the old extractor dropped the attribute
        f'<html><body><img srcset="{_LONG_SRCSET}, /img/wide.jpg 4000w"></body></html>'.encode(),
        [f"/thumbs/filler-00000.jpg{_SIGNED}", "/img/wide.jpg"],
    ),
    "/lazy": (
        b'<html><body><img src="data:image/gif;base64,R0lGOD" data-src="/img/lazy.jpg">'
        b'<img class="lazyload" data-srcset="/img/lazy-1x.jpg 1x, /img/lazy-2x.jpg 2x">'
        b'<picture><source data-srcset="/img/lazy.webp" type="image/webp"></picture>'
        b'<div class="lazyload" data-bg="/img/lazy-bg.jpg"></div></body></html>',
        ["/img/lazy.jpg", "/img/lazy-1x.jpg", "/img/lazy-2x.jpg", "/img/lazy.webp", "/img/lazy-bg.jpg"],
    ),
    "/css-inline": (
        b"<html><body><div style=\"width:100%;background-image: url('/img/hero.jpg')\"></div>"
        b'<span style="background:#000 url(/img/tile.png) repeat; font-family: x"></span></body></html>',
        ["/img/hero.jpg", "/img/tile.png"],
    ),
    "/css-block": (
        b'<html><head><style>@font-face { src: url("/fonts/x.woff2") }\n'
        b'.hero { background-image: url("/img/banner.jpg"), linear-gradient(#000, #fff) }\n'
        b".b{background:url(/img/b.png) no-repeat}</style></head><body></body></html>",
        ["/img/banner.jpg", "/img/b.png"],
    ),
    "/links": (
        b'<html><body><a href="/full/photo.JPG">full size</a> <a href="/clip.mp4?dl=1">clip</a>'
        b'<a href="/about.html">about</a> <a href="/gallery/">gallery</a></body></html>',
        ["/full/photo.JPG", "/clip.mp4?dl=1"],
    ),
    "/embedded": (
        b'<html><body><object data="/obj/picture.png" type="image/png"></object>'
        b'<object data="/obj/doc.pdf" type="application/pdf"></object>'
        b'<embed src="/emb/movie.webm"><embed src="/emb/game.swf"></body></html>',
        ["/obj/picture.png", "/emb/movie.webm"],
    ),
    "/svg": (
        b'<html><body><svg viewBox="0 0 10 10"><image href="/svg/a.png" width="10"/>'
        b'<image xlink:href="/svg/b.jpg"></image></svg></body></html>',
        ["/svg/a.png", "/svg/b.jpg"],
    ),
}


class MediaWeb:
    def route(self, h: BaseHTTPRequestHandler) -> None:
        found = PAGES.get(h.path)
        if found is None:
            _send(h, 404, b"not here", "text/plain")
        else:
            _send(h, 200, found[0], "text/html; charset=utf-8")


@pytest.fixture(scope="module")
def media_site() -> Iterator[Served]:
    served = Served(MediaWeb(), "127.0.0.1")  # type: ignore[arg-type]
    yield served
    served.close()


@pytest.mark.parametrize("path", list(PAGES))
def test_media_the_page_shows_are_found(media_site: Served, path: str) -> None:
    got = run(page(media_site.url(path), local_policy()))
    expected = [media_site.url(p) for p in PAGES[path][1]]
    assert got.media_urls, f"{path}: no media found"
    for url in expected:
        assert url in got.media_urls, f"{path}: {url} not found"
    assert not any(u.endswith((".woff2", ".pdf", ".swf", ".html", "/gallery/")) for u in got.media_urls)


def test_css_background_urls_only_from_background_declarations() -> None:
    css = "a{background:url( 'x.png' )} b{content:url(y.png); background-image:url(\"z.jpg\")}"
    assert css_background_urls(css) == ["x.png", "z.jpg"]
    assert css_background_urls("background-image: url(" + "(" * 100_000) == []


def test_a_100k_candidate_srcset_stays_within_the_budgets() -> None:
    srcset = ",".join(f"/c/{n}.jpg {n}w" for n in range(100_000))  # ~1.5 MB of attribute
    html = f'<img srcset="{srcset}"><img src="/after.png">'
    assert len(parse_srcset(srcset, limit=10)) == 10
    tracemalloc.start()
    try:
        urls = extract_media_urls(html, "http://h.test/", limit=201)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(urls) == 201  # the page's cap: the first candidates, not a hang or an error
    assert urls[0] == "http://h.test/c/0.jpg"
    assert peak < 64 * 1024 * 1024
    assert urls[1] == "http://h.test/after.png"  # the image after it is not crowded out
    unlimited = extract_media_urls(html, "http://h.test/")
    # two budgets, whatever the page holds: its elements' own media, and the srcsets' further candidates
    assert len(unlimited) == 2 + MAX_CANDIDATES


def test_a_gallerys_srcsets_do_not_crowd_out_its_pictures_under_the_pages_cap() -> None:
    """60 pictures with 5 sizes each are 300 candidates, over the page's cap of 200: every picture
    is still fetched (each element's own image first, the further sizes after); and one srcset of
    2,500 candidates does not hide the CSS background, linked, embedded and SVG images after it."""
    gallery = "".join(
        f'<img src="/g/{n}.jpg" srcset="{", ".join(f"/g/{n}-{w}.jpg {w}w" for w in (320, 640, 960, 1280))}">'
        for n in range(60)
    )
    urls = extract_media_urls(gallery, "http://h.test/", limit=201)
    assert len(urls) == 201
    assert {f"http://h.test/g/{n}.jpg" for n in range(60)} <= set(urls)
    assert urls[:2] == ["http://h.test/g/0.jpg", "http://h.test/g/0-320.jpg"]

    crowd = ", ".join(f"/s/{n}.jpg {n}w" for n in range(1, 2500))
    page = (
        "<style>.hero{background-image:url('/css/hero.jpg')}</style>"
        f'<img srcset="{crowd}"><div style="background-image: url(/css/inline.jpg)"></div>'
        '<a href="/link/photo.jpg">photo</a><object data="/obj/pic.jpg"></object>'
        '<embed src="/emb/pic.jpg"><svg><image href="/svg/pic.jpg"/></svg>'
    )
    found = extract_media_urls(page, "http://h.test/", limit=201)
    for path in (
        "/css/hero.jpg",
        "/s/1.jpg",
        "/css/inline.jpg",
        "/link/photo.jpg",
        "/obj/pic.jpg",
        "/emb/pic.jpg",
        "/svg/pic.jpg",
    ):
        assert f"http://h.test{path}" in found, path
