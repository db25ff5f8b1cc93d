"""Triage's words: the stages an item passes on its way to a final classification, and the roles
an opinion can have. Strings in the database (``triage_status.stage``,
``triage_classifications.role``): a ``StrEnum`` compares equal to the string it stores."""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    """Where an item stands in triage (``triage_status.stage``)."""

    #: a first opinion found something illegal: a different analyst must give a second opinion
    SECOND = "second"
    #: the two opinions disagree: a senior resolves
    DISAGREEMENT = "disagreement"
    #: the classification is final
    FINAL = "final"


class OpinionRole(StrEnum):
    """What an opinion was (``triage_classifications.role``)."""

    FIRST = "first"
    SECOND = "second"
    RESOLUTION = "resolution"
    CORRECTION = "correction"
