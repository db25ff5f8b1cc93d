"""The triage world: a store with items, media, decisions and a settable clock."""

from __future__ import annotations

import hashlib
import random
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, insert, select

from meldpunt.domain.reports import MediumOutcome
from meldpunt.settings import Settings
from meldpunt.store.accounts import User
from meldpunt.store.banks import BankRepository
from meldpunt.store.reports import Item, Medium, Report, ReviewBlob
from meldpunt.stores.review import ReviewStore
from meldpunt.triage import (
    Triage,
    TriageConfig,
)

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


ILLEGAL = {"status": "baseline", "us": "A1", "age_band": "prepubescent", "flags": ["series_known"]}


NATIONAL = {"status": "nationally_illegal", "uk": "C"}


NOT_ILLEGAL = {"status": "not_illegal"}


def rand_hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    engine: Engine
    settings: Settings
    clock: Clock
    store: ReviewStore
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def triage(self, **config: Any) -> Triage:
        return Triage(
            self.engine,
            settings=self.settings,
            config=TriageConfig(hotline="test", **config),
            review_store=self.store,
            clock=self.clock,
        )

    def user(self, name: str, role: str) -> str:
        return add_user(self.engine, name, role)

    def item(
        self,
        *,
        urgent: bool = False,
        age_minutes: int = 0,
        source: str = "public",
        state: str = "needs_review",
        pdqs: tuple[str, ...] = (),
        blobs: bool = True,
    ) -> int:
        """A report with one item and one new medium per PDQ hash (synthetic exact hashes too)."""
        at = T0 - timedelta(minutes=age_minutes)
        with self.engine.begin() as conn:
            rid = conn.execute(
                insert(Report)
                .values(
                    receipt_hash=secrets.token_hex(32),
                    source=source,
                    seen_on="website",
                    urgent=urgent,
                    created_at=at,
                )
                .returning(Report.id)
            ).scalar_one()
            url = f"https://example.test/{secrets.token_hex(4)}"
            iid = conn.execute(
                insert(Item)
                .values(
                    report_id=rid,
                    url=url,
                    url_key=hashlib.sha256(url.encode()).hexdigest(),
                    host="example.test",
                    state=state,
                    urgent=urgent,
                    created_at=at,
                    updated_at=at,
                )
                .returning(Item.id)
            ).scalar_one()
            for n, pdq in enumerate(pdqs):
                murl = f"{url}/m{n}.png"
                mid = conn.execute(
                    insert(Medium)
                    .values(
                        item_id=iid,
                        url=murl,
                        url_key=hashlib.sha256(murl.encode()).hexdigest(),
                        kind="image",
                        size=1000,
                        md5=rand_hex(self.rng, 32),
                        sha1=rand_hex(self.rng, 40),
                        sha256=rand_hex(self.rng, 64),
                        pdq=pdq,
                        pdq_quality=100,
                        outcome=MediumOutcome.NEW.value,
                        matches="[]",
                        created_at=at,
                    )
                    .returning(Medium.id)
                ).scalar_one()
                if blobs:
                    self.store.put(conn, int(mid), b"benign synthetic bytes " + bytes([n]))
        return int(iid)

    def pdq(self) -> str:
        return rand_hex(self.rng, 64)

    def blobs_of(self, item_id: int) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(ReviewBlob)
                    .join(Medium, Medium.id == ReviewBlob.medium_id)
                    .where(Medium.item_id == item_id)
                ).scalar_one()
            )

    def own_entries(self, bank: str = "hotline-own") -> list[tuple[str, str, str]]:
        """(signal type, key, labels JSON) of the own bank's entries."""
        repo = BankRepository(self.engine)
        try:
            return sorted((st.value, v, lab.to_json()) for st, v, lab in repo.export_entries(bank))
        except ValueError:
            return []


def add_user(engine: Engine, name: str, role: str = "analyst") -> str:
    """A staff account row for triage tests (no password, no second factor: never signs in)."""
    with engine.begin() as conn:
        conn.execute(
            insert(User).values(
                name=name,
                role=role,
                password_hash="x",
                totp_enrolled=False,
                disabled=False,
                failed_count=0,
                created_at=T0,
                updated_at=T0,
            )
        )
    return name
