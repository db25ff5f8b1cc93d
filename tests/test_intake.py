"""Intake and durable jobs on real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from meldpunt.bootstrap import Services
from meldpunt.domain.reports import ItemState, MediumOutcome, item_outcome, public_status
from meldpunt.pipeline.intake import (
    BadUrl,
    IdempotencyConflict,
    InvalidReport,
    Receipt,
    ReportIn,
    check_api_token,
    create_api_token,
    list_items,
    normalise_url,
    report_status,
    submit_report,
)
from meldpunt.pipeline.jobs import JobQueue, LeaseLost, enqueue, machine_name, worker_name
from meldpunt.settings import Settings
from meldpunt.store.reports import Item, Job, Report, ReportItem


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
    codes = [(p.code, dict(p.values)) for p in e.value.problems]
    assert codes == [("url.not_http", {"n": "1"}), ("url.not_url", {"n": "2"}), ("seen_on.unknown", {})]
    assert (
        e.value.errors[0]
        == "Line 1: this is not a web address (it should look like https://example.com/page)."
    )
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


# -- issue #8: one item per open URL, crash recovery, idempotency, text every database stores -------


def test_concurrent_reports_of_one_url_make_one_item_on_every_database(db_url: str) -> None:
    """10 URLs, 8 reporters each racing on their own connections: one item per URL, every report
    linked to it (on PostgreSQL under READ COMMITTED this made several items per URL)."""
    urls = [f"http://race.example/page-{n}" for n in range(10)]
    reporters = 8
    assert Services(Settings.from_env({}, db=db_url)).engine is not None  # migrated before the race
    start = threading.Barrier(reporters)
    receipts: list[tuple[str, object]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def reporter() -> None:
        services = Services(Settings.from_env({}, db=db_url))
        try:
            for url in urls:
                start.wait()  # all eight report this URL at the same moment
                receipt = submit_report(services, ReportIn(urls=[url]))
                with lock:
                    receipts.append((url, receipt))
        except BaseException as e:
            errors.append(e)
            start.abort()
        finally:
            services.close()

    threads = [threading.Thread(target=reporter) for _ in range(reporters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    services = Services(Settings.from_env({}, db=db_url))
    with services.engine.connect() as conn:
        per_url = dict(conn.execute(select(Item.url, func.count()).group_by(Item.url)).all())
        links = set(conn.execute(select(ReportItem.report_id, ReportItem.item_id)).all())
        item_of = dict(conn.execute(select(Item.url, Item.id)).all())
    assert per_url == dict.fromkeys(urls, 1)
    assert len(receipts) == len(urls) * reporters
    for url, receipt in receipts:
        assert isinstance(receipt, Receipt)
        assert receipt.item_ids == [item_of[url]]
        assert (receipt.report_id, item_of[url]) in links
        assert report_status(services, receipt.code) is not None


def test_an_idempotency_key_is_bound_to_the_request_it_was_first_used_with(services: Services) -> None:
    first = ReportIn(urls=["http://example.org/a"], source="api:p", idempotency_key="k-1")
    a = submit_report(services, first)
    # the same request, written differently (the URL normalises to the same): the same receipt
    same = submit_report(
        services, ReportIn(urls=["HTTP://example.org/a#x"], source="api:p", idempotency_key="k-1")
    )
    assert same == a and same.replayed and not a.replayed
    for changed in (
        ReportIn(
            urls=["http://example.org/a", "http://example.org/b"], source="api:p", idempotency_key="k-1"
        ),
        ReportIn(urls=["http://example.org/a"], source="api:p", idempotency_key="k-1", urgent=True),
        ReportIn(urls=["http://example.org/a"], source="api:p", idempotency_key="k-1", description="more"),
    ):
        with pytest.raises(IdempotencyConflict, match="already used for a different report"):
            submit_report(services, changed)
    with services.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Report)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(Item)).scalar_one() == 1


def test_text_postgresql_cannot_store_is_refused_with_reasons(services: Services) -> None:
    """What SQLite stores and PostgreSQL refuses (a bare 500 before) is refused by the service,
    on both databases, with a reason, and nothing is written."""
    long_host = "http://" + ".".join(["a" * 60] * 5) + "/"  # 304 characters of host name
    long_label = "http://" + "b" * 64 + ".example/"
    cases: dict[str, tuple[ReportIn, str]] = {
        "NUL in a URL": (ReportIn(urls=["http://example.org/a\x00b"]), "url.bad_text"),
        "NUL in the description": (
            ReportIn(urls=["http://example.org/"], description="a\x00b"),
            "description.bad_text",
        ),
        "NUL in the contact": (
            ReportIn(urls=["http://example.org/"], contact="me\x00@example.org"),
            "contact.bad_text",
        ),
        "NUL in the key": (
            ReportIn(urls=["http://example.org/"], source="api:p", idempotency_key="k\x00"),
            "idempotency_key.bad_text",
        ),
        "half a surrogate pair": (
            ReportIn(urls=["http://example.org/"], description="\ud800"),
            "description.bad_text",
        ),
        "a key too long": (
            ReportIn(urls=["http://example.org/"], source="api:p", idempotency_key="k" * 201),
            "idempotency_key.too_long",
        ),
        "a host name over 253 characters": (ReportIn(urls=[long_host]), "url.host_too_long"),
        "a label over 63 characters": (ReportIn(urls=[long_label]), "url.host_too_long"),
    }
    for what, (report, reason) in cases.items():
        with pytest.raises(InvalidReport) as e:
            submit_report(services, report)
        assert reason in [p.code for p in e.value.problems], (what, e.value.errors)
    with services.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Report)).scalar_one() == 0
    # the longest host DNS allows is fine
    longest = "http://" + ".".join(["c" * 63] * 3 + ["d" * 61]) + "/"
    assert submit_report(services, ReportIn(urls=[longest])).item_ids


def test_urls_the_fetcher_always_refuses_are_refused_at_intake() -> None:
    for url, code in (
        ("http://user@example.org/", "credentials"),
        ("https://user:secret@example.org/x", "credentials"),
        ("http://example.org:0/", "port"),
        ("http://exa\tmple.org/", "bad_text"),
        ("http://example.org/\x7f", "bad_text"),
    ):
        with pytest.raises(BadUrl) as e:
            normalise_url(url)
        assert e.value.code == code, url


def test_a_starting_worker_takes_back_the_jobs_of_dead_processes_of_its_machine(services: Services) -> None:
    """After a crash, a worker on the same machine need not wait out the dead worker's lease: a
    process that is gone holds nothing. Live processes and other machines keep their jobs."""
    assert Settings().job_lease_s <= 60  # short by default; the heartbeat renews it
    with services.engine.begin() as conn:
        for n in range(5):
            enqueue(conn, "fetch", f"item:{n}")
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    gone_pid = int(ended.stdout)  # that process has ended
    here = machine_name()
    holders = {
        "dead": f"{here}:{gone_pid}:0badc0de:worker-0",
        "earlier self": f"{here}:{os.getpid()}:{'0' * 8}",  # a process before us that had our pid
        "alive": f"{worker_name()}:worker-1",  # this process: alive
        "parent": f"{here}:{os.getppid()}:0badc0de",  # alive, whatever its token
        "elsewhere": f"another-host:{gone_pid}:0badc0de",  # cannot be judged from here
    }
    claimed = {}
    for what, name in holders.items():
        job = JobQueue(services.engine, worker=name, lease_s=300).claim()
        assert job is not None
        claimed[what] = job.id
    starting = JobQueue(services.engine, lease_s=300)
    assert starting.reclaim_dead() == 2
    taken = [starting.claim(), starting.claim(), starting.claim()]
    ids = {j.id for j in taken if j is not None}
    assert ids == {claimed["dead"], claimed["earlier self"]}
    for j in taken:
        if j is not None:
            assert j.attempt == 2  # the crashed attempt still counts
