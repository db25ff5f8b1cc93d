"""The signed channel between two meldpunt instances, delivered for real: the receiver's web app on
loopback (uvicorn), each instance its own database; order, a partner down for a day, dead letters
and their retry, two workers at once, key rotation with its grace period."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection

from meldpunt.act import partners
from meldpunt.act.partners import InMeta, Partner, Refused, on_message, send
from meldpunt.act.ticks import settle
from tests.helpers.partners import Instance, two_instances


@pytest.fixture
def db_b(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> str:
    """A second database on the same engine as ``db_url``."""
    if "://" not in db_url:
        return str(tmp_path / "b.db")
    return str(request.getfixturevalue("postgres_cluster").create_database())


class Got:
    def __init__(self) -> None:
        self.bodies: list[tuple[str, int, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def __call__(
        self, services: Any, conn: Connection, sender: Partner, body: dict[str, Any], meta: InMeta
    ) -> None:
        if body.get("refuse"):
            raise Refused("no such item here", status=404, code="unknown_item")
        with self.lock:
            self.bodies.append((sender.name, meta.seq, body))


@pytest.fixture
def got() -> Iterator[Got]:
    g = Got()
    on_message("test-note", g)
    yield g
    partners.off_message("test-note")


@pytest.fixture
def pair(db_url: str, db_b: str, tmp_path: Path) -> Iterator[tuple[Instance, Instance]]:
    with two_instances(db_url, db_b, tmp_path) as ab:
        yield ab


def _send(a: Instance, n: int, **extra: Any) -> int:
    with a.services.engine.begin() as conn:
        return send(conn, a.services, "be-hotline", "test-note", {"n": n, **extra}, key=f"note:{n}")


def test_messages_arrive_in_order_once(pair: tuple[Instance, Instance], got: Got) -> None:
    a, _b = pair
    ids = [_send(a, n) for n in range(1, 6)]
    assert _send(a, 3) == ids[2]  # queued again: the same message
    settle(a.services)
    assert [(s, body["n"]) for s, _, body in got.bodies] == [("nl-hotline", n) for n in range(1, 6)]
    assert [seq for _, seq, _ in got.bodies] == [1, 2, 3, 4, 5]
    assert all(
        m.state == "delivered" for m in partners.messages(a.services, "be-hotline", states=("delivered",))
    )
