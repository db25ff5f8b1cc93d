"""``meldpunt evidence ...``: list media kept as evidence, export one (audited), purge expired ones."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from meldpunt.cli.common import EXIT_FAILED, cli_actor, command_group, state, stderr, usage_error
from meldpunt.cli.scan import _render

if TYPE_CHECKING:
    from meldpunt.stores.evidence import EvidenceStore

app = command_group("The evidence store: list, export (audited), purge what is past retention.")


def _store(ctx: typer.Context) -> EvidenceStore:
    from meldpunt.stores.review import StoreKeyError

    try:
        return state(ctx).services.evidence_store
    except StoreKeyError as e:
        usage_error(str(e))


@app.command("list")
def list_command(
    ctx: typer.Context,
    item: Annotated[int | None, typer.Option("--item", help="Only the media of this item.")] = None,
    expired: Annotated[bool, typer.Option("--expired", help="Only what is past its retention now.")] = False,
) -> None:
    """What is kept, oldest first: medium, item, why, by whom, when, until when (no bytes are read)."""
    store = _store(ctx)
    with state(ctx).services.engine.connect() as conn:
        found = store.list(
            conn, item_id=item, expired_at=state(ctx).services.clock.now() if expired else None
        )
    table = Table("medium", "item", "reason", "kept by", "kept at (UTC)", "retain until (UTC)", "sha256")
    for r in found:
        table.add_row(
            str(r.medium_id),
            str(r.item_id),
            ",".join(r.reason),
            r.kept_by,
            r.kept_at.strftime("%Y-%m-%d %H:%M"),
            r.retain_until.strftime("%Y-%m-%d"),
            r.sha256,
        )
    typer.echo(_render(table) if found else "no media kept as evidence")


@app.command("export")
def export_command(
    ctx: typer.Context,
    medium_id: Annotated[int, typer.Argument(help="The medium's id (see 'meldpunt evidence list').")],
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write (new; created mode 0600).")],
    purpose: Annotated[
        str,
        typer.Option("--purpose", help="Why it is exported (recorded in the audit log), e.g. a case number."),
    ],
) -> None:
    """Write the medium's decrypted bytes to a new file readable by you alone; the audit log records
    who, which medium, why and where, in the same transaction as the read."""
    from meldpunt.stores.evidence import EvidenceKeyError

    if not purpose.strip():
        usage_error("--purpose must say why the evidence is exported")
    store = _store(ctx)
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        usage_error(f"{out} exists: export to a new file")
    except OSError as e:
        usage_error(f"cannot create {out}: {e}")
    written = False
    try:
        with os.fdopen(fd, "wb") as f, state(ctx).services.engine.begin() as conn:
            data = store.get(
                conn, medium_id, actor=cli_actor(), purpose=purpose, details={"export": str(out.resolve())}
            )
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            written = True
    except KeyError:
        usage_error(f"no evidence kept for medium {medium_id}")
    except EvidenceKeyError as e:
        stderr.print(f"[red]error:[/] {e}")
        raise typer.Exit(EXIT_FAILED) from None
    finally:
        if not written:
            out.unlink(missing_ok=True)
    stderr.print(
        f"exported medium [bold]{medium_id}[/] ({len(data):,} bytes) to {out}; the export is audited"
    )


@app.command("purge")
def purge_command(ctx: typer.Context) -> None:
    """Delete every blob past its retention (settings.evidence_retention_days after it was kept);
    one audit event names them."""
    store = _store(ctx)
    with Progress(
        SpinnerColumn(),
        TextColumn("purging expired evidence"),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    ) as bar:
        bar.add_task("purge", total=None)
        with state(ctx).services.engine.begin() as conn:
            n = store.purge_expired(conn, state(ctx).services.clock.now(), actor=cli_actor())
    typer.echo(f"purged {n} expired evidence blob{'' if n == 1 else 's'}")
