"""What every subcommand shares: the state built from global options, consoles, exit codes."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

from meldpunt.bootstrap import Services
from meldpunt.settings import Settings

#: Progress, logs and summaries: never on stdout, which carries only the JSON lines.
stderr = Console(stderr=True)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class State:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services = Services(settings)

    def close(self) -> None:
        self.services.close()


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    assert isinstance(obj, State)
    return obj


def usage_error(message: str) -> NoReturn:
    stderr.print(f"[red]error:[/] {message}")
    raise typer.Exit(EXIT_USAGE)
