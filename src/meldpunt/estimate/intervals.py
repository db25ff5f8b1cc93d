"""Confidence intervals for the total: profile likelihood on the intercept, and a parametric bootstrap.

Profile likelihood: the hidden number is exp(intercept), so the interval is the set of intercept values
b whose profile log-likelihood (every other parameter refitted with the intercept held at b) lies
within chi2_1(level)/2 of the maximum; the ends are found by root finding on each side and mapped to
observed + exp(b). This is the model-conditional interval; it does not allow for the model having been
chosen from the same data.

Parametric bootstrap: new tables are drawn from the fitted model (each pattern's count Poisson with its
fitted mean), the whole method — model selection included, as Chan, Silverman & Vincent insist — is run
on each, and the percentiles of the totals are the interval. Seeded, so the same call gives the same
interval. A draw on which no estimate exists (the lists it drew do not overlap, or the MLE does not
exist) counts as an infinite total — leaving it out would shrink the interval exactly where the data
are weakest — so when more than (1 - level)/2 of the draws fail, the upper end is infinite.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.stats import chi2

from meldpunt.estimate.models import Fit, fit
from meldpunt.estimate.table import CountTable, TableError, from_rows


def profile_interval(table: CountTable, best: Fit, level: float = 0.95) -> tuple[float, float]:
    """(low, high) of the total from the profile likelihood of the intercept. An end the likelihood
    does not reach within a factor e**25 of the hidden number is open: observed (low) or inf (high)."""
    cut = float(chi2.ppf(level, 1)) / 2

    def drop(b: float) -> float:
        try:
            d = best.loglik - fit(table, best.pairs, offset_intercept=b).loglik - cut
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            return math.inf
        return d if math.isfinite(d) else math.inf

    b0 = best.intercept
    ends = []
    for sign in (-1.0, 1.0):
        step = max(best.intercept_se, 0.05) if math.isfinite(best.intercept_se) else 0.5
        near, far = b0, b0 + sign * step
        while drop(far) < 0 and abs(far - b0) < SPAN:
            near, far = far, far + sign * step
            step *= 1.6
        if drop(far) < 0:
            ends.append(-math.inf if sign < 0 else math.inf)
        elif not math.isfinite(drop(far)):
            ends.append(far)  # the fit broke down beyond: keep the last point where it held
        else:
            ends.append(brentq(drop, min(near, far), max(near, far), xtol=1e-6))
    low = best.observed + (math.exp(ends[0]) if math.isfinite(ends[0]) else 0.0)
    high = best.observed + math.exp(ends[1]) if math.isfinite(ends[1]) else math.inf
    return low, high


#: how far (in log hidden) the profile is followed before an end is called open
SPAN = 25.0


@dataclass(frozen=True)
class Bootstrap:
    low: float
    high: float
    runs: int
    failed: int
    seed: int


def parametric_bootstrap(
    table: CountTable,
    best: Fit,
    method: Callable[[CountTable], Fit],
    runs: int,
    seed: int,
    level: float = 0.95,
    budget_s: float | None = None,
) -> Bootstrap | None:
    """Percentile interval of the total over ``runs`` tables drawn from ``best`` (the nearest order
    statistics, so an infinite total stays infinite); None if every draw failed. With ``budget_s`` it
    stops after that many seconds of work (a web request must end) and says how many runs it made."""
    rng = np.random.default_rng(seed)
    started = time.monotonic()
    totals = []
    failed = 0
    for done in range(runs):
        if budget_s is not None and done >= 20 and time.monotonic() - started > budget_s:
            runs = done
            break
        counts = rng.poisson(best.fitted)
        try:
            # the draw must itself be a usable table (every list seen, lists overlapping)
            rows = [(list(p), int(n)) for p, n in zip(table.patterns, counts, strict=True) if n]
            totals.append(method(from_rows(list(table.names), rows)).total)
        except (TableError, ValueError, ArithmeticError, np.linalg.LinAlgError):
            failed += 1
            totals.append(math.inf)
    if failed == runs:
        return None
    a = (1 - level) / 2
    ordered = np.sort(np.array(totals))
    low, high = (ordered[min(runs - 1, math.floor(q * (runs - 1) + 0.5))] for q in (a, 1 - a))
    return Bootstrap(float(low), float(high), runs, failed, seed)
