"""The ``meldpunt`` command: hash files, manage hash lists (banks), scan files against them."""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Annotated

import typer

from meldpunt import __version__
from meldpunt.cli import annual as annual_cli
from meldpunt.cli import audit as audit_cli
from meldpunt.cli import banks as banks_cli
from meldpunt.cli import cybertip as cybertip_cli
from meldpunt.cli import demo as demo_cli
from meldpunt.cli import estimate as estimate_cli
from meldpunt.cli import evidence as evidence_cli
from meldpunt.cli import geo as geo_cli
from meldpunt.cli import iccam as iccam_cli
from meldpunt.cli import keys as keys_cli
from meldpunt.cli import links as links_cli
from meldpunt.cli import partner as partner_cli
from meldpunt.cli import referral as referral_cli
from meldpunt.cli import scan as scan_cli
from meldpunt.cli import serve as serve_cli
from meldpunt.cli import settings as settings_cli
from meldpunt.cli import tokens as tokens_cli
from meldpunt.cli import users as users_cli
from meldpunt.cli.common import State, command_group, stderr
from meldpunt.settings import RenamedSettingWarning, Settings

app = command_group(
    "meldpunt: hashing, hash lists and matching for hotlines and trust-and-safety teams.",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"meldpunt {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Database: a SQLite file path or an SQLAlchemy URL (postgresql://...). "
            "Default: MELDPUNT_DB, else meldpunt.db in the user's data directory.",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging (stderr).")] = 0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    logging.basicConfig(
        level=logging.WARNING - 10 * min(verbose, 2),
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always", RenamedSettingWarning)
            settings, sources = Settings.load(origin="--db", db=db)
    except ValueError as e:
        stderr.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None
    for w in said:
        stderr.print(f"[yellow]warning:[/] {w.message}")
    ctx.obj = State(settings, sources)
    ctx.call_on_close(ctx.obj.close)


app.command("hash")(scan_cli.hash_command)
app.command("scan")(scan_cli.scan_command)
app.command("demo")(demo_cli.demo_command)
app.command("serve")(serve_cli.serve_command)
app.command("worker")(serve_cli.worker_command)
app.command("settings")(settings_cli.settings_command)
app.add_typer(banks_cli.app, name="bank")
app.add_typer(tokens_cli.app, name="token")
app.add_typer(audit_cli.app, name="audit")
app.add_typer(evidence_cli.app, name="evidence")
app.add_typer(users_cli.app, name="user")
app.add_typer(geo_cli.app, name="geo")
app.add_typer(keys_cli.app, name="keys")
app.add_typer(partner_cli.app, name="partner")
app.add_typer(iccam_cli.app, name="iccam")
app.add_typer(referral_cli.app, name="referral")
app.add_typer(links_cli.app, name="links")
app.add_typer(annual_cli.app, name="report")
app.command("locate")(geo_cli.locate_command)
app.command("estimate")(estimate_cli.estimate_command)
referral_cli.app.command("cybertip")(cybertip_cli.cybertip_command)


def main() -> None:
    app(prog_name="meldpunt")
