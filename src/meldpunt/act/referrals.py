"""Police referrals, the database side: the cases due, a package made for chosen items, downloads.

Routing marks a takedown ``police = 'due'`` when the hotline's rules say the police should have
it; the police liaison's page lists those (urgent first, then oldest) and a senior makes a package
for one item or a chosen set (:func:`create`): the facts are gathered from the item, its reports
(times and sources only: reporters are anonymous), triage's opinions with who gave them, the
latest locate run, the media and the action timeline (:func:`gather`); ``meldpunt.referral``
writes and signs the package into ``settings.referral.dir`` (outside any transaction: a PDF of
hundreds of items takes seconds, and SQLite writers would wait); then in one transaction the referral
is recorded, the takedowns move from ``due`` to ``referred`` (conditional on ``due``: two seniors
exporting at once both get their package, the state moves once), each item's timeline gets a
``referral_exported`` line and the audit log a ``referral.create`` entry. A package whose record
does not commit is deleted again. Media go in only when asked for and held in the evidence store;
each one read is an ``evidence.access`` audit entry of its own (the evidence store's rule).

Every download (:func:`download`) is audited (``referral.download``) and counted.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, and_, desc, func, insert, select, update

from meldpunt.act import timeline
from meldpunt.act.context import ActNeeds, utc
from meldpunt.audit import AuditEvent, record
from meldpunt.domain.acting import EventKind
from meldpunt.referral import (
    Case,
    CaseItem,
    Decision,
    Event,
    Hosting,
    Medium,
    Package,
    PackageFile,
    VerifyResult,
    build_package,
    remove_package,
    verify,
)
from meldpunt.referral.vics import CATEGORIES
from meldpunt.settings import Settings
from meldpunt.store.accounts import User
from meldpunt.store.acting import ActionEvent, Location, Notice, NoticeItem, Takedown
from meldpunt.store.referrals import Referral, ReferralItem
from meldpunt.store.reports import Item, Report, ReportItem
from meldpunt.store.reports import Medium as MediumRow
from meldpunt.store.triage import TriageClassification, TriageStatus
from meldpunt.stores.evidence import EvidenceStore
from meldpunt.stores.review import key_file_path
from meldpunt.stores.signing import KeyRing

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base 32: no I, L, O, U


class ReferralNeeds(ActNeeds, Protocol):
    """What referrals need besides the act room's: the evidence store and the signing keys."""

    @property
    def evidence_store(self) -> EvidenceStore: ...

    def signing_keys(self) -> KeyRing: ...


class ReferralError(ValueError):
    """A referral that cannot be made as asked (no items, too many); ``str`` says why."""


class NoSuchItems(ReferralError):
    def __init__(self, missing: Sequence[int]) -> None:
        self.missing = list(missing)
        super().__init__(f"no such item(s): {', '.join(map(str, self.missing))}")


class NoSuchReferral(LookupError):
    pass


class PackageGone(LookupError):
    """The referral is recorded but its zip is no longer on disk (deleted or moved by hand)."""


@dataclass(frozen=True)
class DueItem:
    """A takedown whose police referral is due, as the liaison's list shows it (facts, no media)."""

    item_id: int
    url: str
    host: str
    urgent: bool
    country: str
    category: str
    since: datetime
    state: str


@dataclass(frozen=True)
class ReferralView:
    id: int
    reference: str
    items: tuple[int, ...]
    created_at: datetime
    created_by: str
    manifest_sha256: str
    kid: str
    with_media: bool
    path: str
    zip_bytes: int
    urgent: bool
    downloads: int
    last_download_at: datetime | None
    last_download_by: str

    @property
    def zip_path(self) -> Path:
        return Path(f"{self.path}.zip")


@dataclass(frozen=True)
class Created:
    referral: ReferralView
    package: Package
    #: the items whose takedown moved from due to referred by this export
    referred: tuple[int, ...]
    media_files: int


# -- where, who, what --------------------------------------------------------------------------------------


def referral_dir(settings: Settings) -> Path:
    """``settings.referral.dir``; by default ``<db>.referrals`` beside a SQLite database, else
    ``referrals`` in the user data directory."""
    return key_file_path(settings.referral.dir, settings.db, suffix=".referrals", data_name="referrals")


def instance_name(settings: Settings) -> str:
    return settings.partner.instance_name or settings.web.hotline_name


