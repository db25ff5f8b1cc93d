"""Locate test helpers: an RDAP server on loopback (IANA-style bootstrap files and registries that
answer, fail, hang, send garbage or JSON nested too deep), small .mmdb databases and IP-to-ASN
tables built in the test, and a fake resolver."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

#: public addresses (no packet is ever sent to them: the resolver, geo data and RDAP are all fakes)
HOSTED = "185.10.20.30"  # a hosting company's network, answered by the "ripe" registry
FAILING = "45.10.0.1"  # its registry answers HTTP 500
HANGING = "46.10.0.1"  # its registry never answers in time
GARBAGE = "47.10.0.1"  # its registry answers with something that is not JSON
TOO_DEEP = "48.10.0.1"  # its registry answers JSON nested 1000 deep
HUGE = "49.10.0.1"  # its registry answers 2 MB
HOSTED6 = "2a00:1450:4001::30"


def vcard(fn: str, email: str = "") -> list[Any]:
    props: list[Any] = [["version", {}, "text", "4.0"], ["fn", {}, "text", fn]]
    if email:
        props.append(["email", {"type": "work"}, "text", email])
    return ["vcard", props]


NETWORK = {
    "objectClassName": "ip network",
    "handle": "185.10.20.0 - 185.10.20.255",
    "name": "HOSTING-ONE-NET",
    "startAddress": "185.10.20.0",
    "endAddress": "185.10.20.255",
    "country": "NL",
    "entities": [
        {
            "objectClassName": "entity",
            "handle": "ORG-HO1",
            "roles": ["registrant"],
            "vcardArray": vcard("Hosting One B.V."),
        },
        {
            "objectClassName": "entity",
            "handle": "HO-NOC",
            "roles": ["administrative", "technical"],
            "vcardArray": vcard("NOC"),
            "entities": [
                {
                    "objectClassName": "entity",
                    "handle": "AB1",
                    "roles": ["abuse"],
                    "vcardArray": vcard("Abuse desk", "abuse@hosting-one.example"),
                }
            ],
        },
    ],
}

DOMAIN = {
    "objectClassName": "domain",
    "ldhName": "shop-one.nl",
    "entities": [
        {
            "objectClassName": "entity",
            "roles": ["registrar"],
            "vcardArray": vcard("Registrar Eén B.V."),
            "entities": [{"roles": ["abuse"], "vcardArray": vcard("Abuse", "abuse@registrar-een.example")}],
        }
    ],
}


class Rdap:
    """The registries behind one loopback server; ``hits`` counts requests per path."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.base = ""

    def bootstrap(self, name: str) -> dict[str, Any]:
        b = self.base
        if name == "ipv4":
            services = [
                [["185.0.0.0/8"], [f"{b}/ripe/"]],
                [["45.0.0.0/8"], [f"{b}/error/"]],
                [["46.0.0.0/8"], [f"{b}/hang/"]],
                [["47.0.0.0/8"], [f"{b}/garbage/"]],
                [["48.0.0.0/8"], [f"{b}/deep/"]],
                [["49.0.0.0/8"], [f"{b}/huge/"]],
            ]
        elif name == "ipv6":
            services = [[["2a00::/12"], [f"{b}/ripe/"]]]
        else:
            services = [[["nl", "com"], [f"{b}/ripe/"]], [["org"], [f"{b}/error/"]]]
        return {"version": "1.0", "publication": "2026-11-01T00:00:00Z", "services": services}

    def route(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?")[0]
        with self.lock:
            self.hits[path] += 1
        if path.startswith("/bootstrap/") and path.endswith(".json"):
            return _json(h, 200, self.bootstrap(path.rsplit("/", 1)[1].removesuffix(".json")))
        if path.startswith("/ripe/ip/"):
            ip = path.rsplit("/", 1)[1]
            if ip.startswith("185.10.20.") or ip.startswith("2a00:"):
                return _json(h, 200, NETWORK)
            return _json(h, 404, {"errorCode": 404})
        if path.startswith("/ripe/domain/"):
            name = path.rsplit("/", 1)[1]
            if name == "shop-one.nl":
                return _json(h, 200, DOMAIN)
            return _json(h, 404, {"errorCode": 404, "title": "not found"})
        if path.startswith("/error/"):
            return _json(h, 500, {"errorCode": 500})
        if path.startswith("/hang/"):
            time.sleep(6)  # past any test's rdap_timeout_s
            return _json(h, 200, NETWORK)
        if path.startswith("/garbage/"):
            return _send(h, 200, b"<html>this is not RDAP</html>", "text/html")
        if path.startswith("/deep/"):
            return _send(h, 200, b"[" * 1000 + b"]" * 1000, "application/rdap+json")
        if path.startswith("/huge/"):
            return _send(h, 200, b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}', "application/rdap+json")
        _send(h, 404, b"{}", "application/json")

    def count(self, prefix: str) -> int:
        with self.lock:
            return sum(n for p, n in self.hits.items() if p.startswith(prefix))


def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str) -> None:
    try:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
        pass


def _json(h: BaseHTTPRequestHandler, status: int, doc: Any) -> None:
    _send(h, status, json.dumps(doc).encode(), "application/rdap+json")


@pytest.fixture
def rdap_server() -> Iterator[Rdap]:
    rdap = Rdap()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            rdap.route(self)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rdap.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rdap
    server.shutdown()
    server.server_close()


def closed_port_url() -> str:
    """A loopback URL nothing listens on: "no network", failing at once."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/bootstrap/"


# --- geo files ------------------------------------------------------------------------------------


def country_mmdb(path: Path, networks: dict[str, str], *, database_type: str = "GeoLite2-Country") -> Path:
    """A country database: CIDR -> ISO code."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    w = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type=database_type, description="test")
    for cidr, code in networks.items():
        w.insert_network(IPSet([cidr]), {"country": {"iso_code": code, "names": {"en": code}}})
    w.to_db_file(str(path))
    return path


def asn_mmdb(path: Path, networks: dict[str, tuple[int, str]]) -> Path:
    """An ASN database: CIDR -> (AS number, organisation)."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    w = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-ASN", description="test")
    for cidr, (asn, org) in networks.items():
        w.insert_network(
            IPSet([cidr]), {"autonomous_system_number": asn, "autonomous_system_organization": org}
        )
    w.to_db_file(str(path))
    return path


TABLE_ROWS = [
    ("1.0.0.0", "1.0.0.255", 13335, "US", "CLOUDFLARENET"),
    ("1.0.1.0", "1.0.3.255", 0, "None", "Not routed"),
    ("185.10.20.0", "185.10.21.255", 64511, "NL", "HOSTING-ONE-AS Hosting One B.V."),
    ("2a00:1450::", "2a00:1450:ffff:ffff:ffff:ffff:ffff:ffff", 15169, "US", "GOOGLE"),
]


def asn_table(
    path: Path, rows: list[tuple[str, str, int, str, str]] = TABLE_ROWS, *, gz: bool = False
) -> Path:
    text = "".join("\t".join(str(c) for c in r) + "\n" for r in rows)
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


class FakeResolver:
    """host -> addresses from a dict; unknown names fail like the OS resolver does."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names
        self.asked: list[str] = []

    def __call__(self, host: str) -> list[str]:
        self.asked.append(host)
        if host not in self.names:
            raise OSError(f"[Errno -2] Name or service not known: {host}")
        return self.names[host]
