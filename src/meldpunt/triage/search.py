"""Finding items and moving through long lists: one search box that understands what was typed
(a URL or part of one, a host, a receipt code, an item number, an exact MD5/SHA-1/SHA-256/PDQ hash),
the sort orders the lists offer, and bounded pages.

A search is a condition on ``items`` for the queue and the decisions list alike, so both find the
same things the same way. Hashes are matched exactly (a PDQ hash too: distance search is the
matcher's job); a receipt code is matched through its SHA-256, as it is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, exists, false, or_, select

from meldpunt.pipeline.intake import receipt_hash
from meldpunt.store.reports import Item, Medium, Report, ReportItem

T = TypeVar("T")

#: page sizes a list offers; anything else asked for is brought to the nearest bound
PAGE_SIZES = (25, 50, 100)
DEFAULT_PAGE_SIZE = PAGE_SIZES[0]
#: the longest search text looked at (a URL may be long; the rest is ignored)
MAX_SEARCH = 500
#: pages beyond this are not offered (offset paging reads what it skips)
MAX_PAGE = 10_000

_HEX = re.compile(r"[0-9a-f]+")
_RECEIPT = re.compile(r"[A-Z2-7]{5}(?:-?[A-Z2-7]{5}){3}")
_ITEM = re.compile(r"#?([0-9]{1,15})")


def page_size(asked: int | None) -> int:
    """A page size within the offered bounds (the default when none was asked)."""
    if asked is None or asked <= 0:
        return DEFAULT_PAGE_SIZE
    return min(max(asked, PAGE_SIZES[0]), PAGE_SIZES[-1])


def page_number(asked: int | None) -> int:
    return 1 if asked is None or asked < 1 else min(asked, MAX_PAGE)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a longer list: its rows, the whole list's length, where this page is."""

    rows: list[T]
    total: int
    number: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    @property
    def first_row(self) -> int:
        """1-based position of the page's first row (0 when the list is empty)."""
        return (self.number - 1) * self.size + 1 if self.rows else 0

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


@dataclass(frozen=True)
class Search:
    """What a search text was understood as: ``kind`` is ``item``, ``receipt``, ``md5``, ``sha1``,
    ``sha256/pdq`` or ``text`` (part of a URL or host); ``value`` the normalised text."""

    kind: str
    value: str


def understand(text: str) -> Search | None:
    """What ``text`` asks for; None when it is empty."""
    raw = text.strip()[:MAX_SEARCH]
    if not raw:
        return None
    compact = raw.replace(" ", "")
    if (m := _ITEM.fullmatch(compact)) is not None:
        return Search("item", m.group(1))
    lower = compact.lower()
    if _HEX.fullmatch(lower):
        kind = {32: "md5", 40: "sha1", 64: "sha256/pdq"}.get(len(lower))
        if kind is not None:
            return Search(kind, lower)
    upper = compact.upper()
    if _RECEIPT.fullmatch(upper):
        letters = upper.replace("-", "")
        return Search("receipt", "-".join(letters[i : i + 5] for i in range(0, 20, 5)))
    return Search("text", raw)


def item_condition(search: Search) -> ColumnElement[bool]:
    """The condition on ``items`` (the query must select from it) that ``search`` asks for."""
    if search.kind == "item":
        return Item.id == int(search.value)
    if search.kind == "receipt":
        reports = select(Report.id).where(Report.receipt_hash == receipt_hash(search.value))
        linked = select(ReportItem.item_id).where(ReportItem.report_id.in_(reports))
        return or_(Item.report_id.in_(reports), Item.id.in_(linked))
    if search.kind in ("md5", "sha1", "sha256/pdq"):
        v = search.value
        cond: Any = {
            "md5": Medium.md5 == v,
            "sha1": Medium.sha1 == v,
            "sha256/pdq": or_(Medium.sha256 == v, Medium.pdq == v, Medium.pdq_stored == v),
        }[search.kind]
        return exists().where(Medium.item_id == Item.id, cond)
    if search.kind == "text":
        v = search.value
        return or_(Item.url.icontains(v, autoescape=True), Item.host.icontains(v, autoescape=True))
    return false()
