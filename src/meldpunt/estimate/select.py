"""Choosing the model: SparseMSE's stepwise selection, the lowest BIC, or main effects only.

``stepwise`` follows SparseMSE's ``stepwisefit`` (and MultipleSystemsEstimation's
``estimate_population_stepwise``, which reproduces it): start from main effects; at each step every
pair of lists not yet in the model is a candidate — overlapping or not — and gets the Poisson p-value of
its observed overlap N*_ij under the current fit, min(P(X <= N*), P(X >= N*)) with X ~ Poisson(expected
overlap); a candidate whose model would fail ``check`` (no estimate, or not identifiable) gets p = 1.
The smallest p joins the model if it is below the threshold (0.02); ties go to the first pair in
order (AB, AC, ..., BC, ...). A pair that never overlaps can join: its term is -inf (see ``models``).

``bic`` fits every model of main effects plus a subset of pairs and keeps the lowest BIC among those
that pass ``check`` (as MultipleSystemsEstimation's ``assemble_bic`` with ``removeFRfail``). That is
2**(t(t-1)/2) models. Up to ``EXHAUSTIVE_LISTS`` lists all of them (1024 for 5 lists, a few seconds:
ranked by a plain numpy fit, existence checked once per "top" model; bench/estimate.py times it
against ranking with statsmodels). Beyond (32768 models for 6 lists, 2**28 for 8) a greedy search like
the package's ``downhill_fit``: add or drop the one pair that lowers BIC most until none does, from
three starts (main effects, the stepwise model, all overlapping pairs), keeping the lowest end. Greedy
can stop at a local minimum: on UKdat_5 it ends at BIC 197.5 where the exhaustive search finds 196.5.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations

from scipy.stats import poisson

from meldpunt.estimate.models import Fit, Pair, Problem, check, exists, fit, identifiable, quick_bic, refusal
from meldpunt.estimate.table import METHODS, PTHRESH, CountTable, NoEstimate, pairs

EXHAUSTIVE_LISTS = 5


def main_effects(table: CountTable) -> Fit:
    problem = check(table, ())
    if problem:
        template, values = refusal(problem, table, ())
        raise NoEstimate(template, **values)
    return fit(table, ())


def stepwise(table: CountTable, pthresh: float = PTHRESH) -> Fit:
    current = main_effects(table)
    chosen: list[Pair] = []
    candidates = pairs(len(table.names))
    nstar = {p: table.overlap(*p) for p in candidates}
    while True:
        best: tuple[float, Pair] | None = None
        for p in candidates:
            if p in chosen:
                continue
            pattern_has_both = table.patterns[:, p[0]] * table.patterns[:, p[1]]
            pstar = float((current.fitted * pattern_has_both).sum())
            pval = min(float(poisson.cdf(nstar[p], pstar)), float(poisson.sf(nstar[p] - 1, pstar)))
            if pval < pthresh and check(table, (*chosen, p)) is not Problem.NONE:
                pval = 1.0
            if best is None or pval < best[0]:
                best = (pval, p)
        if best is None or best[0] >= pthresh:
            return current
        chosen.append(best[1])
        current = fit(table, tuple(chosen))


def _subsets(items: list[Pair]) -> Iterator[tuple[Pair, ...]]:
    for k in range(len(items) + 1):
        yield from combinations(items, k)


def lowest_bic(table: CountTable) -> Fit:
    t = len(table.names)
    all_pairs = pairs(t)
    if t <= EXHAUSTIVE_LISTS:
        return _exhaustive(table, all_pairs)
    # greedy: from several starts (main effects, every overlapping pair, the stepwise model), move to the
    # best neighbour (one pair more or fewer) while BIC falls; keep the best end
    starts = [main_effects(table), stepwise(table)]
    overlapping = tuple(p for p in all_pairs if table.overlap(*p) > 0)
    if check(table, overlapping) is Problem.NONE:
        starts.append(fit(table, overlapping))
    ends = [_downhill(table, start, all_pairs) for start in starts]
    return min(ends, key=lambda f: f.bic())


def _downhill(table: CountTable, current: Fit, all_pairs: list[Pair]) -> Fit:
    tried: dict[tuple[Pair, ...], Fit | None] = {}
    while True:
        moves = [tuple(sorted((*current.pairs, p))) for p in all_pairs if p not in current.pairs]
        moves += [tuple(q for q in current.pairs if q != p) for p in current.pairs]
        better = current
        for model in moves:
            if model not in tried:
                tried[model] = fit(table, model) if check(table, model) is Problem.NONE else None
            f = tried[model]
            if f is not None and f.bic() < better.bic() - 1e-9:
                better = f
        if better is current:
            return current
        current = better


def _exhaustive(table: CountTable, all_pairs: list[Pair]) -> Fit:
    """Every model, ranked by ``quick_bic``; existence checked through the "top" models of Chan,
    Silverman & Vincent §2.7: dropping an overlapping pair keeps an estimate that exists, so one linear
    program per set of non-overlapping pairs covers every model with that set (if it passes)."""
    overlapping = [p for p in all_pairs if table.overlap(*p) > 0]
    top_exists: dict[tuple[Pair, ...], bool] = {}
    best: tuple[float, tuple[Pair, ...]] | None = None
    for model in _subsets(all_pairs):
        empty = tuple(p for p in model if p not in overlapping)
        if empty not in top_exists:
            top_exists[empty] = exists(table, tuple(sorted((*empty, *overlapping))))
        if not (top_exists[empty] or exists(table, model)) or not identifiable(table, model):
            continue
        bic = quick_bic(table, model)
        if best is None or bic < best[0] - 1e-9:
            best = (bic, model)
    if best is None:
        raise NoEstimate("no model with two-way interactions has an identifiable estimate on this table")
    return fit(table, best[1])


def select(table: CountTable, method: str, pthresh: float = PTHRESH) -> Fit:
    if method == "stepwise":
        return stepwise(table, pthresh)
    if method == "bic":
        return lowest_bic(table)
    if method == "main":
        return main_effects(table)
    raise ValueError(f"unknown method {method!r}: one of {', '.join(METHODS)}")
