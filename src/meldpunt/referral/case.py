"""A police referral's facts as plain data: what a package says, gathered by ``act.referrals``.

A :class:`Case` is one or more items a senior refers together. Each item carries its URL (and the
page after redirects), its media with their hashes and sizes, where it was hosted (IP, ASN,
country, provider, abuse contact), its classification per scheme with *who decided and when*
(police need to know who can testify), the report times (never the reporter: reports are
anonymous, and neither the description nor a contact address is ever copied here), whether it
was urgent, its action timeline and the references under which it was noticed or forwarded.

Nothing here touches a database or a file: the writers (``vics``, ``table``, ``summary``) turn a
Case into bytes and ``package`` lays them out and signs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Decision:
    """One opinion on an item, as triage recorded it."""

    #: the scheme values (``{"status": "baseline", "us": "A1"}``), flags and series left out
    values: Mapping[str, str]
    #: the staff member's user name
    user: str
    #: their role in the workspace when the case was gathered (analyst, senior, ...)
    staff_role: str
    #: first | second | resolution | correction | hash_list
    opinion: str
    at: datetime
    flags: tuple[str, ...] = ()
    series: str = ""


@dataclass(frozen=True)
class Hosting:
    """Where the item's URL was hosted at its latest locate run (a server's facts, never a person's)."""

    host: str = ""
    ip: str = ""
    asn: int | None = None
    network_owner: str = ""
    country: str = ""
    provider: str = ""
    abuse_contact: str = ""
    registrar: str = ""
    cdn: str = ""
    located_at: datetime | None = None


@dataclass(frozen=True)
class Medium:
    """A medium found on the item: its hashes, size and what matching said."""

    id: int
    url: str
    kind: str = ""
    size: int = 0
    md5: str = ""
    sha1: str = ""
    sha256: str = ""
    pdq: str = ""
    #: known | ignored | new | failed
    outcome: str = ""
    #: the hash lists it matched (bank names)
    banks: tuple[str, ...] = ()
    #: its path inside the package when its bytes were exported (``media/...``); "" otherwise
    file: str = ""


@dataclass(frozen=True)
class Event:
    """A line of the item's action timeline."""

    at: datetime
    kind: str
    actor: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CaseItem:
    item_id: int
    url: str
    final_url: str = ""
    host: str = ""
    server_ip: str = ""
    urgent: bool = False
    #: when it was first reported, and every report of the same URL (times and sources only)
    reported_at: datetime | None = None
    reports: tuple[tuple[datetime, str], ...] = ()
    #: the final classification's scheme values (``{"status": "baseline", "us": "A1"}``)
    classification: Mapping[str, str] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    classified_at: datetime | None = None
    #: every opinion, oldest first (the final one is the last that counts)
    decisions: tuple[Decision, ...] = ()
    #: analyst | hash_list: what made it actionable
    decided_by: str = ""
    hosting: Hosting = field(default_factory=Hosting)
    media: tuple[Medium, ...] = ()
    timeline: tuple[Event, ...] = ()
    #: the takedown's state and removal, if it has one
    takedown_state: str = ""
    removed_at: datetime | None = None
    #: notice references, partner forwards, ... (``{"notice": ["MP-7Q3K-9XH2"]}``)
    references: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    """What one referral package is about."""

    #: the package's reference, on every page and in every file (``RF-20261201-7Q3K9X``)
    reference: str
    created: datetime
    #: the hotline that made it (``partner.instance_name`` or the web section's hotline name)
    instance: str
    #: who made it (a user name, or ``cli:<user>``)
    created_by: str
    items: tuple[CaseItem, ...]
    with_media: bool = False

    @property
    def urgent(self) -> bool:
        return any(i.urgent for i in self.items)

    @property
    def media_count(self) -> int:
        return sum(len(i.media) for i in self.items)
