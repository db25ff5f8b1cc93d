"""Staff sign-in for web tests: enrolment, 2FA tokens, a signed-in client."""

from __future__ import annotations

import re
from contextlib import ExitStack
from typing import Annotated

import anyio.from_thread
import pyotp
from fastapi import Depends, FastAPI

from meldpunt.accounts import Accounts, AccountsPolicy, CurrentUser
from meldpunt.bootstrap import Services
from meldpunt.web import WebConfig, create_app
from meldpunt.web.staff import require
from tests.helpers.accounts import FAST, PASSWORD, Clock
from tests.helpers.webclient import WebClient


class Staff:
    """The app with an injected clock, a route that needs ``queue.view`` and one for the API."""

    def __init__(self, services: Services, stack: ExitStack) -> None:
        self.stack = stack
        self.portal = stack.enter_context(anyio.from_thread.start_blocking_portal())
        self.clock = Clock()
        self.app: FastAPI = create_app(services, WebConfig.from_env({}, secret="test secret"))
        self.accounts = Accounts(services.engine, AccountsPolicy(), clock=self.clock, hasher=FAST)
        self.app.state.accounts = self.accounts

        @self.app.get("/test/queue")
        def queue(user: Annotated[CurrentUser, Depends(require("queue.view"))]) -> dict[str, str]:
            return {"name": user.name, "role": user.role}

        @self.app.get("/api/test/queue")
        def api_queue(user: Annotated[CurrentUser, Depends(require("queue.view"))]) -> dict[str, str]:
            return {"name": user.name}

    def client(self, peer: tuple[str, int] = ("127.0.0.1", 123)) -> WebClient:
        client = WebClient.on(self.portal, self.app, peer)
        self.stack.callback(client.close)
        return client

    def code(self, secret: str) -> str:
        return pyotp.TOTP(secret).at(self.clock.now)


def token(html: str) -> str:
    found = re.search(r'name="token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def password_step(client: WebClient, name: str = "ana", password: str = PASSWORD) -> str:
    """Post the password form; returns where it sends us."""
    page = client.get("/login")
    r = client.post("/login", data={"token": token(page.text), "name": name, "password": password})
    return str(r.headers.get("location", f"status {r.status_code}"))


def enrol(staff: Staff, client: WebClient, name: str = "ana") -> tuple[str, list[str]]:
    """First sign-in of a new user: password, then set up the app; (secret, recovery codes)."""
    assert password_step(client, name) == "/enrol"
    page = client.get("/enrol")
    assert page.status_code == 200
    secret_match = re.search(r'<code id="secret">([A-Z2-7 ]+)</code>', page.text)
    assert secret_match
    secret = secret_match.group(1).replace(" ", "")
    assert f"otpauth://totp/{staff.app.state.ctx.config.hotline_name}:{name}?secret={secret}" in page.text
    wrong = client.post("/enrol", data={"token": token(page.text), "code": "000000"})
    assert wrong.status_code == 400 and "not accepted" in wrong.text
    r = client.post("/enrol", data={"token": token(wrong.text), "code": staff.code(secret)})
    assert r.status_code == 200
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", r.text)
    assert len(codes) == 10
    staff.clock.tick()
    return secret, codes


def peer(n: int) -> tuple[str, int]:
    return (f"198.51.100.{n}", 40000)
