"""RDAP (the registries' WHOIS successor) over httpx: who holds a network and where its abuse desk
is; which registrar a domain is with and theirs.

IANA's bootstrap files (``ipv4.json``, ``ipv6.json``, ``dns.json`` under
``locate.rdap_bootstrap_url``) say which registry serves an address or a TLD; the registry's answer
is parsed into a few plain facts. Everything from outside is read on a budget: at most
:data:`MAX_BYTES` per answer (bootstraps :data:`MAX_BOOTSTRAP_BYTES`), nesting at most
:data:`MAX_DEPTH`, one ``rdap_timeout_s`` for the whole request — redirects, headers and body —
however the registry spaces its bytes (:mod:`meldpunt.locate.deadline`); compressed answers are
decoded on the same byte budget. Whatever goes wrong (timeout, refused, HTTP error, not JSON, too
big, too deep) is an :class:`RdapError` whose message becomes the fact's "unknown because";
nothing here raises anything else for bad answers.

Answers are cached through :class:`RdapCache`, a protocol the caller implements (the act room keeps
them in the ``rdap_cache`` table); errors are kept for :data:`ERROR_TTL` so a registry that is down
(or no network at all) costs one quick failure per hour, not one per item.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from meldpunt.domain.jsonlimits import JsonTooDeep, check_depth
from meldpunt.locate.deadline import transport as deadline_transport
from meldpunt.locate.deadline import within

MAX_BYTES = 1024 * 1024
MAX_BOOTSTRAP_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 32
#: an entity inside an entity inside ...: registries nest two or three levels
MAX_ENTITY_DEPTH = 4
ERROR_TTL = timedelta(hours=1)
#: special-use names (RFC 6761 and friends): no registry has them
SPECIAL_TLDS = frozenset(
    {"test", "example", "invalid", "localhost", "local", "onion", "internal", "alt", "lan"}
)


class RdapError(Exception):
    """An RDAP look-up that gave no usable answer; the message says why, for the item page."""


@dataclass(frozen=True)
class Cached:
    fetched_at: datetime
    ok: bool
    data: dict[str, Any]


class RdapCache(Protocol):
    """Where answers are kept between look-ups: by (kind, key), kind ``ip``, ``domain`` or
    ``bootstrap``. ``get`` returns what was stored, however old; the caller judges its age."""

    def get(self, kind: str, key: str) -> Cached | None: ...

    def put(self, kind: str, key: str, entry: Cached) -> None: ...


class MemoryCache:
    """An :class:`RdapCache` in memory (the CLI's quick look-up, tests)."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], Cached] = {}
        self._lock = threading.Lock()

    def get(self, kind: str, key: str) -> Cached | None:
        with self._lock:
            return self._data.get((kind, key))

    def put(self, kind: str, key: str, entry: Cached) -> None:
        with self._lock:
            self._data[(kind, key)] = entry


# --- reading outside JSON on a budget ------------------------------------------------------------

#: what we accept: registries' web servers compress when asked (httpx asks by default, and would
#: ask for br/zstd too where those packages are installed); we decode it ourselves, on the budget
ACCEPT_ENCODING = "gzip, deflate"


def _decoder(host: str, encoding: str) -> Callable[[bytes, int], bytes]:
    """A function (raw chunk, bytes still allowed) -> decoded bytes, never more than allowed
    (so a small compressed answer cannot grow past the budget in memory: a "zip bomb")."""
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip().lower() not in ("", "identity")]
    if not codings:
        return lambda chunk, allowed: chunk
    if codings not in (["gzip"], ["x-gzip"], ["deflate"]):
        raise RdapError(f"{host}: answer in an encoding not asked for ({encoding[:40]})")
    # gzip or zlib-wrapped deflate, told apart by the header; a raw deflate stream (an old
    # server's "deflate") is tried when the zlib header is not there
    state: dict[str, Any] = {"z": None, "head": b""}

    def decode(chunk: bytes, allowed: int) -> bytes:
        if state["z"] is None:
            state["head"] += chunk
            if len(state["head"]) < 2:
                return b""
            head, state["head"] = state["head"], b""
            zlib_or_gzip = head[:2] == b"\x1f\x8b" or (
                head[0] & 0x0F == 8 and int.from_bytes(head[:2]) % 31 == 0
            )
            state["z"] = zlib.decompressobj(zlib.MAX_WBITS | 32 if zlib_or_gzip else -zlib.MAX_WBITS)
            chunk = head
        try:
            return bytes(state["z"].decompress(chunk, max(1, allowed)))
        except zlib.error:
            raise RdapError(f"{host}: compressed answer is damaged") from None

    return decode


