"""``meldpunt user ...``: staff accounts. The first administrator: ``meldpunt user add NAME --role admin``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from meldpunt.cli.common import audit, command_group, state, stderr, usage_error

if TYPE_CHECKING:
    from meldpunt.accounts import Accounts

app = command_group(help="Staff accounts: add, list, disable, reset the second factor.")


def _accounts(ctx: typer.Context) -> Accounts:
    from meldpunt.accounts import Accounts

    # add, list, disable and reset-2fa never read a second-factor secret: no sealing key needed
    return Accounts(state(ctx).services.engine)


@app.command("add")
def add_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user name they sign in with.")],
    role: Annotated[str, typer.Option("--role", help="analyst, senior, police or admin.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin instead of generating one.")
    ] = False,
) -> None:
    """Add a user. Without --password-stdin a password is generated and printed once on stdout.
    The user sets up their authenticator app at their first sign-in."""
    from meldpunt.accounts import ROLES

    if role not in ROLES:
        usage_error(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    try:
        made = _accounts(ctx).create_user(name, role, password)
    except ValueError as e:
        usage_error(str(e))
    audit(ctx, "user.add", f"user:{name}", role=role)
    if password is None:
        typer.echo(made)
        stderr.print(f"user [bold]{name}[/] ({role}) added; the password is shown only now")
    else:
        stderr.print(f"user [bold]{name}[/] ({role}) added")


@app.command("list")
def list_command(ctx: typer.Context) -> None:
    """Every user: name, role, whether the second factor is set up, disabled or locked."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    for u in _accounts(ctx).list_users():
        flags = [
            "enrolled" if u.enrolled else "not-enrolled",
            *(["disabled"] if u.disabled else []),
            *(["locked"] if u.locked_until is not None and u.locked_until > now else []),
        ]
        typer.echo(f"{u.name}\t{u.role}\t{','.join(flags)}")


@app.command("disable")
def disable_command(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The user to disable.")]
) -> None:
    """Disable a user: they cannot sign in, and their sessions end now."""
    if not _accounts(ctx).disable(name):
        usage_error(f"no user named {name!r}")
    audit(ctx, "user.disable", f"user:{name}")
    stderr.print(f"user [bold]{name}[/] disabled; their sessions have ended")


@app.command("reset-2fa")
def reset_2fa_command(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The user whose second factor to reset.")]
) -> None:
    """Forget a user's authenticator and recovery codes (a lost phone): they set up a new one at
    their next sign-in. Their sessions end now."""
    if not _accounts(ctx).reset_2fa(name):
        usage_error(f"no user named {name!r}")
    audit(ctx, "user.reset_2fa", f"user:{name}")
    stderr.print(f"second factor of [bold]{name}[/] reset; they enrol again at their next sign-in")
