"""Hostile media cost bounded memory, a JPEG cut short is hashed, and the review store keeps one
copy per content (issue #8 §3). Every file is a benign generated pattern; "hostile" means costly."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from meldpunt.bootstrap import Services
from meldpunt.pipeline.worker import drain
from meldpunt.review import RenderError, contact_sheet
from meldpunt.settings import Settings
from meldpunt.signals import hamming, hash_bytes
from meldpunt.signals.sandbox import MediaSandbox, SandboxError
from meldpunt.signals.synthetic import flat_png, flat_video, jpeg_bytes, photo_like
from meldpunt.store.reports import ReviewBlob, ReviewContent
from meldpunt.stores.review import ReviewStore
from tests.helpers.fakeweb import Served, _send
from tests.helpers.pipeline import item, make_settings, media, page, submit

#: Peak memory a process may reach hashing or rendering one hostile file (generous: today ~280 MB
#: for the 7000x7000 PNG, the interpreter and its libraries included; it was 1.2-1.5 GB).
BUDGET_MB = 400

CHILD = """
import sys
from meldpunt.review.render import render_for_review
from meldpunt.signals import hash_bytes
data = open(sys.argv[1], "rb").read()
s = hash_bytes(data, sys.argv[1])
assert s.error is None, s.error
render_for_review(data, sys.argv[1])
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(int(hwm.split()[1]) // 1024)
"""


def peak_mb(path: Path) -> int:
    """Peak RSS (MB) of a fresh process hashing and rendering ``path`` (VmHWM: this process's own
    peak; ``ru_maxrss`` would include what the parent had before exec)."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, timeout=600)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    return int(out.stdout.decode().split()[-1])


# --- pixels, not file size --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "make",
    [lambda: ("big.png", flat_png(7000, 7000)), lambda: ("big.mp4", flat_video(4096, 4096, 10))],
    ids=["png-7000x7000-rgba", "mp4-4096x4096"],
)
def test_hostile_media_hash_and_render_within_a_memory_budget(
    make: Callable[[], tuple[str, bytes]], tmp_path: Path
) -> None:
    name, data = make()
    assert len(data) < 300_000  # small on disk ...
    path = tmp_path / name
    path.write_bytes(data)
    assert peak_mb(path) < BUDGET_MB  # ... and cheap in memory


@pytest.mark.slow
def test_reduced_decode_keeps_pdq_close_to_the_full_decode() -> None:
    photo = photo_like(3000, 2400, seed=11)
    for mode in ("RGB", "RGBA", "L"):
        buf = io.BytesIO()
        photo.convert(mode).save(buf, format="PNG", compress_level=1)
        reduced = hash_bytes(buf.getvalue(), "p.png", Settings())
        full = hash_bytes(buf.getvalue(), "p.png", Settings(pdq_fast_decode_size=0))
        assert reduced.pdq and full.pdq and (reduced.width, reduced.height) == (3000, 2400)
        assert hamming(reduced.pdq, full.pdq) <= 10, mode


@pytest.mark.slow
def test_reduced_decode_turns_by_exif_orientation() -> None:
    photo = photo_like(2600, 2000, seed=12)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: shown after a quarter turn clockwise
    tagged, upright = io.BytesIO(), io.BytesIO()
    photo.save(tagged, format="PNG", exif=exif.tobytes())
    photo.transpose(Image.Transpose.ROTATE_270).save(upright, format="PNG")
    a, b = hash_bytes(tagged.getvalue(), "t.png"), hash_bytes(upright.getvalue(), "u.png")
    assert a.pdq and b.pdq and (a.width, a.height) == (2000, 2600)
    assert hamming(a.pdq, b.pdq) <= 10


def test_video_frames_over_the_pixel_limit_are_refused_before_decoding() -> None:
    data = flat_video(640, 480, 3)
    small = Settings(max_image_pixels=100_000)
    s = hash_bytes(data, "v.mp4", small)
    assert s.vpdq is None and s.md5 == hashlib.md5(data).hexdigest()
    assert s.error == (
        "video frames too large: 640x480 pixels exceeds the 100,000-pixel limit (settings.max_image_pixels)"
    )
    with pytest.raises(RenderError, match="video frames too large: 640x480"):
        contact_sheet(data, "v.mp4", settings=small)
    assert hash_bytes(data, "v.mp4").vpdq  # under the default limit it hashes


@functools.cache
def big_png() -> bytes:
    return flat_png(7000, 7000)


#: A sandbox budget the 7000x7000 PNG (196 MB of pixels) goes over, and ordinary files do not.
SMALL_BUDGET_MB = 120


