"""Locating without a database: the embedded geo data, the user's .mmdb files and IP-to-ASN tables
(valid ones used and winning; malformed or empty ones refused with a clear error, nothing replaced),
CDN recognition, RDAP against registries on loopback (answers, errors, a hang past the timeout,
garbage, JSON too deep or too big: facts "unknown" with a reason, never a crash), the cache, and
the ``meldpunt geo`` / ``meldpunt locate`` commands."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meldpunt.cli import app
from meldpunt.locate import GeoDataError, Locator, MemoryCache, inspect_file
from meldpunt.locate.geo import AsnTable, MmdbGeo
from meldpunt.settings import LocateSettings
from tests.helpers.locate import (
    FAILING,
    GARBAGE,
    HANGING,
    HOSTED,
    HOSTED6,
    HUGE,
    TOO_DEEP,
    FakeResolver,
    Rdap,
    asn_mmdb,
    asn_table,
    closed_port_url,
    country_mmdb,
)

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
OFF = LocateSettings(rdap=False)


def _rdap_settings(rdap: Rdap, **kw: object) -> LocateSettings:
    return replace(LocateSettings(), rdap_bootstrap_url=f"{rdap.base}/bootstrap/", rdap_timeout_s=2.0, **kw)  # type: ignore[arg-type]


def _user_files(tmp_path: Path) -> Path:
    geo = tmp_path / "geo"
    geo.mkdir()
    country_mmdb(geo / "country.mmdb", {"185.10.20.0/24": "BE", "2a00:1450::/32": "BE"})
    asn_mmdb(geo / "asn.mmdb", {"185.10.20.0/23": (64500, "Hosting One B.V.")})
    return geo


# --- geo data -------------------------------------------------------------------------------------


def test_the_embedded_data_works_offline_and_says_what_it_cannot() -> None:
    loc = Locator(OFF).locate("104.16.1.1", "104.16.1.1", now=NOW)
    assert loc.country == "US" and loc.network_owner == "CLOUDFLARENET" and loc.prefix == "104.16.0.0/12"
    country = loc.fact("country")
    assert country["source"] == "geoip2fast" and country["as_of"] == "2024-06-18"
    # geoip2fast names the AS owner, not the number: unknown, with what to do about it
    assert loc.asn is None and "geo update" in loc.fact("asn")["unknown"]
    assert loc.cdn == "Cloudflare" and loc.fact("cdn")["matched"] == "network 104.16.0.0/13"
    assert loc.fact("ip") == {"value": "104.16.1.1", "source": "fetcher", "as_of": NOW.isoformat()}
    assert loc.fact("registrar") == {}  # an address, no domain to ask about


def test_a_private_address_is_unknown_with_its_reason() -> None:
    loc = Locator(OFF).locate("127.0.0.1", "127.0.0.1", now=NOW)
    assert loc.country == "" and loc.provider == ""
    assert "loopback" in loc.fact("country")["unknown"]
    loc = Locator(OFF).locate("10.1.2.3", "", now=NOW)
    assert "private or reserved" in loc.fact("asn")["unknown"]


def test_every_resolved_address_is_kept_and_the_connected_one_is_the_location() -> None:
    resolver = FakeResolver({"www.shop-one.nl": ["104.16.1.1", HOSTED, HOSTED6]})
    locator = Locator(OFF, resolver=resolver)
    loc = locator.locate("WWW.Shop-One.NL.", HOSTED, now=NOW)
    assert loc.addresses == ["104.16.1.1", HOSTED, HOSTED6] and loc.ip == HOSTED
    assert loc.fact("addresses")["source"] == "dns" and resolver.asked == ["www.shop-one.nl"]
    assert loc.fact("registrar")["unknown"] == "RDAP is off (locate.rdap)"
    # without the fetcher's address: the first resolved; a name that does not resolve: said so
    assert locator.locate("www.shop-one.nl", "", now=NOW).ip == "104.16.1.1"
    gone = locator.locate("gone.shop-one.nl", "", now=NOW)
    assert gone.ip == "" and "not known" in gone.fact("addresses")["unknown"] and "dns" in gone.error


def test_an_async_resolver_hook_works_as_the_fetchers_does() -> None:
    async def resolver(host: str) -> list[str]:
        return [HOSTED6, HOSTED]

    loc = Locator(OFF, resolver=resolver).locate("www.shop-one.nl", "", now=NOW)
    assert loc.addresses == [HOSTED6, HOSTED] and loc.ip == HOSTED6


def test_the_users_mmdb_files_win_over_the_embedded_data(tmp_path: Path) -> None:
    locator = Locator(OFF, geo_dir=_user_files(tmp_path))
    loc = locator.locate(HOSTED, HOSTED, now=NOW)
    assert (loc.country, loc.asn, loc.network_owner, loc.prefix) == (
        "BE",
        64500,
        "Hosting One B.V.",
        "185.10.20.0/23",
    )
    assert loc.fact("country")["source"] == "GeoLite2-Country"
    assert (
        loc.fact("asn")["source"] == "GeoLite2-ASN"
        and loc.fact("asn")["as_of"] == datetime.now(UTC).date().isoformat()
    )
    # what the user's files do not cover still comes from the embedded data
    other = locator.locate("8.8.8.8", "8.8.8.8", now=NOW)
    assert other.country == "US" and other.fact("country")["source"] == "geoip2fast"
    assert [s.name for s in locator.sources()] == ["GeoLite2-ASN", "GeoLite2-Country", "geoip2fast"]


@pytest.mark.parametrize("gz", [False, True])
def test_an_ip_to_asn_table_is_searched_by_bisection(tmp_path: Path, gz: bool) -> None:
    table = AsnTable(asn_table(tmp_path / ("t.tsv.gz" if gz else "t.tsv"), gz=gz))
    assert table.rows == 4
    hit = table.lookup("185.10.21.200")
    assert hit is not None and (hit.asn, hit.country, hit.asn_name) == (
        64511,
        "NL",
        "HOSTING-ONE-AS Hosting One B.V.",
    )
    assert hit.prefix == "185.10.20.0/23"
    six = table.lookup("2a00:1450:4001::30")
    assert six is not None and six.asn == 15169 and six.prefix == "2a00:1450::/32"
    assert table.lookup("1.0.2.1") is None  # AS 0: not routed
    assert table.lookup("185.10.22.1") is None and table.lookup("0.0.0.1") is None
    # kept as the geo folder's table, it gives the AS number the embedded data lacks
    geo = tmp_path / "geo"
    geo.mkdir()
    asn_table(geo / "ip2asn.tsv", gz=gz)
    loc = Locator(OFF, geo_dir=geo).locate(HOSTED, HOSTED, now=NOW)
    assert loc.asn == 64511 and loc.fact("asn")["source"] == "ip2asn table"


def test_good_files_are_recognised_by_their_metadata(tmp_path: Path) -> None:
    c = inspect_file(
        country_mmdb(tmp_path / "a.mmdb", {"1.2.3.0/24": "BE"}, database_type="DBIP-Country-Lite")
    )
    assert (c.kind, c.name, c.entries > 0) == ("country", "DBIP-Country-Lite", True)
    a = inspect_file(asn_mmdb(tmp_path / "b.bin", {"1.2.3.0/24": (64500, "X")}))  # no .mmdb suffix
    assert a.kind == "asn"
    t = inspect_file(asn_table(tmp_path / "ip2asn-combined.tsv.gz", gz=True))
    assert (t.kind, t.entries) == ("table", 4)


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("empty.mmdb", b"", "the file is empty"),
        ("garbage.mmdb", b"\x00\x01 this is no database " * 50, "not a readable .mmdb database"),
        ("table.tsv", b"1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\nnot a range at all\n", "line 2"),
        ("backwards.tsv", b"1.0.0.255\t1.0.0.0\t13335\tUS\tX\n", "not a valid range"),
        ("comments.tsv", b"# nothing but a comment\n\n", "no ranges in it"),
        ("bad.tsv.gz", b"\x1f\x8b\x08\x00 broken gzip", "cannot be read"),
    ],
)
def test_malformed_and_empty_files_are_refused_clearly(
    tmp_path: Path, name: str, content: bytes, says: str
) -> None:
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(GeoDataError, match=says):
        inspect_file(p)


def test_a_truncated_or_unknown_kind_of_mmdb_is_refused(tmp_path: Path) -> None:
    good = country_mmdb(tmp_path / "c.mmdb", {"1.2.3.0/24": "BE"}).read_bytes()
    cut = tmp_path / "cut.mmdb"
    cut.write_bytes(good[: len(good) // 3])
    with pytest.raises(GeoDataError, match="not a readable"):
        inspect_file(cut)
    odd = country_mmdb(tmp_path / "odd.mmdb", {"1.2.3.0/24": "BE"}, database_type="GeoIP2-Anonymous-IP")
    with pytest.raises(GeoDataError, match="expected a country, city or ASN one"):
        inspect_file(odd)
    with pytest.raises(GeoDataError, match="no such file"):
        inspect_file(tmp_path / "missing.mmdb")
    assert MmdbGeo(tmp_path / "c.mmdb").lookup("not an address") is None


# --- RDAP -----------------------------------------------------------------------------------------


def test_rdap_fills_network_owner_abuse_contact_and_registrar(rdap_server: Rdap) -> None:
    resolver = FakeResolver({"www.shop-one.nl": [HOSTED]})
    locator = Locator(_rdap_settings(rdap_server), resolver=resolver)
    cache = MemoryCache()
    loc = locator.locate("www.shop-one.nl", HOSTED, now=NOW, cache=cache)
    assert loc.error == ""
    assert loc.provider == "Hosting One B.V." and loc.abuse_email == "abuse@hosting-one.example"
    assert (
        loc.fact("abuse_email")["source"] == "rdap 127.0.0.1"
        and loc.fact("abuse_email")["as_of"] == NOW.isoformat()
    )
    assert loc.fact("network")["value"] == {
        "name": "HOSTING-ONE-NET",
        "handle": "185.10.20.0 - 185.10.20.255",
        "cidr": "185.10.20.0/24",
    }
    assert loc.registrar == "Registrar Eén B.V." and loc.registrar_abuse == "abuse@registrar-een.example"
    assert loc.fact("registrar")["domain"] == "shop-one.nl"
    # asked from the registered name up: shop-one.nl answered, www.shop-one.nl was never needed
    assert rdap_server.hits["/ripe/domain/shop-one.nl"] == 1 and rdap_server.count("/ripe/domain/www") == 0
    # the second time, everything comes from the cache
    before = sum(rdap_server.hits.values())
    again = locator.locate("www.shop-one.nl", HOSTED, now=NOW + timedelta(days=1), cache=cache)
    assert again.abuse_email == loc.abuse_email and sum(rdap_server.hits.values()) == before
    assert again.fact("abuse_email")["as_of"] == NOW.isoformat()  # its age: when it was asked
    # past rdap_cache_days it is asked again
    locator.locate("www.shop-one.nl", HOSTED, now=NOW + timedelta(days=8), cache=cache)
    assert rdap_server.hits[f"/ripe/ip/{HOSTED}"] == 2
    six = locator.locate(HOSTED6, HOSTED6, now=NOW, cache=cache)
    assert six.abuse_email == "abuse@hosting-one.example"


@pytest.mark.parametrize(
    ("ip", "says"),
    [
        (FAILING, "HTTP 500"),
        (HANGING, "no answer within 2 s"),
        (GARBAGE, "not JSON"),
        (TOO_DEEP, "nested deeper than 32 levels"),
        (HUGE, "too large"),
        ("203.0.113.9", "private or reserved"),  # documentation range: no registry is asked
        ("9.9.9.9", "no registry in the bootstrap"),
    ],
)
def test_rdap_trouble_is_a_fact_unknown_with_its_reason(rdap_server: Rdap, ip: str, says: str) -> None:
    cache = MemoryCache()
    loc = Locator(_rdap_settings(rdap_server)).locate(ip, ip, now=NOW, cache=cache)
    assert says in loc.fact("abuse_email")["unknown"]
    assert loc.abuse_email == ""
    if ip not in ("203.0.113.9",):
        assert loc.country != "" or ip == HUGE or loc.fact("country")  # geo data still answered
        # the failure is cached for a while: not asked again for the next item on that network
        hits = sum(rdap_server.hits.values())
        Locator(_rdap_settings(rdap_server)).locate(ip, ip, now=NOW + timedelta(minutes=5), cache=cache)
        assert sum(rdap_server.hits.values()) == hits


def test_a_domain_the_registry_does_not_know_or_cannot_answer(rdap_server: Rdap) -> None:
    locator = Locator(_rdap_settings(rdap_server), resolver=FakeResolver({}))
    loc = locator.locate("a.b.unknown-shop.nl", "", now=NOW)
    assert "not found" in loc.fact("registrar")["unknown"]
    assert locator.locate("x.shop.org", "", now=NOW).fact("registrar")["unknown"].endswith("HTTP 500")
    assert "no registry" in locator.locate("x.shop.be", "", now=NOW).fact("registrar")["unknown"]
    assert (
        "not a registered domain"
        in locator.locate("media.example.test", "", now=NOW).fact("registrar")["unknown"]
    )


def test_rdap_without_a_network_fails_fast_and_geo_still_answers() -> None:
    settings = replace(LocateSettings(), rdap_bootstrap_url=closed_port_url())
    loc = Locator(settings).locate(HOSTED, HOSTED, now=NOW)
    assert loc.country and loc.network_owner  # the embedded data
    assert "bootstrap" in loc.fact("abuse_email")["unknown"] and "rdap network" in loc.error


# --- the commands ---------------------------------------------------------------------------------


def _meldpunt(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(
        app, ["--db", str(tmp_path / "m.db"), *args], env={"MELDPUNT_LOCATE_RDAP": "false"}
    )
    return r.exit_code, r.stdout, r.stderr


def test_geo_update_keeps_good_files_and_refuses_bad_ones_replacing_nothing(tmp_path: Path) -> None:
    c = country_mmdb(tmp_path / "GeoLite2-Country.mmdb", {"185.10.20.0/24": "BE"})
    a = asn_mmdb(tmp_path / "GeoLite2-ASN.mmdb", {"185.10.20.0/23": (64500, "Hosting One B.V.")})
    t = asn_table(tmp_path / "ip2asn-v4.tsv")
    code, _out, err = _meldpunt(tmp_path, "geo", "update", str(c), str(a), str(t))
    assert code == 0, err
    geo = tmp_path / "geo"
    assert sorted(p.name for p in geo.iterdir()) == ["asn.mmdb", "country.mmdb", "ip2asn.tsv"]
    kept = (geo / "country.mmdb").read_bytes()

    empty = tmp_path / "empty.mmdb"
    empty.write_bytes(b"")
    newer = country_mmdb(tmp_path / "newer.mmdb", {"185.10.20.0/24": "NL"})
    code, _out, err = _meldpunt(tmp_path, "geo", "update", str(newer), str(empty))
    assert code == 2 and "empty.mmdb: the file is empty" in err and "nothing was replaced" in err
    assert (geo / "country.mmdb").read_bytes() == kept
    code, _out, err = _meldpunt(tmp_path, "geo", "update", str(c), str(newer))
    assert code == 2 and "both country data" in err

    code, out, _err = _meldpunt(tmp_path, "geo", "show")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["name"] for r in rows[:4]] == ["GeoLite2-ASN", "ip2asn table", "GeoLite2-Country", "geoip2fast"]
    assert rows[3]["as_of"] == "2024-06-18" and rows[4] == {
        "kind": "rdap",
        "name": "off",
        "as_of": "cached 7 days",
        "path": "https://data.iana.org/rdap/",
    }

    code, out, _err = _meldpunt(tmp_path, "locate", "https://185.10.20.30/some/page")
    shown = json.loads(out)
    assert code == 0 and shown["ip"] == HOSTED
    assert shown["facts"]["asn"]["value"] == 64500 and shown["facts"]["country"]["value"] == "BE"
    assert _meldpunt(tmp_path, "locate", "https:///nohost")[0] == 2
