"""The survivor pages (#12) in process: register with hashes made on the device, the code shown
once, sign in (limits in plain words), the case's timeline, add, download, withdraw with a
confirmation. Both databases."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, insert, select

from meldpunt.act import survivors, timeline
from meldpunt.act.ticks import settle
from meldpunt.domain.acting import EventKind
from meldpunt.store.reports import Medium
from meldpunt.store.survivors import SurvivorCase, SurvivorHash
from tests.helpers.acting import seed_item, seed_location
from tests.helpers.pipeline import png
from tests.helpers.survivors import PASS, START, device_hashes
from tests.helpers.survivorweb import WebWorld, case_code, token, web_world
from tests.helpers.webclient import WebClient


def _register(ww: WebWorld, web: WebClient, pairs: list[tuple[str, str]], **extra: str) -> str:
    page = web.get("/survivor/register?lang=en")
    assert page.status_code == 200
    form = {"token": token(page.text), "lang": "en", "passphrase": PASS, "passphrase2": PASS}
    form["hashes"] = json.dumps([list(p) for p in pairs])
    form.update(extra)
    done = web.post("/survivor/register", data=form)
    assert done.status_code == 200, done.text
    return case_code(done.text)


def test_register_sign_in_case_and_export(db_url: str) -> None:
    with web_world(db_url) as ww:
        s = ww.world.services
        about = ww.client().get("/survivor?lang=nl")
        assert about.status_code == 200 and "hashes" in about.text.lower()
        web = ww.client()
        pairs = device_hashes(png(3), "a.png", s)
        code = _register(ww, web, pairs, contact="me@mail.example", consent_forward="1")
        assert len(survivors.normal_code(code)) == 24
        with s.engine.connect() as conn:
            case = conn.execute(select(SurvivorCase)).one()
            assert case.consent_forward and "me@mail.example" not in case.contact
        # the code is shown once: the case page, now signed in, never shows it
        page = web.get("/survivor/case?lang=en")
        assert page.status_code == 200 and code not in page.text
        assert "Nothing has been found so far" in page.text and "3 hashes" in page.text
        export = web.get("/survivor/case/export")
        assert export.headers["content-disposition"].startswith("attachment")
        data = export.json()
        assert sorted((h["type"], h["value"]) for h in data["hashes"]) == sorted(pairs)
        assert data["contact"] == "me@mail.example" and data["consent_forward"] is True
        # another browser signs in with the code (typed loosely) and the passphrase
        other = ww.client()
        assert other.get("/survivor/case").status_code == 303
        form = other.get("/survivor/sign-in?lang=fr")
        signed = other.post(
            "/survivor/sign-in",
            data={"token": token(form.text), "lang": "fr", "code": code.lower(), "passphrase": PASS},
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/survivor/case?lang=fr"
        assert "Votre dossier" in other.get("/survivor/case?lang=fr").text
        # adding more: only the new ones count
        add = other.get("/survivor/case?lang=en")
        more = device_hashes(png(4), "b.png", s)
        added = other.post(
            "/survivor/case/add",
            data={"token": token(add.text), "lang": "en", "hashes": json.dumps([*pairs, *more])},
        )
        assert added.status_code == 200 and f"{len(more)} new hashes were added" in added.text
        with s.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(SurvivorHash)).scalar_one() == 6


def test_wrong_passphrase_and_guessed_codes_are_limited_in_plain_words(db_url: str) -> None:
    with web_world(db_url) as ww:
        code = _register(ww, ww.client(), [("md5", "1" * 32)])
        web = ww.client(("198.51.100.7", 4000))
        statuses = []
        for _ in range(survivors.PER_CODE + 1):
            page = web.get("/survivor/sign-in?lang=en")
            r = web.post(
                "/survivor/sign-in",
                data={"token": token(page.text), "lang": "en", "code": code, "passphrase": "wrong guess!"},
            )
            statuses.append(r.status_code)
        assert statuses[:-1] == [401] * survivors.PER_CODE and statuses[-1] == 429
        assert "wait 15 minutes" in r.text
        guessed = web.post(
            "/survivor/sign-in",
            data={
                "token": token(web.get("/survivor/sign-in").text),
                "code": survivors.new_code(),
                "passphrase": PASS,
            },
        )
        assert guessed.status_code == 401 and "not right" in guessed.text
        with ww.world.services.engine.connect() as conn:
            dump = " ".join(str(tuple(r)) for r in conn.exec_driver_sql("SELECT * FROM survivor_attempts"))
        assert "198.51.100.7" not in dump


def test_bad_input_is_refused_and_nothing_is_lost(db_url: str) -> None:
    with web_world(db_url) as ww:
        web = ww.client()
        page = web.get("/survivor/register?lang=en")
        assert "<noscript>" in page.text and "nothing is sent" in page.text
        assert 'type="file"' in page.text and 'name="files"' not in page.text  # files never posted
        base = {"token": token(page.text), "lang": "en", "passphrase": PASS, "passphrase2": PASS}
        for hashes, words in [
            ("not json", "could not be read"),
            (json.dumps([["md5", "xyz"]]), "could not be read"),
            (json.dumps([]), "Choose at least one picture"),
        ]:
            r = web.post("/survivor/register", data={**base, "hashes": hashes, "contact": "me@x.example"})
            assert r.status_code == 422 and words in r.text
            assert 'value="me@x.example"' in r.text  # what was typed is kept
        short = web.post(
            "/survivor/register",
            data={
                **base,
                "passphrase": "short",
                "passphrase2": "short",
                "hashes": '[["md5","' + "0" * 32 + '"]]',
            },
        )
        assert short.status_code == 422 and "10 characters" in short.text
        differ = web.post(
            "/survivor/register",
            data={**base, "passphrase2": PASS + "x", "hashes": '[["md5","' + "0" * 32 + '"]]'},
        )
        assert differ.status_code == 422 and "not the same" in differ.text
        forged = web.post("/survivor/register", data={**base, "token": "1.2.3", "hashes": "[]"})
        assert forged.status_code == 400
        cross = web.post(
            "/survivor/register", data={**base, "hashes": "[]"}, headers={"sec-fetch-site": "cross-site"}
        )
        assert cross.status_code == 400
        assert web.get("/survivor/case/export").status_code == 303  # not signed in
        web.cookies.set("meldpunt_survivor", "1:forged.token.x", domain="meldpunt.test", path="/survivor")
        assert web.get("/survivor/case").status_code == 303
        with ww.world.services.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(SurvivorCase)).scalar_one() == 0


def test_a_registration_of_10000_hashes_goes_through_the_page(db_url: str) -> None:
    with web_world(db_url) as ww:
        pairs = [("sha256", f"{n:064x}") for n in range(10_000)]
        web = ww.client()
        _register(ww, web, pairs)
        assert "10000 hashes" in web.get("/survivor/case?lang=en").text


def test_timeline_and_withdraw_with_a_confirmation(db_url: str) -> None:
    with web_world(db_url) as ww:
        s = ww.world.services
        url = "http://images.example/secret/path/photo.png?id=42"
        item_id, _ = seed_item(s.engine, url, now=START)
        seed_location(s.engine, item_id, now=START, country="NL")
        data = png(9)
        pairs = device_hashes(data, "x.png", s)
        with s.engine.begin() as conn:
            conn.execute(
                insert(Medium).values(
                    item_id=item_id, url=url, url_key="k", md5=pairs[0][1], outcome="new", created_at=START
                )
            )
        web = ww.client()
        _register(ww, web, pairs, language="nl")
        settle(s)
        at = START + timedelta(days=1)
        with s.engine.begin() as conn:
            timeline.record(conn, EventKind.NOTICE_SENT, at=at, item_id=item_id)
            timeline.record(conn, EventKind.REMOVED, at=at + timedelta(days=4), item_id=item_id)
        page = web.get("/survivor/case?lang=en")
        kinds = [k for k in ("found", "notice_sent", "removed") if f'data-kind="{k}"' in page.text]
        assert kinds == ["found", "notice_sent", "removed"]
        assert page.text.index('data-kind="found"') < page.text.index('data-kind="removed"')
        assert "images.example" in page.text and "(hosting country: Netherlands)" in page.text
        assert "secret" not in page.text and "photo.png" not in page.text
        nl = web.get("/survivor/case?lang=nl").text
        assert "images.example" in nl and "verwijderd" in nl
        # withdraw asks first, then deletes everything and ends the session
        ask = web.post("/survivor/case/withdraw", data={"token": token(page.text), "lang": "en"})
        assert ask.status_code == 200 and "Are you sure" in ask.text
        assert s.engine.connect().execute(select(func.count()).select_from(SurvivorCase)).scalar_one() == 1
        gone = web.post(
            "/survivor/case/withdraw", data={"token": token(ask.text), "lang": "en", "confirm": "yes"}
        )
        assert gone.status_code == 200 and "deleted" in gone.text
        with s.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(SurvivorCase)).scalar_one() == 0
            assert conn.execute(select(func.count()).select_from(SurvivorHash)).scalar_one() == 0
        assert web.get("/survivor/case").status_code == 303