def new_reference(now: datetime) -> str:
    """``RF-<date>-<6 random base-32 characters>`` (30 bits: unique per day in practice; the
    table's unique key has the last word)."""
    return f"RF-{now:%Y%m%d}-" + "".join(secrets.choice(_ALPHABET) for _ in range(6))


def _scheme_of(value: str) -> str:
    """Which scheme a hash list's category label belongs to (a takedown decided by a hash list
    has a ``category`` label, not a classification): the first mapping that knows the value."""
    for mappings in CATEGORIES.values():
        for scheme, numbers in mappings:
            if value in numbers:
                return scheme
    return "category"


def label_values(labels: dict[str, Any]) -> list[str]:
    """The category values of a takedown's labels, as routing writes them (``categories``: an
    analyst's scheme values, or a hash list's ``baseline`` and category labels), or a lone
    ``category``."""
    values = labels.get("categories")
    if isinstance(values, list):
        return [str(v) for v in values if isinstance(v, str) and v]
    one = labels.get("category")
    return [one] if isinstance(one, str) and one else []


# -- gathering ---------------------------------------------------------------------------------------------


def _decisions(conn: Connection, item_id: int) -> tuple[list[Decision], dict[str, Any], datetime | None]:
    roles = {
        r.name: r.role
        for r in conn.execute(
            select(User.name, User.role).where(
                User.name.in_(
                    select(TriageClassification.user).where(TriageClassification.item_id == item_id)
                )
            )
        )
    }
    out = []
    for r in conn.execute(
        select(TriageClassification)
        .where(TriageClassification.item_id == item_id)
        .order_by(TriageClassification.created_at, TriageClassification.id)
    ):
        cls = json.loads(r.classification or "{}")
        out.append(
            Decision(
                values={k: str(v) for k, v in cls.items() if isinstance(v, str) and k not in ("series",)},
                user=r.user,
                staff_role=roles.get(r.user, "unknown"),
                opinion=r.role,
                at=utc(r.created_at),
                flags=tuple(str(f) for f in cls.get("flags", [])),
                series=str(cls.get("series", "") or ""),
            )
        )
    status = conn.execute(select(TriageStatus).where(TriageStatus.item_id == item_id)).first()
    final = json.loads(status.final) if status is not None and status.final else {}
    at = utc(status.finalized_at) if status is not None and status.finalized_at else None
    return out, final, at


def _hosting(conn: Connection, item_id: int, location_id: int | None) -> Hosting:
    q = select(Location).where(Location.item_id == item_id)
    q = (
        q.where(Location.id == location_id)
        if location_id
        else q.order_by(desc(Location.located_at), desc(Location.id))
    )
    loc = conn.execute(q.limit(1)).first()
    if loc is None:
        return Hosting()
    return Hosting(
        host=loc.host,
        ip=loc.ip,
        asn=loc.asn,
        network_owner=loc.network_owner,
        country=loc.country,
        provider=loc.provider,
        abuse_contact=loc.abuse_email,
        registrar=loc.registrar,
        cdn=loc.cdn,
        located_at=utc(loc.located_at),
    )


def _media(conn: Connection, item_id: int) -> list[Medium]:
    out = []
    for m in conn.execute(select(MediumRow).where(MediumRow.item_id == item_id).order_by(MediumRow.id)):
        try:
            banks = tuple(
                sorted(
                    {str(x.get("bank", "")) for x in json.loads(m.matches or "[]") if isinstance(x, dict)}
                    - {""}
                )
            )
        except ValueError:
            banks = ()
        out.append(
            Medium(
                id=int(m.id),
                url=m.url,
                kind=m.kind,
                size=int(m.size or 0),
                md5=m.md5,
                sha1=m.sha1,
                sha256=m.sha256,
                pdq=m.pdq,
                outcome=m.outcome,
                banks=banks,
            )
        )
    return out


