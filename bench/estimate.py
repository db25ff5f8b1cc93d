"""The BIC model search of multiple systems estimation on the published 5-list tables: the exhaustive
search as built (models ranked by a plain numpy Poisson fit, existence checked once per "top" model)
against the same search with every model fitted by statsmodels and checked by its own linear program
(the plain way), from the same run; and the greedy search used beyond 5 lists, on the same tables.

    .venv/bin/python bench/estimate.py [--tables Western,UKdat_5]

Both exhaustive searches must pick the same model; the greedy one may not (it says so).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from meldpunt.estimate import read_csv
from meldpunt.estimate import select as S
from meldpunt.estimate.models import Fit, Problem, check, fit
from meldpunt.estimate.table import CountTable, pairs

TABLES = Path(__file__).parent.parent / "tests" / "fixtures" / "mse"


def plain_exhaustive(table: CountTable) -> Fit:
    best: Fit | None = None
    for model in S._subsets(pairs(len(table.names))):
        if check(table, model) is not Problem.NONE:
            continue
        f = fit(table, model)
        if best is None or f.bic() < best.bic() - 1e-9:
            best = f
    assert best is not None
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="Western,NewOrl_5_SparseMSE,UKdat_5")
    args = parser.parse_args()
    out = Table("table", "search", "seconds", "total", "model", "BIC", "vs plain")
    for name in args.tables.split(","):
        table = read_csv((TABLES / f"{name}.csv").read_text())
        t0 = time.perf_counter()
        plain = plain_exhaustive(table)
        plain_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours = S._exhaustive(table, pairs(len(table.names)))
        ours_s = time.perf_counter() - t0
        saved = S.EXHAUSTIVE_LISTS
        S.EXHAUSTIVE_LISTS = 0
        t0 = time.perf_counter()
        greedy = S.lowest_bic(table)
        greedy_s = time.perf_counter() - t0
        S.EXHAUSTIVE_LISTS = saved
        for label, f, s in (
            ("plain exhaustive", plain, plain_s),
            ("exhaustive", ours, ours_s),
            ("greedy", greedy, greedy_s),
        ):
            terms = " ".join(table.term(p) for p in sorted(f.pairs)) or "-"
            same = "same model" if sorted(f.pairs) == sorted(plain.pairs) else "OTHER MODEL"
            out.add_row(
                name,
                label,
                f"{s:.1f}",
                f"{f.total:.1f}",
                terms,
                f"{f.bic():.3f}",
                f"{plain_s / s:.1f}x, {same}",
            )
    Console(width=170).print(out)


if __name__ == "__main__":
    main()
