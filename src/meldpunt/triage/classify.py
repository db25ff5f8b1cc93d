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
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from meldpunt.audit import AuditEvent, record
from meldpunt.domain import InvalidSignal, Labels, SignalType, normalise_signal
from meldpunt.domain.pdq import pdq_distance, pdq_usable
from meldpunt.domain.reports import ItemState, MediumOutcome
from meldpunt.settings import Settings
from meldpunt.store.banks import BANKS_VERSION, BankRepository, bump_counter, entry_key
from meldpunt.store.models import Bank, BankEntry
from meldpunt.store.reports import Item, Medium, Report, ReviewBlob
from meldpunt.store.triage import TriageClaim, TriageClassification, TriageStatus
from meldpunt.stores.evidence import EvidenceStore
from meldpunt.stores.review import ReviewStore
from meldpunt.triage.history import Event, item_history
from meldpunt.triage.queue import (
    CORRECTION,
    DISAGREEMENT,
    FINAL,
    FIRST,
    RESOLUTION,
    SECOND,
    SECOND_OPINION,
    Clock,
    Queue,
    RoleLookup,
    TriageConfig,
    TriageError,
    _utcnow,
    users_table_role,
    utc,
)
from meldpunt.triage.schemes import Classification, ClassificationError, Problem, Schemes
from meldpunt.triage.search import Page, item_condition, understand

#: the decisions list's sort orders (each ends with the item number, so pages never overlap)
DECISION_SORTS: dict[str, tuple[Any, ...]] = {
    "newest": (TriageStatus.finalized_at.desc(), TriageStatus.item_id.desc()),
    "oldest": (TriageStatus.finalized_at, TriageStatus.item_id),
    "item": (TriageStatus.item_id.desc(),),
}


@dataclass(frozen=True)
class Outcome:
    """What one classify/resolve/correct call did to one item."""

    item_id: int
    #: first, second, resolution or correction
    role: str
    #: the item's stage now: second (awaiting a second opinion), disagreement or final
    stage: str


@dataclass(frozen=True)
class HashRecord:
    """A record as ``BankRepository.import_records`` reads it."""

    signal_type: SignalType
    value: str
    labels: Labels


@dataclass(frozen=True)
class MediumView:
    id: int
    kind: str
    url: str
    size: int
    md5: str
    sha1: str
    sha256: str
    pdq: str
    #: known | ignored | new | failed
    outcome: str
    #: the review store holds its bytes
    viewable: bool
    #: matches from hash lists (hints and known entries) — never an analyst's opinion
    matches: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ReviewView:
    """What a reviewer may see of an item: facts, media and hash-list matches; no opinion given."""

    item_id: int
    url: str
    host: str
    urgent: bool
    created_at: datetime
    source: str
    media: list[MediumView]
    #: whether this user may classify it now
    can_classify: bool


@dataclass(frozen=True)
class Opinion:
    user: str
    role: str
    classification: Classification
    at: datetime


@dataclass(frozen=True)
class Decision:
    """A final classification, for the seniors' list of decisions."""

    item_id: int
    url: str
    source: str
    classification: Classification
    illegal: bool
    #: the own-bank import that holds its hashes (None: not banked, or still pending)
    banked: bool
    decided_at: datetime
    #: how the decision was reached: the role of the last opinion (second, resolution, correction, first)
    via: str


@dataclass(frozen=True)
class ResolutionCounts:
    #: items that ended ``known``: every medium was on a list, no one saw anything
    known: int
    #: items with a final classification by people
    classified: int
    #: items awaiting review (not yet final)
    awaiting: int


