"""The item page's "Hosting" panel: where the item's URL is hosted (its newest location), each
fact with where it came from and how old that is ("geoip2fast, data of 2024-06-18", "RDAP
ripe.net, 2 hours ago"). Shown to those who may see actions (``actions.view``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from babel.dates import format_timedelta
from fastapi import Request

from meldpunt.accounts import CurrentUser, allowed
from meldpunt.act.locating import current_location
from meldpunt.locate import FACT_NAMES, Location
from meldpunt.web.context import ctx, staff_language

#: facts the panel shows, in order (the address the fetcher connected to is in "addresses")
SHOWN = tuple(n for n in FACT_NAMES if n != "ip")


@dataclass(frozen=True)
class FactLine:
    name: str
    #: the value as text ("" when unknown)
    value: str
    #: why it is unknown ("" when known)
    unknown: str
    #: "geoip2fast", "rdap ripe.net", "dns", "fetcher", "cdn list", "address", "geo"
    source: str
    #: a date ("2024-06-18": the data's) or "" when ``age`` says it
    data_of: str
    #: "2 hours" (how long ago it was asked), or ""
    age: str
    #: how a CDN was recognised, the domain a registrar is for ...
    note: str = ""


@dataclass(frozen=True)
class HostingPanel:
    located_at: datetime | None
    host: str
    ip: str
    lines: list[FactLine]
    error: str


def _value(name: str, value: Any) -> str:
    if value is None or value == "" or value == []:
        return ""
    if name == "addresses" and isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if name == "asn":
        return f"AS{value}"
    if name == "network" and isinstance(value, dict):
        parts = [
            str(value.get("name") or ""),
            f"({value['handle']})" if value.get("handle") else "",
            str(value.get("cidr") or ""),
        ]
        return " ".join(p for p in parts if p)
    return str(value)


def _age(as_of: str, now: datetime, language: str) -> tuple[str, str]:
    """(data_of, age): a bare date is the data's date; a time is when it was asked."""
    if len(as_of) <= 10:
        return as_of, ""
    try:
        at = datetime.fromisoformat(as_of)
    except ValueError:
        return as_of, ""
    return "", format_timedelta(max(now - at, now - now), locale=language, threshold=1.1)


def hosting_panel(request: Request, item_id: int, user: CurrentUser) -> HostingPanel | None:
    """The panel for ``item_id``, or None for a role that may not see actions. An item never
    located gives a panel without lines (the template says so)."""
    if not allowed(user.role, "actions.view"):
        return None
    services = ctx(request).services
    loc: Location | None = current_location(services.engine, item_id)
    if loc is None:
        return HostingPanel(None, "", "", [], "")
    now, language = services.clock.now(), staff_language(request)
    lines = []
    for name in SHOWN:
        fact = loc.fact(name)
        if not fact:
            continue
        data_of, age = _age(str(fact.get("as_of", "")), now, language)
        note = str(fact.get("matched") or fact.get("domain") or "")
        lines.append(
            FactLine(
                name,
                _value(name, fact.get("value")),
                str(fact.get("unknown") or ""),
                str(fact.get("source", "")),
                data_of,
                age,
                note,
            )
        )
    return HostingPanel(loc.located_at, loc.host, loc.ip, lines, loc.error)
