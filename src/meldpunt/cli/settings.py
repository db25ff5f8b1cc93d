"""``meldpunt settings``: every setting, its variable, its value and where that value came from."""

from __future__ import annotations

from typing import Annotated

import typer

from meldpunt.cli.common import state
from meldpunt.settings import Settings, show


def settings_command(
    ctx: typer.Context,
    changed: Annotated[
        bool, typer.Option("--changed", help="Only the settings not left at their default.")
    ] = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="The reference page (docs/settings.md) instead.")
    ] = False,
) -> None:
    """List every setting: its name, value (secrets only as set or not), unit, where the value came
    from (default, an environment variable, the command line) and what it does."""
    if markdown:
        from meldpunt.settings.docs import markdown as page

        typer.echo(page(), nl=False)
        return
    s = state(ctx)
    for row in Settings.table():
        source = s.sources.get(row.name)
        if changed and source is None:
            continue
        unit = f" {row.unit}" if row.unit and row.unit != "bits" else ""
        where = "default" if source is None else f"set by {source}"
        typer.echo(f"{row.name} = {show(row, s.settings.value(row.name))}{unit}  [{row.env}, {where}]")
        typer.echo(f"    {row.help}")
