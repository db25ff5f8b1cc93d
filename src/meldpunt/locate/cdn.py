"""CDN recognition: the list in ``cdn.json`` (shipped in the package) -> "this address is
Cloudflare's". A CDN's address says nothing about where the content really is: the notice goes to
the CDN asking it to name the origin host (routing does that), so the item page says so plainly."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from meldpunt.locate.nets import Address, Network, NetworkSet


@dataclass(frozen=True)
class Cdn:
    name: str
    asns: frozenset[int]
    names: tuple[str, ...]
    exclude: tuple[str, ...]
    networks: tuple[Network, ...]


@dataclass(frozen=True)
class CdnList:
    as_of: str
    cdns: tuple[Cdn, ...]

    def __post_init__(self) -> None:
        nets = NetworkSet((net, cdn.name) for cdn in self.cdns for net in cdn.networks)
        object.__setattr__(self, "_nets", nets)

    def match(self, ip: str | Address, asn: int | None = None, asn_name: str = "") -> tuple[str, str]:
        """(the CDN's name, how it was recognised: "network 104.16.0.0/13", "AS13335", "AS owner
        'CLOUDFLARENET'"), or ("", "")."""
        addr: Address | None
        try:
            addr = ip if not isinstance(ip, str) else ipaddress.ip_address(ip) if ip else None
        except ValueError:
            addr = None
        if addr is not None:
            found = self._nets.lookup(addr)  # type: ignore[attr-defined]
            if found is not None:
                return str(found[1]), f"network {found[0]}"
        owner = asn_name.lower()
        for cdn in self.cdns:
            if asn is not None and asn in cdn.asns:
                return cdn.name, f"AS{asn}"
            if owner and any(n in owner for n in cdn.names) and not any(x in owner for x in cdn.exclude):
                return cdn.name, f"AS owner {asn_name!r}"
        return "", ""


def parse(doc: Any) -> CdnList:
    cdns = []
    for c in doc.get("cdns", []):
        cdns.append(
            Cdn(
                name=str(c["name"]),
                asns=frozenset(int(a) for a in c.get("asns", [])),
                names=tuple(str(n).lower() for n in c.get("names", [])),
                exclude=tuple(str(n).lower() for n in c.get("exclude", [])),
                networks=tuple(ipaddress.ip_network(n) for n in c.get("networks", [])),
            )
        )
    return CdnList(str(doc.get("as_of", "")), tuple(cdns))


@cache
def shipped() -> CdnList:
    """The list shipped with meldpunt (``meldpunt/locate/cdn.json``)."""
    text = resources.files("meldpunt.locate").joinpath("cdn.json").read_text(encoding="utf-8")
    return parse(json.loads(text))
