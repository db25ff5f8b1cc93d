"""``meldpunt token ...``: API tokens for partner hotlines and platforms."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.exc import IntegrityError

from meldpunt.cli.common import state, stderr, usage_error

app = typer.Typer(help="API tokens for partners and platforms.", no_args_is_help=True)


@app.command("create")
def create_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Who the token is for, e.g. a partner's name.")],
) -> None:
    """Issue a token: printed once on stdout, stored only as its hash."""
    from meldpunt.pipeline.intake import create_api_token

    try:
        token = create_api_token(state(ctx).services, name)
    except IntegrityError:
        usage_error(f"a token named {name!r} exists already")
    typer.echo(token)
    stderr.print(f"token for [bold]{name}[/] created; it is shown only now: keep it somewhere safe")
