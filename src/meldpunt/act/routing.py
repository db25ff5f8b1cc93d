"""Takedowns for items found illegal, and the route each takes, explained (#10 part "routing").

Two ticks (``act.ticks``), each safe to run in every worker at once:

- :func:`tick_takedowns` opens one takedown (``to_locate``) per item whose final decision is
  illegal: an analyst's final classification (``triage_status``: stage ``final``, ``illegal``), or,
  with ``act.act_on_hash_list``, an item ``known`` because a medium matched an ``auto`` hash list
  whose labels say illegal (a ``baseline`` label, or a category in ``act.hash_list_categories``).
  It queries only items without a takedown; the unique ``takedowns.item_id`` makes a second
  worker's insert a no-op (``ON CONFLICT DO NOTHING``), and only the insert that wrote the row
  records the timeline line. A final "not illegal" opens nothing: the item is closed as it is.
- :func:`tick_route` decides, for a takedown in ``to_route``, from the item's newest location, the
  abuse contacts and the routing rules (``act.contacts``), who gets what: the decision is pure
  (:func:`decide`), written as ``takedowns.route`` (JSON, one line per reason, each a code the
  pages turn into a sentence) with a conditional update on ``state = 'to_route'``.

The route JSON (read by the notice part and the item page)::

    {"action": "notice" | "forward" | "none",
     "state": "to_notice" | "to_forward" | "no_contact" | "held" | "closed",
     "contact_id": 3 | null, "channel": "email" | "webhook" | "none" | "",
     "ask_origin": false,          # a CDN: the notice asks it to name the origin host
     "police": false,              # a police referral is due by the rule
     "forward_to": "",             # the partner hotline ("to be forwarded to X")
     "country": "BE", "rule_id": 1, "location_id": 7,
     "lines": [{"code": "country_home", "country": "BE"},
               {"code": "contact_domain", "contact_id": 3, "name": "...", "match": "example.com"},
               ...]}

Line codes (sentences in ``web/act_routing.py``): ``location_unknown``, ``country_home``,
``country_partner``, ``country_other``, ``country_unknown``, ``rule_none``, ``contact_domain``,
``contact_network``, ``contact_asn``, ``contact_provider``, ``contact_rdap``, ``rdap_invalid``,
``no_contact``, ``cdn``, ``do_not_contact``, ``not_accepting``, ``no_channel``,
``contact_suspect``, ``police``, ``notice``, ``forward``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from meldpunt.act import timeline
from meldpunt.act.contacts import (
    ContactView,
    RuleView,
    contact_view,
    ensure_default_rules,
    normal_asn,
    rule_order,
    rule_view,
    valid_email,
)
from meldpunt.act.context import ActNeeds
from meldpunt.audit import AuditEvent, record
from meldpunt.domain.acting import EventKind, RouteAction, TakedownState
from meldpunt.domain.reports import ItemState, MediumOutcome
from meldpunt.domain.triage import Stage
from meldpunt.store.acting import Contact, Location, NoticeItem, RoutingRule, Takedown
from meldpunt.store.reports import Item, Medium, Report, ReportItem
from meldpunt.store.triage import TriageStatus

log = logging.getLogger(__name__)

#: rows one query of a tick reads at a time
BATCH = 500
#: classification keys that are not scheme values
_NOT_VALUES = {"flags", "series", "media"}


# -- takedowns ----------------------------------------------------------------------------------------


def tick_takedowns(services: ActNeeds) -> int:
    """Items whose final decision is illegal (an analyst's, or an ``auto`` hash list's label) and
    that have no takedown yet: create one (``to_locate``). The number created."""
    created = _from_analysts(services)
    if services.settings.act.act_on_hash_list:
        created += _from_hash_lists(services)
    return created


def _no_takedown() -> Any:
    return ~exists().where(Takedown.item_id == Item.id)


def _from_analysts(services: ActNeeds) -> int:
    created, after = 0, 0
    while True:
        with services.engine.connect() as conn:
            rows = conn.execute(
                select(Item.id, TriageStatus.final)
                .join(TriageStatus, TriageStatus.item_id == Item.id)
                .where(
                    Item.id > after,
                    Item.state == ItemState.CLASSIFIED.value,
                    TriageStatus.stage == Stage.FINAL.value,
                    TriageStatus.illegal.is_(True),
                    _no_takedown(),
                )
                .order_by(Item.id)
                .limit(BATCH)
            ).all()
        found: dict[int, dict[str, Any]] = {}
        for r in rows:
            found[int(r.id)] = analyst_labels(r.final)
        created += _open(services, found, "analyst")
        if len(rows) < BATCH:
            return created
        after = int(rows[-1].id)


def analyst_labels(final: str) -> dict[str, Any]:
    """What made an analyst's final classification actionable, for ``takedowns.labels``: its scheme
    values (``categories``: the values, which police rules name) and flags."""
    c = json.loads(final or "{}")
    values = {k: str(v) for k, v in c.items() if k not in _NOT_VALUES}
    return {
        "source": "analyst",
        "classification": dict(sorted(values.items())),
        "categories": sorted(set(values.values())),
        "flags": list(c.get("flags", [])),
    }


def illegal_label(labels: dict[str, Any], categories: Iterable[str]) -> bool:
    """Whether a hash-list entry's labels say illegal: ``baseline``, or a category named in
    ``act.hash_list_categories``."""
    if labels.get("baseline") is True:
        return True
    category = labels.get("category")
    return isinstance(category, str) and category in set(categories)


def hash_list_labels(matches: Iterable[dict[str, Any]], categories: Sequence[str]) -> dict[str, Any] | None:
    """The labels an item's exact ``auto`` matches give it when any says illegal (None: none does)."""
    banks: set[str] = set()
    cats: set[str] = set()
    baseline = False
    for m in matches:
        labels = m.get("labels") or {}
        if m.get("policy") != "auto" or m.get("near") or not isinstance(labels, dict):
            continue
        if not illegal_label(labels, categories):
            continue
        banks.add(str(m.get("bank", "")))
        if isinstance(labels.get("category"), str):
            cats.add(labels["category"])
        if labels.get("baseline") is True:
            baseline = True
            cats.add("baseline")
    if not banks:
        return None
    return {"source": "hash_list", "banks": sorted(banks), "categories": sorted(cats), "baseline": baseline}


