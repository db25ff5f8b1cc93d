"""The survivor chain across borders (#12 part "abroad"): with the survivor's consent, a case's
hashes travel with forwarded items to partner hotlines, and what a partner finds and does comes
back to the case's timeline.

Sending (hotline A). A forward of an item linked to a case whose survivor agreed
(``consent_forward``) carries, per such case, only the registered hashes that matched the item
(:func:`meldpunt.act.survivors.consented_by_case`) under an opaque reference::

    "survivor": [{"ref": "<32 hex>", "hashes": [{"type": "pdq", "value": "<hex>"}, ...]}]

The reference is HMAC-SHA256 (the survivor keys, derived from the review key) of the case id, its
creation time and the partner's name: never the case code or the case id in clear, the same for
every forward of the case to one partner, different per partner (two partners cannot tell that
two references are one person). ``survivor_refs_out`` keeps which reference went to which partner
(deleted with the case). A forward without a consenting case has no ``survivor`` key at all.

Receiving (hotline B). The forward's handler stores the hashes in ``survivor_hashes_in``
(partner, ref, kind, value): a bank that labels nothing, like the survivor bank. They are matched
both ways with the survivor matching code: on arrival against every medium already seen (job
:data:`MATCH_IN`, :func:`meldpunt.act.survivors.match_seen`), and every new medium against them in
each :func:`meldpunt.act.survivors.tick_scan` pass (a :class:`~meldpunt.act.survivors.Source`).
The forwarded item itself matches too: it is what B received, and it is reported like any other.

Reporting back (B -> A, over the signed, ordered, exactly-once partner channel). Per matched item
("finding": a keyed hash of B's partner, ref and item id, so later updates name it without B's
item id) :func:`tick_report` claims each fact once (unique ``survivor_reports_out``) and queues:

    survivor_found  {"ref", "finding", "at", "domain", "country"}     # never a URL
    survivor_action {"ref", "finding", "action": "notice_sent" | "removed", "at", "country"}

A records them as ``survivor_facts_abroad`` rows (unique per partner, finding and fact: a
duplicate delivery records one fact); the survivor's timeline shows them, ``tick_news`` counts
them like domestic findings. A message for a reference A does not know (a case withdrawn since)
is dropped quietly: counted in :data:`DROPPED` and logged without identifiers.

Withdrawal. When a case is withdrawn at A, each partner that received one of its references gets

    survivor_withdrawn {"ref"}

in the withdrawal's transaction. B deletes the reference's hashes, its links to B's media and its
claimed reports: B keeps nothing about the reference afterwards (its items, their own timelines
and any messages already queued stay; A drops those). A deletes its references and facts with the
case (cascade).
"""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from meldpunt.act import partners, survivors
from meldpunt.act.context import ActNeeds, Worker, utc
from meldpunt.domain.acting import EventKind, TakedownState
from meldpunt.pipeline.jobs import ClaimedJob, enqueue
from meldpunt.store.acting import ActionEvent, Location, Takedown
from meldpunt.store.reports import Item
from meldpunt.store.survivors import SurvivorCase
from meldpunt.store.survivors_abroad import (
    SurvivorFactAbroad,
    SurvivorHashIn,
    SurvivorLinkIn,
    SurvivorRefOut,
    SurvivorReportOut,
)

log = logging.getLogger(__name__)

#: the job that matches a partner reference's new hashes against every medium already seen
MATCH_IN = "survivor_match_in"
FOUND = "survivor_found"
ACTION = "survivor_action"
WITHDRAWN = "survivor_withdrawn"
#: the actions reported after a finding, in their order
ACTIONS = ("notice_sent", "removed")
#: messages about references we do not know (withdrawn cases): dropped, counted here
DROPPED: Counter[str] = Counter()
MAX_REFS = 100
MAX_HASHES_PER_REF = 1000
_REF = re.compile(r"^[0-9a-f]{32}$")
_BATCH = 500


def _insert(conn: Connection, table: Any) -> Any:
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)


def _refuse(reason: str) -> partners.Refused:
    return partners.Refused(reason, status=422)


# -- sending (A) ----------------------------------------------------------------------------------


def reference(keys: survivors.Keys, case_id: int, created_at: datetime, partner: str) -> str:
    """The case's opaque reference at one partner (module docstring)."""
    return keys.keyed("abroad-ref", f"{case_id}:{utc(created_at).isoformat()}:{partner}")[:32]


