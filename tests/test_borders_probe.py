"""#11 probed from outside: the partner inbox of a served instance (real HTTP on loopback) sent
authentic messages — signed by the partner's real key — whose payload holds what no handler
expects: integers beyond 64 bits, NaN, NUL characters, times beyond year 9999, 10^5 URLs, and the
same message on several connections at once. Each must get a clear 4xx, nothing applied, nothing
half-written; then a good message still goes through. On SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from sqlalchemy import func, select

import meldpunt.act.forward_in  # noqa: F401  (registers the "forward" and "status" handlers)
from meldpunt.exchange.envelope import Payload, new_message_id, new_nonce
from meldpunt.store.forwarding import ForwardIn
from meldpunt.store.partners import PartnerInRow
from tests.helpers.partners import Instance, make_instance, pair, two_instances

INBOX = "/api/v1/partner/inbox"


@pytest.fixture
def ab(db_url: str, db_b: str, tmp_path: Path) -> Iterator[tuple[Instance, Instance]]:
    """``nl-hotline`` signs; ``be-hotline`` is served by uvicorn on a loopback port."""
    a = make_instance("nl-hotline", db_url, tmp_path)
    b = make_instance("be-hotline", db_b, tmp_path, clock=a.clock)
    pair(a, b)
    b.start()
    try:
        yield a, b
    finally:
        b.stop()
        a.services.close()
        b.services.close()


def _payload(a: Instance, *, kind: str = "forward", body: dict[str, Any] | None = None) -> dict[str, Any]:
    return Payload(
        "nl-hotline",
        "be-hotline",
        new_message_id(),
        1,
        kind,
        new_nonce(),
        a.clock.now(),
        body if body is not None else {"reference": "NL-1", "url": "https://files.example/a"},
    ).to_json()


def _signed(a: Instance, payload: dict[str, Any] | bytes) -> bytes:
    """An envelope around exactly these payload bytes, signed by the partner's real key."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    kid, sig = a.services.signing_keys().sign(data)
    return json.dumps({"v": 1, "payload": base64.b64encode(data).decode(), "kid": kid, "sig": sig}).encode()


def _post(b: Instance, raw: bytes) -> httpx.Response:
    return httpx.post(b.url + INBOX, content=raw, headers={"Content-Type": "application/json"}, timeout=30)


def _counts(b: Instance) -> tuple[int, int]:
    with b.services.engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(PartnerInRow)).scalar_one(),
            conn.execute(select(func.count()).select_from(ForwardIn)).scalar_one(),
        )


def test_authentic_payloads_of_surprising_types_get_a_clear_4xx_and_nothing_applied(
    ab: tuple[Instance, Instance],
) -> None:
    """Found: ``seq`` of 2**63 overflowed the insert (SQLite OverflowError, PostgreSQL out of range),
    NUL in a text field failed PostgreSQL's insert, NaN and 10**4000 were stored — all answered 500
    or taken in. Now the payload is read strictly: 422 bad_number / bad_text, before any handler."""
    a, b = ab
    base = _payload(a)
    cases: list[tuple[dict[str, Any], str]] = [
        ({**base, "seq": 2**63}, "bad_number"),
        ({**base, "seq": 10**30}, "bad_number"),
        ({**base, "from": "nl-\u0000hotline"}, "bad_text"),
        ({**base, "body": {"reference": "NL-\u00002", "url": "https://files.example/b"}}, "bad_text"),
        (
            {**base, "body": {**base["body"], "media": [{"sha256": "ab\u0000cd"}]}},
            "bad_text",
        ),
        ({**base, "body": {**base["body"], "classification": {"x": float("nan")}}}, "bad_number"),
        ({**base, "body": {**base["body"], "classification": {"x": float("inf")}}}, "bad_number"),
        ({**base, "body": {**base["body"], "classification": {"x": 10**4000}}}, "bad_number"),
    ]
    for payload, code in cases:
        payload = {**payload, "id": new_message_id(), "nonce": new_nonce()}
        answer = _post(b, _signed(a, payload))
        assert (answer.status_code, answer.json()["error"]) == (422, code), (payload, answer.text)
        assert answer.json()["message"]
    # an escaped backslash before "u0000" is text, not NUL: it is taken in
    fine = _payload(a, body={"reference": "NL-\\u0000", "url": "https://files.example/c"})
    assert _post(b, _signed(a, fine)).json() == {"status": "applied"}
    assert _counts(b) == (1, 1)


def test_a_time_beyond_year_9999_is_read_as_no_time_not_a_500(ab: tuple[Instance, Instance]) -> None:
    """Found: ``reported_at`` "9999-12-31T23:59:59-23:59" parses but overflows in UTC
    (OverflowError, not ValueError): the forward answered 500 and the sender retried it for ever."""
    a, b = ab
    body = {"reference": "NL-9", "url": "https://files.example/d", "reported_at": "9999-12-31T23:59:59-23:59"}
    answer = _post(b, _signed(a, _payload(a, body=body)))
    assert answer.json() == {"status": "applied"}
    with b.services.engine.connect() as conn:
        assert conn.execute(select(ForwardIn.reported_at)).scalar_one() is None


def test_ten_thousand_urls_and_a_megabyte_reference_are_refused_by_shape(
    ab: tuple[Instance, Instance],
) -> None:
    """Held: 10^5 media are refused by the member limit before parsing; an oversized reference and a
    URL list instead of a URL by the handler, with a reason; nothing is taken in."""
    a, b = ab
    many = {"reference": "NL-2", "url": "https://files.example/e", "media": [{"url": "u"}] * 100_000}
    big = _post(b, _signed(a, _payload(a, body=many)))
    assert big.status_code in (400, 413) and big.json()["error"] in ("too_many_members", "too_large")
    long_ref = {"reference": "R" * 100_000, "url": "https://files.example/f"}
    assert _post(b, _signed(a, _payload(a, body=long_ref))).status_code == 422
    listed = {"reference": "NL-3", "url": ["https://files.example/g"] * 1000}
    assert _post(b, _signed(a, _payload(a, body=listed))).status_code == 422
    assert _counts(b)[1] == 0


