"""One slow host cannot hold up the queue (issue #8): images that send their headers and then
stall are abandoned as ``stalled`` once and not retried, the item's other media on that host are
not fetched, an item's media share one time budget, and while one worker is stuck on such a host
an urgent report from another host is settled by the other worker. Real HTTP servers on loopback
(127.0.0.1 stalls, 127.0.0.2 is well behaved); ordering and outcomes are asserted, never times."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from sqlalchemy import select

from meldpunt.bootstrap import Services
from meldpunt.pipeline.hosts import HostBusy, HostSlots
from meldpunt.pipeline.intake import ReportIn, submit_report
from meldpunt.pipeline.worker import drain, run_worker
from meldpunt.settings import Settings
from meldpunt.store.reports import Job
from tests.helpers.fakeweb import Served, _send
from tests.helpers.pipeline import _wait_final, item, make_settings, media, png

FINAL = ("known", "needs_review", "unavailable", "failed")


class StallWeb:
    """``/hostile`` shows eight images that send headers and a first part, then nothing until
    ``release`` is set; ``/trickle`` an image sent a byte at a time and ``other_image``; ``/fine``
    one image."""

    def __init__(self) -> None:
        self.png = png(5)
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.hits: dict[str, int] = {}
        #: the second image of ``/trickle``: an absolute URL on another host
        self.other_image = ""

    def count(self, prefix: str) -> int:
        with self.lock:
            return sum(n for p, n in self.hits.items() if p.startswith(prefix))

    def route(self, h: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.hits[h.path] = self.hits.get(h.path, 0) + 1
        if h.path == "/hostile":
            imgs = "".join(f'<img src="/stall/{n}.png">' for n in range(8))
            _send(h, 200, f"<html><body>{imgs}</body></html>".encode(), "text/html")
        elif h.path == "/trickle":
            body = f'<img src="/slow/1.png"><img src="{self.other_image}">'
            _send(h, 200, body.encode(), "text/html")
        elif h.path == "/fine":
            _send(h, 200, b'<html><body><img src="/img/fine.png"></body></html>', "text/html")
        elif h.path == "/img/fine.png":
            _send(h, 200, self.png, "image/png")
        elif h.path.startswith(("/stall/", "/slow/")):
            h.send_response(200)
            h.send_header("Content-Type", "image/png")
            h.send_header("Content-Length", str(len(self.png)))
            h.end_headers()
            h.close_connection = True
            if h.path.startswith("/stall/"):
                h.wfile.write(self.png[:100])
                h.wfile.flush()
                self.release.wait(60)
                return
            for byte in self.png[:200]:  # never silent long enough to stall, always too slow
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
                if self.release.wait(0.05):
                    return
        else:
            _send(h, 404, b"not here", "text/plain")


@pytest.fixture
def stall_web() -> Iterator[tuple[StallWeb, Served, Served]]:
    w = StallWeb()
    slow = Served(w, "127.0.0.1")  # type: ignore[arg-type]
    fine = Served(w, "127.0.0.2")  # type: ignore[arg-type]
    yield w, slow, fine
    w.release.set()
    slow.close()
    fine.close()


def _report(services: Services, url: str, urgent: bool = False) -> int:
    [item_id] = submit_report(services, ReportIn(urls=[url], urgent=urgent)).item_ids
    return item_id


def _media_jobs(services: Services) -> list[tuple[str, int]]:
    with services.engine.connect() as conn:
        return [
            (r.state, r.attempts)
            for r in conn.execute(select(Job.state, Job.attempts).where(Job.kind == "media"))
        ]


def _all_media_tried(services: Services) -> bool:
    """Eight media jobs, each claimed at least once (running, or back in the queue since)."""
    with services.engine.connect() as conn:
        rows = conn.execute(
            select(Job.state, Job.created_at, Job.updated_at).where(Job.kind == "media")
        ).all()
    return len(rows) == 8 and all(r.state != "queued" or r.updated_at != r.created_at for r in rows)


def test_urgent_report_is_settled_while_a_stalling_host_holds_a_worker(
    db_url: str,
    stall_web: tuple[StallWeb, Served, Served],
    services_factory: Callable[[Settings], Services],
) -> None:
    w, slow, fine = stall_web
    # Long timeouts: the stalled images stay in flight for the whole test (until released).
    settings = make_settings(db_url, fetch_timeout_s=60.0, fetch_read_timeout_s=60.0, fetch_item_budget_s=0)
    services = services_factory(settings)
    hostile = _report(services, slow.url("/hostile"))
    stop = threading.Event()
    workers = [
        threading.Thread(target=run_worker, args=(services,), kwargs={"stop": stop, "worker": f"w{n}"})
        for n in range(2)
    ]
    for t in workers:
        t.start()
    try:
        # As in the field, the urgent report comes once the workers have turned to the hostile
        # page's media (each job claimed at least once), or after a few seconds at most.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (w.count("/stall/") and _all_media_tried(services)):
            time.sleep(0.02)
        assert w.count("/stall/") >= 1, "the hostile page's images were never asked for"
        urgent = _report(services, fine.url("/fine"), urgent=True)
        assert _wait_final(services, urgent, timeout=30) == "needs_review"
        # Settled while the hostile page's media are still being fetched, by the other worker:
        assert not w.release.is_set()
        assert item(services, hostile)["state"] not in FINAL
        assert w.count("/stall/") == 1  # one fetch from the stalling host at a time
    finally:
        w.release.set()
        stop.set()
        for t in workers:
            t.join(timeout=30)


def test_stalled_media_are_not_retried_and_the_host_is_not_asked_again(
    db_url: str,
    stall_web: tuple[StallWeb, Served, Served],
    services_factory: Callable[[Settings], Services],
) -> None:
    w, slow, _fine = stall_web
    services = services_factory(make_settings(db_url, fetch_timeout_s=5.0, fetch_read_timeout_s=0.3))
    hostile = _report(services, slow.url("/hostile"))
    drain(services)
    assert item(services, hostile)["state"] == "unavailable"
    errors = sorted(str(m["error"]).split(":", 1)[0] for m in media(services, hostile).values())
    assert errors == ["host_hostile"] * 7 + ["stalled"]
    assert w.count("/stall/") == 1  # the first stall told enough
    assert _media_jobs(services) == [("done", 1)] * 8  # each settled at its first attempt


def test_an_items_media_share_one_time_budget(
    db_url: str,
    stall_web: tuple[StallWeb, Served, Served],
    services_factory: Callable[[Settings], Services],
) -> None:
    """A trickling image takes what is left of the item's budget (not the 30 s a fetch may take)
    and is recorded as too slow; the next image, on another host, is not fetched at all."""
    w, slow, fine = stall_web
    settings = make_settings(db_url, fetch_timeout_s=30.0, fetch_read_timeout_s=5.0, fetch_item_budget_s=1.0)
    services = services_factory(settings)
    w.other_image = fine.url("/img/fine.png")
    hostile = _report(services, slow.url("/trickle"))
    drain(services)
    found = media(services, hostile)
    assert str(found["1.png"]["error"]).startswith("too_slow:")
    assert str(found["fine.png"]["error"]).startswith("item_budget:")
    assert w.count("/img/fine.png") == 0
    assert item(services, hostile)["state"] == "unavailable"


def test_host_slots_are_shared_and_released() -> None:
    slots = HostSlots()
    with slots.hold("a.test", 1):
        with pytest.raises(HostBusy), slots.hold("a.test", 1):
            pass
        with slots.hold("b.test", 1), slots.hold("a.test", 0):  # 0: no limit
            assert slots.busy("a.test") == 2
    assert slots.busy("a.test") == 0
