"""Everything is wired once (``bootstrap.Services``) on one injectable clock (issue #9)."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from starlette.requests import Request

from meldpunt.bootstrap import Services
from meldpunt.cli import evidence as evidence_cli
from meldpunt.cli import users as users_cli
from meldpunt.cli.common import State
from meldpunt.clock import ManualClock
from meldpunt.settings import Settings
from meldpunt.web import create_app, prefs, staff, ws_common
from meldpunt.web.context import ctx

START = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(db=db_url, review_key=_key(), evidence_key=_key())


def _request(app: object) -> Request:
    return Request({"type": "http", "app": app, "headers": [], "path": "/", "query_string": b""})


def test_the_web_app_uses_the_services_that_services_built_one_of_each(db_url: str, tmp_path: Path) -> None:
    services = Services(_settings(db_url, tmp_path), clock=ManualClock(START))
    try:
        app = create_app(services)
        request = _request(app)
        assert ctx(request).services is services
        assert staff.accounts(request) is services.accounts()
        assert ws_common.triage(request) is services.triage
        assert prefs.wellness(request) is services.wellness
        # asked twice: still the one object
        assert staff.accounts(_request(app)) is staff.accounts(request)
        assert ws_common.triage(_request(app)) is services.triage
        # triage's encrypted stores are the ones Services holds
        assert services.triage.review_store is services.review_store
        assert services.triage.evidence_store is services.evidence_store
    finally:
        services.close()


def test_a_cli_command_uses_the_services_that_services_built(db_url: str, tmp_path: Path) -> None:
    state = State(_settings(db_url, tmp_path))
    try:
        context = typer.Context(typer.core.TyperCommand("meldpunt"), obj=state)
        assert users_cli._accounts(context) is state.services.accounts()
        assert users_cli._admin(context).accounts is state.services.accounts()
        assert evidence_cli._store(context) is state.services.evidence_store
    finally:
        state.close()


def test_every_service_reads_the_one_injected_clock(db_url: str, tmp_path: Path) -> None:
    clock = ManualClock(START)
    services = Services(_settings(db_url, tmp_path), clock=clock)
    try:
        assert services.audit.append("cli:test", "test.event").at == START
        assert services.triage.now() == START
        assert services.accounts().clock() == START
        assert services.wellness.clock() == START
        clock.advance(90)
        later = START + timedelta(seconds=90)
        assert services.audit.append("cli:test", "test.event").at == later
        assert services.triage.now() == later
        assert services.accounts().clock() == later
        assert services.wellness.clock() == later
        app = create_app(services)
        assert ctx(_request(app)).matchers._clock() == clock.monotonic()
    finally:
        services.close()


def test_the_accounts_sealing_key_is_read_only_when_a_secret_is(tmp_path: Path) -> None:
    """``meldpunt user add`` takes the one account service, yet (as before) reads no review key."""
    services = Services(Settings(db=str(tmp_path / "m.db"), review_key="not a key"))
    try:
        accounts = services.accounts()
        assert accounts._sealer is None  # not yet made: a bad key is no error until a secret is sealed
    finally:
        services.close()
