"""The locator: a host and the address the fetcher connected to -> a :class:`Location`, every fact
with its source and the age of that source.

Sources, best first, each fact taken from the first that knows it:

1. DNS (every address the host resolves to; the resolver is a hook, as the fetcher's is) and the
   fetcher (the address it connected to: that is where the content came from);
2. the user's geo files in ``locate.geo_dir`` (``meldpunt geo update``), re-read when they change;
3. the data embedded in ``geoip2fast`` (country, AS owner, routed prefix; no AS number);
4. RDAP for the network's holder and abuse contact and the domain's registrar and theirs
   (``locate.rdap``), cached; a failure is a fact "unknown" with its reason, never an exception;
5. the CDN list shipped with meldpunt (``cdn.json``).

No database here: the RDAP cache is a protocol (:class:`meldpunt.locate.rdap.RdapCache`) that the
act room implements on its ``rdap_cache`` table.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Union

import httpx
import platformdirs

from meldpunt.locate import cdn as cdn_list
from meldpunt.locate.geo import GeoAnswer, GeoDataError, GeoSource, embedded, load_kept
from meldpunt.locate.nets import SPECIAL
from meldpunt.locate.rdap import SPECIAL_TLDS, MemoryCache, RdapCache, RdapClient, RdapError
from meldpunt.settings import LocateSettings, Settings

#: host -> addresses, plain or async (the same shape as ``meldpunt.fetch.Resolver``)
Resolver = Callable[[str], Union[Sequence[str], Awaitable[Sequence[str]]]]  # noqa: UP007

#: the facts a location has, in the order the item page shows them
FACT_NAMES = (
    "addresses",
    "ip",
    "prefix",
    "asn",
    "network_owner",
    "network",
    "country",
    "provider",
    "abuse_email",
    "registrar",
    "registrar_abuse",
    "cdn",
)


@dataclass
class Location:
    """Where a host was at one moment. ``facts``: ``{name: {"value", "source", "as_of"}}`` plus
    ``"unknown"`` (the reason) for a fact nobody could give. Stored ones have ``id``,
    ``item_id`` and ``located_at``."""

    host: str
    ip: str
    addresses: list[str] = field(default_factory=list)
    prefix: str = ""
    asn: int | None = None
    network_owner: str = ""
    country: str = ""
    provider: str = ""
    abuse_email: str = ""
    registrar: str = ""
    registrar_abuse: str = ""
    cdn: str = ""
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str = ""
    id: int | None = None
    item_id: int | None = None
    located_at: datetime | None = None

    def fact(self, name: str) -> dict[str, Any]:
        return self.facts.get(name, {})

    def set(self, name: str, value: Any, source: str, as_of: str, **more: Any) -> None:
        """Record a fact (and its column where it has one)."""
        self.facts[name] = {"value": value, "source": source, "as_of": as_of, **more}
        if name in _COLUMNS:
            setattr(self, name, value)

    def unknown(self, name: str, source: str, as_of: str, reason: str) -> None:
        if name not in self.facts or self.facts[name].get("value") in (None, "", []):
            self.facts[name] = {"value": None, "source": source, "as_of": as_of, "unknown": reason}


_COLUMNS = frozenset(
    {
        "prefix",
        "asn",
        "network_owner",
        "country",
        "provider",
        "abuse_email",
        "registrar",
        "registrar_abuse",
        "cdn",
    }
)


def geo_dir(settings: Settings) -> Path:
    """Where the user's geo files are kept: ``locate.geo_dir``, else a ``geo`` folder beside the
    SQLite database, else in the user's data directory (PostgreSQL)."""
    if settings.locate.geo_dir:
        return Path(settings.locate.geo_dir).expanduser()
    db = settings.db
    if db.startswith("sqlite:///"):
        db = db.removeprefix("sqlite:///")
    if db and "://" not in db and db != ":memory:":
        return Path(db).expanduser().resolve().parent / "geo"
    return Path(platformdirs.user_data_dir("meldpunt")) / "geo"


def system_resolver(host: str) -> list[str]:
    """Every address the OS resolver gives for ``host`` (IPv4 and IPv6)."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _resolve(resolver: Resolver, host: str) -> list[str]:
    answer = resolver(host)
    if inspect.isawaitable(answer):
        coro = answer

        async def wait() -> Sequence[str]:
            return await coro

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            answer = asyncio.run(wait())
        else:  # called from inside an event loop: resolve on a thread of its own
            out: list[Sequence[str]] = []
            t = threading.Thread(target=lambda: out.append(asyncio.run(wait())))
            t.start()
            t.join()
            answer = out[0]
    return [str(a) for a in answer]  # type: ignore[union-attr]


def _ip_literal(host: str) -> str:
    if not host or not (host[0].isdigit() or host[0] in "[:" or ":" in host):
        return ""  # a name: no parsing needed
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return ""


def _not_public(ip: str) -> str:
    """Why ``ip`` is not on the public internet ("" when it is)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return f"{ip!r} is not an address"
    if SPECIAL.lookup(addr) is None:
        return ""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.is_loopback:
        return f"{ip} is a loopback address (this machine)"
    if not addr.is_global:
        return f"{ip} is a private or reserved address, not on the public internet"
    return ""


