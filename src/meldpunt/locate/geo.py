"""Geo data: an address -> country, ASN, AS owner and routed prefix, from the data shipped inside
``geoip2fast`` (works offline, out of the box) or the user's own files, which win over it.

Three kinds of source, each answering what it knows and saying where that came from and how old:

- :class:`EmbeddedGeo`: geoip2fast's country+ASN file (IPv4 and IPv6, from MaxMind GeoLite2). Its
  ASN part gives the AS owner's name and the routed prefix but *not* the AS number.
- :class:`MmdbGeo`: a MaxMind or DB-IP ``.mmdb`` (country, city or ASN database, told apart by the
  ``database_type`` in its metadata), read with ``maxminddb``.
- :class:`AsnTable`: an IP-to-ASN table in iptoasn.com's TSV shape (``range_start range_end
  AS_number country_code AS_description``, plain or gzip), looked up by bisection.

:func:`inspect_file` validates a file the user hands over (``meldpunt geo update``) and says what it
is; a malformed or empty file is a :class:`GeoDataError` with a sentence a person can act on.
"""

from __future__ import annotations

import bisect
import gzip
import ipaddress
import re
import threading
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

#: the file geoip2fast ships with country and ASN data for IPv4 and IPv6
EMBEDDED_FILE = "geoip2fast-asn-ipv6.dat.gz"
EMBEDDED_NAME = "geoip2fast"
_COUNTRY = re.compile(r"^[A-Z]{2}$")


class GeoDataError(ValueError):
    """A geo data file that cannot be used (unreadable, malformed, empty, of an unknown kind)."""


@dataclass(frozen=True)
class GeoAnswer:
    """What one source knows about one address ("" / None: it does not say)."""

    country: str = ""
    asn: int | None = None
    asn_name: str = ""
    prefix: str = ""


class GeoSource(Protocol):
    #: a short name for the item page: "geoip2fast", "GeoLite2-ASN", "iptoasn table"
    name: str
    #: the date of the data (ISO), as the file says it or as it was given
    as_of: str
    #: "country", "asn" or "country+asn"
    kind: str
    path: str

    def lookup(self, ip: str) -> GeoAnswer | None: ...


def _country(code: object) -> str:
    c = str(code or "").upper()
    return c if _COUNTRY.match(c) else ""


# --- embedded: geoip2fast -------------------------------------------------------------------------


class EmbeddedGeo:
    """geoip2fast's country+ASN data, loaded once per process on first use (about 1.5 s)."""

    kind = "country+asn"

    def __init__(self) -> None:
        from geoip2fast import GeoIP2Fast

        self._db = GeoIP2Fast(geoip2fast_data_file=EMBEDDED_FILE)
        info = self._db.get_database_info()
        self.path = str(info.get("database_fullpath", EMBEDDED_FILE))
        #: e.g. "MAXMIND:GeoLite2-CountryASN-IPv4IPv6-en-20240618"
        self.source_info = str(info.get("source_info", ""))
        found = re.search(r"(\d{4})(\d{2})(\d{2})", self.source_info)
        self.as_of = f"{found[1]}-{found[2]}-{found[3]}" if found else ""
        self.name = EMBEDDED_NAME

    def lookup(self, ip: str) -> GeoAnswer | None:
        try:
            r = self._db.lookup(ip)
        except Exception:  # geoip2fast reports bad input in-band; anything else is "no answer"
            return None
        if getattr(r, "is_private", False):
            return None
        return GeoAnswer(
            country=_country(getattr(r, "country_code", "")),
            asn_name=str(getattr(r, "asn_name", "") or ""),
            prefix=str(getattr(r, "asn_cidr", "") or ""),
        )


_embedded: EmbeddedGeo | None = None
_embedded_lock = threading.Lock()


def embedded() -> EmbeddedGeo:
    """The process's one :class:`EmbeddedGeo` (loaded once, shared by every thread)."""
    global _embedded
    with _embedded_lock:
        if _embedded is None:
            _embedded = EmbeddedGeo()
        return _embedded


# --- the user's .mmdb files -----------------------------------------------------------------------


def _mmdb_kind(database_type: str) -> str:
    t = database_type.lower()
    if "asn" in t:
        return "asn"
    if "country" in t or "city" in t:
        return "country"
    return ""


class MmdbGeo:
    """A MaxMind/DB-IP ``.mmdb`` database: country (or city) or ASN."""

    def __init__(self, path: str | Path) -> None:
        import maxminddb

        self.path = str(path)
        try:
            self._db = maxminddb.open_database(self.path)
            meta = self._db.metadata()
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as e:
            raise GeoDataError(f"{Path(path).name}: not a readable .mmdb database ({e})") from None
        self.database_type = str(meta.database_type)
        self.kind = _mmdb_kind(self.database_type)
        if not self.kind:
            raise GeoDataError(
                f"{Path(path).name}: a {self.database_type!r} database; expected a country, city or ASN one"
            )
        self.name = self.database_type
        self.as_of = datetime.fromtimestamp(int(meta.build_epoch), UTC).date().isoformat()
        self.node_count = int(meta.node_count)

    def lookup(self, ip: str) -> GeoAnswer | None:
        try:
            record, length = self._db.get_with_prefix_len(ip)
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        prefix = str(ipaddress.ip_network(f"{ip}/{length}", strict=False)) if length else ""
        if self.kind == "asn":
            number = record.get("autonomous_system_number")
            return GeoAnswer(
                asn=int(number) if isinstance(number, int) and number > 0 else None,
                asn_name=str(record.get("autonomous_system_organization") or ""),
                prefix=prefix,
            )
        code = ""
        for key in ("country", "registered_country"):
            part = record.get(key)
            if isinstance(part, dict):
                code = _country(part.get("iso_code"))
                if code:
                    break
        return GeoAnswer(country=code)

    def close(self) -> None:
        self._db.close()


