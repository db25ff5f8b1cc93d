"""``meldpunt cybertip ITEM... [--out FILE]``: a CyberTipline-style XML export of one incident (one
item, or several a senior chose), validated against meldpunt's XSD (``act.cybertip``) before it is
written, and audited (``referral.cybertip``). No call to NCMEC is made: the file is for the person who submits."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from meldpunt.act.cybertip import CybertipError, export_cybertip
from meldpunt.cli.common import cli_actor, state, stderr, usage_error


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it: a half-written export is
    never left under the name asked for."""
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cybertip_command(
    ctx: typer.Context,
    items: Annotated[list[int], typer.Argument(help="The items of the incident (their numbers).", min=1)],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the XML here (default: standard output).", dir_okay=False),
    ] = None,
) -> None:
    """Export items found illegal as one CyberTipline-style report (XML): the pages' URLs and
    hosting facts, each file's hashes and its industry classification (A1/A2/B1/B2 from the US
    scheme; none where nobody gave one). Never media. Set referral.cybertip_reporter_email first."""
    services = state(ctx).services
    if out is not None and out.parent and not out.parent.is_dir():
        usage_error(f"no folder {out.parent}")
    try:
        made = export_cybertip(services, items, actor=cli_actor())
    except CybertipError as e:
        usage_error(str(e))
    if out is None:
        typer.echo(made.xml.decode("utf-8"), nl=False)
    else:
        try:
            _write(out, made.xml)
        except OSError as e:
            usage_error(f"cannot write {out}: {e.strerror or e}")
    where = f" to {out}" if out is not None else ""
    stderr.print(
        f"CyberTipline export of {len(made.item_ids)} item(s), {made.files} file(s) "
        f"({made.uncategorised} without an industry classification){where}; sha256 {made.sha256}"
    )
