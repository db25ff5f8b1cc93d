"""The outbox: messages leave by a real SMTP server and real webhooks on loopback, once; failures
retry with backoff on the injected clock and end failed, with the purpose's hook told.

Every channel passes the same contract (:func:`test_every_channel_keeps_the_contract`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import Connection, select

from meldpunt.act import outbox
from meldpunt.act.outbox import CHANNELS, DeliveryError, Message, queue_message
from meldpunt.act.ticks import settle
from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock
from meldpunt.settings import MailSettings, NoticeSettings, Settings
from meldpunt.store.acting import OutboxMessage
from tests.helpers.smtp import SmtpSink


@dataclass
class Hook:
    sent: list[int] = field(default_factory=list)
    failed: list[tuple[int, str, bool]] = field(default_factory=list)

    def on_sent(self, conn: Connection, message: Message, now: Any) -> None:
        self.sent.append(message.id)

    def on_failed(self, conn: Connection, message: Message, exc: DeliveryError, now: Any) -> None:
        self.failed.append((message.id, str(exc), exc.theirs))


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    outbox.on("test", sent=h.on_sent, failed=h.on_failed)
    yield h
    outbox.HOOKS.pop("test", None)


@dataclass
class HookServer:
    statuses: list[int]
    received: list[dict[str, Any]] = field(default_factory=list)
    hang: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    port: int = 0


@pytest.fixture
def webhook() -> Iterator[HookServer]:
    state = HookServer(statuses=[])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if state.hang.is_set():
                threading.Event().wait(3)
            state.received.append({"body": json.loads(body), "key": self.headers.get("Idempotency-Key")})
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _services(db_url: str, sink: SmtpSink | None = None, **mail: Any) -> tuple[Services, ManualClock]:
    clock = ManualClock()
    smtp = {"smtp_host": sink.host, "smtp_port": sink.port} if sink else {}
    settings = Settings(
        db=db_url, mail=MailSettings(**{**smtp, **mail}), notice=NoticeSettings(delivery_attempts=3)
    )
    return Services(settings, clock), clock


def _queue(services: Services, channel: str, target: str, round: int = 1, **kw: Any) -> int | None:
    with services.engine.begin() as conn:
        return queue_message(
            conn,
            purpose="test",
            ref_id=7,
            round=round,
            channel=channel,
            target=target,
            subject="Notice MP-1",
            body="Please remove http://example.test/x",
            now=services.clock.now(),
            **kw,
        )


def _state(services: Services, outbox_id: int) -> Any:
    with services.engine.connect() as conn:
        return conn.execute(select(OutboxMessage).where(OutboxMessage.id == outbox_id)).one()


def test_a_message_is_sent_once_by_smtp_and_queued_once(db_url: str, smtp_sink: SmtpSink, hook: Hook) -> None:
    services, _ = _services(db_url, smtp_sink, reply_to="reports@hotline.example")
    first = _queue(services, "email", "abuse@hosting.example")
    assert first is not None
    assert _queue(services, "email", "abuse@hosting.example") is None  # decided twice: queued once
    settle(services)
    settle(services)
    [got] = smtp_sink.to("abuse@hosting.example")
    assert got.subject == "Notice MP-1" and "example.test/x" in got.text
    assert got.message["Reply-To"] == "reports@hotline.example"
    assert got.message["Message-ID"] == f"<outbox-{first}.1@meldpunt>"
    assert _state(services, first).state == "sent" and hook.sent == [first]


def test_a_refused_recipient_fails_at_once_and_tells_the_hook(
    db_url: str, smtp_sink: SmtpSink, hook: Hook
) -> None:
    services, _ = _services(db_url, smtp_sink)
    smtp_sink.refuse.add("gone@hosting.example")
    mid = _queue(services, "email", "gone@hosting.example")
    assert mid is not None
    settle(services)
    row = _state(services, mid)
    assert row.state == "failed" and row.attempts == 1 and "refused" in row.last_error
    assert hook.failed == [(mid, row.last_error, True)] and smtp_sink.received == []


def test_an_unreachable_smtp_server_is_retried_with_backoff_then_fails(db_url: str, hook: Hook) -> None:
    services, clock = _services(db_url, None, smtp_host="127.0.0.1", smtp_port=1, smtp_timeout_s=2.0)
    mid = _queue(services, "email", "abuse@hosting.example")
    assert mid is not None
    settle(services)
    row = _state(services, mid)
    assert row.state == "queued" and row.attempts == 1 and row.next_attempt_at is not None
    settle(services)  # not due yet: nothing tried
    assert _state(services, mid).attempts == 1
    clock.advance(outbox.backoff(1).total_seconds())
    settle(services)
    assert _state(services, mid).attempts == 2
    clock.advance(outbox.backoff(2).total_seconds())
    settle(services)
    row = _state(services, mid)
    assert row.state == "failed" and row.attempts == 3
    assert hook.failed and hook.failed[0][2] is False  # our server's fault, not the recipient's


def test_no_smtp_server_configured_is_our_fault_not_the_recipients(db_url: str, hook: Hook) -> None:
    services, clock = _services(db_url, None)
    mid = _queue(services, "email", "abuse@hosting.example")
    assert mid is not None
    for _ in range(3):
        settle(services)
        clock.advance(timedelta(hours=7).total_seconds())
    assert _state(services, mid).state == "failed"
    assert hook.failed[0][2] is False and "MELDPUNT_MAIL_SMTP_HOST" in hook.failed[0][1]


def test_a_webhook_gets_json_and_5xx_is_retried_4xx_is_not(
    db_url: str, webhook: HookServer, hook: Hook
) -> None:
    services, clock = _services(db_url)
    webhook.statuses = [503]
    mid = _queue(services, "webhook", webhook.url, data={"reference": "MP-1", "urls": ["http://x.test/a"]})
    assert mid is not None
    settle(services)
    assert _state(services, mid).state == "queued"
    clock.advance(outbox.backoff(1).total_seconds())
    settle(services)
    assert _state(services, mid).state == "sent"
    assert [r["body"]["reference"] for r in webhook.received] == ["MP-1", "MP-1"]
    assert webhook.received[0]["key"] == f"outbox-{mid}.1@meldpunt"
    webhook.statuses = [404]
    other = _queue(services, "webhook", webhook.url, round=2)
    assert other is not None
    settle(services)
    assert _state(services, other).state == "failed" and "404" in _state(services, other).last_error


def test_a_hanging_webhook_times_out_and_is_retried(db_url: str, webhook: HookServer, hook: Hook) -> None:
    services, _ = _services(db_url, webhook_timeout_s=0.5)
    webhook.hang.set()
    mid = _queue(services, "webhook", webhook.url)
    assert mid is not None
    settle(services)
    row = _state(services, mid)
    assert row.state == "queued" and row.attempts == 1 and "Timeout" in row.last_error


@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_every_channel_keeps_the_contract(channel: str) -> None:
    """Each channel refuses targets it cannot use (with a reason), accepts a good one, and raises
    DeliveryError (never anything else) when sending to an invalid target."""
    impl = CHANNELS[channel]
    good = {"email": "abuse@hosting.example", "webhook": "https://api.hosting.example/notices"}[channel]
    assert impl.check_target(good) is None
    for bad in ("", "not a target", "abuse@hosting.example\r\nBcc: x@y.test", "javascript:alert(1)"):
        assert impl.check_target(bad), bad
        message = Message(1, "test", 1, 1, channel, bad, "s", "b")
        with pytest.raises(DeliveryError) as caught:
            impl.send(Settings(mail=MailSettings(smtp_host="127.0.0.1", smtp_port=1)), message)
        assert caught.value.permanent
