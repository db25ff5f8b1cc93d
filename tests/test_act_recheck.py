"""Re-checks until gone (#10): fake providers on loopback that comply, never do, relapse, move,
drop the domain, swap or re-encode the image, empty the page or fall over; driven by the injected
clock and ``settle``, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update

from meldpunt.act import recheck
from meldpunt.act.ticks import settle
from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock
from meldpunt.domain.acting import EventKind, TakedownState
from meldpunt.pipeline.intake import report_status
from meldpunt.pipeline.jobs import JobQueue
from meldpunt.pipeline.walk import Walker
from meldpunt.store.acting import ActionEvent, Location, Notice, NoticeItem, Takedown
from meldpunt.store.reports import Item, Job
from tests.helpers.pipeline import make_settings
from tests.helpers.providers import Providers, Watched, install, seed_watched

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


@pytest.fixture
def world(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Services, ManualClock, Providers]]:
    """Services on the injected clock, and the fake providers' two machines behind the walk's
    fetcher (through the resolver hook)."""
    clock = ManualClock(START)
    services = Services(make_settings(db_url), clock=clock)
    web = Providers(clock)
    install(monkeypatch, web)
    try:
        yield services, clock, web
    finally:
        web.close()
        services.close()


def td(services: Services, takedown_id: int) -> Any:
    with services.engine.connect() as conn:
        return conn.execute(select(Takedown).where(Takedown.id == takedown_id)).one()


def kinds(services: Services, item_id: int) -> list[str]:
    with services.engine.connect() as conn:
        return list(
            conn.execute(
                select(ActionEvent.kind).where(ActionEvent.item_id == item_id).order_by(ActionEvent.id)
            ).scalars()
        )


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def run_until(
    services: Services, clock: ManualClock, done: Callable[[], bool], *, step_minutes: int, hours: float
) -> None:
    """Settle, move the clock on by ``step_minutes``, until ``done()`` or ``hours`` have passed."""
    end = clock.now() + timedelta(hours=hours)
    settle(services)
    while not done() and clock.now() < end:
        clock.advance(step_minutes * 60)
        settle(services)


def watch(services: Services, provider: Any, n: int, **kw: Any) -> Watched:
    kw.setdefault("noticed_at", START)
    kw.setdefault("reported_at", START - timedelta(hours=3))
    return seed_watched(services, provider, n, **kw)


def test_a_provider_that_complies_gets_the_item_removed_with_its_time_to_removal(
    world: tuple[Services, ManualClock, Providers],
) -> None:
    services, clock, web = world
    p = web.add("complies", "complies", after=timedelta(hours=5))
    p.notice(START)
    w = watch(services, p, 1)
    assert report_status(services, w.code) is not None
    assert report_status(services, w.code).state == "action_taken"  # type: ignore[union-attr]

    run_until(
        services, clock, lambda: td(services, w.takedown_id).state == "removed", step_minutes=20, hours=30
    )

    t = td(services, w.takedown_id)
    assert t.state == TakedownState.REMOVED.value
    removed_at = aware(t.removed_at)
    # the first miss: the first re-check after the provider acted (at START + 5 h; re-checks come
    # every 1-4 h, on the clock's 20-minute steps), the time of the first "checked_missing" line
    assert START + timedelta(hours=5) <= removed_at <= START + timedelta(hours=9, minutes=20)
    with services.engine.connect() as conn:
        first_miss = conn.execute(
            select(func.min(ActionEvent.at)).where(
                ActionEvent.item_id == w.item_id, ActionEvent.kind == EventKind.CHECKED_MISSING.value
            )
        ).scalar_one()
    assert aware(first_miss) == removed_at
    assert t.minutes_from_notice == int((removed_at - START).total_seconds() // 60)
    assert t.minutes_from_report == t.minutes_from_notice + 180
    assert t.removal_reason.startswith("404")
    assert t.misses == 3 and t.next_check_at is None
    events = kinds(services, w.item_id)
    assert events.count(EventKind.CHECKED_MISSING.value) == 3
    assert events[-1] == EventKind.REMOVED.value
    # several checks while it was online, one line for them: the first
    assert t.checks >= 4
    assert events.count(EventKind.CHECKED_ONLINE.value) == 1
    # the reporter is told
    assert report_status(services, w.code).state == "removed"  # type: ignore[union-attr]
    # removed is not re-checked: nothing more happens
    checks = t.checks
    clock.advance(3 * 24 * 3600)
    settle(services)
    assert td(services, w.takedown_id).checks == checks


# a week of hourly steps is about the schedule, not the database: SQLite only (the claims and
# writes of a re-check run on both databases in every other test here)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_provider_that_never_acts_is_checked_for_a_week_without_flooding_the_timeline(
    world: tuple[Services, ManualClock, Providers],
) -> None:
    services, clock, web = world
    p = web.add("never", "never")
    p.notice(START)
    w = watch(services, p, 2)
    seen: list[datetime] = []

    def note() -> bool:
        t = td(services, w.takedown_id)
        if t.last_check_at is not None and (not seen or aware(t.last_check_at) != seen[-1]):
            seen.append(aware(t.last_check_at))
        return False

    run_until(services, clock, note, step_minutes=60, hours=7 * 24)
    t = td(services, w.takedown_id)
    assert t.state == TakedownState.NOTICED.value
    assert t.misses == 0 and t.last_check == "online"
    assert t.checks == len(seen) >= 15  # 72 h at 1-4 h (+ the clock's step), then daily
    gaps = [(b - a).total_seconds() / 3600 for a, b in itertools.pairwise(seen)]
    early = [g for a, g in zip(seen, gaps, strict=False) if a < START + timedelta(hours=60)]
    late = [g for a, g in zip(seen, gaps, strict=False) if a > START + timedelta(hours=80)]
    assert early and all(1 <= g <= 5 for g in early)  # every 1-4 h (and the hour the clock steps)
    assert late and all(22 <= g <= 26 for g in late)  # then daily
    # the timeline: the first check, and where it was located (the re-checks re-run the locate
    # step once a day: a refresh that finds the same place adds a location row, not a line)
    assert kinds(services, w.item_id) == [EventKind.CHECKED_ONLINE.value, EventKind.LOCATED.value]
    with services.engine.connect() as conn:
        located = conn.execute(select(func.count()).where(Location.item_id == w.item_id)).scalar_one()
    assert located >= 6


def test_content_that_comes_back_breaks_the_streak(
    world: tuple[Services, ManualClock, Providers],
) -> None:
    services, clock, web = world
    # gone for two re-checks five minutes apart, back before the third
    p = web.add("relapses", "relapses", after=timedelta(hours=1), down_for=timedelta(minutes=7))
    p.notice(START)
    w = watch(services, p, 3)
    run_until(services, clock, lambda: td(services, w.takedown_id).misses > 0, step_minutes=5, hours=12)
    assert td(services, w.takedown_id).misses == 1
    run_until(
        services, clock, lambda: td(services, w.takedown_id).last_check == "online", step_minutes=5, hours=1
    )
    t = td(services, w.takedown_id)
    assert t.state == TakedownState.NOTICED.value and t.misses == 0 and t.first_miss_at is None
    events = kinds(services, w.item_id)
    assert events.count(EventKind.CHECKED_MISSING.value) == 2 and EventKind.REMOVED.value not in events
    assert events[-1] == EventKind.CHECKED_ONLINE.value  # back online: a line, because it changed


def test_a_move_to_another_machine_is_located_and_routed_again(
    world: tuple[Services, ManualClock, Providers],
) -> None:
    services, clock, web = world
    p = web.add("mover", "moves", after=timedelta(hours=2))
    p.notice(START)
    w = watch(services, p, 4)
    run_until(services, clock, lambda: td(services, w.takedown_id).moves > 0, step_minutes=30, hours=12)
    t = td(services, w.takedown_id)
    assert t.moves == 1
    with services.engine.connect() as conn:
        assert conn.execute(select(Item.server_ip).where(Item.id == w.item_id)).scalar_one() == "127.0.0.2"
        where = conn.execute(select(Location.ip).where(Location.id == t.location_id)).scalar_one()
    # moved, then located again (the real locate job) at the new machine, and routed again there
    # (nobody is a contact for the new machine: a senior is asked)
    lines = kinds(services, w.item_id)
    moved = lines.index(EventKind.MOVED.value)
    assert EventKind.LOCATED.value in lines[moved:] and EventKind.ROUTED.value in lines[moved:]
    assert where == "127.0.0.2" and t.state == TakedownState.NO_CONTACT.value
    # the old machine answers 404 for it, and was not the one asked after the move
    assert any(m == "127.0.0.2" for _, _, m in web.hits.paths)


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        ("gone410", "410"),
        ("drops_domain", "dns_gone"),
        ("swaps_media", "media_changed"),
        ("deletes_media", "media_gone"),
    ],
)
def test_every_kind_of_miss_ends_removed(
    world: tuple[Services, ManualClock, Providers], behaviour: str, reason: str
) -> None:
    services, clock, web = world
    p = web.add(behaviour.replace("_", "-"), behaviour, after=timedelta(hours=1))
    p.notice(START)
    w = watch(services, p, 5)
    run_until(
        services, clock, lambda: td(services, w.takedown_id).state == "removed", step_minutes=30, hours=24
    )
    t = td(services, w.takedown_id)
    assert t.state == "removed", t.last_check
    assert t.removal_reason.split(":")[0] == reason


def test_the_same_picture_in_other_bytes_is_still_online(
    world: tuple[Services, ManualClock, Providers],
) -> None:
    services, clock, web = world
    p = web.add("reencodes", "reencodes", after=timedelta(hours=5))  # after the first check
    p.notice(START)
    w = watch(services, p, 6)
    run_until(services, clock, lambda: False, step_minutes=60, hours=14)
    t = td(services, w.takedown_id)
    assert t.state == TakedownState.NOTICED.value
    assert t.last_check == recheck.ONLINE_SIMILAR and t.misses == 0
    events = kinds(services, w.item_id)
    assert events == [EventKind.CHECKED_ONLINE.value, EventKind.CHECKED_ONLINE.value]  # it changed once


def test_a_page_that_hides_media_still_served_at_their_address_is_not_removed(
    world: tuple[Services, ManualClock, Providers],
) -> None:
    """An age gate, a consent wall or an edited page no longer shows the image, but its address
    still serves it: still online (the item's own media addresses are tried, listed or not)."""
    services, clock, web = world
    p = web.add("strips-page", "strips_page", after=timedelta(hours=1))
    p.notice(START)
    w = watch(services, p, 8)
    run_until(services, clock, lambda: False, step_minutes=30, hours=24)
    t = td(services, w.takedown_id)
    assert t.state == TakedownState.NOTICED.value and t.misses == 0 and t.last_check == recheck.ONLINE


def test_transient_errors_are_not_misses(world: tuple[Services, ManualClock, Providers]) -> None:
    services, clock, web = world
    p = web.add("falls-over", "falls_over", after=timedelta(hours=1))
    p.notice(START)
    w = watch(services, p, 7, direct=True)
    run_until(services, clock, lambda: False, step_minutes=60, hours=24)
    t = td(services, w.takedown_id)
    assert t.state == TakedownState.NOTICED.value
    assert t.misses == 0 and t.check_errors >= 3 and t.last_check == "error:503"
    assert EventKind.CHECKED_MISSING.value not in kinds(services, w.item_id)


def test_a_providers_removed_answer_is_checked_soon(world: tuple[Services, ManualClock, Providers]) -> None:
    services, clock, web = world
    p = web.add("answers", "complies", after=timedelta(minutes=0))
    w = watch(services, p, 8)
    settle(services)  # scheduled 1-4 h ahead
    due = aware(td(services, w.takedown_id).next_check_at)
    assert due >= START + timedelta(minutes=60)
    clock.advance(600)
    p.notice()  # it removes at once and says so (the notice part records the answer)
    with services.engine.begin() as conn:
        nid = conn.execute(
            insert(Notice)
            .values(
                reference="MP-TEST-0001",
                channel="email",
                address="abuse@answers.test",
                state="sent",
                opened_at=START,
                send_after=START,
            )
            .returning(Notice.id)
        ).scalar_one()
        conn.execute(
            insert(NoticeItem).values(
                notice_id=nid,
                takedown_id=w.takedown_id,
                added_at=START,
                answer="removed",
                answered_at=clock.now(),
            )
        )
    settle(services)
    soon = aware(td(services, w.takedown_id).next_check_at)
    assert soon == clock.now() + timedelta(minutes=services.settings.recheck.answer_check_minutes)
    run_until(
        services, clock, lambda: td(services, w.takedown_id).state == "removed", step_minutes=5, hours=1
    )
    assert td(services, w.takedown_id).state == "removed"


def test_a_batch_is_fetched_concurrently_and_a_rerun_changes_nothing(
    world: tuple[Services, ManualClock, Providers],
) -> None:
    services, _, web = world
    services.settings = replace(  # type: ignore[misc]
        services.settings, recheck=replace(services.settings.recheck, concurrency=4, batch_size=50)
    )
    p = web.add("batch", "never")
    ws = [watch(services, p, 100 + i, direct=True) for i in range(12)]
    with services.engine.begin() as conn:
        conn.execute(update(Takedown).values(next_check_at=START))
    # two ticks at the same time (two workers): one claim each takedown, one job
    assert recheck.tick_recheck(services) == 12
    assert recheck.tick_recheck(services) == 0
    with services.engine.connect() as conn:
        jobs = conn.execute(select(Job).where(Job.kind == recheck.RECHECK)).all()
    assert len(jobs) == 1
    web.rendezvous = threading.Barrier(4)
    with Walker(services, worker="t1") as walker:
        job = walker.claim()
        assert job is not None and job.kind == recheck.RECHECK
        outcome = recheck.step_recheck(services, walker, job)
        assert outcome == "12 online"
        # the server saw four re-checks at once (the barrier of four was met), never more
        assert web.rendezvous_met >= 4 and web.hits.most_in_flight == 4
        web.rendezvous = None
        # a re-run of the same job (a crash after its effects committed) changes nothing
        queue = JobQueue(services.engine, worker="t1")
        assert queue is not None
        before = [td(services, w.takedown_id).checks for w in ws]
        rerun: Any = _Finishless(walker)
        again = recheck.step_recheck(services, rerun, job)
        assert again == "skipped"
        assert [td(services, w.takedown_id).checks for w in ws] == before == [1] * 12
    with services.engine.connect() as conn:
        lines = conn.execute(select(func.count()).select_from(ActionEvent)).scalar_one()
    assert lines == 12  # the first check of each: one line


def test_a_crash_after_some_chunks_were_written_rechecks_only_the_rest(
    world: tuple[Services, ManualClock, Providers], monkeypatch: pytest.MonkeyPatch
) -> None:
    services, _, web = world
    monkeypatch.setattr(recheck, "WRITE_CHUNK", 3)  # results written three at a time meanwhile
    p = web.add("chunks", "never")
    ws = [watch(services, p, 200 + i, direct=True) for i in range(12)]
    with services.engine.begin() as conn:
        conn.execute(update(Takedown).values(next_check_at=START))
    assert recheck.tick_recheck(services) == 12
    real = recheck.record_online
    calls = 0

    def record_online(*args: Any, **kw: Any) -> None:  # the worker dies writing the second chunk
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("the worker died while writing")
        real(*args, **kw)

    monkeypatch.setattr(recheck, "record_online", record_online)
    with Walker(services, worker="t2") as walker:
        job = walker.claim()
        assert job is not None
        with pytest.raises(RuntimeError):
            recheck.step_recheck(services, walker, job)
        done = sum(td(services, w.takedown_id).checks for w in ws)
        # the first chunk (three) is committed; the one that failed rolled back
        assert done == 3
        fetched = len(web.hits.paths)
        monkeypatch.setattr(recheck, "record_online", real)
        # the job runs again: only what was not committed is fetched and written
        assert recheck.step_recheck(services, walker, job) == f"{12 - done} online"
        assert len(web.hits.paths) - fetched == 12 - done
    assert [td(services, w.takedown_id).checks for w in ws] == [1] * 12
    with services.engine.connect() as conn:
        assert conn.execute(select(Job.state).where(Job.id == job.id)).scalar_one() == "done"


class _Finishless:
    """The walker, with ``finish`` a no-op (its job already finished): a re-run after a crash."""

    def __init__(self, walker: Walker) -> None:
        self._w = walker
        self.hosts = walker.hosts

        class Q:
            def finish(self, conn: Any, job: Any) -> None:
                return None

        self.queue = Q()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._w, name)

    def run_fetches(self, work: Any) -> Any:
        return self._w.run_fetches(work)

    def hash_media(self, data: bytes, name: str) -> Any:
        return self._w.hash_media(data, name)

    def fetch_page(self, url: str) -> Any:
        return self._w.fetch_page(url)

    def fetch_media(self, url: str, budget_s: float | None = None) -> Any:
        return self._w.fetch_media(url, budget_s)