class Triage(Queue):
    """The triage service: queue and claims (:class:`Queue`) plus classification."""

    def __init__(
        self,
        engine: Engine,
        *,
        settings: Settings | None = None,
        config: TriageConfig | None = None,
        schemes: Schemes | None = None,
        review_store: ReviewStore | None = None,
        evidence_store: EvidenceStore | None = None,
        clock: Clock = _utcnow,
        role_of: RoleLookup = users_table_role,
    ) -> None:
        super().__init__(engine, settings=settings, config=config, clock=clock, role_of=role_of)
        self.schemes = schemes or (
            Schemes.load(self.config.schemes_file) if self.config.schemes_file else Schemes.load()
        )
        self._review_store = review_store
        self._evidence_store = evidence_store
        self.banks = BankRepository(engine)

    @property
    def review_store(self) -> ReviewStore:
        if self._review_store is None:
            self._review_store = ReviewStore.from_settings(self.settings)
        return self._review_store

    @property
    def evidence_store(self) -> EvidenceStore:
        if self._evidence_store is None:
            self._evidence_store = EvidenceStore.from_settings(self.settings, self.review_store)
        return self._evidence_store

    @property
    def source_label(self) -> str:
        return f"meldpunt:{self.config.hotline}"

    # -- what a reviewer sees ----------------------------------------------------------------------
    def item_for_review(self, item_id: int, user: str) -> ReviewView:
        """The item as a reviewer may see it — never an opinion given on it (the second analyst
        classifies blind). The view is an audited event (``item.view``)."""
        now = self.now()
        with self.engine.begin() as conn:
            self._require(conn, user, "item.view")
            item = conn.execute(
                select(Item.id, Item.url, Item.host, Item.urgent, Item.created_at, Report.source)
                .join(Report, Report.id == Item.report_id)
                .where(Item.id == item_id)
            ).first()
            if item is None:
                raise TriageError(f"no item {item_id}")
            blobs = set(
                conn.execute(
                    select(ReviewBlob.medium_id)
                    .join(Medium, Medium.id == ReviewBlob.medium_id)
                    .where(Medium.item_id == item_id)
                ).scalars()
            )
            media = [
                MediumView(
                    id=int(m.id),
                    kind=m.kind,
                    url=m.url,
                    size=int(m.size),
                    md5=m.md5,
                    sha1=m.sha1,
                    sha256=m.sha256,
                    pdq=m.pdq,
                    outcome=m.outcome,
                    viewable=int(m.id) in blobs,
                    matches=_json_list(m.matches),
                )
                for m in conn.execute(select(Medium).where(Medium.item_id == item_id).order_by(Medium.id))
            ]
            try:
                self._claimable(conn, item_id, user)
                can = True
            except (TriageError, PermissionError):
                can = False
            record(conn, AuditEvent(user, "item.view", f"item:{item_id}", at=now))
        return ReviewView(
            item_id=int(item.id),
            url=item.url,
            host=item.host,
            urgent=bool(item.urgent),
            created_at=utc(item.created_at),
            source=item.source,
            media=media,
            can_classify=can,
        )

    def opinions(self, item_id: int, senior_user: str) -> list[Opinion]:
        """Every opinion given on the item, oldest first: for the senior resolving or correcting."""
        with self.engine.connect() as conn:
            self._require(conn, senior_user, "disagreement.resolve", "classification.correct")
            rows = conn.execute(
                select(
                    TriageClassification.user,
                    TriageClassification.role,
                    TriageClassification.classification,
                    TriageClassification.created_at,
                )
                .where(TriageClassification.item_id == item_id)
                .order_by(TriageClassification.id)
            )
            return [
                Opinion(r.user, r.role, Classification.from_json(r.classification), utc(r.created_at))
                for r in rows
            ]

    def decisions(self, senior_user: str, *, limit: int = 100, offset: int = 0) -> list[Decision]:
        """Final classifications, newest first: what a senior may correct."""
        return self.decisions_page(senior_user, limit=limit, offset=offset).rows

    def decisions_page(
        self,
        senior_user: str,
        *,
        search: str = "",
        via: str | None = None,
        illegal: bool | None = None,
        sort: str = "newest",
        limit: int = 100,
        offset: int = 0,
    ) -> Page[Decision]:
        """One page of final classifications (:data:`DECISION_SORTS`; newest first by default),
        narrowed by ``search`` (as the queue's), how the decision was reached (``via``: first,
        second, resolution, correction) and whether it is illegal; with the whole list's length."""
        if sort not in DECISION_SORTS:
            raise TriageError(f"sort must be one of {', '.join(DECISION_SORTS)}, not {sort!r}")
        if via not in (None, FIRST, SECOND_OPINION, RESOLUTION, CORRECTION):
            raise TriageError(f"via must be first, second, resolution or correction, not {via!r}")
        with self.engine.connect() as conn:
            self._require(conn, senior_user, "classification.correct")
            last_role = (
                select(TriageClassification.role)
                .where(TriageClassification.item_id == TriageStatus.item_id)
                .order_by(TriageClassification.id.desc())
                .limit(1)
                .scalar_subquery()
            )
            q = (
                select(
                    TriageStatus.item_id,
                    TriageStatus.final,
                    TriageStatus.illegal,
                    TriageStatus.bank_import_id,
                    TriageStatus.finalized_at,
                    Item.url,
                    Report.source,
                    last_role.label("via"),
                )
                .join(Item, Item.id == TriageStatus.item_id)
                .join(Report, Report.id == Item.report_id)
                .where(TriageStatus.stage == FINAL)
            )
            understood = understand(search)
            if understood is not None:
                q = q.where(item_condition(understood))
            if via is not None:
                q = q.where(last_role == via)
            if illegal is not None:
                q = q.where(TriageStatus.illegal.is_(illegal))
            total = int(conn.execute(select(func.count()).select_from(q.subquery())).scalar_one())
            rows = conn.execute(q.order_by(*DECISION_SORTS[sort]).limit(limit).offset(offset)).all()
        found = [
            Decision(
                item_id=int(r.item_id),
                url=r.url,
                source=r.source,
                classification=Classification.from_json(r.final),
                illegal=bool(r.illegal),
                banked=r.bank_import_id is not None,
                decided_at=utc(r.finalized_at),
                via=str(r.via or ""),
            )
            for r in rows
        ]
        return Page(found, total, offset // max(limit, 1) + 1, max(limit, 1))

    def history(self, item_id: int, user: str) -> list[Event]:
        """The item's history as ``user`` may see it (:mod:`meldpunt.triage.history`)."""
        with self.engine.connect() as conn:
            role = self._require(conn, user, "item.view")
            return item_history(conn, item_id, user, role)

    def final_classification(self, item_id: int) -> Classification | None:
        with self.engine.connect() as conn:
            text = conn.execute(
                select(TriageStatus.final).where(TriageStatus.item_id == item_id, TriageStatus.stage == FINAL)
            ).scalar()
        return Classification.from_json(text) if text else None

    def stage(self, item_id: int) -> str | None:
        """second, disagreement, final; None: no opinion yet (not for an analyst's screen)."""
        with self.engine.connect() as conn:
            v = conn.execute(select(TriageStatus.stage).where(TriageStatus.item_id == item_id)).scalar()
        return None if v is None else str(v)

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

    def _bankable(self, c: Classification) -> bool:
        return self.config.bank_not_illegal or self.schemes.is_illegal(c)

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

    # -- counts ------------------------------------------------------------------------------------
    def resolved_without_viewing(self) -> ResolutionCounts:
        with self.engine.connect() as conn:
            known = conn.execute(
                select(func.count()).select_from(Item).where(Item.state == ItemState.KNOWN.value)
            ).scalar_one()
            classified = conn.execute(
                select(func.count()).select_from(TriageStatus).where(TriageStatus.stage == FINAL)
            ).scalar_one()
            review = conn.execute(
                select(func.count()).select_from(Item).where(Item.state == ItemState.NEEDS_REVIEW.value)
            ).scalar_one()
        return ResolutionCounts(known=int(known), classified=int(classified), awaiting=int(review))


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


def _json_list(text: str) -> list[dict[str, Any]]:
    import json

    try:
        v = json.loads(text or "[]")
    except ValueError:
        return []
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


__all__ = [
    "HashRecord",
    "MediumView",
    "Opinion",
    "Outcome",
    "ResolutionCounts",
    "ReviewView",
    "Triage",
    "delete_entries",
]
