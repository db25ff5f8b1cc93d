"""Multiple systems estimation: how many victims no list saw, from how the lists overlap.

A pure room (standard library, numpy; scipy and statsmodels, loaded by ``estimate`` only, as they
take seconds): ``read_csv`` checks a count table, ``estimate`` selects and fits a log-linear Poisson
model (``stepwise`` as SparseMSE, ``bic``, ``main`` or given ``terms``), refuses when the estimate
does not exist, and returns the total, observed, hidden and two confidence intervals. The CLI
(``meldpunt estimate``) and the workspace page call the same function. Validated against the
published estimates (tests/test_estimate.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meldpunt.estimate.table import (
    MAX_LISTS,
    METHODS,
    PTHRESH,
    CountTable,
    NoEstimate,
    Note,
    Said,
    TableError,
    from_rows,
    read_csv,
)

if TYPE_CHECKING:
    from meldpunt.estimate.intervals import Bootstrap
    from meldpunt.estimate.models import Fit

__all__ = [
    "DEFAULT_BOOTSTRAP",
    "DEFAULT_SEED",
    "MAX_LISTS",
    "METHODS",
    "CountTable",
    "Estimate",
    "NoEstimate",
    "Note",
    "Said",
    "TableError",
    "estimate",
    "from_rows",
    "parse_terms",
    "read_csv",
]

#: a modest default: every run repeats the model selection (stepwise on New Orleans' 8 lists: about 8 s
#: of CPU per 100 runs; exhaustive BIC on 5 lists: a few seconds per run — ask for fewer, or 0)
DEFAULT_BOOTSTRAP = 200
DEFAULT_SEED = 1234


@dataclass(frozen=True)
class Estimate:
    """The answer: total = observed + hidden, with the model and both intervals (95%)."""

    total: float
    observed: int
    hidden: float
    ci_low: float
    ci_high: float
    #: SparseMSE's ``estimatepopulation.0`` interval: normal on the intercept (log hidden), for comparison
    wald_low: float
    wald_high: float
    boot: Bootstrap | None
    model: tuple[str, ...]
    empty_terms: tuple[str, ...]
    method: str
    lists: tuple[str, ...]
    aic: float
    bic: float
    notes: tuple[Note, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "total": round(self.total, 2),
            "observed": self.observed,
            "hidden": round(self.hidden, 2),
            "ci_low": round(self.ci_low, 2),
            "ci_high": round(self.ci_high, 2) if math.isfinite(self.ci_high) else None,
            "ci": "profile likelihood, 95%",
            "wald_low": round(self.wald_low, 2),
            "wald_high": round(self.wald_high, 2) if math.isfinite(self.wald_high) else None,
            "boot_low": None if self.boot is None else round(self.boot.low, 2),
            "boot_high": None
            if self.boot is None or not math.isfinite(self.boot.high)
            else round(self.boot.high, 2),
            "boot_runs": 0 if self.boot is None else self.boot.runs,
            "boot_failed": 0 if self.boot is None else self.boot.failed,
            "seed": None if self.boot is None else self.boot.seed,
            "model": list(self.model),
            "never_overlap_terms": list(self.empty_terms),
            "method": self.method,
            "lists": list(self.lists),
            "aic": round(self.aic, 4),
            "bic": round(self.bic, 4),
            "notes": [str(n) for n in self.notes],
        }


def parse_terms(table: CountTable, terms: list[str]) -> tuple[tuple[int, int], ...]:
    """``["A:B", "C:D"]`` (the table's list names) as pairs of list indices."""
    index = {n: k for k, n in enumerate(table.names)}
    out: list[tuple[int, int]] = []
    for term in terms:
        parts = term.split(":")
        if len(parts) != 2 or any(p not in index for p in parts) or parts[0] == parts[1]:
            raise TableError(
                "term {term}: give two different list names of the table joined by ':' (e.g. A:B)",
                term=repr(term),
            )
        pair = (min(index[parts[0]], index[parts[1]]), max(index[parts[0]], index[parts[1]]))
        if pair not in out:
            out.append(pair)
    return tuple(sorted(out))


def estimate(
    table: CountTable,
    method: str = "stepwise",
    *,
    terms: list[str] | None = None,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
    pthresh: float = PTHRESH,
    budget_s: float | None = None,
) -> Estimate:
    """Estimate the total. Raises ``NoEstimate`` (with the reason) when no number can be given.
    ``budget_s`` bounds the bootstrap's time (it then reports the runs it made, at least 20)."""
    # scipy and statsmodels take seconds to load: only here, not for every ``meldpunt`` command and
    # every web process that merely names this package
    from meldpunt.estimate import select as selection
    from meldpunt.estimate.intervals import parametric_bootstrap, profile_interval
    from meldpunt.estimate.models import Problem, check, fit, refusal

    if terms is not None:
        pairs = parse_terms(table, terms)
        problem = check(table, pairs)
        if problem is not Problem.NONE:
            template, values = refusal(problem, table, pairs)
            raise NoEstimate(template, **values)
        best = fit(table, pairs)
        method = "fixed"

        def again(t: CountTable) -> Fit:
            if check(t, pairs) is not Problem.NONE:
                raise NoEstimate("no estimate")
            return fit(t, pairs)
    else:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}: one of {', '.join(METHODS)}")
        best = selection.select(table, method, pthresh)

        def again(t: CountTable) -> Fit:
            return selection.select(t, method, pthresh)

    if not math.isfinite(best.intercept) or best.hidden > 1e12:
        raise NoEstimate("the fitted hidden number is not finite: the model does not pin it down")
    low, high = profile_interval(table, best)
    z = 1.959963984540054
    try:
        wald = (
            best.observed + math.exp(best.intercept - z * best.intercept_se),
            best.observed + math.exp(best.intercept + z * best.intercept_se),
        )
    except OverflowError:
        wald = (float(best.observed), math.inf)
    boot = (
        parametric_bootstrap(table, best, again, bootstrap, seed, budget_s=budget_s)
        if bootstrap > 0
        else None
    )
    return Estimate(
        total=best.total,
        observed=best.observed,
        hidden=best.hidden,
        ci_low=low,
        ci_high=high,
        wald_low=wald[0],
        wald_high=wald[1],
        boot=boot,
        model=tuple(table.term(p) for p in sorted(best.pairs)),
        empty_terms=tuple(table.term(p) for p in best.empty_pairs),
        method=method,
        lists=table.names,
        aic=best.aic,
        bic=best.bic(),
        notes=table.notes,
    )