def test_the_schedule_and_the_error_words() -> None:
    settings = make_settings("unused.db")
    now = START
    for _ in range(200):
        first = recheck.next_check(now, now, settings)
        assert now + timedelta(minutes=60) <= first <= now + timedelta(minutes=240)
        daily = recheck.next_check(now, now - timedelta(hours=73), settings)
        assert now + timedelta(hours=23) <= daily <= now + timedelta(hours=25)
    from meldpunt.fetch import FetchError

    def word(exc: FetchError) -> tuple[str, str]:
        f = recheck.classify_error(exc)
        return f.result, f.word

    assert word(FetchError("http_status", "HTTP 404", status=404)) == ("miss", "404")
    assert word(FetchError("http_status", "HTTP 451", status=451)) == ("miss", "451")
    assert word(FetchError("http_status", "HTTP 503", status=503)) == ("error", "error:503")
    assert word(FetchError("http_status", "HTTP 403", status=403)) == ("error", "error:403")
    nx = "cannot resolve x.test: [Errno -2] Name or service not known"
    assert word(FetchError("unreachable", nx)) == ("miss", "dns_gone")
    again = "cannot resolve x.test: [Errno -3] Temporary failure in name resolution"
    assert word(FetchError("unreachable", again)) == ("error", "error:unreachable")
    assert word(FetchError("unreachable", "connection refused")) == ("error", "error:unreachable")
    assert word(FetchError("timeout", "over 30 s")) == ("error", "error:timeout")
