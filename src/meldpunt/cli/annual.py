"""``meldpunt report annual --year 2026``: the year's figures as a self-contained HTML file and a
PDF, shaped like a hotline's annual report (#13); the same figures as the statistics page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from meldpunt.cli.common import audit, command_group, state, stderr, usage_error

app = command_group("Reports of the hotline's figures (see 'annual').")

STEPS = {
    "figures": "computing the figures",
    "html": "drawing the charts and writing the HTML",
    "pdf": "writing the PDF",
}


@app.command("annual")
def annual_command(
    ctx: typer.Context,
    year: Annotated[int, typer.Option("--year", help="The calendar year (UTC) to report on.")],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder to write annual-report-YEAR.html and .pdf into."),
    ] = Path("."),
) -> None:
    """Write the year's annual report: title page, key figures, charts, tables and method notes, as
    one HTML file (no link out: SVG charts and CSS inline) and a PDF. Prints both paths."""
    from meldpunt.act import annual

    if not 1970 <= year <= 9998:
        usage_error(f"no such year: {year}")
    if out.exists() and not out.is_dir():
        usage_error(f"{out} is not a folder")
    services = state(ctx).services
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=stderr, transient=True
    ) as progress:
        task = progress.add_task(f"annual report {year}", total=len(STEPS))

        def step(name: str) -> None:
            progress.update(
                task,
                description=f"annual report {year}: {STEPS[name]}",
                advance=0 if name == "figures" else 1,
            )

        try:
            made = annual.write(
                services.engine,
                year,
                out,
                hotline=services.settings.web.hotline_name,
                now=services.clock.now(),
                progress=step,
            )
        except OSError as e:
            usage_error(f"cannot write the report: {e}")
        progress.update(task, completed=len(STEPS))
    audit(
        ctx,
        "report.annual",
        f"report:{year}",
        html=str(made.html),
        pdf=str(made.pdf),
        empty=made.figures.empty,
    )
    if made.figures.empty:
        stderr.print(f"[yellow]no data for {year}[/]: the report says so")
    typer.echo(f"html: {made.html}")
    typer.echo(f"pdf:  {made.pdf}")
