"""A referral as CSV (``media.csv``): one row per medium, for a spreadsheet or a case system.

RFC 4180: comma-separated, CRLF line ends, fields quoted where they hold a comma, a quote or a line
break, UTF-8 without a byte-order mark, a header row. An item without media gets one row of its
own (its hash columns empty), so every URL of the case is in the table.

Spreadsheets run a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and tab or carriage return,
which some read past) as a formula: a reported URL or a provider's name is text an adversary
chose, so such a cell is written with a leading apostrophe (OWASP's advice), which spreadsheets
show as text and a reader strips with :func:`unescape_cell`.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime

from meldpunt.referral.case import Case, CaseItem, Medium
from meldpunt.referral.vics import category

COLUMNS = (
    "case",
    "item",
    "item_url",
    "final_url",
    "medium",
    "medium_url",
    "kind",
    "size",
    "md5",
    "sha1",
    "sha256",
    "pdq",
    "classification",
    "vics_category",
    "decided_by",
    "decided_at",
    "ip",
    "asn",
    "country",
    "provider",
    "abuse_contact",
    "reported_at",
    "located_at",
    "takedown",
    "removed_at",
    "urgent",
)
#: first characters a spreadsheet reads as the start of a formula
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(text: str) -> str:
    """``text`` safe from formula injection: a leading apostrophe where it starts like a formula."""
    return "'" + text if text.startswith(FORMULA_START) else text


def unescape_cell(text: str) -> str:
    """What :func:`escape_cell` was given."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_START) else text


def _time(at: datetime | None) -> str:
    return at.isoformat() if at else ""


def _classification(item: CaseItem) -> str:
    return "; ".join(f"{k}={v}" for k, v in sorted(item.classification.items()))


def _decided_by(item: CaseItem) -> str:
    if not item.decisions:
        return item.decided_by
    return "; ".join(f"{d.user} ({d.staff_role}, {d.opinion})" for d in item.decisions)


def _row(case: Case, item: CaseItem, m: Medium | None, profile: str) -> list[str]:
    h = item.hosting
    cat = category(item, profile)
    values = [
        case.reference,
        str(item.item_id),
        item.url,
        item.final_url,
        str(m.id) if m else "",
        m.url if m else "",
        m.kind if m else "",
        str(m.size) if m else "",
        m.md5 if m else "",
        m.sha1 if m else "",
        m.sha256 if m else "",
        m.pdq if m else "",
        _classification(item),
        "" if cat is None else f"{profile}:{cat}",
        _decided_by(item),
        _time(item.classified_at),
        h.ip or item.server_ip,
        "" if h.asn is None else f"AS{h.asn}",
        h.country,
        h.provider or h.network_owner,
        h.abuse_contact,
        _time(item.reported_at),
        _time(h.located_at),
        item.takedown_state,
        _time(item.removed_at),
        "yes" if item.urgent else "no",
    ]
    return [escape_cell(v) for v in values]


def media_csv(case: Case, *, profile: str = "US") -> bytes:
    """The case's media, one row each (RFC 4180, UTF-8)."""
    out = io.StringIO(newline="")
    w = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(COLUMNS)
    for item in case.items:
        for m in item.media or (None,):
            w.writerow(_row(case, item, m, profile))
    return out.getvalue().encode("utf-8")
