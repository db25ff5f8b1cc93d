"""Abuse contacts and routing rules as data, edited by seniors in the workspace, every change
audited (#10 part "routing").

A contact says who takes notices for a provider (by name), an ASN, a network (CIDR) or a domain
(and its subdomains), by which channel (e-mail, a webhook, or none: a senior sends by hand), in
which language, and whether meldpunt may contact it at all (``do_not_contact``: e.g. a provider
known to tip off its customers; ``accepts``: it refuses notices about this material). A CDN contact
is asked, in the notice, to name the origin host.

A routing rule says what is done with content hosted in a country (``*``: anywhere else): a
notice to the provider, forwarding to a partner hotline, or nothing; optionally a police referral
for some categories. The rules are seeded on first use (the hotline's country: notice + police;
``*``: notice), so an empty table never means "do nothing" — a hotline that wants that says
``*`` -> none.

Everything a senior types is validated here (one :class:`ContactError` with every problem, as
:class:`~meldpunt.domain.problems.Problem` the pages translate), normalised (lower-case domains and
provider names, canonical CIDRs, bare ASN digits), and written with its audit entry in the same
transaction.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Connection, delete, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from meldpunt.act.context import ActNeeds
from meldpunt.audit import AuditEvent, record
from meldpunt.domain.acting import RouteAction
from meldpunt.domain.problems import Problem
from meldpunt.store.acting import Contact, RoutingRule

SCOPES = ("domain", "network", "asn", "provider")
CHANNELS = ("email", "webhook", "none")
ACTIONS = tuple(a.value for a in RouteAction)
#: the PostgreSQL advisory lock seeding the default rules takes (the bytes "mp-rules")
RULES_LOCK_ID = int.from_bytes(b"mp-rules", "big")
MAX_NAME, MAX_NOTE, MAX_ADDRESS, MAX_MATCH = 200, 2000, 500, 255
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")  # "_": DNS allows it, hosts use it
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CATEGORY = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_TRUE = {"1", "true", "yes", "on", "y"}


class ContactError(ValueError):
    """Input a contact or rule cannot be saved with: every problem at once."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


class NotFound(LookupError):
    """No contact or rule with that id (deleted meanwhile, or never there)."""


@dataclass(frozen=True)
class ContactView:
    id: int
    scope: str
    match: str
    name: str
    channel: str
    address: str
    language: str
    accepts: bool
    do_not_contact: bool
    cdn: bool
    suspect: bool
    suspect_reason: str
    note: str
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True)
class RuleView:
    id: int
    country: str
    action: str
    partner: str
    police: bool
    police_categories: tuple[str, ...]
    position: int
    note: str
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True)
class ContactData:
    """A contact as validated input (what add/edit write)."""

    scope: str
    match: str
    name: str = ""
    channel: str = "email"
    address: str = ""
    language: str = ""
    accepts: bool = True
    do_not_contact: bool = False
    cdn: bool = False
    note: str = ""


@dataclass(frozen=True)
class RuleData:
    country: str
    action: str
    partner: str = ""
    police: bool = False
    police_categories: tuple[str, ...] = field(default_factory=tuple)
    position: int = 0
    note: str = ""


# -- validation ------------------------------------------------------------------------------------


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key, "")
    return value.strip() if isinstance(value, str) else ("" if value is None else str(value).strip())


def _flag(data: Mapping[str, Any], key: str, default: bool) -> bool:
    if key not in data:
        return default
    value = data[key]
    return value if isinstance(value, bool) else str(value).strip().lower() in _TRUE


def normal_domain(value: str) -> str:
    """A domain as stored: lower case, IDNA (xn--) form, no leading ``*.`` or trailing dot.
    ValueError when it is not a domain name."""
    d = value.strip().lower().removeprefix("*.").rstrip(".")
    if "://" in d or "/" in d or not d:
        raise ValueError("not a domain name")
    try:
        d = d.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("not a domain name") from None
    labels = d.split(".")
    if len(d) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError("not a domain name")
    return d


def normal_asn(value: str) -> str:
    """An ASN as stored: its digits (``AS13335`` and ``13335`` alike). ValueError when not one."""
    s = value.strip().upper().removeprefix("AS")
    if not (s.isascii() and s.isdigit()) or not 0 < int(s) < 2**32:
        raise ValueError("not an AS number")
    return str(int(s))


