"""The hotline's own bank, fed by final classifications: which hashes of an item go in (the
media chosen; PDQ hashes only when usable, :func:`meldpunt.domain.pdq.pdq_usable`), writing
what is pending after the classification commits (:meth:`OwnBank.sync_bank`), and retracting
entries when a correction no longer banks them (:func:`delete_entries`), never those another
item's final decision banked too."""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection, delete, select, update

from meldpunt.banks.formats.base import HashRecord
from meldpunt.domain import InvalidSignal, SignalType, normalise_signal
from meldpunt.domain.pdq import pdq_usable
from meldpunt.domain.reports import MediumOutcome
from meldpunt.store.banks import BANKS_VERSION, bump_counter, entry_key
from meldpunt.store.models import Bank, BankEntry
from meldpunt.store.reports import Medium
from meldpunt.store.triage import TriageStatus
from meldpunt.triage.queue import (
    FINAL,
)
from meldpunt.triage.schemes import Classification
from meldpunt.triage.views import TriageViews


class OwnBank(TriageViews):
    """Triage's views plus the own bank."""

    @property
    def source_label(self) -> str:
        return f"meldpunt:{self.config.hotline}"

    def _bankable(self, c: Classification) -> bool:
        return self.config.bank_not_illegal or self.schemes.is_illegal(c)

    def _pdq_usable(self, pdq: str | None, quality: int | None) -> bool:
        return pdq_usable(pdq, quality, self.settings.pdq_min_quality)

    def _item_pairs(
        self, conn: Connection, item_id: int, media: tuple[int, ...] | None = None
    ) -> list[tuple[SignalType, str]]:
        """The (type, value) of the item's new media's hashes (only ``media`` when given), as they
        go into the own bank. PDQ hashes below the quality the matcher needs are left out (flat
        images match too widely)."""
        pairs: list[tuple[SignalType, str]] = []
        query = select(
            Medium.md5,
            Medium.sha1,
            Medium.sha256,
            Medium.pdq,
            Medium.pdq_quality,
            Medium.pdq_stored,
            Medium.pdq_stored_quality,
            Medium.vpdq,
        ).where(Medium.item_id == item_id, Medium.outcome == MediumOutcome.NEW.value)
        if media is not None:
            query = query.where(Medium.id.in_(media))
        rows = conn.execute(query)
        for r in rows:
            candidates = [(SignalType.MD5, r.md5), (SignalType.SHA1, r.sha1), (SignalType.SHA256, r.sha256)]
            if self._pdq_usable(r.pdq, r.pdq_quality):
                candidates.append((SignalType.PDQ, r.pdq))
            # an EXIF-oriented photo: its stored pixels' hash too, the one partners' HMA computes
            if self._pdq_usable(r.pdq_stored, r.pdq_stored_quality):
                candidates.append((SignalType.PDQ, r.pdq_stored))
            if r.vpdq:
                candidates.append((SignalType.VPDQ, r.vpdq))
            for st, value in candidates:
                if not value:
                    continue
                try:
                    pairs.append((st, normalise_signal(st, value)))
                except InvalidSignal:
                    continue
        return list(dict.fromkeys(pairs))

    def _banked_elsewhere(
        self, conn: Connection, item_id: int, pairs: set[tuple[SignalType, str]]
    ) -> set[tuple[SignalType, str]]:
        """Which of ``pairs`` other items' final, banked decisions put into the own bank too."""
        if not pairs:
            return set()
        columns = [
            (SignalType.MD5, Medium.md5),
            (SignalType.SHA1, Medium.sha1),
            (SignalType.SHA256, Medium.sha256),
            (SignalType.PDQ, Medium.pdq),
            (SignalType.PDQ, Medium.pdq_stored),
            (SignalType.VPDQ, Medium.vpdq),
        ]
        others: set[int] = set()
        for st, col in columns:
            values = [v for t, v in pairs if t is st]
            if not values:
                continue
            for chunk in range(0, len(values), 500):
                others.update(
                    int(i)
                    for i in conn.execute(
                        select(Medium.item_id)
                        .join(TriageStatus, TriageStatus.item_id == Medium.item_id)
                        .where(col.in_(values[chunk : chunk + 500]), Medium.item_id != item_id)
                        .where(TriageStatus.stage == FINAL, TriageStatus.bank_import_id.is_not(None))
                    ).scalars()
                )
        shared: set[tuple[SignalType, str]] = set()
        for other in sorted(others):
            final = conn.execute(select(TriageStatus.final).where(TriageStatus.item_id == other)).scalar()
            if final:
                shared |= pairs & set(self._item_pairs(conn, other, Classification.from_json(final).media))
        return shared

    def sync_bank(self) -> int:
        """Write every final classification still pending to the own bank; returns items banked."""
        with self.engine.connect() as conn:
            pending = [
                (int(i), str(f))
                for i, f in conn.execute(
                    select(TriageStatus.item_id, TriageStatus.final).where(
                        TriageStatus.stage == FINAL, TriageStatus.bank_pending.is_(True)
                    )
                )
            ]
        done = 0
        for item_id, final in pending:
            c = Classification.from_json(final)
            labels = self.schemes.labels(c, self.source_label)
            with self.engine.connect() as conn:
                pairs = self._item_pairs(conn, item_id, c.media)
            import_id: int | None = None
            if pairs:
                digest = hashlib.sha256(f"item:{item_id}\n{final}".encode()).hexdigest()
                result = self.banks.import_records(
                    self.config.own_bank,
                    [HashRecord(st, v, labels) for st, v in pairs],
                    source_name=f"meldpunt triage item:{item_id}",
                    source_sha256=digest,
                    fmt="triage",
                    description=None,
                )
                import_id = result.import_id
            with self.engine.begin() as conn:
                settled = conn.execute(
                    update(TriageStatus)
                    .where(TriageStatus.item_id == item_id, TriageStatus.final == final)
                    .where(TriageStatus.bank_pending.is_(True))
                    .values(bank_pending=False, bank_import_id=import_id)
                ).rowcount
                if not settled and pairs:
                    # corrected while we imported: if the new classification is not banked, the
                    # entries just written must go again (a banked one is still pending: re-imported)
                    now_final = conn.execute(
                        select(TriageStatus.final).where(TriageStatus.item_id == item_id)
                    ).scalar()
                    if now_final and not self._bankable(Classification.from_json(now_final)):
                        delete_entries(conn, self.config.own_bank, pairs)
            done += 1
        return done


def delete_entries(conn: Connection, bank: str, pairs: list[tuple[SignalType, str]]) -> int:
    """Delete the bank's entries of these hashes in the caller's transaction; bumps ``pdq_epoch``
    when PDQ entries went (so every saved PDQ index is rebuilt). Returns how many went."""
    bank_id = conn.execute(select(Bank.id).where(Bank.name == bank)).scalar()
    if bank_id is None or not pairs:
        return 0
    n = 0
    had_pdq = False
    for st, value in pairs:
        key, _ = entry_key(st, value)
        gone = conn.execute(
            delete(BankEntry).where(
                BankEntry.bank_id == bank_id, BankEntry.signal_type == st.value, BankEntry.key == key
            )
        ).rowcount
        n += gone
        had_pdq = had_pdq or (gone > 0 and st is SignalType.PDQ)
    if had_pdq:
        bump_counter(conn, "pdq_epoch")
    if n:
        bump_counter(conn, BANKS_VERSION)
    return n
