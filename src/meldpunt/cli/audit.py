"""``meldpunt audit ...``: verify the audit log's hash chain, print its head, list its entries."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from meldpunt.cli.common import EXIT_FAILED, command_group, state, stderr, usage_error

app = command_group(help="The tamper-evident audit log: verify, checkpoint, list.")


@app.command("verify")
def verify_command(
    ctx: typer.Context,
    checkpoint: Annotated[
        str | None,
        typer.Option(
            "--checkpoint",
            help="A line printed earlier by 'meldpunt audit checkpoint': also detects entries cut "
            "from the end since then.",
        ),
    ] = None,
) -> None:
    """Walk the whole chain: exit 0 when intact, 1 naming the first bad sequence number when not."""
    from meldpunt.audit import Checkpoint

    cp = None
    if checkpoint is not None:
        try:
            cp = Checkpoint.parse(checkpoint)
        except ValueError as e:
            usage_error(str(e))
    result = state(ctx).services.audit.verify(cp)
    if result.ok:
        against = f", matches checkpoint {cp.seq}" if cp is not None else ""
        typer.echo(f"ok: {result.entries} entries, head {result.head}{against}")
        return
    first = result.first
    assert first is not None
    typer.echo(f"BROKEN at seq {first.seq}: {first.kind}: {first.message}")
    for p in result.problems[1:]:
        typer.echo(f"  also {p}")
    if result.more:
        typer.echo("  (more problems not listed)")
    stderr.print(f"[red]the audit log is not intact[/]: {len(result.problems)} problem(s)")
    raise typer.Exit(EXIT_FAILED)


@app.command("checkpoint")
def checkpoint_command(ctx: typer.Context) -> None:
    """Print the head (sequence number and hash) as one line to keep elsewhere, for
    'verify --checkpoint'. Run 'verify' first: a checkpoint vouches for nothing by itself."""

    typer.echo(str(state(ctx).services.audit.checkpoint()))


@app.command("list")
def list_command(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="The newest N entries.")] = 50,
    actor: Annotated[str | None, typer.Option("--actor", help="Only this actor's entries.")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="Only this action, or a prefix with '*': 'bank.*'.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
) -> None:
    """Print entries, oldest first: sequence number, UTC time, actor, action, subject, details."""
    from meldpunt.audit import canonical_time

    found = state(ctx).services.audit.entries(limit=limit, actor=actor, action=action, newest=True)
    for e in found:
        if as_json:
            typer.echo(json.dumps(e.as_dict(), ensure_ascii=False))
        else:
            typer.echo(
                "\t".join([str(e.seq), canonical_time(e.at), e.actor, e.action, e.subject, e.details_json])
            )