def get_json(
    client: httpx.Client,
    url: str,
    *,
    timeout_s: float,
    max_bytes: int = MAX_BYTES,
    seen: list[str] | None = None,
) -> Any:
    """GET ``url`` and parse its JSON, within ``timeout_s`` overall, ``max_bytes`` and :data:`MAX_DEPTH`.
    ``seen`` gets the URL that answered (registries redirect to each other)."""
    deadline = time.monotonic() + timeout_s
    host = urlsplit(url).hostname or url
    try:
        accept = {"Accept": "application/rdap+json, application/json", "Accept-Encoding": ACCEPT_ENCODING}
        with within(timeout_s), client.stream("GET", url, headers=accept) as r:
            if r.status_code == 404:
                raise RdapError(f"{host}: not found (HTTP 404)")
            if r.status_code >= 400:
                raise RdapError(f"{host}: HTTP {r.status_code}")
            declared = r.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise RdapError(f"{host}: answer too large ({declared} bytes, at most {max_bytes})")
            if seen is not None:
                seen.append(str(r.url))
            decoder = _decoder(host, r.headers.get("Content-Encoding", ""))
            body = bytearray()
            for chunk in r.iter_raw():
                body += decoder(chunk, max_bytes + 1 - len(body))
                if len(body) > max_bytes:
                    raise RdapError(f"{host}: answer too large (more than {max_bytes} bytes)")
                if time.monotonic() > deadline:
                    raise RdapError(f"{host}: no complete answer within {timeout_s:g} s")
    except httpx.TimeoutException:
        raise RdapError(f"{host}: no answer within {timeout_s:g} s") from None
    except httpx.HTTPError as e:
        raise RdapError(f"{host}: {type(e).__name__}: {e}"[:300]) from None
    try:
        check_depth(bytes(body), MAX_DEPTH)
        return json.loads(bytes(body))
    except JsonTooDeep:
        raise RdapError(f"{host}: answer nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError):
        raise RdapError(f"{host}: answer is not JSON") from None


# --- bootstrap: which registry serves what --------------------------------------------------------


def _base_url(urls: object) -> str:
    if not isinstance(urls, list):
        return ""
    texts = [u for u in urls if isinstance(u, str) and u.startswith(("https://", "http://"))]
    https = [u for u in texts if u.startswith("https://")]
    chosen = (https or texts or [""])[0]
    return chosen if not chosen or chosen.endswith("/") else chosen + "/"


def parse_bootstrap(doc: Any) -> list[tuple[list[str], str]]:
    """``[(entries, base URL)]`` from an IANA bootstrap document (RFC 9224); malformed parts skipped."""
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), list):
        raise RdapError("bootstrap file has no 'services' list")
    out: list[tuple[list[str], str]] = []
    for service in doc["services"]:
        if not isinstance(service, list) or len(service) < 2 or not isinstance(service[0], list):
            continue
        base = _base_url(service[1])
        if base:
            out.append(([str(e).lower() for e in service[0] if isinstance(e, str)], base))
    return out


def registry_for_ip(services: list[tuple[list[str], str]], ip: str) -> str:
    """The base URL of the registry for ``ip`` (the longest matching prefix), or ""."""
    addr = ipaddress.ip_address(ip)
    best, best_len = "", -1
    for entries, base in services:
        for entry in entries:
            try:
                net = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                continue
            if net.version == addr.version and addr in net and net.prefixlen > best_len:
                best, best_len = base, net.prefixlen
    return best


def registry_for_domain(services: list[tuple[list[str], str]], name: str) -> str:
    """The base URL of the registry for the TLD of ``name``, or ""."""
    labels = name.lower().rstrip(".").split(".")
    for n in range(len(labels)):  # the longest suffix listed wins (the file lists TLDs today)
        suffix = ".".join(labels[n:])
        for entries, base in services:
            if suffix in entries:
                return base
    return ""


# --- parsing the registry's answer --------------------------------------------------------------


