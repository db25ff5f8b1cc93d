"""What the receiving instance refuses, each with its own code and readable reason, and what it costs:
forged and wrongly keyed signatures, unknown and removed senders, messages for someone else,
replays, stale and future messages, oversized bodies (413 before parsing), malformed JSON, nesting
bombs and wrong types. Nothing refused is applied; an authentic retry of an applied message is
answered "duplicate"."""

from __future__ import annotations

import base64
import json
import tracemalloc
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, func, select

from meldpunt.act import partners
from meldpunt.act.partners import InMeta, Partner, Partners, Refused, receive
from meldpunt.exchange.envelope import EnvelopeError, Payload, new_message_id, new_nonce, scan_limits, seal
from meldpunt.store.partners import PartnerInRow
from meldpunt.web.app import create_app
from tests.helpers.partners import Instance, make_instance, pair
from tests.helpers.webclient import make_client


@pytest.fixture
def ab(db_url: str, db_b: str, tmp_path: Path) -> Iterator[tuple[Instance, Instance]]:
    a = make_instance("nl-hotline", db_url, tmp_path)
    b = make_instance("be-hotline", db_b, tmp_path, clock=a.clock)
    pair(a, b)
    applied: list[dict[str, Any]] = []

    def note(services: Any, conn: Connection, sender: Partner, body: dict[str, Any], meta: InMeta) -> None:
        if body.get("refuse"):
            raise Refused("no such item here", status=404, code="unknown_item")
        applied.append(body)

    partners.on_message("test-note", note)
    b.applied = applied  # type: ignore[attr-defined]
    yield a, b
    partners.off_message("test-note")
    a.services.close()
    b.services.close()


def _payload(a: Instance, **over: Any) -> Payload:
    fields: dict[str, Any] = {
        "sender": "nl-hotline",
        "to": "be-hotline",
        "id": new_message_id(),
        "seq": 1,
        "kind": "test-note",
        "nonce": new_nonce(),
        "sent_at": a.clock.now(),
        "body": {"n": 1},
    }
    return Payload(**{**fields, **over})


def _sealed(a: Instance, payload: Payload | None = None, **over: Any) -> bytes:
    return seal(payload or _payload(a, **over), a.services.signing_keys().sign)


def _refused(b: Instance, raw: bytes, code: str, status: int) -> str:
    got = receive(b.services, raw)
    assert (got.status, got.code, got.http) == ("refused", code, status), got
    assert got.message and got.answer() == {"error": code, "message": got.message}
    return got.message


def _applied(b: Instance) -> list[dict[str, Any]]:
    return b.applied  # type: ignore[attr-defined, no-any-return]


def test_an_authentic_message_is_applied_once_and_a_retry_is_a_duplicate(
    ab: tuple[Instance, Instance],
) -> None:
    a, b = ab
    first = _payload(a)
    assert receive(b.services, _sealed(a, first)).answer() == {"status": "applied"}
    # the sender lost our answer and tries again: same id, new nonce and time
    again = Payload(
        **{**first.__dict__, "nonce": new_nonce(), "sent_at": a.clock.now() + timedelta(seconds=5)}
    )
    assert receive(b.services, _sealed(a, again)).answer() == {"status": "duplicate"}
    assert _applied(b) == [{"n": 1}]


def test_the_same_bytes_twice_are_a_replay(ab: tuple[Instance, Instance]) -> None:
    a, b = ab
    raw = _sealed(a)
    assert receive(b.services, raw).status == "applied"
    _refused(b, raw, "replay", 409)
    assert len(_applied(b)) == 1


def test_a_stale_replay_is_refused_by_its_age_after_its_nonce_is_dropped(
    ab: tuple[Instance, Instance],
) -> None:
    a, b = ab
    raw = _sealed(a)
    assert receive(b.services, raw).status == "applied"
    skew = b.services.settings.partner.max_skew_s
    a.clock.advance(2 * skew + 1)
    partners.tick_partners(b.services)  # drops the nonces older than twice the skew
    assert "ago" in _refused(b, raw, "stale", 422)