def outgoing(conn: Connection, services: ActNeeds, partner: str, item_id: int) -> list[dict[str, Any]]:
    """The ``survivor`` part of a forward of ``item_id`` to ``partner`` (empty: none consented),
    recording which reference goes to the partner, in the forward's transaction."""
    per_case = survivors.consented_by_case(conn, item_id, services.settings.pdq_threshold)
    if not per_case:
        return []
    keys = survivors.Keys.from_settings(services)
    now = services.clock.now()
    out = []
    for case_id, pairs in sorted(per_case.items()):
        created = conn.execute(select(SurvivorCase.created_at).where(SurvivorCase.id == case_id)).scalar()
        if created is None:
            continue
        ref = reference(keys, case_id, created, partner)
        conn.execute(
            _insert(conn, SurvivorRefOut)
            .values(case_id=case_id, partner=partner, ref=ref, created_at=now)
            .on_conflict_do_nothing(index_elements=["partner", "ref"])
        )
        out.append({"ref": ref, "hashes": [{"type": k, "value": v} for k, v in pairs]})
    return out


def _withdraw(services: ActNeeds, conn: Connection, case_id: int) -> None:
    """``survivor_withdrawn`` to each partner that received one of the case's references."""
    for row in conn.execute(select(SurvivorRefOut).where(SurvivorRefOut.case_id == case_id)).all():
        try:
            partners.send(
                conn, services, row.partner, WITHDRAWN, {"ref": row.ref}, key=f"{WITHDRAWN}:{row.ref}"
            )
        except partners.PartnerError:  # the partner was removed from the registry: nothing to tell
            log.warning("a survivor withdrawal could not be queued: the partner is no longer configured")


# -- receiving (B) --------------------------------------------------------------------------------


def take(services: ActNeeds, conn: Connection, sender: str, part: object) -> int:
    """Store the ``survivor`` part of a forward from ``sender`` (in the forward's transaction) and
    queue the match of each reference's new hashes; the number of new hashes. A malformed part
    refuses the whole forward (nothing is applied; the sender sees why)."""
    if part is None:
        return 0
    if not isinstance(part, list) or len(part) > MAX_REFS:
        raise _refuse(f"survivor: a list of at most {MAX_REFS} references")
    now = services.clock.now()
    added = 0
    for entry in part:
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("ref"), str)
            or not _REF.match(entry["ref"])
        ):
            raise _refuse("survivor: each entry has a ref of 32 lower-case hexadecimal characters")
        hashes = entry.get("hashes")
        if not isinstance(hashes, list) or not 0 < len(hashes) <= MAX_HASHES_PER_REF:
            raise _refuse(f"survivor: each ref has 1 to {MAX_HASHES_PER_REF} hashes")
        if not all(isinstance(h, dict) for h in hashes):
            raise _refuse("survivor: each hash is an object with type and value")
        try:
            pairs = survivors.check_hashes((str(h.get("type", "")), str(h.get("value", ""))) for h in hashes)
        except survivors.SurvivorError as e:
            raise _refuse(f"survivor: {e}") from None
        ref = entry["ref"]
        new = conn.execute(
            _insert(conn, SurvivorHashIn)
            .on_conflict_do_nothing(index_elements=["partner", "ref", "signal_type", "value"])
            .returning(SurvivorHashIn.id),
            [
                {"partner": sender, "ref": ref, "signal_type": k, "value": v, "added_at": now}
                for k, v in pairs
            ],
        ).all()
        if new:
            added += len(new)
            key = f"{sender}:{ref}:{secrets.token_hex(6)}"
            enqueue(conn, MATCH_IN, key, {"partner": sender, "ref": ref})
    return added


def step_match_in(services: ActNeeds, worker: Worker, job: ClaimedJob) -> str:
    """Match a partner reference's hashes against every medium already seen; link what matched
    (nothing when the reference was withdrawn meanwhile)."""
    partner, ref = str(job.payload["partner"]), str(job.payload["ref"])
    with services.engine.connect() as conn:
        pairs = [
            (r.signal_type, r.value)
            for r in conn.execute(
                select(SurvivorHashIn.signal_type, SurvivorHashIn.value).where(
                    SurvivorHashIn.partner == partner, SurvivorHashIn.ref == ref
                )
            )
        ]
        found = (
            survivors.match_seen(
                conn, pairs, services.settings.pdq_threshold, services.settings.pdq_min_quality
            )
            if pairs
            else []
        )
    with services.engine.begin() as conn:
        linked = link_in(conn, (partner, ref), found, services.clock.now()) if found else 0
        worker.queue.finish(conn, job)
    return f"linked {linked}"


