"""Survivors probed from outside (#12), through the web doors (cookies, forms, the analyst's item
page) and the partner channel's handlers, on both databases: a session cookie replayed after
withdrawal, a flat picture's PDQ, sign-in guesses fired at once, from one IPv6 /64, and the
attempt table's size; hostile domains from a partner; what an analyst sees; scan and news in
several workers at once; survivor and staff cookies crossed; what is left after withdrawal."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from contextlib import ExitStack
from types import SimpleNamespace

import pytest
from PIL import Image
from sqlalchemy import delete, func, insert, select, update

from meldpunt.act import partners, survivor_abroad, survivors
from meldpunt.act.ticks import settle
from meldpunt.store.acting import OutboxMessage
from meldpunt.store.models import Meta
from meldpunt.store.survivors import SCAN_CURSOR, SurvivorAttempt, SurvivorCase, SurvivorLink
from meldpunt.store.survivors_abroad import SurvivorRefOut
from tests.helpers.pipeline import page, png, submit
from tests.helpers.smtp import SmtpSink
from tests.helpers.survivors import PASS, device_hashes, mail, world
from tests.helpers.survivorweb import case_code, token, web_world
from tests.helpers.webclient import WebClient, _database_text
from tests.helpers.workspace import _workspace


def _register(web: WebClient, pairs: list[tuple[str, str]]) -> str:
    page_ = web.get("/survivor/register?lang=en")
    form = {"token": token(page_.text), "lang": "en", "passphrase": PASS, "passphrase2": PASS}
    done = web.post("/survivor/register", data={**form, "hashes": json.dumps([list(p) for p in pairs])})
    assert done.status_code == 200, done.text
    return case_code(done.text)


def test_a_withdrawn_case_s_cookie_does_not_open_the_next_case(db_url: str) -> None:
    """SQLite gives a new case the id of the last withdrawn one: the old cookie must stay dead."""
    with web_world(db_url) as ww:
        old = ww.client()
        _register(old, [("md5", "1" * 32)])
        stolen = old.cookies.get("meldpunt_survivor")
        assert stolen
        case = old.get("/survivor/case?withdraw=1&lang=en")
        gone = old.post(
            "/survivor/case/withdraw", data={"token": token(case.text), "lang": "en", "confirm": "yes"}
        )
        assert gone.status_code == 200
        new = ww.client()
        _register(new, [("sha256", "2" * 64)])
        thief = ww.client()
        thief.cookies.set("meldpunt_survivor", stolen, path="/survivor")
        assert thief.get("/survivor/case?lang=en").status_code == 303
        assert thief.get("/survivor/case/export").status_code == 303
        assert new.get("/survivor/case/export").json()["hashes"][0]["value"] == "2" * 64


def _flat_png(shade: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (160, 120), (shade, shade, shade)).save(buf, format="PNG")
    return buf.getvalue()


def test_a_flat_picture_s_pdq_links_the_case_to_no_flat_picture(db_url: str) -> None:
    """A flat picture's PDQ (quality 0) is what every flat picture of its shade hashes to: a
    survivor who hashed a black or white picture on the device (or posts all zeros) must not be
    linked to every such placeholder the walk sees. The bank matcher skips media PDQ under
    ``pdq_min_quality``; survivor matching must too."""
    with world(db_url) as w:
        s = w.services
        w.web.files["/img/flat-1.png"] = (_flat_png(0), "image/png")  # a black placeholder
        w.web.files["/img/flat-2.png"] = (_flat_png(255), "image/png")
        w.web.pages["/flat"] = page("/img/flat-1.png", "/img/flat-2.png")
        w.web.pages["/flat-too"] = page("/img/flat-2.png")
        before = submit(s, w.url("/flat"))
        settle(s)
        # a black and a white picture on the device (a dark photo, a blank scan: files a person
        # may well choose), their PDQ only (the exact hashes differ from the web's files)
        flat = [p for shade in (0, 255) for p in device_hashes(_flat_png(shade), "f.jpg", s) if p[0] == "pdq"]
        reg = survivors.register(s, passphrase=PASS, hashes_=[("pdq", "0" * 64), *flat])
        real = survivors.register(s, passphrase=PASS, hashes_=device_hashes(png(5), "a.png", s)[2:])
        settle(s)
        after = submit(s, w.url("/flat-too"), w.url("/one-new"))
        settle(s)
        assert survivors.registered_items(s.engine, before + after) == {after[1]}
        assert survivors.timeline(s.engine, reg.case_id) == []
        assert [f.kind for f in survivors.timeline(s.engine, real.case_id)] == ["found"]


def test_sign_in_guesses_fired_at_once_stay_within_the_limit(db_url: str) -> None:
    """Many wrong passphrases for one code at the same moment: at most PER_CODE are checked."""
    with world(db_url) as w:
        s = w.services
        reg = survivors.register(s, passphrase=PASS, hashes_=[("md5", "3" * 32)])
        outcomes: list[str] = []
        lock = threading.Lock()
        start = threading.Barrier(12)

        def guess(n: int) -> None:
            start.wait()
            try:
                survivors.sign_in(s, reg.code, f"wrong guess {n}", f"client-{n}")
                got = "in"
            except survivors.SignInLimited:
                got = "limited"
            except survivors.SignInFailed:
                got = "failed"
            with lock:
                outcomes.append(got)

        threads = [threading.Thread(target=guess, args=(n,)) for n in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert outcomes.count("failed") <= survivors.PER_CODE, outcomes
        assert outcomes.count("in") == 0
        with pytest.raises(survivors.SignInLimited):  # the right passphrase waits too
            survivors.sign_in(s, reg.code, PASS, "client-x")
        w.clock.advance(survivors.WINDOW.total_seconds() + 1)
        assert survivors.sign_in(s, reg.code, PASS, "client-x") == reg.case_id


def test_the_attempt_table_stays_bounded_under_many_guessed_codes(db_url: str) -> None:
    """Each guessed code leaves a row; rows of windows that ended are dropped as new ones come."""
    with world(db_url) as w:
        s = w.services
        for round_ in range(3):
            for n in range(8):
                with pytest.raises(survivors.SignInFailed):
                    survivors.sign_in(s, f"GUESS-{round_}-{n}", "not the passphrase", f"c{round_}-{n}")
            w.clock.advance(survivors.WINDOW.total_seconds() + 1)
        with pytest.raises(survivors.SignInFailed):
            survivors.sign_in(s, "LAST-GUESS", "not the passphrase", "last")
        with s.engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(SurvivorAttempt)).scalar_one()
            links = conn.execute(select(func.count()).select_from(SurvivorLink)).scalar_one()
        assert rows == 2, rows  # only the last guess's code and client: ended windows are gone
        assert links == 0


@pytest.mark.parametrize(
    "domain",
    ["nul\x00.test", "esc\x1b[31m\n.test", "\u202emoc.elpmaxe"],
)
def test_a_partner_s_finding_with_a_hostile_domain_is_refused_in_words(db_url: str, domain: str) -> None:
    """A partner's ``survivor_found`` names a domain for the survivor's timeline: a NUL cannot be
    stored in PostgreSQL text (the handler failed on a database error instead of refusing), and
    control or direction-override characters would show the survivor something else than the
    name. No domain name holds them: the message is refused, the sender sees why."""
    with world(db_url) as w:
        s = w.services
        case = survivors.register(s, passphrase=PASS, hashes_=[("md5", "1" * 32)], consent_forward=True)
        ref = "a" * 32
        with s.engine.begin() as conn:
            conn.execute(
                insert(SurvivorRefOut).values(
                    case_id=case.case_id, partner="nl-hotline", ref=ref, created_at=s.clock.now()
                )
            )
        sender = SimpleNamespace(name="nl-hotline", countries=["NL"])
        body = {"ref": ref, "finding": "b" * 32, "at": s.clock.now().isoformat(), "country": "nl"}
        with pytest.raises(partners.Refused, match="domain"), s.engine.begin() as conn:
            survivor_abroad.on_found(s, conn, sender, {**body, "domain": domain}, None)
        with pytest.raises(partners.Refused, match="country"), s.engine.begin() as conn:
            survivor_abroad.on_found(
                s, conn, sender, {**body, "domain": "x.test", "country": domain[:8]}, None
            )
        with s.engine.begin() as conn:  # a right one, an IDN among them, goes through
            survivor_abroad.on_found(s, conn, sender, {**body, "domain": "bücher.例え.test"}, None)
        assert [f.domain for f in survivors.timeline(s.engine, case.case_id)] == ["bücher.例え.test"]


def test_an_analyst_sees_a_registered_case_and_nothing_of_whose(db_url: str) -> None:
    """The item page says that an item belongs to a registered case (a person to protect) and
    holds nothing of the case: no id, label, code, hash or contact; after withdrawal not even that."""
    with ExitStack() as stack:
        ws = _workspace(db_url, stack)
        s = ws.staff.app.state.ctx.services
        iid = ws.item(images=1)
        [medium] = ws.media(iid)
        reg = survivors.register(
            s, passphrase=PASS, hashes_=[("md5", "7" * 32)], contact="me@mail.example", consent_forward=True
        )
        with s.engine.begin() as conn:
            conn.execute(
                insert(SurvivorLink).values(
                    case_id=reg.case_id, medium_id=medium, item_id=iid, matched_by="md5", at=s.clock.now()
                )
            )
        ana = ws.user("ana", "analyst")
        page_ = ana.get(f"/items/{iid}")
        assert page_.status_code == 200 and 'id="registered-case"' in page_.text
        for secret in (reg.code, survivors.normal_code(reg.code), survivors.label(s, reg.case_id), "7" * 32):
            assert secret not in page_.text
        assert "me@mail.example" not in page_.text and "survivor_case" not in page_.text
        survivors.withdraw(s, reg.case_id)
        assert 'id="registered-case"' not in ana.get(f"/items/{iid}").text


def _at_once(n: int, fn: Callable[[], int]) -> list[int]:
    start = threading.Barrier(n)
    out: list[int] = []
    lock = threading.Lock()

    def run() -> None:
        start.wait()
        got = fn()
        with lock:
            out.append(got)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_scan_and_news_in_several_workers_at_once_link_and_tell_once(db_url: str) -> None:
    """tick_scan and tick_news run in every worker: four at once record each link once and queue
    one news message (the cursor and ``notified_through`` move by conditional updates)."""
    with world(db_url) as w:
        s = w.services
        reg = survivors.register(
            s, passphrase=PASS, hashes_=device_hashes(png(5), "a.png", s), contact="me@mail.example"
        )
        [item_id] = submit(s, w.url("/one-new"))
        settle(s)
        with s.engine.begin() as conn:  # as if the media were new: the scan has not seen them
            conn.execute(delete(SurvivorLink))
            conn.execute(update(Meta).where(Meta.name == SCAN_CURSOR).values(value=0))
            conn.execute(update(SurvivorCase).values(notified_through=0))
            conn.execute(delete(OutboxMessage).where(OutboxMessage.purpose == survivors.NEWS))
        _at_once(4, lambda: survivors.tick_scan(s))
        _at_once(4, lambda: survivors.tick_news(s))
        with s.engine.connect() as conn:
            links = conn.execute(select(SurvivorLink.item_id, SurvivorLink.case_id)).all()
            news = conn.execute(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.purpose == survivors.NEWS)
            ).scalar_one()
        assert [tuple(r) for r in links] == [(item_id, reg.case_id)] and news == 1


def test_survivor_and_staff_sessions_do_not_open_each_other(sqlite_db: str) -> None:
    """A survivor's cookie is HttpOnly, SameSite=Strict and only sent to /survivor; put in the
    staff cookie's place it opens no staff page; a staff session opens no survivor case."""
    with ExitStack() as stack:
        ws = _workspace(sqlite_db, stack)
        ana = ws.user("ana", "analyst")
        assert ana.get("/test/queue").status_code == 200
        assert ana.get("/survivor/case").status_code == 303  # staff is not a survivor
        survivor = ws.staff.client()
        page_ = survivor.get("/survivor/register?lang=en")
        form = {"token": token(page_.text), "lang": "en", "passphrase": PASS, "passphrase2": PASS}
        done = survivor.post("/survivor/register", data={**form, "hashes": json.dumps([["md5", "9" * 32]])})
        flags = done.headers["set-cookie"].lower()
        assert "httponly" in flags and "samesite=strict" in flags and "path=/survivor" in flags
        value = survivor.cookies.get("meldpunt_survivor")
        assert value
        forger = ws.staff.client()
        forger.cookies.set("mp_staff", value)
        assert forger.get("/test/queue").status_code in (303, 401, 403)
        stolen = ana.cookies.get("mp_staff")
        assert stolen
        other = ws.staff.client()
        other.cookies.set("meldpunt_survivor", stolen, path="/survivor")
        assert other.get("/survivor/case").status_code == 303


