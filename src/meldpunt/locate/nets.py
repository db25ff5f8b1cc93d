"""A set of networks an address is looked up in with one dict look-up per prefix length present
(a dozen or so), instead of testing each network: the CDN list and the special-purpose ranges."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Generic, TypeVar

V = TypeVar("V")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class NetworkSet(Generic[V]):
    def __init__(self, networks: Iterable[tuple[Network, V]]) -> None:
        self._table: dict[tuple[int, int, int], tuple[Network, V]] = {}
        for net, value in networks:
            self._table.setdefault((net.version, net.prefixlen, int(net.network_address)), (net, value))
        self._lengths = {v: sorted({k[1] for k in self._table if k[0] == v}, reverse=True) for v in (4, 6)}

    def lookup(self, addr: Address) -> tuple[Network, V] | None:
        """The most specific network holding ``addr`` and its value, or None."""
        bits, value = addr.max_prefixlen, int(addr)
        for length in self._lengths[addr.version]:
            shift = bits - length
            found = self._table.get((addr.version, length, value >> shift << shift))
            if found is not None:
                return found
        return None


#: special-purpose ranges (IANA registries): an address in one is judged by ``ipaddress`` itself
SPECIAL: NetworkSet[bool] = NetworkSet(
    (ipaddress.ip_network(n), True)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
        "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/127", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
        "2001:db8::/32", "2002::/16", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
    )
)  # fmt: skip