def _item(conn: Connection, item: Any) -> CaseItem:
    item_id = int(item.id)
    reports = tuple(
        (utc(r.created_at), r.source)
        for r in conn.execute(
            select(Report.created_at, Report.source)
            .join(ReportItem, ReportItem.report_id == Report.id)
            .where(ReportItem.item_id == item_id)
            .order_by(Report.created_at)
        )
    )
    decisions, final, classified_at = _decisions(conn, item_id)
    td = conn.execute(select(Takedown).where(Takedown.item_id == item_id)).first()
    classification = {k: str(v) for k, v in final.items() if isinstance(v, str) and k != "series"}
    flags = tuple(str(f) for f in final.get("flags", []))
    decided_by = "analyst" if decisions else ""
    if td is not None:
        decided_by = td.decided_by
        if not classification:  # decided by a hash list: its lists' category labels
            for value in label_values(json.loads(td.labels or "{}")):
                classification.setdefault(_scheme_of(value), value)
            classified_at = classified_at or utc(td.created_at)
    events = tuple(
        Event(utc(e.at), e.kind, e.actor, json.loads(e.detail or "{}"))
        for e in conn.execute(
            select(ActionEvent).where(ActionEvent.item_id == item_id).order_by(ActionEvent.at, ActionEvent.id)
        )
    )
    references: dict[str, tuple[str, ...]] = {}
    if td is not None:
        notices = tuple(
            conn.execute(
                select(Notice.reference)
                .join(NoticeItem, NoticeItem.notice_id == Notice.id)
                .where(NoticeItem.takedown_id == td.id)
                .order_by(Notice.opened_at)
            ).scalars()
        )
        if notices:
            references["notice"] = notices
        if td.forward_to:
            references["forwarded to"] = (td.forward_to,)
    earlier = tuple(
        conn.execute(
            select(Referral.reference)
            .join(ReferralItem, ReferralItem.referral_id == Referral.id)
            .where(ReferralItem.item_id == item_id)
            .order_by(Referral.created_at)
        ).scalars()
    )
    if earlier:
        references["earlier referral"] = earlier
    return CaseItem(
        item_id=item_id,
        url=item.url,
        final_url=item.final_url,
        host=item.host,
        server_ip=item.server_ip,
        urgent=bool(item.urgent),
        reported_at=reports[0][0] if reports else utc(item.created_at),
        reports=reports,
        classification=classification,
        flags=flags,
        classified_at=classified_at,
        decisions=tuple(decisions),
        decided_by=decided_by,
        hosting=_hosting(conn, item_id, td.location_id if td is not None else None),
        media=tuple(_media(conn, item_id)),
        timeline=events,
        takedown_state=td.state if td is not None else "",
        removed_at=utc(td.removed_at) if td is not None and td.removed_at else None,
        references=references,
    )


def _ids(item_ids: Iterable[int], limit: int) -> list[int]:
    ids = list(dict.fromkeys(int(i) for i in item_ids))
    if not ids:
        raise ReferralError("choose at least one item")
    if len(ids) > limit:
        raise ReferralError(f"at most {limit} items in one package (referral.max_items), not {len(ids)}")
    return ids


def _gather(
    conn: Connection,
    ids: list[int],
    *,
    reference: str,
    now: datetime,
    by: str,
    settings: Settings,
    with_media: bool,
) -> Case:
    rows = {int(r.id): r for r in conn.execute(select(Item).where(Item.id.in_(ids)))}
    missing = [i for i in ids if i not in rows]
    if missing:
        raise NoSuchItems(missing)
    return Case(
        reference=reference,
        created=now,
        instance=instance_name(settings),
        created_by=by,
        items=tuple(_item(conn, rows[i]) for i in ids),
        with_media=with_media,
    )


def gather(services: ActNeeds, item_ids: Iterable[int], *, by: str, reference: str = "") -> Case:
    """The case for ``item_ids`` as it stands now (nothing written): what a package would say."""
    ids = _ids(item_ids, services.settings.referral.max_items)
    now = services.clock.now()
    with services.engine.connect() as conn:
        return _gather(
            conn,
            ids,
            reference=reference or new_reference(now),
            now=now,
            by=by,
            settings=services.settings,
            with_media=False,
        )


# -- making one --------------------------------------------------------------------------------------------

_EXT = ((b"\xff\xd8\xff", "jpg"), (b"\x89PNG", "png"), (b"GIF8", "gif"), (b"RIFF", "webp"), (b"BM", "bmp"))


def _extension(data: bytes) -> str:
    for magic, ext in _EXT:
        if data.startswith(magic):
            return ext
    if data[4:8] == b"ftyp":
        return "mp4"
    return "bin"