def link_in(conn: Connection, owner: survivors.Owner, found: list[survivors.Found], now: datetime) -> int:
    """Link media to a partner's reference (the survivor source's ``link``); only while the
    reference still has hashes (a withdrawal in between leaves nothing)."""
    partner, ref = str(owner[0]), str(owner[1])
    alive = conn.execute(
        select(SurvivorHashIn.id).where(SurvivorHashIn.partner == partner, SurvivorHashIn.ref == ref).limit(1)
    ).first()
    best: dict[int, survivors.Found] = {}
    for f in found:
        if f[0] not in best or f[3] < best[f[0]][3]:
            best[f[0]] = f
    if alive is None or not best:
        return 0
    made = conn.execute(
        _insert(conn, SurvivorLinkIn)
        .on_conflict_do_nothing(index_elements=["partner", "ref", "medium_id"])
        .returning(SurvivorLinkIn.id),
        [
            {
                "partner": partner,
                "ref": ref,
                "medium_id": m,
                "item_id": i,
                "matched_by": by,
                "distance": d,
                "at": now,
            }
            for m, i, by, d in best.values()
        ],
    ).all()
    return len(made)


def on_withdrawn(services: Any, conn: Connection, sender: Any, body: dict[str, Any], meta: Any) -> None:
    """A partner's survivor withdrew: delete everything about the reference (module docstring)."""
    ref = body.get("ref")
    if not isinstance(ref, str) or not _REF.match(ref):
        raise _refuse("survivor_withdrawn names a ref of 32 hexadecimal characters")
    for table in (SurvivorHashIn, SurvivorLinkIn, SurvivorReportOut):
        conn.execute(delete(table).where(table.partner == sender.name, table.ref == ref))


def finding(keys: survivors.Keys, partner: str, ref: str, item_id: int) -> str:
    """An opaque name of one of our items for one partner reference (no item id in clear)."""
    return keys.keyed("abroad-finding", f"{partner}:{ref}:{item_id}")[:32]


def _due(conn: Connection, item_id: int, found_at: datetime) -> list[tuple[str, datetime, dict[str, Any]]]:
    """The facts the item calls for, in order: found, then notice sent, then removed."""
    host = conn.execute(select(Item.host).where(Item.id == item_id)).scalar() or ""
    country = (
        conn.execute(
            select(Location.country)
            .where(Location.item_id == item_id)
            .order_by(Location.located_at.desc(), Location.id.desc())
            .limit(1)
        ).scalar()
        or ""
    )
    out: list[tuple[str, datetime, dict[str, Any]]] = [
        ("found", utc(found_at), {"domain": host[:255], "country": country})
    ]
    notice = conn.execute(
        select(func.min(ActionEvent.at)).where(
            ActionEvent.item_id == item_id, ActionEvent.kind == EventKind.NOTICE_SENT.value
        )
    ).scalar()
    if notice is not None:
        out.append(("notice_sent", utc(notice), {"country": country}))
    td = conn.execute(select(Takedown.state, Takedown.removed_at).where(Takedown.item_id == item_id)).first()
    if td is not None and td.state == TakedownState.REMOVED.value and td.removed_at is not None:
        out.append(("removed", utc(td.removed_at), {"country": country}))
    return out


def tick_report(services: ActNeeds) -> int:
    """Queue to partners the facts of their references' findings that came due, each once: a
    claim in ``survivor_reports_out`` (unique: of several workers one wins) and its message in the
    same transaction; the channel delivers them in order. What is due is read first, so a quiet
    pass writes nothing. The number queued."""
    sent = 0
    keys = survivors.Keys.from_settings(services)
    todo: list[tuple[str, str, str, list[tuple[str, datetime, dict[str, Any]]]]] = []
    with services.engine.connect() as conn:
        claimed: dict[tuple[str, str, str], set[str]] = {}
        for r in conn.execute(
            select(
                SurvivorReportOut.partner,
                SurvivorReportOut.ref,
                SurvivorReportOut.finding,
                SurvivorReportOut.fact,
            )
        ):
            claimed.setdefault((r.partner, r.ref, r.finding), set()).add(r.fact)
        for partner, ref, item_id, found_at in conn.execute(
            select(
                SurvivorLinkIn.partner,
                SurvivorLinkIn.ref,
                SurvivorLinkIn.item_id,
                func.min(SurvivorLinkIn.at),
            )
            .group_by(SurvivorLinkIn.partner, SurvivorLinkIn.ref, SurvivorLinkIn.item_id)
            .order_by(func.min(SurvivorLinkIn.id))
        ).all():
            name = finding(keys, partner, ref, int(item_id))
            have = claimed.get((partner, ref, name), set())
            if "removed" in have:
                continue  # nothing more to say about this finding
            due = [d for d in _due(conn, int(item_id), found_at) if d[0] not in have]
            if due:
                todo.append((partner, ref, name, due))
    for partner, ref, name, due in todo:
        try:
            sent += _report(services, partner, ref, name, due)
        except partners.PartnerError:  # rolled back: the partner was removed from the registry
            log.warning("a survivor finding could not be reported: the partner is no longer configured")
    return sent


