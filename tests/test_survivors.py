"""Survivor cases (#12): registration and sign-in, matching both ways against media the walk
fetched from a loopback web of benign generated images, withdrawal, 10,000 hashes, the timeline
and the "there is news" message. Both databases."""

from __future__ import annotations

import secrets
import tracemalloc
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, insert, select

from meldpunt.act import survivors, timeline
from meldpunt.act.survivors import SignInFailed, SignInLimited, SurvivorError
from meldpunt.act.ticks import settle
from meldpunt.domain.acting import EventKind
from meldpunt.store.acting import OutboxMessage
from meldpunt.store.reports import Job, Medium
from meldpunt.store.survivors import SurvivorCase, SurvivorHash, SurvivorLink
from tests.helpers.acting import seed_item, seed_location
from tests.helpers.pipeline import jpeg, png, submit
from tests.helpers.smtp import SmtpSink
from tests.helpers.survivors import PASS, START, device_hashes, mail, world


def test_register_and_sign_in_guessed_codes_learn_nothing(db_url: str) -> None:
    with world(db_url) as w:
        s = w.services
        reg = survivors.register(s, passphrase=PASS, hashes_=device_hashes(png(5), "a.png", s))
        assert len(survivors.normal_code(reg.code)) == 24 and reg.hashes == 3
        with s.engine.connect() as conn:
            stored = conn.execute(select(SurvivorCase)).one()
        assert reg.code not in repr(tuple(stored)) and survivors.normal_code(reg.code) not in repr(
            tuple(stored)
        )
        assert stored.passphrase.startswith("$argon2id$")
        assert survivors.sign_in(s, reg.code.lower().replace("-", " "), PASS, "client-1") == reg.case_id
        with pytest.raises(SignInFailed) as wrong:
            survivors.sign_in(s, reg.code, "not the passphrase", "client-1")
        with pytest.raises(SignInFailed) as guessed:
            survivors.sign_in(s, survivors.new_code(), PASS, "client-1")
        assert str(wrong.value) == str(guessed.value)
        for _ in range(survivors.PER_CODE - 1):
            with pytest.raises(SignInFailed):
                survivors.sign_in(s, reg.code, "still wrong", "client-2")
        with pytest.raises(SignInLimited):  # even the right passphrase waits out the window
            survivors.sign_in(s, reg.code, PASS, "client-3")
        w.clock.advance(survivors.WINDOW.total_seconds() + 1)
        assert survivors.sign_in(s, reg.code, PASS, "client-3") == reg.case_id
        # a client guessing many codes is stopped too, and only keyed hashes were stored
        for _ in range(survivors.PER_CLIENT):
            with pytest.raises(SignInFailed):
                survivors.sign_in(s, survivors.new_code(), PASS, "203.0.113.9")
        with pytest.raises(SignInLimited):
            survivors.sign_in(s, reg.code, PASS, "203.0.113.9")
        with s.engine.connect() as conn:
            dump = " ".join(str(tuple(r)) for r in conn.exec_driver_sql("SELECT * FROM survivor_attempts"))
        assert "203.0.113.9" not in dump and "client" not in dump


def test_bad_input_is_refused_in_plain_words(db_url: str) -> None:
    with world(db_url) as w:
        s = w.services
        for kw, words in [
            ({"passphrase": "short", "hashes_": [("md5", "0" * 32)]}, "10 characters"),
            ({"passphrase": PASS, "hashes_": [("md5", "xyz")]}, "32 hexadecimal"),
            ({"passphrase": PASS, "hashes_": [("photodna", "0" * 32)]}, "unknown kind"),
            ({"passphrase": PASS, "hashes_": []}, "at least one"),
            ({"passphrase": PASS, "hashes_": [("md5", "0" * 32)], "contact": "nope"}, "e-mail"),
        ]:
            with pytest.raises(SurvivorError, match=words):
                survivors.register(s, **kw)  # type: ignore[arg-type]
        with s.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(SurvivorCase)).scalar_one() == 0


