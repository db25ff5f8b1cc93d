"""The review queue: items awaiting an analyst, urgent first then oldest; claims so two analysts never
work on one item at once; near-duplicate groups so one decision can cover them.

The queue never tells whether an item already has a first opinion (that would hint at its answer:
only illegal classifications wait for a second one). An analyst's queue leaves out the items they
gave the first opinion on, items in disagreement (a senior's list: ``state="disagreement"``) and
final items.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from meldpunt.accounts.roles import allowed
from meldpunt.audit import AuditEvent, record
from meldpunt.domain.pdq import pdq_distances, pdq_usable
from meldpunt.domain.reports import ItemState, MediumOutcome
from meldpunt.domain.triage import OpinionRole, Stage
from meldpunt.settings import Settings, TriageSettings
from meldpunt.store.accounts import User
from meldpunt.store.reports import Item, Medium, Report, ReportItem
from meldpunt.store.triage import TriageClaim, TriageClassification, TriageStatus
from meldpunt.triage.search import Page, item_condition, understand

Clock = Callable[[], datetime]
#: Looks up a user's role (None: no such user, or disabled). The default reads ``users``.
RoleLookup = Callable[[Connection, str], "str | None"]

#: stages of ``triage_status`` (the domain's ``Stage``, under their older names)
SECOND, DISAGREEMENT, FINAL = Stage.SECOND, Stage.DISAGREEMENT, Stage.FINAL
#: roles of ``triage_classifications`` (the domain's ``OpinionRole``, under their older names)
FIRST, SECOND_OPINION, RESOLUTION, CORRECTION = (
    OpinionRole.FIRST,
    OpinionRole.SECOND,
    OpinionRole.RESOLUTION,
    OpinionRole.CORRECTION,
)
QUEUE_STATES = ("open", DISAGREEMENT)
#: the queue's sort orders (each ends with the item number, so pages never overlap)
QUEUE_SORTS: dict[str, tuple[Any, ...]] = {
    "priority": (Item.urgent.desc(), Item.created_at),
    "oldest": (Item.created_at,),
    "newest": (Item.created_at.desc(),),
    "host": (Item.host, Item.created_at),
}

#: the triage section of the settings (``MELDPUNT_TRIAGE_*``); the older name, kept for one release
TriageConfig = TriageSettings


class TriageError(ValueError):
    """A triage request that cannot be carried out (unknown item, wrong stage, ...)."""


class NotAllowed(PermissionError):
    """The user's role does not hold the permission the request needs."""


class ClaimConflict(TriageError):
    """Another analyst holds a live claim on the item."""

    def __init__(self, item_id: int, holder: str, expires_at: datetime) -> None:
        self.item_id, self.holder, self.expires_at = item_id, holder, expires_at
        super().__init__(f"item {item_id} is claimed by {holder} until {expires_at.isoformat()}")


@dataclass(frozen=True)
class Claim:
    item_id: int
    user: str
    expires_at: datetime
    renewed: bool = False


@dataclass(frozen=True)
class QueueEntry:
    item_id: int
    url: str
    host: str
    urgent: bool
    created_at: datetime
    source: str
    media: int
    #: the live claim's holder (None: free)
    claimed_by: str | None
    claimed_until: datetime | None
    #: the live claim is the user's own (the queue says "you", not the name)
    mine: bool = False

    def age(self, now: datetime) -> timedelta:
        """How long the item has waited since it was received."""
        return max(now - self.created_at, timedelta(0))


def utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes: they were stored in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def users_table_role(conn: Connection, user: str) -> str | None:
    row = conn.execute(select(User.role, User.disabled).where(User.name == user)).first()
    return None if row is None or row.disabled else str(row.role)