def _report(
    services: ActNeeds, partner: str, ref: str, name: str, due: list[tuple[str, datetime, dict[str, Any]]]
) -> int:
    """Claim and queue one finding's due facts in one transaction, in order; how many."""
    sent = 0
    with services.engine.begin() as conn:
        for fact, at, extra in due:
            won = conn.execute(
                _insert(conn, SurvivorReportOut)
                .values(partner=partner, ref=ref, finding=name, fact=fact, at=at)
                .on_conflict_do_nothing(index_elements=["partner", "ref", "finding", "fact"])
                .returning(SurvivorReportOut.id)
            ).first()
            if won is None:
                continue  # another worker claimed it
            kind, body = (FOUND, {}) if fact == "found" else (ACTION, {"action": fact})
            body.update({"ref": ref, "finding": name, "at": at.isoformat(), **extra})
            partners.send(conn, services, partner, kind, body, key=f"survivor:{name}:{fact}")
            sent += 1
    return sent


# -- facts back at the sender (A) -----------------------------------------------------------------


def _when(text: object, now: datetime) -> datetime:
    """The partner's time of a fact, never after ours."""
    if isinstance(text, str):
        try:
            return min(utc(datetime.fromisoformat(text)), now)
        except (ValueError, OverflowError):
            return now
    return now


def _short(body: dict[str, Any], key: str, limit: int) -> str:
    """A partner's short text for the survivor's timeline. Control, format (direction
    overrides) and space characters are refused: no domain name or country code holds one, a NUL
    cannot be stored in PostgreSQL (the handler failed on a database error instead of refusing),
    and the others would show the survivor something else than the name."""
    value = body.get(key, "")
    if not isinstance(value, str) or len(value) > limit:
        raise _refuse(f"{key}: text of at most {limit} characters")
    if any(unicodedata.category(ch)[0] in "CZ" for ch in value):
        raise _refuse(f"{key}: no control, format or space characters")
    return value


def _fact(services: Any, conn: Connection, sender: Any, body: dict[str, Any], fact: str) -> None:
    ref, name = body.get("ref"), body.get("finding")
    if not isinstance(ref, str) or not _REF.match(ref) or not isinstance(name, str) or not _REF.match(name):
        raise _refuse("a survivor message names its ref and finding (32 hexadecimal characters each)")
    domain, country = _short(body, "domain", 255), _short(body, "country", 8).upper()
    case_id = conn.execute(
        select(SurvivorRefOut.case_id).where(SurvivorRefOut.partner == sender.name, SurvivorRefOut.ref == ref)
    ).scalar()
    if case_id is None:
        DROPPED[fact] += 1
        log.info("a survivor message for a reference we no longer know was dropped (%s)", fact)
        return
    if fact != "found":
        of_found = (
            SurvivorFactAbroad.partner == sender.name,
            SurvivorFactAbroad.finding == name,
            SurvivorFactAbroad.fact == "found",
        )
        domain = domain or conn.execute(select(SurvivorFactAbroad.domain).where(*of_found)).scalar() or ""
        if country:  # the hosting country is often learned after the finding (located to act)
            conn.execute(
                update(SurvivorFactAbroad)
                .where(*of_found, SurvivorFactAbroad.country == "")
                .values(country=country)
            )
    now = services.clock.now()
    conn.execute(
        _insert(conn, SurvivorFactAbroad)
        .values(
            case_id=int(case_id),
            partner=sender.name,
            partner_country=(sender.countries[0] if sender.countries else "")[:8],
            finding=name,
            fact=fact,
            at=_when(body.get("at"), now),
            domain=domain,
            country=country,
            received_at=now,
        )
        .on_conflict_do_nothing(index_elements=["partner", "finding", "fact"])
    )


def on_found(services: Any, conn: Connection, sender: Any, body: dict[str, Any], meta: Any) -> None:
    """``survivor_found`` from a partner: a finding abroad on the case's timeline."""
    _fact(services, conn, sender, body, "found")


def on_action(services: Any, conn: Connection, sender: Any, body: dict[str, Any], meta: Any) -> None:
    """``survivor_action`` from a partner: what it did about a finding."""
    action = body.get("action")
    if action not in ACTIONS:
        raise _refuse(f"unknown survivor action {str(action)[:40]!r}")
    _fact(services, conn, sender, body, str(action))


def register() -> None:
    """The channel's handlers, the withdrawal hook and the matching source (idempotent)."""
    partners.on_message(FOUND, on_found)
    partners.on_message(ACTION, on_action)
    partners.on_message(WITHDRAWN, on_withdrawn)
    survivors.on_withdraw(_withdraw)
    survivors.add_source(survivors.Source("partners", SurvivorHashIn, ("partner", "ref"), link_in))


register()
