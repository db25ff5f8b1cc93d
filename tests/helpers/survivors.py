"""Shared pieces of the survivor tests: a world (services on a manual clock, a loopback web of
benign generated images) and the hashes a survivor's device would compute for them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock
from meldpunt.settings import MailSettings
from meldpunt.signals import hash_bytes
from tests.helpers.fakeweb import Served
from tests.helpers.pipeline import Web, make_settings

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PASS = "correct horse battery"


@dataclass
class World:
    services: Services
    clock: ManualClock
    web: Web
    served: Served

    def url(self, path: str) -> str:
        return self.served.url(path)


@contextmanager
def world(db_url: str, **settings: Any) -> Iterator[World]:
    clock = ManualClock(START)
    services = Services(make_settings(db_url, **settings), clock=clock)
    web = Web()
    served = Served(web, "127.0.0.1")  # type: ignore[arg-type]
    try:
        yield World(services, clock, web, served)
    finally:
        served.close()
        services.close()


def mail(host: str, port: int) -> MailSettings:
    return MailSettings(smtp_host=host, smtp_port=port)


def device_hashes(data: bytes, name: str, services: Services) -> list[tuple[str, str]]:
    """What the survivor page computes on the device: MD5, SHA-256 and PDQ of one file."""
    s = hash_bytes(data, name, services.settings)
    out = [("md5", hashlib.md5(data).hexdigest()), ("sha256", hashlib.sha256(data).hexdigest())]
    if s.pdq:
        out.append(("pdq", s.pdq))
    return out