def _from_hash_lists(services: ActNeeds) -> int:
    categories = list(services.settings.act.hash_list_categories)
    # a text prefilter on the matches JSON (json.dumps' default spacing, as the walk writes it)
    # keeps items whose lists say nothing illegal out of every pass; Python decides for sure
    hints = [Medium.matches.like('%"baseline": true%')]
    hints += [Medium.matches.like(f'%"category": {json.dumps(c)}%') for c in categories]
    listed = exists().where(
        Medium.item_id == Item.id, Medium.outcome == MediumOutcome.KNOWN.value, or_(*hints)
    )
    created, after = 0, 0
    while True:
        with services.engine.connect() as conn:
            ids = [
                int(i)
                for i in conn.execute(
                    select(Item.id)
                    .where(Item.id > after, Item.state == ItemState.KNOWN.value, listed, _no_takedown())
                    .order_by(Item.id)
                    .limit(BATCH)
                ).scalars()
            ]
            rows = conn.execute(
                select(Medium.item_id, Medium.matches).where(
                    Medium.item_id.in_(ids), Medium.outcome == MediumOutcome.KNOWN.value
                )
            ).all()
        per_item: dict[int, list[dict[str, Any]]] = {}
        for r in rows:
            try:
                matches = json.loads(r.matches or "[]")
            except ValueError:
                continue
            if isinstance(matches, list):
                per_item.setdefault(int(r.item_id), []).extend(m for m in matches if isinstance(m, dict))
        found = {}
        for item_id, matches in per_item.items():
            labels = hash_list_labels(matches, categories)
            if labels is not None:
                found[item_id] = labels
        created += _open(services, found, "hash_list")
        if len(ids) < BATCH:
            return created
        after = ids[-1]