def test_matching_both_ways_with_the_walk(db_url: str) -> None:
    """Case A registers before the walk sees its image (new medium -> registrations); case B after
    (registration -> media already seen, by PDQ: the page serves a JPEG of B's PNG)."""
    with world(db_url) as w:
        s = w.services
        a = survivors.register(s, passphrase=PASS, hashes_=device_hashes(png(5), "a.png", s))
        settle(s)
        [one_new] = submit(s, w.url("/one-new"))
        [all_known] = submit(s, w.url("/all-known"))
        settle(s)
        b = survivors.register(
            s, passphrase=PASS, hashes_=[h for h in device_hashes(png(2), "b.png", s) if h[0] == "pdq"]
        )
        settle(s)
        with s.engine.connect() as conn:
            links = conn.execute(
                select(SurvivorLink.case_id, SurvivorLink.item_id, SurvivorLink.matched_by, Medium.url).join(
                    Medium, Medium.id == SurvivorLink.medium_id
                )
            ).all()
        got = {(c, i, by, u.rsplit("/", 1)[-1]) for c, i, by, u in links}
        assert (a.case_id, one_new, "md5", "new.png") in got
        assert (b.case_id, all_known, "pdq", "known-pdq.jpg") in got
        assert {c for c, *_ in got} == {a.case_id, b.case_id}
        # analysts learn "belongs to a registered case", never which
        assert survivors.registered_items(s.engine, [one_new, all_known, 999]) == {one_new, all_known}
        # adding a hash later matches it too
        assert survivors.add_hashes(s, a.case_id, device_hashes(jpeg(2), "c.jpg", s)[:1]) == 1
        settle(s)
        assert [f.kind for f in survivors.timeline(s.engine, a.case_id)] == ["found", "found"]
        assert all("/" not in f.domain for f in survivors.timeline(s.engine, a.case_id))


def test_withdrawal_during_a_match_and_after(db_url: str) -> None:
    with world(db_url) as w:
        s = w.services
        [item_id] = submit(s, w.url("/one-new"))
        settle(s)
        early = survivors.register(s, passphrase=PASS, hashes_=device_hashes(png(5), "a.png", s))
        assert survivors.withdraw(s, early.case_id)  # its match job is queued, not run
        settle(s)
        with s.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(SurvivorLink)).scalar_one() == 0
            assert conn.execute(select(Job.state).where(Job.kind == survivors.MATCH)).scalars().all() == [
                "done"
            ]
        late = survivors.register(
            s, passphrase=PASS, hashes_=device_hashes(png(5), "a.png", s), contact="me@mail.example"
        )
        settle(s)
        assert survivors.registered_items(s.engine, [item_id]) == {item_id}
        assert survivors.withdraw(s, late.case_id) and not survivors.withdraw(s, late.case_id)
        with s.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(SurvivorCase)).scalar_one() == 0
            assert conn.execute(select(func.count()).select_from(SurvivorHash)).scalar_one() == 0
            assert conn.execute(select(SurvivorLink.case_id)).scalars().all() == [None]  # anonymised
            assert conn.execute(select(func.count()).select_from(OutboxMessage)).scalar_one() == 0
        assert survivors.registered_items(s.engine, [item_id]) == set()
        with pytest.raises(SignInFailed):
            survivors.sign_in(s, late.code, PASS, "c")
        entries = [e for e in s.audit.entries() if e.action.startswith("survivor.")]
        assert [e.action for e in entries] == ["survivor.register", "survivor.withdraw"] * 2
        assert "me@mail.example" not in repr(entries) and survivors.normal_code(late.code) not in repr(
            entries
        )


def test_ten_thousand_hashes_in_bounded_memory(db_url: str) -> None:
    with world(db_url) as w:
        s = w.services
        [item_id] = submit(s, w.url("/one-new"))
        settle(s)
        many = [("sha256", secrets.token_hex(32)) for _ in range(5000)]
        many += [("pdq", secrets.token_hex(32)) for _ in range(4999)]
        many += device_hashes(png(5), "a.png", s)[:1]
        tracemalloc.start()
        reg = survivors.register(s, passphrase=PASS, hashes_=many)
        settle(s)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"10,000 hashes: peak {peak / 2**20:.1f} MiB traced")
        assert reg.hashes == 10_000 and peak < 64 * 2**20
        assert survivors.registered_items(s.engine, [item_id]) == {item_id}
        assert len(survivors.export(s, reg.case_id)["hashes"]) == 10_000


