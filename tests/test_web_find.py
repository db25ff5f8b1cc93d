"""Finding and moving through the staff lists in-process, on SQLite and PostgreSQL: the queue's
search (URL, host, receipt code, item number, exact MD5/SHA-1/SHA-256/PDQ), sort, filters and bounded
pages with links that keep the query; the claim shown as yours and the age; the decisions list's
search, filter and pages; browsing a bank's entries a page at a time. Every hash is synthetic."""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from meldpunt.domain import Labels, SignalType
from meldpunt.pipeline.intake import receipt_hash
from meldpunt.store.reports import Item, Medium, Report
from meldpunt.triage.classify import HashRecord
from meldpunt.triage.search import understand
from tests.helpers.staff import token
from tests.helpers.workspace import Workspace, _workspace, classify, reveal
from tests.helpers.world import NOT_ILLEGAL, T0

CODE = "ABCDE-FGHIJ-KLMN2-PQRS3"
#: how long before the test world's clock the queued items were received (minutes)
AGE = 10 * 24 * 60


@pytest.fixture
def ws(db_url: str) -> Iterator[Workspace]:
    with ExitStack() as stack:
        yield _workspace(db_url, stack)


def ids(page: str, href: str = "/items/") -> list[int]:
    return [int(i) for i in re.findall(rf'<a href="{re.escape(href)}(\d+)"', page)]


def queued(ws: Workspace, n: int, *, later: int = 0, urgent: bool = False) -> list[int]:
    """``n`` items awaiting review, one medium each, received a minute apart (oldest first), ten
    days before the test world's clock (``later`` minutes after that)."""
    return [
        ws.world.item(pdqs=(ws.world.pdq(),), blobs=False, urgent=urgent, age_minutes=AGE - later - i)
        for i in range(n)
    ]


def medium_of(ws: Workspace, item_id: int) -> Any:
    """The item's (first) medium's hashes: md5, sha1, sha256, pdq."""
    with ws.world.engine.connect() as conn:
        row = conn.execute(
            select(Medium.md5, Medium.sha1, Medium.sha256, Medium.pdq).where(Medium.item_id == item_id)
        ).first()
    assert row is not None
    return row


def test_a_search_is_understood_by_its_shape() -> None:
    assert understand("  ") is None
    assert understand("#42") == understand("42")
    assert understand("abcde-fghij-klmn2-pqrs3") == understand("ABCDEFGHIJKLMN2PQRS3")
    receipt = understand("abcde fghij klmn2 pqrs3")
    assert receipt is not None and (receipt.kind, receipt.value) == ("receipt", CODE)
    for text, kind in (
        ("a" * 32, "md5"),
        ("B" * 40, "sha1"),
        ("c" * 64, "sha256/pdq"),
        ("host.test", "text"),
    ):
        found = understand(text)
        assert found is not None and found.kind == kind


def test_the_queue_finds_by_url_host_receipt_item_and_every_hash(ws: Workspace) -> None:
    ana = ws.user("ana", "analyst")
    a, b, c = queued(ws, 3)
    with ws.world.engine.begin() as conn:
        conn.execute(
            update(Item).where(Item.id == a).values(url="https://shop.test/cart/Blue", host="shop.test")
        )
        conn.execute(update(Item).where(Item.id == b).values(url="https://photos.test/x", host="photos.test"))
        rid = conn.execute(select(Item.report_id).where(Item.id == c)).scalar_one()
        conn.execute(update(Report).where(Report.id == rid).values(receipt_hash=receipt_hash(CODE)))
    found = {
        "cart/blue": [a],  # part of the URL, any case
        "photos.test": [b],
        "abcdefghijklmn2pqrs3": [c],  # a receipt code as typed, without its dashes
        f"#{b}": [b],
        "nothing-like-this": [],
    }
    m = medium_of(ws, a)
    for value in (m.md5, m.sha1.upper(), m.sha256, m.pdq):
        found[value] = [a]
    for q, wanted in found.items():
        page = ana.get("/queue", params={"q": q})
        assert page.status_code == 200, q
        assert ids(page.text) == wanted, q
    assert "as receipt code" in ana.get("/queue", params={"q": CODE}).text
    assert "Nothing in the queue matches." in ana.get("/queue", params={"q": "nothing-like-this"}).text
    # the search box keeps what was typed, escaped
    assert 'value="&lt;b&gt;"' in ana.get("/queue", params={"q": "<b>"}).text


