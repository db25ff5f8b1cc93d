"""Wiring in one place: settings (and one clock) -> every service, each built once.

Engine, banks, PDQ index, matcher, accounts, triage, wellness, the audit log and the review and
evidence stores: the web app and every CLI command take them from here and build none of their own.
Every service that reads the time is given ``Services.clock`` (:class:`meldpunt.clock.Clock`);
tests give a :class:`meldpunt.clock.ManualClock` and move it on instead of sleeping.

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

from meldpunt.clock import Clock, SystemClock
from meldpunt.settings import Settings, StaffSettings

if TYPE_CHECKING:  # the heavy modules (numba, SQLAlchemy) load only when a command needs them
    from sqlalchemy import Engine

    from meldpunt.accounts import Accounts
    from meldpunt.act.context import Worker
    from meldpunt.audit import AuditLog
    from meldpunt.fetch.guard import Resolver
    from meldpunt.index import PDQIndex
    from meldpunt.locate import Locator
    from meldpunt.pipeline.index_sync import PersistentPDQIndex, SyncReport
    from meldpunt.pipeline.jobs import ClaimedJob
    from meldpunt.pipeline.matching import Matcher
    from meldpunt.store.banks import BankRepository
    from meldpunt.stores.evidence import EvidenceStore
    from meldpunt.stores.review import ReviewStore
    from meldpunt.stores.signing import KeyRing
    from meldpunt.triage import Triage
    from meldpunt.wellness import Wellness


class Services:
    def __init__(
        self, settings: Settings, clock: Clock | None = None, resolver: Resolver | None = None
    ) -> None:
        self.settings = settings
        #: the one clock: every service below reads the time from it
        self.clock: Clock = clock or SystemClock()
        #: host -> addresses for the fetcher and the locator; None: the system's resolver. Tests
        #: and the demo give their own, as they give a clock (a host that moves to another address)
        self.resolver: Resolver | None = resolver

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
        """Staff accounts under ``settings.staff`` (the one service; a new one only for another
        ``policy``), their TOTP secrets sealed under a key derived from the review key (kept outside
        the database, shared by every process already). The key is read when a secret first is."""
        if policy is None or policy is self.settings.staff:
            return self._accounts
        return self._make_accounts(policy)

    @cached_property
    def _accounts(self) -> Accounts:
        return self._make_accounts(self.settings.staff)

    def _make_accounts(self, policy: StaffSettings) -> Accounts:
        from meldpunt.accounts import Accounts, SecretSealer
        from meldpunt.stores.review import review_key

        return Accounts(
            self.engine,
            policy,
            clock=self.clock.now,
            sealer_factory=lambda: SecretSealer.derived_from(review_key(self.settings)),
        )

    @cached_property
    def audit(self) -> AuditLog:
        from meldpunt.audit import AuditLog

        return AuditLog(self.engine, clock=self.clock.now)

    @cached_property
    def review_store(self) -> ReviewStore:
        """The encrypted review store (its key read or made on first use: ``StoreKeyError`` if bad)."""
        from meldpunt.stores.review import ReviewStore

        return ReviewStore.from_settings(self.settings)

    @cached_property
    def evidence_store(self) -> EvidenceStore:
        """The encrypted evidence store; refuses a key equal to the review store's."""
        from meldpunt.stores.evidence import EvidenceStore

        return EvidenceStore.from_settings(self.settings, self.review_store)

    @cached_property
    def triage(self) -> Triage:
        """Triage under ``settings.triage``, on this clock and these stores (opened when first used)."""
        from meldpunt.triage import Triage

        return Triage(
            self.engine,
            settings=self.settings,
            config=self.settings.triage,
            clock=self.clock.now,
            review_store=lambda: self.review_store,
            evidence_store=lambda: self.evidence_store,
        )

    @cached_property
    def wellness(self) -> Wellness:
        from meldpunt.wellness import Wellness

        return Wellness(self.engine, clock=self.clock.now)

    def signing_keys(self) -> KeyRing:
        """The instance's Ed25519 key ring (``stores.signing``), read afresh each call so a rotation
        by ``meldpunt keys rotate`` is seen without a restart; made on first use."""
        from meldpunt.stores.signing import load_key_ring

        return load_key_ring(self.settings, now=self.clock.now())

    # --- locate and act (meldpunt.act) ----------------------------------------------------------

    @cached_property
    def locator(self) -> Locator:
        """Where content is hosted (``meldpunt.locate``): the user's geo files, the embedded data,
        RDAP. Tests assign their own (a fake resolver, a loopback RDAP server)."""
        from meldpunt.locate import Locator

        return Locator.from_settings(self.settings, resolver=self.resolver)

    def job_steps(self, worker: Worker) -> dict[str, Callable[[ClaimedJob], str]]:
        """The job kinds of locate-and-act, for a walk worker (``pipeline.walk.Walker``)."""
        from meldpunt.act.ticks import job_steps

        return job_steps(self, worker)

    def act_tick(self) -> int:
        """One periodic pass of locate-and-act (``act.ticks.run_ticks``) at this clock's time."""
        from meldpunt.act.ticks import run_ticks

        return run_ticks(self)

    def close(self) -> None:
        if "locator" in self.__dict__:
            self.locator.close()
        if "engine" in self.__dict__:
            self.engine.dispose()
