"""``meldpunt token ...``: API tokens for partners and platforms, each with its scopes."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from sqlalchemy.exc import IntegrityError

from meldpunt.cli.common import command_group, state, stderr, usage_error
from meldpunt.pipeline.api_tokens import DEFAULT_SCOPES, SCOPES

app = command_group(help="API tokens for partners and platforms.")

_SCOPE_HELP = (
    "What the token may do (repeatable, or comma-separated): "
    + "; ".join(f"{k}: {v}" for k, v in SCOPES.items())
    + f". Default: {' '.join(DEFAULT_SCOPES)}."
)


@app.command("create")
def create_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Who the token is for, e.g. a partner's name.")],
    scope: Annotated[list[str] | None, typer.Option("--scope", help=_SCOPE_HELP)] = None,
) -> None:
    """Issue a token: printed once on stdout, stored only as its hash."""
    from meldpunt.pipeline.api_tokens import BadTokenName, UnknownScope, create_api_token, parse_scopes

    try:
        scopes = parse_scopes(scope) if scope else DEFAULT_SCOPES
        token = create_api_token(state(ctx).services, name, scopes)
    except (UnknownScope, BadTokenName) as e:
        usage_error(str(e))
    except IntegrityError:
        usage_error(f"a token named {name!r} exists already")
    typer.echo(token)
    stderr.print(
        f"token for [bold]{escape(name)}[/] created with the scopes {' '.join(scopes)}; it is shown only now: "
        "keep it somewhere safe",
        highlight=False,
    )


@app.command("list")
def list_command(ctx: typer.Context) -> None:
    """The tokens: name, scopes, whether revoked (never the tokens themselves)."""
    from meldpunt.pipeline.api_tokens import list_api_tokens

    for t in list_api_tokens(state(ctx).services):
        typer.echo(f"{t.name}\t{' '.join(t.scopes)}\t{'revoked' if t.revoked else 'active'}")
