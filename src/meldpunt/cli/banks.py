"""``meldpunt bank ...``: import, export, list, show, configure and delete hash lists."""

from __future__ import annotations

import hashlib
import io
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from meldpunt.banks.formats import FORMATS, HashRecord, detect_format, get_format
from meldpunt.cli.common import EXIT_FAILED, audit, cli_actor, command_group, state, stderr, usage_error
from meldpunt.cli.scan import _render
from meldpunt.cli.terminal import markup_safe, printable
from meldpunt.domain import LabelError, Labels
from meldpunt.domain.signals import InvalidSignal, signal_type_from_name
from meldpunt.triage.banks import POLICIES, BankError, BankService, ImportRejected

app = command_group(help="Hash lists (banks): import, export, list, show, set, delete.")

FORMAT_HELP = f"List format: {', '.join(FORMATS)} (default: detected from the file)."
POLICY_HELP = (
    "What a match in this bank does: auto (classifies the item with the entry's labels), hint "
    "(shows analysts a hint; they decide) or ignore (a list of known benign files). Required for a "
    "new bank."
)


def _service(ctx: typer.Context) -> BankService:
    """The bank service, with its rules (the hotline's own bank is not deleted)."""
    services = state(ctx).services
    return BankService(services.banks, services.settings.triage.own_bank)


def _audit(ctx: typer.Context, action: str, name: str, **details: object) -> None:
    audit(ctx, action, f"bank:{name}", **details)


class _Sha256Reader(io.RawIOBase):
    """Reads a file while hashing every byte, so provenance costs no second pass."""

    def __init__(self, fp: BinaryIO) -> None:
        self.fp = fp
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.fp.read(len(b))
        n = len(data)
        b[:n] = data
        self.digest.update(data)
        return n


