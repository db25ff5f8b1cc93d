"""The PDQ index of every PDQ bank entry, persisted beside the database and kept in step with it.

What the saved index holds is written down next to it: the database's ``pdq_epoch`` (bumped by any
deletion of PDQ entries) and the ids of the imports it has taken in. Opening it costs a load (memory
mapped, seconds at 10M) plus reading only the imports committed since — a cold ``scan`` against a
10-million-hash bank starts matching within seconds. A changed epoch means entries were removed, and
the index is rebuilt from the database. Every step is idempotent (adding an id again replaces it),
so a crash between saving the index and its state costs a little repeated work, never a wrong answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
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
STATE_VERSION = 1


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
        if index is None or state is None or state.get("epoch") != epoch:
            index = PDQIndex()
            todo: list[int] | None = None  # everything
            rebuilt = True
        else:
            done = {int(i) for i in state.get("imports", [])}
            todo = sorted(imports - done)
        added = 0
        if todo is None or todo:
            # Gathered as codes and added at once: one build, not one merge per database batch.
            codes: list[np.ndarray] = []
            ids: list[np.ndarray] = []
            for batch in self.repo.iter_signal(SignalType.PDQ, import_ids=todo):
                codes.append(hex_to_codes([v for _, v in batch]))
                ids.append(np.fromiter((i for i, _ in batch), dtype=np.int64, count=len(batch)))
                if progress:
                    progress(len(batch))
            if codes:
                index.add(np.concatenate(codes), np.concatenate(ids))
                added = sum(len(c) for c in codes)
        if rebuilt or added:
            self._save(index, {"version": STATE_VERSION, "epoch": epoch, "imports": sorted(imports)})
        return index, SyncReport(loaded=loaded, rebuilt=rebuilt and loaded, added=added, size=len(index))

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
            state_tmp = self.state_path.with_suffix(".tmp")
            state_tmp.write_text(json.dumps(state))
            state_tmp.replace(self.state_path)
        except OSError as e:
            log.warning("could not save the PDQ index at %s: %s", self.path, e)
            shutil.rmtree(tmp, ignore_errors=True)