def normal_match(scope: str, value: str) -> str:
    """A contact's ``match`` in its scope's stored form; ValueError when it is not one."""
    if scope == "domain":
        return normal_domain(value)
    if scope == "asn":
        return normal_asn(value)
    if scope == "network":
        try:
            return str(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError("not a network") from None
    name = " ".join(value.split()).lower()
    if not name:
        raise ValueError("empty")
    return name


def valid_email(address: str) -> str:
    """The address normalised (domain lower case, IDNA); ValueError with the reason when invalid.
    Special-use domains (``.invalid``, ``.localhost``, ``.onion`` ...) are refused, except ``.test``
    (RFC 6761), which the demo and loopback tests give their providers."""
    try:
        return str(validate_email(address, check_deliverability=False, test_environment=True).normalized)
    except EmailNotValidError as e:
        raise ValueError(str(e)) from None


def valid_webhook(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("only http:// and https:// addresses with a host")
    if parts.username or parts.password:
        raise ValueError("no user name or password in the address (put them in the provider's settings)")
    return url


def contact_data(data: Mapping[str, Any]) -> ContactData:
    """A contact from a form or the CLI (strings; booleans as "1"/"on"/"yes"), validated and
    normalised; :class:`ContactError` lists every problem."""
    problems: list[Problem] = []
    scope = _text(data, "scope")
    match = _text(data, "match")
    if scope not in SCOPES:
        problems.append(
            Problem("scope must be one of {choices}", {"choices": ", ".join(SCOPES)}, "contact_scope")
        )
    elif not match:
        problems.append(
            Problem(
                "say what the contact is for (a domain, network, AS number or provider)", {}, "contact_match"
            )
        )
    elif len(match) > MAX_MATCH:
        problems.append(
            Problem("{field}: at most {n} characters", {"field": "match", "n": str(MAX_MATCH)}, "too_long")
        )
    else:
        try:
            match = normal_match(scope, match)
        except ValueError:
            messages = {
                "domain": "{value} is not a domain name (like example.com)",
                "network": "{value} is not a network (like 192.0.2.0/24 or 2001:db8::/32)",
                "asn": "{value} is not an AS number (like AS64496)",
                "provider": "say the provider's name",
            }
            problems.append(Problem(messages[scope], {"value": match}, "contact_match"))
    channel = _text(data, "channel") or "email"
    address = _text(data, "address")
    if channel not in CHANNELS:
        problems.append(
            Problem("channel must be one of {choices}", {"choices": ", ".join(CHANNELS)}, "contact_channel")
        )
    elif len(address) > MAX_ADDRESS:
        problems.append(
            Problem(
                "{field}: at most {n} characters", {"field": "address", "n": str(MAX_ADDRESS)}, "too_long"
            )
        )
    elif channel == "email":
        try:
            address = valid_email(address)
        except ValueError as e:
            problems.append(
                Problem(
                    "{value} is not an e-mail address: {why}",
                    {"value": address, "why": str(e)},
                    "contact_email",
                )
            )
    elif channel == "webhook":
        try:
            address = valid_webhook(address)
        except ValueError as e:
            problems.append(
                Problem(
                    "{value} is not a webhook address: {why}",
                    {"value": address, "why": str(e)},
                    "contact_webhook",
                )
            )
    language = _text(data, "language").lower()
    if language and not _LANGUAGE.match(language):
        problems.append(
            Problem(
                "{value} is not a language code (like nl, fr or en)", {"value": language}, "contact_language"
            )
        )
    name, note = _text(data, "name"), _text(data, "note")
    for key, value, limit in (("name", name, MAX_NAME), ("note", note, MAX_NOTE)):
        if len(value) > limit:
            problems.append(
                Problem("{field}: at most {n} characters", {"field": key, "n": str(limit)}, "too_long")
            )
    if problems:
        raise ContactError(problems)
    return ContactData(
        scope=scope,
        match=match,
        name=name,
        channel=channel,
        address=address if channel != "none" else "",
        language=language,
        accepts=_flag(data, "accepts", True),
        do_not_contact=_flag(data, "do_not_contact", False),
        cdn=_flag(data, "cdn", False),
        note=note,
    )


def rule_data(data: Mapping[str, Any]) -> RuleData:
    """A routing rule from a form or the CLI, validated; :class:`ContactError` lists every problem."""
    problems: list[Problem] = []
    country = _text(data, "country").upper()
    if country != "*" and not _COUNTRY.match(country):
        problems.append(
            Problem(
                "{value} is not a country code (two letters, like BE) or *",
                {"value": country},
                "rule_country",
            )
        )
    action = _text(data, "action")
    partner = _text(data, "partner")
    if action not in ACTIONS:
        problems.append(
            Problem("action must be one of {choices}", {"choices": ", ".join(ACTIONS)}, "rule_action")
        )
    elif action == RouteAction.FORWARD and not partner:
        problems.append(Problem("say which partner hotline it is forwarded to", {}, "rule_partner"))
    elif action != RouteAction.FORWARD and partner:
        problems.append(Problem("a partner hotline goes with the action forward only", {}, "rule_partner"))
    raw = data.get("police_categories", "")
    words = raw if isinstance(raw, (list, tuple)) else re.split(r"[\s,]+", str(raw or ""))
    categories = tuple(dict.fromkeys(w.strip() for w in words if w and w.strip()))
    bad = [c for c in categories if not _CATEGORY.match(c)]
    if bad:
        problems.append(Problem("not a category: {value}", {"value": ", ".join(bad)}, "rule_categories"))
    position_text = _text(data, "position") or "0"
    position = 0
    if (
        not (position_text.isascii() and position_text.lstrip("-").isdigit())
        or not -9999 <= int(position_text) <= 9999
    ):
        problems.append(Problem("position is a whole number from -9999 to 9999", {}, "rule_position"))
    else:
        position = int(position_text)
    note = _text(data, "note")
    if len(partner) > MAX_NAME or len(note) > MAX_NOTE:
        problems.append(
            Problem(
                "{field}: at most {n} characters", {"field": "partner/note", "n": str(MAX_NAME)}, "too_long"
            )
        )
    if problems:
        raise ContactError(problems)
    return RuleData(country, action, partner, _flag(data, "police", False), categories, position, note)


# -- reading ----------------------------------------------------------------------------------------


def contact_view(row: Any) -> ContactView:
    return ContactView(
        id=int(row.id),
        scope=row.scope,
        match=row.match,
        name=row.name,
        channel=row.channel,
        address=row.address,
        language=row.language,
        accepts=bool(row.accepts),
        do_not_contact=bool(row.do_not_contact),
        cdn=bool(row.cdn),
        suspect=bool(row.suspect),
        suspect_reason=row.suspect_reason,
        note=row.note,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def rule_view(row: Any) -> RuleView:
    return RuleView(
        id=int(row.id),
        country=row.country,
        action=row.action,
        partner=row.partner,
        police=bool(row.police),
        police_categories=tuple(json.loads(row.police_categories or "[]")),
        position=int(row.position),
        note=row.note,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def list_contacts(
    services: ActNeeds, *, search: str = "", scope: str = "", limit: int = 100, offset: int = 0
) -> tuple[list[ContactView], int]:
    """Contacts (domain, network, ASN, provider; then by match), searched in match, name, address
    and note; and how many match in all."""
    where = []
    if scope in SCOPES:
        where.append(Contact.scope == scope)
    s = search.strip().lower()[:200]
    if s:
        like = "%" + s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(
            or_(
                *(
                    func.lower(c).like(like, escape="\\")
                    for c in (Contact.match, Contact.name, Contact.address, Contact.note)
                )
            )
        )
    order = [Contact.scope, Contact.match]
    with services.engine.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(Contact).where(*where)).scalar_one())
        rows = conn.execute(select(Contact).where(*where).order_by(*order).limit(limit).offset(offset))
        return [contact_view(r) for r in rows], total


def get_contact(services: ActNeeds, contact_id: int) -> ContactView:
    with services.engine.connect() as conn:
        row = conn.execute(select(Contact).where(Contact.id == contact_id)).first()
    if row is None:
        raise NotFound(f"no contact {contact_id}")
    return contact_view(row)


def list_rules(services: ActNeeds) -> list[RuleView]:
    """The routing rules, seeded on first use: countries first (A-Z), ``*`` last, by position."""
    with services.engine.begin() as conn:
        ensure_default_rules(conn, services)
        rows = conn.execute(select(RoutingRule))
        return sorted((rule_view(r) for r in rows), key=rule_order)


def rule_order(r: RuleView) -> tuple[bool, str, int, int]:
    return (r.country == "*", r.country, r.position, r.id)


def get_rule(services: ActNeeds, rule_id: int) -> RuleView:
    with services.engine.connect() as conn:
        row = conn.execute(select(RoutingRule).where(RoutingRule.id == rule_id)).first()
    if row is None:
        raise NotFound(f"no rule {rule_id}")
    return rule_view(row)


def ensure_default_rules(conn: Connection, services: ActNeeds) -> bool:
    """Seed the default rules when there are none (the hotline's country: notice + police
    referral; ``*``: notice), in the caller's transaction; True when it did. Serialised so two
    workers seeding at once write one set (PostgreSQL: an advisory lock; SQLite: the write lock
    a first write takes)."""
    if conn.execute(select(RoutingRule.id).limit(1)).first() is not None:
        return False
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": RULES_LOCK_ID})
    else:  # takes SQLite's write lock: the read below sees every committed seeding
        conn.execute(update(RoutingRule).where(RoutingRule.id < 0).values(position=RoutingRule.position))
    if conn.execute(select(RoutingRule.id).limit(1)).first() is not None:
        return False
    now = services.clock.now()
    home = services.settings.act.home_country.strip().upper()
    defaults = [
        RuleData(home, RouteAction.NOTICE.value, police=True, note="default: hosted in our country"),
        RuleData("*", RouteAction.NOTICE.value, note="default: hosted elsewhere"),
    ]
    for r in defaults:
        if r.country == "*" or _COUNTRY.match(r.country):
            conn.execute(insert(RoutingRule).values(_rule_row(r, now, "system")))
    record(conn, AuditEvent("system", "rule.defaults", "", {"home_country": home}, at=now))
    return True


# -- changing ---------------------------------------------------------------------------------------


def _contact_row(d: ContactData) -> dict[str, Any]:
    return asdict(d)


def _rule_row(d: RuleData, now: datetime, actor: str) -> dict[str, Any]:
    row = asdict(d)
    row["police_categories"] = json.dumps(list(d.police_categories))
    return {**row, "updated_at": now, "updated_by": actor[:200]}


def _duplicate(d: ContactData) -> ContactError:
    return ContactError(
        [
            Problem(
                "there is a contact for {scope} {match} already: edit that one",
                {"scope": d.scope, "match": d.match},
                "contact_duplicate",
            )
        ]
    )


def add_contact(services: ActNeeds, data: Mapping[str, Any] | ContactData, actor: str) -> ContactView:
    d = data if isinstance(data, ContactData) else contact_data(data)
    now = services.clock.now()
    try:
        with services.engine.begin() as conn:
            cid = conn.execute(
                insert(Contact)
                .values(**_contact_row(d), created_at=now, updated_at=now, updated_by=actor[:200])
                .returning(Contact.id)
            ).scalar_one()
            record(conn, AuditEvent(actor, "contact.add", f"contact:{cid}", _contact_row(d), at=now))
    except IntegrityError:
        raise _duplicate(d) from None
    return get_contact(services, int(cid))


def edit_contact(
    services: ActNeeds, contact_id: int, data: Mapping[str, Any] | ContactData, actor: str
) -> ContactView:
    """Replace a contact's fields (the audit entry keeps what changed, before and after). An edit
    clears ``suspect``: a senior who corrected the address has looked at it."""
    d = data if isinstance(data, ContactData) else contact_data(data)
    now = services.clock.now()
    try:
        with services.engine.begin() as conn:
            old = conn.execute(select(Contact).where(Contact.id == contact_id)).first()
            if old is None:
                raise NotFound(f"no contact {contact_id}")
            new = _contact_row(d)
            changed = {k: [getattr(old, k), v] for k, v in new.items() if getattr(old, k) != v}
            conn.execute(
                update(Contact)
                .where(Contact.id == contact_id)
                .values(**new, suspect=False, suspect_reason="", updated_at=now, updated_by=actor[:200])
            )
            record(
                conn, AuditEvent(actor, "contact.edit", f"contact:{contact_id}", {"changed": changed}, at=now)
            )
    except IntegrityError:
        raise _duplicate(d) from None
    return get_contact(services, contact_id)


def delete_contact(services: ActNeeds, contact_id: int, actor: str) -> None:
    """Delete a contact (takedowns routed to it keep their route; their ``contact_id`` is cleared
    by the foreign key)."""
    now = services.clock.now()
    with services.engine.begin() as conn:
        old = conn.execute(select(Contact).where(Contact.id == contact_id)).first()
        if old is None:
            raise NotFound(f"no contact {contact_id}")
        conn.execute(delete(Contact).where(Contact.id == contact_id))
        gone = {k: getattr(old, k) for k in ContactData.__dataclass_fields__}
        record(conn, AuditEvent(actor, "contact.delete", f"contact:{contact_id}", gone, at=now))


def add_rule(services: ActNeeds, data: Mapping[str, Any] | RuleData, actor: str) -> RuleView:
    d = data if isinstance(data, RuleData) else rule_data(data)
    now = services.clock.now()
    with services.engine.begin() as conn:
        ensure_default_rules(conn, services)
        rid = conn.execute(
            insert(RoutingRule).values(_rule_row(d, now, actor)).returning(RoutingRule.id)
        ).scalar_one()
        record(conn, AuditEvent(actor, "rule.add", f"rule:{rid}", _audit_rule(d), at=now))
    return get_rule(services, int(rid))


def edit_rule(services: ActNeeds, rule_id: int, data: Mapping[str, Any] | RuleData, actor: str) -> RuleView:
    d = data if isinstance(data, RuleData) else rule_data(data)
    now = services.clock.now()
    with services.engine.begin() as conn:
        old = conn.execute(select(RoutingRule).where(RoutingRule.id == rule_id)).first()
        if old is None:
            raise NotFound(f"no rule {rule_id}")
        before = _audit_rule(rule_view(old))
        after = _audit_rule(d)
        changed = {k: [before[k], v] for k, v in after.items() if before[k] != v}
        conn.execute(update(RoutingRule).where(RoutingRule.id == rule_id).values(_rule_row(d, now, actor)))
        record(conn, AuditEvent(actor, "rule.edit", f"rule:{rule_id}", {"changed": changed}, at=now))
    return get_rule(services, rule_id)


def delete_rule(services: ActNeeds, rule_id: int, actor: str) -> None:
    now = services.clock.now()
    with services.engine.begin() as conn:
        old = conn.execute(select(RoutingRule).where(RoutingRule.id == rule_id)).first()
        if old is None:
            raise NotFound(f"no rule {rule_id}")
        conn.execute(delete(RoutingRule).where(RoutingRule.id == rule_id))
        record(conn, AuditEvent(actor, "rule.delete", f"rule:{rule_id}", _audit_rule(rule_view(old)), at=now))


def _audit_rule(r: RuleData | RuleView) -> dict[str, Any]:
    return {
        "country": r.country,
        "action": r.action,
        "partner": r.partner,
        "police": r.police,
        "police_categories": list(r.police_categories),
        "position": r.position,
        "note": r.note,
    }


def seed_known_contacts(services: ActNeeds, actor: str = "system") -> int:
    """Add the known CDN contacts shipped with meldpunt (:data:`KNOWN_CDNS`) that are not there
    yet (a senior's own contact for the same match is left alone); the number added."""
    added = 0
    for values in KNOWN_CDNS:
        d = contact_data(values)
        now = services.clock.now()
        try:
            with services.engine.begin() as conn:
                cid = conn.execute(
                    insert(Contact)
                    .values(**_contact_row(d), created_at=now, updated_at=now, updated_by=actor[:200])
                    .returning(Contact.id)
                ).scalar_one()
                record(conn, AuditEvent(actor, "contact.add", f"contact:{cid}", _contact_row(d), at=now))
            added += 1
        except IntegrityError:
            continue
    return added


#: CDNs whose abuse channel is public and stable, matched by provider name (what the locate step
#: writes in ``locations.cdn``/``provider``) and by their AS numbers. Cloudflare takes CSAM
#: reports through its abuse form (https://abuse.cloudflare.com) and by mail at abuse@cloudflare.com;
#: it answers by naming the hosting provider, which is what ``ask_origin`` asks for.
KNOWN_CDNS: tuple[dict[str, Any], ...] = (
    {
        "scope": "provider",
        "match": "cloudflare",
        "name": "Cloudflare",
        "channel": "email",
        "address": "abuse@cloudflare.com",
        "language": "en",
        "cdn": True,
        "note": "shipped with meldpunt; also https://abuse.cloudflare.com (CSAM form)",
    },
    {
        "scope": "asn",
        "match": "13335",
        "name": "Cloudflare",
        "channel": "email",
        "address": "abuse@cloudflare.com",
        "language": "en",
        "cdn": True,
        "note": "shipped with meldpunt; also https://abuse.cloudflare.com (CSAM form)",
    },
)