def test_sandbox_turns_running_out_of_memory_into_an_error_and_recovers() -> None:
    data = big_png()
    with MediaSandbox(SMALL_BUDGET_MB) as sandbox:
        try:
            s = sandbox.run(hash_bytes, data, "big.png", Settings())
            assert s.error and "memory" in s.error, s.error
        except SandboxError as e:
            assert "memory budget" in str(e)
        small = sandbox.run(hash_bytes, jpeg_bytes(photo_like(64, 48, seed=1)), "a.jpg", Settings())
        assert small.pdq is not None and small.error is None  # the next file is hashed as usual


class _BrokenByAnother:
    """The shared sandbox pool just after another thread's file killed one of its processes: as
    ``ProcessPoolExecutor`` does then, every call in flight fails with ``BrokenProcessPool``."""

    def submit(self, fn: object, *args: object, **kwargs: object) -> object:
        from concurrent.futures import Future
        from concurrent.futures.process import BrokenProcessPool

        future: Future[object] = Future()
        future.set_exception(BrokenProcessPool("A child process terminated abruptly"))
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def test_a_file_beside_a_crash_is_hashed_again_alone_and_only_the_culprit_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One process dying breaks the pool for every file in it, so a walk thread's ordinary file
    hashed beside a decoder crash was stored with the crash's error and no PDQ (a known picture
    could then reach a person). It is hashed once more, alone in a process of its own; the
    culprit dies there again and only it gets the error."""
    import os

    data = jpeg_bytes(photo_like(64, 48, seed=3))
    with MediaSandbox(256, processes=2) as sandbox:
        monkeypatch.setattr(sandbox, "_pool", _BrokenByAnother())
        s = sandbox.run(hash_bytes, data, "beside.jpg", Settings())
        assert s.error is None and s.pdq == hash_bytes(data, "beside.jpg").pdq
        monkeypatch.setattr(sandbox, "_pool", _BrokenByAnother())
        with pytest.raises(SandboxError, match="decoding process stopped"):
            sandbox.run(os._exit, 3)  # the culprit: dies again, alone
        after = sandbox.run(hash_bytes, data, "next.jpg", Settings())  # a fresh shared pool
        assert after.pdq == s.pdq


_KILLED_PARENT = """
import os, signal, sys
from meldpunt.signals.sandbox import MediaSandbox
sandbox = MediaSandbox(256, processes=2)
print(sandbox.run(os.getpid), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer or kill -9 ends a server
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_sandbox_processes_end_when_the_process_that_started_them_is_killed() -> None:
    """A SIGKILLed server's decoding processes (and their forkserver) held each other's pipes open
    and waited for work for ever: every crash left some 250 MB of processes behind."""
    import os
    import signal
    import time

    # (its output is read line by line: the orphans, holding the pipe, would keep run() waiting)
    server = subprocess.Popen([sys.executable, "-c", _KILLED_PARENT], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    worker = int(server.stdout.readline())
    assert server.wait(timeout=60) == -signal.SIGKILL
    server.stdout.close()
    deadline = time.monotonic() + 30  # a process's end, not a speed: generous
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        assert not _alive(worker), "the decoding process outlived the server that started it"
    finally:
        if _alive(worker):
            os.kill(worker, signal.SIGKILL)


# --- a JPEG cut short ---------------------------------------------------------------------------


def _cut_jpeg() -> tuple[bytes, bytes]:
    whole = jpeg_bytes(photo_like(640, 480, seed=21))
    return whole, whole[: len(whole) * 3 // 5]


def test_truncated_jpeg_is_hashed_from_what_decodes_and_says_so() -> None:
    whole, cut = _cut_jpeg()
    s = hash_bytes(cut, "cut.jpg")
    full = hash_bytes(whole, "whole.jpg")
    assert s.error is None and s.truncated and not full.truncated
    assert s.pdq and full.pdq and s.pdq_quality is not None and hamming(s.pdq, full.pdq) < 100
    assert json.loads(json.dumps(s.to_json_dict()))["truncated"] is True
    assert "truncated" not in full.to_json_dict()


class _Web:
    def __init__(self) -> None:
        _whole, cut = _cut_jpeg()
        same = jpeg_bytes(photo_like(200, 150, seed=22))
        self.files = {"/cut.jpg": cut, "/same.jpg": same, "/big.png": big_png()}
        self.pages = {
            "/cut": page("/cut.jpg"),
            "/dup-a": page(*(f"/same.jpg?at={n}" for n in range(30))),
            "/dup-b": page(*(f"/same.jpg?at=b{n}" for n in range(5))),
            "/big": page("/big.png", "/same.jpg?at=big"),
        }

    def route(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        if path in self.pages:
            _send(h, 200, self.pages[path], "text/html; charset=utf-8")
        elif path in self.files:
            _send(h, 200, self.files[path], "image/png" if path.endswith(".png") else "image/jpeg")
        else:
            _send(h, 404, b"not here", "text/plain")


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    s = Served(_Web(), "127.0.0.1")  # type: ignore[arg-type]
    yield s
    s.close()


def test_truncated_jpeg_in_a_reported_page_goes_to_review_marked_truncated(
    db_url: str, served: Served, services_factory: Callable[[Settings], Services]
) -> None:
    services = services_factory(make_settings(db_url))
    [item_id] = submit(services, served.url("/cut"))
    drain(services)
    assert item(services, item_id)["state"] == "needs_review"
    [m] = media(services, item_id).values()
    assert m["outcome"] == "new" and m["pdq"] and m["pdq_quality"] is not None
    assert str(m["error"]).startswith(
        "truncated: the JPEG data ends early; hashed from the part that decodes"
    )


def test_media_over_the_memory_budget_fail_alone(
    sqlite_db: str, served: Served, services_factory: Callable[[Settings], Services]
) -> None:
    services = services_factory(make_settings(sqlite_db, media_memory_mb=SMALL_BUDGET_MB))
    [item_id] = submit(services, served.url("/big"))
    drain(services)
    got = media(services, item_id)
    assert got["big.png"]["outcome"] == "failed" and "memory" in str(got["big.png"]["error"])
    assert got["big.png"]["md5"]  # exact hashes are still taken (and matched)
    assert got["same.jpg?at=big"]["outcome"] == "new"  # the rest of the page is unaffected
    assert item(services, item_id)["state"] == "needs_review"


# --- one stored copy per content ----------------------------------------------------------------


def _counts(services: Services) -> tuple[int, int, list[int]]:
    with services.engine.connect() as conn:
        blobs = conn.execute(select(func.count()).select_from(ReviewBlob)).scalar_one()
        contents = conn.execute(select(func.count()).select_from(ReviewContent)).scalar_one()
        refs = list(conn.execute(select(ReviewContent.refs)).scalars())
    return int(blobs), int(contents), [int(r) for r in refs]


def test_same_image_at_many_urls_is_stored_once_and_purging_one_item_keeps_the_others(
    db_url: str, served: Served, services_factory: Callable[[Settings], Services]
) -> None:
    services = services_factory(make_settings(db_url))
    a, b = submit(services, served.url("/dup-a"), served.url("/dup-b"))
    drain(services)
    ids = {i: [int(m["id"]) for m in media(services, i).values()] for i in (a, b)}
    assert (len(ids[a]), len(ids[b])) == (30, 5)
    assert _counts(services) == (35, 1, [35])  # 35 media, one encrypted copy
    store = ReviewStore.from_settings(services.settings)
    with services.engine.begin() as conn:
        for mid in ids[a]:  # item a classified: its media purged
            assert store.purge(conn, mid)
    assert _counts(services) == (5, 1, [5])
    with services.engine.connect() as conn:
        expected = hashlib.sha256(store.get(conn, ids[b][0])).hexdigest()
        for mid in ids[b]:
            assert hashlib.sha256(store.get(conn, mid)).hexdigest() == expected
            assert store.has(conn, mid)
    with services.engine.begin() as conn:
        for mid in ids[b]:
            store.purge(conn, mid)
    assert _counts(services) == (0, 0, [])


def test_concurrent_puts_and_purges_of_one_content_keep_it_while_referenced(
    db_url: str, served: Served, services_factory: Callable[[Settings], Services]
) -> None:
    services = services_factory(make_settings(db_url))
    [a] = submit(services, served.url("/dup-a"))
    drain(services)
    store = ReviewStore.from_settings(services.settings)
    ids = [int(m["id"]) for m in media(services, a).values()]
    with services.engine.begin() as conn:
        data = store.get(conn, ids[0])
        for mid in ids:
            store.purge(conn, mid)
    assert _counts(services)[1] == 0

    def put(mid: int) -> None:
        with services.engine.begin() as conn:
            store.put(conn, mid, data)

    def purge(mid: int) -> None:
        with services.engine.begin() as conn:
            store.purge(conn, mid)

    at_once([(put, mid) for mid in ids[:8]])
    assert _counts(services) == (8, 1, [8])
    # Half leave while others arrive: the content is never deleted under a reference.
    at_once([(purge, mid) for mid in ids[:4]] + [(put, mid) for mid in ids[8:12]])
    assert _counts(services) == (8, 1, [8])
    with services.engine.connect() as conn:
        for mid in ids[4:12]:
            assert store.get(conn, mid) == data
    at_once([(purge, mid) for mid in ids[4:12]])
    assert _counts(services) == (0, 0, [])


def at_once(calls: Sequence[tuple[Callable[[int], None], int]]) -> None:
    """Each ``fn(arg)`` in its own thread, all released together; fails on any exception."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(fn: Callable[[int], None], arg: int) -> None:
        try:
            barrier.wait(timeout=30)
            fn(arg)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=call) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