def _insert_ignoring(conn: Connection) -> Any:
    """An INSERT into ``takedowns`` that does nothing when the item has one already."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    # the Core table, not the ORM entity: one statement per item, without the ORM's per-call cost
    return dialect.insert(Takedown.__table__).on_conflict_do_nothing(index_elements=["item_id"])


def _open(services: ActNeeds, found: dict[int, dict[str, Any]], decided_by: str) -> int:
    """Open a takedown for each item of ``found`` (item id -> labels); the number opened here (a
    concurrent worker's are not counted, nor recorded twice)."""
    if not found:
        return 0
    now = services.clock.now()
    opened = 0
    with services.engine.begin() as conn:
        first = dict(
            conn.execute(
                select(ReportItem.item_id, func.min(Report.created_at))
                .join(Report, Report.id == ReportItem.report_id)
                .where(ReportItem.item_id.in_(list(found)))
                .group_by(ReportItem.item_id)
            ).all()
        )
        created_at = dict(
            conn.execute(select(Item.id, Item.created_at).where(Item.id.in_(list(found)))).all()
        )
        for item_id, labels in found.items():
            reported = first.get(item_id) or created_at.get(item_id) or now
            row = conn.execute(
                _insert_ignoring(conn)
                .values(
                    item_id=item_id,
                    state=TakedownState.TO_LOCATE.value,
                    decided_by=decided_by,
                    labels=json.dumps(labels, sort_keys=True),
                    reported_at=reported,
                    created_at=now,
                    updated_at=now,
                )
                .returning(Takedown.__table__.c.id)
            ).first()
            if row is None:
                continue
            opened += 1
            timeline.record(
                conn,
                EventKind.TAKEDOWN_OPENED,
                at=now,
                item_id=item_id,
                detail={
                    "takedown_id": int(row[0]),
                    "decided_by": decided_by,
                    "categories": labels["categories"],
                },
            )
    return opened


# -- the decision ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """The facts of a location routing reads (``locations`` row; empty: not located)."""

    id: int | None = None
    host: str = ""
    ip: str = ""
    prefix: str = ""
    asn: int | None = None
    country: str = ""
    provider: str = ""
    network_owner: str = ""
    abuse_email: str = ""
    cdn: str = ""

    @classmethod
    def of(cls, row: Any) -> Place:
        return cls(
            int(row.id),
            (row.host or "").lower().rstrip("."),
            row.ip or "",
            row.prefix or "",
            int(row.asn) if row.asn is not None else None,
            (row.country or "").upper(),
            row.provider or "",
            row.network_owner or "",
            (row.abuse_email or "").strip(),
            row.cdn or "",
        )


@dataclass(frozen=True)
class Route:
    action: str
    state: str
    contact_id: int | None = None
    channel: str = ""
    ask_origin: bool = False
    police: bool = False
    forward_to: str = ""
    country: str = ""
    rule_id: int | None = None
    location_id: int | None = None
    lines: list[dict[str, Any]] = field(default_factory=list)
    #: an RDAP abuse address to make a contact of (scope, match, name, address); routing fills
    #: ``contact_id`` once it exists
    rdap: tuple[str, str, str, str] | None = None

    def to_json(self) -> str:
        d = {
            "action": self.action,
            "state": self.state,
            "contact_id": self.contact_id,
            "channel": self.channel,
            "ask_origin": self.ask_origin,
            "police": self.police,
            "forward_to": self.forward_to,
            "country": self.country,
            "rule_id": self.rule_id,
            "location_id": self.location_id,
            "lines": self.lines,
        }
        return json.dumps(d, sort_keys=True)


def _name(s: str) -> str:
    return " ".join(s.split()).lower()


def match_contact(place: Place, contacts: Sequence[ContactView]) -> tuple[ContactView, str] | None:
    """The most specific contact for ``place`` and the scope it matched by: a domain (longest
    suffix of the host), else a network (longest prefix holding the address), else the ASN, else
    the provider by name (provider, CDN or network owner). Behind a CDN, a domain contact (the
    site's own, e.g. an image host) still wins; otherwise a CDN contact is preferred."""
    host = place.host
    domains = [
        c
        for c in contacts
        if c.scope == "domain" and host and (host == c.match or host.endswith("." + c.match))
    ]
    if domains:
        return max(domains, key=lambda c: len(c.match)), "domain"
    networks: list[tuple[int, ContactView]] = []
    try:
        address = ipaddress.ip_address(place.ip) if place.ip else None
    except ValueError:
        address = None
    if address is not None:
        for c in contacts:
            if c.scope != "network":
                continue
            try:
                net = ipaddress.ip_network(c.match, strict=False)
            except ValueError:
                continue
            if net.version == address.version and address in net:
                networks.append((net.prefixlen, c))
    asn = [c for c in contacts if c.scope == "asn" and place.asn is not None and c.match == str(place.asn)]
    names = {_name(n) for n in (place.provider, place.cdn, place.network_owner) if n.strip()}
    providers = [c for c in contacts if c.scope == "provider" and c.match in names]
    ranked: list[tuple[ContactView, str]] = [
        *((c, "network") for _, c in sorted(networks, key=lambda x: -x[0])),
        *((c, "asn") for c in asn),
        *((c, "provider") for c in sorted(providers, key=lambda c: c.match != _name(place.provider))),
    ]
    if not ranked:
        return None
    if place.cdn:
        cdns = [x for x in ranked if x[0].cdn]
        if cdns:
            return cdns[0]
    return ranked[0]


def pick_rule(country: str, rules: Sequence[RuleView]) -> RuleView | None:
    """The rule for ``country``: its own (lowest position first), else ``*``."""
    ordered = sorted(rules, key=rule_order)
    for r in ordered:
        if country and r.country == country:
            return r
    return next((r for r in ordered if r.country == "*"), None)


def police_due(rule: RuleView, labels: dict[str, Any]) -> bool:
    """The rule refers to the police, for any illegal item or for one of the item's categories."""
    if not rule.police:
        return False
    if not rule.police_categories:
        return True
    return bool(set(rule.police_categories) & set(labels.get("categories", [])))


def _rdap_scope(place: Place) -> tuple[str, str]:
    """What a contact made from the location's RDAP abuse address is for: its network, else its
    ASN, else its one address; ("", "") when none of them is usable."""
    if place.prefix:
        try:
            return "network", str(ipaddress.ip_network(place.prefix, strict=False))
        except ValueError:
            pass
    if place.asn is not None:
        try:
            return "asn", normal_asn(str(place.asn))
        except ValueError:
            pass
    if place.ip:
        try:
            return "network", str(ipaddress.ip_network(place.ip))
        except ValueError:
            pass
    return "", ""


def decide(
    place: Place | None,
    contacts: Sequence[ContactView],
    rules: Sequence[RuleView],
    labels: dict[str, Any],
    home_country: str,
) -> Route:
    """Where a takedown goes and why (pure: the caller reads the rows and writes the result)."""
    lines: list[dict[str, Any]] = []
    if place is None:
        place = Place()
        lines.append({"code": "location_unknown"})
    country = place.country
    home = home_country.strip().upper()
    rule = pick_rule(country, rules)
    base: dict[str, Any] = {
        "country": country,
        "rule_id": rule.id if rule else None,
        "location_id": place.id,
    }
    if rule is None or rule.action == RouteAction.NONE:
        lines.append({"code": "rule_none", "country": rule.country if rule else "*"})
        return Route(RouteAction.NONE.value, TakedownState.CLOSED.value, lines=lines, **base)
    police = police_due(rule, labels)
    police_line = {"code": "police", "categories": list(rule.police_categories)} if police else None
    if rule.action == RouteAction.FORWARD:
        lines.append({"code": "country_partner", "country": country, "partner": rule.partner})
        lines.append({"code": "forward", "partner": rule.partner})
        if police_line:
            lines.append(police_line)
        return Route(
            RouteAction.FORWARD.value,
            TakedownState.TO_FORWARD.value,
            police=police,
            forward_to=rule.partner,
            lines=lines,
            **base,
        )
    if not country:
        lines.append({"code": "country_unknown"})
    elif country == home:
        lines.append({"code": "country_home", "country": country})
    else:
        lines.append({"code": "country_other", "country": country})
    found = match_contact(place, contacts)
    rdap: tuple[str, str, str, str] | None = None
    contact: ContactView | None = None
    if found is not None:
        contact, how = found
        lines.append(
            {"code": f"contact_{how}", "contact_id": contact.id, "name": contact.name, "match": contact.match}
        )
    elif place.abuse_email:
        try:
            email = valid_email(place.abuse_email)
        except ValueError:
            lines.append({"code": "rdap_invalid", "email": place.abuse_email[:200]})
        else:
            scope, match = _rdap_scope(place)
            if scope:
                rdap = (scope, match, place.network_owner or place.provider, email)
                lines.append({"code": "contact_rdap", "email": email, "scope": scope, "match": match})
            else:
                lines.append({"code": "rdap_invalid", "email": place.abuse_email[:200]})
    if police_line:
        lines.append(police_line)
    if contact is None and rdap is None:
        lines.append({"code": "no_contact"})
        return Route(
            RouteAction.NOTICE.value, TakedownState.NO_CONTACT.value, police=police, lines=lines, **base
        )
    channel = contact.channel if contact else "email"
    ask_origin = bool(contact and contact.cdn) or bool(place.cdn and not (found and found[1] == "domain"))
    if ask_origin:
        lines.append({"code": "cdn", "cdn": place.cdn or (contact.name if contact else "")})
    state = TakedownState.TO_NOTICE.value
    if contact is not None:
        held = None
        if contact.do_not_contact:
            held = "do_not_contact"
        elif not contact.accepts:
            held = "not_accepting"
        elif contact.channel == "none" or not contact.address:
            held = "no_channel"
        if held:
            lines.append({"code": held, "name": contact.name or contact.match})
            state = TakedownState.HELD.value
        elif contact.suspect:
            lines.append(
                {
                    "code": "contact_suspect",
                    "name": contact.name or contact.match,
                    "reason": contact.suspect_reason,
                }
            )
    if state == TakedownState.TO_NOTICE.value:
        lines.append({"code": "notice", "channel": channel})
    return Route(
        RouteAction.NOTICE.value,
        state,
        contact_id=contact.id if contact else None,
        channel=channel,
        ask_origin=ask_origin,
        police=police,
        lines=lines,
        rdap=rdap,
        **base,
    )


# -- routing ------------------------------------------------------------------------------------------------


def current_location(conn: Connection, item_id: int) -> Place | None:
    """The item's newest location (``locations``, written by the locate step)."""
    row = conn.execute(
        select(Location)
        .where(Location.item_id == item_id)
        .order_by(Location.located_at.desc(), Location.id.desc())
        .limit(1)
    ).first()
    return Place.of(row) if row is not None else None


def _candidates(conn: Connection, place: Place | None) -> list[ContactView]:
    """The contacts that could match ``place`` (networks are few: all are read and tested)."""
    if place is None:
        return []
    ors: list[Any] = [Contact.scope == "network"]
    if place.host:
        parts = place.host.split(".")
        ors.append(
            and_(
                Contact.scope == "domain", Contact.match.in_([".".join(parts[i:]) for i in range(len(parts))])
            )
        )
    if place.asn is not None:
        ors.append(and_(Contact.scope == "asn", Contact.match == str(place.asn)))
    names = [_name(n) for n in (place.provider, place.cdn, place.network_owner) if n.strip()]
    if names:
        ors.append(and_(Contact.scope == "provider", Contact.match.in_(names)))
    return [contact_view(r) for r in conn.execute(select(Contact).where(or_(*ors)))]


def _rdap_contact(conn: Connection, route: Route, now: datetime) -> int:
    """The contact made from an RDAP abuse address (or the one a senior or worker made meanwhile)."""
    assert route.rdap is not None
    scope, match, name, email = route.rdap
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    values = {
        "scope": scope,
        "match": match,
        "name": name[:200],
        "channel": "email",
        "address": email,
        "language": "",
        "note": "from RDAP",
        # behind a CDN the RDAP address is the CDN's: mark it so, its notices ask for the origin
        "cdn": route.ask_origin,
        "created_at": now,
        "updated_at": now,
        "updated_by": "system",
    }
    made = conn.execute(
        dialect.insert(Contact)
        .on_conflict_do_nothing(index_elements=["scope", "match"])
        .values(values)
        .returning(Contact.id)
    ).first()
    if made is not None:
        details = {k: v for k, v in values.items() if k not in ("created_at", "updated_at")}
        record(conn, AuditEvent("system", "contact.auto", f"contact:{made[0]}", details, at=now))
        return int(made[0])
    return int(
        conn.execute(select(Contact.id).where(Contact.scope == scope, Contact.match == match)).scalar_one()
    )


def waiting_ids(services: ActNeeds, state: TakedownState, batch: int = BATCH) -> list[int]:
    """The first ``batch`` takedowns in ``state``, oldest first (what a tick works through; each
    move is still conditional on the state, so a racing worker's pick changes nothing)."""
    with services.engine.connect() as conn:
        return [
            int(i)
            for i in conn.execute(
                select(Takedown.id).where(Takedown.state == state.value).order_by(Takedown.id).limit(BATCH)
            ).scalars()
        ]


def tick_route(services: ActNeeds) -> int:
    """Takedowns in ``to_route``: decide their route from the location, contacts and rules."""
    ids = waiting_ids(services, TakedownState.TO_ROUTE)
    if not ids:
        return 0
    with services.engine.begin() as conn:
        ensure_default_rules(conn, services)
    routed = 0
    for tid in ids:
        try:
            routed += route_one(services, tid)
        except Exception:  # one bad row must not hold up the others; it is tried again next pass
            log.exception("routing takedown %s failed", tid)
    return routed


def route_one(services: ActNeeds, takedown_id: int) -> bool:
    """Route one takedown in ``to_route``; False when another worker did it first."""
    now = services.clock.now()
    with services.engine.connect() as conn, conn.begin() as tx:
        td = conn.execute(
            select(Takedown).where(Takedown.id == takedown_id, Takedown.state == TakedownState.TO_ROUTE.value)
        ).first()
        if td is None:
            return False
        place = current_location(conn, td.item_id)
        rules = [rule_view(r) for r in conn.execute(select(RoutingRule))]
        labels = json.loads(td.labels or "{}")
        route = decide(place, _candidates(conn, place), rules, labels, services.settings.act.home_country)
        contact_id = route.contact_id
        if route.rdap is not None:
            contact_id = _rdap_contact(conn, route, now)
            route = Route(**{**route.__dict__, "contact_id": contact_id, "rdap": None})
        police = td.police
        police_new = route.police and not police
        if police_new:
            police = "due"
        won = conn.execute(
            update(Takedown)
            .where(Takedown.id == takedown_id, Takedown.state == TakedownState.TO_ROUTE.value)
            .values(
                state=route.state,
                route=route.to_json(),
                contact_id=contact_id,
                location_id=place.id if place else None,
                forward_to=route.forward_to,
                police=police,
                updated_at=now,
            )
        ).rowcount
        if won != 1:
            tx.rollback()
            return False
        detail = {
            "takedown_id": takedown_id,
            "action": route.action,
            "state": route.state,
            "contact_id": contact_id,
        }
        timeline.record(conn, EventKind.ROUTED, at=now, item_id=td.item_id, detail=detail)
        if police_new:
            timeline.record(
                conn,
                EventKind.POLICE_DUE,
                at=now,
                item_id=td.item_id,
                detail={"takedown_id": takedown_id, "rule_id": route.rule_id},
            )
        if route.state == TakedownState.TO_FORWARD:
            timeline.record(
                conn,
                EventKind.FORWARD_PENDING,
                at=now,
                item_id=td.item_id,
                detail={"takedown_id": takedown_id, "partner": route.forward_to},
            )
        elif route.state == TakedownState.CLOSED:
            timeline.record(
                conn,
                EventKind.CLOSED,
                at=now,
                item_id=td.item_id,
                detail={"takedown_id": takedown_id, "why": "rule_none"},
            )
    return True


# -- for seniors and the item page ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TakedownView:
    id: int
    item_id: int
    url: str
    host: str
    state: str
    decided_by: str
    labels: dict[str, Any]
    route: dict[str, Any]
    contact: ContactView | None
    forward_to: str
    police: str
    reported_at: datetime
    updated_at: datetime


def _view(conn: Connection, row: Any) -> TakedownView:
    contact = None
    if row.contact_id is not None:
        c = conn.execute(select(Contact).where(Contact.id == row.contact_id)).first()
        contact = contact_view(c) if c is not None else None
    return TakedownView(
        id=int(row.id),
        item_id=int(row.item_id),
        url=row.url,
        host=row.host,
        state=row.state,
        decided_by=row.decided_by,
        labels=json.loads(row.labels or "{}"),
        route=json.loads(row.route or "{}"),
        contact=contact,
        forward_to=row.forward_to,
        police=row.police,
        reported_at=row.reported_at,
        updated_at=row.updated_at,
    )


def _select() -> Any:
    return select(Takedown, Item.url, Item.host).join(Item, Item.id == Takedown.item_id)


def takedown_of(services: ActNeeds, item_id: int) -> TakedownView | None:
    with services.engine.connect() as conn:
        row = conn.execute(_select().where(Takedown.item_id == item_id)).first()
        return _view(conn, row) if row is not None else None


def timeline_of(services: ActNeeds, item_id: int) -> list[timeline.Event]:
    """The item's action timeline, with the lines of every notice its takedown was in."""
    with services.engine.connect() as conn:
        notice_ids = [
            int(n)
            for n in conn.execute(
                select(NoticeItem.notice_id)
                .join(Takedown, Takedown.id == NoticeItem.takedown_id)
                .where(Takedown.item_id == item_id)
            ).scalars()
        ]
    return timeline.for_item(services.engine, item_id, notice_ids)


ATTENTION = (TakedownState.NO_CONTACT.value, TakedownState.HELD.value)


def attention(services: ActNeeds, *, limit: int = 100, offset: int = 0) -> tuple[list[TakedownView], int]:
    """Takedowns a senior must act on (``no_contact``, ``held``), oldest first; and how many."""
    where = Takedown.state.in_(ATTENTION)
    with services.engine.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(Takedown).where(where)).scalar_one())
        rows = conn.execute(
            _select().where(where).order_by(Takedown.updated_at, Takedown.id).limit(limit).offset(offset)
        ).all()
        return [_view(conn, r) for r in rows], total


