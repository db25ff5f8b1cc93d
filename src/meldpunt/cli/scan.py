"""``meldpunt hash`` and ``meldpunt scan``: files in, JSON lines (or a table) out."""

from __future__ import annotations

import io
import json
import shutil
import sys
from collections import Counter
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from meldpunt.cli.common import EXIT_FAILED, EXIT_OK, State, state, stderr, usage_error
from meldpunt.cli.terminal import markup_safe, printable
from meldpunt.signals import Signals, hash_files
from meldpunt.signals.batch import expand_paths

if TYPE_CHECKING:
    from meldpunt.bootstrap import Services
    from meldpunt.pipeline.matching import Match


class OutputFormat(StrEnum):
    json = "json"
    table = "table"


def progress_bar(what: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{what}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    )


def _hashed(st: State, paths: list[Path], what: str, dihedral: bool, every_frame: bool) -> Iterator[Signals]:
    files = list(expand_paths(paths))
    with progress_bar(what) as bar:
        task = bar.add_task(what, total=len(files))
        for s in hash_files(files, st.settings, dihedral=dihedral, every_frame=every_frame):
            yield s
            bar.advance(task)


def _emit(record: dict[str, Any]) -> None:
    typer.echo(json.dumps(record, ensure_ascii=False))


def hash_command(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files or directories (recursed).", show_default=False)],
    dihedral: Annotated[
        bool, typer.Option("--dihedral", help="Add the 8 rotation/flip PDQ variants.")
    ] = False,
    every_frame: Annotated[
        bool, typer.Option("--every-frame", help="vPDQ: hash every video frame, not one a second.")
    ] = False,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="json: JSON lines; table: for people.")] = (
        OutputFormat.json
    ),
) -> None:
    """Hash files: size, MD5, SHA-1, SHA-256; PDQ for images; vPDQ frames for videos.

    One JSON line per file on stdout. Exit 0 when every file was read, 1 when any failed."""
    st = state(ctx)
    failed = 0
    rows: list[Signals] = []
    for s in _hashed(st, paths, "hashing", dihedral, every_frame):
        failed += s.error is not None
        if fmt is OutputFormat.json:
            _emit(s.to_json_dict())
        else:
            rows.append(s)
    if fmt is OutputFormat.table:
        table = Table("file", "size", "kind", "sha256", "pdq", "q", "error")
        for s in rows:
            table.add_row(
                s.path,
                f"{s.size:,}",
                str(s.kind),
                s.sha256[:16] + "…",
                _pdq_cell(s),
                "" if s.pdq_quality is None else str(s.pdq_quality),
                s.error or ("truncated: hashed from the part that decodes" if s.truncated else ""),
            )
        typer.echo(_render(table))
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


def _pdq_cell(s: Signals) -> str:
    """The PDQ hash (shortened); an EXIF-oriented photo's stored-pixel hash on a second line."""
    if s.pdq is None:
        return "vpdq×" + str(len(s.vpdq)) if s.vpdq else ""
    cell = s.pdq[:16] + "…"
    if s.pdq_stored is not None:
        cell += f"\nstored (orientation {s.orientation}): {s.pdq_stored[:16]}…"
    return cell


def _render(table: Table) -> str:
    """A table as plain text for stdout (its width: the terminal's, or 160 columns in a pipe)."""
    from rich.console import Console

    width = shutil.get_terminal_size((160, 40)).columns if sys.stdout.isatty() else 160
    out = io.StringIO()
    Console(width=width, file=out).print(table)
    return out.getvalue().rstrip()


