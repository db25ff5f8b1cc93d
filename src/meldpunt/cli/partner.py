"""``meldpunt partner ...``: partner hotlines' meldpunt instances (forwarding over signed messages)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from meldpunt.act.partners import Partner, PartnerError, Partners, counts, messages, received
from meldpunt.cli.common import cli_actor, command_group, state, usage_error

app = command_group(help="Partner hotlines: add, list, show, remove; retry a dead message.")


def _partners(ctx: typer.Context) -> Partners:
    return Partners(state(ctx).services)


def _as_json(p: Partner) -> dict[str, object]:
    return {
        "name": p.name,
        "url": p.url,
        "countries": list(p.countries),
        "note": p.note,
        "created": p.created.isoformat(),
        "keys": [
            {
                "kid": k.kid,
                "public": k.public,
                "added": k.added.isoformat(),
                "retired": k.retired.isoformat() if k.retired else None,
            }
            for k in p.keys
        ],
    }


@app.command("add")
def add_command(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(help="The partner's name: a short lower-case slug (its instance_name).")
    ],
    url: Annotated[str, typer.Option("--url", help="The partner instance's base address (http or https).")],
    country: Annotated[
        list[str], typer.Option("--country", help="A country it covers (ISO 3166 alpha-2); repeat for more.")
    ],
    key: Annotated[
        list[str],
        typer.Option("--key", help="Its Ed25519 public key, base64 (its `meldpunt keys show`); repeat."),
    ],
    note: Annotated[str, typer.Option("--note", help="A note for colleagues.")] = "",
) -> None:
    """Add a partner (audited)."""
    try:
        p = _partners(ctx).add(name, url, country, key, note, actor=cli_actor())
    except PartnerError as e:
        usage_error(str(e))
    typer.echo(f"added partner {p.name} ({', '.join(p.countries)}), keys {', '.join(k.kid for k in p.keys)}")


@app.command("list")
def list_command(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """The partners, with their countries and how many messages wait or are dead."""
    partners = _partners(ctx).list()
    per = counts(state(ctx).services)
    if as_json:
        rows = [{**_as_json(p), "messages": per.get(p.name, {})} for p in partners]
        typer.echo(json.dumps({"partners": rows}, indent=1))
        return
    if not partners:
        typer.echo("no partners")
    for p in partners:
        c = per.get(p.name, {})
        typer.echo(
            f"{p.name}  {p.url}  {','.join(p.countries)}  queued {c.get('queued', 0)}  dead {c.get('dead', 0)}"
            f"  delivered {c.get('delivered', 0)}"
        )


@app.command("show")
def show_command(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The partner's name.")]
) -> None:
    """A partner: its keys, its queued and dead messages, the newest messages it sent us."""
    services = state(ctx).services
    p = _partners(ctx).get(name)
    if p is None:
        usage_error(f"no partner called {name!r}")
    typer.echo(f"{p.name}  {p.url}  countries {','.join(p.countries)}  since {p.created:%Y-%m-%d}")
    if p.note:
        typer.echo(f"note: {p.note}")
    typer.echo("keys:")
    for k in p.keys:
        status = f"retired {k.retired:%Y-%m-%d %H:%M}" if k.retired else "current"
        typer.echo(f"  {k.kid}  {k.public}  {status}")
    waiting = messages(services, name)
    typer.echo(f"queued and dead messages: {len(waiting)}")
    for m in waiting:
        extra = f"  attempts {m.attempts}  {m.last_error}" if m.attempts else ""
        typer.echo(f"  #{m.id}  seq {m.seq}  {m.kind}  {m.state}  {m.key}{extra}")
    got = received(services, name, limit=20)
    if got:
        typer.echo("received (newest first):")
    for r in got:
        typer.echo(f"  seq {r.seq}  {r.kind}  {r.state}  {r.received_at:%Y-%m-%d %H:%M}  {r.reason}")


@app.command("remove")
def remove_command(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The partner's name.")]
) -> None:
    """Stop exchanging with a partner (audited; its messages are then refused, queued ones wait)."""
    try:
        _partners(ctx).remove(name, actor=cli_actor())
    except PartnerError as e:
        usage_error(str(e))
    typer.echo(f"removed partner {name}")


@app.command("retry")
def retry_command(
    ctx: typer.Context,
    message_id: Annotated[int, typer.Argument(help="The dead message's number (partner show).")],
) -> None:
    """Send a dead message again (audited)."""
    try:
        m = _partners(ctx).retry(message_id, actor=cli_actor())
    except PartnerError as e:
        usage_error(str(e))
    typer.echo(f"message #{m.id} ({m.kind}, seq {m.seq}) to {m.partner} is queued again")
