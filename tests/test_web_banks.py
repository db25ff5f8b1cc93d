"""The hash-bank pages in-process, on SQLite and PostgreSQL: the list with sizes, a bank's page,
importing an uploaded list (all or nothing, size-capped), look-up, settings, delete with its typed
confirmation, the own bank kept, CSRF, roles, XSS and the audit events. Every hash is synthetic."""

from __future__ import annotations

import hashlib
import html
import re
import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from meldpunt.web import WebConfig, create_app
from tests.helpers.banks import form_token, repo, upload
from tests.helpers.webclient import WebClient
from tests.helpers.workspace import Workspace, _workspace

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def ws(db_url: str) -> Iterator[Workspace]:
    with ExitStack() as stack:
        yield _workspace(db_url, stack)


def md5(n: int) -> str:
    return hashlib.md5(f"benign synthetic {n}".encode()).hexdigest()


def sha1(n: int) -> str:
    return hashlib.sha1(f"benign synthetic {n}".encode()).hexdigest()


def counts(ws: Workspace, bank: str) -> tuple[int, int]:
    """(entries, imports) of a bank; (-1, -1) when there is none."""
    r = repo(ws)
    if bank not in {b.name for b in r.list_banks()}:
        return -1, -1
    return r.get_bank(bank).entries, len(r.imports(bank))


def plain(*values: str) -> bytes:
    return ("\n".join(values) + "\n").encode()


