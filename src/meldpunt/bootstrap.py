"""Wiring in one place: settings -> database engine, bank repository, persisted PDQ index.

Nothing here runs at import time; the CLI (and tests, with their own settings) call ``Services``.
The one :class:`Settings` object is read once (by the CLI) and each service gets its part from it:
``settings.web`` the web app, ``settings.triage`` triage, ``settings.staff`` staff accounts.
The database is opened, created and migrated only when something first asks for it, so commands
that need no database (``meldpunt hash``) never touch one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING

from meldpunt.settings import Settings, StaffSettings

if TYPE_CHECKING:  # the heavy modules (numba, SQLAlchemy) load only when a command needs them
    from sqlalchemy import Engine

    from meldpunt.accounts import Accounts
    from meldpunt.index import PDQIndex
    from meldpunt.pipeline.index_sync import PersistentPDQIndex, SyncReport
    from meldpunt.pipeline.matching import Matcher
    from meldpunt.store.banks import BankRepository


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def engine(self) -> Engine:
        from meldpunt.store.db import create_db_engine

        return create_db_engine(self.settings.db)

    @cached_property
    def banks(self) -> BankRepository:
        from meldpunt.store.banks import BankRepository

        return BankRepository(self.engine)

    @cached_property
    def pdq_store(self) -> PersistentPDQIndex:
        from meldpunt.pipeline.index_sync import PersistentPDQIndex

        return PersistentPDQIndex(self.banks)

    def pdq_index(self, progress: Callable[[int], None] | None = None) -> tuple[PDQIndex, SyncReport]:
        return self.pdq_store.open(progress)

    def matcher(self, banks: Sequence[str] | None = None, index: PDQIndex | None = None) -> Matcher:
        from meldpunt.pipeline.matching import Matcher

        if index is None:
            index, _ = self.pdq_index()
        return Matcher(self.banks, index, self.settings, banks)

    def accounts(self, policy: StaffSettings | None = None) -> Accounts:
        """Staff accounts (under ``settings.staff`` unless a policy is given), their TOTP secrets sealed under a key derived from the review key (kept
        outside the database, shared by every process already)."""
        from meldpunt.accounts import Accounts, SecretSealer
        from meldpunt.stores.review import review_key

        return Accounts(
            self.engine,
            policy or self.settings.staff,
            sealer=SecretSealer.derived_from(review_key(self.settings)),
        )

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
