"""The CyberTipline-style export from the database: the facts of one item or a set a senior chose
(URLs, hosting facts, media hashes, the final classification's ``us`` value), the XML
(:mod:`meldpunt.referral.cybertip`), an audit entry and a line on each item's timeline.

Which items: those found illegal — by a hash list (state ``known``, with at least one medium an
``auto`` list knew) or by a final classification that is illegal. Anything else (not yet decided,
decided not illegal, unreachable) is refused with the reason: a report to NCMEC is about material
someone found illegal, not about a URL someone sent in.

Which files: media an ``auto`` hash list knew (never looked at by a person: no category, a note
names the list), and the new media the final decision covers (looked at: the decision's ``us``
value as the industry classification; ``age_band: infant`` as NCMEC's ``infant`` annotation).
Media on a benign list, ones that failed, and ones the analyst left out of the decision (a
site's logo) are not in the report. The report never holds media, the reporter's words or any
person's address: URLs, a server's address, hashes and classifications.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from meldpunt.act.context import ActNeeds, utc
from meldpunt.act.timeline import record
from meldpunt.audit import AuditEvent
from meldpunt.audit import record as audit_record
from meldpunt.domain.acting import EventKind
from meldpunt.domain.reports import ItemState, MediumOutcome
from meldpunt.referral.cybertip import (
    INDUSTRY_CLASSIFICATIONS,
    CybertipError,
    CybertipFacts,
    FileFacts,
    PageFacts,
    Reporter,
    cybertip_problems,
    cybertip_xml,
)
from meldpunt.store.acting import Location
from meldpunt.store.reports import Item, Medium
from meldpunt.store.triage import FINAL, TriageStatus

#: the scheme whose values are the industry classification (``triage/schemes.yaml``)
US_SCHEME = "us"
#: (scheme, value) of a classification -> the NCMEC file annotation it means
ANNOTATIONS: dict[tuple[str, str], str] = {("age_band", "infant"): "infant"}
#: most items in one export (a case, not the whole database)
MAX_ITEMS = 500

__all__ = [
    "ANNOTATIONS",
    "MAX_ITEMS",
    "US_SCHEME",
    "CybertipError",
    "CybertipExport",
    "NotExportable",
    "cybertip_facts",
    "export_cybertip",
    "readiness",
]


class NotExportable(CybertipError):
    """An item that is not there or was not found illegal: the message names it and why;
    ``missing`` tells an unknown item (404 on the web) from one that cannot be reported (422)."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


@dataclass(frozen=True)
class CybertipExport:
    """What an export made: the XML, its SHA-256, the items and how many files it describes."""

    xml: bytes
    sha256: str
    item_ids: tuple[int, ...]
    files: int
    uncategorised: int


def _hashes(m: Any) -> dict[str, str]:
    found = {"MD5": m.md5, "SHA1": m.sha1, "SHA256": m.sha256, "PDQ": m.pdq}
    return {k: v for k, v in found.items() if v}


def _banks(matches: str) -> list[str]:
    try:
        rows = json.loads(matches or "[]")
    except ValueError:
        return []
    names = {str(r.get("bank")) for r in rows if isinstance(r, dict) and r.get("policy") == "auto"}
    return sorted(n for n in names if n and n != "None")


def _page(conn: Connection, item: Any) -> PageFacts:
    """One item's facts, or :class:`NotExportable` saying why it cannot be reported."""
    item_id = int(item.id)
    status = conn.execute(
        select(TriageStatus.final, TriageStatus.illegal).where(
            TriageStatus.item_id == item_id, TriageStatus.stage == FINAL
        )
    ).one_or_none()
    decision: dict[str, Any] | None = None
    if status is not None and status.final:
        decision = json.loads(status.final)
        if not status.illegal:
            raise NotExportable(f"item {item_id} was classified not illegal: nothing to report")
    elif item.state != ItemState.KNOWN.value:
        raise NotExportable(
            f"item {item_id} has no final decision that it is illegal (it is {item.state}): "
            "nothing to report yet"
        )
    covered: set[int] | None = None
    us_value = ""
    annotations: tuple[str, ...] = ()
    notes_for_decided: list[str] = []
    if decision is not None:
        raw_media = decision.get("media")
        covered = {int(m) for m in raw_media} if isinstance(raw_media, list) else None
        us_value = str(decision.get(US_SCHEME) or "")
        annotations = tuple(
            sorted({a for (scheme, value), a in ANNOTATIONS.items() if decision.get(scheme) == value})
        )
        if us_value and us_value not in INDUSTRY_CLASSIFICATIONS:
            notes_for_decided.append(
                f"The hotline's US-scheme value {us_value!r} is not an industry classification."
            )
        if decision.get("status"):
            notes_for_decided.append(f"The hotline's legal assessment: {decision['status']}.")

    files: list[FileFacts] = []
    media = conn.execute(
        select(
            Medium.id,
            Medium.url,
            Medium.outcome,
            Medium.md5,
            Medium.sha1,
            Medium.sha256,
            Medium.pdq,
            Medium.matches,
        )
        .where(Medium.item_id == item_id)
        .order_by(Medium.id)
    ).all()
    for m in media:
        if m.outcome == MediumOutcome.KNOWN.value:
            banks = _banks(m.matches)
            listed = ", ".join(banks) if banks else "a hash list"
            files.append(
                FileFacts(
                    url=m.url,
                    hashes=_hashes(m),
                    viewed=False,
                    notes=(f"Known to the hotline's hash list ({listed}); not viewed by a person.",),
                )
            )
        elif (
            m.outcome == MediumOutcome.NEW.value
            and decision is not None
            and (covered is None or int(m.id) in covered)
        ):
            files.append(
                FileFacts(
                    url=m.url,
                    hashes=_hashes(m),
                    industry_classification=us_value if us_value in INDUSTRY_CLASSIFICATIONS else None,
                    viewed=True,
                    annotations=annotations,
                    notes=tuple(notes_for_decided),
                )
            )
    if decision is None and not files:
        raise NotExportable(f"item {item_id} matched only benign lists: nothing to report")

    loc = conn.execute(
        select(
            Location.ip,
            Location.country,
            Location.asn,
            Location.network_owner,
            Location.provider,
            Location.located_at,
        )
        .where(Location.item_id == item_id)
        .order_by(Location.located_at.desc(), Location.id.desc())
        .limit(1)
    ).first()
    return PageFacts(
        url=item.url,
        reported_at=utc(item.created_at),
        reference=f"item {item_id}",
        final_url=item.final_url or "",
        server_ip=(loc.ip if loc is not None and loc.ip else item.server_ip) or "",
        country=loc.country if loc is not None else "",
        asn=loc.asn if loc is not None else None,
        network_owner=loc.network_owner if loc is not None else "",
        provider=loc.provider if loc is not None else "",
        located_at=utc(loc.located_at) if loc is not None else None,
        urgent=bool(item.urgent),
        files=tuple(files),
    )


