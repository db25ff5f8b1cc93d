"""For the urgent-alert tests: a loopback webhook server (a chat or paging service), services with
on-call people, an SMTP sink and an injected clock, and a signed-in workspace on them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from meldpunt.accounts import Accounts, AccountsPolicy
from meldpunt.act.timeline import Event
from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock
from meldpunt.settings import AlertSettings, MailSettings, Settings, WebSettings
from meldpunt.store.acting import ActionEvent
from meldpunt.web import create_app
from tests.helpers.accounts import FAST, PASSWORD
from tests.helpers.smtp import SmtpSink
from tests.helpers.staff import Staff, enrol
from tests.helpers.webclient import WebClient

ONCALL = ("Ann Oncall <ann@hotline.example>", "Bert Backup <bert@hotline.example>")
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@dataclass
class HookServer:
    """A chat/paging service on 127.0.0.1: records every JSON POST."""

    port: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/page"

    def bodies(self, event: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [b for b in self.received if event is None or b.get("event") == event]


@pytest.fixture
def hook_server() -> Iterator[HookServer]:
    state = HookServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.lock:
                state.received.append(json.loads(body))
            self.send_response(200)
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


def alert_services(
    db_url: str,
    sink: SmtpSink | None,
    hooks: HookServer | None,
    *,
    oncall: tuple[str, ...] = ONCALL,
    ack_minutes: int = 10,
    web: WebSettings | None = None,
) -> tuple[Services, ManualClock]:
    clock = ManualClock(START)
    mail = MailSettings(
        smtp_host=sink.host if sink else "",
        smtp_port=sink.port if sink else 25,
        public_url="https://hotline.example",
    )
    settings = Settings(
        db=db_url,
        mail=mail,
        alert=AlertSettings(oncall=oncall, webhook_url=hooks.url if hooks else "", ack_minutes=ack_minutes),
        web=web or WebSettings(),
    )
    return Services(settings, clock), clock


def alert_events(services: Services, alert_id: int) -> list[Event]:
    with services.engine.connect() as conn:
        rows = conn.execute(
            select(ActionEvent).where(ActionEvent.alert_id == alert_id).order_by(ActionEvent.id)
        ).all()
    return [
        Event(r.id, r.at, r.kind, r.actor, r.item_id, r.notice_id, r.alert_id, json.loads(r.detail))
        for r in rows
    ]


class Desk(Staff):
    """The web app on alert services (their settings: on-call people, web settings), with staff
    accounts on their own clock; :meth:`user` signs a new user of a role in."""

    def __init__(self, services: Services, stack: ExitStack) -> None:
        super().__init__(services, stack)
        self.app = create_app(services, services.settings.web)
        self.accounts = Accounts(services.engine, AccountsPolicy(), clock=self.clock, hasher=FAST)
        self.app.state.accounts = self.accounts

    def user(self, name: str, role: str) -> WebClient:
        self.accounts.create_user(name, role, PASSWORD)
        client = self.client()
        enrol(self, client, name)
        return client
