"""The domain's rules of triage: stages, medium and item outcomes, and the one PDQ distance and
"usable PDQ" rule that matching, grouping and banking share."""

from __future__ import annotations

import random

import numpy as np

from meldpunt.domain.pdq import pdq_distance, pdq_distances, pdq_usable
from meldpunt.domain.reports import ItemState, MediumOutcome, item_outcome, medium_outcome
from meldpunt.domain.triage import OpinionRole, Stage
from meldpunt.pipeline.matching import pdq_queries
from meldpunt.signals import MediaKind, Signals, hamming
from meldpunt.store.triage import DISAGREEMENT, FINAL, SECOND
from meldpunt.triage import queue


def _hex(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(64))


def test_one_pdq_distance_for_one_pair_and_for_many() -> None:
    rng = random.Random(5)
    hashes = [_hex(rng) for _ in range(20)]
    codes = np.frombuffer(bytes.fromhex("".join(hashes)), dtype=np.uint8).reshape(-1, 32)
    many = pdq_distances(hashes[0], codes)
    assert [int(d) for d in many] == [pdq_distance(hashes[0], h) for h in hashes]
    assert all(hamming(hashes[0], h) == pdq_distance(hashes[0], h) for h in hashes)
    assert pdq_distance("f" * 64, "0" * 64) == 256


def test_a_pdq_is_usable_only_when_whole_and_its_quality_is_known_and_enough() -> None:
    pdq = "a" * 64
    assert pdq_usable(pdq, 50, 50) and pdq_usable(pdq, 100, 50)
    assert not pdq_usable(pdq, 49, 50)
    assert not pdq_usable(pdq, None, 50)  # a missing quality: unusable, everywhere
    assert not pdq_usable(pdq, None, 0)
    assert not pdq_usable("a" * 63, 100, 50) and not pdq_usable("", 100, 50) and not pdq_usable(None, 100, 50)


def test_the_matcher_uses_the_same_usable_rule() -> None:
    s = Signals("x.png", 1, "", "", "", MediaKind.IMAGE, pdq="a" * 64, pdq_quality=None)
    assert pdq_queries(s, 0) == []
    s = Signals("x.png", 1, "", "", "", MediaKind.IMAGE, pdq="a" * 64, pdq_quality=60)
    assert pdq_queries(s, 50) == [("a" * 64, None)] and pdq_queries(s, 61) == []


def test_stages_and_roles_are_the_strings_the_database_holds() -> None:
    assert [s.value for s in Stage] == ["second", "disagreement", "final"]
    assert (SECOND, DISAGREEMENT, FINAL) == (Stage.SECOND, Stage.DISAGREEMENT, Stage.FINAL)
    assert (queue.SECOND, queue.DISAGREEMENT, queue.FINAL) == ("second", "disagreement", "final")
    assert Stage("final") is Stage.FINAL and Stage.FINAL == "final"  # type: ignore[comparison-overlap]
    assert [r.value for r in OpinionRole] == ["first", "second", "resolution", "correction"]
    assert queue.SECOND_OPINION is OpinionRole.SECOND


def test_item_states_are_the_ones_ever_written() -> None:
    assert {s.value for s in ItemState} == {
        "received",
        "fetched",
        "known",
        "needs_review",
        "classified",
        "unavailable",
        "failed",
    }


def test_medium_and_item_outcomes_live_together_in_the_domain() -> None:
    assert medium_outcome({"hint", "auto"}, None, True) == (MediumOutcome.KNOWN, "")
    assert medium_outcome({"ignore"}, "broken", False) == (MediumOutcome.IGNORED, "")
    assert medium_outcome(set(), "broken", True) == (MediumOutcome.FAILED, "undecodable: broken")
    assert medium_outcome(set(), None, False)[0] is MediumOutcome.FAILED
    assert medium_outcome({"hint"}, None, True) == (MediumOutcome.NEW, "")
    assert item_outcome([MediumOutcome.KNOWN, MediumOutcome.NEW]) is ItemState.NEEDS_REVIEW
