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

from meldpunt.act import partner_send, partners
from meldpunt.act.partners import InMeta, Partner, Refused, on_message, send
from meldpunt.act.ticks import settle
from tests.helpers.partners import Instance, two_instances


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


def _delivered_seqs(a: Instance) -> list[int]:
    return [m.seq for m in partners.messages(a.services, "be-hotline", states=("delivered",))]


def test_a_partner_down_for_a_day_gets_everything_in_order_once_it_is_back(
    db_url: str, db_b: str, tmp_path: Path, got: Got
) -> None:
    with two_instances(db_url, db_b, tmp_path, serve_b=False) as (a, b):
        for n in range(1, 6):
            _send(a, n)
        settle(a.services)  # the port is closed: the head waits, the others behind it
        [head, *rest] = partners.messages(a.services, "be-hotline")
        assert head.seq == 1 and head.attempts == 1 and "ConnectError" in head.last_error
        assert head.next_attempt_at is not None and all(m.attempts == 0 for m in rest)
        refused_before = 0
        for step in range(24 * 3):
            if step == 12 * 3:  # half a day later it answers, but 503: still down
                refused_before = partners.messages(a.services, "be-hotline")[0].attempts
                b.unavailable.set()
                b.start()
            a.clock.advance(1200)
            settle(a.services)
            assert got.bodies == []
        head = partners.messages(a.services, "be-hotline")[0]
        assert head.seq == 1 and head.state == "queued" and "HTTP 503" in head.last_error
        # 1, 2, 4 ... minutes apart, then every backoff_max_minutes (30; looked at every 20)
        assert 30 <= head.attempts <= 40
        b.unavailable.clear()
        a.clock.advance(31 * 60)
        settle(a.services)
        assert [body["n"] for _, _, body in got.bodies] == [1, 2, 3, 4, 5]
        assert _delivered_seqs(a) == [1, 2, 3, 4, 5]
        assert b.posts[0] == (head.attempts - refused_before) + 5  # each 503 was one post; then one each
        assert partners.messages(a.services, "be-hotline") == []


def test_a_refused_message_is_a_dead_letter_the_rest_go_on_and_a_senior_retries_it(
    pair: tuple[Instance, Instance], got: Got
) -> None:
    a, _b = pair
    dead: list[tuple[int, str]] = []
    partners.on_dead("test-note", lambda conn, m, reason: dead.append((m.seq, reason)))
    try:
        _send(a, 1)
        mid = _send(a, 2, refuse=True)
        _send(a, 3)
        settle(a.services)
        assert [body["n"] for _, _, body in got.bodies] == [1, 3]
        [letter] = partners.messages(a.services, "be-hotline")
        assert letter.id == mid and letter.state == "dead" and letter.attempts == 1
        assert "404" in letter.last_error and "unknown_item" in letter.last_error
        assert dead == [(2, letter.last_error)]
        # the receiver can take it now (the item arrived); a senior retries the dead letter
        on_message(
            "test-note",
            lambda services, conn, sender, body, meta: got.bodies.append((sender.name, meta.seq, body)),
        )
        again = partners.Partners(a.services).retry(mid, actor="senior-sam")
        assert again.state == "queued"
        settle(a.services)
        assert [body["n"] for _, _, body in got.bodies] == [1, 3, 2]
        assert partners.message(a.services, mid).state == "delivered"  # type: ignore[union-attr]
        [entry] = a.services.audit.entries(action="partner.retry")
        assert entry.actor == "senior-sam" and entry.subject == f"partner-message:{mid}"
        with pytest.raises(partners.PartnerError, match="not a dead letter"):
            partners.retry(a.services, mid, actor="senior-sam")
    finally:
        partner_send._DEAD.pop("test-note", None)


def test_two_workers_deliver_each_message_once_and_in_order(
    db_url: str, db_b: str, tmp_path: Path, got: Got
) -> None:
    if "://" not in db_url:
        pytest.skip("several workers at once: PostgreSQL")
    from meldpunt.bootstrap import Services
    from meldpunt.pipeline.worker import run_worker

    with two_instances(db_url, db_b, tmp_path) as (a, b):
        # four writers queue at once: seq is handed out without gaps or clashes
        def queue(w: int) -> None:
            for n in range(10):
                _send(a, 100 * w + n)

        writers = [threading.Thread(target=queue, args=(w,)) for w in range(4)]
        for t in writers:
            t.start()
        for t in writers:
            t.join()
        second = Services(a.services.settings, a.clock)
        try:
            for _ in range(200):
                if not partners.messages(a.services, "be-hotline"):
                    break
                workers = [
                    threading.Thread(target=run_worker, args=(s,), kwargs={"idle_exit": True}, name=f"w{i}")
                    for i, s in enumerate((a.services, second))
                ]
                for t in workers:
                    t.start()
                for t in workers:
                    t.join()
        finally:
            second.close()
        seqs = [seq for _, seq, _ in got.bodies]
        assert seqs == list(range(1, 41)) and b.posts[0] == 40
        assert len({body["n"] for _, _, body in got.bodies}) == 40


def test_key_rotation_round_trip_with_the_grace_period(
    db_url: str, db_b: str, tmp_path: Path, got: Got
) -> None:
    from meldpunt.exchange.envelope import Payload, new_message_id, new_nonce, seal
    from meldpunt.stores.signing import rotate_key_ring

    with two_instances(db_url, db_b, tmp_path, serve_b=False) as (a, b):
        old = a.services.signing_keys().current
        _send(a, 1)  # queued before the rotation, delivered after it
        ring = rotate_key_ring(a.services.settings, now=a.clock.now())
        new = ring.current
        assert [p for p, _ in partners.announce_keys(a.services)] == ["be-hotline"]
        _send(a, 2)  # queued after: reaches the partner after the announcement
        b.start()
        settle(a.services)
        assert [body["n"] for _, _, body in got.bodies] == [1, 2]
        # b learnt the new key from a message signed by the old one; it keeps the old for the grace
        seen = partners.Partners(b.services).get("nl-hotline")
        assert seen is not None
        keys = {k.kid: k for k in seen.keys}
        assert set(keys) == {old.kid, new.kid} and keys[new.kid].retired is None
        assert keys[old.kid].retired == a.clock.now()
        [entry] = b.services.audit.entries(action="partner.keys")
        assert entry.actor == "partner:nl-hotline" and entry.details["added"] == [new.kid]
        delivered = partners.messages(a.services, "be-hotline", states=("delivered",))
        assert [m.kind for m in delivered] == ["test-note", "keys", "test-note"]

        def signed_by_old(n: int) -> bytes:
            p = Payload(
                "nl-hotline",
                "be-hotline",
                new_message_id(),
                99,
                "test-note",
                new_nonce(),
                a.clock.now(),
                {"n": n},
            )
            return seal(
                p, lambda data: (old.kid, __import__("base64").b64encode(old.private.sign(data)).decode())
            )

        grace = b.services.settings.keys.grace_days
        a.clock.advance((grace - 1) * 86400)
        assert partners.receive(b.services, signed_by_old(3)).status == "applied"  # within the grace
        a.clock.advance(2 * 86400)
        late = partners.receive(b.services, signed_by_old(4))
        assert (late.code, late.http) == ("unknown_key", 401)
        _send(a, 5)  # and a's own messages are signed with the new key by now
        settle(a.services)
        assert [body["n"] for _, _, body in got.bodies] == [1, 2, 3, 5]
