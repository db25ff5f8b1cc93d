"""Multiple systems estimation checked against the published estimates, and its refusals.

The tables are the public ones in tests/fixtures/mse/ (copied from the team's shared test data, testdata/mse; see the
README there on the two New Orleans variants). Each pinned number says where it was published.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meldpunt.cli import app
from meldpunt.estimate import NoEstimate, TableError, estimate, read_csv
from meldpunt.estimate.models import Problem, check

MSE = Path(__file__).parent / "fixtures" / "mse"


def table(name: str):  # type: ignore[no-untyped-def]
    return read_csv((MSE / f"{name}.csv").read_text())


# (table, method, published total, published two-way terms, tolerance, where it was published)
PUBLISHED = [
    # Chan, Silverman & Vincent (2021) §4.1; MultipleSystemsEstimation tests/testthat/
    # test-published-point-estimates.R ("New Orleans stepwise fit ... 1184", D:E) on SparseMSE's NewOrl
    ("NewOrl_SparseMSE", "stepwise", 1184, ["D:E"], 1.0),
    # MultipleSystemsEstimation vignette reproduce-2021 (its NewOrl, one more case in C∩D): 1110.488, [45]
    ("NewOrl_MSE", "stepwise", 1110.488, ["D:E"], 0.01),
    # Chan, Silverman & Vincent (2021) §4.1: main effects only (thresholds 0.01 or less): 997
    ("NewOrl_SparseMSE", "main", 997, [], 1.0),
    # Chan, Silverman & Vincent (2021) §4.1, five lists: 1034; MultipleSystemsEstimation
    # test-published-point-estimates.R ("five-list New Orleans main-effects fit ... 1034")
    ("NewOrl_5_SparseMSE", "main", 1034, [], 1.0),
    # MultipleSystemsEstimation vignette reproduce-2021 (its NewOrl_5): stepwise selects nothing, 981.4314
    ("NewOrl_5_MSE", "stepwise", 981.4314, [], 0.01),
    # Chan, Silverman & Vincent (2021) §4.2; MultipleSystemsEstimation test-published-point-estimates.R
    # ("Western stepwise fit ... 2483", A:E); vignette reproduce-2021: 2483.384
    ("Western", "stepwise", 2483.384, ["A:E"], 0.01),
    # MultipleSystemsEstimation vignette reproduce-2021: estimate_population_stepwise(Korea) 268.7778, [12,3]
    ("Korea", "stepwise", 268.7778, ["b:c"], 0.01),
    # MultipleSystemsEstimation tests/testthat/test-model-selection.R: exhaustive BIC on Korea, best
    # "[12,23]", abundance 157.2 (downhill: 157.16667)
    ("Korea", "bic", 157.16667, ["b:c", "c:d"], 0.01),
    # MultipleSystemsEstimation test-model-selection.R: downhill_funs(Korea, maxorder = 1) point_est
    # 141.99264735066032 (main effects)
    ("Korea", "main", 141.99264735066032, [], 1e-4),
    # Silverman (2014), "Modern slavery: an application of multiple systems estimation", Home Office: the
    # UK's 2013 lists (PF and NCA merged), stepwise: 11,313 potential victims ("10,000 to 13,000")
    ("UKdat_5", "stepwise", 11313, ["LA:NG", "LA:PFNCA", "NG:GO", "NG:GP", "PFNCA:GP", "GO:GP"], 1.0),
]


@pytest.mark.parametrize(("name", "method", "published", "terms", "tol"), PUBLISHED)
def test_published_estimates_are_reproduced(
    name: str, method: str, published: float, terms: list[str], tol: float
) -> None:
    got = estimate(table(name), method, bootstrap=0)
    assert got.model == tuple(terms)
    assert got.total == pytest.approx(published, abs=tol)
    assert got.ci_low < got.total < got.ci_high
    assert got.hidden == pytest.approx(got.total - got.observed)


def test_artificial_3_existence_and_identifiability_match_the_paper() -> None:
    """Chan, Silverman & Vincent (2021) Tables 2-3; MultipleSystemsEstimation
    test-artificial-identifiability.R: checkident codes for every model of Artificial_3."""
    t = table("Artificial_3")
    ab, ac, bc = (0, 1), (0, 2), (1, 2)
    expected = {
        (): 0,
        (ab,): 1,
        (ac,): 0,
        (bc,): 0,
        (ab, ac): 1,
        (ab, bc): 1,
        (ac, bc): 0,
        (ab, ac, bc): 2,
    }
    assert {m: int(check(t, m)) for m in expected} == expected
    assert check(t, (ab,)) is Problem.NOT_EXIST


def test_main_effects_without_an_estimate_are_refused() -> None:
    # B is seen only together with A: under main effects the B-only cell would need an expected count of 0
    with pytest.raises(NoEstimate, match="does not exist"):
        estimate(read_csv("A,B,n\n1,0,5\n1,1,3\n"), "stepwise", bootstrap=0)


def test_a_list_that_overlaps_no_other_is_noted() -> None:
    t = table("Artificial_3")
    assert any(str(n).startswith("list C never overlaps any other list") for n in t.notes)


def test_no_estimate_is_refused_with_the_reason() -> None:
    with pytest.raises(NoEstimate, match="does not exist"):
        estimate(table("Artificial_3"), terms=["A:B"], bootstrap=0)
    with pytest.raises(NoEstimate, match="not identifiable"):
        estimate(table("Artificial_3"), terms=["A:B", "A:C", "B:C"], bootstrap=0)


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    t = table("Korea")
    a = estimate(t, "main", bootstrap=60, seed=7)
    b = estimate(t, "main", bootstrap=60, seed=7)
    assert a.boot is not None and a.boot == b.boot
    assert a.boot.low < a.total < a.boot.high
    # a time budget (the web page's) stops after at least 20 runs and says how many it made
    c = estimate(t, "main", bootstrap=60, seed=7, budget_s=0.0)
    assert c.boot is not None and c.boot.runs == 20


BAD = [
    ("", "empty"),
    ("A,B,n\n", "no rows"),
    ("A,n\n1,5\n", "single list"),
    ("A,B,n\n1,0,5\n0,1,3\n", "never overlap"),
    ("A,B,n\n1,0,5\n0,1\n", "row 3: 2 cells"),
    ("A,B,n\n1,0,5\n2,1,3\n", "row 3, list A: '2' is not 0 or 1"),
    ("A,B,n\n1,0,5\n1,1,-3\n", "row 3: the count -3 is negative"),
    ("A,B,n\n1,0,5\n1,1,2.5\n", "row 3: the count '2.5' is not a whole number"),
    ("A,B,n\n1,0,5\n0,0,7\n1,1,1\n", "row 3: the pattern is on no list"),
    ("A,A,n\n1,0,5\n", "list names must differ"),
]


@pytest.mark.parametrize(("text", "said"), BAD)
def test_bad_tables_are_refused_with_the_row(text: str, said: str) -> None:
    with pytest.raises(TableError, match=said.replace("(", r"\(")):
        read_csv(text)


def test_duplicate_patterns_are_added_and_said() -> None:
    t = read_csv("A;B;n\n1;0;5\n0;1;3\n1;1;2\n1;0;4\n")
    assert t.counts.tolist()[:3] == [9, 3, 2]
    assert [str(n) for n in t.notes] == ["rows 2 and 5 have the same pattern (A): their counts were added"]


def test_cli_json_line(tmp_path: Path) -> None:
    out = CliRunner().invoke(
        app, ["estimate", str(MSE / "Western.csv"), "--json", "--bootstrap", "20", "--seed", "3"]
    )
    assert out.exit_code == 0, out.output
    line = json.loads(out.stdout.strip())
    assert line["method"] == "stepwise" and line["model"] == ["A:E"]
    assert round(line["total"]) == 2483 and line["observed"] + line["hidden"] == pytest.approx(
        line["total"], abs=0.02
    )
    assert line["ci_low"] < line["total"] < line["ci_high"] and line["boot_runs"] == 20


def test_cli_text_and_refusals(tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["estimate", str(MSE / "Korea.csv"), "--method", "main", "--bootstrap", "0"])
    assert out.exit_code == 0 and "total:     142.0" in out.stdout
    out = runner.invoke(app, ["estimate", str(MSE / "Artificial_3.csv"), "--term", "A:B"])
    assert out.exit_code == 2 and "does not exist" in " ".join(out.output.split())
    bad = tmp_path / "bad.csv"
    bad.write_text("A,B,n\n1,0,5\n1,x,3\n")
    out = runner.invoke(app, ["estimate", str(bad)])
    assert out.exit_code == 2 and "row 3, list B" in " ".join(out.output.split())
    out = runner.invoke(app, ["estimate", str(MSE / "Korea.csv"), "--method", "best"])
    assert out.exit_code == 2