def test_the_queue_sorts_pages_and_keeps_its_query_in_the_links(ws: Workspace) -> None:
    ana = ws.user("ana", "analyst")
    items = queued(ws, 27)
    urgent = queued(ws, 1, later=100, urgent=True)[0]
    first = ana.get("/queue")
    assert ids(first.text)[:2] == [urgent, items[0]] and len(ids(first.text)) == 25
    assert "1–25 of 28" in first.text and "page 1 of 2" in first.text
    nxt = re.search(r'<a href="([^"]+)" rel="next">', first.text)
    assert nxt is not None
    second = ana.get(html.unescape(nxt.group(1)))
    assert ids(second.text) == items[24:] and "26–28 of 28" in second.text
    assert 'rel="prev"' in second.text and 'rel="next"' not in second.text

    newest = ana.get("/queue", params={"sort": "newest", "q": "example.test", "size": "50"})
    assert ids(newest.text) == [urgent, *reversed(items)]
    oldest = ana.get("/queue", params={"sort": "oldest", "size": "25", "page": "2"})
    assert ids(oldest.text) == [*items[25:], urgent]  # the urgent one is the youngest
    link = re.search(r'<a href="([^"]+)" rel="prev">', oldest.text)
    assert link is not None and "sort=oldest" in link.group(1) and "page=" not in link.group(1)

    # bounds, not errors: a page size past the largest, a page past the end, nonsense
    big = ana.get("/queue", params={"size": "100000"})
    assert big.status_code == 200 and len(ids(big.text)) == 28
    assert ana.get("/queue", params={"page": "999"}).status_code == 200
    odd = ana.get("/queue", params={"page": "-1", "size": "x", "sort": "nope", "needs": "<x>"})
    assert odd.status_code == 200 and ids(odd.text)[0] == urgent


def test_the_queue_shows_your_own_claim_as_yours_and_the_age(ws: Workspace) -> None:
    ana = ws.user("ana", "analyst")
    ben = ws.user("ben", "analyst")
    mine, theirs, free = queued(ws, 3)
    ws.triage.claim(mine, "ana")
    ws.triage.claim(theirs, "ben")
    page = ana.get("/queue")
    rows = {
        int(m.group(1)): m.group(0)
        for m in re.finditer(r'<a href="/items/(\d+)".*?</tr>', page.text, flags=re.S)
    }
    assert "you, until" in rows[mine] and "free" not in rows[mine]
    assert "ben until" in rows[theirs]
    assert "free" in rows[free]
    # received ten days before the test world's clock: the age is counted from the service's now
    age = ws.triage.now() - (T0 - timedelta(minutes=AGE - 2))
    assert f"{int(age.total_seconds() // 86400)} d" in rows[free]
    assert "you, until" in ben.get("/queue").text  # ben's own claim, on ben's queue


def test_the_decisions_list_searches_filters_and_pages(ws: Workspace) -> None:
    senior = ws.user("sam", "senior")
    ws.world.user("ana", "analyst")
    items = queued(ws, 4)
    with ws.world.engine.begin() as conn:
        conn.execute(
            update(Item).where(Item.id == items[1]).values(url="https://find.test/me", host="find.test")
        )
    for iid in items:
        ws.triage.classify(iid, "ana", NOT_ILLEGAL)
    page = senior.get("/decisions")
    assert page.status_code == 200 and ids(page.text, "/decisions/") == list(reversed(items))
    assert ids(senior.get("/decisions", params={"q": "find.test/ME"}).text, "/decisions/") == [items[1]]
    m = medium_of(ws, items[2])
    assert ids(senior.get("/decisions", params={"q": m.md5}).text, "/decisions/") == [items[2]]
    assert ids(senior.get("/decisions", params={"via": "first"}).text, "/decisions/") == list(reversed(items))
    none = senior.get("/decisions", params={"via": "resolution"})
    assert ids(none.text, "/decisions/") == [] and "No decision matches." in none.text
    oldest = senior.get("/decisions", params={"sort": "oldest"})
    assert ids(oldest.text, "/decisions/") == items
    # pages at the service: the web's smallest page is 25
    two = ws.triage.decisions_page("sam", sort="oldest", limit=3, offset=3)
    assert [d.item_id for d in two.rows] == items[3:] and two.total == 4 and two.pages == 2


