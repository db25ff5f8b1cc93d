"""Outcomes people can read (#8 §5): a decision reaches the copies waiting in the queue, a new hash
is matchable in every process within a second, a report of unreachable pages says so, and a
classified item is "classified" everywhere. Benign generated images on a loopback web only."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from meldpunt.banks.formats.base import HashRecord
from meldpunt.bootstrap import Services
from meldpunt.domain import Labels, SignalType
from meldpunt.domain.reports import ItemState, public_status
from meldpunt.index import PDQIndex
from meldpunt.pipeline.index_sync import SyncReport
from meldpunt.pipeline.intake import ReportIn, list_items, report_status, submit_report
from meldpunt.pipeline.matcher_cache import MatcherCache
from meldpunt.pipeline.rematch import enqueue_if_due
from meldpunt.pipeline.walk import Walker
from meldpunt.pipeline.worker import drain
from meldpunt.settings import Settings
from meldpunt.signals import MediaKind, Signals
from meldpunt.store.reports import Item, Medium, ReviewBlob
from meldpunt.stores.review import ReviewStore
from meldpunt.triage import Triage, TriageConfig
from meldpunt.web import WebConfig, create_app
from tests.helpers.fakeweb import Served
from tests.helpers.pipeline import Web, make_settings, png, seed_banks, sig
from tests.helpers.webclient import make_client
from tests.helpers.world import add_user

ILLEGAL = {"status": "baseline", "us": "A1", "age_band": "prepubescent"}
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def web() -> Iterator[tuple[Web, Served]]:
    w = Web()
    served = Served(w, "127.0.0.1")  # type: ignore[arg-type]
    yield w, served
    served.close()


def _user(services: Services, name: str, role: str = "analyst") -> str:
    return add_user(services.engine, name, role)


def _triage(services: Services) -> Triage:
    return Triage(
        services.engine,
        settings=services.settings,
        config=TriageConfig(hotline="test"),
        review_store=ReviewStore.from_settings(services.settings),
    )


def _state(services: Services, item_id: int) -> str:
    with services.engine.connect() as conn:
        return str(conn.execute(select(Item.state).where(Item.id == item_id)).scalar_one())


# --- 1. a decision reaches the waiting copies --------------------------------------------------


def test_a_final_decision_settles_the_waiting_copy_without_anyone_viewing_it(
    db_url: str, web: tuple[Web, Served], services_factory: Callable[[Settings], Services]
) -> None:
    _w, served = web
    services = services_factory(make_settings(db_url))
    first = submit_report(services, ReportIn(urls=[served.url("/late-1")]))
    copy = submit_report(services, ReportIn(urls=[served.url("/late-2")]))  # the same new image
    drain(services)
    [item], [twin] = first.item_ids, copy.item_ids
    assert _state(services, item) == _state(services, twin) == "needs_review"
    triage = _triage(services)
    before = triage.resolved_without_viewing()
    assert [e.item_id for e in triage.entries(_user(services, "ana"))] == [item, twin]

    triage.claim(item, "ana")
    [o] = triage.classify(item, "ana", ILLEGAL)
    assert o.stage == "second"
    assert _state(services, twin) == "needs_review"  # a first opinion banks nothing
    triage.claim(item, _user(services, "ben"))
    [o] = triage.classify(item, "ben", ILLEGAL)
    assert o.stage == "final"

    drain(services)  # the workers, not the request that decided, match the queue again
    assert _state(services, twin) == "known"
    assert _state(services, item) == "classified"
    assert [e.item_id for e in triage.entries("ana")] == []
    after = triage.resolved_without_viewing()
    assert after.known == before.known + 1
    assert (after.classified, after.awaiting) == (1, 0)
    with services.engine.connect() as conn:
        outcomes = conn.execute(select(Medium.outcome).where(Medium.item_id == twin)).scalars().all()
        blobs = conn.execute(
            select(ReviewBlob.medium_id)
            .join(Medium, Medium.id == ReviewBlob.medium_id)
            .where(Medium.item_id == twin)
        ).all()
    assert outcomes == ["known"] and blobs == []  # no review copy of what a list knows
    # one rule for the reporter, whoever knew it: an analyst's illegal decision, or the list
    assert report_status(services, first.code).state == "action_taken"  # type: ignore[union-attr]
    assert report_status(services, copy.code).state == "action_taken"  # type: ignore[union-attr]
    # the job ran once; looking again changes nothing
    assert drain(services) == 0


def test_an_import_settles_waiting_items_and_a_hint_list_does_not(
    sqlite_db: str, web: tuple[Web, Served], services_factory: Callable[[Settings], Services]
) -> None:
    _w, served = web
    services = services_factory(make_settings(sqlite_db))
    [item] = submit_report(services, ReportIn(urls=[served.url("/late-1")])).item_ids
    drain(services)
    with services.engine.connect() as conn:
        m = conn.execute(select(Medium).where(Medium.item_id == item)).one()
    _import(services, "partner-hints", "hint", [(SignalType.MD5, m.md5)])
    drain(services)
    assert _state(services, item) == "needs_review"  # a hint decides nothing
    _import(services, "benign", "ignore", [(SignalType.PDQ, m.pdq)])
    drain(services)
    assert _state(services, item) == "known"


def test_an_item_matched_just_before_a_change_is_matched_again_after_it(
    db_url: str, web: tuple[Web, Served], services_factory: Callable[[Settings], Services]
) -> None:
    """A worker's matcher is up to a second behind: an item it leaves for review after the change's
    rematch has run (nothing was waiting then) gets a rematch of its own."""
    _w, served = web
    services = services_factory(make_settings(db_url, matcher_refresh_s=1.0))
    [item] = submit_report(services, ReportIn(urls=[served.url("/late-1")])).item_ids
    with Walker(services, worker="slow", clock=FakeClock()) as walker:  # its clock stands still
        fetch = walker.claim()
        assert fetch is not None and walker.run_job(fetch).outcome == "fetched"
        walker.matchers.get()  # the matcher as it was before the change
        _import(services, "partner", "auto", [(SignalType.PDQ, sig(png(7), "7.png", services.settings)[1])])
        assert enqueue_if_due(services.engine) is None  # nothing waits yet: no job, version noted
        media_job = walker.claim()
        assert media_job is not None and media_job.kind == "media"
        assert walker.run_job(media_job).outcome == "new"  # the stale matcher did not know it
    assert _state(services, item) == "needs_review"
    drain(services)
    assert _state(services, item) == "known"


def _import(services: Services, name: str, policy: str, records: list[tuple[SignalType, str]]) -> None:
    recs = [HashRecord(t, v, Labels(category="A"), n) for n, (t, v) in enumerate(records, 1)]
    services.banks.import_records(
        name,
        recs,
        source_name=f"{name}.txt",
        source_sha256=hashlib.sha256(name.encode()).hexdigest(),
        fmt="plain",
        policy=policy,
    )


# --- 2. a new hash is matchable everywhere within a second ------------------------------------


@dataclass
class FakeClock:
    t: float = 1000.0

    def __call__(self) -> float:
        return self.t


class CountingServices(Services):
    """Services that count how often the whole PDQ index is opened."""

    opened = 0

    def pdq_index(self, progress: Callable[[int], None] | None = None) -> tuple[PDQIndex, SyncReport]:
        self.opened += 1
        return super().pdq_index(progress)


def _image(pdq: str) -> Signals:
    return Signals(
        path="x.png", size=1, md5="", sha1="", sha256="", kind=MediaKind.IMAGE, pdq=pdq, pdq_quality=100
    )


def test_an_import_in_one_process_is_matched_by_another_within_a_second(db_url: str, tmp_path: Any) -> None:
    settings = make_settings(db_url)
    with ExitStack() as stack:
        a = CountingServices(settings)
        b = CountingServices(settings)
        stack.callback(a.close)
        stack.callback(b.close)
        old = f"{0x1234:064x}"
        _import(a, "start", "auto", [(SignalType.PDQ, old)])
        clock = FakeClock()
        cache = MatcherCache(b, 1.0, clock=clock)
        new = "f" * 32 + "0" * 32
        assert cache.get().match(_image(new)) == []
        assert [m.bank for m in cache.get().match(_image(old))] == ["start"]

        _import(a, "partner", "auto", [(SignalType.PDQ, new)])  # in the other process
        clock.t += 0.5
        assert cache.get().match(_image(new)) == []  # not looked yet: at most once a second
        clock.t += 0.5
        assert [m.bank for m in cache.get().match(_image(new))] == ["partner"]
        assert [m.bank for m in cache.get().match(_image(old))] == ["start"]
        assert b.opened == 1, "the new hash was taken in, not the whole index opened again"

        # a bank's policy set to ignore and a deletion are seen the same way
        a.banks.configure("partner", policy="ignore")
        clock.t += 1.0
        assert [m.policy for m in cache.get().match(_image(new))] == ["ignore"]
        a.banks.delete_bank("partner")
        clock.t += 1.0
        assert cache.get().match(_image(new)) == []
        assert b.opened == 2  # deleted PDQ entries: the index is opened again (epoch)


def test_the_web_and_the_workers_use_one_matcher_cache() -> None:
    from meldpunt.pipeline import walk
    from meldpunt.web import context

    assert context.MatcherCache is walk.MatcherCache is MatcherCache  # type: ignore[attr-defined]  # re-exports


# --- 3. every URL unavailable -------------------------------------------------------------------


def test_a_report_of_unreachable_pages_says_so_in_plain_words(
    sqlite_db: str, web: tuple[Web, Served], services_factory: Callable[[Settings], Services]
) -> None:
    _w, served = web
    services = services_factory(make_settings(sqlite_db))
    seed_banks(services)
    dead = submit_report(services, ReportIn(urls=[served.url("/no-media"), served.url("/gone-404")]))
    mixed = submit_report(services, ReportIn(urls=[served.url("/gone-too"), served.url("/all-known")]))
    drain(services)
    assert report_status(services, dead.code).state == "unavailable"  # type: ignore[union-attr]
    # one page gone, the other known from a list: the list decides
    assert report_status(services, mixed.code).state == "action_taken"  # type: ignore[union-attr]
    words = {
        "en": "We could not open the pages you reported",
        "nl": "We konden de pagina's die u meldde niet openen",
        "fr": "Nous n'avons pas pu ouvrir les pages que vous avez signalées",
    }
    app = create_app(services, WebConfig())
    for client in make_client(app):
        for lang, text in words.items():
            page = client.get(f"/status/{dead.code}?lang={lang}")
            assert page.status_code == 200
            assert text in page.text.replace("&#39;", "'")
            assert "assessing" not in page.text


def test_public_words_follow_one_rule() -> None:
    K, C, R, U, F = (
        ItemState.KNOWN,
        ItemState.CLASSIFIED,
        ItemState.NEEDS_REVIEW,
        ItemState.UNAVAILABLE,
        ItemState.FAILED,
    )
    assert public_status([(ItemState.RECEIVED, False)]) == "received"
    assert public_status([(R, False), (K, True)]) == "assessing"  # one still waits for an analyst
    assert public_status([(C, True)]) == public_status([(K, True)]) == "action_taken"
    assert public_status([(C, False)]) == public_status([(K, False)]) == "assessed"
    assert public_status([(U, False), (F, False)]) == "unavailable"
    assert public_status([(U, False), (C, False)]) == "assessed"


# --- 4. classified everywhere -----------------------------------------------------------------


def test_a_classified_item_is_classified_in_lists_and_statistics(
    db_url: str, web: tuple[Web, Served], services_factory: Callable[[Settings], Services]
) -> None:
    _w, served = web
    services = services_factory(make_settings(db_url))
    [item] = submit_report(services, ReportIn(urls=[served.url("/one-new")])).item_ids
    drain(services)
    triage = _triage(services)
    triage.claim(item, _user(services, "ana"))
    [o] = triage.classify(item, "ana", {"status": "not_illegal"})
    assert o.stage == "final"
    assert _state(services, item) == "classified"
    assert [i.state for i in list_items(services) if i.id == item] == ["classified"]
    assert list_items(services, state="needs_review") == []
    counts = triage.resolved_without_viewing()
    assert (counts.classified, counts.awaiting) == (1, 0)
    # a senior may still correct it
    triage.correct(item, _user(services, "sam", "senior"), ILLEGAL)
    assert _state(services, item) == "classified"


# --- EXIF-oriented photos: the stored pixels' hash in rematches and in the own bank ---------------


def test_a_waiting_phone_photo_is_settled_by_its_stored_pixels_hash_and_banked_with_both(
    db_url: str, services_factory: Callable[[Settings], Services]
) -> None:
    """A partner's list made with HMA holds the stored-pixel PDQ of a phone photo already waiting in
    the queue: the rematch finds it by that hash too. And when analysts decide on such a photo, the
    own bank gets both of its PDQ hashes, so partners who hash stored pixels match the export."""
    from tests.helpers.oriented import stored_pixels_pdq
    from tests.helpers.pipeline import PhoneWeb

    w = PhoneWeb()
    served = Served(w, "127.0.0.1")  # type: ignore[arg-type]
    try:
        services = services_factory(make_settings(db_url))
        [waiting] = submit_report(services, ReportIn(urls=[served.url("/phones")])).item_ids
        drain(services)
        assert _state(services, waiting) == "needs_review"
        turned = [p for p in w.files if not p.endswith("o1.jpg")]
        stored = {stored_pixels_pdq(w.files[p]) for p in turned}
        _import(services, "hma-partner", "auto", [(SignalType.PDQ, h) for h in sorted(stored)])
        drain(services)
        with services.engine.connect() as conn:
            rows = conn.execute(select(Medium.url, Medium.outcome).where(Medium.item_id == waiting)).all()
        outcomes = {url.rsplit("/", 1)[1]: outcome for url, outcome in rows}
        assert outcomes == {"o3.jpg": "known", "o6.jpg": "known", "o8.jpg": "known", "o1.jpg": "new"}

        triage = _triage(services)
        triage.claim(waiting, _user(services, "ana"))
        triage.classify(waiting, "ana", ILLEGAL)
        triage.claim(waiting, _user(services, "ben"))
        [o] = triage.classify(waiting, "ben", ILLEGAL)
        assert o.stage == "final"
        triage.sync_bank()
        with services.engine.connect() as conn:
            [(upright, stored_o1)] = conn.execute(
                select(Medium.pdq, Medium.pdq_stored).where(
                    Medium.item_id == waiting, Medium.url.like("%o1.jpg")
                )
            ).all()
        assert stored_o1 is None  # orientation 1: one hash
        banked = {v for st, v, _ in services.banks.export_entries("hotline-own") if st is SignalType.PDQ}
        assert upright in banked
    finally:
        served.close()


def test_the_own_bank_gets_both_hashes_of_a_phone_photo(
    sqlite_db: str, services_factory: Callable[[Settings], Services]
) -> None:
    from tests.helpers.pipeline import PhoneWeb

    w = PhoneWeb()
    served = Served(w, "127.0.0.1")  # type: ignore[arg-type]
    try:
        services = services_factory(make_settings(sqlite_db))
        [item] = submit_report(services, ReportIn(urls=[served.url("/phones")])).item_ids
        drain(services)
        triage = _triage(services)
        triage.claim(item, _user(services, "ana"))
        triage.classify(item, "ana", ILLEGAL)
        triage.claim(item, _user(services, "ben"))
        triage.classify(item, "ben", ILLEGAL)
        triage.sync_bank()
        with services.engine.connect() as conn:
            rows = conn.execute(
                select(Medium.pdq, Medium.pdq_stored, Medium.orientation).where(Medium.item_id == item)
            ).all()
        banked = {v for st, v, _ in services.banks.export_entries("hotline-own") if st is SignalType.PDQ}
        assert {r.pdq for r in rows} <= banked
        assert {r.pdq_stored for r in rows if r.orientation} <= banked
        assert len({r.pdq_stored for r in rows if r.orientation}) == 3
    finally:
        served.close()
