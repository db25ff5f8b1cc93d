"""Behind a reverse proxy: the client is the right-most X-Forwarded-For hop that is not a trusted
proxy (never the first, which the client writes), headers from untrusted peers are ignored, staff
cookies are Secure when a trusted proxy says https; ``meldpunt serve --trusted-proxy``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import anyio.from_thread
import httpx
import pytest
from typer.testing import CliRunner

from meldpunt.accounts import Accounts
from meldpunt.bootstrap import Services
from meldpunt.cli import app as cli_app
from meldpunt.settings import Settings
from meldpunt.web import WebConfig, create_app
from meldpunt.web.security import trusted_networks
from tests.helpers.accounts import FAST, PASSWORD
from tests.helpers.webclient import WebClient, token_of

#: what the app's socket sees: our reverse proxy on the same host
PROXY_PEER = ("127.0.0.1", 40000)


@pytest.fixture
def services(sqlite_db: str) -> Iterator[Services]:
    s = Services(Settings.from_env({}, db=sqlite_db))
    yield s
    s.close()


def clients(app: Any, peer: tuple[str, int] = PROXY_PEER) -> Iterator[WebClient]:
    with anyio.from_thread.start_blocking_portal() as portal:
        transport = httpx.ASGITransport(app=app, client=peer)
        client = httpx.AsyncClient(transport=transport, base_url="http://meldpunt.test")
        yield WebClient(portal, client)
        portal.call(client.aclose)


def post_report(client: WebClient, forwarded_for: str | None) -> int:
    token = token_of(client.get("/report").text)
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    r = client.post("/report", data={"token": token, "urls": "https://example.invalid/p"}, headers=headers)
    return r.status_code


def test_the_client_is_the_right_most_untrusted_hop_not_the_first(services: Services) -> None:
    config = WebConfig(trusted_proxies=("127.0.0.1", "10.0.0.0/8"), report_rate=2)
    for client in clients(create_app(services, config)):
        # the client 203.0.113.5 writes whatever it likes on the left; our proxies append on the right
        assert post_report(client, "1.1.1.1, 203.0.113.5, 10.0.0.7") == 303
        assert post_report(client, "2.2.2.2, 203.0.113.5, 10.0.0.7") == 303
        assert post_report(client, "3.3.3.3, 203.0.113.5, 10.0.0.7") == 429  # the same client
        assert post_report(client, "203.0.113.5, 10.0.0.9") == 429  # through another of our proxies
        assert post_report(client, "1.1.1.1, 203.0.113.6, 10.0.0.7") == 303  # another client
        assert post_report(client, "1.1.1.1, 203.0.113.6") == 303  # two headers' worth, one hop fewer


def test_forwarded_headers_from_an_untrusted_peer_are_ignored(services: Services) -> None:
    config = WebConfig(trusted_proxies=("10.0.0.0/8",), report_rate=2)
    for client in clients(create_app(services, config), peer=("198.51.100.20", 5000)):
        assert post_report(client, "203.0.113.1") == 303
        assert post_report(client, "203.0.113.2") == 303
        assert post_report(client, "203.0.113.3") == 429  # all one client: the socket's peer
    for client in clients(create_app(services, WebConfig(report_rate=1))):  # no proxies configured
        assert post_report(client, "203.0.113.1") == 303
        assert post_report(client, "203.0.113.2") == 429


def _password_cookie(services: Services, config: WebConfig, peer: tuple[str, int], proto: str) -> str:
    app = create_app(services, config)
    accounts = Accounts(services.engine, hasher=FAST)
    app.state.accounts = accounts
    if accounts.user("ana") is None:
        accounts.create_user("ana", "analyst", PASSWORD)
    for client in clients(app, peer):
        headers = {"X-Forwarded-Proto": proto}
        page = client.get("/login", headers=headers)
        token = re.search(r'name="token" value="([^"]+)"', page.text)
        assert token
        data = {"token": token.group(1), "name": "ana", "password": PASSWORD}
        r = client.post("/login", data=data, headers=headers)
        assert r.status_code == 303, r.text
        return str(r.headers["set-cookie"])
    raise AssertionError("no client")


def test_staff_cookies_are_secure_when_a_trusted_proxy_says_https(services: Services) -> None:
    behind = WebConfig(trusted_proxies=("127.0.0.1",), secret="s")
    assert "Secure" in _password_cookie(services, behind, PROXY_PEER, "https")
    assert "Secure" not in _password_cookie(services, behind, PROXY_PEER, "http")
    # the same header from a peer that is not our proxy says nothing
    assert "Secure" not in _password_cookie(services, behind, ("198.51.100.20", 5000), "https")
    assert "Secure" not in _password_cookie(services, WebConfig(secret="s"), PROXY_PEER, "https")


def test_trusted_proxies_are_checked_and_come_from_the_environment(services: Services) -> None:
    assert trusted_networks([" 10.1.2.3/8", "::1", "127.0.0.1"]) == ["10.0.0.0/8", "::1/128", "127.0.0.1/32"]
    with pytest.raises(ValueError, match=r"'proxy\.example' is not an IP address or network"):
        create_app(services, WebConfig(trusted_proxies=("proxy.example",)))
    config = WebConfig.from_env({"MELDPUNT_WEB_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1"})
    assert config.trusted_proxies == ("10.0.0.0/8", "192.0.2.1")
    with pytest.raises(ValueError, match="MELDPUNT_WEB_TRUSTED_PROXIES"):
        WebConfig.from_env({"MELDPUNT_WEB_FORWARDED_HEADER": "X-Forwarded-For"})


def test_serve_refuses_a_bad_trusted_proxy_before_starting(sqlite_db: str) -> None:
    runner = CliRunner()
    r = runner.invoke(
        cli_app, ["--db", sqlite_db, "serve", "--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "x"]
    )
    assert r.exit_code == 2 and "'x' is not an IP address or network" in r.output
    r = runner.invoke(
        cli_app, ["--db", sqlite_db, "serve"], env={"MELDPUNT_WEB_TRUSTED_PROXIES": "10.0.0.0/33"}
    )
    assert r.exit_code == 2 and "10.0.0.0/33" in r.output
    assert "--trusted-proxy" in runner.invoke(cli_app, ["serve", "--help"]).output
