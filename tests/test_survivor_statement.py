"""The survivor's timeline in fewer lines and the statement PDF (#12): "still online" only the
latest between two other facts, days in plural forms in en/nl/fr; the statement read back with
pypdf in each language holds the facts, the hashes in an annex, page numbers, and never a URL's
path or the case code; it needs the survivor's session. Both databases."""

from __future__ import annotations

import io
import json
from datetime import timedelta

from pypdf import PdfReader
from sqlalchemy import insert, select

from meldpunt.act import survivors, timeline
from meldpunt.act.ticks import settle
from meldpunt.domain.acting import EventKind
from meldpunt.store.reports import Medium
from meldpunt.store.survivors import SurvivorCase
from tests.helpers.acting import seed_item, seed_location
from tests.helpers.pipeline import png
from tests.helpers.survivors import PASS, START, device_hashes
from tests.helpers.survivorweb import WebWorld, case_code, token, web_world
from tests.helpers.webclient import WebClient

URL = "http://images.example/secret/path/photo.png?id=42"


def _seeded(ww: WebWorld, web: WebClient, language: str = "nl") -> tuple[int, str, list[tuple[str, str]]]:
    """A registered case linked to one found item, with a long takedown: re-checks before and
    after a forward, then removal. Returns (item id, case code, hashes)."""
    s = ww.world.services
    item_id, _ = seed_item(s.engine, URL, now=START)
    seed_location(s.engine, item_id, now=START, country="NL")
    pairs = device_hashes(png(9), "x.png", s)
    with s.engine.begin() as conn:
        conn.execute(
            insert(Medium).values(
                item_id=item_id, url=URL, url_key="k", md5=pairs[0][1], outcome="new", created_at=START
            )
        )
    page = web.get("/survivor/register?lang=en")
    form = {"token": token(page.text), "lang": "en", "passphrase": PASS, "passphrase2": PASS}
    form.update(hashes=json.dumps([list(p) for p in pairs]), language=language)
    done = web.post("/survivor/register", data=form)
    assert done.status_code == 200, done.text
    settle(s)
    day = timedelta(days=1)
    with s.engine.begin() as conn:
        for kind, at in [
            (EventKind.NOTICE_SENT, START + day / 2),
            (EventKind.CHECKED_ONLINE, START + day / 2 + timedelta(hours=1)),  # 0 days
            (EventKind.CHECKED_ONLINE, START + day),  # 1 day: the latest before the forward
            (EventKind.FORWARD_SENT, START + day + timedelta(hours=1)),
            (EventKind.CHECKED_ONLINE, START + 3 * day),
            (EventKind.CHECKED_ONLINE, START + 4 * day),
            (EventKind.CHECKED_ONLINE, START + 5 * day),  # 5 days: the latest before removal
            (EventKind.REMOVED, START + 6 * day),
        ]:
            timeline.record(conn, kind, at=at, item_id=item_id)
    return item_id, case_code(done.text), pairs


def test_still_online_keeps_the_latest_between_facts_and_days_have_plurals(db_url: str) -> None:
    with web_world(db_url) as ww:
        web = ww.client()
        _seeded(ww, web)
        with ww.world.services.engine.connect() as conn:
            case_id = conn.execute(select(SurvivorCase.id)).scalar_one()
        facts = [f.to_dict() for f in survivors.timeline(ww.world.services.engine, case_id)]
        assert [f["kind"] for f in facts] == [
            "found",
            "notice_sent",
            "still_online",
            "forwarded",
            "still_online",
            "removed",
        ]
        assert [f["days"] for f in facts if f["kind"] == "still_online"] == [1, 5]
        for lang, one, many in [
            ("en", "after 1 day.", "after 5 days."),
            ("nl", "na 1 dag nog", "na 5 dagen nog"),
            ("fr", "après 1 jour.", "après 5 jours."),
        ]:
            page = web.get(f"/survivor/case?lang={lang}").text
            assert one in page and many in page, lang
            assert page.count('data-kind="still_online"') == 2


def _text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_statement_pdf_in_the_survivors_language(db_url: str) -> None:
    with web_world(db_url) as ww:
        web = ww.client()
        _, code, pairs = _seeded(ww, web, language="fr")
        link = web.get("/survivor/case?lang=fr").text
        assert "/survivor/case/statement.pdf" in link
        own = web.get("/survivor/case/statement.pdf")  # no lang: the case's own (fr)
        assert own.status_code == 200 and own.headers["content-type"] == "application/pdf"
        assert own.headers["content-disposition"].startswith("attachment")
        assert "Déclaration sur votre enregistrement" in _text(own.content)
        for lang, words in [
            ("en", ["Statement about your registration", "Netherlands", "after 5 days", "Page 1 of"]),
            ("nl", ["Verklaring over uw registratie", "images.example", "na 5 dagen", "Pagina 1 van"]),
            ("fr", ["Déclaration sur votre enregistrement", "images.example", "5 jours", "Page 1 sur"]),
        ]:
            pdf = web.get(f"/survivor/case/statement.pdf?lang={lang}")
            assert pdf.status_code == 200
            text = _text(pdf.content)
            flat = text.replace("\n", " ")
            for w in words:
                assert w in flat, (lang, w)
            assert START.date().isoformat() in text  # registration and finding dates
            assert (START.date() + timedelta(days=6)).isoformat() in text  # removal
            for kind, value in pairs:  # the annex: the survivor's own record
                assert value in text.replace("\n", ""), (lang, kind)
            assert "secret" not in text and "photo.png" not in text and "id=42" not in text
            raw = pdf.content
            for c in (code, survivors.normal_code(code)):
                assert c not in flat and c.encode() not in raw
            assert b"/secret/path" not in raw
        # the same case on the same day gives the same bytes (invariant mode)
        assert (
            web.get("/survivor/case/statement.pdf?lang=nl").content
            == web.get("/survivor/case/statement.pdf?lang=nl").content
        )


def test_statement_needs_a_survivor_session(db_url: str) -> None:
    with web_world(db_url) as ww:
        _seeded(ww, ww.client())
        stranger = ww.client()
        r = stranger.get("/survivor/case/statement.pdf?lang=nl")
        assert r.status_code == 303 and r.headers["location"].startswith("/survivor/sign-in")
        stranger.cookies.set(
            "meldpunt_survivor", "1:forged.token.x", domain="meldpunt.test", path="/survivor"
        )
        r = stranger.get("/survivor/case/statement.pdf")
        assert r.status_code == 303 and r.headers["location"].startswith("/survivor/sign-in")


def test_statement_of_a_case_with_nothing_found_and_many_hashes(db_url: str) -> None:
    with web_world(db_url) as ww:
        web = ww.client()
        page = web.get("/survivor/register?lang=en")
        pairs = [("sha256", f"{n:064x}") for n in range(500)]
        form = {"token": token(page.text), "lang": "en", "passphrase": PASS, "passphrase2": PASS}
        form["hashes"] = json.dumps([list(p) for p in pairs])
        assert web.post("/survivor/register", data=form).status_code == 200
        pdf = web.get("/survivor/case/statement.pdf?lang=en")
        reader = PdfReader(io.BytesIO(pdf.content))
        assert len(reader.pages) > 2
        last = reader.pages[-1].extract_text()
        assert f"Page {len(reader.pages)} of {len(reader.pages)}" in last
        text = _text(pdf.content)
        assert "Nothing has been found so far" in text and "Registered: 500 hashes." in text
        assert pairs[-1][1] in text.replace("\n", "")
