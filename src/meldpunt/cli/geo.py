"""``meldpunt geo ...``: the geo data locating uses (the user's .mmdb files and IP-to-ASN tables
over the data embedded in geoip2fast), and ``meldpunt locate URL|IP``: a quick look-up."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer
from rich.markup import escape

from meldpunt.cli.common import audit, command_group, state, stderr, usage_error
from meldpunt.locate import (
    GeoDataError,
    GeoFile,
    Locator,
    MemoryCache,
    describe_sources,
    geo_dir,
    inspect_file,
)
from meldpunt.locate.geo import KEPT_NAMES

app = command_group(help="Geo data for locating: the embedded default and your own files.")


@app.command("update")
def update_command(
    ctx: typer.Context,
    files: Annotated[
        list[Path],
        typer.Argument(
            help="MaxMind/DB-IP .mmdb files (country, city or ASN databases) and IP-to-ASN tables "
            "(iptoasn.com's TSV: range_start range_end AS_number country_code AS_description; plain or .gz).",
            show_default=False,
        ),
    ],
) -> None:
    """Check the files and keep them in the geo folder (locate.geo_dir), replacing the ones of the
    same kind; they win over the embedded data. Nothing is replaced unless every file is good."""
    settings = state(ctx).settings
    checked: dict[str, GeoFile] = {}
    for f in files:
        try:
            found = inspect_file(f)
        except GeoDataError as e:
            usage_error(f"{escape(str(e))} (nothing was replaced)")
        if found.kind in checked:
            usage_error(f"{f} and {checked[found.kind].path} are both {found.kind} data: give one of each")
        checked[found.kind] = found
    target = geo_dir(settings)
    target.mkdir(parents=True, exist_ok=True)
    for kind, found in checked.items():
        kept = target / KEPT_NAMES[kind]
        fd, tmp = tempfile.mkstemp(dir=target, prefix=f".{kept.name}.")
        os.close(fd)
        shutil.copy2(found.path, tmp)  # the file's own date stays: a table's "data of"
        os.replace(tmp, kept)
        audit(
            ctx,
            "geo.update",
            kind,
            file=str(found.path),
            name=found.name,
            as_of=found.as_of,
            entries=found.entries,
        )
        stderr.print(
            f"{kind}: {escape(found.name)} (data of {found.as_of}, {found.entries} entries) kept as {escape(str(kept))}",
            highlight=False,
        )


@app.command("show")
def show_command(ctx: typer.Context) -> None:
    """The geo data in use, best first, with its source and date; and where RDAP is asked."""
    locator = Locator.from_settings(state(ctx).settings)
    try:
        for row in describe_sources(locator):
            typer.echo(json.dumps(row))
    finally:
        locator.close()


def locate_command(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="A URL, a host name or an IP address.", show_default=False)],
) -> None:
    """What locating would record for TARGET (JSON on stdout): addresses, network, AS, country,
    provider, abuse contact, registrar, CDN, each with its source and age. Stores nothing."""
    host = urlsplit(target).hostname if "://" in target else target.strip().strip("[]").split("/")[0]
    if not host:
        usage_error(f"not a URL, host or address: {target!r}")
    locator = Locator.from_settings(state(ctx).settings)
    try:
        loc = locator.locate(host, "", now=datetime.now(UTC), cache=MemoryCache())
    finally:
        locator.close()
    typer.echo(
        json.dumps(
            {"host": loc.host, "ip": loc.ip, "facts": loc.facts, "error": loc.error}, indent=2, default=str
        )
    )
    for name, fact in loc.facts.items():
        value = fact.get("value")
        shown = "unknown: " + str(fact.get("unknown", "")) if value in (None, "", []) else str(value)
        stderr.print(
            f"{name:16} {escape(shown)}  [dim]({escape(str(fact.get('source')))}, {fact.get('as_of')})[/]"
        )
