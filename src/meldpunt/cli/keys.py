"""``meldpunt keys ...``: the instance's Ed25519 signing keys (partner messages, referral manifests)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from meldpunt.cli.common import audit, command_group, state, usage_error
from meldpunt.stores.signing import SigningKeyError, key_ring_path, rotate_key_ring

app = command_group(help="The instance's signing keys: show the public keys partners need, rotate.")


@app.command("show")
def show_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (what a partner configures).")] = False,
) -> None:
    """The public keys still accepted (the current one first), made on first use."""
    services = state(ctx).services
    try:
        ring = services.signing_keys()
    except SigningKeyError as e:
        usage_error(str(e))
    keys = ring.public_keys(services.clock.now())
    if as_json:
        typer.echo(json.dumps({"keys": keys}, indent=1))
        return
    typer.echo(f"key ring: {key_ring_path(services.settings)}")
    for k in keys:
        status = "current" if k["retired"] is None else f"retired {k['retired']} (still accepted)"
        typer.echo(f"{k['kid']}  {k['public']}  {status}")


@app.command("rotate")
def rotate_command(ctx: typer.Context) -> None:
    """Make a new current key; the old one is still accepted for keys.grace_days. Tell partners the
    new public key (forwarding announces it to configured partners)."""
    services = state(ctx).services
    try:
        old = services.signing_keys().current.kid
        ring = rotate_key_ring(services.settings, now=services.clock.now())
    except SigningKeyError as e:
        usage_error(str(e))
    audit(ctx, "keys.rotate", ring.current.kid, old=old, new=ring.current.kid)
    from meldpunt.act.partners import announce_keys

    told = announce_keys(services)
    if told:
        typer.echo(f"announcing the new key to {len(told)} partner(s): {', '.join(n for n, _ in told)}")
    typer.echo(
        f"new signing key {ring.current.kid} (was {old}; accepted for {services.settings.keys.grace_days} more days)"
    )