_NO_ANSWER = GeoAnswer()


class Locator:
    """Locates hosts. One per process (thread-safe); the geo data loads on first use."""

    def __init__(
        self,
        settings: LocateSettings,
        *,
        geo_dir: Path | None = None,
        resolver: Resolver | None = None,
        rdap_transport: httpx.BaseTransport | None = None,
        use_embedded: bool = True,
    ) -> None:
        self.settings = settings
        self.geo_dir = geo_dir
        self.resolver: Resolver = resolver or system_resolver
        self.use_embedded = use_embedded
        self.rdap = RdapClient(
            settings.rdap_bootstrap_url,
            timeout_s=settings.rdap_timeout_s,
            cache_days=settings.rdap_cache_days,
            transport=rdap_transport,
        )
        self._kept: tuple[tuple[tuple[str, float, int], ...], list[GeoSource]] = ((), [])
        self._kept_error = ""
        self._checked = -1.0
        self._lock = threading.Lock()
        self.cdns = cdn_list.shipped()

    @classmethod
    def from_settings(cls, settings: Settings, **kw: Any) -> Locator:
        return cls(settings.locate, geo_dir=geo_dir(settings), **kw)

    def close(self) -> None:
        self.rdap.close()

    # --- geo sources ----------------------------------------------------------------------------

    def user_sources(self) -> list[GeoSource]:
        """The user's geo files, re-read when one changed (``meldpunt geo update`` in another process)."""
        if self.geo_dir is None:
            return []
        now = time.monotonic()
        if now - self._checked < 1.0:
            return self._kept[1]
        self._checked = now
        signature = []
        for p in sorted(self.geo_dir.glob("*")) if self.geo_dir.is_dir() else []:
            st = p.stat()
            signature.append((p.name, st.st_mtime, st.st_size))
        key = tuple(signature)
        with self._lock:
            if key == self._kept[0]:
                return self._kept[1]
            try:
                sources = load_kept(self.geo_dir)
                self._kept_error = ""
            except GeoDataError as e:  # refused at `geo update`; changed on disk since
                sources, self._kept_error = [], str(e)
            self._kept = (key, sources)
            return sources

    def sources(self) -> list[GeoSource]:
        """Every geo source in use, best first (the user's, then the embedded)."""
        found = list(self.user_sources())
        if self.use_embedded:
            found.append(embedded())
        return found

    def geo(self, ip: str) -> dict[str, tuple[Any, GeoSource]]:
        """For each of country, asn, asn_name and prefix: (value, the source that gave it)."""
        out: dict[str, tuple[Any, GeoSource]] = {}
        sources = self.sources()
        answers = [(source, source.lookup(ip) or _NO_ANSWER) for source in sources]
        # a country database is asked first for the country; ASN sources first for the rest
        by_country = sorted(answers, key=lambda a: a[0].kind != "country")
        for name in ("country", "asn", "asn_name", "prefix"):
            for source, answer in by_country if name == "country" else answers:
                value = getattr(answer, name)
                if value is not None and value != "":
                    out[name] = (value, source)
                    break
        return out

    # --- locating --------------------------------------------------------------------------------

    def locate(
        self,
        host: str,
        connected_ip: str = "",
        *,
        now: datetime,
        cache: RdapCache | None = None,
    ) -> Location:
        """Every fact about ``host`` (and the address the fetcher connected to) that can be had."""
        stamp = now.isoformat(timespec="seconds")
        host = (host or "").lower().rstrip(".")
        errors: list[str] = []
        literal = _ip_literal(host)
        addresses: list[str] = []
        if literal:
            addresses = [literal]
        elif host:
            try:
                addresses = _resolve(self.resolver, host)
            except (OSError, UnicodeError, ValueError) as e:
                errors.append(f"dns: {e}")
        ip = _ip_literal(connected_ip) or (addresses[0] if addresses else "")
        loc = Location(host=host, ip=ip, addresses=addresses)
        if addresses:
            loc.set("addresses", addresses, "address" if literal else "dns", stamp)
        else:
            loc.unknown("addresses", "dns", stamp, errors[-1] if errors else "no host")
        if ip:
            loc.set("ip", ip, "fetcher" if connected_ip else ("address" if literal else "dns"), stamp)
        else:
            loc.unknown("ip", "fetcher", stamp, "no address: the host did not resolve")
        cache = cache if cache is not None else MemoryCache()
        offline = _not_public(ip) if ip else "no address"
        if offline:
            for name in ("prefix", "asn", "network_owner", "country", "provider", "abuse_email"):
                loc.unknown(name, "geo", stamp, offline)
        else:
            self._geo_facts(loc, ip, stamp)
            if self.settings.rdap:
                errors.extend(self._network_facts(loc, ip, now, cache))
        if self.settings.rdap and host and not literal:
            errors.extend(self._domain_facts(loc, host, now, cache))
        elif host and not literal:
            loc.unknown("registrar", "rdap", stamp, "RDAP is off (locate.rdap)")
            loc.unknown("registrar_abuse", "rdap", stamp, "RDAP is off (locate.rdap)")
        self._cdn_fact(loc, stamp)
        if not loc.provider and loc.network_owner and not offline:
            src = loc.fact("network_owner")
            loc.set("provider", loc.network_owner, src.get("source", ""), src.get("as_of", ""))
        loc.error = "; ".join(errors)[:2000]
        return loc

    def _geo_facts(self, loc: Location, ip: str, stamp: str) -> None:
        found = self.geo(ip)
        for name, column in (
            ("country", "country"),
            ("asn", "asn"),
            ("asn_name", "network_owner"),
            ("prefix", "prefix"),
        ):
            if name in found:
                value, source = found[name]
                loc.set(column, value, source.name, source.as_of)
        if len(found) == 4:
            return
        missing = f"not in the geo data ({', '.join(s.name for s in self.sources())})"
        loc.unknown("country", "geo", stamp, missing)
        loc.unknown("prefix", "geo", stamp, missing)
        if "asn" not in found:
            reason = (
                "the embedded data (geoip2fast) names the AS owner but not its number: "
                "give an ASN database or table (meldpunt geo update)"
                if "asn_name" in found
                else missing
            )
            loc.unknown("asn", "geo", stamp, reason)
        loc.unknown("network_owner", "geo", stamp, missing)

    def _network_facts(self, loc: Location, ip: str, now: datetime, cache: RdapCache) -> list[str]:
        stamp = now.isoformat(timespec="seconds")
        try:
            entry, registry = self.rdap.network(ip, cache, now)
        except RdapError as e:
            for name in ("abuse_email", "network", "provider"):
                loc.unknown(name, "rdap", stamp, str(e))
            return [f"rdap network: {e}"]
        data, source = entry.data, f"rdap {registry}"
        as_of = entry.fetched_at.isoformat(timespec="seconds")
        net = {k: data.get(k, "") for k in ("name", "handle", "cidr")}
        if any(net.values()):
            loc.set("network", net, source, as_of)
        if data.get("holder"):
            loc.set("provider", data["holder"], source, as_of)
            if not loc.network_owner:
                loc.set("network_owner", data["holder"], source, as_of)
        if data.get("abuse_email"):
            loc.set("abuse_email", data["abuse_email"], source, as_of)
        else:
            loc.unknown("abuse_email", source, as_of, "the registry names no abuse contact for this network")
        if not loc.country and data.get("country"):
            loc.set("country", data["country"], source, as_of)
        if not loc.prefix and data.get("cidr") and "/" in str(data["cidr"]):
            loc.set("prefix", data["cidr"], source, as_of)
        return []

    def _domain_facts(self, loc: Location, host: str, now: datetime, cache: RdapCache) -> list[str]:
        stamp = now.isoformat(timespec="seconds")
        if host.rsplit(".", 1)[-1] in SPECIAL_TLDS or "." not in host:
            reason = f"{host} is not a registered domain name"
            loc.unknown("registrar", "rdap", stamp, reason)
            loc.unknown("registrar_abuse", "rdap", stamp, reason)
            return []
        try:
            entry, registry = self.rdap.domain(host, cache, now)
        except RdapError as e:
            loc.unknown("registrar", "rdap", stamp, str(e))
            loc.unknown("registrar_abuse", "rdap", stamp, str(e))
            return [f"rdap domain: {e}"]
        source, as_of = f"rdap {registry}", entry.fetched_at.isoformat(timespec="seconds")
        for name in ("registrar", "registrar_abuse"):
            if entry.data.get(name):
                loc.set(name, entry.data[name], source, as_of, domain=entry.data.get("name", ""))
            else:
                loc.unknown(name, source, as_of, "the registry does not say")
        return []

    def _cdn_fact(self, loc: Location, stamp: str) -> None:
        if not loc.ip:
            return
        name, how = self.cdns.match(loc.ip, loc.asn, loc.network_owner)
        if name:
            loc.set("cdn", name, "cdn list", self.cdns.as_of, matched=how)


def describe_sources(locator: Locator) -> list[dict[str, str]]:
    """The geo data in use, best first, and where RDAP is asked: for ``meldpunt geo show``."""
    rows = [{"kind": s.kind, "name": s.name, "as_of": s.as_of, "path": s.path} for s in locator.sources()]
    if locator._kept_error:
        rows.append({"kind": "error", "name": locator._kept_error, "as_of": "", "path": str(locator.geo_dir)})
    rows.append(
        {
            "kind": "rdap",
            "name": "on" if locator.settings.rdap else "off",
            "as_of": f"cached {locator.settings.rdap_cache_days} days",
            "path": locator.settings.rdap_bootstrap_url,
        }
    )
    rows.append(
        {
            "kind": "cdn",
            "name": f"{len(locator.cdns.cdns)} CDNs",
            "as_of": locator.cdns.as_of,
            "path": "cdn.json",
        }
    )
    return rows
