"""API fixtures: services, a client and a bearer token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from meldpunt.bootstrap import Services
from meldpunt.pipeline.intake import create_api_token
from meldpunt.settings import Settings
from meldpunt.web import create_app
from tests.helpers.webclient import WebClient, make_client


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    s = Services(Settings.from_env({}, db=db_url, matcher_refresh_s=0))
    yield s
    s.close()


@pytest.fixture
def client(services: Services) -> Iterator[WebClient]:
    yield from make_client(create_app(services))


@pytest.fixture
def auth(services: Services) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_api_token(services, 'partner-be')}"}