def test_one_forward_on_four_connections_at_once_is_taken_in_once(ab: tuple[Instance, Instance]) -> None:
    """Held: four threads post the same bytes at once (and four retries of the id with new nonces):
    one applied, the others replay/duplicate; one item, one forward-in row."""
    a, b = ab
    first = _payload(a, body={"reference": "NL-4", "url": "https://files.example/h"})
    copies = [_signed(a, first)] * 4 + [_signed(a, {**first, "nonce": new_nonce()}) for _ in range(4)]
    answers: list[httpx.Response] = []
    start = threading.Barrier(len(copies))

    def send(raw: bytes) -> None:
        start.wait()
        answers.append(_post(b, raw))

    threads = [threading.Thread(target=send, args=(raw,)) for raw in copies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == len(copies)
    assert all(r.status_code in (200, 409) for r in answers), [r.text for r in answers]
    assert sum(r.json().get("status") == "applied" for r in answers) == 1
    assert _counts(b) == (1, 1)


def test_a_status_for_a_forward_we_never_sent_is_404_and_recorded_refused(
    ab: tuple[Instance, Instance],
) -> None:
    """Held: status for a reference never forwarded is refused 404 (the sender can retry it later);
    a removal dated in year 1 or 9999 does not 500."""
    a, b = ab
    for at in ("0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59-23:59", "soon"):
        body = {"reference": "NEVER-SENT", "status": "removed", "at": at}
        answer = _post(b, _signed(a, _payload(a, kind="status", body=body)))
        assert answer.status_code == 404 and "NEVER-SENT" in answer.json()["message"]
    with b.services.engine.connect() as conn:
        states = conn.execute(select(PartnerInRow.state)).scalars().all()
    assert states == ["refused"] * 3


class _Junk(http.server.BaseHTTPRequestHandler):
    """A web server where the partner's inbox should be: 200 to everything, with a page or junk."""

    bodies = (b"<html><body>Welcome</body></html>", b"", b'{"status": "ok"}', b"\xff\x00junk")
    posts: ClassVar[list[int]] = [0]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = self.bodies[self.posts[0] % len(self.bodies)]
        self.posts[0] += 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_200_with_junk_is_not_delivery_and_the_messages_wait_in_order(
    db_url: str, db_b: str, tmp_path: Path
) -> None:
    """Found: any 2xx was taken as delivered, so a partner URL answered by a proxy's or web server's
    page (200, HTML) marked the message delivered and lost it. Now only the inbox's own answer
    (applied/duplicate) is delivery; junk is retried on the clock, and once the real inbox answers
    everything arrives, in order, once."""
    from meldpunt.act import partners
    from meldpunt.act.ticks import settle

    with two_instances(db_url, db_b, tmp_path, serve_b=False) as (a, b):
        with a.services.engine.begin() as conn:
            for n in range(1, 4):
                body = {"reference": f"NL-J{n}", "url": f"https://files.example/j{n}"}
                partners.send(conn, a.services, "be-hotline", "forward", body, key=f"fwd:{n}")
        junk = http.server.ThreadingHTTPServer(("127.0.0.1", b.port), _Junk)
        threading.Thread(target=junk.serve_forever, daemon=True).start()
        try:
            for _ in range(len(_Junk.bodies)):
                settle(a.services)
                a.clock.advance(3600)
        finally:
            junk.shutdown()
            junk.server_close()
        assert _Junk.posts[0] >= len(_Junk.bodies)
        [head, *rest] = partners.messages(a.services, "be-hotline")
        assert head.seq == 1 and head.state == "queued" and "not an inbox's answer" in head.last_error
        assert [m.state for m in rest] == ["queued", "queued"] and all(m.attempts == 0 for m in rest)
        b.start()
        a.clock.advance(3600)
        settle(a.services)
        delivered = partners.messages(a.services, "be-hotline", states=("delivered",))
        assert [m.seq for m in delivered] == [1, 2, 3]
        with b.services.engine.connect() as conn:
            refs = conn.execute(select(ForwardIn.reference).order_by(ForwardIn.id)).scalars().all()
        assert refs == ["NL-J1", "NL-J2", "NL-J3"]


def test_a_partner_removed_while_its_messages_are_in_flight(db_url: str, db_b: str, tmp_path: Path) -> None:
    """Held: the receiver removes the sender while three forwards are queued to it: each is refused
    403 partner_removed, which the sender keeps as a dead letter with that reason (visible, not
    lost); nothing is taken in at the receiver."""
    from meldpunt.act import partners
    from meldpunt.act.partners import Partners
    from meldpunt.act.ticks import settle

    with two_instances(db_url, db_b, tmp_path) as (a, b):
        with a.services.engine.begin() as conn:
            for n in range(1, 4):
                body = {"reference": f"NL-R{n}", "url": f"https://files.example/r{n}"}
                partners.send(conn, a.services, "be-hotline", "forward", body, key=f"fwd:{n}")
        Partners(b.services).remove("nl-hotline", actor="cli:test")
        settle(a.services)
        dead = partners.messages(a.services, "be-hotline", states=("dead",))
        assert [m.seq for m in dead] == [1, 2, 3]
        assert all("partner_removed" in m.last_error for m in dead), [m.last_error for m in dead]
        assert _counts(b)[1] == 0
