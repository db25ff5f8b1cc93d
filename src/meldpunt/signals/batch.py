"""Many files -> a stream of :class:`Signals`, in input order, on every core, never stopping.

Design choices, and why:

* Processes, not threads: PDQ's pixel work and parts of decoding hold the GIL.
* The ``forkserver`` start method, with this package preloaded in the server: workers start in
  milliseconds like ``fork`` but without forking a parent that may hold threads and locks (a web
  server, PyAV's decoder threads), which is how ``fork`` deadlocks.
* A bounded window of files in flight, so a directory of a million files streams in constant memory
  and results come back in input order.
* A worker that dies (a decoder crash, the OOM killer) breaks a ``ProcessPoolExecutor`` and fails
  every file in flight. Those files are retried one at a time, each in a fresh one-process pool, so
  only the file that kills its worker gets an error record (with its exact hashes, computed here);
  the batch continues on a new pool.
"""

from __future__ import annotations

import errno
import itertools
import logging
import multiprocessing
import os
import stat
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial

from meldpunt.settings import Settings
from meldpunt.signals.core import StrPath, hash_file, resolve_settings
from meldpunt.signals.exact import hash_stream
from meldpunt.signals.model import MediaKind, Signals
from meldpunt.signals.sniff import HEAD_BYTES, detect

log = logging.getLogger(__name__)

#: Batches up to this many files are hashed in the calling process (a pool costs more than it saves).
SMALL_BATCH = 3
#: Files in flight per worker.
WINDOW_PER_WORKER = 4

Task = Callable[[str], Signals]


def hash_files(
    paths: Iterable[StrPath],
    settings: Settings | None = None,
    *,
    dihedral: bool = False,
    every_frame: bool = False,
    workers: int | None = None,
) -> Iterator[Signals]:
    """Signals of every file in ``paths`` (directories recursed in sorted order), in input order.

    ``workers``: processes to use (default ``settings.hash_workers``; 0 means one per CPU core). Never
    raises for a bad file: unreadable files, decoding failures and worker crashes become records
    with ``error`` set.
    """
    settings = resolve_settings(settings)
    n = settings.hash_workers if workers is None else workers
    if n <= 0:
        n = os.cpu_count() or 1
    task = partial(safe_hash_file, settings=settings, dihedral=dihedral, every_frame=every_frame)
    return run_batch(expand_paths(paths), task, n)


def expand_paths(paths: Iterable[StrPath]) -> Iterator[str]:
    """Files named in ``paths``; a directory gives its files recursively, sorted by path.

    Symbolic links to directories are not followed (no loops); links to files are. A path that does
    not exist is passed on, to come back as an error record.
    """
    for p in paths:
        name = os.fspath(p)
        if not os.path.isdir(name):
            yield name
            continue
        for root, dirs, files in os.walk(name, onerror=lambda e: log.warning("cannot list %s", e)):
            dirs.sort()
            for f in sorted(files):
                yield os.path.join(root, f)


def safe_hash_file(path: str, *, settings: Settings, dihedral: bool, every_frame: bool) -> Signals:
    """:func:`hash_file` that returns a record instead of raising."""
    try:
        return hash_file(path, settings, dihedral=dihedral, every_frame=every_frame)
    except OSError as e:
        return unreadable(path, e)
    except Exception as e:  # hash_file catches content problems; this is a last resort
        log.exception("unexpected failure hashing %s", path)
        return failed(path, f"cannot hash file: {type(e).__name__}: {e}")


def unreadable(path: str, e: OSError) -> Signals:
    reason = e.strerror or str(e)
    try:
        size = os.stat(path).st_size
    except OSError:
        size = 0
    return Signals(path, size, "", "", "", MediaKind.OTHER, error=f"cannot read file: {reason}")


def failed(path: str, error: str) -> Signals:
    """An error record for ``path`` with its exact hashes (computed here, which cannot crash)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
            exact = hash_stream(f, head)
    except OSError as e:
        return unreadable(path, e)
    kind = detect(head, path).kind
    return Signals(path, exact.size, exact.md5, exact.sha1, exact.sha256, kind, error=error)


def run_batch(paths: Iterable[str], task: Task, workers: int) -> Iterator[Signals]:
    """``task`` over ``paths`` on ``workers`` processes, results in order (see the module notes)."""
    it = iter(paths)
    first = list(itertools.islice(it, SMALL_BATCH + 1))
    if workers <= 1 or len(first) <= SMALL_BATCH:
        for path in itertools.chain(first, it):
            yield task(path)
        return
    yield from _pooled(itertools.chain(first, it), task, workers)


def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["meldpunt.signals"])
    return ctx


def _pool(workers: int) -> ProcessPoolExecutor:
    from meldpunt.signals.sandbox import die_with

    # the workers end with this process, also when it is killed (see signals.sandbox)
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=_context(), initializer=die_with, initargs=(os.getpid(),)
    )


def _pooled(paths: Iterator[str], task: Task, workers: int) -> Iterator[Signals]:
    window = workers * WINDOW_PER_WORKER
    pending: deque[tuple[str, Future[Signals]]] = deque()
    pool = _pool(workers)
    try:
        while True:
            broken = False
            while len(pending) < window:
                path = next(paths, None)
                if path is None:
                    break
                try:
                    future = pool.submit(task, path)
                except BrokenProcessPool:
                    # a worker died since the last submit: this file waits for the next pool (in
                    # its place, after the ones in flight), the ones in flight are recovered below
                    paths = itertools.chain([path], paths)
                    broken = True
                    break
                pending.append((path, future))
            if not pending:
                if not broken:
                    return
                pool.shutdown(wait=True, cancel_futures=True)
                pool = _pool(workers)
                continue
            path, future = pending[0]
            try:
                result = future.result()
            except BrokenProcessPool:
                pool.shutdown(wait=True, cancel_futures=True)
                yield from _recover(pending, task)
                pending.clear()
                pool = _pool(workers)
                continue
            except Exception as e:  # e.g. a result that cannot be pickled back
                result = failed(path, f"cannot hash file: {type(e).__name__}: {e}")
            pending.popleft()
            yield result
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _recover(pending: Iterable[tuple[str, Future[Signals]]], task: Task) -> Iterator[Signals]:
    """Results for the files in flight when a worker died: finished ones as they are, the rest
    retried alone so that only the culprit is marked."""
    for path, future in pending:
        if future.done() and not future.cancelled() and future.exception() is None:
            yield future.result()
        else:
            yield _isolated(path, task)


def _isolated(path: str, task: Task) -> Signals:
    with _pool(1) as pool:
        try:
            return pool.submit(task, path).result()
        except BrokenProcessPool:
            log.error("the hashing process died on %s", path)
            return failed(path, "the hashing process crashed on this file (decoder crash or out of memory)")
        except Exception as e:
            return failed(path, f"cannot hash file: {type(e).__name__}: {e}")


__all__ = ["expand_paths", "hash_files", "run_batch", "safe_hash_file"]
