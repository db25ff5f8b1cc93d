"""``meldpunt referral ...``: make a police referral package, list them, verify one (all audited)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from meldpunt.cli.common import EXIT_FAILED, audit, cli_actor, command_group, state, stderr, usage_error
from meldpunt.cli.scan import _render

app = command_group(
    "Police referral packages: VICS 2.0, CSV, PDF and HTML summary, signed manifest (see 'create')."
)


@app.command("create")
def create_command(
    ctx: typer.Context,
    items: Annotated[list[int], typer.Argument(help="The item ids, in the order the package lists them.")],
    with_media: Annotated[
        bool,
        typer.Option(
            "--with-media",
            help="Also put in the media's bytes the evidence store holds (each read is audited). Default: hashes only.",
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder to write the package into. Default: referral.dir."),
    ] = None,
) -> None:
    """Make, sign and record a package for ITEM...; the takedowns whose referral was due become
    referred. Prints the package's folder and zip."""
    from meldpunt.act import referrals
    from meldpunt.referral import PackageError
    from meldpunt.stores.review import StoreKeyError
    from meldpunt.stores.signing import SigningKeyError

    services = state(ctx).services
    try:
        made = referrals.create(services, items, by=cli_actor(), with_media=with_media, out_dir=out)
    except (referrals.ReferralError, PackageError, SigningKeyError, StoreKeyError) as e:
        usage_error(str(e))
    except OSError as e:
        usage_error(f"cannot write the package: {e}")
    r = made.referral
    typer.echo(f"referral {r.reference}: {len(r.items)} item(s), {made.media_files} media file(s)")
    typer.echo(f"folder: {made.package.folder}")
    typer.echo(f"zip:    {made.package.zip_path}")
    typer.echo(f"manifest sha256 {r.manifest_sha256}, signed by key {r.kid}")
    if made.referred:
        typer.echo(f"police referral now done for item(s) {', '.join(map(str, made.referred))}")


@app.command("list")
def list_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """The packages made (urgent first, then newest) and the cases still due."""
    from meldpunt.act import referrals

    services = state(ctx).services
    made = referrals.list_referrals(services)
    due, total = referrals.due(services)
    if as_json:
        for r in made:
            typer.echo(
                json.dumps(
                    {
                        "reference": r.reference,
                        "items": list(r.items),
                        "created_at": r.created_at.isoformat(),
                        "created_by": r.created_by,
                        "with_media": r.with_media,
                        "urgent": r.urgent,
                        "downloads": r.downloads,
                        "manifest_sha256": r.manifest_sha256,
                        "zip": str(r.zip_path),
                    }
                )
            )
        return
    if made:
        table = Table("reference", "items", "made (UTC)", "by", "media", "downloads", "zip")
        for r in made:
            table.add_row(
                r.reference + (" (urgent)" if r.urgent else ""),
                ",".join(map(str, r.items)),
                r.created_at.strftime("%Y-%m-%d %H:%M"),
                r.created_by,
                "yes" if r.with_media else "no",
                str(r.downloads),
                str(r.zip_path),
            )
        typer.echo(_render(table))
    else:
        typer.echo("no referral packages yet")
    if due:
        table = Table("due: item", "urgent", "category", "country", "since (UTC)", "url")
        for d in due:
            table.add_row(
                str(d.item_id),
                "yes" if d.urgent else "",
                d.category,
                d.country,
                d.since.strftime("%Y-%m-%d %H:%M"),
                d.url,
            )
        typer.echo(_render(table))
        if total > len(due):
            typer.echo(f"... and {total - len(due)} more due")


@app.command("verify")
def verify_command(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The package's folder or zip.")],
    keys: Annotated[
        Path | None,
        typer.Option(
            "--keys",
            help="A JSON file of public keys to accept ({'keys': [{'kid', 'public'}]}, as 'meldpunt keys show "
            "--json' prints). Default: this instance's accepted keys.",
        ),
    ] = None,
) -> None:
    """Check a package: every file there with the SHA-256 its manifest gives, nothing added, the
    manifest's signature valid under an accepted key. Exit 0 when it holds; exit 1 naming each
    file changed, missing or added, or the signature's problem."""
    from meldpunt.act import referrals
    from meldpunt.referral import PackageError
    from meldpunt.stores.signing import SigningKeyError

    if not path.exists():
        usage_error(f"{path} does not exist")
    services = state(ctx).services
    accepted = None
    if keys is not None:
        try:
            data = json.loads(keys.read_text())
            accepted = list(data["keys"] if isinstance(data, dict) else data)
        except (OSError, ValueError, KeyError, TypeError) as e:
            usage_error(f"cannot read the keys in {keys}: {e}")
    try:
        result = referrals.verify_package(services, path, accepted)
    except (PackageError, SigningKeyError) as e:
        usage_error(str(e))
    audit(
        ctx,
        "referral.verify",
        f"referral:{result.case or path.name}",
        path=str(path),
        ok=result.ok,
        kid=result.kid,
        problems=[str(p) for p in result.problems][:50],
    )
    if result.ok:
        typer.echo(
            f"ok: package {result.case} from {result.instance or '?'} ({result.files} files), signed by key {result.kid}"
        )
        return
    for p in result.problems:
        stderr.print(f"[red]FAILED[/] {escape(str(p))}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_FAILED)