def test_timeline_from_a_seeded_takedown_and_news_by_mail(db_url: str, smtp_sink: SmtpSink) -> None:
    with world(db_url, mail=mail(smtp_sink.host, smtp_sink.port)) as w:
        s = w.services
        url = "http://images.example/secret/path/photo.png?id=42"
        item_id, _ = seed_item(s.engine, url, now=START)
        seed_location(s.engine, item_id, now=START, country="NL")
        data = png(9)
        with s.engine.begin() as conn:
            conn.execute(
                insert(Medium).values(
                    item_id=item_id,
                    url=url,
                    url_key="k",
                    md5=device_hashes(data, "x.png", s)[0][1],
                    outcome="new",
                    created_at=START,
                )
            )
        reg = survivors.register(
            s,
            passphrase=PASS,
            hashes_=device_hashes(data, "x.png", s),
            contact="me@mail.example",
            language="nl",
        )
        settle(s)
        [news] = smtp_sink.to("me@mail.example")
        assert "nieuws" in news.text.lower() and "images.example" not in news.text
        at = START + timedelta(days=1)
        with s.engine.begin() as conn:
            timeline.record(conn, EventKind.NOTICE_SENT, at=at, item_id=item_id)
            timeline.record(conn, EventKind.FORWARD_SENT, at=at, item_id=item_id)
            timeline.record(conn, EventKind.CHECKED_ONLINE, at=at + timedelta(days=3), item_id=item_id)
            timeline.record(conn, EventKind.REMOVED, at=at + timedelta(days=4), item_id=item_id)
        facts = [f.to_dict() for f in survivors.timeline(s.engine, reg.case_id)]
        assert [f["kind"] for f in facts] == ["found", "notice_sent", "forwarded", "still_online", "removed"]
        assert facts[0]["domain"] == "images.example" and facts[0]["country"] == "NL"
        assert facts[1]["country"] == facts[2]["country"] == "NL" and facts[3]["days"] == 4
        assert "secret" not in repr(facts) and "photo" not in repr(facts)
        settle(s)
        assert len(smtp_sink.to("me@mail.example")) == 2  # news again, once
        settle(s)
        assert len(smtp_sink.to("me@mail.example")) == 2
        exported = survivors.export(s, reg.case_id)
        assert exported["contact"] == "me@mail.example" and exported["language"] == "nl"


def test_only_consented_matching_hashes_travel_with_a_forward(db_url: str) -> None:
    with world(db_url) as w:
        s = w.services
        [item_id] = submit(s, w.url("/one-new"))
        settle(s)
        mine = device_hashes(png(5), "a.png", s)
        other = ("md5", "1" * 32)
        yes = survivors.register(s, passphrase=PASS, hashes_=[*mine, other], consent_forward=True)
        survivors.register(s, passphrase=PASS, hashes_=device_hashes(png(5), "a.png", s))  # no consent
        settle(s)
        got = survivors.consented_hashes(s.engine, item_id, s.settings.pdq_threshold)
        assert sorted(got) == sorted(mine) and other not in got
        survivors.withdraw(s, yes.case_id)
        assert survivors.consented_hashes(s.engine, item_id, s.settings.pdq_threshold) == []


def test_a_medium_never_hashed_does_not_stop_the_scan(db_url: str) -> None:
    """The scan's cursor waits for a medium still being fetched, and passes one whose item gave up."""
    from meldpunt.domain.reports import ItemState

    with world(db_url) as w:
        s = w.services
        data = png(11)
        md5 = device_hashes(data, "x.png", s)[0][1]
        survivors.register(s, passphrase=PASS, hashes_=[("md5", md5)])
        settle(s)
        ids = []
        for n, state in enumerate([ItemState.FETCHED, ItemState.FAILED]):
            item_id, _ = seed_item(s.engine, f"http://h{n}.example/", now=START, state=state)
            with s.engine.begin() as conn:
                conn.execute(insert(Medium).values(item_id=item_id, url="u", url_key="a", created_at=START))
                conn.execute(
                    insert(Medium).values(
                        item_id=item_id, url="v", url_key="b", md5=md5, outcome="new", created_at=START
                    )
                )
            ids.append(item_id)
        settle(s)
        assert survivors.registered_items(s.engine, ids) == set()  # waits for the first item's medium
        with s.engine.begin() as conn:
            conn.execute(delete(Medium).where(Medium.item_id == ids[0]))
        settle(s)
        assert survivors.registered_items(s.engine, ids) == {ids[1]}