def _with_media(
    conn: Connection, store: EvidenceStore, case: Case, *, by: str, now: datetime
) -> tuple[Case, list[PackageFile]]:
    """The media the evidence store holds, decrypted (each read audited), and the case saying
    where each went in the package."""
    files: list[PackageFile] = []
    items = []
    for item in case.items:
        media = []
        for m in item.media:
            if store.has(conn, m.id):
                data = store.get(
                    conn,
                    m.id,
                    actor=by,
                    purpose=f"police referral {case.reference}",
                    now=now,
                    details={"referral": case.reference},
                )
                name = f"media/{m.id}-{(m.sha256 or 'x')[:12]}.{_extension(data)}"
                files.append(PackageFile(name, data))
                m = replace(m, file=name)
            media.append(m)
        items.append(replace(item, media=tuple(media)))
    return replace(case, items=tuple(items)), files


def create(
    services: ReferralNeeds,
    item_ids: Iterable[int],
    *,
    by: str,
    with_media: bool = False,
    out_dir: Path | None = None,
    extra_files: Sequence[PackageFile] = (),
) -> Created:
    """Make, sign and record a package for ``item_ids`` (in that order), as ``by``.

    ``NoSuchItems`` / ``ReferralError`` when the choice is wrong (nothing written); the signing
    key ring's or evidence store's errors pass through. ``extra_files``: more files for the
    package (the CyberTipline XML), listed in its manifest like the rest."""
    settings = services.settings
    ids = _ids(item_ids, settings.referral.max_items)
    now = services.clock.now()
    reference = new_reference(now)
    ring = services.signing_keys()
    folder = out_dir if out_dir is not None else referral_dir(settings)
    with services.engine.connect() as conn:  # a snapshot of the facts; nothing written yet
        case = _gather(
            conn, ids, reference=reference, now=now, by=by, settings=settings, with_media=with_media
        )
    media: list[PackageFile] = []
    if with_media and any(m for i in case.items for m in i.media):
        # the evidence is read (and each read audited) in a transaction of its own: the bytes
        # left the store whether or not the package is recorded after
        with services.engine.begin() as conn:
            case, media = _with_media(conn, services.evidence_store, case, by=by, now=now)
    # the slow part (a PDF of hundreds of items) holds no transaction: SQLite writers wait for none
    pkg = build_package(
        case,
        folder,
        signer=ring,
        public_keys=ring.public_keys(now),
        media=media,
        extra_files=extra_files,
        profile=settings.referral.vics_profile,
    )
    try:
        with services.engine.begin() as conn:
            referral_id = conn.execute(
                insert(Referral)
                .values(
                    reference=reference,
                    items=json.dumps(ids),
                    created_at=now,
                    created_by=by[:200],
                    manifest_sha256=pkg.manifest_sha256,
                    kid=pkg.kid,
                    with_media=with_media,
                    path=str(pkg.folder.resolve()),
                    zip_bytes=pkg.zip_path.stat().st_size,
                    urgent=case.urgent,
                    downloads=0,
                    last_download_by="",
                )
                .returning(Referral.id)
            ).scalar_one()
            conn.execute(insert(ReferralItem), [{"referral_id": referral_id, "item_id": i} for i in ids])
            referred = [
                int(i)
                for i in conn.execute(
                    update(Takedown)
                    .where(and_(Takedown.item_id.in_(ids), Takedown.police == "due"))
                    .values(police="referred", updated_at=now)
                    .returning(Takedown.item_id)
                ).scalars()
            ]
            for i in ids:
                timeline.record(
                    conn,
                    EventKind.REFERRAL_EXPORTED,
                    at=now,
                    item_id=i,
                    actor=by,
                    detail={"reference": reference, "was_due": i in referred, "with_media": with_media},
                )
            record(
                conn,
                AuditEvent(
                    by,
                    "referral.create",
                    f"referral:{reference}",
                    {
                        "items": ids,
                        "with_media": with_media,
                        "media_files": len(media),
                        "manifest_sha256": pkg.manifest_sha256,
                        "kid": pkg.kid,
                        "files": list(pkg.files),
                        "referred": referred,
                    },
                    at=now,
                ),
            )
            view = _view(conn.execute(select(Referral).where(Referral.id == referral_id)).one())
    except BaseException:
        remove_package(pkg)
        raise
    return Created(view, pkg, tuple(referred), len(media))


# -- reading -----------------------------------------------------------------------------------------------


