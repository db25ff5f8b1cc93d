"""A pipeline world: settings, services, seeded banks and phone-shaped fake webs."""

from __future__ import annotations

import base64
import hashlib
import io
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from sqlalchemy import select

from meldpunt.banks.formats.base import HashRecord
from meldpunt.bootstrap import Services
from meldpunt.domain import Labels, SignalType
from meldpunt.pipeline.intake import ReportIn, submit_report
from meldpunt.settings import Settings
from meldpunt.signals import hash_bytes
from meldpunt.store.reports import Item, Medium
from tests.helpers.fakeweb import _send
from tests.helpers.imagegen import scene
from tests.helpers.oriented import oriented_jpeg


def png(seed: int) -> bytes:
    buf = io.BytesIO()
    scene(seed, 160, 120).save(buf, format="PNG")
    return buf.getvalue()


def jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    scene(seed, 160, 120).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def page(*srcs: str) -> bytes:
    imgs = "".join(f'<img src="{s}">' for s in srcs)
    return f"<!doctype html><html><body><h1>benign</h1>{imgs}</body></html>".encode()


class Web:
    """Pages of generated images. Seeds: 1 known by MD5 (auto bank), 2 known by PDQ only (the bank
    has the PNG's PDQ, the page serves a JPEG of it), 3 on a benign (ignore) list, 4 a hint only,
    5 and 6 new, 7 added to a bank while a worker runs."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {
            "/img/known-md5.png": (png(1), "image/png"),
            "/img/known-pdq.jpg": (jpeg(2), "image/jpeg"),
            "/img/benign.png": (png(3), "image/png"),
            "/img/hint.png": (png(4), "image/png"),
            "/img/new.png": (png(5), "image/png"),
            "/img/new-too.png": (png(6), "image/png"),
            "/img/late.png": (png(7), "image/png"),
            "/img/not-an-image.png": (b"plain text, not pixels at all" * 20, "image/png"),
            **{f"/img/many-{n}.png": (png(100 + n), "image/png") for n in range(10)},
        }
        self.pages: dict[str, bytes] = {
            "/all-known": page("/img/known-md5.png", "/img/known-pdq.jpg", "/img/benign.png"),
            "/one-new": page("/img/known-md5.png", "/img/new.png", "img/hint.png"),
            "/target": page("/img/new-too.png", "/img/known-md5.png"),
            "/broken-media": page("/img/gone.png", "/img/not-an-image.png"),
            "/no-media": page(),
            "/late-1": page("/img/late.png"),
            "/late-2": page("/img/late.png"),
            "/many": page(*(f"/img/many-{n}.png" for n in range(10))),
            "/many-known": page(*(["/img/known-md5.png", "/img/known-pdq.jpg", "/img/benign.png"] * 3)),
        }
        self.flaky = 0
        self.lock = threading.Lock()
        #: requests per full path (with the query), to see what was fetched how often
        self.hits: dict[str, int] = {}

    def route(self, h: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.hits[h.path] = self.hits.get(h.path, 0) + 1
        path = h.path.split("?", 1)[0]
        if path in self.pages:
            _send(h, 200, self.pages[path], "text/html; charset=utf-8")
        elif path in self.files:
            body, ctype = self.files[path]
            _send(h, 200, body, ctype)
        elif path == "/redirect":
            _send(h, 302, b"", "text/plain", {"Location": "/target"})
        elif path == "/flaky":
            with self.lock:
                self.flaky += 1
            _send(h, 503, b"try later", "text/plain")
        else:
            _send(h, 404, b"not here", "text/plain")


def make_settings(db: str, **kw: Any) -> Settings:
    base = Settings(
        db=db,
        fetch_allowed_networks="127.0.0.0/8",
        review_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        matcher_refresh_s=0.0,
        worker_poll_s=0.02,
        fetch_timeout_s=10.0,
    )
    return replace(base, **kw)


def import_bank(
    services: Services, name: str, policy: str, records: list[tuple[SignalType, str]], category: str = "A"
) -> None:
    recs = [HashRecord(t, v, Labels(category=category), n) for n, (t, v) in enumerate(records, 1)]
    services.banks.import_records(
        name,
        recs,
        source_name=f"{name}.txt",
        source_sha256=hashlib.sha256(name.encode()).hexdigest(),
        fmt="plain",
        policy=policy,
    )


def sig(data: bytes, name: str, settings: Settings) -> tuple[str, str]:
    s = hash_bytes(data, name, settings)
    assert s.pdq is not None and s.error is None
    return s.md5, s.pdq


def seed_banks(services: Services) -> None:
    st = services.settings
    md5_1, _ = sig(png(1), "1.png", st)
    _, pdq_2 = sig(png(2), "2.png", st)  # the page serves a JPEG: found by PDQ, not MD5
    md5_3, _ = sig(png(3), "3.png", st)
    md5_4, _ = sig(png(4), "4.png", st)
    import_bank(services, "national", "auto", [(SignalType.MD5, md5_1), (SignalType.PDQ, pdq_2)])
    import_bank(services, "benign", "ignore", [(SignalType.MD5, md5_3)])
    import_bank(services, "partner-hints", "hint", [(SignalType.MD5, md5_4)])


def submit(services: Services, *urls: str) -> list[int]:
    return submit_report(services, ReportIn(urls=list(urls))).item_ids


def item(services: Services, item_id: int) -> dict[str, object]:
    with services.engine.connect() as conn:
        row = conn.execute(select(Item).where(Item.id == item_id)).one()
    return dict(row._mapping)


def media(services: Services, item_id: int) -> dict[str, dict[str, Any]]:
    """The item's media by the last part of their URL."""
    with services.engine.connect() as conn:
        rows = conn.execute(select(Medium).where(Medium.item_id == item_id)).all()
    return {str(r.url).rsplit("/", 1)[-1]: dict(r._mapping) for r in rows}


@pytest.fixture
def services_factory() -> Iterator[Callable[[Settings], Services]]:
    made: list[Services] = []

    def make(settings: Settings) -> Services:
        s = Services(settings)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


class PhoneWeb:
    """A page of phone photos stored turned, tagged with EXIF orientation 3, 6, 8 and 1."""

    ORIENTATIONS = (3, 6, 8, 1)

    def __init__(self) -> None:
        self.files = {f"/img/o{o}.jpg": oriented_jpeg(50 + o, o) for o in self.ORIENTATIONS}

    def route(self, h: BaseHTTPRequestHandler) -> None:
        if h.path == "/phones":
            _send(h, 200, page(*self.files), "text/html; charset=utf-8")
        elif h.path in self.files:
            _send(h, 200, self.files[h.path], "image/jpeg")
        else:
            _send(h, 404, b"not here", "text/plain")


def _wait_final(services: Services, item_id: int, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = str(item(services, item_id)["state"])
        if state in ("known", "needs_review", "unavailable", "failed"):
            return state
        time.sleep(0.05)
    raise AssertionError(f"item {item_id} still {state} after {timeout} s")


def _wait_no_jobs(services: Services, timeout: float = 20.0) -> None:
    """Until no job is queued or running (jobs of later steps, like locate, run after an item's media)."""
    from meldpunt.store.reports import Job

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with services.engine.connect() as conn:
            if not conn.execute(select(Job.id).where(Job.state.in_(("queued", "running"))).limit(1)).first():
                return
        time.sleep(0.05)
    raise AssertionError(f"jobs still queued after {timeout} s")