def _vcard(entity: dict[str, Any]) -> dict[str, str]:
    """fn, org and email from an entity's jCard (RFC 7095), first of each."""
    out: dict[str, str] = {}
    card = entity.get("vcardArray")
    if not (isinstance(card, list) and len(card) == 2 and isinstance(card[1], list)):
        return out
    for prop in card[1]:
        if not (isinstance(prop, list) and len(prop) >= 4 and isinstance(prop[0], str)):
            continue
        name, value = prop[0].lower(), prop[3]
        if isinstance(value, list):
            value = " ".join(str(v) for v in value if isinstance(v, str | int) and str(v))
        if name in ("fn", "org", "email") and name not in out and isinstance(value, str) and value.strip():
            out[name] = value.strip()[:300]
    return out


def _entities(obj: dict[str, Any], depth: int = 0) -> list[tuple[set[str], dict[str, Any]]]:
    """Every entity in ``obj`` (nested ones too, up to :data:`MAX_ENTITY_DEPTH`) with its roles."""
    found: list[tuple[set[str], dict[str, Any]]] = []
    if depth >= MAX_ENTITY_DEPTH:
        return found
    for ent in obj.get("entities") or []:
        if not isinstance(ent, dict):
            continue
        roles = {str(r).lower() for r in ent.get("roles") or [] if isinstance(r, str)}
        found.append((roles, ent))
        found.extend(_entities(ent, depth + 1))
    return found


def _abuse_email(obj: dict[str, Any]) -> str:
    for roles, ent in _entities(obj):
        if "abuse" in roles:
            email = _vcard(ent).get("email", "")
            if email:
                return email
    return ""


def _cidr(obj: dict[str, Any]) -> str:
    for c in obj.get("cidr0_cidrs") or []:
        if isinstance(c, dict) and isinstance(c.get("length"), int):
            prefix = c.get("v4prefix") or c.get("v6prefix")
            if isinstance(prefix, str):
                return f"{prefix}/{c['length']}"
    start, end = obj.get("startAddress"), obj.get("endAddress")
    if isinstance(start, str) and isinstance(end, str):
        try:
            nets = list(
                ipaddress.summarize_address_range(ipaddress.ip_address(start), ipaddress.ip_address(end))  # type: ignore[arg-type]
            )
        except (ValueError, TypeError):
            return ""
        return str(nets[0]) if len(nets) == 1 else f"{start} - {end}"
    return ""


def parse_network(doc: Any) -> dict[str, Any]:
    """An IP network object -> name, handle, cidr, country, holder (the registrant) and abuse email."""
    if not isinstance(doc, dict) or doc.get("objectClassName") not in ("ip network", None):
        raise RdapError("answer is not an IP network object")
    holder = ""
    for roles, ent in _entities(doc):
        if "registrant" in roles:
            card = _vcard(ent)
            holder = card.get("org") or card.get("fn", "")
            if holder:
                break
    return {
        "name": str(doc.get("name") or "")[:200],
        "handle": str(doc.get("handle") or "")[:200],
        "cidr": _cidr(doc),
        "country": str(doc.get("country") or "")[:2].upper(),
        "holder": holder,
        "abuse_email": _abuse_email(doc),
    }


def parse_domain(doc: Any) -> dict[str, Any]:
    """A domain object -> its name, the registrar and the registrar's abuse e-mail."""
    if not isinstance(doc, dict) or doc.get("objectClassName") not in ("domain", None):
        raise RdapError("answer is not a domain object")
    registrar, abuse = "", ""
    for roles, ent in _entities(doc):
        if "registrar" in roles:
            card = _vcard(ent)
            registrar = card.get("fn") or card.get("org", "")
            abuse = _abuse_email(ent)
            break
    return {
        "name": str(doc.get("ldhName") or doc.get("unicodeName") or "")[:255].lower(),
        "registrar": registrar,
        "registrar_abuse": abuse,
    }


# --- the client -----------------------------------------------------------------------------------


def registry_name(base_url: str) -> str:
    """``rdap.db.ripe.net`` -> ``ripe.net``: the registry as the item page names it."""
    host = urlsplit(base_url).hostname or base_url
    if host.replace(".", "").isdigit() or ":" in host:
        return host
    parts = host.split(".")
    return ".".join(parts[-2:]) if len(parts) > 2 else host


