"""``meldpunt user ...``: staff accounts. The first administrator: ``meldpunt user add NAME --role admin``.

Every change goes through :class:`meldpunt.accounts.admin.UserAdmin`, the same service the
administrator's web pages use: the same rules (the last active administrator stays), and each
change audited in its own transaction as ``cli:<os user>``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from meldpunt.cli.common import cli_actor, command_group, state, stderr, usage_error

if TYPE_CHECKING:
    from meldpunt.accounts import Accounts
    from meldpunt.accounts.admin import AdminError, UserAdmin

app = command_group(
    help="Staff accounts: add, list, change a role, disable, enable, reset the second factor."
)


def _accounts(ctx: typer.Context) -> Accounts:
    # the one account service; add, list, disable and reset-2fa never read a second-factor
    # secret, so its sealing key is never read for them
    return state(ctx).services.accounts()


def _admin(ctx: typer.Context) -> UserAdmin:
    from meldpunt.accounts.admin import UserAdmin

    return UserAdmin(_accounts(ctx))


def _refused(e: AdminError) -> NoReturn:
    usage_error(e.message)


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
    from meldpunt.accounts.admin import AdminError

    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    try:
        made = _admin(ctx).add(cli_actor(), name, role, password)
    except AdminError as e:
        _refused(e)
    if password is None:
        typer.echo(made)
        stderr.print(f"user [bold]{name}[/] ({role}) added; the password is shown only now")
    else:
        stderr.print(f"user [bold]{name}[/] ({role}) added")


@app.command("list")
def list_command(ctx: typer.Context) -> None:
    """Every user: name, role, whether the second factor is set up, disabled or locked."""
    now = state(ctx).services.clock.now()
    for u in _accounts(ctx).list_users():
        flags = [
            "enrolled" if u.enrolled else "not-enrolled",
            *(["disabled"] if u.disabled else []),
            *(["locked"] if u.locked_until is not None and u.locked_until > now else []),
        ]
        typer.echo(f"{u.name}\t{u.role}\t{','.join(flags)}")


@app.command("role")
def role_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user whose role to change.")],
    role: Annotated[str, typer.Argument(help="analyst, senior, police or admin.")],
) -> None:
    """Give a user another role; their sessions end. The last active administrator keeps theirs."""
    from meldpunt.accounts.admin import AdminError

    try:
        changed = _admin(ctx).set_role(cli_actor(), name, role)
    except AdminError as e:
        _refused(e)
    stderr.print(f"user [bold]{name}[/] is {role}" + ("" if changed else " already; nothing changed"))


@app.command("disable")
def disable_command(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The user to disable.")]
) -> None:
    """Disable a user: they cannot sign in, and their sessions end now. The last active
    administrator cannot be disabled."""
    from meldpunt.accounts.admin import AdminError

    try:
        changed = _admin(ctx).disable(cli_actor(), name)
    except AdminError as e:
        _refused(e)
    stderr.print(
        f"user [bold]{name}[/] "
        + ("disabled; their sessions have ended" if changed else "was disabled already")
    )


@app.command("enable")
def enable_command(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The user to enable again.")]
) -> None:
    """Enable a disabled user again (and lift a lock-out): they sign in as before."""
    from meldpunt.accounts.admin import AdminError

    try:
        changed = _admin(ctx).enable(cli_actor(), name)
    except AdminError as e:
        _refused(e)
    stderr.print(f"user [bold]{name}[/] " + ("enabled" if changed else "was not disabled; nothing changed"))


@app.command("reset-2fa")
def reset_2fa_command(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The user whose second factor to reset.")]
) -> None:
    """Forget a user's authenticator and recovery codes (a lost phone): they set up a new one at
    their next sign-in. Their sessions end now."""
    from meldpunt.accounts.admin import AdminError

    try:
        _admin(ctx).reset_2fa(cli_actor(), name)
    except AdminError as e:
        _refused(e)
    stderr.print(f"second factor of [bold]{name}[/] reset; they enrol again at their next sign-in")
