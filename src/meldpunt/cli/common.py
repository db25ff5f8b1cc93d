"""What every subcommand shares: the state built from global options, consoles, exit codes."""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from typing import Any, NoReturn

import typer
from rich.console import Console

from meldpunt.bootstrap import Services
from meldpunt.settings import Settings

#: Progress, logs and summaries: never on stdout, which carries only the JSON lines.
stderr = Console(stderr=True)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class State:
    def __init__(self, settings: Settings, sources: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        #: where each setting not at its default came from (``meldpunt settings`` shows it)
        self.sources: Mapping[str, str] = sources or {}
        self.services = Services(settings)

    def close(self) -> None:
        self.services.close()


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    assert isinstance(obj, State)
    return obj


def cli_actor() -> str:
    """``cli:<OS user name>``: who ran the command, as the audit log records it."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return f"cli:{who or 'unknown'}"[:200]


def audit(ctx: typer.Context, action: str, subject: str, **details: object) -> None:
    """Record what a command did in the audit log, as the person who ran it."""

    state(ctx).services.audit.append(cli_actor(), action, subject[:200], details)


def command_group(help: str, **options: Any) -> typer.Typer:
    """A group of commands (the ``meldpunt`` command itself and each subcommand group).

    Help is click's plain text, not Typer's Rich panels: Typer's Rich help (0.29) writes every
    boolean flag as if it took a value (``--scan <bool>``); click's shows ``--scan``."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None, **options)


def usage_error(message: str) -> NoReturn:
    stderr.print(f"[red]error:[/] {message}")
    raise typer.Exit(EXIT_USAGE)