def test_forged_and_wrongly_keyed_signatures(ab: tuple[Instance, Instance]) -> None:
    a, b = ab
    env = json.loads(_sealed(a))
    other = Ed25519PrivateKey.generate()
    data = base64.b64decode(env["payload"])
    forged = {**env, "sig": base64.b64encode(other.sign(data)).decode()}  # right kid, wrong signer
    _refused(b, json.dumps(forged).encode(), "bad_signature", 401)
    tampered = {**env, "payload": base64.b64encode(data.replace(b'"n":1', b'"n":2')).decode()}
    _refused(b, json.dumps(tampered).encode(), "bad_signature", 401)
    _refused(b, json.dumps({**env, "kid": "0123456789abcdef"}).encode(), "unknown_key", 401)
    assert _applied(b) == []


def test_unknown_and_removed_senders_and_someone_elses_message(ab: tuple[Instance, Instance]) -> None:
    a, b = ab
    _refused(b, _sealed(a, sender="xx-hotline"), "unknown_sender", 403)
    _refused(b, _sealed(a, to="de-hotline"), "wrong_recipient", 421)
    Partners(b.services).remove("nl-hotline", actor="cli:test")
    _refused(b, _sealed(a), "partner_removed", 403)
    assert _applied(b) == []


def test_stale_and_future_messages(ab: tuple[Instance, Instance]) -> None:
    a, b = ab
    skew = timedelta(seconds=b.services.settings.partner.max_skew_s)
    _refused(b, _sealed(a, sent_at=a.clock.now() - skew - timedelta(seconds=1)), "stale", 422)
    _refused(b, _sealed(a, sent_at=a.clock.now() + skew + timedelta(seconds=1)), "from_future", 422)
    assert (
        receive(b.services, _sealed(a, sent_at=a.clock.now() - skew + timedelta(seconds=1))).status
        == "applied"
    )


def test_malformed_bombs_and_wrong_types(ab: tuple[Instance, Instance]) -> None:
    a, b = ab
    _refused(b, b'{"v": 1, "payload": ', "malformed", 400)
    _refused(b, b"\xff\xfe not json", "malformed", 400)
    _refused(b, b"[" * 100_000 + b"]" * 100_000, "too_deep", 400)
    _refused(b, b"[]", "bad_shape", 422)
    _refused(b, json.dumps({"v": 2, "payload": "", "kid": "0" * 16, "sig": ""}).encode(), "bad_version", 422)
    env = json.loads(_sealed(a))
    _refused(b, json.dumps({**env, "kid": 7}).encode(), "bad_shape", 422)
    _refused(b, json.dumps({**env, "payload": "%%%"}).encode(), "bad_shape", 422)

    def inner(payload: dict[str, Any] | list[Any] | bytes) -> bytes:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        kid, sig = a.services.signing_keys().sign(data)
        return json.dumps(
            {"v": 1, "payload": base64.b64encode(data).decode(), "kid": kid, "sig": sig}
        ).encode()

    good = _payload(a).to_json()
    bomb = {**good, "body": json.loads("[" * 40 + "]" * 40) and {"x": json.loads("[" * 40 + "]" * 40)}}
    _refused(b, inner(bomb), "too_deep", 400)
    _refused(b, inner({**good, "body": {"x": [0] * 60_000}}), "too_many_members", 400)
    assert "seq" in _refused(b, inner({**good, "seq": "1"}), "bad_shape", 422)
    assert "seq" in _refused(b, inner({**good, "seq": True}), "bad_shape", 422)
    assert "body" in _refused(b, inner({**good, "body": []}), "bad_shape", 422)
    assert "UUID" in _refused(b, inner({**good, "id": "not-a-uuid"}), "bad_shape", 422)
    assert "nonce" in _refused(b, inner({**good, "nonce": "c2hvcnQ="}), "bad_shape", 422)
    assert "time" in _refused(b, inner({**good, "sent_at": "yesterday"}), "bad_shape", 422)
    assert "zone" in _refused(b, inner({**good, "sent_at": "2026-11-02T09:00:00"}), "bad_shape", 422)
    _refused(b, inner([good]), "bad_shape", 422)
    _refused(b, inner(b"\x00garbage"), "malformed", 400)
    assert _applied(b) == []


