"""Reports, items and media: the states of the walk and which moves between them are allowed.

A report (one submission) names URLs; each URL is an item that walks
received -> fetched -> (known | needs_review), or ends unavailable / failed. Hashing and matching
happen between fetched and the end state, in the transaction that writes the end state, so they
are steps of the walk, not states (an item is never seen "hashed" or "matched"). Which state
follows which is enforced where the state is written (the walk's conditional updates name the
state they move from), not by a transition table.
An item that needed review ends ``classified`` when an analyst's decision is final (a second
opinion, a senior's resolution), or ``known`` when a hash list learns its media while it waits.
Each image or video found on an item's page is a medium with an outcome of its own.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from enum import StrEnum


class ItemState(StrEnum):
    RECEIVED = "received"
    FETCHED = "fetched"
    #: every medium was auto-classified from a hash list or is on a benign list
    KNOWN = "known"
    #: at least one medium is new: an analyst must look
    NEEDS_REVIEW = "needs_review"
    #: an analyst's classification of it is final (the steps towards it are triage's, not states)
    CLASSIFIED = "classified"
    #: the page or its media could not be reached (gone, 404, blocked address, ...)
    UNAVAILABLE = "unavailable"
    #: the walk could not be completed (retries exhausted): see the item's error
    FAILED = "failed"


FINAL_STATES = frozenset(
    {ItemState.KNOWN, ItemState.NEEDS_REVIEW, ItemState.CLASSIFIED, ItemState.UNAVAILABLE, ItemState.FAILED}
)
#: the walk is over and no one has to look at it any more
SETTLED_STATES = frozenset({ItemState.KNOWN, ItemState.CLASSIFIED, ItemState.UNAVAILABLE, ItemState.FAILED})
#: Items still open for the dedupe window: a new report of the same URL links to them.
OPEN_STATES = frozenset(ItemState) - {ItemState.UNAVAILABLE, ItemState.FAILED}


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


def medium_outcome(
    policies: Collection[str], decode_error: str | None, is_media: bool
) -> tuple[MediumOutcome, str]:
    """(outcome, error) of one medium from the policies of the hash lists it matched, its decode
    error and whether it is an image or video: auto match -> known; ignore match -> ignored;
    content that could not be decoded -> failed; else new. Exact matches count even for content
    that did not decode."""
    if "auto" in policies:
        return MediumOutcome.KNOWN, ""
    if "ignore" in policies:
        return MediumOutcome.IGNORED, ""
    if decode_error:
        return MediumOutcome.FAILED, f"undecodable: {decode_error}"
    if not is_media:
        return MediumOutcome.FAILED, "not_media: the content is neither an image nor a video"
    return MediumOutcome.NEW, ""


def item_outcome(media: list[MediumOutcome]) -> ItemState:
    """An item's end state from its media: known only when every medium is known or ignored."""
    if not media:
        return ItemState.UNAVAILABLE
    if all(m is MediumOutcome.FAILED for m in media):
        return ItemState.UNAVAILABLE
    if any(m in (MediumOutcome.NEW, MediumOutcome.FAILED) for m in media):
        return ItemState.NEEDS_REVIEW
    return ItemState.KNOWN


def public_status(items: Sequence[tuple[ItemState, bool] | tuple[ItemState, bool, bool]]) -> str:
    """What a reporter may be told, in the words of /status: nothing about content.

    ``items``: each item's state and whether it was found illegal — by a hash list (a medium
    matched an ``auto`` list) or by an analyst's final classification. One rule for both ways of
    knowing: while any item is still walking or waits for an analyst, "assessing" ("received" while
    nothing has been touched yet); once all are settled, "action_taken" when anything was found
    illegal — and "removed" once every item found illegal is confirmed gone by the re-checks (an
    optional third value per item: its takedown is ``removed``) —, "unavailable" when none of the
    pages could be reached, else "assessed" (benign lists, not-illegal decisions, and unreachable
    pages beside assessed ones)."""
    states = [i[0] for i in items]
    if not states or any(s not in SETTLED_STATES for s in states):
        return "received" if states and all(s is ItemState.RECEIVED for s in states) else "assessing"
    acted = [i for i in items if i[1] and i[0] in (ItemState.KNOWN, ItemState.CLASSIFIED)]
    if acted:
        return "removed" if all(len(i) > 2 and i[2] for i in acted) else "action_taken"
    if all(s in (ItemState.UNAVAILABLE, ItemState.FAILED) for s in states):
        return "unavailable"
    return "assessed"
