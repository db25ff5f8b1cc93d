"""The walk end to end against a benign test web on loopback: pages with generated images (some in a
hash list), a redirect, a dead link, a blocked address; then idempotency under crashes and lost
leases, hash lists changing under a running worker, and retries ending dead. Nothing here reaches
a non-loopback address (the one non-loopback URL is refused by the SSRF guard before connecting)."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock
from meldpunt.domain import Labels, SignalType
from meldpunt.pipeline.jobs import JobQueue, LeaseLost
from meldpunt.pipeline.matching import Match
from meldpunt.pipeline.walk import Walker, medium_outcome, parse_networks
from meldpunt.pipeline.worker import drain, run_worker
from meldpunt.settings import Settings
from meldpunt.signals import hash_bytes
from meldpunt.store.reports import Job, Medium, ReviewBlob, ReviewContent
from meldpunt.stores.review import ReviewKeyError, ReviewStore
from tests.helpers.fakeweb import Served
from tests.helpers.oriented import stored_pixels_pdq
from tests.helpers.pipeline import (
    PhoneWeb,
    Web,
    _wait_final,
    _wait_no_jobs,
    import_bank,
    item,
    jpeg,
    make_settings,
    media,
    png,
    seed_banks,
    sig,
    submit,
)


@pytest.fixture(scope="module")
def web() -> Iterator[tuple[Web, Served]]:
    w = Web()
    served = Served(w, "127.0.0.1")  # type: ignore[arg-type]
    yield w, served
    served.close()


# --- the walk end to end ---------------------------------------------------------------------


def test_walk_end_to_end(
    db_url: str, web: tuple[Web, Served], services_factory: Callable[[Settings], Services]
) -> None:
    _w, served = web
    services = services_factory(make_settings(db_url))
    seed_banks(services)
    ids = submit(
        services,
        served.url("/all-known"),
        served.url("/one-new"),
        served.url("/redirect"),
        served.url("/dead"),
        served.url("/broken-media"),
        served.url("/no-media"),
        "http://10.0.0.1/private",
    )
    all_known, one_new, redirect, dead, broken, no_media, blocked = ids
    ran = drain(services)
    assert ran >= 7

    with services.engine.connect() as conn:
        jobs = dict(conn.execute(select(Job.state, func.count()).group_by(Job.state)).all())
    assert set(jobs) == {"done"}, jobs

    it = item(services, all_known)
    assert it["state"] == "known" and it["server_ip"] == "127.0.0.1" and it["error"] == ""
    m = media(services, all_known)
    assert {k: v["outcome"] for k, v in m.items()} == {
        "known-md5.png": "known",
        "known-pdq.jpg": "known",
        "benign.png": "ignored",
    }
    pdq_match = json.loads(str(m["known-pdq.jpg"]["matches"]))
    assert pdq_match[0]["bank"] == "national" and pdq_match[0]["signal_type"] == "pdq"
    assert pdq_match[0]["labels"] == {"category": "A"}
    assert m["known-md5.png"]["md5"] == hashlib.md5(png(1)).hexdigest()
    assert m["known-md5.png"]["server_ip"] == "127.0.0.1" and m["known-md5.png"]["kind"] == "image"

    it = item(services, one_new)
    assert it["state"] == "needs_review" and it["server_ip"] == "127.0.0.1"
    m = media(services, one_new)
    assert {k: v["outcome"] for k, v in m.items()} == {
        "known-md5.png": "known",
        "new.png": "new",
        "hint.png": "new",  # a hint informs, it decides nothing
    }
    hint = json.loads(str(m["hint.png"]["matches"]))
    assert [(h["bank"], h["policy"]) for h in hint] == [("partner-hints", "hint")]
    assert m["new.png"]["pdq"] and m["new.png"]["pdq_quality"] is not None

    it = item(services, redirect)
    assert it["state"] == "needs_review"
    assert it["final_url"] == served.url("/target")  # the page the media came from, kept for the analyst
    m = media(services, redirect)
    assert {str(v["url"]) for v in m.values()} == {
        served.url("/img/new-too.png"),
        served.url("/img/known-md5.png"),
    }  # resolved against the page the redirect led to

    it = item(services, dead)
    assert it["state"] == "unavailable" and it["error"] == "http_status: HTTP 404"
    assert media(services, dead) == {}

    it = item(services, broken)
    assert it["state"] == "unavailable"
    m = media(services, broken)
    assert {k: v["outcome"] for k, v in m.items()} == {"gone.png": "failed", "not-an-image.png": "failed"}
    assert m["gone.png"]["error"] == "http_status: HTTP 404"
    assert str(m["not-an-image.png"]["error"]).startswith(("not_media", "undecodable"))

    it = item(services, no_media)
    assert it["state"] == "unavailable" and str(it["error"]).startswith("no_media")

    it = item(services, blocked)
    assert it["state"] == "unavailable" and str(it["error"]).startswith("blocked_address: ")

    # Review blobs: exactly the new media, encrypted, decrypting to the served bytes.
    store = ReviewStore.from_settings(services.settings)
    with services.engine.connect() as conn:
        new_ids = set(conn.execute(select(Medium.id).where(Medium.outcome == "new")).scalars())
        blob_ids = set(conn.execute(select(ReviewBlob.medium_id)).scalars())
        assert blob_ids == new_ids and len(new_ids) == 3
        by_url = {str(r.url): int(r.id) for r in conn.execute(select(Medium.id, Medium.url))}
        assert store.get(conn, by_url[served.url("/img/new.png")]) == png(5)
        assert store.get(conn, by_url[served.url("/img/new-too.png")]) == png(6)
        ciphertexts = list(conn.execute(select(ReviewContent.ciphertext)).scalars())
    assert not any(png(5) in bytes(c) or png(6) in bytes(c) for c in ciphertexts)
    if "://" not in db_url:  # SQLite: the plaintext is nowhere in the database files
        raw = b"".join(p.read_bytes() for p in Path(db_url).parent.glob("meldpunt.db*") if p.is_file())
        for seed in (1, 2, 3, 4, 5, 6):
            assert png(seed)[100:400] not in raw
        assert jpeg(2)[200:500] not in raw


def test_walk_matches_exif_oriented_photos_by_their_stored_pixels(
    db_url: str, services_factory: Callable[[Settings], Services]
) -> None:
    """A list made by other tools holds the PDQ of a phone photo's stored pixels; the walk matches
    the photo by it (orientation 3, 6, 8), the match says so, and the medium keeps both hashes."""
    w = PhoneWeb()
    served = Served(w, "127.0.0.1")  # type: ignore[arg-type]
    try:
        services = services_factory(make_settings(db_url))
        stored = {f"o{o}.jpg": stored_pixels_pdq(w.files[f"/img/o{o}.jpg"]) for o in w.ORIENTATIONS}
        import_bank(services, "phones", "auto", [(SignalType.PDQ, h) for h in stored.values()])
        (item_id,) = submit(services, served.url("/phones"))
        drain(services)
    finally:
        served.close()
    assert item(services, item_id)["state"] == "known"
    m = media(services, item_id)
    assert {k: v["outcome"] for k, v in m.items()} == {f"o{o}.jpg": "known" for o in w.ORIENTATIONS}
    for o in w.ORIENTATIONS:
        row = m[f"o{o}.jpg"]
        (match,) = json.loads(str(row["matches"]))
        assert (match["bank"], match["signal_type"], match["distance"]) == ("phones", "pdq", 0)
        if o == 1:
            assert "hash" not in match and row["pdq"] == stored["o1.jpg"]
            assert (row["orientation"], row["pdq_stored"], row["pdq_stored_quality"]) == (None, None, None)
        else:
            assert (match["hash"], match["orientation"]) == ("stored", o)
            assert (row["orientation"], row["pdq_stored"]) == (o, stored[f"o{o}.jpg"])
            assert row["pdq"] and row["pdq"] != row["pdq_stored"] and row["pdq_stored_quality"]


def test_review_store_binds_blob_to_its_content(
    sqlite_db: str, web: tuple[Web, Served], services_factory: Callable[[Settings], Services]
) -> None:
    _w, served = web
    # No review_key: the key comes from a key file created beside the database.
    services = services_factory(make_settings(sqlite_db, review_key=""))
    submit(services, served.url("/one-new"))
    drain(services)
    key_file = Path(sqlite_db + ".reviewkey")
    assert key_file.exists() and key_file.stat().st_mode & 0o777 == 0o600
    store = ReviewStore.from_settings(services.settings)  # reads the same key back
    with services.engine.begin() as conn:
        new_ids = sorted(conn.execute(select(Medium.id).where(Medium.outcome == "new")).scalars())
        assert len(new_ids) == 3  # known-md5, new, hint: no banks here, all new
        a, b = new_ids[:2]
        data_a = store.get(conn, a)
        # A content's ciphertext moved onto another content's row does not decrypt.
        key_a, key_b = (
            conn.execute(select(ReviewBlob.content_key).where(ReviewBlob.medium_id == m)).scalar_one()
            for m in (a, b)
        )
        assert key_a != key_b
        blob = conn.execute(
            select(ReviewContent.nonce, ReviewContent.ciphertext).where(ReviewContent.content_key == key_a)
        ).one()
        conn.execute(
            update(ReviewContent)
            .where(ReviewContent.content_key == key_b)
            .values(nonce=blob.nonce, ciphertext=blob.ciphertext)
        )
        with pytest.raises(ReviewKeyError):
            store.get(conn, b)
        assert store.put(conn, a, b"again") is False  # insert-if-absent
        assert store.get(conn, a) == data_a
        assert store.purge(conn, a) is True
        with pytest.raises(KeyError):
            store.get(conn, a)
    other = ReviewStore(secrets.token_bytes(32))
    with services.engine.connect() as conn, pytest.raises(ReviewKeyError):
        other.get(conn, new_ids[2])


# --- idempotency -------------------------------------------------------------------------------


def _expire_leases(services: Services) -> None:
    with services.engine.begin() as conn:
        conn.execute(
            update(Job)
            .where(Job.state == "running")
            .values(locked_until=datetime.now(UTC) - timedelta(seconds=1))
        )


def _counts(services: Services, item_id: int) -> tuple[int, int, int]:
    with services.engine.connect() as conn:
        n_media = conn.execute(
            select(func.count()).select_from(Medium).where(Medium.item_id == item_id)
        ).scalar_one()
        n_jobs = conn.execute(select(func.count()).select_from(Job).where(Job.kind == "media")).scalar_one()
        n_blobs = conn.execute(select(func.count()).select_from(ReviewBlob)).scalar_one()
    return int(n_media), int(n_jobs), int(n_blobs)


def test_crash_after_effects_and_lost_leases_repeat_nothing(
    sqlite_db: str, web: tuple[Web, Served], services_factory: Callable[[Settings], Services]
) -> None:
    _w, served = web
    services = services_factory(make_settings(sqlite_db))
    seed_banks(services)
    [item_id] = submit(services, served.url("/one-new"))

    # Worker A claims the fetch job, commits its effects and "crashes" before finishing it.
    a = Walker(services, worker="worker-a")
    b = Walker(services, worker="worker-b")
    try:
        job = a.claim()
        assert job is not None and job.kind == "fetch"
        a.queue.finish = lambda conn, job: None  # type: ignore[method-assign]
        assert a.run_job(job).outcome == "fetched"
        assert _counts(services, item_id) == (3, 3, 0)
        # Its lease runs out; worker B takes the job again: no second set of media or jobs.
        _expire_leases(services)
        again = b.claim()
        assert again is not None and again.id == job.id and again.attempt == 2
        assert b.run_job(again).outcome == "skipped"
        assert _counts(services, item_id) == (3, 3, 0)

        # A media job: A claims it, loses the lease to B, B finishes it; A's effects roll back.
        a.queue.finish = JobQueue.finish.__get__(a.queue)  # type: ignore[method-assign]
        mjob = a.claim()
        assert mjob is not None and mjob.kind == "media"
        _expire_leases(services)
        mjob_b = b.claim()
        assert mjob_b is not None and mjob_b.id == mjob.id
        outcome_b = b.run_job(mjob_b).outcome
        assert outcome_b in ("known", "new")
        assert a.run_job(mjob).outcome == "lease_lost"
        # And finishing with a lost lease raises LeaseLost (the effects' transaction rolls back).
        with pytest.raises(LeaseLost), services.engine.begin() as conn:
            a.queue.finish(conn, mjob)
    finally:
        a.close()
        b.close()

    drain(services)
    assert item(services, item_id)["state"] == "needs_review"
    before = (_counts(services, item_id), media(services, item_id))
    # Every job delivered once more (as after a crash): nothing changes.
    with services.engine.begin() as conn:
        conn.execute(update(Job).values(state="queued", run_after=datetime.now(UTC) - timedelta(seconds=1)))
    assert drain(services) == 5  # fetch, 3 media, locate: each finds its work done
    assert (_counts(services, item_id), media(services, item_id)) == before
    assert _counts(services, item_id) == (3, 3, 2)
    assert item(services, item_id)["state"] == "needs_review"


@pytest.mark.slow
def test_workers_in_parallel_settle_every_item_once(
    db_url: str, web: tuple[Web, Served], services_factory: Callable[[Settings], Services]
) -> None:
    """Three workers share the jobs; the media of one item settle concurrently, and the one that
    settles last still sees all the others (the item row is locked first)."""
    _w, served = web
    services = services_factory(make_settings(db_url))
    seed_banks(services)
    ids = submit(
        services,
        served.url("/many"),
        served.url("/many-known"),
        served.url("/all-known"),
        served.url("/one-new"),
        served.url("/redirect"),
    )
    stop = threading.Event()
    counts: list[int] = []
    threads = [
        threading.Thread(
            target=lambda n=n: counts.append(run_worker(services, stop=stop, worker=f"w{n}")), daemon=True
        )
        for n in range(3)
    ]
    for t in threads:
        t.start()
    try:
        states = [_wait_final(services, i, timeout=40) for i in ids]
        _wait_no_jobs(services, timeout=40)  # the locate jobs run after the media (a lower priority)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=20)
    assert states == ["needs_review", "known", "known", "needs_review", "needs_review"]
    assert sum(counts) == 5 + 10 + 3 + 3 + 3 + 2 + 5  # every job ran exactly once (5 locate jobs)
    with services.engine.connect() as conn:
        assert set(conn.execute(select(Job.state)).scalars()) == {"done"}
        assert (
            conn.execute(select(func.count()).select_from(Medium).where(Medium.outcome == "")).scalar() == 0
        )
        assert conn.execute(select(func.count()).select_from(ReviewBlob)).scalar() == 10 + 2 + 1


# --- hash lists change while a worker runs ------------------------------------------------------


def test_hash_added_while_worker_runs_is_seen(
    sqlite_db: str, web: tuple[Web, Served], services_factory: Callable[[Settings], Services]
) -> None:
    _w, served = web
    clock = ManualClock()  # the worker's matcher looks at the banks again only when it moves on
    services = Services(make_settings(sqlite_db, matcher_refresh_s=0.2), clock=clock)
    seed_banks(services)
    stop = threading.Event()
    worker = threading.Thread(target=run_worker, args=(services,), kwargs={"stop": stop}, daemon=True)
    worker.start()
    try:
        [first] = submit(services, served.url("/late-1"))
        assert _wait_final(services, first) == "needs_review"
        # Another process (here: another Services on the same database) adds the PDQ of that image.
        other = services_factory(make_settings(sqlite_db))
        _, pdq_7 = sig(png(7), "7.png", services.settings)
        import_bank(other, "national", "auto", [(SignalType.PDQ, pdq_7)])
        clock.advance(0.3)  # past matcher_refresh_s
        [second] = submit(services, served.url("/late-2"))
        assert _wait_final(services, second) == "known"
        [m] = media(services, second).values()
        assert json.loads(str(m["matches"]))[0]["signal_type"] == "pdq"
    finally:
        stop.set()
        worker.join(timeout=10)
        services.close()
    assert not worker.is_alive()


# --- failures: retry with backoff, then dead with a reason -------------------------------------


def test_failing_step_retries_then_dies_with_a_reason(
    sqlite_db: str, web: tuple[Web, Served], services_factory: Callable[[Settings], Services]
) -> None:
    w, served = web
    services = services_factory(make_settings(sqlite_db))
    [item_id] = submit(services, served.url("/flaky"))
    with services.engine.begin() as conn:
        conn.execute(update(Job).values(max_attempts=3))
    seen = w.flaky
    for attempt in (1, 2, 3):
        assert drain(services) == 1
        with services.engine.connect() as conn:
            job = conn.execute(select(Job)).one()
        assert job.attempts == attempt and job.last_error == "http_status: HTTP 503"
        if attempt < 3:
            assert job.state == "queued"
            assert item(services, item_id)["state"] == "received"
            # backoff: not runnable yet; let time pass
            assert job.run_after.replace(tzinfo=job.run_after.tzinfo or UTC) > datetime.now(UTC)
            assert drain(services) == 0
            with services.engine.begin() as conn:
                conn.execute(update(Job).values(run_after=datetime.now(UTC) - timedelta(seconds=1)))
    assert job.state == "dead"
    assert w.flaky - seen == 3
    it = item(services, item_id)
    assert it["state"] == "failed"
    assert it["error"] == "fetch gave up after 3 attempts: http_status: HTTP 503"
    assert JobQueue(services.engine).dead_letters()[0]["last_error"] == "http_status: HTTP 503"


def test_unexpected_error_is_recorded_readably(
    sqlite_db: str,
    web: tuple[Web, Served],
    services_factory: Callable[[Settings], Services],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _w, served = web
    # media_memory_mb=0: hash in this process, where the monkeypatched hasher is
    services = services_factory(make_settings(sqlite_db, job_max_attempts=1, media_memory_mb=0))
    [item_id] = submit(services, served.url("/late-1"))
    drain(services)  # fetch done, media done
    assert item(services, item_id)["state"] == "needs_review"
    [item_id] = submit(services, served.url("/one-new"))

    def boom(*a: object, **k: object) -> object:
        raise RuntimeError("the hasher broke")

    monkeypatch.setattr("meldpunt.pipeline.walk.hash_bytes", boom)
    drain(services)
    with services.engine.connect() as conn:
        dead = conn.execute(select(Job.kind, Job.last_error).where(Job.state == "dead")).all()
    assert dead and all(k == "media" and e == "RuntimeError: the hasher broke" for k, e in dead)
    it = item(services, item_id)
    assert it["state"] == "failed" and "RuntimeError: the hasher broke" in str(it["error"])


# --- small pieces ------------------------------------------------------------------------------


def test_parse_networks() -> None:
    assert parse_networks(" 127.0.0.0/8, ::1/128 ,") == ("127.0.0.0/8", "::1/128")
    with pytest.raises(ValueError, match="not a network"):
        parse_networks("127.0.0.0/8,nonsense")


def _matches(*policies: str) -> list[Match]:
    return [Match(f"bank-{p}", n, "md5", 0, Labels(), p) for n, p in enumerate(policies)]


def test_medium_outcome_rules(sqlite_db: str) -> None:
    st = Settings(db=sqlite_db)
    good = hash_bytes(png(9), "x.png", st)
    bad = hash_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "x.png", st)
    assert bad.error
    assert medium_outcome(_matches("hint", "auto"), good)[0] == "known"
    assert medium_outcome(_matches("hint", "ignore"), good)[0] == "ignored"
    assert medium_outcome(_matches("auto", "ignore"), good)[0] == "known"
    assert medium_outcome(_matches("hint"), good)[0] == "new"
    assert medium_outcome([], bad)[0] == "failed"
    assert medium_outcome(_matches("auto"), bad)[0] == "known"  # exact hashes match undecodable files


def test_job_whose_worker_keeps_dying_ends_dead(
    sqlite_db: str, web: tuple[Web, Served], services_factory: Callable[[Settings], Services]
) -> None:
    _w, served = web
    services = services_factory(make_settings(sqlite_db))
    [item_id] = submit(services, served.url("/one-new"))
    with services.engine.begin() as conn:
        conn.execute(update(Job).values(max_attempts=1))
    with Walker(services, worker="dies") as a, Walker(services, worker="next") as b:
        assert a.claim() is not None  # ... and the worker dies here
        _expire_leases(services)
        job = b.claim()
        assert job is not None and job.attempt == 2
        assert b.run_job(job).outcome == "dead"
    it = item(services, item_id)
    assert it["state"] == "failed" and "the worker stopped during each" in str(it["error"])
    assert media(services, item_id) == {}


def test_a_direct_link_to_an_image_is_fetched_once(
    sqlite_db: str, web: tuple[Web, Served], services_factory: Callable[[Settings], Services]
) -> None:
    """A report of an image's own address: the fetch step has the medium in hand and settles it
    there, so the host is asked once, not once as a page and again as a medium."""
    w, served = web
    services = services_factory(make_settings(sqlite_db))
    seed_banks(services)
    new_url, known_url = served.url("/img/new.png?direct=1"), served.url("/img/known-md5.png?direct=1")
    new, known = submit(services, new_url, known_url)
    drain(services)
    assert item(services, new)["state"] == "needs_review"
    assert item(services, known)["state"] == "known"
    assert w.hits["/img/new.png?direct=1"] == 1 and w.hits["/img/known-md5.png?direct=1"] == 1
    with services.engine.connect() as conn:
        media_jobs = conn.execute(
            select(func.count()).select_from(Job).where(Job.kind == "media")
        ).scalar_one()
        blobs = conn.execute(select(func.count()).select_from(ReviewBlob)).scalar_one()
    assert media_jobs == 0
    assert blobs == 1  # the new image, kept for review; the known one dropped
    assert media(services, new)["new.png?direct=1"]["md5"] == hashlib.md5(png(5)).hexdigest()
