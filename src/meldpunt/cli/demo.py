"""``meldpunt demo``: a scan of bundled benign images against bundled demo hash lists."""

from __future__ import annotations

import contextlib
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import platformdirs
import typer

from meldpunt.banks.formats import get_format
from meldpunt.bootstrap import Services
from meldpunt.cli.common import state, stderr
from meldpunt.cli.scan import scan_command
from meldpunt.demo import BENIGN_LIST, KNOWN_LIST, MEDIA


def demo_command(
    ctx: typer.Context,
    db: Annotated[
        Path | None,
        typer.Option("--demo-db", help="Demo database (default: demo.db in the user's data directory)."),
    ] = None,
) -> None:
    """Import two demo hash lists and scan a folder of benign demo media against them.

    Shows each outcome: a PDQ match of a resized copy, an exact SHA-256 match, a video matched by
    its frames, a file on a benign list (policy ignore), a new image, a non-media file and a
    truncated download that cannot be decoded. Uses its own database, not yours."""
    st = state(ctx)
    path = db or Path(platformdirs.user_data_dir("meldpunt")) / "demo.db"
    st.settings = replace(st.settings, db=str(path))
    st.services.close()
    st.services = Services(st.settings)
    repo = st.services.banks
    for name, file, fmt, policy, desc in (
        ("demo-known", KNOWN_LIST, "csv", "auto", "Demo list of already-classified items (synthetic labels)"),
        ("demo-benign", BENIGN_LIST, "te", "ignore", "Demo list of known benign files"),
    ):
        with file.open("rb") as fp:
            r = repo.import_records(
                name,
                get_format(fmt).read(fp),
                source_name=file.name,
                source_sha256="",
                fmt=fmt,
                replace=True,
                policy=policy,
                description=desc,
            )
        stderr.print(f"bank [bold]{name}[/] ({policy}): {r.entries} entries from {file.name}")
    stderr.print(f"scanning {MEDIA} …\n")
    with contextlib.suppress(typer.Exit):  # a file the scan could not read is part of the demo
        ctx.invoke(scan_command, ctx=ctx, paths=[MEDIA], bank=None, as_json=False, dihedral=False)
    me = sys.argv[0] if shutil.which("meldpunt") != sys.argv[0] else "meldpunt"
    stderr.print(
        f"\nNext: [bold]{me} --db {path} bank list[/], "
        f"[bold]{me} hash {MEDIA / 'sunset-over-hills.jpg'}[/], [bold]{me} scan --json FILES[/]."
    )
