"""Cross-site scripting: reports whose description and URLs carry script payloads are shown on
every page that shows them (the public form's echo, the status page, /internal/items, the
workspace's queue and item page) only escaped, and reported URLs are never links. Payloads are
inert strings on reserved test domains; nothing reaches the internet."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import ExitStack
from html.parser import HTMLParser

import httpx
import pytest
from sqlalchemy import insert, select, update

from meldpunt.bootstrap import Services
from meldpunt.pipeline.intake import InvalidReport, ReportIn, create_api_token, submit_report
from meldpunt.store.reports import Item, Medium
from tests.helpers.workspace import Workspace, _workspace, png

SCRIPT = '"><script>alert(1)</script>'
IMG = "<img/src=x/onerror=alert(1)>"
URLS = [
    f"https://xss.example.test/a{IMG}?q={SCRIPT.replace(' ', '')}",
    f"https://xss.example.test/b?next={IMG}&x='onmouseover='alert(1)",
]
DESCRIPTION = f"{SCRIPT} and {IMG} and <a href=javascript:alert(1)>click</a>"

#: markup of the payloads that must never appear unescaped
RAW = ("<script", "<img/src", "<img src", "<a href=javascript")


class Tags(HTMLParser):
    """Every start tag of a page and its attributes, as a browser would parse them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


@pytest.fixture
def ws(db_url: str) -> Iterator[Workspace]:
    with ExitStack() as stack:
        yield _workspace(db_url, stack)


def services_of(ws: Workspace) -> Services:
    found: Services = ws.staff.app.state.ctx.services
    return found


def assert_inert(html: str) -> None:
    """No payload markup, no script, no event handler, no javascript: and no reported URL as a link."""
    lowered = html.lower()
    for bad in RAW:
        assert bad not in lowered, f"{bad!r} unescaped in the page"
    parser = Tags()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag != "script"
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name, value)
            v = (value or "").strip().lower()
            assert not v.startswith("javascript:"), (tag, name, value)
            if name in ("href", "src", "action", "formaction"):
                assert "xss.example" not in v, (tag, name, value)


def submitted(ws: Workspace) -> tuple[str, list[int]]:
    """A report with the payloads; its items made ready for review with a stored benign image."""
    receipt = submit_report(
        services_of(ws), ReportIn(urls=URLS, description=DESCRIPTION, contact=SCRIPT, urgent=True)
    )
    with ws.world.engine.begin() as conn:
        for iid in receipt.item_ids:
            conn.execute(update(Item).where(Item.id == iid).values(state="needs_review"))
            murl = f"https://xss.example.test/m{IMG}.png?{SCRIPT.replace(' ', '')}"
            mid = conn.execute(
                insert(Medium)
                .values(
                    item_id=iid,
                    url=murl,
                    url_key=hashlib.sha256(f"{murl}{iid}".encode()).hexdigest(),
                    kind="image",
                    size=1000,
                    md5="0" * 32,
                    sha1="0" * 40,
                    sha256=f"{iid:064x}",
                    pdq=ws.world.pdq(),
                    pdq_quality=100,
                    outcome="new",
                    matches="[]",
                    created_at=ws.world.clock.now,
                )
                .returning(Medium.id)
            ).scalar_one()
            ws.world.store.put(conn, int(mid), png(iid))
    return receipt.code, receipt.item_ids


def test_javascript_urls_are_refused() -> None:
    for bad in (
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "data:text/html,<script>x</script>",
    ):
        with pytest.raises(InvalidReport) as e:
            submit_report(None, ReportIn(urls=[bad]))  # type: ignore[arg-type]  # refused before any use
        assert [p.code for p in e.value.problems] in (["url.not_http"], ["url.not_url"]), bad


def test_payloads_are_shown_only_escaped(ws: Workspace) -> None:
    code, item_ids = submitted(ws)
    with ws.world.engine.connect() as conn:
        stored = set(conn.execute(select(Item.url).where(Item.id.in_(item_ids))).scalars())
    assert any(IMG in u for u in stored)  # the payloads really are in the data being shown

    public = ws.staff.client()
    status = public.get(f"/status/{code}")
    assert status.status_code == 200
    assert_inert(status.text)

    api_token = create_api_token(services_of(ws), "xss-test", ("internal:read",))
    items = public.get("/internal/items", auth=("anyone", api_token))
    assert items.status_code == 200 and "xss.example.test" in items.text
    assert "&lt;img/src=x/onerror=alert(1)&gt;" in items.text  # shown, escaped
    assert_inert(items.text)

    ana = ws.user("ana", "analyst")
    queue = ana.get("/queue")
    assert queue.status_code == 200 and "xss.example.test" in queue.text
    assert_inert(queue.text)
    for iid in item_ids:
        page = ana.get(f"/items/{iid}")
        assert page.status_code == 200 and "&lt;img/src=x/onerror=alert(1)&gt;" in page.text
        assert_inert(page.text)
        ana.post(
            f"/items/{iid}/release", data={"token": re.findall(r'name="token" value="([^"]+)"', page.text)[0]}
        )


def test_the_public_form_echoes_payloads_escaped(ws: Workspace) -> None:
    client = ws.staff.client()
    page = client.get("/report?lang=en")
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token
    r: httpx.Response = client.post(
        "/report",
        data={
            "token": token.group(1),
            "lang": "en",
            "seen_on": "website",
            "urls": f"javascript:alert(1)\n{URLS[0]}",
            "description": DESCRIPTION,
        },
    )
    assert r.status_code == 400  # the javascript: URL is refused, and the form comes back
    assert "&lt;script&gt;" in r.text
    assert_inert(r.text)
