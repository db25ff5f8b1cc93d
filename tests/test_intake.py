"""Intake and durable jobs on real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from meldpunt.bootstrap import Services
from meldpunt.domain.reports import ItemState, MediumOutcome, item_outcome, public_status
from meldpunt.pipeline.intake import (
    InvalidReport,
    ReportIn,
    check_api_token,
    create_api_token,
    list_items,
    normalise_url,
    report_status,
    submit_report,
)
from meldpunt.pipeline.jobs import JobQueue, LeaseLost, enqueue
from meldpunt.settings import Settings
from meldpunt.store.reports import Item, Job, Report


@pytest.fixture
def services(db_url: str) -> Services:
    return Services(Settings.from_env({}, db=db_url))


def test_a_report_is_items_and_jobs_in_one_go(services: Services) -> None:
    r = submit_report(services, ReportIn(urls=["https://Example.org/a#frag", "example.org/b", "  "]))
    assert len(r.item_ids) == 2 and r.linked == []
    assert len(r.code.replace("-", "")) == 20  # 100 bits
    items = list_items(services)
    assert {i.url for i in items} == {"https://example.org/a", "http://example.org/b"}
    assert all(i.state == "received" for i in items)
    with services.engine.connect() as conn:
        jobs = conn.execute(select(Job.kind, Job.key, Job.state)).all()
        # the receipt code itself is not stored for public reports: only its hash
        assert conn.execute(select(Report.receipt_code)).scalar() is None
    assert sorted(jobs) == sorted(("fetch", f"item:{i}", "queued") for i in r.item_ids)
    status = report_status(services, r.code)
    assert status is not None and status.state == "received" and status.items == 2
    assert report_status(services, r.code.lower()) is not None  # codes are case-insensitive
    assert report_status(services, "AAAAA-BBBBB-CCCCC-DDDDD") is None


def test_invalid_reports_say_why(services: Services) -> None:
    with pytest.raises(InvalidReport) as e:
        submit_report(services, ReportIn(urls=["ftp://x.org/", "http://", "fine.org"], seen_on="tv"))
    assert any("URL 1" in m for m in e.value.errors) and any("URL 2" in m for m in e.value.errors)
    assert any("seen" in m for m in e.value.errors)
    with pytest.raises(InvalidReport):
        submit_report(services, ReportIn(urls=[]))
    with services.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Report)).scalar_one() == 0


def test_same_url_while_open_is_linked_not_copied(services: Services) -> None:
    first = submit_report(services, ReportIn(urls=["http://example.org/x"]))
    again = submit_report(
        services, ReportIn(urls=["http://example.org/x", "http://example.org/y"], urgent=True)
    )
    assert again.linked == [first.item_ids[0]] and again.item_ids[0] == first.item_ids[0]
    items = {i.url: i for i in list_items(services)}
    assert len(items) == 2 and items["http://example.org/x"].urgent  # raised by the urgent report
    # urgent first in the list
    assert list_items(services)[0].urgent
    # once the item is closed, a new report makes a new item
    with services.engine.begin() as conn:
        conn.execute(update(Item).where(Item.id == first.item_ids[0]).values(state="unavailable"))
    third = submit_report(services, ReportIn(urls=["http://example.org/x"]))
    assert third.linked == [] and third.item_ids[0] != first.item_ids[0]


def test_idempotency_key_returns_the_same_receipt(services: Services) -> None:
    report = ReportIn(urls=["http://example.org/p"], source="api:partner", idempotency_key="abc-1")
    a = submit_report(services, report)
    b = submit_report(services, report)
    assert a == b
    other = submit_report(
        services, ReportIn(urls=["http://example.org/p"], source="api:other", idempotency_key="abc-1")
    )
    assert other.report_id != a.report_id


def test_concurrent_idempotent_submissions_make_one_report(db_url: str) -> None:
    services = Services(Settings.from_env({}, db=db_url))
    assert services.engine is not None  # migrated once, before the race
    report = ReportIn(urls=["http://example.org/race"], source="api:p", idempotency_key="k")
    got: list[object] = []

    def go() -> None:
        got.append(submit_report(Services(Settings.from_env({}, db=db_url)), report))

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.report_id for r in got}) == 1  # type: ignore[attr-defined]
    with services.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Report)).scalar_one() == 1


def test_jobs_claim_finish_retry_dead(services: Services) -> None:
    q = JobQueue(services.engine, worker="w1", lease_s=60)
    with services.engine.begin() as conn:
        assert enqueue(conn, "fetch", "item:1", {"item_id": 1})
        assert not enqueue(conn, "fetch", "item:1")  # idempotent
        enqueue(conn, "fetch", "item:2", priority=100, max_attempts=2)
    job = q.claim()
    assert job is not None and job.key == "item:2"  # urgent first
    assert q.fail(job, "timeout: slow host") == "queued"
    with services.engine.begin() as conn:  # make the backoff pass
        conn.execute(update(Job).values(run_after=datetime.now(UTC) - timedelta(seconds=1)))
    job = q.claim()
    assert job is not None and job.key == "item:2" and job.attempt == 2
    assert q.fail(job, "timeout: slow host") == "dead"
    assert q.dead_letters()[0]["last_error"] == "timeout: slow host"
    job = q.claim()
    assert job is not None and job.key == "item:1"
    with services.engine.begin() as conn:
        q.finish(conn, job)
    assert q.claim() is None
    assert q.counts() == {"dead": 1, "done": 1}


def test_a_dead_workers_job_is_claimed_again_and_its_late_finish_is_refused(services: Services) -> None:
    with services.engine.begin() as conn:
        enqueue(conn, "fetch", "item:9")
    slow = JobQueue(services.engine, worker="slow", lease_s=0.0)
    job = slow.claim()
    assert job is not None
    other = JobQueue(services.engine, worker="other", lease_s=60).claim()  # the lease has run out
    assert other is not None and other.id == job.id and other.attempt == 2
    with pytest.raises(LeaseLost), services.engine.begin() as conn:
        slow.finish(conn, job)


def test_parallel_workers_never_claim_the_same_job(db_url: str) -> None:
    services = Services(Settings.from_env({}, db=db_url))
    with services.engine.begin() as conn:
        for i in range(40):
            enqueue(conn, "fetch", f"item:{i}")
    claimed: list[int] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        q = JobQueue(Services(Settings.from_env({}, db=db_url)).engine, worker=name)
        while (job := q.claim()) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 40


def test_api_tokens_are_stored_hashed(services: Services) -> None:
    token = create_api_token(services, "partner-hotline")
    assert check_api_token(services, token) == "partner-hotline"
    assert check_api_token(services, token + "x") is None and check_api_token(services, "") is None
    with services.engine.connect() as conn:
        assert token not in str(conn.exec_driver_sql("SELECT * FROM api_tokens").all())


def test_url_normalisation() -> None:
    assert normalise_url("HTTP://Example.ORG:8080/a?b=1#c") == "http://example.org:8080/a?b=1"
    assert normalise_url("example.org") == "http://example.org/"
    for bad in ("javascript:alert(1)", "http://exa mple.org/", "http://[::1", "x" * 3000):
        with pytest.raises(ValueError):
            normalise_url(bad)


def test_outcomes_and_public_words() -> None:
    assert item_outcome([MediumOutcome.KNOWN, MediumOutcome.IGNORED]) is ItemState.KNOWN
    assert item_outcome([MediumOutcome.KNOWN, MediumOutcome.NEW]) is ItemState.NEEDS_REVIEW
    assert item_outcome([]) is ItemState.UNAVAILABLE
    assert public_status([(ItemState.RECEIVED, False)]) == "received"
    assert public_status([(ItemState.FETCHED, False), (ItemState.RECEIVED, False)]) == "assessing"
    review, classified = ItemState.NEEDS_REVIEW, ItemState.CLASSIFIED
    assert public_status([(review, False), (classified, False)]) == "assessing"  # one still waits
    assert public_status([(classified, False), (classified, False)]) == "assessed"
    assert public_status([(classified, False), (ItemState.KNOWN, True)]) == "action_taken"
    assert public_status([(ItemState.UNAVAILABLE, False)]) == "unavailable"


def test_a_long_step_keeps_its_lease(services: Services) -> None:
    with services.engine.begin() as conn:
        enqueue(conn, "media", "medium:1")
    worker = JobQueue(services.engine, worker="slow", lease_s=0.6)
    job = worker.claim()
    assert job is not None
    with worker.keep_alive(job, every_s=0.1):
        time.sleep(1.5)  # well past the lease: renewed meanwhile
        assert JobQueue(services.engine, worker="other").claim() is None
    with services.engine.begin() as conn:
        worker.finish(conn, job)
