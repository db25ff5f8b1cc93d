"""One :class:`Matcher` per process that sees every change to the banks within about a second.

Every transaction that changes what the banks match (an import, a final classification's entries,
a deletion, a bank's policy or threshold) bumps one row, ``meta.banks_version``. The cache reads
that row at most every ``check_s`` seconds (one primary-key look-up; web requests and workers
alike), so a new hash is matchable in every process — web, workers, other machines on the same
PostgreSQL — within ``check_s`` of its commit, under any load.

A change does not reload the index. Exact hashes are looked up in the database on every match
anyway; new PDQ entries — those of imports this process has not taken in yet — go into a small
*fresh* index searched beside the big one, which stays as it was loaded (and stays shared by the
threads still searching it: nothing is changed in place). Only when PDQ entries were deleted (the
``pdq_epoch`` moved) or the fresh part has grown past :data:`FOLD_AT` is the persisted index opened
again (``Services.pdq_index``, which saves what was added as its small delta file).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

from meldpunt.domain import SignalType
from meldpunt.index import PDQIndex, hex_to_codes
from meldpunt.pipeline.index_sync import SyncReport
from meldpunt.pipeline.matching import Matcher
from meldpunt.settings import Settings
from meldpunt.store.banks import BANKS_VERSION, BankRepository

log = logging.getLogger(__name__)

#: fresh PDQ entries beyond which the persisted index is opened again (and its delta saved)
FOLD_AT = 50_000


class IndexNeeds(Protocol):
    """What the matcher cache needs of ``meldpunt.bootstrap.Services`` (a protocol, not the class:
    the pipeline does not import the wiring that imports it)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def banks(self) -> BankRepository: ...

    def pdq_index(self, progress: Callable[[int], None] | None = None) -> tuple[PDQIndex, SyncReport]: ...


class LayeredPDQIndex(PDQIndex):
    """A loaded index and a small fresh one searched together; neither is changed after it is
    built, so a new layer is a new object and a search in progress never sees one half-made.
    Only what :class:`Matcher` asks of an index is answered: :meth:`search` and ``len``."""

    def __init__(self, base: PDQIndex, fresh: PDQIndex) -> None:
        super().__init__()
        self.base = base
        self.fresh = fresh

    def __len__(self) -> int:
        return len(self.base) + len(self.fresh)

    def search(self, queries: object, max_distance: int = 31, **kw: object) -> list[list[tuple[int, int]]]:
        below = self.base.search(queries, max_distance)
        if len(self.fresh) == 0:
            return below
        above = self.fresh.search(queries, max_distance)
        return [sorted({*a, *b}, key=lambda r: (r[1], r[0])) for a, b in zip(below, above, strict=True)]


class MatcherCache:
    """The process's matcher, kept current: see the module's docstring. Thread-safe."""

    def __init__(
        self, services: IndexNeeds, check_s: float = 1.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.services = services
        self.check_s = check_s
        self._clock = clock
        self._lock = threading.Lock()
        self._matcher: Matcher | None = None
        self._checked = 0.0
        self._version: int | None = None
        self._epoch: int | None = None
        self._base: PDQIndex | None = None
        #: imports whose PDQ entries are in the base or the fresh part
        self._taken: set[int] = set()
        self._fresh_codes: list[np.ndarray] = []
        self._fresh_ids: list[np.ndarray] = []

    @property
    def version(self) -> int | None:
        """The ``banks_version`` the current matcher reflects (at least)."""
        return self._version

    def get(self, at_least: int | None = None) -> Matcher:
        """The matcher; ``at_least``: a ``banks_version`` it must reflect (checked now if it may not)."""
        with self._lock:
            now = self._clock()
            behind = at_least is not None and (self._version is None or self._version < at_least)
            if self._matcher is not None and now - self._checked < self.check_s and not behind:
                return self._matcher
            self._checked = now
            version = self.services.banks.counter(BANKS_VERSION)
            if self._matcher is None or version != self._version:
                self._refresh()
                self._version = version  # read before the data: a later change is seen next time
            assert self._matcher is not None
            return self._matcher

    def _refresh(self) -> None:
        banks = self.services.banks
        epoch = banks.counter("pdq_epoch")
        imports = set(banks.import_ids())
        fresh_n = sum(len(c) for c in self._fresh_ids)
        if self._base is None or epoch != self._epoch or fresh_n > FOLD_AT:
            index, report = self.services.pdq_index()
            if self._base is not None:
                log.info("hash lists changed: PDQ index reopened (%d hashes)", report.size)
            # Imports committed after this read are taken in again next time: adding an entry
            # that the base holds already only repeats a search hit, which the matcher merges.
            self._base, self._epoch, self._taken = index, epoch, imports
            self._fresh_codes, self._fresh_ids = [], []
        else:
            new = sorted(imports - self._taken)
            for batch in banks.iter_signal(SignalType.PDQ, import_ids=new) if new else ():
                self._fresh_codes.append(hex_to_codes([v for _, v in batch]))
                self._fresh_ids.append(np.fromiter((i for i, _ in batch), dtype=np.int64, count=len(batch)))
            self._taken |= set(new)
        index = self._base
        if self._fresh_ids:
            fresh = PDQIndex()
            fresh.add(np.concatenate(self._fresh_codes), np.concatenate(self._fresh_ids))
            index = LayeredPDQIndex(self._base, fresh)
        self._matcher = Matcher(banks, index, self.services.settings)