def test_a_handlers_refusal_is_recorded_not_applied_and_a_later_retry_applies(
    ab: tuple[Instance, Instance],
) -> None:
    a, b = ab
    first = _payload(a, body={"refuse": True})
    _refused(b, _sealed(a, first), "unknown_item", 404)
    with b.services.engine.connect() as conn:
        row = conn.execute(select(PartnerInRow).where(PartnerInRow.message_id == first.id)).one()
    assert row.state == "refused" and "no such item" in row.reason
    # the same message again (a senior retried it) once the receiver can take it
    partners.on_message("test-note", lambda s, c, p, body, m: _applied(b).append(body))
    again = Payload(**{**first.__dict__, "nonce": new_nonce()})
    assert receive(b.services, _sealed(a, again)).status == "applied"
    assert _applied(b) == [{"refuse": True}]
    _refused(b, _sealed(a, kind="no-such-kind"), "unknown_kind", 422)


def test_the_inbox_answers_over_http_and_refuses_oversized_bodies_before_reading_them(
    ab: tuple[Instance, Instance],
) -> None:
    a, b = ab
    for http in make_client(create_app(b.services)):
        raw = _sealed(a)
        ok = http.post("/api/v1/partner/inbox", content=raw, headers={"Content-Type": "application/json"})
        assert (ok.status_code, ok.json()) == (200, {"status": "applied"})
        again = http.post("/api/v1/partner/inbox", content=raw)
        assert again.status_code == 409 and again.json()["error"] == "replay"
        limit = b.services.settings.partner.max_message_bytes
        big = http.post("/api/v1/partner/inbox", content=b"{" + b" " * limit + b"}")
        assert big.status_code == 413 and big.json()["error"] == "too_large"
        keys = http.get("/api/v1/partner/keys").json()
        assert keys["name"] == "be-hotline" and keys["keys"][0]["public"] == b.public_key
    with pytest.raises(EnvelopeError) as e:
        from meldpunt.exchange.envelope import open_envelope

        open_envelope(b"x" * 11, max_bytes=10)
    assert e.value.code == "too_large" and e.value.status == 413
    with b.services.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(PartnerInRow)).scalar_one() == 1


def _peak(fn: Any) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_limits_cost_little_memory(ab: tuple[Instance, Instance]) -> None:
    """A 1 MB body costs a few times its size at peak (parse + verify); a nesting bomb of the same
    size is refused by the scan without building anything (its peak well below the parse's)."""
    a, b = ab
    mb = 1024 * 1024
    body = {"hashes": ["ab" * 32] * 9000}  # ~ 0.6 MB of JSON, ~0.8 MB once base64'd
    raw = _sealed(a, body=body)
    assert 0.5 * mb < len(raw) <= b.services.settings.partner.max_message_bytes
    assert receive(b.services, _sealed(a)).status == "applied"  # warm: connections, compiled statements
    from meldpunt.exchange.envelope import open_envelope

    opened = _peak(lambda: open_envelope(raw, max_bytes=2 * mb))
    parsed = _peak(lambda: receive(b.services, raw))
    bomb = b"[" * (mb // 2) + b"]" * (mb // 2)
    bombed = _peak(lambda: receive(b.services, bomb))

    def scan_bomb() -> None:
        with pytest.raises(EnvelopeError):
            scan_limits(bomb)

    scan = _peak(scan_bomb)
    print(
        f"peak memory: 1 MB message {parsed / mb:.1f} MB (opening it {opened / mb:.1f} MB), 1 MB nesting bomb {bombed / mb:.1f} MB (scan {scan / mb:.1f} MB)"
    )
    assert parsed < 12 * mb
    assert bombed < 4 * mb and scan < 3 * mb


def test_one_message_arriving_several_times_at_once_is_applied_once(ab: tuple[Instance, Instance]) -> None:
    """Four copies of one message (the sender's retries, each with its own nonce) reach four inbox
    threads at the same moment: one applies it, the others answer duplicate."""
    import threading

    a, b = ab
    first = _payload(a)
    copies = [_sealed(a, Payload(**{**first.__dict__, "nonce": new_nonce()})) for _ in range(4)]
    results: list[str] = []
    start = threading.Barrier(4)

    def post(raw: bytes) -> None:
        start.wait()
        results.append(receive(b.services, raw).status)

    threads = [threading.Thread(target=post, args=(raw,)) for raw in copies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["applied", "duplicate", "duplicate", "duplicate"]
    assert _applied(b) == [{"n": 1}]
