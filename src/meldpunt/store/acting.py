"""Tables of locate-and-act (#10): where an item is hosted, the abuse contacts and routing rules
seniors keep, one takedown per acted-on item, notices batched per contact, the outbox of messages
(e-mail, webhooks) with their deliveries, the action timeline, and urgent alerts.

Who writes what (each step owns its columns; see ``meldpunt.act``):
- ``locations``: the locate step, one row per run (the newest is the item's current location);
- ``contacts``, ``routing_rules``: seniors, in the workspace (audited);
- ``takedowns``: created when an item's final decision is illegal; routed, noticed, re-checked;
- ``notices`` / ``notice_items``: batching, sending, reminders, escalation, providers' answers;
- ``outbox``: every message that leaves meldpunt, sent by a durable ``send`` job, exactly one row
  per (purpose, reference, round) so a crash never sends a recorded message twice;
- ``action_events``: what happened to an item or notice, when and by whom (the timeline);
- ``alerts``: urgent cases until a person acknowledges them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from meldpunt.store.models import Base, BigId
from meldpunt.store.reports import Item


class Location(Base):
    """Where an item's URL was hosted at one locate run: every fact with its source and age
    (``facts``: ``{"country": {"source": "geoip2fast", "as_of": "2026-11-01"}, ...}``)."""

    __tablename__ = "locations"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    located_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    host: Mapped[str] = mapped_column(String(255), default="")
    #: JSON list of every address the host resolved to
    addresses: Mapped[str] = mapped_column(Text, default="[]")
    #: the address the fetcher connected to (else the first resolved)
    ip: Mapped[str] = mapped_column(String(64), default="")
    prefix: Mapped[str] = mapped_column(String(64), default="")
    asn: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    network_owner: Mapped[str] = mapped_column(Text, default="")
    #: ISO 3166-1 alpha-2, upper case; "" when unknown
    country: Mapped[str] = mapped_column(String(2), default="")
    provider: Mapped[str] = mapped_column(Text, default="")
    abuse_email: Mapped[str] = mapped_column(Text, default="")
    registrar: Mapped[str] = mapped_column(Text, default="")
    registrar_abuse: Mapped[str] = mapped_column(Text, default="")
    #: the CDN's name when the address belongs to one ("" otherwise)
    cdn: Mapped[str] = mapped_column(String(64), default="")
    facts: Mapped[str] = mapped_column(Text, default="{}")
    error: Mapped[str] = mapped_column(Text, default="")


class Contact(Base):
    """An abuse contact and its rules, for a provider, an ASN, a network (CIDR) or a domain."""

    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: provider | asn | network | domain
    scope: Mapped[str] = mapped_column(String(16))
    #: the provider's name (lower case), the ASN's digits, a CIDR, or a domain (matches its subdomains)
    match: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(Text, default="")
    #: email | webhook | none
    channel: Mapped[str] = mapped_column(String(16), default="email")
    #: an e-mail address, or the URL of the provider's API/webhook
    address: Mapped[str] = mapped_column(Text, default="")
    #: the language notices to it are written in ("" : the hotline's default)
    language: Mapped[str] = mapped_column(String(8), default="")
    #: whether it accepts notices about this material at all
    accepts: Mapped[bool] = mapped_column(Boolean, default=True)
    #: never contact (e.g. known to tip off): such items go to a senior / the police instead
    do_not_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    #: a CDN: notices ask it to name the origin host
    cdn: Mapped[bool] = mapped_column(Boolean, default=False)
    #: deliveries bounced or were refused: check the address
    suspect: Mapped[bool] = mapped_column(Boolean, default=False)
    suspect_reason: Mapped[str] = mapped_column(Text, default="")
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(200), default="")
    __table_args__ = (UniqueConstraint("scope", "match", name="uq_contacts_scope_match"),)


class RoutingRule(Base):
    """What to do with illegal content hosted in a country: the most specific rule wins (a country
    code before ``*``), then the lowest ``position``."""

    __tablename__ = "routing_rules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: ISO country code, or "*" for anywhere else
    country: Mapped[str] = mapped_column(String(8))
    #: notice | forward | none
    action: Mapped[str] = mapped_column(String(16))
    #: for forward: the partner hotline's name
    partner: Mapped[str] = mapped_column(Text, default="")
    #: also refer to the police (for the categories in ``police_categories``; [] : any illegal one)
    police: Mapped[bool] = mapped_column(Boolean, default=False)
    police_categories: Mapped[str] = mapped_column(Text, default="[]")
    position: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(200), default="")


class Takedown(Base):
    """One acted-on item (a URL found illegal): its route, notices, re-checks and removal."""

    __tablename__ = "takedowns"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), unique=True)
    #: domain.acting.TakedownState
    state: Mapped[str] = mapped_column(String(20), index=True)
    #: analyst | hash_list
    decided_by: Mapped[str] = mapped_column(String(16), default="analyst")
    #: JSON: the labels that made it actionable (category, baseline, scheme ...)
    labels: Mapped[str] = mapped_column(Text, default="{}")
    location_id: Mapped[int | None] = mapped_column(
        ForeignKey("locations.id", ondelete="SET NULL"), nullable=True
    )
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True, index=True
    )
    #: JSON: the routing decision and its explanation (``domain.acting.Route``)
    route: Mapped[str] = mapped_column(Text, default="{}")
    #: the partner hotline it is to be forwarded to ("" : none)
    forward_to: Mapped[str] = mapped_column(Text, default="")
    #: "" | due | referred
    police: Mapped[str] = mapped_column(String(16), default="")
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    first_notice_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    removal_reason: Mapped[str] = mapped_column(Text, default="")
    #: time to removal, to the minute, from the first notice and from the report
    minutes_from_notice: Mapped[int | None] = mapped_column(Integer, nullable=True)
    minutes_from_report: Mapped[int | None] = mapped_column(Integer, nullable=True)
    next_check_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    last_check_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: the last re-check's result in words ("online", "404", "dns_gone", "media_gone", ...)
    last_check: Mapped[str] = mapped_column(Text, default="")
    checks: Mapped[int] = mapped_column(Integer, default=0)
    #: consecutive misses (the item counts as removed at ``recheck.removal_misses``)
    misses: Mapped[int] = mapped_column(Integer, default=0)
    moves: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: re-checks (#10 part "recheck"): the first miss of the current streak (``removed_at`` when
    #: the streak reaches ``recheck.removal_misses``)
    first_miss_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: consecutive re-checks that ended in a transient error (timeout, 5xx, refused): not misses
    check_errors: Mapped[int] = mapped_column(Integer, default=0)
    #: the claim token of the re-check job holding the takedown: the tick raises it when it hands
    #: the takedown to a job, the job's effects are conditional on it and raise it again
    check_round: Mapped[int] = mapped_column(Integer, default=0)
    #: the statistics page's time to removal: removals in a period (migration 0029)
    __table_args__ = (Index("ix_takedowns_removed_at", "state", "removed_at"),)


class Notice(Base):
    """A notice to one abuse contact: the items gathered for it within the batching window, sent
    once and then reminded every ``notice.renotice_hours`` while any of them is online."""

    __tablename__ = "notices"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: unique, quoted in every message and reply (e.g. ``MP-7Q3K-9XH2``)
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True, index=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8), default="en")
    #: domain.acting.NoticeState
    state: Mapped[str] = mapped_column(String(16), index=True)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: the end of the batching window: sent at (or after) this time
    send_after: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: messages sent so far: 1 the notice, 2 and more its reminders
    rounds: Mapped[int] = mapped_column(Integer, default=0)
    next_notice_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, index=True
    )
    #: 0 none, 1 a senior's overdue queue, 2 the police
    escalation: Mapped[int] = mapped_column(Integer, default=0)
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: part of what the provider link's token signs: changing it revokes every link given out
    token_nonce: Mapped[str] = mapped_column(String(32), default="")
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: why a senior closed it by hand ("" : closed because everything was removed)
    closed_reason: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (
        # one collecting notice per contact, however many workers batch at once (#10 notices)
        Index(
            "ux_notices_collecting",
            "contact_id",
            unique=True,
            postgresql_where=text("state = 'collecting'"),
            sqlite_where=text("state = 'collecting'"),
        ),
    )


class NoticeItem(Base):
    __tablename__ = "notice_items"
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"), primary_key=True)
    takedown_id: Mapped[int] = mapped_column(
        ForeignKey("takedowns.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: "" | removed | disputed (the provider's answer)
    answer: Mapped[str] = mapped_column(String(16), default="")
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    answer_note: Mapped[str] = mapped_column(Text, default="")


class OutboxMessage(Base):
    """A message to leave meldpunt (e-mail or webhook), written in the transaction that decides it
    and sent by a durable ``send`` job; ``dedupe`` makes one row per (purpose, reference, round)."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: notice | alert | forward
    purpose: Mapped[str] = mapped_column(String(16))
    ref_id: Mapped[int] = mapped_column(BigInteger, index=True)
    round: Mapped[int] = mapped_column(Integer, default=1)
    dedupe: Mapped[str] = mapped_column(String(160), unique=True)
    #: email | webhook
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    #: JSON: extra headers, or the webhook's JSON body
    headers: Mapped[str] = mapped_column(Text, default="{}")
    #: domain.acting.DeliveryState
    state: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ActionEvent(Base):
    """One line of an item's (or notice's) action timeline."""

    __tablename__ = "action_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    item_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    notice_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    alert_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: domain.acting.EventKind
    kind: Mapped[str] = mapped_column(String(32))
    #: "system", "provider", "partner", or a staff member's user name
    actor: Mapped[str] = mapped_column(String(200), default="system")
    detail: Mapped[str] = mapped_column(Text, default="{}")