# --- IP-to-ASN tables (iptoasn.com's shape) -----------------------------------------------------


class AsnTable:
    """An IP-to-ASN table: sorted ranges per address family, found by bisection. AS number 0
    ("Not routed") is no answer."""

    kind = "country+asn"

    def __init__(self, path: str | Path, *, as_of: str = "") -> None:
        self.path = str(path)
        self.name = "ip2asn table"
        p = Path(path)
        self.as_of = as_of or datetime.fromtimestamp(p.stat().st_mtime, UTC).date().isoformat()
        # per family: starts, ends, and the row each range came from
        self._starts: dict[int, list[int]] = {4: [], 6: []}
        self._ends: dict[int, list[int]] = {4: [], 6: []}
        self._rows: dict[int, list[tuple[int, str, str]]] = {4: [], 6: []}
        self.rows = 0
        rows: dict[int, list[tuple[int, int, tuple[int, str, str]]]] = {4: [], 6: []}
        try:
            opener = gzip.open if _is_gzip(p) else open
            with opener(p, "rt", encoding="utf-8", errors="replace") as f:
                for n, line in enumerate(f, 1):
                    if not line.strip() or line.startswith("#"):
                        continue
                    start, end, row = _table_row(line, n, p.name)
                    rows[start.version].append((int(start), int(end), row))
        except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            raise GeoDataError(f"{p.name}: cannot be read ({e})") from None
        for family, found in rows.items():
            found.sort()
            self._starts[family] = [r[0] for r in found]
            self._ends[family] = [r[1] for r in found]
            self._rows[family] = [r[2] for r in found]
            self.rows += len(found)
        if self.rows == 0:
            raise GeoDataError(
                f"{p.name}: no ranges in it (expected lines 'start end AS_number country name')"
            )

    def lookup(self, ip: str) -> GeoAnswer | None:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        value = int(addr)
        starts = self._starts[addr.version]
        i = bisect.bisect_right(starts, value) - 1
        if i < 0 or value > self._ends[addr.version][i]:
            return None
        asn, country, name = self._rows[addr.version][i]
        if asn == 0:
            return None
        make = ipaddress.IPv4Address if addr.version == 4 else ipaddress.IPv6Address
        first, last = make(starts[i]), make(self._ends[addr.version][i])
        nets = ipaddress.summarize_address_range(first, last)  # type: ignore[arg-type]
        prefix = next((str(n) for n in nets if addr in n), "")
        return GeoAnswer(country=_country(country), asn=asn, asn_name=name, prefix=prefix)


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _table_row(line: str, n: int, name: str) -> tuple[Any, Any, tuple[int, str, str]]:
    parts = line.rstrip("\r\n").split("\t")
    if len(parts) < 4:
        parts = line.split(None, 4)
    if len(parts) < 4:
        raise GeoDataError(f"{name} line {n}: expected 'range_start range_end AS_number country_code name'")
    try:
        start = ipaddress.ip_address(parts[0].strip())
        end = ipaddress.ip_address(parts[1].strip())
        asn = int(parts[2].strip().upper().removeprefix("AS"))
    except ValueError as e:
        raise GeoDataError(f"{name} line {n}: {e}") from None
    if start.version != end.version or int(start) > int(end) or asn < 0:
        raise GeoDataError(f"{name} line {n}: the range {start} - {end} (AS {asn}) is not a valid range")
    description = parts[4].strip() if len(parts) > 4 else ""
    return start, end, (asn, parts[3].strip(), description)


# --- what the user gives ------------------------------------------------------------------------

#: the names files are kept under in the geo folder, by kind
KEPT_NAMES = {"country": "country.mmdb", "asn": "asn.mmdb", "table": "ip2asn.tsv"}


@dataclass(frozen=True)
class GeoFile:
    """A validated file: its kind ("country", "asn" or "table"), what it is, how old, how big."""

    path: str
    kind: str
    name: str
    as_of: str
    entries: int


def inspect_file(path: str | Path) -> GeoFile:
    """Validate a file the user gives: an ``.mmdb`` (country/city or ASN) or an IP-to-ASN table.
    :class:`GeoDataError` says what is wrong with it; nothing is kept here."""
    p = Path(path)
    if not p.is_file():
        raise GeoDataError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise GeoDataError(f"{p.name}: the file is empty")
    with open(p, "rb") as f:
        head = f.read(4)
    if p.suffix.lower() == ".mmdb" or (head[:2] != b"\x1f\x8b" and not _looks_like_text(p)):
        db = MmdbGeo(p)
        try:
            if db.node_count == 0 or not _answers_something(db):
                raise GeoDataError(f"{p.name}: the database has no networks in it")
            return GeoFile(str(p), db.kind, db.name, db.as_of, db.node_count)
        finally:
            db.close()
    table = AsnTable(p)
    return GeoFile(str(p), "table", table.name, table.as_of, table.rows)


def _looks_like_text(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(4096)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\0" not in head


def _answers_something(db: MmdbGeo) -> bool:
    """Whether the database has at least one record (a tree that leads nowhere is empty)."""
    for network, _record in db._db:
        return network is not None
    return False


def load_kept(geo_dir: Path) -> list[GeoSource]:
    """The user's sources kept in ``geo_dir`` (ASN sources first: they also carry prefixes)."""
    found: list[GeoSource] = []
    for kind in ("asn", "table", "country"):
        p = geo_dir / KEPT_NAMES[kind]
        if not p.is_file():
            continue
        if kind == "table":
            found.append(AsnTable(p))
        else:
            found.append(MmdbGeo(p))
    return found
