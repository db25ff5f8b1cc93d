"""SSRF guard: which addresses may be contacted, the resolver hook, and a network backend that
resolves once, checks every address, and connects to the very address that was checked.

The URL handed to httpx keeps its hostname, so the ``Host`` header and TLS (SNI and certificate
verification) stay those of the hostname; only the TCP connection goes to the checked IP.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Union

import anyio
import httpcore

from meldpunt.fetch.errors import FetchError

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]  # noqa: UP007 (used at runtime)
#: host -> addresses, plain or async. Tests inject their own; the default asks the system resolver.
Resolver = Callable[[str], Union[Sequence[str], Awaitable[Sequence[str]]]]  # noqa: UP007

_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
_TEREDO = ipaddress.IPv6Network("2001::/32")
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_BLOCKED_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")

#: characters ``inet_aton`` needs for the numeric forms it accepts (decimal, octal, hex, short)
_NUMERIC_HOST = re.compile(r"^[0-9a-fA-FxX.]+$")


class BlockedAddress(FetchError):
    """The host is, or resolves to, an address the guard refuses (private, loopback, ...)."""

    def __init__(self, message: str, url: str = "") -> None:
        super().__init__("blocked_address", message, url)


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host names *without* DNS, read as the OS reads it: IPv6 literals (brackets
    optional) and every IPv4 form ``inet_aton`` accepts (``2130706433``, ``0177.0.0.1``,
    ``0x7f.1``, ``127.1``). ``None`` for a hostname."""
    h = host.strip()
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    h = h.split("%", 1)[0]  # zone id: fe80::1%eth0
    try:
        return ipaddress.ip_address(h)
    except ValueError:
        pass
    h4 = h[:-1] if h.endswith(".") else h
    if h4 and _NUMERIC_HOST.match(h4) and any(c.isdigit() for c in h4):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(h4))
        except OSError:
            return None
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip in _IPV4_MAPPED:
        return ip.ipv4_mapped
    if ip in _NAT64_WELL_KNOWN or ip in _IPV4_TRANSLATED:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _SIX_TO_FOUR:
        return ip.sixtofour
    return None


def canonical(ip: IPAddress) -> IPAddress:
    """IPv4-mapped IPv6 (``::ffff:a.b.c.d``) is the IPv4 address inside; others unchanged."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _is_public(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:  # ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4: judged as the IPv4 inside
            return _is_public(inner)
        if ip.is_site_local or ip in _NAT64_LOCAL or ip in _TEREDO or ip in _IPV4_COMPATIBLE:
            return False
    elif ip in _CGNAT or ip == ipaddress.IPv4Address("255.255.255.255"):
        return False
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


class AddressGuard:
    """Decides whether an address may be contacted: public addresses yes, everything else
    (private, loopback, link-local, multicast, reserved, unspecified, CGNAT, site-local, unique-local,
    and IPv6 forms embedding such an IPv4) no, except networks in ``allowed_networks``."""

    def __init__(self, allowed_networks: Iterable[str] = ()) -> None:
        self.allowed = [ipaddress.ip_network(n, strict=False) for n in allowed_networks]

    def allows(self, ip: IPAddress) -> bool:
        ip = canonical(ip)
        if any(ip.version == n.version and ip in n for n in self.allowed):
            return True
        return _is_public(ip)

    def check(self, ip: IPAddress, host: str = "") -> IPAddress:
        """The canonical address if allowed, else :class:`BlockedAddress`."""
        if not self.allows(ip):
            shown = f"{host} -> {ip}" if host and host != str(ip) else str(ip)
            raise BlockedAddress(f"address not allowed: {shown}")
        return canonical(ip)


async def system_resolver(host: str) -> list[str]:
    """Every address the OS resolver gives for ``host`` (IPv4 and IPv6, TCP)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def resolve(resolver: Resolver, host: str) -> list[str]:
    answer = resolver(host)
    if inspect.isawaitable(answer):
        answer = await answer
    return list(answer)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that, for each new connection, resolves the host once (numeric
    hosts without DNS), refuses the connection unless *every* address is allowed, then connects
    ``inner`` to a checked IP — never to the hostname, so no second lookup can differ."""

    def __init__(
        self,
        guard: AddressGuard,
        resolver: Resolver | None = None,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.guard = guard
        self.resolver: Resolver = resolver or system_resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def addresses(self, host: str) -> list[IPAddress]:
        """The checked addresses to try for ``host``, or :class:`BlockedAddress` / unreachable."""
        literal = parse_ip_literal(host)
        if literal is not None:
            return [self.guard.check(literal, host)]
        name = host.rstrip(".").lower()
        if name in _BLOCKED_NAMES or name.endswith(".localhost"):
            raise BlockedAddress(f"host not allowed: {host}")
        try:
            raw = await resolve(self.resolver, host)
        except (OSError, UnicodeError) as exc:
            raise FetchError("unreachable", f"cannot resolve {host}: {exc}") from None
        if not raw:
            raise FetchError("unreachable", f"cannot resolve {host}: no addresses")
        checked: list[IPAddress] = []
        for text in raw:
            ip = parse_ip_literal(text)
            if ip is None:
                raise BlockedAddress(f"resolver gave a non-address for {host}: {text!r}")
            checked.append(self.guard.check(ip, host))  # one bad answer refuses them all
        return list(dict.fromkeys(checked))

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        with anyio.fail_after(timeout):
            ips = await self.addresses(host)
        last: Exception | None = None
        for ip in ips:
            try:
                return await self.inner.connect_tcp(
                    str(ip), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress("unix sockets are never used by the fetcher")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
