"""Classifying items: first opinion, blind second opinion, a senior's resolution of a disagreement,
and corrections; final classifications go to the hotline's own bank and purge the review blobs.

The flow of an item (``items.state`` is ``needs_review`` until its classification is final, then
``classified``; the steps towards it are in ``triage_status``):

- first opinion: illegal (any chosen value marked ``illegal`` in the schemes) -> ``second``, awaiting
  a different analyst; not illegal -> ``final`` at once (``second_opinion_all``: also ``second``).
  ``second_opinion=False`` makes every first opinion final.
- second opinion, given blind (:meth:`Triage.item_for_review` shows no classification): agreeing
  (the same value in every ``must_agree`` scheme) -> ``final`` with both combined; else
  ``disagreement``, for a senior who gave neither opinion to :meth:`Triage.resolve`.
- :meth:`Triage.correct` (senior) replaces a final classification: the own-bank entries are
  relabelled (re-imported), or deleted when the new one is not banked (``pdq_epoch`` bumped when
  PDQ entries go, so every worker rebuilds its index).

Banking runs after the classification commits (``BankRepository.import_records`` is a transaction of
its own): ``triage_status.bank_pending`` marks what is still to be written, and :meth:`sync_bank`
(called after every final decision, safe to call any time) writes it, so a crash in between is
caught up by the next call. Review blobs are purged in the classification's transaction unless a
``keep_media`` flag (``evidence``) is set: those move, in the same transaction, to the evidence store
(``stores.evidence``: its own key and retention, every access audited).

The module holds the decisions; what a reviewer sees is in :mod:`meldpunt.triage.views`, the own
bank in :mod:`meldpunt.triage.ownbank` (its names are re-exported here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from meldpunt.audit import AuditEvent, record
from meldpunt.banks.formats.base import HashRecord
from meldpunt.domain.pdq import pdq_distance
from meldpunt.domain.reports import ItemState, MediumOutcome
from meldpunt.store.reports import Item, Medium, ReviewBlob
from meldpunt.store.triage import TriageClaim, TriageClassification, TriageStatus
from meldpunt.triage.ownbank import OwnBank, delete_entries
from meldpunt.triage.queue import (
    CORRECTION,
    DISAGREEMENT,
    FINAL,
    FIRST,
    RESOLUTION,
    SECOND,
    SECOND_OPINION,
    TriageError,
)
from meldpunt.triage.schemes import Classification, ClassificationError, Problem
from meldpunt.triage.views import (
    DECISION_SORTS,
    Decision,
    MediumView,
    Opinion,
    ResolutionCounts,
    ReviewView,
    TriageViews,
)


@dataclass(frozen=True)
class Outcome:
    """What one classify/resolve/correct call did to one item."""

    item_id: int
    #: first, second, resolution or correction
    role: str
    #: the item's stage now: second (awaiting a second opinion), disagreement or final
    stage: str


class Triage(OwnBank):
    """The triage service: queue and claims (:class:`Queue`), what reviewers see
    (:class:`~meldpunt.triage.views.TriageViews`), the own bank
    (:class:`~meldpunt.triage.ownbank.OwnBank`) and the decisions: classify, resolve, correct."""

    # -- classifying -------------------------------------------------------------------------------
    def classify(
        self,
        item_id: int,
        user: str,
        classification: Mapping[str, Any] | Classification,
        group: bool = False,
    ) -> list[Outcome]:
        """Give ``user``'s opinion on the item (``group``: also on every item of its near-duplicate
        group that ``user`` may classify now; the others are left alone). Returns what happened to
        each item; the caller's claims on them are released."""
        c = self.schemes.validate(classification)
        now = self.now()
        targets = self.group_of(item_id) if group else [item_id]
        out: list[Outcome] = []
        with self.engine.begin() as conn:
            if c.media is not None:
                self._check_media(conn, item_id, c.media)
            for iid in [item_id, *(t for t in targets if t != item_id)]:
                try:
                    stage = self._claimable(conn, iid, user)
                    self._check_claim(conn, iid, user, now)
                except (TriageError, PermissionError):
                    if iid == item_id:
                        raise
                    continue
                if stage == DISAGREEMENT:
                    if iid == item_id:
                        raise TriageError(f"item {iid} is in disagreement: a senior resolves it")
                    continue
                mine = c
                if iid != item_id and c.media is not None:
                    # the group member's own copies of the chosen media; none: left alone
                    twins = self._twins(conn, c.media, iid)
                    if not twins:
                        continue
                    mine = replace(c, media=twins)
                out.append(self._opinion(conn, iid, user, mine, stage, now))
            self._audit_outcomes(conn, user, "item.classify", out, c, now, group=group)
        self.sync_bank()
        return out

    def resolve(
        self, item_id: int, senior_user: str, classification: Mapping[str, Any] | Classification
    ) -> Outcome:
        """A senior who gave neither opinion decides a disagreement: final at once."""
        c = self.schemes.validate(classification)
        now = self.now()
        with self.engine.begin() as conn:
            stage = self._claimable(conn, item_id, senior_user)
            if stage != DISAGREEMENT:
                raise TriageError(f"item {item_id} is not in disagreement")
            self._check_claim(conn, item_id, senior_user, now)
            if c.media is not None:
                self._check_media(conn, item_id, c.media)
            self._add_opinion(conn, item_id, senior_user, RESOLUTION, c, now)
            self._finalize(conn, item_id, c, now, expect=DISAGREEMENT)
            self._release(conn, item_id, senior_user)
            out = Outcome(item_id, RESOLUTION, FINAL)
            self._audit_outcomes(conn, senior_user, "item.resolve", [out], c, now)
        self.sync_bank()
        return out

    def correct(
        self, item_id: int, senior_user: str, classification: Mapping[str, Any] | Classification
    ) -> Outcome:
        """A senior replaces a final classification. Own-bank entries of the item's hashes are
        relabelled, or deleted when the new classification is not banked."""
        c = self.schemes.validate(classification)
        now = self.now()
        with self.engine.begin() as conn:
            self._require(conn, senior_user, "classification.correct")
            row = conn.execute(
                select(TriageStatus.stage, TriageStatus.final).where(TriageStatus.item_id == item_id)
            ).first()
            if row is None or row.stage != FINAL:
                raise TriageError(f"item {item_id} has no final classification to correct")
            if c.media is not None:
                self._check_media(conn, item_id, c.media)
            self._add_opinion(conn, item_id, senior_user, CORRECTION, c, now)
            old = Classification.from_json(row.final)
            # retract what the old decision banked and the new one does not (relabelling the rest
            # is sync_bank's re-import), but never what another item's final decision banked too
            before = set(self._item_pairs(conn, item_id, old.media)) if self._bankable(old) else set()
            after = set(self._item_pairs(conn, item_id, c.media)) if self._bankable(c) else set()
            gone = before - after
            gone -= self._banked_elsewhere(conn, item_id, gone)
            deleted = delete_entries(conn, self.config.own_bank, sorted(gone)) if gone else 0
            self._finalize(conn, item_id, c, now, expect=FINAL)
            out = Outcome(item_id, CORRECTION, FINAL)
            self._audit_outcomes(conn, senior_user, "item.correct", [out], c, now, retracted=deleted)
        self.sync_bank()
        return out

    # -- internals ---------------------------------------------------------------------------------
    def _needs_second(self, c: Classification) -> bool:
        if not self.config.second_opinion:
            return False
        return self.config.second_opinion_all or self.schemes.is_illegal(c)

    def _opinion(
        self, conn: Connection, item_id: int, user: str, c: Classification, stage: str | None, now: datetime
    ) -> Outcome:
        if stage is None:
            self._add_opinion(conn, item_id, user, FIRST, c, now)
            if self._needs_second(c):
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(TriageStatus).values(
                                item_id=item_id,
                                stage=SECOND,
                                final="",
                                illegal=self.schemes.is_illegal(c),
                                bank_pending=False,
                                bank_import_id=None,
                                finalized_at=None,
                                updated_at=now,
                            )
                        )
                except IntegrityError:
                    raise TriageError(f"item {item_id} was classified by someone else meanwhile") from None
                result = Outcome(item_id, FIRST, SECOND)
            else:
                self._finalize(conn, item_id, c, now, expect=None)
                result = Outcome(item_id, FIRST, FINAL)
        else:  # stage == SECOND: a different analyst (checked by _claimable)
            first = conn.execute(
                select(TriageClassification.classification)
                .where(TriageClassification.item_id == item_id, TriageClassification.role == FIRST)
                .order_by(TriageClassification.id.desc())
                .limit(1)
            ).scalar_one()
            self._add_opinion(conn, item_id, user, SECOND_OPINION, c, now)
            first_c = Classification.from_json(first)
            if self.schemes.agree(first_c, c):
                self._finalize(conn, item_id, self.schemes.combine(first_c, c), now, expect=SECOND)
                result = Outcome(item_id, SECOND_OPINION, FINAL)
            else:
                moved = conn.execute(
                    update(TriageStatus)
                    .where(TriageStatus.item_id == item_id, TriageStatus.stage == SECOND)
                    .values(stage=DISAGREEMENT, updated_at=now)
                ).rowcount
                if not moved:
                    raise TriageError(f"item {item_id} was classified by someone else meanwhile")
                result = Outcome(item_id, SECOND_OPINION, DISAGREEMENT)
        self._release(conn, item_id, user)
        return result

    def _add_opinion(
        self, conn: Connection, item_id: int, user: str, role: str, c: Classification, now: datetime
    ) -> None:
        conn.execute(
            insert(TriageClassification).values(
                item_id=item_id, user=user, role=role, classification=c.to_json(), created_at=now
            )
        )

    def _release(self, conn: Connection, item_id: int, user: str) -> None:
        conn.execute(delete(TriageClaim).where(TriageClaim.item_id == item_id, TriageClaim.user == user))

    def _finalize(
        self, conn: Connection, item_id: int, c: Classification, now: datetime, *, expect: str | None
    ) -> None:
        """Make ``c`` the item's final classification (moving from stage ``expect``; None: no row)."""
        bankable = self._bankable(c)
        values = {
            "stage": FINAL,
            "final": c.to_json(),
            "illegal": self.schemes.is_illegal(c),
            "bank_pending": bankable,
            "finalized_at": now,
            "updated_at": now,
        }
        if not bankable:
            values["bank_import_id"] = None
        conn.execute(
            update(Item)
            .where(Item.id == item_id, Item.state == ItemState.NEEDS_REVIEW.value)
            .values(state=ItemState.CLASSIFIED.value, updated_at=now)
        )
        if expect is None:
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(TriageStatus).values({"bank_import_id": None, **values, "item_id": item_id})
                    )
            except IntegrityError:
                raise TriageError(f"item {item_id} was classified by someone else meanwhile") from None
        elif not conn.execute(
            update(TriageStatus)
            .where(TriageStatus.item_id == item_id, TriageStatus.stage == expect)
            .values(**values)
        ).rowcount:
            raise TriageError(f"item {item_id} was classified by someone else meanwhile")
        keeping = [f for f in c.flags if f in self.schemes.flags and self.schemes.flags[f].keep_media]
        if keeping:  # evidence: moved to the evidence store whatever purge_media says
            decider = conn.execute(  # the opinion just added in this transaction
                select(TriageClassification.user)
                .where(TriageClassification.item_id == item_id)
                .order_by(TriageClassification.id.desc())
                .limit(1)
            ).scalar_one()
            blobs = select(ReviewBlob.medium_id).join(Medium, Medium.id == ReviewBlob.medium_id)
            for mid in conn.execute(blobs.where(Medium.item_id == item_id)).scalars().all():
                self.evidence_store.keep_from_review(
                    conn, self.review_store, int(mid), reason=keeping, user=decider, now=now
                )
        elif self.config.purge_media:
            for mid in conn.execute(select(Medium.id).where(Medium.item_id == item_id)).scalars():
                self.review_store.purge(conn, int(mid))

    def _audit_outcomes(
        self,
        conn: Connection,
        user: str,
        action: str,
        outcomes: list[Outcome],
        c: Classification,
        now: datetime,
        **extra: Any,
    ) -> None:
        # The audit log is for administrators (audit.read), not analysts: recording the opinion
        # there does not break the second analyst's blindness.
        for o in outcomes:
            record(
                conn,
                AuditEvent(
                    actor=user,
                    action=action,
                    subject=f"item:{o.item_id}",
                    details={"role": o.role, "stage": o.stage, "classification": c.to_dict(), **extra},
                    at=now,
                ),
            )

    def _new_media(self, conn: Connection, item_id: int) -> list[Any]:
        return list(
            conn.execute(
                select(Medium.id, Medium.sha256, Medium.pdq, Medium.pdq_quality).where(
                    Medium.item_id == item_id, Medium.outcome == MediumOutcome.NEW.value
                )
            )
        )

    def _check_media(self, conn: Connection, item_id: int, media: tuple[int, ...]) -> None:
        """A classification's media must be the item's own media that needed review."""
        new = {int(r.id) for r in self._new_media(conn, item_id)}
        stray = sorted(set(media) - new)
        if stray:
            raise ClassificationError(
                [
                    Problem(
                        "media: {media} not among this item's media that need review",
                        {"media": ", ".join(map(str, stray))},
                    )
                ]
            )

    def _twins(self, conn: Connection, chosen: tuple[int, ...], item_id: int) -> tuple[int, ...]:
        """The media of ``item_id`` that are copies of the ``chosen`` media (same SHA-256, or PDQ
        within the group distance): how a group decision carries the choice of media over."""
        rows = conn.execute(
            select(Medium.sha256, Medium.pdq, Medium.pdq_quality).where(Medium.id.in_(chosen))
        ).all()
        shas = {r.sha256 for r in rows if r.sha256}
        pdqs = [r.pdq for r in rows if self._pdq_usable(r.pdq, r.pdq_quality)]
        out = []
        for m in self._new_media(conn, item_id):
            if m.sha256 in shas or (
                self._pdq_usable(m.pdq, m.pdq_quality)
                and any(pdq_distance(m.pdq, p) <= self.config.group_distance for p in pdqs)
            ):
                out.append(int(m.id))
        return tuple(sorted(out))


__all__ = [
    "DECISION_SORTS",
    "Decision",
    "HashRecord",
    "MediumView",
    "Opinion",
    "Outcome",
    "ResolutionCounts",
    "ReviewView",
    "Triage",
    "TriageViews",
    "delete_entries",
]