class RdapClient:
    """Looks up networks and domains: bootstrap, then the registry; answers cached in ``cache``
    (``cache_days`` for answers, :data:`ERROR_TTL` for errors)."""

    def __init__(
        self,
        bootstrap_url: str,
        *,
        timeout_s: float,
        cache_days: int,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.bootstrap_url = bootstrap_url if bootstrap_url.endswith("/") else bootstrap_url + "/"
        self.timeout_s = timeout_s
        self.ttl = timedelta(days=cache_days)
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=True,
            max_redirects=3,
            transport=transport or deadline_transport(),
            headers={"User-Agent": "meldpunt-locate (RDAP)"},
        )
        self._bootstraps: dict[str, tuple[datetime, list[tuple[list[str], str]]]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    def _fresh(self, entry: Cached | None, now: datetime) -> bool:
        if entry is None:
            return False
        return now - entry.fetched_at < (self.ttl if entry.ok else ERROR_TTL)

    def _cached(self, cache: RdapCache, kind: str, key: str, now: datetime, ask: Any) -> Cached:
        entry = cache.get(kind, key)
        if entry is not None and self._fresh(entry, now):
            return entry
        try:
            entry = Cached(now, True, ask())
        except RdapError as e:
            entry = Cached(now, False, {"error": str(e)[:500]})
        cache.put(kind, key, entry)
        return entry

    def bootstrap(self, kind: str, cache: RdapCache, now: datetime) -> list[tuple[list[str], str]]:
        """The parsed bootstrap ``kind`` (ipv4, ipv6, dns); kept in memory and in ``cache``."""
        with self._lock:
            held = self._bootstraps.get(kind)
        if held is not None and now - held[0] < self.ttl:
            return held[1]
        entry = self._cached(
            cache,
            "bootstrap",
            kind,
            now,
            lambda: get_json(
                self._client,
                f"{self.bootstrap_url}{kind}.json",
                timeout_s=self.timeout_s,
                max_bytes=MAX_BOOTSTRAP_BYTES,
            ),
        )
        if not entry.ok:
            raise RdapError(f"bootstrap: {entry.data.get('error', 'unavailable')}")
        services = parse_bootstrap(entry.data)
        with self._lock:
            self._bootstraps[kind] = (entry.fetched_at, services)
        return services

    def network(self, ip: str, cache: RdapCache, now: datetime) -> tuple[Cached, str]:
        """The network holding ``ip``: (answer, registry name). Raises :class:`RdapError`."""
        addr = ipaddress.ip_address(ip)
        services = self.bootstrap(f"ipv{addr.version}", cache, now)
        base = registry_for_ip(services, ip)
        if not base:
            raise RdapError(f"no registry in the bootstrap for {ip}")

        def ask() -> dict[str, Any]:
            seen: list[str] = []
            doc = get_json(self._client, f"{base}ip/{addr}", timeout_s=self.timeout_s, seen=seen)
            return {**parse_network(doc), "registry": registry_name(seen[-1] if seen else base)}

        entry = self._cached(cache, "ip", str(addr), now, ask)
        if not entry.ok:
            raise RdapError(str(entry.data.get("error", "no answer")))
        return entry, str(entry.data.get("registry") or registry_name(base))

    def domain(self, host: str, cache: RdapCache, now: datetime) -> tuple[Cached, str]:
        """The registered domain ``host`` is under: asked from the shortest name with two labels
        up (``example.co.uk`` after ``co.uk``), the first the registry knows. (answer, registry)."""
        labels = host.lower().rstrip(".").split(".")
        if len(labels) < 2 or labels[-1] in SPECIAL_TLDS:
            raise RdapError(f"{host}: not a registered domain name")
        services = self.bootstrap("dns", cache, now)
        base = registry_for_domain(services, host)
        if not base:
            raise RdapError(f"no registry in the bootstrap for .{labels[-1]}")
        last = ""
        for n in range(2, min(len(labels), 4) + 1):
            name = ".".join(labels[-n:])

            def ask(name: str = name) -> dict[str, Any]:
                return parse_domain(get_json(self._client, f"{base}domain/{name}", timeout_s=self.timeout_s))

            entry = self._cached(cache, "domain", name, now, ask)
            if entry.ok:
                return entry, registry_name(base)
            last = str(entry.data.get("error", "no answer"))
            if "not found" not in last:
                break
        raise RdapError(last or f"{host}: not found")
