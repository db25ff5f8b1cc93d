"""Bank fixtures for web tests: a repository of uploaded lists."""

from __future__ import annotations

import re

import httpx

from meldpunt.store.banks import BankRepository
from tests.helpers.webclient import WebClient
from tests.helpers.workspace import Workspace


def repo(ws: Workspace) -> BankRepository:
    banks: BankRepository = ws.staff.app.state.ctx.services.banks
    return banks


def form_token(page: str, action: str) -> str:
    """The token of the form posting to ``action`` on ``page``."""
    found = re.search(
        rf'<form method="post" action="{re.escape(action)}"[^>]*>\s*'
        r'<input type="hidden" name="token" value="([^"]+)"',
        page,
    )
    assert found, f"no form for {action}"
    return found.group(1)


def upload(
    client: WebClient,
    bank: str,
    content: bytes,
    filename: str = "list.txt",
    page: str | None = None,
    **fields: str,
) -> httpx.Response:
    page = page if page is not None else client.get("/banks").text
    data = {"token": form_token(page, "/banks/import"), "bank": bank, "policy": "hint", **fields}
    return client.post("/banks/import", data=data, files={"file": (filename, content, "text/plain")})