def _view(r: Any) -> ReferralView:
    return ReferralView(
        id=int(r.id),
        reference=r.reference,
        items=tuple(int(i) for i in json.loads(r.items or "[]")),
        created_at=utc(r.created_at),
        created_by=r.created_by,
        manifest_sha256=r.manifest_sha256,
        kid=r.kid,
        with_media=bool(r.with_media),
        path=r.path,
        zip_bytes=int(r.zip_bytes or 0),
        urgent=bool(r.urgent),
        downloads=int(r.downloads or 0),
        last_download_at=utc(r.last_download_at) if r.last_download_at else None,
        last_download_by=r.last_download_by,
    )


def due(services: ActNeeds, *, limit: int = 200) -> tuple[list[DueItem], int]:
    """Takedowns whose police referral is due: urgent first, then the oldest; and how many."""
    where = Takedown.police == "due"
    with services.engine.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(Takedown).where(where)).scalar_one())
        rows = conn.execute(
            select(
                Item.id,
                Item.url,
                Item.host,
                Item.urgent,
                Takedown.labels,
                Takedown.created_at,
                Takedown.state,
                Location.country,
            )
            .join(Item, Item.id == Takedown.item_id)
            .outerjoin(Location, Location.id == Takedown.location_id)
            .where(where)
            .order_by(desc(Item.urgent), Takedown.created_at, Takedown.id)
            .limit(limit)
        ).all()
    out = []
    for r in rows:
        labels = json.loads(r.labels or "{}")
        out.append(
            DueItem(
                item_id=int(r.id),
                url=r.url,
                host=r.host,
                urgent=bool(r.urgent),
                country=r.country or "",
                category=", ".join(label_values(labels)),
                since=utc(r.created_at),
                state=r.state,
            )
        )
    return out, total


def list_referrals(services: ActNeeds, *, limit: int = 200) -> list[ReferralView]:
    """The packages made: the urgent ones first, then the newest."""
    with services.engine.connect() as conn:
        rows = conn.execute(
            select(Referral)
            .order_by(desc(Referral.urgent), desc(Referral.created_at), desc(Referral.id))
            .limit(limit)
        ).all()
    return [_view(r) for r in rows]


def for_item(services: ActNeeds, item_id: int) -> list[ReferralView]:
    with services.engine.connect() as conn:
        rows = conn.execute(
            select(Referral)
            .join(ReferralItem, ReferralItem.referral_id == Referral.id)
            .where(ReferralItem.item_id == item_id)
            .order_by(desc(Referral.created_at))
        ).all()
    return [_view(r) for r in rows]


def get(services: ActNeeds, referral_id: int) -> ReferralView:
    with services.engine.connect() as conn:
        row = conn.execute(select(Referral).where(Referral.id == referral_id)).first()
    if row is None:
        raise NoSuchReferral(referral_id)
    return _view(row)


def download(services: ActNeeds, referral_id: int, *, by: str) -> ReferralView:
    """Record a download of the package's zip by ``by`` (counted, audited) and return the
    referral (its ``zip_path``). ``NoSuchReferral``; ``PackageGone`` when the zip is not on disk
    (nothing recorded then)."""
    now = services.clock.now()
    with services.engine.begin() as conn:
        row = conn.execute(select(Referral).where(Referral.id == referral_id)).first()
        if row is None:
            raise NoSuchReferral(referral_id)
        view = _view(row)
        if not view.zip_path.is_file():
            raise PackageGone(view.reference)
        conn.execute(
            update(Referral)
            .where(Referral.id == referral_id)
            .values(downloads=Referral.downloads + 1, last_download_at=now, last_download_by=by[:200])
        )
        record(
            conn,
            AuditEvent(
                by,
                "referral.download",
                f"referral:{view.reference}",
                {"referral": view.id, "items": list(view.items), "manifest_sha256": view.manifest_sha256},
                at=now,
            ),
        )
    return view


def accepted_keys(services: ReferralNeeds) -> list[Mapping[str, Any]]:
    """The instance's public keys still accepted now (the current one and those in their grace)."""
    return list(services.signing_keys().public_keys(services.clock.now()))


def verify_package(
    services: ReferralNeeds, path: Path, keys: Sequence[Mapping[str, Any] | str] | None = None
) -> VerifyResult:
    """``referral.verify`` of ``path`` against ``keys`` (default: this instance's accepted keys)."""
    return verify(path, accepted_keys(services) if keys is None else keys)