class RerouteError(ValueError):
    """The takedown is not waiting for a senior (routed again or moved on meanwhile)."""


def reroute(services: ActNeeds, takedown_id: int, actor: str) -> None:
    """A senior asks for a takedown in ``no_contact`` or ``held`` to be routed again (after adding
    or correcting a contact or rule): back to ``to_route``, on the timeline and in the audit log."""
    now = services.clock.now()
    with services.engine.begin() as conn:
        row = conn.execute(select(Takedown.item_id, Takedown.state).where(Takedown.id == takedown_id)).first()
        if row is None:
            raise LookupError(f"no takedown {takedown_id}")
        moved = conn.execute(
            update(Takedown)
            .where(Takedown.id == takedown_id, Takedown.state.in_(ATTENTION))
            .values(state=TakedownState.TO_ROUTE.value, updated_at=now)
        ).rowcount
        if moved != 1:
            raise RerouteError(f"takedown {takedown_id} is {row.state}, not waiting for a senior")
        timeline.record(
            conn,
            EventKind.ROUTED,
            at=now,
            item_id=row.item_id,
            actor=actor,
            detail={"takedown_id": takedown_id, "again": True, "was": row.state},
        )
        record(
            conn,
            AuditEvent(
                actor,
                "takedown.reroute",
                f"item:{row.item_id}",
                {"takedown": takedown_id, "was": row.state},
                at=now,
            ),
        )
