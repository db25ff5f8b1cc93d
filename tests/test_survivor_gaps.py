"""The survivor pages' bad-input gaps (#12), in process on both databases: sign-out needs the form
token, a guessed code gets the same answer after the same work as a wrong passphrase, a withdrawal
that commits while a match job runs leaves no link, fact or hash, and the page explains what is
sent (and what an edited copy means) in nl, fr and en before anything is sent."""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from meldpunt.act import survivors
from meldpunt.act.ticks import settle
from meldpunt.store.reports import Job
from meldpunt.store.survivors import SurvivorAttempt, SurvivorCase, SurvivorHash, SurvivorLink
from meldpunt.web.i18n import Translator
from meldpunt.web.survivors import MAX_VIDEO_BYTES
from tests.helpers.pipeline import png, submit
from tests.helpers.survivors import PASS, World, device_hashes, world
from tests.helpers.survivorweb import case_code, token, web_world
from tests.helpers.webclient import WebClient


def _register(web: WebClient, pairs: list[tuple[str, str]]) -> str:
    page = web.get("/survivor/register?lang=en")
    form = {"token": token(page.text), "lang": "en", "passphrase": PASS, "passphrase2": PASS}
    done = web.post("/survivor/register", data={**form, "hashes": json.dumps([list(p) for p in pairs])})
    assert done.status_code == 200, done.text
    return case_code(done.text)


def test_sign_out_needs_the_form_token(db_url: str) -> None:
    with web_world(db_url) as ww:
        web = ww.client()
        _register(web, [("md5", "2" * 32)])
        page = web.get("/survivor/case?lang=nl")
        assert page.status_code == 200
        assert web.post("/survivor/sign-out", data={"lang": "nl"}).status_code == 400
        forged = web.post("/survivor/sign-out", data={"token": "1.2.3", "lang": "nl"})
        cross = web.post(
            "/survivor/sign-out",
            data={"token": token(page.text), "lang": "nl"},
            headers={"sec-fetch-site": "cross-site"},
        )
        assert forged.status_code == cross.status_code == 400
        assert web.get("/survivor/case").status_code == 200  # still signed in
        out = web.post("/survivor/sign-out", data={"token": token(page.text), "lang": "nl"})
        assert out.status_code == 303 and out.headers["location"] == "/survivor?lang=nl"
        assert web.get("/survivor/case").status_code == 303


def test_a_refused_registration_keeps_the_hashes_made_on_the_device(sqlite_db: str) -> None:
    with web_world(sqlite_db) as ww:
        web = ww.client()
        page = web.get("/survivor/register?lang=en")
        pairs = [["md5", "5" * 32], ["sha256", "6" * 64]]
        form = {"token": token(page.text), "lang": "en", "passphrase": PASS, "passphrase2": PASS + "!"}
        r = web.post("/survivor/register", data={**form, "hashes": json.dumps(pairs)})
        assert r.status_code == 422 and "not the same" in r.text
        m = re.search(r'name="hashes" id="hashes" value="([^"]*)"', r.text)
        assert m and json.loads(html.unescape(m.group(1))) == pairs
        assert 'aria-invalid="true" aria-describedby="error-1"' in r.text  # read with its field


def test_a_guessed_code_gets_the_same_answer_and_work_as_a_wrong_passphrase(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified: list[str] = []
    real = survivors._HASHER

    class Counting:
        def hash(self, passphrase: str) -> str:
            return real.hash(passphrase)

        def verify(self, stored: str, passphrase: str) -> bool:
            verified.append(stored)
            return real.verify(stored, passphrase)

    monkeypatch.setattr(survivors, "_HASHER", Counting())
    with web_world(db_url) as ww:
        code = _register(ww.client(), [("md5", "3" * 32)])
        with ww.world.services.engine.connect() as conn:
            case_hash = conn.execute(select(SurvivorCase.passphrase)).scalar_one()
        answers = []
        for n, tried in enumerate([code, survivors.new_code()]):
            web = ww.client((f"198.51.100.{n + 1}", 4000))
            page = web.get("/survivor/sign-in?lang=fr")
            r = web.post(
                "/survivor/sign-in",
                data={"token": token(page.text), "lang": "fr", "code": tried, "passphrase": "not it at all"},
            )
            answers.append((r.status_code, re.sub(r'name="token" value="[^"]+"', "", r.text)))
        # the same answer, word for word, and the same argon2 work: one verification each, against a
        # hash of the same parameters (the dummy's are the library's defaults, as a case's)
        assert answers[0] == answers[1] and answers[0][0] == 401
        assert verified == [case_hash, survivors._dummy()]
        assert _params(verified[0]) == _params(verified[1])
        with ww.world.services.engine.connect() as conn:  # both failures counted alike
            failures = conn.execute(select(func.sum(SurvivorAttempt.failures))).scalar_one()
        assert failures == 4  # per code and per client, for each attempt


def _params(encoded: str) -> str:
    """``$argon2id$v=19$m=...,t=...,p=...``: what sets the work of a verification."""
    return "$".join(encoded.split("$")[:4])


def _matched_world(w: World) -> tuple[int, survivors.Registered]:
    """A medium the walk fetched and a registration whose match job is queued, not yet run."""
    s = w.services
    [item_id] = submit(s, w.url("/one-new"))
    settle(s)
    reg = survivors.register(s, passphrase=PASS, hashes_=device_hashes(png(5), "a.png", s))
    return item_id, reg


def _nothing_left(w: World, item_id: int, reg: survivors.Registered) -> None:
    s = w.services
    with s.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(SurvivorCase)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(SurvivorHash)).scalar_one() == 0
        links = conn.execute(select(SurvivorLink.case_id)).scalars().all()
        assert all(case_id is None for case_id in links)  # none points at the case
        assert conn.execute(select(Job.state).where(Job.kind == survivors.MATCH)).scalars().all() == ["done"]
    assert survivors.timeline(s.engine, reg.case_id) == []
    assert survivors.registered_items(s.engine, [item_id]) == set()
    with pytest.raises(survivors.SurvivorError):
        survivors.export(s, reg.case_id)


