"""``meldpunt links ...``: link analysis upkeep — read the descriptions of reports taken in before
it existed, and delete entities no report or item holds any more."""

from __future__ import annotations

import typer

from meldpunt.cli.common import command_group, state

app = command_group("Link analysis: backfill old reports, prune orphaned entities.")


@app.command("backfill")
def backfill_command(ctx: typer.Context) -> None:
    """Queue the entity job of every report with a description (a worker runs them; twice is
    harmless). Pages fetched before cannot be read again: their text was never kept."""
    from meldpunt.links import backfill

    n = backfill(state(ctx).services)
    typer.echo(f"{n} report(s) queued for entity extraction; run 'meldpunt worker' to read them")


@app.command("prune")
def prune_command(ctx: typer.Context) -> None:
    """Delete the entities whose every report and item is gone (workers also do this hourly)."""
    from meldpunt.links import prune

    typer.echo(f"{prune(state(ctx).services)} orphaned entities deleted")
