"""The locate step's look-ups per second with the embedded data (geoip2fast, no download), beside
baselines from the same run: geoip2fast's bare look-up, and maxminddb on an .mmdb built here.

Ours is the whole look-up the ``locate`` job makes for an address (every geo source asked, each
fact with its source and age, the CDN list), without RDAP (answers to that are cached per network
and cost a round trip to a registry, not CPU) and without the database row; the last line adds the
row (``locations`` insert and commit on a temporary SQLite file) for the job's whole local cost.

    .venv/bin/python bench/locate.py [--n 20000]

Random public IPv4 addresses (seeded); nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import maxminddb
from mmdb_writer import MMDBWriter
from netaddr import IPSet
from rich.console import Console
from rich.table import Table
from sqlalchemy import insert

from meldpunt.act.locating import save_location
from meldpunt.bootstrap import Services
from meldpunt.locate import Locator
from meldpunt.locate.geo import embedded
from meldpunt.settings import LocateSettings, Settings
from meldpunt.store.reports import Item, Report


def _public(rng: random.Random, n: int) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        a = ipaddress.IPv4Address(rng.getrandbits(32))
        if a.is_global:
            out.append(str(a))
    return out


def _country_mmdb(path: Path, networks: dict[str, str]) -> None:
    """A country database (mmdb-writer, from the dev extra)."""
    w = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-Country", description="bench")
    for cidr, code in networks.items():
        w.insert_network(IPSet([cidr]), {"country": {"iso_code": code}})
    w.to_db_file(str(path))


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000)
    args = ap.parse_args()
    console = Console(stderr=True)
    rng = random.Random(10)
    ips = _public(rng, args.n)
    now = datetime.now(UTC)

    t = time.perf_counter()
    geo = embedded()
    load_s = time.perf_counter() - t
    console.print(f"geoip2fast data loaded in {load_s:.2f} s ({geo.source_info})")

    # baseline: geoip2fast's own look-up, nothing else
    t = time.perf_counter()
    for ip in ips:
        geo._db.lookup(ip)
    bare = _rate(len(ips), time.perf_counter() - t)

    # ours: the locate step's look-up on the embedded data
    locator = Locator(LocateSettings(rdap=False))
    locator.locate(ips[0], ips[0], now=now)
    t = time.perf_counter()
    for ip in ips:
        locator.locate(ip, ip, now=now)
    ours = _rate(len(ips), time.perf_counter() - t)

    with tempfile.TemporaryDirectory() as tmp:
        # baseline: maxminddb on a country .mmdb of 4,096 networks built here; ours with it as the
        # user's file (it wins; the embedded data still fills what it lacks)
        geo_dir = Path(tmp) / "geo"
        geo_dir.mkdir()
        nets = {
            f"{a}.{b}.0.0/16": "BE" if (a + b) % 2 else "NL" for a in range(1, 224, 14) for b in range(0, 256)
        }
        _country_mmdb(geo_dir / "country.mmdb", dict(list(nets.items())[:4096]))
        reader = maxminddb.open_database(str(geo_dir / "country.mmdb"))
        t = time.perf_counter()
        for ip in ips:
            reader.get(ip)
        mmdb = _rate(len(ips), time.perf_counter() - t)
        reader.close()
        with_user = Locator(LocateSettings(rdap=False), geo_dir=geo_dir)
        with_user.locate(ips[0], ips[0], now=now)
        t = time.perf_counter()
        for ip in ips:
            with_user.locate(ip, ip, now=now)
        ours_user = _rate(len(ips), time.perf_counter() - t)

        # the job's local cost: the look-up and its row, one transaction each (SQLite)
        services = Services(Settings(db=str(Path(tmp) / "bench.db")))
        with services.engine.begin() as conn:
            report = conn.execute(
                insert(Report)
                .values(receipt_hash="0" * 64, source="public", seen_on="website", created_at=now)
                .returning(Report.id)
            ).scalar_one()
            item_id = conn.execute(
                insert(Item)
                .values(
                    report_id=report,
                    url="https://example.test/",
                    url_key="1" * 64,
                    host="example.test",
                    state="fetched",
                    created_at=now,
                    updated_at=now,
                )
                .returning(Item.id)
            ).scalar_one()
        some = ips[: min(len(ips), 5000)]
        t = time.perf_counter()
        for ip in some:
            loc = locator.locate(ip, ip, now=now)
            with services.engine.begin() as conn:
                save_location(conn, int(item_id), loc, now)
        with_row = _rate(len(some), time.perf_counter() - t)
        services.close()

    table = Table(title=f"locate look-ups of {len(ips):,} random public IPv4 addresses (no RDAP)")
    for col in ("", "look-ups/s", "vs geoip2fast bare"):
        table.add_column(col, justify="right")
    rows = [
        ("geoip2fast bare look-up (baseline)", bare),
        ("maxminddb on a built .mmdb (baseline)", mmdb),
        ("ours: locate step, embedded data", ours),
        ("ours: locate step, user's .mmdb + embedded", ours_user),
        ("ours: locate step + its locations row (SQLite)", with_row),
    ]
    for name, rate in rows:
        table.add_row(name, f"{rate:,.0f}", f"{rate / bare:.2f}")
    Console().print(table)
    console.print(
        f"ours / geoip2fast bare: {ours / bare:.2f}; data: {geo.source_info} (as of {geo.as_of}), loaded once per process in {load_s:.2f} s"
    )


if __name__ == "__main__":
    main()