def scan_command(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files or directories (recursed).", show_default=False)],
    bank: Annotated[
        list[str] | None,
        typer.Option("--bank", "-b", help="Match against this bank (repeatable); default all."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per file on stdout.")] = False,
    dihedral: Annotated[
        bool, typer.Option("--dihedral", help="Also match rotated and flipped copies of images.")
    ] = False,
) -> None:
    """Hash files and match them against hash lists: exact hashes, PDQ and vPDQ.

    A summary goes to stderr; with --json, one line per file on stdout. Exit 0 when every file was
    read, 1 when any failed."""
    st = state(ctx)
    banks = list(bank or [])
    services = st.services
    with progress_bar("loading PDQ index") as bar:
        task = bar.add_task("index", total=None)
        index, report = services.pdq_index(lambda n: bar.advance(task, n))
    if report.added:
        stderr.print(f"PDQ index: {report.size:,} hashes ({report.added:,} taken in from the database)")
    try:
        matcher = services.matcher(banks, index)
    except ValueError as e:
        usage_error(str(e))
    _warn_if_no_entries(services, banks)
    failed = 0
    files = 0
    matched_files = 0
    by_bank: Counter[str] = Counter()
    by_policy: Counter[str] = Counter()
    table = Table("file", "bank", "policy", "signal", "distance", "labels")
    base = paths[0] if len(paths) == 1 and paths[0].is_dir() else Path.cwd()
    for s in _hashed(st, paths, "scanning", dihedral, False):
        files += 1
        matches = matcher.match(s)  # exact hashes match even when the media could not be decoded
        failed += s.error is not None
        record: dict[str, Any] = {"path": s.path, "matches": [m.to_json_dict() for m in matches]}
        if s.error:
            record["error"] = s.error
        if matches:
            matched_files += 1
            for b in {m.bank for m in matches}:
                by_bank[b] += 1
            for p in {m.policy for m in matches}:
                by_policy[p] += 1
        if as_json:
            _emit(record)
        else:
            for m in matches:
                dist = f"{m.distance}" + (
                    f" ({m.frame_share:.0%} frames)" if m.frame_share is not None else ""
                )
                table.add_row(  # names and labels come from outside: text, never markup
                    Text(printable(_short(s.path, base))),
                    Text(printable(m.bank)),
                    m.policy,
                    _signal_text(m),
                    dist,
                    Text(printable(_labels_text(m.labels.to_dict()))),
                )
            if s.error:
                table.add_row(
                    Text(printable(_short(s.path, base))),
                    "",
                    "",
                    "",
                    "",
                    f"[red]error: {markup_safe(s.error)}[/]",
                )
            elif not matches:
                what = (
                    "new: in no bank"
                    if s.kind != "other"
                    else "not an image or video; exact hashes in no bank"
                )
                table.add_row(Text(printable(_short(s.path, base))), "—", "", "", "", f"[dim]{what}[/]")
    if not as_json and table.row_count:
        typer.echo(_render(table))
    summary = f"{files:,} file(s) scanned, {matched_files:,} matched"
    if by_bank:
        summary += " — " + ", ".join(f"{markup_safe(b)}: {n:,}" for b, n in sorted(by_bank.items()))
    if by_policy:
        summary += " — by policy: " + ", ".join(f"{p} {n:,}" for p, n in sorted(by_policy.items()))
    if failed:
        summary += f" — [red]{failed:,} could not be read[/]"
    stderr.print(summary)
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


def _warn_if_no_entries(services: Services, names: list[str]) -> None:
    """A scan against no hash at all finds every file "new": say so before it starts, on stderr."""
    chosen = [b for b in services.banks.list_banks() if not names or b.name in names]
    if any(b.entries for b in chosen):
        return
    what = "the chosen banks hold" if names else "no bank is loaded: the database holds"
    stderr.print(
        f"[yellow]warning:[/] {what} no hashes, so every file will be reported as new. "
        "Import a hash list first: meldpunt bank import --policy auto|hint|ignore NAME FILE",
        soft_wrap=True,
    )


def _short(path: str, base: Path) -> str:
    """A path relative to ``base`` (the one folder scanned, or the working directory) when it lies
    under it: tables stay readable."""
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return path


def _signal_text(m: Match) -> str:
    """The signal type, and which of an image's PDQ hashes matched when it had several."""
    if m.hash is None:
        return m.signal_type
    orientation = f", orientation {m.orientation}" if m.orientation is not None else ""
    return f"{m.signal_type} ({m.hash}{orientation})"


def _labels_text(d: dict[str, Any]) -> str:
    return ", ".join(f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in d.items() if k != "vics")