class Queue:
    def __init__(
        self,
        engine: Engine,
        *,
        settings: Settings | None = None,
        config: TriageConfig | None = None,
        clock: Clock = _utcnow,
        role_of: RoleLookup = users_table_role,
    ) -> None:
        self.engine = engine
        self.settings = settings or Settings()
        self.config = config or self.settings.triage  # an explicit config wins (tests)
        self._clock = clock
        self.role_of = role_of

    def now(self) -> datetime:
        return utc(self._clock())

    # -- permissions -------------------------------------------------------------------------------
    def _require(self, conn: Connection, user: str, *permissions: str) -> str:
        """The user's role, when it holds any of ``permissions``; else ``NotAllowed``."""
        role = self.role_of(conn, user)
        if not any(allowed(role, p) for p in permissions):
            raise NotAllowed(f"{user!r} may not do this (needs {' or '.join(permissions)})")
        assert role is not None
        return role

    # -- the queue ---------------------------------------------------------------------------------
    def entries(
        self,
        user: str,
        *,
        source: str | None = None,
        state: str = "open",
        needs: str | None = None,
        search: str = "",
        sort: str = "priority",
        limit: int = 100,
        offset: int = 0,
    ) -> list[QueueEntry]:
        """Items awaiting ``user``: ``state="open"`` (a classification is wanted) or
        ``"disagreement"`` (seniors); by ``sort`` (:data:`QUEUE_SORTS`; ``priority``: urgent first,
        then oldest). ``source``: only items reported by that source (``"api:*"``: any source
        starting with ``api:``). ``needs`` narrows the open queue: ``"first"`` (nobody has
        classified it yet) or ``"second"`` (a second opinion is wanted). ``search``: what
        :func:`meldpunt.triage.search.understand` makes of it (URL, host, receipt, item, hash)."""
        return self.queue_page(
            user,
            source=source,
            state=state,
            needs=needs,
            search=search,
            sort=sort,
            limit=limit,
            offset=offset,
        ).rows

    def queue_page(
        self,
        user: str,
        *,
        source: str | None = None,
        state: str = "open",
        needs: str | None = None,
        search: str = "",
        sort: str = "priority",
        limit: int = 100,
        offset: int = 0,
    ) -> Page[QueueEntry]:
        """One page of :meth:`entries` with the length of the whole filtered queue."""
        if state not in QUEUE_STATES:
            raise TriageError(f"state must be one of {', '.join(QUEUE_STATES)}, not {state!r}")
        if needs not in (None, "first", "second"):
            raise TriageError(f"needs must be first or second, not {needs!r}")
        if sort not in QUEUE_SORTS:
            raise TriageError(f"sort must be one of {', '.join(QUEUE_SORTS)}, not {sort!r}")
        now = self.now()
        with self.engine.connect() as conn:
            if state == DISAGREEMENT:
                self._require(conn, user, "disagreement.resolve")
            else:
                self._require(conn, user, "queue.view")
            wanted = (
                select(Item.id)
                .outerjoin(TriageStatus, TriageStatus.item_id == Item.id)
                .where(Item.state == ItemState.NEEDS_REVIEW.value)
            )
            mine = exists().where(TriageClassification.item_id == Item.id, TriageClassification.user == user)
            if state == DISAGREEMENT:
                wanted = wanted.where(TriageStatus.stage == DISAGREEMENT, ~mine)
            elif needs == "first":
                wanted = wanted.where(TriageStatus.stage.is_(None))
            elif needs == "second":
                wanted = wanted.where(TriageStatus.stage == SECOND, ~mine)
            else:
                wanted = wanted.where(
                    or_(TriageStatus.stage.is_(None), and_(TriageStatus.stage == SECOND, ~mine)),
                )
            if source is not None:
                wanted = wanted.where(Item.id.in_(_items_of_source(source)))
            understood = understand(search)
            if understood is not None:
                wanted = wanted.where(item_condition(understood))
            total = int(conn.execute(select(func.count()).select_from(wanted.subquery())).scalar_one())
            q = (
                select(
                    Item.id,
                    Item.url,
                    Item.host,
                    Item.urgent,
                    Item.created_at,
                    Report.source,
                    TriageClaim.user,
                    TriageClaim.expires_at,
                )
                .join(Report, Report.id == Item.report_id)
                .outerjoin(TriageClaim, and_(TriageClaim.item_id == Item.id, TriageClaim.expires_at > now))
                .where(Item.id.in_(wanted))
                .order_by(*QUEUE_SORTS[sort], Item.id)
                .limit(limit)
                .offset(offset)
            )
            rows = conn.execute(q).all()
            counts = _media_counts(conn, [r.id for r in rows])
        entries = [
            QueueEntry(
                item_id=int(r.id),
                url=r.url,
                host=r.host,
                urgent=bool(r.urgent),
                created_at=utc(r.created_at),
                source=r.source,
                media=counts.get(int(r.id), 0),
                claimed_by=r.user,
                claimed_until=utc(r.expires_at) if r.expires_at is not None else None,
                mine=r.user == user,
            )
            for r in rows
        ]
        return Page(entries, total, offset // max(limit, 1) + 1, max(limit, 1))

    # -- claims ------------------------------------------------------------------------------------
    def claim(self, item_id: int, user: str, minutes: int | None = None) -> Claim:
        """Claim the item for ``minutes`` (the setting by default). Your own live claim is renewed;
        another user's live claim raises ``ClaimConflict``; an expired claim frees the item."""
        minutes = self.config.claim_minutes if minutes is None else minutes
        if not 1 <= minutes <= 24 * 60:
            raise TriageError("a claim lasts 1 minute to 24 hours")
        now = self.now()
        expires = now + timedelta(minutes=minutes)
        try:
            with self.engine.begin() as conn:
                stage = self._claimable(conn, item_id, user)
                renewed = bool(
                    conn.execute(
                        update(TriageClaim)
                        .where(TriageClaim.item_id == item_id, TriageClaim.user == user)
                        .where(TriageClaim.expires_at > now)
                        .values(expires_at=expires)
                    ).rowcount
                )
                if not renewed:
                    taken = conn.execute(
                        update(TriageClaim)
                        .where(TriageClaim.item_id == item_id)
                        .where(or_(TriageClaim.expires_at <= now, TriageClaim.user == user))
                        .values(user=user, claimed_at=now, expires_at=expires)
                    ).rowcount
                    if not taken:
                        held = conn.execute(
                            select(TriageClaim.user, TriageClaim.expires_at).where(
                                TriageClaim.item_id == item_id
                            )
                        ).first()
                        if held is not None:
                            raise ClaimConflict(item_id, held.user, utc(held.expires_at))
                        conn.execute(
                            insert(TriageClaim).values(
                                item_id=item_id, user=user, claimed_at=now, expires_at=expires
                            )
                        )
                record(
                    conn,
                    AuditEvent(
                        actor=user,
                        action="item.claim",
                        subject=f"item:{item_id}",
                        details={"minutes": minutes, "renewed": renewed, "stage": stage or "open"},
                        at=now,
                    ),
                )
        except IntegrityError:  # another analyst's claim was inserted at the same moment
            held_row = self.claim_of(item_id)
            if held_row is None:
                raise
            raise ClaimConflict(item_id, held_row.user, held_row.expires_at) from None
        return Claim(item_id, user, expires, renewed)

    def release(self, item_id: int, user: str) -> bool:
        """Give up your claim; True when you held one."""
        with self.engine.begin() as conn:
            gone = bool(
                conn.execute(
                    delete(TriageClaim).where(TriageClaim.item_id == item_id, TriageClaim.user == user)
                ).rowcount
            )
            if gone:
                record(conn, AuditEvent(user, "item.release", f"item:{item_id}", at=self.now()))
            return gone

    def claim_of(self, item_id: int) -> Claim | None:
        """The item's live claim, if any."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(TriageClaim.user, TriageClaim.expires_at).where(
                    TriageClaim.item_id == item_id, TriageClaim.expires_at > self.now()
                )
            ).first()
        return None if row is None else Claim(item_id, row.user, utc(row.expires_at))

    def _claimable(self, conn: Connection, item_id: int, user: str) -> str | None:
        """The item's stage (None: no opinion yet) when ``user`` may work on it; else an error."""
        state = conn.execute(select(Item.state).where(Item.id == item_id)).scalar()
        if state is None:
            raise TriageError(f"no item {item_id}")
        stage = conn.execute(select(TriageStatus.stage).where(TriageStatus.item_id == item_id)).scalar()
        if state != ItemState.NEEDS_REVIEW.value and stage != FINAL:
            raise TriageError(f"item {item_id} is {state}, not awaiting review")
        if stage == FINAL:
            raise TriageError(f"item {item_id} is classified already (a senior may correct it)")
        if stage == DISAGREEMENT:
            self._require(conn, user, "disagreement.resolve")
            if _opinion_by(conn, item_id, user):
                raise TriageError(f"{user} gave an opinion on item {item_id}: another senior resolves it")
        else:
            self._require(conn, user, "item.classify")
            if stage == SECOND and _opinion_by(conn, item_id, user):
                raise TriageError(
                    f"{user} classified item {item_id} already: a different analyst gives the second opinion"
                )
        return str(stage) if stage is not None else None

    def _check_claim(self, conn: Connection, item_id: int, user: str, now: datetime) -> None:
        held = conn.execute(
            select(TriageClaim.user, TriageClaim.expires_at).where(
                TriageClaim.item_id == item_id, TriageClaim.expires_at > now, TriageClaim.user != user
            )
        ).first()
        if held is not None:
            raise ClaimConflict(item_id, held.user, utc(held.expires_at))

    # -- near-duplicate groups ---------------------------------------------------------------------
    def group_of(self, item_id: int) -> list[int]:
        """The open queued items whose media are near-duplicates of this item's (PDQ within the
        ``group_distance`` setting, or the same SHA-256), transitively; sorted, with the item."""
        with self.engine.connect() as conn:
            open_items = (
                select(Item.id)
                .outerjoin(TriageStatus, TriageStatus.item_id == Item.id)
                .where(Item.state == ItemState.NEEDS_REVIEW.value)
                .where(or_(TriageStatus.stage.is_(None), TriageStatus.stage == SECOND))
            )
            rows = conn.execute(
                select(Medium.item_id, Medium.pdq, Medium.pdq_quality, Medium.sha256).where(
                    or_(Medium.item_id.in_(open_items), Medium.item_id == item_id),
                    Medium.outcome == MediumOutcome.NEW.value,
                )
            ).all()
        return sorted(_components(rows, item_id, self.config.group_distance, self.settings.pdq_min_quality))


def _components(rows: Iterable[Any], item_id: int, distance: int, min_quality: int) -> set[int]:
    owners: list[int] = []
    hexes: list[str] = []
    by_sha: dict[str, set[int]] = {}
    media_of: dict[int, list[int]] = {}
    for r in rows:
        iid = int(r.item_id)
        if r.sha256:
            by_sha.setdefault(r.sha256, set()).add(iid)
        if pdq_usable(r.pdq, r.pdq_quality, min_quality):
            media_of.setdefault(iid, []).append(len(hexes))
            owners.append(iid)
            hexes.append(r.pdq)
    sha_of: dict[int, set[str]] = {}
    for sha, items in by_sha.items():
        for iid in items:
            sha_of.setdefault(iid, set()).add(sha)
    codes = (
        np.frombuffer(bytes.fromhex("".join(hexes)), dtype=np.uint8).reshape(-1, 32)
        if hexes
        else np.zeros((0, 32), dtype=np.uint8)
    )
    owner_arr = np.asarray(owners, dtype=np.int64)
    group = {item_id}
    todo = [item_id]
    while todo:
        iid = todo.pop()
        found: set[int] = set()
        for sha in sha_of.get(iid, ()):
            found |= by_sha[sha]
        for m in media_of.get(iid, []):
            near = pdq_distances(hexes[m], codes) <= distance
            found |= {int(x) for x in np.unique(owner_arr[near])}
        for other in found - group:
            group.add(other)
            todo.append(other)
    return group


def _items_of_source(source: str) -> Any:
    cond = (
        Report.source.startswith(source[:-1], autoescape=True)
        if source.endswith("*")
        else (Report.source == source)
    )
    first = select(Item.id).join(Report, Report.id == Item.report_id).where(cond)
    again = select(ReportItem.item_id).join(Report, Report.id == ReportItem.report_id).where(cond)
    return first.union(again)


def _media_counts(conn: Connection, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = conn.execute(
        select(Medium.item_id, func.count()).where(Medium.item_id.in_(ids)).group_by(Medium.item_id)
    )
    return {int(i): int(n) for i, n in rows}


def _opinion_by(conn: Connection, item_id: int, user: str) -> bool:
    return (
        conn.execute(
            select(TriageClassification.id)
            .where(TriageClassification.item_id == item_id, TriageClassification.user == user)
            .limit(1)
        ).first()
        is not None
    )
