"""Media decoding in a child process under a memory limit, so a hostile file costs that process only.

Why a process, and not only careful decoders: decoding is bounded by pixels
(``signals.image``, ``signals.video``), but the bounds are ours and the decoders are not (libpng,
libjpeg, libwebp, libheif, FFmpeg); one we did not foresee must not be able to take the web server,
and with it the public form, down with it, as 8 thumbnails of a 190 KB PNG once did (5.9 GB). So
the walk's media job and the workspace's renderings run their decoding through a
:class:`MediaSandbox`: a one-process (or few-process) pool whose processes have ``RLIMIT_DATA``
(their heap and private writable mappings, not address space that libraries merely reserve) set to
``settings.media_memory_mb`` more than the process holds when it starts (about 110 MB: the
interpreter, NumPy, Pillow, PyAV). Going over it is a ``MemoryError`` or the death of that process
(``BrokenProcessPool``), which :meth:`MediaSandbox.run` turns into :class:`SandboxError` with a
sentence saying why; the pool is made again for the next file. ``media_memory_mb = 0`` decodes in
the calling process (one-off tools and tests that want no processes).

The processes come from the ``forkserver`` (as ``signals.batch`` does, with this package preloaded):
they start in milliseconds without forking a parent that holds threads and locks. They end with the
process that started them (:func:`die_with`): killed (SIGKILL, the OOM killer), it never shuts the
pool down, and its workers and the forkserver hold each other's pipes open, waiting for ever.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import select
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Files a sandbox process decodes before it is replaced (heap fragmentation stays bounded).
TASKS_PER_PROCESS = 100
_PRELOAD = ["meldpunt.signals", "meldpunt.review.render"]


class SandboxError(Exception):
    """The media process ran out of its memory budget or died; the message says so in words."""


def die_with(pid: int) -> None:
    """Initializer of a pool process: end this process (``os._exit``) once process ``pid`` has
    ended — watched through a pidfd (readable when it ends; Linux 5.3+), else by asking every
    second whether it still exists."""
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(0)  # gone already
    except (AttributeError, OSError):
        pidfd = None

    def watch() -> None:
        if pidfd is not None:
            select.select([pidfd], [], [])
        else:
            while True:
                time.sleep(1.0)
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                except PermissionError:
                    pass
        os._exit(0)

    threading.Thread(target=watch, name=f"die-with-{pid}", daemon=True).start()


def _start(budget_bytes: int, parent: int) -> None:
    """Initializer of a sandbox process: ends with ``parent``; data memory capped (after the
    watcher thread has started, so its stack is not taken from the budget)."""
    die_with(parent)
    _limit_memory(budget_bytes)


def _limit_memory(budget_bytes: int) -> None:
    """Initializer of a sandbox process: cap its data memory at what it holds now plus the budget
    (Linux counts every private writable mapping in RLIMIT_DATA, so NumPy's and the decoders' large
    buffers are included; what the process starts with depends on the machine: thread stacks of
    NumPy's BLAS, one per core, are in it)."""
    import resource

    limit = _data_bytes() + budget_bytes
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def _data_bytes() -> int:
    """This process's data memory now (``VmData``), 0 where /proc does not say."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


class MediaSandbox:
    """Runs functions that decode media in ``processes`` child processes limited to ``memory_mb``
    MB each (0: in the calling process). Thread-safe; close it when done (or use ``with``)."""

    def __init__(self, memory_mb: int, *, processes: int = 1) -> None:
        self.memory_mb = memory_mb
        self.processes = max(1, processes)
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> MediaSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ready(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = self._new_pool(self.processes)
            return self._pool

    def _new_pool(self, processes: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=processes,
            mp_context=_context(),
            initializer=_start,
            initargs=(self.memory_mb * 1024 * 1024, os.getpid()),
            max_tasks_per_child=TASKS_PER_PROCESS,
        )

    def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a sandbox process; its exceptions are raised here, except
        running out of memory or the process dying, which raise :class:`SandboxError`."""
        if self.memory_mb <= 0:
            return fn(*args, **kwargs)
        pool = self._ready()
        try:
            return pool.submit(fn, *args, **kwargs).result()
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
        except MemoryError:
            raise self._over_budget() from None
        # One process dying breaks the pool for every call in it: the culprit's and any other
        # thread's beside it. Once more, alone in a process of its own: a file beside the culprit
        # is hashed as usual (not stored without its PDQ), and the culprit dies again, alone.
        log.info("a media process died; running its call once more, alone")
        with self._new_pool(1) as alone:
            try:
                return alone.submit(fn, *args, **kwargs).result()
            except BrokenProcessPool:
                log.warning("a media process died (memory budget %d MB, or a decoder crash)", self.memory_mb)
                raise SandboxError(
                    f"the decoding process stopped: out of its {self.memory_mb:,} MB memory budget"
                    " (settings.media_memory_mb), or a decoder crash"
                ) from None
            except MemoryError:
                raise self._over_budget() from None

    def _over_budget(self) -> SandboxError:
        return SandboxError(
            f"decoding needs more than the {self.memory_mb:,} MB memory budget (settings.media_memory_mb)"
        )

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