def test_one_ipv6_subscriber_gets_one_client_limit(sqlite_db: str) -> None:
    """A subscriber holds a whole IPv6 /64: counted per address, each guess from a new address
    was never limited. Guesses from one /64 share the per-client limit; another /64 does not."""
    with web_world(sqlite_db) as ww:
        statuses = []
        for n in range(survivors.PER_CLIENT + 1):
            web = ww.client(("2001:db8:0:7::" + format(n + 1, "x"), 4000 + n))
            page_ = web.get("/survivor/sign-in?lang=en")
            form = {"token": token(page_.text), "lang": "en", "passphrase": "not the passphrase"}
            statuses.append(web.post("/survivor/sign-in", data={**form, "code": f"GUESS{n:04d}"}).status_code)
        assert statuses == [401] * survivors.PER_CLIENT + [429]
        web = ww.client(("2001:db8:0:8::1", 5000))
        page_ = web.get("/survivor/sign-in?lang=en")
        form = {"token": token(page_.text), "lang": "en", "passphrase": "not the passphrase", "code": "OTHER"}
        assert web.post("/survivor/sign-in", data=form).status_code == 401


def test_after_withdrawal_no_table_holds_the_contact_or_the_case(db_url: str, smtp_sink: SmtpSink) -> None:
    """Registered through the page, found, told by mail, withdrawn through the page: no row of
    any table holds the contact, the code's keyed hash or the passphrase's hash any more."""
    with web_world(db_url, mail=mail(smtp_sink.host, smtp_sink.port)) as ww:
        s = ww.world.services
        web = ww.client()
        page_ = web.get("/survivor/register?lang=en")
        form = {"token": token(page_.text), "lang": "en", "passphrase": PASS, "passphrase2": PASS}
        pairs = device_hashes(png(5), "a.png", s)
        done = web.post(
            "/survivor/register",
            data={**form, "contact": "me@mail.example", "hashes": json.dumps([list(p) for p in pairs])},
        )
        assert done.status_code == 200
        submit(s, ww.world.url("/one-new"))
        settle(s)
        assert len(smtp_sink.to("me@mail.example")) == 1
        with s.engine.connect() as conn:
            [(code_hash, passphrase)] = conn.execute(
                select(SurvivorCase.code_hash, SurvivorCase.passphrase)
            ).all()
        case = web.get("/survivor/case?withdraw=1&lang=en")
        gone = web.post(
            "/survivor/case/withdraw", data={"token": token(case.text), "lang": "en", "confirm": "yes"}
        )
        assert gone.status_code == 200
        settle(s)
        text = _database_text(s)
        for secret in ("me@mail.example", code_hash, code_hash[:32], passphrase):
            assert secret not in text
