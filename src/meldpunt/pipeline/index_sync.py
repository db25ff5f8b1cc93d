"""The PDQ index of every PDQ bank entry, persisted beside the database and kept in step with it.

What the saved index holds is written down next to it: the database's ``pdq_epoch`` (bumped by any
deletion of PDQ entries) and the ids of the imports it has taken in. Opening it costs a load (memory
mapped, seconds at 10M) plus reading only the imports committed since — a cold ``scan`` against a
10-million-hash bank starts matching within seconds. A changed epoch means entries were removed, and
the index is rebuilt from the database. Every step is idempotent (adding an id again replaces it),
so a crash between saving the index and its state costs a little repeated work, never a wrong answer.

Small imports do not rewrite the big saved index: what was taken in since it was saved (the
*delta*: codes and ids) goes to one small file beside it (``<index>.delta.npy``, a structured NumPy
array: no pickle), and the state names the imports in the base and the delta's length. Only once
the delta passes ``max(DELTA_MIN, DELTA_SHARE × base)`` entries is the whole index saved again (and
the delta emptied). A final classification adds a few hashes to the hotline's own bank: with a
10-million-hash base, each worker then writes kilobytes, not 1.2 GB. A delta file whose length
differs from the state's (a save cut short, two processes saving at once) is ignored: the imports
beyond the base are read again from the database. Within one process saves take turns (the
temporary files are named by the pid, which the web's matcher and the worker threads share).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

from meldpunt.domain import SignalType
from meldpunt.index import PDQIndex, hex_to_codes
from meldpunt.store.banks import BankRepository
from meldpunt.store.db import sqlite_path

log = logging.getLogger(__name__)
STATE_VERSION = 2
#: the delta is folded into a full save once it holds this many entries ...
DELTA_MIN = 50_000
#: ... or this share of the base, whichever is more
DELTA_SHARE = 0.02
DELTA_DTYPE = np.dtype([("code", np.uint8, (32,)), ("id", np.int64)])
#: One save at a time in a process: its temporary files are named by the pid, and the web's matcher
#: and ``meldpunt serve``'s worker threads share one (each took the other's half-written index).
_SAVING = threading.Lock()


def default_index_path(repo: BankRepository) -> Path:
    url = repo.engine.url
    db_file = sqlite_path(url)
    if db_file is not None:
        return db_file.with_name(db_file.name + ".pdqindex")
    ident = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()[:16]
    return Path(platformdirs.user_cache_dir("meldpunt")) / f"pdqindex-{ident}"


@dataclass
class SyncReport:
    loaded: bool
    rebuilt: bool
    added: int
    size: int


class PersistentPDQIndex:
    def __init__(self, repo: BankRepository, path: Path | None = None) -> None:
        self.repo = repo
        self.path = path if path is not None else default_index_path(repo)
        self.state_path = self.path.with_name(self.path.name + ".state.json")

    def open(self, progress: Callable[[int], None] | None = None) -> tuple[PDQIndex, SyncReport]:
        """The index, brought up to date with the database and saved again if it changed."""
        epoch = self.repo.counter("pdq_epoch")
        imports = set(self.repo.import_ids())
        index, state = self._load()
        loaded = index is not None
        rebuilt = False
        delta = _empty_delta()
        base_imports: set[int] = set()
        if index is None or state is None or state.get("epoch") != epoch:
            index = PDQIndex()
            todo: list[int] | None = None  # everything
            rebuilt = True
        else:
            base_imports = {int(i) for i in state.get("base_imports", [])}
            saved = self._load_delta(int(state.get("delta_n", 0)))
            if saved is None:  # cut short or overtaken: read what is beyond the base again
                done = base_imports
            else:
                delta = saved
                done = {int(i) for i in state.get("imports", [])}
            if len(delta):
                index.add(delta["code"], delta["id"])
            todo = sorted(imports - done)
        added = 0
        new_codes: list[np.ndarray] = []
        new_ids: list[np.ndarray] = []
        if todo is None or todo:
            # Gathered as codes and added at once: one build, not one merge per database batch.
            for batch in self.repo.iter_signal(SignalType.PDQ, import_ids=todo):
                new_codes.append(hex_to_codes([v for _, v in batch]))
                new_ids.append(np.fromiter((i for i, _ in batch), dtype=np.int64, count=len(batch)))
                if progress:
                    progress(len(batch))
            if new_codes:
                index.add(np.concatenate(new_codes), np.concatenate(new_ids))
                added = sum(len(c) for c in new_codes)
        if rebuilt:
            self._save(index, {"version": STATE_VERSION, "epoch": epoch, "imports": sorted(imports)})
        elif added or todo:
            fresh = _as_delta(new_codes, new_ids)
            grown = np.concatenate([delta, fresh]) if len(delta) else fresh
            if len(grown) > max(DELTA_MIN, DELTA_SHARE * (len(index) - len(grown))):
                self._save(index, {"version": STATE_VERSION, "epoch": epoch, "imports": sorted(imports)})
            else:
                self._save_delta(grown, epoch, base_imports, imports)
        return index, SyncReport(loaded=loaded, rebuilt=rebuilt and loaded, added=added, size=len(index))

    @property
    def delta_path(self) -> Path:
        return self.path.with_name(self.path.name + ".delta.npy")

    def _load_delta(self, expected: int) -> np.ndarray | None:
        """The saved delta when it holds exactly ``expected`` entries; None otherwise."""
        if expected == 0:
            return _empty_delta()
        try:
            delta: np.ndarray = np.load(self.delta_path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        if delta.dtype != DELTA_DTYPE or len(delta) != expected:
            return None
        return delta

    def _save_delta(self, delta: np.ndarray, epoch: int, base_imports: set[int], imports: set[int]) -> None:
        with _SAVING:
            self._save_delta_now(delta, epoch, base_imports, imports)

    def _save_delta_now(
        self, delta: np.ndarray, epoch: int, base_imports: set[int], imports: set[int]
    ) -> None:
        try:
            tmp = self.delta_path.with_name(self.delta_path.name + f".tmp-{os.getpid()}")
            with open(tmp, "wb") as f:
                np.save(f, delta, allow_pickle=False)
            tmp.replace(self.delta_path)
            self._write_state(
                {
                    "version": STATE_VERSION,
                    "epoch": epoch,
                    "base_imports": sorted(base_imports),
                    "imports": sorted(imports),
                    "delta_n": len(delta),
                }
            )
        except OSError as e:
            log.warning("could not save the PDQ index's delta at %s: %s", self.delta_path, e)

    def _write_state(self, state: dict[str, object]) -> None:
        state_tmp = self.state_path.with_name(self.state_path.name + f".tmp-{os.getpid()}")
        state_tmp.write_text(json.dumps(state))
        state_tmp.replace(self.state_path)

    def _load(self) -> tuple[PDQIndex | None, dict[str, Any] | None]:
        if not (self.path.exists() and self.state_path.exists()):
            return None, None
        try:
            state = json.loads(self.state_path.read_text())
            if state.get("version") != STATE_VERSION:
                return None, None
            return PDQIndex.load(self.path), state
        except (OSError, ValueError) as e:
            log.warning("saved PDQ index at %s is unreadable (%s); rebuilding it", self.path, e)
            return None, None

    def _save(self, index: PDQIndex, state: dict[str, object]) -> None:
        with _SAVING:
            self._save_now(index, state)

    def _save_now(self, index: PDQIndex, state: dict[str, object]) -> None:
        tmp = self.path.with_name(self.path.name + f".tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            index.save(tmp)
            # The state names what the index holds: write it only once the index is in place.
            self.state_path.unlink(missing_ok=True)
            old = self.path.with_name(self.path.name + f".old-{os.getpid()}")
            if self.path.exists():
                self.path.rename(old)
            tmp.rename(self.path)
            shutil.rmtree(old, ignore_errors=True)
            self.delta_path.unlink(missing_ok=True)
            self._write_state({**state, "base_imports": state["imports"], "delta_n": 0})
        except OSError as e:
            log.warning("could not save the PDQ index at %s: %s", self.path, e)
            shutil.rmtree(tmp, ignore_errors=True)


def _empty_delta() -> np.ndarray:
    return np.empty(0, dtype=DELTA_DTYPE)


def _as_delta(codes: list[np.ndarray], ids: list[np.ndarray]) -> np.ndarray:
    if not codes:
        return _empty_delta()
    c, i = np.concatenate(codes), np.concatenate(ids)
    out = np.empty(len(c), dtype=DELTA_DTYPE)
    out["code"] = c
    out["id"] = i
    return out