def _item_ids(item_ids: Sequence[int]) -> tuple[int, ...]:
    ids = tuple(dict.fromkeys(int(i) for i in item_ids))
    if not ids:
        raise NotExportable("name at least one item")
    if len(ids) > MAX_ITEMS:
        raise NotExportable(f"at most {MAX_ITEMS} items in one export (got {len(ids)})")
    return ids


def cybertip_facts(
    needs: ActNeeds, item_ids: Sequence[int], *, conn: Connection | None = None
) -> CybertipFacts:
    """The facts of one incident made of ``item_ids`` (in that order), at the clock's time; the
    reporter from ``settings.referral``. Raises :class:`NotExportable` for an unknown item or one
    not found illegal, :class:`CybertipError` for settings an export cannot be made with."""
    ids = _item_ids(item_ids)
    if conn is None:
        with needs.engine.connect() as c:
            return cybertip_facts(needs, ids, conn=c)
    rows = {
        int(r.id): r
        for r in conn.execute(
            select(
                Item.id, Item.url, Item.final_url, Item.server_ip, Item.state, Item.urgent, Item.created_at
            ).where(Item.id.in_(ids))
        )
    }
    missing = [i for i in ids if i not in rows]
    if missing:
        raise NotExportable(f"no item {missing[0]}", missing=True)
    pages = tuple(_page(conn, rows[i]) for i in ids)
    referral = needs.settings.referral
    hotline = needs.settings.web.hotline_name
    listed = ", ".join(f"item {i}" for i in ids)
    return CybertipFacts(
        pages=pages,
        reporter=Reporter.from_settings(referral),
        exported_at=needs.clock.now(),
        third_party_hosted=referral.cybertip_third_party_hosted,
        notes=(
            f"Exported by {hotline} (meldpunt) from {listed}. A hotline's report: URLs, hosting "
            "facts and hashes; the hotline holds no copy of the media to upload.",
        ),
    )


def export_cybertip(needs: ActNeeds, item_ids: Sequence[int], *, actor: str) -> CybertipExport:
    """Make the export of ``item_ids``, check it against the XSD, and record it — an audit entry (items, files, the XML's
    SHA-256) and a ``cybertip_exported`` line on each item's timeline — in one transaction: an
    export that was handed out is always on record."""
    ids = _item_ids(item_ids)
    now = needs.clock.now()
    with needs.engine.begin() as conn:
        facts = cybertip_facts(needs, ids, conn=conn)
        xml = cybertip_xml(facts)
        problems = cybertip_problems(xml)
        if problems:  # a fault of ours, never handed out (and, rolled back, never on record)
            raise CybertipError("the export does not validate: " + "; ".join(problems[:5]))
        digest = hashlib.sha256(xml).hexdigest()
        files = sum(len(p.files) for p in facts.pages)
        uncategorised = sum(1 for p in facts.pages for f in p.files if f.industry_classification is None)
        for item_id, page in zip(ids, facts.pages, strict=True):
            record(
                conn,
                EventKind.CYBERTIP_EXPORTED,
                at=now,
                item_id=item_id,
                actor=actor,
                detail={"files": len(page.files), "sha256": digest, "items": len(ids)},
            )
        audit_record(
            conn,
            AuditEvent(
                actor,
                "referral.cybertip",
                ("item:" + ",".join(str(i) for i in ids))[:200],
                {"items": list(ids), "files": files, "uncategorised": uncategorised, "sha256": digest},
                now,
            ),
        )
    return CybertipExport(xml, digest, ids, files, uncategorised)


def readiness(needs: ActNeeds, item_id: int) -> str:
    """Whether the item page may offer the export: ``ready``; ``missing`` (no such item);
    ``not_illegal`` (not found illegal, or nothing to report); ``no_reporter`` (the reporter's
    e-mail address is not set). Records nothing."""
    try:
        facts = cybertip_facts(needs, [item_id])
    except NotExportable as e:
        return "missing" if e.missing else "not_illegal"
    return "ready" if "@" in facts.reporter.email else "no_reporter"
