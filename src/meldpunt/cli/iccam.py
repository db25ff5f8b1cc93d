"""``meldpunt iccam ...``: the ICCAM bridge by hand — export now (a backfill with ``--since``), import
now, and the bridge's status (what is planned, sent, failed and why). Every run is audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from meldpunt.act import iccam, iccam_import
from meldpunt.cli.common import audit, command_group, state, stderr, usage_error
from meldpunt.cli.terminal import printable
from meldpunt.iccam.client import IccamError
from meldpunt.iccam.mapping import MappingError

app = command_group(
    help="The ICCAM bridge: export classified items and their actions, import ICCAM's reports."
)


def _since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        usage_error(f"--since: not a date or time (like 2026-11-01 or 2026-11-01T08:00): {text!r}")
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _need_bridge(ctx: typer.Context) -> None:
    if not iccam.enabled(state(ctx).services.settings):
        usage_error("the ICCAM bridge is off: set iccam.url (MELDPUNT_ICCAM_URL) and its credentials")


@app.command("export")
def export_command(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(help="Export items classified since this date (default: iccam.export_window_days)."),
    ] = None,
) -> None:
    """Plan what ICCAM has not heard yet and send it now, in order per item; what cannot go now
    (ICCAM busy, a retry's wait) stays planned for the worker."""
    _need_bridge(ctx)
    services = state(ctx).services
    start = _since(since)
    if start is None:
        start = services.clock.now() - timedelta(days=services.settings.iccam.export_window_days)
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=stderr,
            transient=True,
        ) as bar:
            task = bar.add_task("exporting to ICCAM", total=None)
            outcomes = iccam.export_now(
                services,
                since=start,
                progress=lambda word: bar.update(task, advance=1, description=f"last: {word}"),
            )
    except MappingError as e:
        usage_error(str(e))
    audit(ctx, "iccam.export", "iccam", since=start.isoformat(), **outcomes)
    typer.echo(", ".join(f"{n} {w}" for w, n in sorted(outcomes.items())) or "nothing to export")
    if outcomes.get("failed"):
        typer.echo("see `meldpunt iccam status` for why")


@app.command("import")
def import_command(ctx: typer.Context) -> None:
    """Take the reports in ICCAM's queue for this hotline into the walk, and new actions on
    imported ones onto their timelines. Running it twice adds nothing twice."""
    _need_bridge(ctx)
    services = state(ctx).services
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=stderr,
            transient=True,
        ) as bar:
            task = bar.add_task("importing from ICCAM", total=None)
            result = iccam_import.run_import(services, progress=lambda: bar.update(task, advance=1))
    except (IccamError, MappingError) as e:
        audit(ctx, "iccam.import", "iccam", error=str(e)[:500])
        stderr.print(f"[red]error:[/] {printable(e)}")
        raise typer.Exit(1) from None
    audit(
        ctx, "iccam.import", "iccam", imported=result.imported, known=result.known, actions=result.actions,
        errors=len(result.errors or []),
    )  # fmt: skip
    typer.echo(f"imported {result.imported}, already here {result.known}, actions {result.actions}")
    for error in result.errors or []:
        typer.echo(f"error: {printable(error)}")


@app.command("status")
def status_command(ctx: typer.Context) -> None:
    """What is planned, sent and failed (with ICCAM's reason), and the import's last error."""
    services = state(ctx).services
    st = iccam.status(services)
    on = "on" if iccam.enabled(services.settings) else "off (iccam.url is empty)"
    typer.echo(f"bridge: {on}")
    typer.echo(
        "exports: " + (", ".join(f"{n} {s}" for s, n in sorted(st.counts.items())) or "none")
        + f"; items in ICCAM: {st.exported} exported, {st.imported} imported"
    )  # fmt: skip
    if st.next_import_at:
        typer.echo(f"next import poll: {st.next_import_at}")
    if st.import_error:
        typer.echo(f"last import error: {printable(st.import_error)}")
    for f in st.failed:
        typer.echo(f"failed: item {f.item_id} {f.what} after {f.attempts} attempt(s): {printable(f.reason)}")
