"""A notices world for tests: services on an injected clock pointed at the real SMTP sink, and
routed takedowns (``to_notice``) seeded for a contact, with the media hashes of their pages."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update

from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock
from meldpunt.domain.acting import TakedownState
from meldpunt.settings import MailSettings, NoticeSettings, RecheckSettings, Settings
from meldpunt.store.acting import Notice, NoticeItem, OutboxMessage, Takedown
from meldpunt.store.reports import Medium
from tests.helpers.acting import seed_contact, seed_item, seed_takedown
from tests.helpers.smtp import Received, SmtpSink

#: a Monday, 09:00 UTC (10:00 in Brussels)
MONDAY = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HOUR = 3600.0
MONTH_MINUTES = 31 * 24 * 60
LINK_RE = re.compile(r"(https?://[^\s]+/provider/([0-9]+\.[0-9]+\.[A-Za-z0-9_-]{43}))")


@dataclass
class World:
    services: Services
    clock: ManualClock
    sink: SmtpSink | None
    contacts: dict[str, int] = field(default_factory=dict)

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def contact(self, name: str, **values: Any) -> int:
        values.setdefault("address", f"abuse@{name}.example")
        cid = seed_contact(self.services.engine, now=self.now, match=name, name=name.title(), **values)
        self.contacts[name] = cid
        return cid

    def takedown(self, contact: str, url: str, *, media: int = 1, **values: Any) -> int:
        """A routed takedown of ``url`` for ``contact``, its page's ``media`` hashed (synthetic)."""
        item_id, _ = seed_item(self.services.engine, url, now=self.now)
        with self.services.engine.begin() as conn:
            for n in range(media):
                digest = hashlib.sha256(f"{url}#{n}".encode()).hexdigest()
                conn.execute(
                    insert(Medium).values(
                        item_id=item_id,
                        url=f"{url}/m{n}.png",
                        url_key=digest,
                        sha256=digest,
                        md5=hashlib.md5(digest.encode()).hexdigest(),
                        pdq="f" * 64,
                        created_at=self.now,
                    )
                )
        return seed_takedown(
            self.services.engine,
            item_id,
            now=self.now,
            state=TakedownState.TO_NOTICE,
            contact_id=self.contacts[contact],
            **values,
        )

    def remove(self, takedown_id: int) -> None:
        """What the re-check does when content is gone."""
        with self.services.engine.begin() as conn:
            conn.execute(
                update(Takedown)
                .where(Takedown.id == takedown_id)
                .values(state=TakedownState.REMOVED.value, removed_at=self.now)
            )

    def advance(self, hours: float) -> None:
        self.clock.advance(hours * HOUR)

    def notices(self) -> list[Any]:
        with self.services.engine.connect() as conn:
            return list(conn.execute(select(Notice).order_by(Notice.id)).all())

    def notice(self, notice_id: int) -> Any:
        with self.services.engine.connect() as conn:
            return conn.execute(select(Notice).where(Notice.id == notice_id)).one()

    def takedown_row(self, takedown_id: int) -> Any:
        with self.services.engine.connect() as conn:
            return conn.execute(select(Takedown).where(Takedown.id == takedown_id)).one()

    def takedown_row_ids(self) -> list[int]:
        with self.services.engine.connect() as conn:
            return list(conn.execute(select(Takedown.id).order_by(Takedown.id)).scalars())

    def items_of(self, notice_id: int) -> list[int]:
        with self.services.engine.connect() as conn:
            return list(
                conn.execute(
                    select(NoticeItem.takedown_id).where(NoticeItem.notice_id == notice_id)
                ).scalars()
            )

    def outbox_count(self) -> int:
        with self.services.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(OutboxMessage)).scalar_one())


def world(db_url: str, sink: SmtpSink | None, start: datetime = MONDAY, **notice: Any) -> World:
    clock = ManualClock(start)
    smtp: dict[str, Any] = {"smtp_host": sink.host, "smtp_port": sink.port} if sink else {}
    settings = Settings(
        db=db_url,
        mail=MailSettings(**smtp, public_url="https://hotline.example", reply_to="ntd@hotline.example"),
        notice=NoticeSettings(**notice),
        # the seeded URLs resolve nowhere: re-checks (tests/test_act_recheck.py's) would count them
        # removed; this world's weeks are about notices, so its first re-check is a month away
        recheck=RecheckSettings(first_min_minutes=MONTH_MINUTES, first_max_minutes=MONTH_MINUTES),
    )
    return World(Services(settings, clock), clock, sink)


def link_of(message: Received) -> tuple[str, str]:
    """(the answer link, its token) in a received notice."""
    found = LINK_RE.search(message.text)
    assert found, message.text
    return found.group(1), found.group(2)
