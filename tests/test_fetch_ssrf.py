"""The SSRF guard: what is refused (directly and after a redirect), that refused addresses are
never contacted, and that the connection goes to the very address that was checked.

Nothing here contacts anything but loopback: the backend behind the guard is instrumented and
refuses non-loopback addresses itself, and names resolve through a table, never real DNS."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meldpunt.fetch import AddressGuard, Fetcher, FetchPolicy, check_url, parse_ip_literal
from tests.helpers.fakeweb import FakeResolver, RecordingBackend, Served, Web, error_of, run


@pytest.fixture(scope="module")
def web() -> Web:
    return Web()


@pytest.fixture(scope="module")
def canary(web: Web) -> Iterator[Served]:
    """The server on 127.0.0.1 that a redirect must never reach."""
    served = Served(web, "127.0.0.1")
    yield served
    served.close()


@pytest.fixture(scope="module")
def door(web: Web) -> Iterator[Served]:
    """The one allowed server, on 127.0.0.2: it redirects wherever ``?to=`` says."""
    served = Served(web, "127.0.0.2")
    yield served
    served.close()


def resolver() -> FakeResolver:
    return FakeResolver(
        {
            "evil.test": [["10.0.0.1"]],
            "localhost": [["127.0.0.1", "::1"]],
            "mixed.test": [["127.0.0.2", "10.0.0.1"]],
        }
    )


def forbidden_targets(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/canary",
        "http://169.254.169.254/latest/meta-data/",
        f"http://[::ffff:127.0.0.1]:{port}/canary",
        f"http://2130706433:{port}/canary",
        f"http://0177.0.0.1:{port}/canary",
        f"http://0x7f000001:{port}/canary",
        f"http://0x7f.1:{port}/canary",
        f"http://127.1:{port}/canary",
        f"http://evil.test:{port}/canary",
        f"http://localhost:{port}/canary",
        f"http://[::1]:{port}/canary",
        f"http://0.0.0.0:{port}/canary",
        f"http://[64:ff9b::7f00:1]:{port}/canary",
        f"http://mixed.test:{port}/canary",
    ]


@pytest.mark.parametrize("index", range(14))
def test_redirect_to_a_forbidden_address_is_blocked(
    web: Web, canary: Served, door: Served, index: int
) -> None:
    target = forbidden_targets(canary.port)[index]
    backend = RecordingBackend()
    policy = FetchPolicy(allowed_networks=("127.0.0.2/32",), resolver=resolver(), timeout_s=5)

    async def go() -> Any:
        async with Fetcher(policy, connect_backend=backend) as f:
            return await f.fetch_page(door.url("/go?to=" + target.replace(":", "%3A").replace("/", "%2F")))

    err = error_of(go())
    assert err.code == "blocked_address", err
    assert {host for host, _ in backend.connects} == {"127.0.0.2"}  # only the door was contacted
    assert web.count("/canary") == 0 and web.count("/latest/meta-data/") == 0


@pytest.mark.parametrize("index", range(14))
def test_direct_request_to_a_forbidden_address_is_blocked(web: Web, canary: Served, index: int) -> None:
    backend = RecordingBackend()
    policy = FetchPolicy(resolver=resolver())  # empty allow-list

    async def go() -> Any:
        async with Fetcher(policy, connect_backend=backend) as f:
            return await f.fetch_page(forbidden_targets(canary.port)[index])

    assert error_of(go()).code == "blocked_address"
    assert backend.connects == [] and web.count("/canary") == 0


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.2/x",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "data:text/html,<img src=x>",
        "http://user@127.0.0.2/",
        "http://user:pw@example.test/",
        "http:///nohost",
        "gopher://127.0.0.1:70/",
        "not a url",
        "",
    ],
)
def test_unusable_urls_are_bad_url(url: str) -> None:
    backend = RecordingBackend()

    async def go() -> Any:
        async with Fetcher(FetchPolicy(allowed_networks=("127.0.0.0/8",)), connect_backend=backend) as f:
            return await f.fetch_page(url)

    assert error_of(go()).code == "bad_url"
    assert backend.connects == []


def test_redirect_to_another_scheme_is_bad_url(door: Served) -> None:
    policy = FetchPolicy(allowed_networks=("127.0.0.2/32",), resolver=resolver())

    async def go() -> Any:
        async with Fetcher(policy, connect_backend=RecordingBackend()) as f:
            return await f.fetch_page(door.url("/go?to=file%3A%2F%2F%2Fetc%2Fpasswd"))

    assert error_of(go()).code == "bad_url"


def test_connects_to_the_address_it_checked(web: Web, canary: Served) -> None:
    """A rebinding resolver: 127.0.0.1 (allowed) first, 10.0.0.1 after. Each connection resolves
    once and connects to the checked address; the second answer is refused, never contacted."""
    rebinding = FakeResolver({"rebind.test": [["127.0.0.1"], ["10.0.0.1"]]})
    policy = FetchPolicy(allowed_networks=("127.0.0.1/32",), resolver=rebinding, timeout_s=5)
    url = f"http://rebind.test:{canary.port}/page"

    first = RecordingBackend()

    async def fetch(backend: RecordingBackend, n: int = 1) -> Any:
        async with Fetcher(policy, connect_backend=backend) as f:
            return [await f.fetch_page(url) for _ in range(n)]

    pages = run(fetch(first, n=3))  # one connection, kept alive: one resolution
    assert [p.server_ip for p in pages] == ["127.0.0.1"] * 3
    assert first.connects == [("127.0.0.1", canary.port)] and rebinding.calls == ["rebind.test"]

    second = RecordingBackend()  # a new connection resolves again and gets the bad answer
    assert error_of(fetch(second)).code == "blocked_address"
    assert second.connects == [] and rebinding.calls == ["rebind.test", "rebind.test"]


class _TLSRecorder(httpcore.AsyncNetworkBackend):
    """Records the TCP address and the TLS server name; fails the handshake (no real TLS)."""

    def __init__(self) -> None:
        self.connects: list[str] = []
        self.server_names: list[str | None] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append(host)
        recorder = self

        class Stream(httpcore.AsyncMockStream):
            async def start_tls(
                self,
                ssl_context: ssl.SSLContext,
                server_hostname: str | None = None,
                timeout: float | None = None,
            ) -> httpcore.AsyncNetworkStream:
                recorder.server_names.append(server_hostname)
                raise httpcore.ConnectError("handshake refused by the test")

        return Stream([])


def test_tls_keeps_the_hostname_for_sni_while_connecting_to_the_ip() -> None:
    backend = _TLSRecorder()
    policy = FetchPolicy(
        allowed_networks=("127.0.0.1/32",), resolver=FakeResolver({"shop.test": [["127.0.0.1"]]})
    )

    async def go() -> Any:
        async with Fetcher(policy, connect_backend=backend) as f:
            return await f.fetch_page("https://shop.test/")

    assert error_of(go()).code == "unreachable"
    assert backend.connects == ["127.0.0.1"] and backend.server_names == ["shop.test"]


# --- the guard's rules, as pure functions --------------------------------------------------------

BLOCKED = [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "224.0.0.1", "239.255.255.250", "255.255.255.255", "240.0.0.1", "192.0.2.1", "198.18.0.1",
    "::1", "::", "fe80::1", "fec0::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1",
    "::ffff:10.0.0.1", "64:ff9b::a00:1", "64:ff9b::7f00:1", "64:ff9b:1::1", "2002:7f00:1::1",
    "2002:a00:1::1", "::127.0.0.1", "2001::1", "100::1",
]  # fmt: skip
ALLOWED = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("ip", BLOCKED)
def test_guard_blocks(ip: str) -> None:
    assert not AddressGuard().allows(ipaddress.ip_address(ip))


@pytest.mark.parametrize("ip", ALLOWED)
def test_guard_allows_public(ip: str) -> None:  # judged only; nothing is contacted
    assert AddressGuard().allows(ipaddress.ip_address(ip))


def test_allow_list_opens_only_its_networks() -> None:
    g = AddressGuard(["127.0.0.0/8", "fd00::/8"])
    assert g.allows(ipaddress.ip_address("127.5.5.5")) and g.allows(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert g.allows(ipaddress.ip_address("fd00::1")) and not g.allows(ipaddress.ip_address("10.0.0.1"))


@pytest.mark.parametrize(
    ("host", "ip"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("[::1]", "::1"),
        ("017700000001", "127.0.0.1"),
    ],
)
def test_numeric_hosts_are_read_like_the_os(host: str, ip: str) -> None:
    assert parse_ip_literal(host) == ipaddress.ip_address(ip)


@pytest.mark.parametrize("host", ["example.test", "deadbeef.test", "1.2.3.4 x", "0x", "face"])
def test_names_are_not_numeric(host: str) -> None:
    assert parse_ip_literal(host) is None


def test_check_url_refuses_numeric_forbidden_hosts_without_dns() -> None:
    for url in ("http://2130706433/", "http://[::ffff:7f00:1]/", "http://0/"):
        with pytest.raises(Exception) as info:
            check_url(url, AddressGuard())
        assert getattr(info.value, "code", None) == "blocked_address"


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_embedded_ipv4_is_judged_as_the_ipv4(n: int) -> None:
    g = AddressGuard()
    v4 = ipaddress.IPv4Address(n)
    mapped = ipaddress.IPv6Address((0xFFFF << 32) | n)
    nat64 = ipaddress.IPv6Address((0x64FF9B << 96) | n)
    assert g.allows(mapped) == g.allows(v4)
    if not g.allows(v4):
        assert not g.allows(nat64)