@app.command("import")
def import_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Bank name (created if new).")],
    file: Annotated[Path, typer.Argument(help="The list file ('-' for standard input).")],
    fmt: Annotated[str | None, typer.Option("--format", "-f", help=FORMAT_HELP)] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label", "-l", help="KEY=VALUE label for every entry (repeatable); the file's own win."
        ),
    ] = None,
    signal_type: Annotated[
        str | None,
        typer.Option(
            "--type", "-t", help="Signal type of a plain list (e.g. pdq: 64 hex is SHA-256 unless told)."
        ),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the bank's entries instead of adding.")
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Reject the whole file on any malformed line.")
    ] = False,
    policy: Annotated[str | None, typer.Option("--policy", help=POLICY_HELP)] = None,
    description: Annotated[str | None, typer.Option("--description", help="Bank description.")] = None,
    threshold: Annotated[
        int | None, typer.Option("--pdq-threshold", help="The bank's own PDQ match distance (bits).")
    ] = None,
) -> None:
    """Import a hash list into a bank, in one transaction: all of it, or (with --strict) nothing.

    A new bank needs --policy: what a match does is a decision, never a default (a benign list
    imported as "auto" would classify its matches and tell reporters "action taken")."""
    services = state(ctx).services
    try:
        labels = Labels.from_options(label or [])
        st = signal_type_from_name(signal_type) if signal_type else None
    except (LabelError, InvalidSignal) as e:
        usage_error(markup_safe(e))
    if policy is not None and policy not in POLICIES:
        usage_error(f"--policy must be one of {', '.join(POLICIES)}, not {markup_safe(repr(policy))}")
    if policy is None and name not in services.banks.bank_settings():
        usage_error(
            f"bank {markup_safe(repr(name))} is new: choose its policy with --policy "
            f"{' | '.join(POLICIES)} (auto: a match classifies the item; hint: analysts see a "
            "hint and decide; ignore: a list of known benign files). Nothing was imported."
        )
    if str(file) != "-" and not file.is_file():
        usage_error(f"no such file: {markup_safe(file)}")
    raw: BinaryIO = sys.stdin.buffer if str(file) == "-" else file.open("rb")
    with raw:
        reader = _Sha256Reader(raw)
        stream: BinaryIO = io.BufferedReader(reader, buffer_size=1 << 20)  # type: ignore[arg-type]
        if fmt is None:
            fmt = detect_format(stream.peek(4096)[:4096], file.name)  # type: ignore[attr-defined]
        try:
            list_format = get_format(fmt)
        except (KeyError, ValueError) as e:
            usage_error(markup_safe(e))
        records = list_format.read(stream, signal_type=st, labels=labels)

        with Progress(
            SpinnerColumn(),
            TextColumn("importing into [bold]{task.fields[bank]}[/]: {task.completed:,} entries"),
            TimeElapsedColumn(),
            console=stderr,
            transient=True,
            disable=not stderr.is_terminal,
        ) as bar:
            task = bar.add_task("import", total=None, bank=markup_safe(name))
            try:
                result = _service(ctx).import_list(
                    name,
                    _drain_digest(records, stream),
                    actor=cli_actor(),
                    list_format=list_format.name,
                    source_name=str(file),
                    source_sha256="",
                    labels=labels,
                    replace=replace,
                    strict=strict,
                    policy=policy,
                    description=description,
                    pdq_threshold=threshold,
                    progress=lambda n: bar.advance(task, n),
                    digest=reader.digest,
                )
            except ImportRejected as e:
                stderr.print(f"[red]rejected:[/] {markup_safe(e)}")
                raise typer.Exit(EXIT_FAILED) from None
            except (BankError, ValueError) as e:
                stderr.print(f"[red]error:[/] {markup_safe(e)}; nothing was imported")
                raise typer.Exit(EXIT_FAILED) from None
    if result.by_type.get("pdq"):
        # Bring the saved PDQ index up to date now, so the next scan starts matching at once.
        with Progress(
            SpinnerColumn(),
            TextColumn("updating the PDQ index: {task.completed:,} hashes"),
            console=stderr,
            transient=True,
            disable=not stderr.is_terminal,
        ) as bar:
            task = bar.add_task("index", total=None)
            services.pdq_index(lambda n: bar.advance(task, n))
    for err in result.errors[:50]:
        stderr.print(
            f"[yellow]line {err.line}:[/] {markup_safe(err.message)}"
            + (f"  [dim]{markup_safe(err.text)}[/]" if err.text else "")
        )
    if result.skipped > 50:
        stderr.print(f"… and {result.skipped - 50:,} more malformed line(s)")
    if result.unsupported:
        kinds = ", ".join(f"{markup_safe(k)} {v:,}" for k, v in sorted(result.unsupported.items()))
        stderr.print(f"[yellow]skipped signal types meldpunt does not match:[/] {kinds}")
    if not result.entries:
        stderr.print(
            "[red]nothing imported:[/] the file holds no hash meldpunt can match; "
            + ("the bank is as it was" if name in services.banks.bank_settings() else "no bank was created")
        )
        raise typer.Exit(EXIT_FAILED)
    kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(result.by_type.items()))
    stderr.print(
        f"imported {result.entries:,} entr{'y' if result.entries == 1 else 'ies'} into "
        f"[bold]{markup_safe(name)}[/]"
        + (f" ({kinds})" if kinds else "")
        + (f"; skipped {result.skipped:,} malformed line(s)" if result.skipped else "")
    )


def _drain_digest(records: Iterable[object], stream: BinaryIO) -> Iterator[object]:
    """Yield the records, then read what the parser left so the SHA-256 covers the whole file."""
    yield from records
    while stream.read(1 << 20):
        pass


