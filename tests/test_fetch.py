"""The fetcher against a benign test web on loopback: generated pages and images, plus hostile
responses (slow, huge, gzip bomb, redirect loop, wrong types, malformed HTML). The web is stdlib
`http.server`; tests/test_fetch_ssrf.py reuses it. Nothing here reaches a non-loopback address."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from meldpunt.fetch import Fetcher, FetchError, FetchPolicy, Page, extract_media_urls, parse_srcset
from tests.helpers.fakeweb import (
    PAGE,
    FakeResolver,
    RecordingBackend,
    Served,
    Web,
    error_of,
    local_policy,
    malformed_html,
    page,
    run,
)

# --- instruments -----------------------------------------------------------------------------


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def web() -> Iterator[Web]:
    yield Web()


@pytest.fixture(scope="module")
def site(web: Web) -> Iterator[Served]:
    served = Served(web, "127.0.0.1")
    yield served
    served.close()


# --- extraction (no network) -----------------------------------------------------------------


def test_srcset_keeps_every_candidate_and_commas_in_urls() -> None:
    assert parse_srcset("a.jpg 1x, b,c.jpg 2x,d.jpg") == ["a.jpg", "b,c.jpg", "d.jpg"]
    assert parse_srcset(" x.png 100w (junk, more) , y.png") == ["x.png", "y.png"]
    assert parse_srcset("") == [] and parse_srcset(" , ,") == []


def test_extraction_finds_all_media_kinds_in_order() -> None:
    urls = extract_media_urls(PAGE, "http://site.test/dir/index.html")
    assert urls == [
        "http://site.test/og.png",
        "https://cdn.example.test/clip.mp4",
        "http://site.test/dir/img/a.png",
        "http://site.test/img/b.jpg",
        "http://site.test/img/b-1x.jpg",
        "http://site.test/pic/small.webp",
        "http://site.test/pic/fallback.jpg",
        "http://site.test/vid/one.mp4",
        "http://site.test/vid/poster.jpg",
        "http://site.test/vid/two.webm",
        "http://site.test/img/a.png",
        # then the srcsets' further candidates
        "http://site.test/img/b,2x.jpg",
        "http://site.test/pic/large.webp",
    ]  # data:, javascript:, ftp:, blank and a <source> outside video/picture are left out


def test_base_href_and_limit() -> None:
    html = '<base href="/other/"><img src="a.png"><img src="b.png"><img src="c.png">'
    assert extract_media_urls(html, "https://h.test/x/y") == [
        "https://h.test/other/a.png",
        "https://h.test/other/b.png",
        "https://h.test/other/c.png",
    ]
    assert len(extract_media_urls(html, "https://h.test/", limit=2)) == 2


def test_hostile_html_never_raises_and_stays_fast() -> None:
    start = time.monotonic()
    urls = extract_media_urls(malformed_html(), "http://h.test/")
    assert time.monotonic() - start < 10
    assert "http://h.test/deep.png" in urls and "http://h.test/ok.png" in urls
    assert not any("B" * 10_000 in u for u in urls)  # over-long URLs dropped
    for junk in ("", "<", "<<<<" * 10_000, "<img src='", "\x00" * 1000, "<svg><![CDATA[", "<!--" * 500):
        extract_media_urls(junk, "http://h.test/")


# --- fetching from the loopback test web -----------------------------------------------------


def test_fetch_page_records_the_essentials(site: Served) -> None:
    backend = RecordingBackend()
    p = run(page(site.url("/chain?n=2"), backend=backend))
    assert p.status == 200 and p.content_type == "text/html" and not p.direct_media
    assert p.final_url == site.url("/page")
    assert p.redirects == (site.url("/chain?n=2"), site.url("/chain?n=1"), site.url("/chain?n=0"))
    assert p.server_ip == "127.0.0.1"
    assert p.fetched_bytes == len(PAGE) and p.body == PAGE and p.elapsed_s > 0
    assert p.media_urls[0] == site.url("/og.png") and site.url("/img/a.png") in p.media_urls
    assert {h for h, _ in backend.connects} == {"127.0.0.1"}


def test_gzip_page_is_decoded(site: Served) -> None:
    p = run(page(site.url("/page-gz")))
    assert p.body == PAGE and p.fetched_bytes < len(PAGE) and len(p.media_urls) == 12


def test_page_without_content_type_is_sniffed(site: Served) -> None:
    assert len(run(page(site.url("/page-no-type"))).media_urls) == 12


@pytest.mark.parametrize("path", ["/img/a.png", "/image-as-octet", "/image-as-html"])
def test_direct_media_link(site: Served, web: Web, path: str) -> None:
    p = run(page(site.url(path)))
    assert p.direct_media and p.media_urls == (site.url(path),) and p.body == web.png


def test_fetch_media(site: Served, web: Web) -> None:
    async def go() -> tuple[bytes, bytes, FetchError]:
        async with Fetcher(local_policy(), connect_backend=RecordingBackend()) as f:
            a = await f.fetch_media(site.url("/img/a.png"))
            b = await f.fetch_media(site.url("/img/b.jpg"))
            with pytest.raises(FetchError) as info:
                await f.fetch_media(site.url("/page"))
            return a.body, b.body, info.value

    a, b, err = run(go())
    assert a == web.png and b == web.jpeg and err.code == "not_media"


def test_media_per_page_cap(site: Served) -> None:
    p = run(page(site.url("/many"), local_policy(max_media_per_page=7)))
    assert len(p.media_urls) == 7 and p.media_truncated


def test_malformed_page_with_bogus_charset(site: Served) -> None:
    p = run(page(site.url("/malformed")))
    assert site.url("/ok.png") in p.media_urls and site.url("/deep.png") in p.media_urls


def test_host_header_keeps_the_hostname(site: Served, web: Web) -> None:
    resolver = FakeResolver({"site.test": [["127.0.0.1"]]})
    backend = RecordingBackend()
    p = run(page(f"http://site.test:{site.port}/page?host-check", local_policy(resolver=resolver), backend))
    assert p.server_ip == "127.0.0.1" and backend.connects == [("127.0.0.1", site.port)]
    with web.lock:
        assert ("/page", f"site.test:{site.port}") in web.hits


@pytest.mark.parametrize(
    ("path", "code", "policy"),
    [
        ("/slow?s=3", "timeout", {"timeout_s": 0.5}),
        ("/slow-body", "too_slow", {"timeout_s": 1.0}),
        ("/slow-body", "too_slow", {"timeout_s": 1.0, "read_timeout_s": 0.5}),  # each read is quick
        ("/stall-body", "stalled", {"read_timeout_s": 0.3}),
        ("/slow?s=3", "stalled", {"read_timeout_s": 0.3}),
        ("/huge", "too_large", {"max_page_bytes": 1024 * 1024}),
        ("/huge-declared", "too_large", {}),
        ("/bomb", "too_large", {"max_page_bytes": 1024 * 1024}),
        ("/bad-gzip", "bad_encoding", {}),
        ("/brotli", "bad_encoding", {}),
        ("/loop", "too_many_redirects", {}),
        ("/chain?n=3", "too_many_redirects", {"max_redirects": 2}),
        ("/nothing-here", "http_status", {}),
        ("/text", "not_html", {}),
        ("/json", "not_html", {}),
    ],
)
def test_hostile_responses_give_a_clear_error(
    site: Served, path: str, code: str, policy: dict[str, Any]
) -> None:
    start = time.monotonic()
    err = error_of(page(site.url(path), local_policy(**policy)))
    assert err.code == code, err
    assert err.url == site.url(path)
    assert time.monotonic() - start < 4


def test_http_status_error_carries_the_status(site: Served) -> None:
    assert error_of(page(site.url("/nope"))).status == 404


def test_gzip_bomb_in_media_stops_at_the_media_limit(site: Served) -> None:
    async def go() -> Any:
        async with Fetcher(
            local_policy(max_media_bytes=2 * 1024 * 1024), connect_backend=RecordingBackend()
        ) as f:
            return await f.fetch_media(site.url("/bomb"))

    assert error_of(go()).code == "too_large"


def test_unreachable_port(site: Served) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connection refused
        err = error_of(page(f"http://127.0.0.1:{port}/"))
    assert err.code == "unreachable"


def test_many_fetches_at_once(site: Served) -> None:
    async def go() -> list[Page]:
        # forty pages share one loopback server thread: on a loaded 2-core machine the last can wait more
        # than the usual 5 s; this test is about concurrency, not the timeout (tested on its own)
        async with Fetcher(local_policy(timeout_s=60.0), connect_backend=RecordingBackend()) as f:
            return await asyncio.gather(*(f.fetch_page(site.url(f"/page?{i}")) for i in range(40)))

    assert FetchPolicy().max_concurrency >= 32
    assert all(len(p.media_urls) == 12 for p in run(go()))


def test_policy_fields_are_documented() -> None:
    for name, help_text, _default in FetchPolicy.documented():
        assert len(help_text) > 15, name
