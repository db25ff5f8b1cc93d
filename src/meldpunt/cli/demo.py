"""``meldpunt demo``: the whole walk on benign demo data, in a minute.

By default: a fresh demo database, the demo hash lists, a benign demo "web" on loopback, a few
reports already walking, and the web app with its workers. ``--scan``: only scan the bundled demo
media against the demo lists and print the matches.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import platformdirs
import typer
from rich.console import Console

from meldpunt.bootstrap import Services
from meldpunt.cli.common import state, stderr
from meldpunt.cli.scan import scan_command
from meldpunt.demo import MEDIA

if TYPE_CHECKING:
    from meldpunt.demo.run import Demo


def demo_command(
    ctx: typer.Context,
    db: Annotated[
        Path | None,
        typer.Option("--demo-db", help="Demo database (default: demo.db in the user's data directory)."),
    ] = None,
    scan: Annotated[
        bool, typer.Option("--scan", help="Only scan the demo media against the demo lists.")
    ] = False,
    host: Annotated[str, typer.Option(help="Address for the web app.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the web app.")] = 8000,
) -> None:
    """Run meldpunt on benign demo data (its own database, not yours): the web app with reports
    walking through every state, or with --scan a scan of the demo media."""
    path = db or Path(platformdirs.user_data_dir("meldpunt")) / "demo.db"
    me = sys.argv[0] if shutil.which("meldpunt") != sys.argv[0] else "meldpunt"
    if scan:
        _scan_demo(ctx, path, me)
    else:
        _server_demo(ctx, path, host, port)


def _scan_demo(ctx: typer.Context, path: Path, me: str) -> None:
    from meldpunt.demo.run import import_demo_lists

    st = state(ctx)
    st.settings = replace(st.settings, db=str(path))
    st.services.close()
    st.services = Services(st.settings)
    for name, policy, n in import_demo_lists(st.services):
        stderr.print(f"bank [bold]{name}[/] ({policy}): {n} entries")
    stderr.print(f"scanning {MEDIA} …\n")
    with contextlib.suppress(typer.Exit):  # a file the scan could not read is part of the demo
        ctx.invoke(scan_command, ctx=ctx, paths=[MEDIA], bank=None, as_json=False, dihedral=False)
    stderr.print(
        f"\nNext: [bold]{me} --db {path} bank list[/], "
        f"[bold]{me} hash {MEDIA / 'sunset-over-hills.jpg'}[/], [bold]{me} scan --json FILES[/].",
        soft_wrap=True,
    )


def _server_demo(ctx: typer.Context, path: Path, host: str, port: int) -> None:
    from meldpunt.cli.serve import start_workers
    from meldpunt.demo.run import prepare, seed_when_walked
    from meldpunt.web import run

    st = state(ctx)
    with stderr.status("playing nine days of takedowns into the demo database …"):
        demo = prepare(st.settings, path, public_url=f"http://{host}:{port}")
    stop = threading.Event()
    start_workers(demo.services, 2, stop)
    threading.Thread(
        target=seed_when_walked,
        args=(demo.services, demo.disputed_url, stop.wait),
        name="demo-seed",
        daemon=True,
    ).start()
    print_banner(stderr, demo, path, f"http://{host}:{port}")
    try:
        run(demo.services, host=host, port=port)
    finally:
        stop.set()
        demo.stop()


def print_banner(console: Console, demo: Demo, path: Path, base: str) -> None:
    """What the demo is and where to go. Lines are never wrapped (``soft_wrap``): an address
    broken at the terminal's edge cannot be clicked or copied; a long line runs on instead."""
    console.print(
        f"""
[bold]meldpunt demo[/] — benign demo data only, in {path}

  report form        {base}/            (works without JavaScript; nl / fr / en)
  items by state     {base}/internal/items   (user: demo, password: the token below)
  API docs           {base}/api/docs
  API token          {demo.token}
  demo web           {demo.web.base}/gallery/mixed.html and more: report them yourself
  receipts           {", ".join(demo.receipts[:3])} … → {base}/status/<receipt>

{len(demo.receipts)} reports are walking now: known, needs review, unavailable, a slow host, a redirect.
A disagreement waits: demo-analyst and demo-senior2 disagree on mixed.html;
demo-senior (who gave neither opinion) resolves it under Disagreements.""",
        soft_wrap=True,
    )
    if demo.act is not None and demo.mailbox is not None:
        console.print(
            "\nLocate and act, nine days played (sign in as demo-senior: Notices, Overdue, Removals, Alerts):",
            soft_wrap=True,
        )
        for line in demo.act.story:
            console.print(f"  - {line}", soft_wrap=True)
        console.print(
            f"  mailbox            {demo.mailbox.folder}  (every notice and alert sent, as .eml files)\n"
            f"  a provider's link  {demo.act.provider_link or '(none yet)'}",
            soft_wrap=True,
        )
        if demo.act.forwarded_item is not None:
            console.print(
                f"  forwarded item     {base}/items/{demo.act.forwarded_item}  (Action: forwarded, received,"
                " assessed, notice sent, removed)\n"
                f"  forwards           {base}/act/forwards  (the ones waiting for a senior)\n"
                f"  partner's side     {demo.act.partner_db}  (offlimits-demo, home NL: its own database)",
                soft_wrap=True,
            )
    if demo.act is not None and demo.act.survivor is not None:
        case = demo.act.survivor
        console.print(
            f"  survivor's case    {base}/survivor/sign-in  code [bold]{case.code}[/]"
            f"  passphrase [bold]{case.passphrase}[/]\n"
            "                     (timeline: found, notice sent, forwarded, removed; the statement PDF;"
            " news mails in the mailbox)",
            soft_wrap=True,
        )
    if demo.referral is not None:
        console.print(
            f"  police referrals   {base}/referrals  (package {demo.referral} made by demo-senior; the"
            " other cases are still due; demo-police downloads)",
            soft_wrap=True,
        )
    console.print(
        f"staff sign-in at {base}/login (password [bold]{demo.logins[0].password}[/] for all):",
        soft_wrap=True,
    )
    for login in demo.logins:
        console.print(
            f"  {login.name:<14} {login.role:<8} TOTP secret {login.totp_secret}  code now {login.code}",
            soft_wrap=True,
        )
    console.print(
        f"  later codes: {sys.executable} -c \"import pyotp; print(pyotp.TOTP('SECRET').now())\"\nCtrl-C stops.",
        soft_wrap=True,
    )