def test_import_look_up_change_and_delete(ws: Workspace) -> None:
    senior = ws.user("sen", "senior")
    empty = senior.get("/banks")
    assert empty.status_code == 200 and "No banks yet" in empty.text
    assert empty.headers["cache-control"] == "no-store"

    listing = plain("# synthetic", md5(1), md5(2), md5(3), sha1(1))
    r = upload(senior, "partner-a", listing, "partner.txt", policy="hint")
    assert r.status_code == 200, r.text
    assert re.search(r'id="entries">4<', r.text) and re.search(r'id="added">4<', r.text)
    assert repo(ws).get_bank("partner-a").policy == "hint"

    csv = ("md5,category,series\r\n" + f"{md5(1)},A,synthetic-series\r\n" + f"{md5(4)},B,\r\n").encode()
    r = upload(senior, "partner-a", csv, "more.csv", policy="ignore")
    assert r.status_code == 200, r.text
    assert re.search(r'id="added">1<', r.text) and re.search(r'id="updated">1<', r.text)
    assert repo(ws).get_bank("partner-a").policy == "hint"  # a policy is for a new bank only

    banks = senior.get("/banks")
    assert '<a href="/banks/partner-a">partner-a</a>' in banks.text
    assert "md5 4, sha1 1" in banks.text and "<svg" in banks.text and "<script" not in banks.text

    page = senior.get("/banks/partner-a")
    assert page.status_code == 200
    assert re.search(r'id="entries">5<', page.text)
    assert "partner.txt" in page.text and "more.csv" in page.text
    assert hashlib.sha256(listing).hexdigest() in page.text

    # look-up: labels of a hit; a miss says so
    action = "/banks/partner-a/lookup"
    hit = senior.post(action, data={"token": form_token(page.text, action), "value": md5(1).upper()})
    assert hit.status_code == 200 and "In this bank" in hit.text
    assert "category: A" in hit.text and "series: synthetic-series" in hit.text
    miss = senior.post(action, data={"token": form_token(page.text, action), "value": md5(99)})
    assert "Not in this bank" in miss.text
    bad = senior.post(action, data={"token": form_token(page.text, action), "value": "not a hash"})
    assert bad.status_code == 400 and "choose it" in bad.text

    # settings
    action = "/banks/partner-a/settings"
    r = senior.post(
        action,
        data={
            "token": form_token(page.text, action),
            "policy": "auto",
            "description": "Synthetic test list",
            "pdq_threshold": "40",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/banks/partner-a?msg=saved"
    info = repo(ws).get_bank("partner-a")
    assert (info.policy, info.description, info.pdq_threshold) == ("auto", "Synthetic test list", 40)
    wrong = senior.post(action, data={"token": form_token(page.text, action), "pdq_threshold": "300"})
    assert wrong.status_code == 400 and "nothing was changed" in wrong.text
    assert repo(ws).get_bank("partner-a").pdq_threshold == 40

    # delete: the name must be typed exactly
    page = senior.get("/banks/partner-a")
    action = "/banks/partner-a/delete"
    r = senior.post(action, data={"token": form_token(page.text, action), "confirm": "partner"})
    assert r.status_code == 400 and "Nothing was deleted" in r.text
    assert counts(ws, "partner-a") == (5, 2)
    r = senior.post(action, data={"token": form_token(page.text, action), "confirm": "partner-a"})
    assert r.status_code == 303 and r.headers["location"] == "/banks?msg=deleted"
    assert counts(ws, "partner-a") == (-1, -1)
    assert senior.get("/banks/partner-a").status_code == 404
    assert "Bank deleted." in senior.get("/banks?msg=deleted").text

    imports = ws.audit("bank.import")
    assert [(a, s) for a, s, _ in imports] == [("sen", "bank:partner-a")] * 2
    assert imports[0][2]["entries"] == 4 and imports[0][2]["source"] == "partner.txt"
    assert imports[0][2]["sha256"] == hashlib.sha256(listing).hexdigest()
    lookups = ws.audit("bank.lookup")
    assert [d["found"] for _, _, d in lookups] == [1, 0]
    assert ws.audit("bank.set") == [
        (
            "sen",
            "bank:partner-a",
            {"policy": "auto", "description": "Synthetic test list", "pdq_threshold": 40},
        )
    ]
    assert ws.audit("bank.delete") == [("sen", "bank:partner-a", {"entries": 5})]


def test_a_pdq_import_brings_the_saved_index_up_to_date(ws: Workspace) -> None:
    senior = ws.user("sen", "senior")
    pdqs = [secrets.token_hex(32) for _ in range(3)]
    r = upload(senior, "pdq-list", plain(*pdqs), "pdq.txt", type="pdq")
    assert r.status_code == 200 and "pdq" in r.text
    _index, report = ws.staff.app.state.ctx.services.pdq_index()
    assert report.added == 0 and report.size == 3  # caught up already, by the import

    page = senior.get("/banks/pdq-list")
    action = "/banks/pdq-list/lookup"
    hit = senior.post(action, data={"token": form_token(page.text, action), "value": pdqs[0]})
    assert "In this bank" in hit.text and "pdq" in hit.text  # 64 hex: tried as SHA-256 and PDQ


def test_a_malformed_file_imports_nothing(ws: Workspace) -> None:
    senior = ws.user("sen", "senior")
    assert upload(senior, "kept", plain(md5(1), md5(2))).status_code == 200
    before = counts(ws, "kept")

    bad = plain(md5(3), md5(4), "not-a-hash " + XSS, md5(5))
    r = upload(senior, "kept", bad)
    assert r.status_code == 400
    assert "Line 3:" in r.text and "Nothing was imported" in r.text
    assert XSS not in r.text and html.escape(XSS, quote=False) in r.text
    assert counts(ws, "kept") == before

    r = upload(senior, "fresh", bad)
    assert r.status_code == 400 and counts(ws, "fresh") == (-1, -1)  # not even created

    r = upload(senior, "kept", b"\n# only a comment\n")
    assert r.status_code == 400 and "holds no hashes" in r.text
    r = upload(senior, "kept", b"md5,colour\r\n" + md5(6).encode() + b",red\r\n", "x.csv")
    assert r.status_code == 400 and "colour" in r.text and "Nothing was imported" in r.text
    r = upload(senior, "kept", plain(md5(7)), labels="no equals sign")
    assert r.status_code == 400 and "KEY=VALUE" in r.text
    assert counts(ws, "kept") == before

    # asked to skip malformed lines: the good ones go in, the bad ones are listed
    r = upload(senior, "kept", bad, lenient="on")
    assert r.status_code == 200 and re.search(r'id="skipped">1<', r.text) and "Line 3" in r.text
    assert counts(ws, "kept") == (before[0] + 3, before[1] + 1)
    assert [d["skipped"] for _, _, d in ws.audit("bank.import")] == [0, 1]


def test_an_oversized_upload_is_refused(ws: Workspace) -> None:
    senior = ws.user("sen", "senior")
    small = create_app(
        ws.staff.app.state.ctx.services,
        WebConfig.from_env({}, secret="test secret", max_import_bytes=2048),
    )
    small.state.accounts = ws.staff.accounts
    small.state.triage = ws.triage
    client = WebClient.on(ws.staff.portal, small)
    ws.staff.stack.callback(client.close)
    client.cookies.update(senior.cookies)

    page = client.get("/banks").text
    assert "At most 2,048 bytes." in page
    assert upload(client, "small", plain(md5(1)), page=page).status_code == 200
    big = plain(*(md5(n) for n in range(200)))
    r = upload(client, "small", big, page=page)
    assert r.status_code == 413 and "too large" in r.text and "Nothing was imported" in r.text
    assert counts(ws, "small") == (1, 1)
    assert len(ws.audit("bank.import")) == 1


def test_forms_without_a_good_token_change_nothing(ws: Workspace) -> None:
    senior = ws.user("sen", "senior")
    assert upload(senior, "guarded", plain(md5(1)), policy="auto").status_code == 200
    page = senior.get("/banks/guarded").text
    forged = "1.abc.forged"

    files = {"file": ("list.txt", plain(md5(2)), "text/plain")}
    for token in (None, forged):
        data: dict[str, Any] = {"bank": "guarded"} | ({"token": token} if token else {})
        assert senior.post("/banks/import", data=data, files=files).status_code == 400
        data = {"policy": "ignore"} | ({"token": token} if token else {})
        assert senior.post("/banks/guarded/settings", data=data).status_code == 400
        data = {"confirm": "guarded"} | ({"token": token} if token else {})
        assert senior.post("/banks/guarded/delete", data=data).status_code == 400
        data = {"value": md5(1)} | ({"token": token} if token else {})
        assert senior.post("/banks/guarded/lookup", data=data).status_code == 400
    # a token of another form, or another bank's, is no good either
    delete = {"token": form_token(page, "/banks/guarded/settings"), "confirm": "guarded"}
    assert senior.post("/banks/guarded/delete", data=delete).status_code == 400
    # a cross-site post is refused even with a genuine token
    delete = {"token": form_token(page, "/banks/guarded/delete"), "confirm": "guarded"}
    r = senior.post("/banks/guarded/delete", data=delete, headers={"sec-fetch-site": "cross-site"})
    assert r.status_code == 400

    info = repo(ws).get_bank("guarded")
    assert (info.entries, info.policy) == (1, "auto")
    for action in ("bank.set", "bank.delete", "bank.lookup"):
        assert ws.audit(action) == []
    assert len(ws.audit("bank.import")) == 1


def test_the_own_bank_can_be_edited_but_not_deleted(ws: Workspace) -> None:
    senior = ws.user("sen", "senior")
    own = ws.triage.config.own_bank
    assert upload(senior, own, plain(md5(1)), policy="auto").status_code == 200
    listing = senior.get("/banks").text
    assert "own bank" in listing
    page = senior.get(f"/banks/{own}").text
    assert f'action="/banks/{own}/delete"' not in page and "cannot be deleted here" in page

    # a hand-made post is refused too, with the name typed and a genuine token
    settings_token = form_token(page, f"/banks/{own}/settings")
    tokens = ws.staff.app.state.ctx.tokens
    session = ws.staff.accounts.session(senior.cookies.get("mp_staff"))
    assert session is not None
    token = tokens.issue(f"bk-delete:{own}:{session.session_hash}")
    r = senior.post(f"/banks/{own}/delete", data={"token": token, "confirm": own})
    assert r.status_code == 400 and "hotline's own bank" in r.text
    assert counts(ws, own) == (1, 1) and ws.audit("bank.delete") == []

    r = senior.post(f"/banks/{own}/settings", data={"token": settings_token, "policy": "hint"})
    assert r.status_code == 303 and repo(ws).get_bank(own).policy == "hint"


def test_names_and_labels_are_rendered_inert(ws: Workspace) -> None:
    senior = ws.user("sen", "senior")
    r = upload(senior, XSS, plain(md5(1)), labels=f"category={XSS}\nseries=</td><script>x()</script>")
    assert r.status_code == 200, r.text
    assert XSS not in r.text
    listing = senior.get("/banks").text
    assert XSS not in listing and html.escape(XSS) in listing
    url = re.search(r'<a href="(/banks/[^"]+)">', listing)
    assert url and "<" not in url.group(1)
    page = senior.get(url.group(1))
    assert page.status_code == 200 and XSS not in page.text and "<script>" not in page.text
    action = url.group(1) + "/lookup"
    hit = senior.post(action, data={"token": form_token(page.text, action), "value": md5(1)})
    assert "In this bank" in hit.text and XSS not in hit.text and "<script>" not in hit.text
    assert "/" not in repo(ws).list_banks()[0].name
    r = upload(senior, "a/b", plain(md5(2)))
    assert r.status_code == 400 and "without" in r.text


def test_only_seniors_manage_banks(ws: Workspace) -> None:
    senior = ws.user("sen", "senior")
    assert upload(senior, "roles", plain(md5(1))).status_code == 200
    assert 'href="/banks"' in senior.get("/queue").text
    assert 'href="/banks"' in senior.get("/me").text
    for role in ("analyst", "police", "admin"):
        client = ws.user(f"u-{role}", role)
        assert 'href="/banks"' not in client.get("/me").text
        for url in ("/banks", "/banks/roles"):
            assert client.get(url).status_code == 403
        for url in ("/banks/roles/settings", "/banks/roles/delete", "/banks/roles/lookup"):
            assert client.post(url, data={"confirm": "roles"}).status_code == 403
        files = {"file": ("list.txt", plain(md5(2)), "text/plain")}
        assert client.post("/banks/import", data={"bank": "roles"}, files=files).status_code == 403
    assert 'href="/banks"' not in ws.user("u-analyst-2", "analyst").get("/queue").text
    assert counts(ws, "roles") == (1, 1)
    anonymous = ws.staff.client().get("/banks")
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login?next=%2Fbanks"


def test_a_big_limit_streams_the_body_and_still_refuses_past_it() -> None:
    """Bodies allowed more than STREAM_ABOVE are counted as they pass, not held whole; a body
    without a declared length that goes past the limit is refused all the same."""
    import asyncio

    from meldpunt.web.security import STREAM_ABOVE, BodyLimit

    limit = STREAM_ABOVE + 1024
    seen: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            seen.append(len(message.get("body", b"")))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def too_large(scope: Any, limit: int) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        return 413, [], b"too large"

    def run(total: int) -> tuple[int, int]:
        chunk = 1024 * 1024
        parts = [b"x" * min(chunk, total - i) for i in range(0, total, chunk)]
        sent: list[Any] = []

        async def receive() -> Any:
            body = parts.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(parts)}

        async def send(message: Any) -> None:
            sent.append(message)

        seen.clear()
        guard = BodyLimit(app, limit_for=lambda path: limit, too_large=too_large)
        asyncio.run(
            guard({"type": "http", "method": "POST", "path": "/banks/import", "headers": []}, receive, send)
        )
        return int(sent[0]["status"]), max(seen, default=0)

    assert run(limit) == (200, 1024 * 1024)  # the app read it in pieces: never one whole body
    status, _ = run(limit + 2 * 1024 * 1024)
    assert status == 413
