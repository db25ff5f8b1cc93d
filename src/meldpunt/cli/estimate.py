"""``meldpunt estimate FILE.csv``: multiple systems estimation of the number no list saw.

Needs no database: the count table is the whole input. Text on stdout by default; ``--json`` prints one
JSON line instead. Bad tables and tables without an estimate exit 2 with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from meldpunt.cli.common import usage_error
from meldpunt.estimate import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_SEED,
    METHODS,
    Estimate,
    NoEstimate,
    TableError,
    estimate,
    read_csv,
)

#: a count table is small: 2**12 patterns at most
MAX_BYTES = 4 * 1024 * 1024


def estimate_command(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV count table: one 0/1 column per list (the header names the lists) and a last column "
            "with the number of people seen on exactly that combination of lists.",
            show_default=False,
        ),
    ],
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="Model selection: stepwise (SparseMSE's, p < 0.02), bic (lowest BIC of the models with "
            "two-way interactions) or main (main effects only).",
        ),
    ] = "stepwise",
    terms: Annotated[
        list[str] | None,
        typer.Option(
            "--term", help="Fit this model instead of selecting one: a two-way term such as A:B (repeat)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON line instead of text.")] = False,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", min=0, max=100_000, help="Parametric bootstrap runs (0: none).")
    ] = DEFAULT_BOOTSTRAP,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")] = DEFAULT_SEED,
) -> None:
    """Estimate the total number of victims, seen and unseen, from how the lists overlap."""
    if method not in METHODS:
        usage_error(f"--method must be one of {', '.join(METHODS)}, not {escape(method)!r}")
    try:
        if file.stat().st_size > MAX_BYTES:
            usage_error(
                f"{escape(str(file))} is larger than {MAX_BYTES // 1024 // 1024} MiB: not a count table"
            )
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        usage_error(f"cannot read {escape(str(file))}: {escape(str(e))}")
    try:
        table = read_csv(text)
        result = estimate(table, method, terms=terms or None, bootstrap=bootstrap, seed=seed)
    except TableError as e:
        usage_error(f"{escape(str(file))}: {escape(str(e))}")
    except NoEstimate as e:
        usage_error(f"{escape(str(file))}: no estimate: {escape(str(e))}")
    if as_json:
        typer.echo(json.dumps(result.as_json(), ensure_ascii=False))
    else:
        typer.echo(text_report(result))


def text_report(r: Estimate) -> str:
    lines = [
        f"lists:     {', '.join(r.lists)}",
        f"method:    {r.method}",
        f"model:     main effects{''.join(' + ' + t for t in r.model) or ' only'}",
    ]
    if r.empty_terms:
        lines.append(f"           ({', '.join(r.empty_terms)}: the lists never overlap; the term is -inf)")
    lines += [
        f"observed:  {r.observed}",
        f"hidden:    {r.hidden:.1f}",
        f"total:     {r.total:.1f}",
        f"95% CI:    {r.ci_low:.1f} - {r.ci_high:.1f} (profile likelihood, given the model)",
    ]
    if r.boot is not None:
        lines.append(
            f"95% CI:    {r.boot.low:.1f} - {r.boot.high:.1f} (parametric bootstrap, {r.boot.runs} runs, "
            f"model re-selected each run, seed {r.boot.seed}"
            + (f", {r.boot.failed} runs without an estimate counted as infinite" if r.boot.failed else "")
            + ")"
        )
    lines += [f"note:      {n}" for n in r.notes]
    return "\n".join(lines)