def test_a_banks_entries_are_browsed_a_page_at_a_time(ws: Workspace) -> None:
    senior = ws.user("sam", "senior")
    records = [
        HashRecord(SignalType.MD5, hashlib.md5(f"benign {n}".encode()).hexdigest(), Labels(category=f"c{n}"))
        for n in range(120)
    ] + [HashRecord(SignalType.SHA1, hashlib.sha1(b"benign sha1").hexdigest(), Labels())]
    ws.triage.banks.import_records(
        "partner", records, source_name="synthetic", source_sha256="0" * 64, fmt="csv"
    )
    bank = senior.get("/banks/partner")
    assert 'href="/banks/partner/entries"' in bank.text

    seen: list[str] = []
    url = "/banks/partner/entries"
    for _ in range(5):
        page = senior.get(url)
        assert page.status_code == 200
        seen += re.findall(r'<code class="ws-url">([0-9a-f]+)</code>', page.text)
        nxt = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        if nxt is None:
            break
        url = html.unescape(nxt.group(1))
    assert sorted(seen) == sorted(r.value for r in records) and len(set(seen)) == len(seen)  # each once

    sha1 = senior.get(url.split("?")[0], params={"type": "sha1"})
    assert re.findall(r'<code class="ws-url">([0-9a-f]+)</code>', sha1.text) == [records[-1].value]
    prefix = records[7].value[:6]
    wanted = [v for v in seen if v.startswith(prefix)]
    found = senior.get("/banks/partner/entries", params={"q": prefix.upper()})
    assert re.findall(r'<code class="ws-url">([0-9a-f]+)</code>', found.text) == wanted
    assert "category" in found.text and "c7" in found.text
    newest = senior.get("/banks/partner/entries", params={"sort": "newest", "size": "100"})
    assert re.findall(r'<code class="ws-url">([0-9a-f]+)</code>', newest.text) == seen[::-1][:100]
    bad = senior.get("/banks/partner/entries", params={"q": "xyz"})
    assert bad.status_code == 400 and "hexadecimal digits only" in bad.text
    assert senior.get("/banks/nope/entries").status_code == 404
    assert ws.user("ana", "analyst").get("/banks/partner/entries").status_code == 403
    browsed = ws.audit("bank.browse")
    assert {actor for actor, _, _ in browsed} == {"sam"} and {d["prefix"] for _, _, d in browsed} >= {
        prefix,
        "",
    }


def history(page: str) -> list[str]:
    found = re.search(r'<ol class="ws-timeline">(.*?)</ol>', page, flags=re.S)
    assert found is not None, "no history on the page"
    return [html.unescape(s) for s in re.findall(r"<span>(.*?)</span>", found.group(1))]


def test_an_items_history_says_who_did_what_when_and_keeps_the_second_opinion_blind(ws: Workspace) -> None:
    iid = ws.item(images=2)
    m1, _ = ws.media(iid)
    with ws.world.engine.begin() as conn:
        conn.execute(update(Medium).where(Medium.item_id == iid).values(outcome="new"))
    ana = ws.user("ana", "analyst")
    ben = ws.user("ben", "analyst")
    sam = ws.user("sam", "senior")
    page = ana.get(f"/items/{iid}")
    ana.get(f"/items/{iid}")
    page = ana.get(f"/items/{iid}")
    shown = ana.get(reveal(ana, iid, m1, page.text))
    assert history(shown.text) == [
        "Received: public report form.",
        "Fetched: 2 media found.",
        "Matched against the hash lists: 0 of 2 media on a list.",
        "Claimed by you.",
        "Viewed 3 times by you.",  # one line for a row of views; renewing the claim is no new claim
        f"Medium {m1} revealed by you.",
        "Viewed by you.",  # the page that shows the reveal
    ]
    assert classify(ana, iid, page.text, {"status": "baseline", "us": "A1"}) == 303

    # ben gives the second opinion blind: nothing of ana's work, not even that she claimed it
    blind = history(ben.get(f"/items/{iid}").text)
    assert not any("ana" in line or "opinion" in line.lower() for line in blind)
    assert blind[-2:] == ["Claimed by you.", "Viewed by you."]
    ben.post(f"/items/{iid}/release", data={"token": token(ben.get(f"/items/{iid}").text)})
    assert classify(ben, iid, ben.get(f"/items/{iid}").text, {"status": "baseline", "us": "A1"}) == 303

    # once final, everyone's steps: opinions by whom (never what), the decision
    full = history(sam.get(f"/decisions/{iid}").text)
    assert "First opinion given by ana." in full and "Second opinion given by ben." in full
    assert f"Medium {m1} revealed by ana." in full and "Given back to the queue by ben." in full
    assert full[-2:] == ["The classification became final.", "Viewed by you."]
    assert not any("baseline" in line for line in full)
    times = re.findall(r'<time datetime="([^"]+)">', sam.get(f"/decisions/{iid}").text)
    assert times == sorted(times)
    # a page in Dutch reads as Dutch
    sam.headers["Accept-Language"] = "nl"
    assert "De classificatie werd definitief." in history(sam.get(f"/decisions/{iid}").text)