class Alert(Base):
    """An urgent case: raised by an urgent report or a senior, open until a person acknowledges it;
    escalates to the next on-call person every ``alert.ack_minutes`` without one."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: unique: one alert per item, however many workers raise it at once (migration 0019)
    item_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True, unique=True)
    report_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: "report" or the senior's user name
    raised_by: Mapped[str] = mapped_column(String(200), default="report")
    reason: Mapped[str] = mapped_column(Text, default="")
    #: open | acknowledged
    state: Mapped[str] = mapped_column(String(16), index=True)
    #: index into the on-call list of the person alerted last
    level: Mapped[int] = mapped_column(Integer, default=0)
    next_escalation_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, index=True
    )
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    acknowledged_by: Mapped[str] = mapped_column(String(200), default="")
    ack_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)


#: the alerts tick looks every few seconds for urgent items changed lately that have no alert:
#: a partial index (urgent items are few) keeps that from reading the whole items table
#: (migration 0019)
URGENT_ITEMS_INDEX = Index(
    "ix_items_urgent_updated",
    Item.updated_at,
    postgresql_where=Item.urgent.is_(True),
    sqlite_where=Item.urgent.is_(True),
)


class RdapCache(Base):
    """RDAP answers kept for ``locate.rdap_cache_days``: a network or domain is asked once."""

    __tablename__ = "rdap_cache"
    #: ip | domain | asn
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ok: Mapped[bool] = mapped_column(Boolean, default=True)
    #: the parsed facts (JSON), or the error
    data: Mapped[str] = mapped_column(Text, default="{}")
