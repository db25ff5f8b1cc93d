"""Log-linear Poisson models of a count table: the design, the existence check, the fit.

A model is the main effects of every list plus a set of two-way interactions (pairs of lists). As in
SparseMSE (Chan, Silverman & Vincent 2021), a pair in the model whose lists never overlap (N*_ij = 0)
has the extended maximum-likelihood value -inf: the patterns holding both lists are left out of the fit
instead of letting the iterations run towards -inf, and the term is counted as a parameter in AIC/BIC.
The unobserved all-zero pattern is never in the data; the intercept is the log of its expected count,
the hidden number.

``check`` is SparseMSE's ``checkident``: the linear program of Fienberg & Rinaldo (2012) as corrected
by Chan, Silverman & Vincent — the (extended) MLE exists iff some vector x of expected counts with
A'x = A'n has every entry strictly positive (maximise the smallest entry; 0 means it does not
exist) — and the rank of the design (identifiability).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from enum import IntFlag

import numpy as np
import numpy.typing as npt
import statsmodels.api as sm
from scipy.optimize import linprog
from scipy.special import gammaln

from meldpunt.estimate.table import CountTable

Pair = tuple[int, int]
Matrix = npt.NDArray[np.float64]


class Problem(IntFlag):
    """What ``check`` found (SparseMSE's ``ierr``: 1 no finite estimate, 2 not identifiable, 3 both)."""

    NONE = 0
    NOT_EXIST = 1
    NOT_IDENTIFIABLE = 2


@dataclass(frozen=True)
class Design:
    """The rows (patterns) kept and the model matrix for a table and a set of pairs."""

    rows: npt.NDArray[np.bool_]
    matrix: Matrix
    columns: tuple[str, ...]
    fitted_pairs: tuple[Pair, ...]
    empty_pairs: tuple[Pair, ...]


@dataclass(frozen=True)
class Fit:
    """A fitted model: the terms, the intercept (log hidden) and what the criteria need."""

    pairs: tuple[Pair, ...]
    empty_pairs: tuple[Pair, ...]
    intercept: float
    intercept_se: float
    loglik: float
    n_params: int
    fitted: npt.NDArray[np.float64]  # expected counts, one per pattern of the table (0 where left out)
    design: Design
    observed: int

    @property
    def hidden(self) -> float:
        return math.exp(self.intercept)

    @property
    def total(self) -> float:
        return self.observed + self.hidden

    @property
    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.n_params

    def bic(self) -> float:
        """BIC with log(number observed) as the penalty per parameter, as MultipleSystemsEstimation."""
        return -2 * self.loglik + self.n_params * math.log(self.observed)


def design(table: CountTable, pairs: tuple[Pair, ...]) -> Design:
    keep = np.ones(len(table.counts), dtype=bool)
    fitted, empty = [], []
    for i, j in pairs:
        if table.overlap(i, j) == 0:
            empty.append((i, j))
            keep &= (table.patterns[:, i] * table.patterns[:, j]) == 0
        else:
            fitted.append((i, j))
    z = table.patterns[keep].astype(np.float64)
    cols = [np.ones(len(z)), *(z[:, i] for i in range(z.shape[1])), *(z[:, i] * z[:, j] for i, j in fitted)]
    names = ("(intercept)", *table.names, *(table.term(p) for p in fitted))
    return Design(keep, np.column_stack(cols), names, tuple(fitted), tuple(empty))


def check(table: CountTable, pairs: tuple[Pair, ...]) -> Problem:
    """Does the model have an identifiable (extended) maximum-likelihood estimate on this table?"""
    problem = Problem.NONE if exists(table, pairs) else Problem.NOT_EXIST
    if not identifiable(table, pairs):
        problem |= Problem.NOT_IDENTIFIABLE
    return problem


def identifiable(table: CountTable, pairs: tuple[Pair, ...]) -> bool:
    d = design(table, pairs)
    return bool(np.linalg.matrix_rank(d.matrix) == d.matrix.shape[1])


def exists(table: CountTable, pairs: tuple[Pair, ...]) -> bool:
    """The linear-programming test: is there a strictly positive x with A'x = A'n?"""
    d = design(table, pairs)
    a = d.matrix.T  # parameters x patterns
    n = table.counts[d.rows].astype(np.float64)
    npar, nobs = a.shape
    # maximise s subject to A x = A n, x_k >= s for every pattern, x >= 0, s >= 0
    c = np.zeros(nobs + 1)
    c[-1] = -1.0
    a_eq = np.hstack([a, np.zeros((npar, 1))])
    a_ub = np.hstack([-np.eye(nobs), np.ones((nobs, 1))])
    res = linprog(c, A_ub=a_ub, b_ub=np.zeros(nobs), A_eq=a_eq, b_eq=a @ n, bounds=(0, None), method="highs")
    return bool(res.status == 0 and -res.fun > 1e-9 * max(1.0, float(n.sum())))


def refusal(problem: Problem, table: CountTable, pairs: tuple[Pair, ...]) -> tuple[str, dict[str, str]]:
    """Why a model gives no estimate: an English template and its values (``NoEstimate`` takes them)."""
    terms = "".join(" + " + table.term(p) for p in pairs)
    if problem == Problem.NOT_EXIST | Problem.NOT_IDENTIFIABLE:
        template = "model (main effects{terms}): the maximum-likelihood estimate does not exist, and the model is not identifiable"
    elif Problem.NOT_EXIST in problem:
        template = "model (main effects{terms}): the maximum-likelihood estimate does not exist: some expected count would have to be zero or infinite to fit the data (the linear-programming check of Chan, Silverman & Vincent 2021)"
    else:
        template = "model (main effects{terms}): the model is not identifiable: the data cannot tell its parameters apart"
    return template, {"terms": terms}


def fit(table: CountTable, pairs: tuple[Pair, ...], offset_intercept: float | None = None) -> Fit:
    """Fit the Poisson GLM (statsmodels, IRLS). With ``offset_intercept`` the intercept is held
    fixed at that value and the rest maximised (one point of the profile likelihood)."""
    d = design(table, pairs)
    y = table.counts[d.rows].astype(np.float64)
    x = d.matrix
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if offset_intercept is None:
            res = sm.GLM(y, x, family=sm.families.Poisson()).fit()
            intercept = float(res.params[0])
            se = float(res.bse[0])
        else:
            offset = np.full(len(y), offset_intercept)
            res = sm.GLM(y, x[:, 1:], family=sm.families.Poisson(), offset=offset).fit()
            intercept, se = offset_intercept, float("nan")
    fitted = np.zeros(len(table.counts))
    fitted[d.rows] = np.asarray(res.mu, dtype=np.float64)
    n_params = x.shape[1] + len(d.empty_pairs)
    return Fit(
        pairs=tuple(pairs),
        empty_pairs=d.empty_pairs,
        intercept=intercept,
        intercept_se=se,
        loglik=float(res.llf),
        n_params=n_params,
        fitted=fitted,
        design=d,
        observed=table.observed,
    )


def quick_bic(table: CountTable, pairs: tuple[Pair, ...]) -> float:
    """BIC of a model by a plain Newton/IRLS loop in numpy: only to rank models in the BIC search (a
    thousand of them for five lists); the chosen model is then fitted with statsmodels (``fit``)."""
    d = design(table, pairs)
    y = table.counts[d.rows].astype(np.float64)
    x = d.matrix
    beta = np.zeros(x.shape[1])
    beta[0] = math.log(max(y.mean(), 0.5))
    for _ in range(100):
        mu = np.exp(x @ beta)
        step = np.linalg.lstsq(x.T @ (mu[:, None] * x), x.T @ (y - mu), rcond=None)[0]
        beta += step
        if float(np.abs(step).max()) < 1e-10:
            break
    mu = np.exp(x @ beta)
    loglik = float((y * np.log(np.where(mu > 0, mu, 1.0)) - mu - gammaln(y + 1)).sum())
    n_params = int(x.shape[1]) + len(d.empty_pairs)
    return -2 * loglik + n_params * math.log(table.observed)
