"""Triage and classification: the review queue with claims and near-duplicate groups, schemes as
data, blind second opinions, seniors' resolutions and corrections, and the hotline's own bank fed
by final classifications. No web pages here: the analyst workspace builds on :class:`Triage`."""

from meldpunt.triage.classify import (
    Decision,
    MediumView,
    Opinion,
    Outcome,
    ResolutionCounts,
    ReviewView,
    Triage,
    delete_entries,
)
from meldpunt.triage.queue import (
    Claim,
    ClaimConflict,
    NotAllowed,
    Queue,
    QueueEntry,
    TriageConfig,
    TriageError,
)
from meldpunt.triage.schemes import (
    Classification,
    ClassificationError,
    Flag,
    Problem,
    Scheme,
    SchemeError,
    Schemes,
    SchemeValue,
)

__all__ = [
    "Claim",
    "ClaimConflict",
    "Classification",
    "ClassificationError",
    "Decision",
    "Flag",
    "MediumView",
    "NotAllowed",
    "Opinion",
    "Outcome",
    "Problem",
    "Queue",
    "QueueEntry",
    "ResolutionCounts",
    "ReviewView",
    "Scheme",
    "SchemeError",
    "SchemeValue",
    "Schemes",
    "Triage",
    "TriageConfig",
    "TriageError",
    "delete_entries",
]
