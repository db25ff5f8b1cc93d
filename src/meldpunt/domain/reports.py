"""Reports, items and media: the states of the walk and which moves between them are allowed.

A report (one submission) names URLs; each URL is an item that walks
received -> fetched -> hashed -> matched -> (known | needs_review), or ends unavailable / failed.
Each image or video found on an item's page is a medium with an outcome of its own.
"""

from __future__ import annotations

from enum import StrEnum


class ItemState(StrEnum):
    RECEIVED = "received"
    FETCHED = "fetched"
    HASHED = "hashed"
    MATCHED = "matched"
    #: every medium was auto-classified from a hash list or is on a benign list
    KNOWN = "known"
    #: at least one medium is new: an analyst must look
    NEEDS_REVIEW = "needs_review"
    #: the page or its media could not be reached (gone, 404, blocked address, ...)
    UNAVAILABLE = "unavailable"
    #: the walk could not be completed (retries exhausted): see the item's error
    FAILED = "failed"


FINAL_STATES = frozenset({ItemState.KNOWN, ItemState.NEEDS_REVIEW, ItemState.UNAVAILABLE, ItemState.FAILED})
#: Items still open for the dedupe window: a new report of the same URL links to them.
OPEN_STATES = frozenset(ItemState) - {ItemState.UNAVAILABLE, ItemState.FAILED}

_NEXT = {
    ItemState.RECEIVED: {ItemState.FETCHED, ItemState.UNAVAILABLE, ItemState.FAILED},
    ItemState.FETCHED: {ItemState.HASHED, ItemState.UNAVAILABLE, ItemState.FAILED},
    ItemState.HASHED: {ItemState.MATCHED, ItemState.FAILED},
    ItemState.MATCHED: {ItemState.KNOWN, ItemState.NEEDS_REVIEW, ItemState.FAILED},
}


class MediumOutcome(StrEnum):
    KNOWN = "known"  # matched an auto-policy bank: classified by its labels, never shown
    IGNORED = "ignored"  # matched a benign (ignore) list
    NEW = "new"  # no auto/ignore match: needs an analyst (hints may be attached)
    FAILED = "failed"  # could not be fetched or decoded


class SeenOn(StrEnum):
    WEBSITE = "website"
    SOCIAL = "social"
    CHAT = "chat"
    FILESHARING = "filesharing"
    OTHER = "other"


def can_move(current: ItemState, new: ItemState) -> bool:
    return new in _NEXT.get(current, set())


def item_outcome(media: list[MediumOutcome]) -> ItemState:
    """An item's end state from its media: known only when every medium is known or ignored."""
    if not media:
        return ItemState.UNAVAILABLE
    if all(m is MediumOutcome.FAILED for m in media):
        return ItemState.UNAVAILABLE
    if any(m in (MediumOutcome.NEW, MediumOutcome.FAILED) for m in media):
        return ItemState.NEEDS_REVIEW
    return ItemState.KNOWN


def public_status(states: list[ItemState], assessed: int = 0) -> str:
    """What a reporter may be told, in the words of /status: nothing about content. ``assessed``:
    how many of the items that needed review have a final classification (an analyst's decision
    is not an item state: triage keeps it)."""
    if not states or any(s not in FINAL_STATES for s in states):
        return "received" if all(s is ItemState.RECEIVED for s in states) else "assessing"
    if sum(s is ItemState.NEEDS_REVIEW for s in states) > assessed:
        return "assessing"
    if any(s is ItemState.KNOWN for s in states):
        return "action_taken"
    return "assessed" if assessed else "assessing"