def _withdraw_in_thread(w: World, case_id: int) -> tuple[threading.Thread, list[Any]]:
    """The survivor's withdrawal on its own thread (its own connection), as a second web request."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(survivors.withdraw(w.services, case_id))
        except Exception as e:
            out.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def test_withdrawal_committed_while_the_match_reads_leaves_nothing(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The match job has read the case's hashes and is comparing them when the withdrawal commits
    on another connection: its link transaction then finds no case and links nothing."""
    with world(db_url) as w:
        item_id, reg = _matched_world(w)
        real: Callable[..., Any] = survivors._match_exact
        done: list[Any] = []

        def during(*args: Any, **kwargs: Any) -> Any:
            if not done:
                thread, out = _withdraw_in_thread(w, reg.case_id)
                thread.join(60)
                done.extend(out)
                assert done == [True], done
            return real(*args, **kwargs)

        monkeypatch.setattr(survivors, "_match_exact", during)
        settle(w.services)
        assert done == [True]
        _nothing_left(w, item_id, reg)


def test_withdrawal_waiting_on_the_match_s_link_leaves_nothing(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The match job holds the case (locked) and has written its link when the withdrawal starts
    on another connection: the withdrawal waits for the job's commit and then takes the link's
    case away with everything else."""
    with world(db_url) as w:
        item_id, reg = _matched_world(w)
        real = survivors._link
        started: list[tuple[threading.Thread, list[Any]]] = []

        def linking(conn: Any, case_id: int, found: Any, now: Any) -> int:
            linked = real(conn, case_id, found, now)
            assert linked == 1
            started.append(_withdraw_in_thread(w, reg.case_id))
            _wait_until_blocked(w, conn)
            return linked

        monkeypatch.setattr(survivors, "_link", linking)
        settle(w.services)
        [(thread, out)] = started
        thread.join(60)
        assert out == [True], out
        _nothing_left(w, item_id, reg)
        with w.services.engine.connect() as conn:  # the link the job wrote is kept, anonymised
            assert conn.execute(select(SurvivorLink.case_id)).scalars().all() == [None]


def _wait_until_blocked(w: World, conn: Any) -> None:
    """On PostgreSQL, until the withdrawal waits on the case's row lock (so the order is the one
    the test means); SQLite lets one writer in at a time, so the withdrawal waits either way."""
    if conn.dialect.name != "postgresql":
        return
    import time

    deadline = time.monotonic() + 30
    with w.services.engine.connect() as probe:
        while True:
            waiting = probe.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            ).scalar_one()
            # pg_stat_activity is read once per transaction and kept until it ends: end it, or the
            # loop keeps reading the first answer (seen under load, when the first read came before
            # the withdrawal reached the lock)
            probe.rollback()
            if waiting:
                return
            assert time.monotonic() < deadline, "the withdrawal never waited on the case"
            time.sleep(0.02)


@pytest.mark.parametrize("lang", ["nl", "fr", "en"])
def test_what_is_sent_is_explained_before_anything_is_sent(sqlite_db: str, lang: str) -> None:
    t = Translator(lang)
    with web_world(sqlite_db) as ww:
        web = ww.client()
        register = web.get(f"/survivor/register?lang={lang}").text
        about = web.get(f"/survivor?lang={lang}").text
    before = register[: register.index('id="files"')]
    for words in [
        "Only hashes are sent, never your pictures. An edited copy may not match.",
        "They stay on your device: only their hashes are sent.",
    ]:
        said = str(escape(t(words)))
        assert said in before, (lang, said)
        assert lang == "en" or said != words, f"{words!r} is not translated to {lang}"
    videos = str(
        t(
            "A video gets only exact hashes (MD5 and SHA-256), no picture hash: only an identical copy of the video can be found. A large video can take a few minutes to hash; a video larger than {limit} MB cannot be hashed here.",
            limit=MAX_VIDEO_BYTES // 1_000_000,
        )
    )
    assert str(escape(videos)) in before
    # the consent says the hotline ("we") passes reports on, not the survivor
    we_pass = {"nl": "die wij doorgeven", "fr": "que nous transmettons", "en": "reports we pass"}
    assert we_pass[lang] in register
    for words in [
        "Your pictures and videos never leave your device. Your browser turns each file into a few short codes (hashes), and only those codes are sent.",
        "An edited copy (cropped, with text added, heavily changed) may not match. A video is matched only as an exact copy.",
    ]:
        assert str(escape(t(words))) in about
