"""What triage shows: an item as a reviewer may see it (never an opinion given on it), the
opinions for a senior, the list of final decisions, an item's history and the counts of what was
resolved without anyone looking. :class:`TriageViews` also holds what the rest of triage needs
(schemes, the review and evidence stores, the bank repository); :mod:`meldpunt.triage.ownbank`
and :mod:`meldpunt.triage.classify` build on it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from meldpunt.audit import AuditEvent, record
from meldpunt.domain.reports import ItemState
from meldpunt.settings import Settings
from meldpunt.store.banks import BankRepository
from meldpunt.store.reports import Item, Medium, Report, ReviewBlob
from meldpunt.store.triage import TriageClassification, TriageStatus
from meldpunt.stores.evidence import EvidenceStore
from meldpunt.stores.review import ReviewStore
from meldpunt.triage.history import Event, item_history
from meldpunt.triage.queue import (
    CORRECTION,
    FINAL,
    FIRST,
    RESOLUTION,
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
from meldpunt.triage.schemes import Classification, Schemes
from meldpunt.triage.search import Page, item_condition, understand

#: the decisions list's sort orders (each ends with the item number, so pages never overlap)
DECISION_SORTS: dict[str, tuple[Any, ...]] = {
    "newest": (TriageStatus.finalized_at.desc(), TriageStatus.item_id.desc()),
    "oldest": (TriageStatus.finalized_at, TriageStatus.item_id),
    "item": (TriageStatus.item_id.desc(),),
}


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


class TriageViews(Queue):
    """The queue and claims (:class:`Queue`) plus what a reviewer and a senior may read."""

    def __init__(
        self,
        engine: Engine,
        *,
        settings: Settings | None = None,
        config: TriageConfig | None = None,
        schemes: Schemes | None = None,
        review_store: ReviewStore | Callable[[], ReviewStore] | None = None,
        evidence_store: EvidenceStore | Callable[[], EvidenceStore] | None = None,
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
        """The given store (a factory is called on first use: ``Services`` passes its own), else one
        from the settings."""
        if callable(self._review_store):
            self._review_store = self._review_store()
        if self._review_store is None:
            self._review_store = ReviewStore.from_settings(self.settings)
        return self._review_store

    @property
    def evidence_store(self) -> EvidenceStore:
        if callable(self._evidence_store):
            self._evidence_store = self._evidence_store()
        if self._evidence_store is None:
            self._evidence_store = EvidenceStore.from_settings(self.settings, self.review_store)
        return self._evidence_store

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


def _json_list(text: str) -> list[dict[str, Any]]:
    try:
        v = json.loads(text or "[]")
    except ValueError:
        return []
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []
