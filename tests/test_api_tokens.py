"""API tokens carry scopes: a partner's token reports and matches but cannot read the internal
item list; a missing scope is a 403 that names it; tokens made before scopes keep what they did
(on SQLite and PostgreSQL); ``meldpunt token create --scope``; the demo's token opens everything."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from meldpunt.bootstrap import Services
from meldpunt.cli import app
from meldpunt.pipeline.api_tokens import SCOPES, UnknownScope, authenticate, create_api_token
from meldpunt.settings import Settings
from meldpunt.store.db import alembic_config, create_db_engine, migrate_database
from meldpunt.store.reports import ApiToken
from meldpunt.web import WebConfig, create_app
from tests.helpers.webclient import WebClient, form, make_client

runner = CliRunner()
REPORT = {"urls": ["https://example.invalid/scoped"]}
MATCH = {"hashes": [{"type": "md5", "value": "0" * 32}]}


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    s = Services(Settings.from_env({}, db=db_url, matcher_refresh_s=0))
    yield s
    s.close()


@pytest.fixture
def client(services: Services) -> Iterator[WebClient]:
    yield from make_client(create_app(services))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.slow
def test_a_partner_token_reports_and_matches_but_cannot_read_internal_items(
    client: WebClient, services: Services
) -> None:
    form(client, urls="https://example.invalid/from-the-public")
    partner = create_api_token(services, "partner-be")  # the default: reports, match
    assert client.post("/api/v1/reports", json=REPORT, headers=bearer(partner)).status_code == 201
    assert client.post("/api/v1/match", json=MATCH, headers=bearer(partner)).status_code == 200
    for auth in ({"headers": bearer(partner)}, {"auth": ("anyone", partner)}):
        page = client.get("/internal/items", **auth)  # type: ignore[arg-type]
        assert page.status_code == 403 and "internal:read" in page.text
        assert "example.invalid" not in page.text
    nl = client.get("/internal/items?lang=nl", headers=bearer(partner))
    assert nl.status_code == 403 and "bevoegdheid internal:read ontbreekt" in nl.text
    reader = create_api_token(services, "analysts", ("internal:read",))
    page = client.get("/internal/items", headers=bearer(reader))
    assert page.status_code == 200 and "https://example.invalid/from-the-public" in page.text


def test_a_missing_scope_is_a_403_that_names_it(client: WebClient, services: Services) -> None:
    matcher = create_api_token(services, "platform", ("match",))
    r = client.post("/api/v1/reports", json=REPORT, headers=bearer(matcher))
    assert r.status_code == 403 and "'reports'" in r.json()["detail"]
    assert client.post("/api/v1/match", json=MATCH, headers=bearer(matcher)).status_code == 200
    r = client.post("/api/v1/match", json={**MATCH, "report": REPORT}, headers=bearer(matcher))
    assert r.status_code == 403 and "'reports'" in r.json()["detail"] and "`report`" in r.json()["detail"]
    reporter = create_api_token(services, "hotline-fr", ("reports",))
    r = client.post("/api/v1/match", json=MATCH, headers=bearer(reporter))
    assert r.status_code == 403 and "'match'" in r.json()["detail"]
    r = client.post("/api/v1/reports", json={"urls": ["https://example.invalid/x"]}, headers=bearer("mp_x"))
    assert r.status_code == 401  # no valid token: 401 before any scope is looked at
    from meldpunt.pipeline.intake import list_items

    assert list_items(services) == []  # nothing refused was kept


def test_scopes_are_checked_when_a_token_is_made(services: Services) -> None:
    with pytest.raises(UnknownScope, match="choose from reports, match, internal:read"):
        create_api_token(services, "x", ("internal:write",))
    with pytest.raises(UnknownScope):
        create_api_token(services, "x", ())
    token = create_api_token(services, "y", ("match, internal:read", "match"))
    found = authenticate(services, token)
    assert found is not None and found.scopes == {"match", "internal:read"}


@pytest.mark.empty_db  # the migrations themselves, from nothing
def test_tokens_made_before_scopes_keep_reports_and_match_but_not_internal_read(db_url: str) -> None:
    from alembic import command

    engine = create_db_engine(db_url, migrate=False)
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0009")
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO api_tokens (name, token_hash, revoked, created_at) VALUES (:n, :h, :r, :c)"),
            {"n": "old-partner", "h": "a" * 64, "r": False, "c": datetime.now(UTC)},
        )
    migrate_database(engine)
    with engine.connect() as conn:
        scopes = conn.execute(select(ApiToken.scopes).where(ApiToken.name == "old-partner")).scalar_one()
    assert scopes.split() == ["reports", "match"]
    engine.dispose()


def test_cli_token_create_with_scopes_and_list(sqlite_db: str) -> None:
    made = runner.invoke(app, ["--db", sqlite_db, "token", "create", "reader", "--scope", "internal:read"])
    assert made.exit_code == 0, made.output
    services = Services(Settings.from_env({}, db=sqlite_db))
    found = authenticate(services, made.stdout.strip())
    assert found is not None and found.scopes == {"internal:read"}
    default = runner.invoke(app, ["--db", sqlite_db, "token", "create", "partner"])
    found = authenticate(services, default.stdout.strip())
    assert found is not None and found.scopes == {"reports", "match"}
    bad = runner.invoke(app, ["--db", sqlite_db, "token", "create", "z", "--scope", "everything"])
    assert bad.exit_code == 2 and "unknown scope 'everything'" in bad.output and "internal:read" in bad.output
    listed = runner.invoke(app, ["--db", sqlite_db, "token", "list"]).stdout
    assert "partner\treports match\tactive" in listed and "reader\tinternal:read\tactive" in listed
    assert "mp_" not in listed
    services.close()


def test_the_demo_token_still_opens_internal_items(tmp_path: Path) -> None:
    from meldpunt.demo.run import prepare

    demo = prepare(Settings.from_env({}), tmp_path / "demo.db", act_story=False)  # the token is all
    demo.web.stop()
    try:
        found = authenticate(demo.services, demo.token)
        assert found is not None and found.scopes == set(SCOPES)
        for client in make_client(create_app(demo.services, WebConfig())):
            page = client.get("/internal/items", auth=("demo", demo.token))
            assert page.status_code == 200 and "gallery/sunset.html" in page.text
    finally:
        demo.services.close()


def test_token_names_that_cannot_be_a_reports_source_are_refused(db_url: str) -> None:
    """A token's reports carry ``api:<name>`` in a 120-character column: a longer name made every
    report of that partner fail on PostgreSQL; NUL and escape sequences are refused too."""
    from meldpunt.pipeline.api_tokens import MAX_NAME_LENGTH, BadTokenName, create_api_token

    services = Services(Settings.from_env({}, db=db_url))
    try:
        for bad in ("", "   ", "x" * (MAX_NAME_LENGTH + 1), "a\x00b", "evil\x1b[2J"):
            with pytest.raises(BadTokenName):
                create_api_token(services, bad)
        longest = create_api_token(services, "p" * MAX_NAME_LENGTH)
        for client in make_client(create_app(services, WebConfig())):
            r = client.post(
                "/api/v1/reports",
                json={"urls": ["https://example.invalid/long-name"]},
                headers={"Authorization": f"Bearer {longest}"},
            )
            assert r.status_code in (200, 201, 202), r.text
    finally:
        services.close()
    bad_cli = runner.invoke(app, ["--db", db_url, "token", "create", "x" * 200])
    assert bad_cli.exit_code == 2 and "at most" in bad_cli.output
