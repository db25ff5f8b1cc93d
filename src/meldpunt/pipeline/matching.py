"""Matching a file's signals against the banks: exact hashes by lookup, PDQ by the index, video by
the share of its frames that match one entry's frames.

An image can have several PDQ hashes: the upright one (``Signals.pdq``), the one of its pixels as
stored when an EXIF orientation turned them (``pdq_stored``: what other tools put in their lists)
and, when asked, its rotated and flipped variants. They are searched together and each entry is
matched once, by the closest of them (ties go to the upright hash, then the stored one); the match
says which hash it was (``Match.hash``) and the image's orientation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from meldpunt.domain import Labels, SignalType, parse_vpdq
from meldpunt.domain.pdq import pdq_usable
from meldpunt.index import PDQIndex
from meldpunt.settings import Settings
from meldpunt.signals import DIHEDRAL_ORDER, Signals
from meldpunt.store.banks import BankRepository, EntryHit


@dataclass(frozen=True)
class Match:
    bank: str
    entry_id: int
    signal_type: str
    distance: int
    labels: Labels
    policy: str
    #: vPDQ only: the share of the query video's frames that match this entry's frames.
    frame_share: float | None = None
    #: a hint beyond the bank's own threshold (see :meth:`Matcher.near`): it classifies nothing
    near: bool = False
    #: PDQ only, which of the image's hashes matched, when it had more than one: ``"upright"``
    #: (``Signals.pdq`` of an EXIF-oriented photo), ``"stored"`` (``Signals.pdq_stored``), or a
    #: variant of :data:`~meldpunt.signals.DIHEDRAL_ORDER` (``"rotate90"`` ...) with ``--dihedral``.
    #: ``None``: the image's one hash, ``Signals.pdq``.
    hash: str | None = None
    #: PDQ only: the image's EXIF orientation (2-8) when it had one.
    orientation: int | None = None

    def to_json_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "bank": self.bank,
            "entry_id": self.entry_id,
            "signal_type": self.signal_type,
            "distance": self.distance,
            "policy": self.policy,
            "labels": self.labels.to_dict(),
        }
        if self.frame_share is not None:
            d["frame_share"] = round(self.frame_share, 4)
        if self.near:
            d["near"] = True
        if self.hash is not None:
            d["hash"] = self.hash
        if self.orientation is not None:
            d["orientation"] = self.orientation
        return d


def pdq_queries(s: Signals, min_quality: int, *, dihedral: bool = True) -> list[tuple[str, str | None]]:
    """(hash, which) for each PDQ hash of an image good enough to search (quality >= ``min_quality``):
    the upright one, the stored one (EXIF-oriented photos only), then the dihedral variants of the
    upright one other than itself when they were computed and ``dihedral`` is true."""
    out: list[tuple[str, str | None]] = []
    two = s.pdq_stored is not None
    upright = s.pdq is not None and pdq_usable(s.pdq, s.pdq_quality, min_quality)
    if upright and s.pdq is not None:
        out.append((s.pdq, "upright" if two else None))
    if s.pdq_stored is not None and pdq_usable(s.pdq_stored, s.pdq_stored_quality, min_quality):
        out.append((s.pdq_stored, "stored"))
    if dihedral and s.pdq_dihedral and upright:
        out += list(zip(s.pdq_dihedral[1:], DIHEDRAL_ORDER[1:], strict=True))
    return out


class _VideoIndex:
    """Every frame of every vPDQ entry in one PDQ index; frames know their entry."""

    def __init__(self, repo: BankRepository, min_quality: int) -> None:
        owners: list[int] = []
        hashes: list[str] = []
        for batch in repo.iter_signal(SignalType.VPDQ):
            for entry_id, value in batch:
                for f in parse_vpdq(value):
                    if f.quality >= min_quality:
                        hashes.append(f.pdq)
                        owners.append(entry_id)
        self.owner = np.asarray(owners, dtype=np.int64)
        self.index = PDQIndex()
        if hashes:
            self.index.add(hashes, np.arange(len(hashes), dtype=np.int64))


class Matcher:
    def __init__(
        self,
        repo: BankRepository,
        pdq_index: PDQIndex,
        settings: Settings,
        banks: Sequence[str] | None = None,
    ) -> None:
        self.repo = repo
        self.pdq_index = pdq_index
        self.settings = settings
        self.banks = list(banks) if banks else None
        banks_now = repo.bank_settings()
        if self.banks:
            unknown = [b for b in self.banks if b not in banks_now]
            if unknown:
                raise ValueError(f"no bank named {', '.join(map(repr, unknown))}")
            banks_now = {k: v for k, v in banks_now.items() if k in self.banks}
        thresholds = [t for _, t in banks_now.values() if t is not None]
        self.max_radius = max([settings.pdq_threshold, *thresholds])
        self._video: _VideoIndex | None = None

    def _threshold(self, hit: EntryHit) -> int:
        return hit.pdq_threshold if hit.pdq_threshold is not None else self.settings.pdq_threshold

    def match(self, s: Signals) -> list[Match]:
        matches = self._exact(s)
        queries = pdq_queries(s, self.settings.pdq_min_quality)
        if queries:
            matches += self._pdq(queries, s.orientation)
        if s.vpdq:
            matches += self._vpdq(s)
        return sorted(matches, key=lambda m: (m.distance, m.bank, m.entry_id))

    def _exact(self, s: Signals) -> list[Match]:
        pairs = [(SignalType.MD5, s.md5), (SignalType.SHA1, s.sha1), (SignalType.SHA256, s.sha256)]
        return [m for ms in self.exact_batch(pairs).values() for m in ms]

    def exact_batch(self, pairs: Sequence[tuple[SignalType, str]]) -> dict[tuple[str, str], list[Match]]:
        """Matches of many exact hashes in one look-up, by (signal type, value)."""
        out: dict[tuple[str, str], list[Match]] = {}
        for h in self.repo.lookup_exact([p for p in pairs if p[1]], self.banks):
            out.setdefault((h.signal_type, h.value), []).append(
                Match(h.bank, h.entry_id, h.signal_type, 0, h.labels, h.policy)
            )
        return out

    def _pdq(self, queries: list[tuple[str, str | None]], orientation: int | None) -> list[Match]:
        """One image: its hashes (see :func:`pdq_queries`); per entry one match, by the closest hash
        (the first of equals), so an entry found by several of them counts once."""
        best: dict[int, Match] = {}
        for (_, which), matches in zip(queries, self.pdq_batch([q for q, _ in queries]), strict=True):
            for m in matches:
                if m.entry_id not in best or m.distance < best[m.entry_id].distance:
                    best[m.entry_id] = replace(m, hash=which, orientation=orientation)
        return list(best.values())

    def pdq_batch(self, hashes: list[str]) -> list[list[Match]]:
        """For each PDQ hash, its matches: one index search for all of them, the closest distance
        per entry, kept when within that entry's bank threshold; sorted by distance."""
        bests: list[dict[int, int]] = []
        for row in self.pdq_index.search(hashes, max_distance=self.max_radius):
            best: dict[int, int] = {}
            for entry_id, d in row:
                best[int(entry_id)] = min(int(d), best.get(int(entry_id), 257))
            bests.append(best)
        hits = self.repo.entries_by_id({e for b in bests for e in b}, self.banks)
        out = []
        for best in bests:
            found = [
                Match(h.bank, h.entry_id, "pdq", best[e], h.labels, h.policy)
                for e, h in ((e, hits.get(e)) for e in best)
                if h is not None and best[e] <= self._threshold(h)
            ]
            out.append(sorted(found, key=lambda m: (m.distance, m.bank, m.entry_id)))
        return out

    def near(self, s: Signals, max_distance: int, limit: int = 20) -> list[Match]:
        """Hints for the analyst: PDQ entries of any bank (of this matcher) farther from the image
        than their bank's threshold but within ``max_distance``; closest first, at most ``limit``.
        Marked ``near``: they classify nothing. Meant for media that need review: a radius of 50
        costs about 5 ms per image at 1M hashes (radius 31: 0.06 ms), so the image's own hashes
        are searched (upright and, for an EXIF-oriented photo, stored), not its rotated and flipped
        copies. An entry within its threshold of either hash is a match, not a hint."""
        queries = pdq_queries(s, self.settings.pdq_min_quality, dihedral=False)
        if max_distance <= 0 or not queries:
            return []
        best: dict[int, tuple[int, str | None]] = {}
        rows = self.pdq_index.search([q for q, _ in queries], max_distance=max_distance)
        for (_, which), row in zip(queries, rows, strict=True):
            for entry_id, d in row:
                e = int(entry_id)
                if e not in best or int(d) < best[e][0]:
                    best[e] = (int(d), which)
        hits = self.repo.entries_by_id(best, self.banks)
        found = [
            Match(h.bank, h.entry_id, "pdq", best[e][0], h.labels, h.policy, near=True, hash=best[e][1])
            for e, h in ((e, hits.get(e)) for e in best)
            if h is not None and best[e][0] > self._threshold(h)
        ]
        if s.orientation is not None:
            found = [replace(m, orientation=s.orientation) for m in found]
        return sorted(found, key=lambda m: (m.distance, m.bank, m.entry_id))[:limit]

    def _vpdq(self, s: Signals) -> list[Match]:
        frames = [f for f in s.vpdq or [] if f.quality >= self.settings.pdq_min_quality]
        if not frames:
            return []
        if self._video is None:
            self._video = _VideoIndex(self.repo, self.settings.pdq_min_quality)
        video = self._video
        if len(video.index) == 0:
            return []
        # Which query frames match each entry, and how closely.
        matched: dict[int, set[int]] = {}
        closest: dict[int, int] = {}
        rows = video.index.search([f.pdq for f in frames], max_distance=self.max_radius)
        per_frame: list[dict[int, int]] = []
        for row in rows:
            best: dict[int, int] = {}
            for frame_id, d in row:
                owner = int(video.owner[frame_id])
                if d < best.get(owner, 257):
                    best[owner] = d
            per_frame.append(best)
        hits = self.repo.entries_by_id({e for b in per_frame for e in b}, self.banks)
        for qi, best in enumerate(per_frame):
            for entry_id, d in best.items():
                hit = hits.get(entry_id)
                if hit is None or d > self._threshold(hit):
                    continue
                matched.setdefault(entry_id, set()).add(qi)
                closest[entry_id] = min(d, closest.get(entry_id, 257))
        out = []
        for entry_id, qs in matched.items():
            share = len(qs) / len(frames)
            if share >= self.settings.vpdq_frame_share:
                h = hits[entry_id]
                out.append(Match(h.bank, entry_id, "vpdq", closest[entry_id], h.labels, h.policy, share))
        return out