@app.command("export")
def export_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Bank name.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help=f"List format: {', '.join(FORMATS)}.")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Export a bank's entries with every label the format can carry."""
    services = state(ctx).services
    try:
        list_format = get_format(fmt)
        services.banks.get_bank(name)
    except (KeyError, ValueError) as e:
        usage_error(markup_safe(e))
    records = (
        HashRecord(st, value, labels, 0, media)
        for st, value, labels, media in services.banks.export_groups(name)
    )
    if output is None:
        n = list_format.write(records, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    else:
        with output.open("wb") as fp:
            n = list_format.write(records, fp)
    _audit(ctx, "bank.export", name, entries=n, format=list_format.name, output=str(output or "-"))
    stderr.print(
        f"exported {n:,} entr{'y' if n == 1 else 'ies'} from [bold]{markup_safe(name)}[/] as {list_format.name}"
    )


@app.command("list")
def list_command(ctx: typer.Context) -> None:
    """The banks, their policies, PDQ thresholds (the bank's own, or the default it uses) and sizes."""
    services = state(ctx).services
    banks = services.banks.list_banks()
    default = services.settings.pdq_threshold
    table = Table("bank", "policy", "pdq threshold", "entries", "by type", "description")
    for b in banks:
        table.add_row(
            Text(printable(b.name)),
            b.policy,
            f"{default} (default)" if b.pdq_threshold is None else str(b.pdq_threshold),
            f"{b.entries:,}",
            ", ".join(f"{k} {v:,}" for k, v in b.by_type.items()),
            Text(printable(b.description)),
        )
    typer.echo(
        _render(table) if banks else "no banks yet: meldpunt bank import --policy auto|hint|ignore NAME FILE"
    )


@app.command("show")
def show_command(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Bank name.")]) -> None:
    """One bank: policy, threshold, counts by signal type and the provenance of every import."""
    services = state(ctx).services
    try:
        b = services.banks.get_bank(name)
    except BankError as e:
        usage_error(markup_safe(e))
    typer.echo(f"bank:          {printable(b.name)}")
    typer.echo(f"description:   {printable(b.description)}")
    typer.echo(f"policy:        {b.policy}")
    typer.echo(f"pdq threshold: {b.pdq_threshold if b.pdq_threshold is not None else 'default'}")
    typer.echo(f"entries:       {b.entries:,}")
    for k, v in b.by_type.items():
        typer.echo(f"  {k:<11} {v:,}")
    typer.echo("imports:")
    for imp in services.banks.imports(name):
        when = imp["imported_at"].strftime("%Y-%m-%d %H:%M:%S") if imp["imported_at"] else "?"
        extra = (", replaced the bank" if imp["replaced"] else "") + (
            f", labels {printable(imp['labels'])}" if imp["labels"] != "{}" else ""
        )
        typer.echo(
            f"  #{imp['id']} {when} {printable(imp['format'])}: {imp['entry_count']:,} entries, "
            f"{imp['skipped_count']:,} skipped{extra}\n      from {printable(imp['source_name'])}"
            f"\n      sha256 {imp['source_sha256']}"
        )


@app.command("set")
def set_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Bank name.")],
    policy: Annotated[str | None, typer.Option("--policy", help=f"{', '.join(POLICIES)}.")] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    threshold: Annotated[
        int | None, typer.Option("--pdq-threshold", help="PDQ match distance (bits).")
    ] = None,
) -> None:
    """Change a bank's policy, description or PDQ threshold."""
    try:
        state(ctx).services.banks.configure(
            name, policy=policy, description=description, pdq_threshold=threshold
        )
    except BankError as e:
        usage_error(markup_safe(e))
    changed = {"policy": policy, "description": description, "pdq_threshold": threshold}
    _audit(ctx, "bank.set", name, **{k: v for k, v in changed.items() if v is not None})
    stderr.print(f"updated [bold]{markup_safe(name)}[/]")


@app.command("delete")
def delete_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Bank name.")],
) -> None:
    """Delete a bank and all its entries."""
    try:
        n = _service(ctx).delete(name)
    except BankError as e:
        usage_error(markup_safe(e))
    _audit(ctx, "bank.delete", name, entries=n)
    stderr.print(f"deleted bank [bold]{markup_safe(name)}[/] and its {n:,} entr{'y' if n == 1 else 'ies'}")
