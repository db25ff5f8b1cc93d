"""Settings of the web app, as data: name, default, help; ``MELDPUNT_WEB_<NAME>`` overrides.

Kept here (not in :mod:`meldpunt.settings`) while the web app is young; every field has a line of
help like the core settings do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from meldpunt.accounts.zones import ZoneError, check_zone


def _doc(default: Any, help: str) -> Any:
    if isinstance(default, (list, dict, tuple)):
        return field(default_factory=lambda: default, metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class WebConfig:
    emergency_numbers: tuple[str, ...] = _doc(
        ("112 (EU emergency number)",),
        "Emergency numbers shown on the form and receipt (comma-separated in the environment).",
    )
    help_service_name: str = _doc(
        "Stop it Now", "Help service for people worried about their own thoughts or behaviour."
    )
    help_service_url: str = _doc("https://stopitnow.nl/", "Address of that help service.")
    hotline_name: str = _doc("meldpunt", "The hotline's name, shown in the page header and titles.")
    secret: str = _doc(
        "",
        "Key for signing form tokens (hex or text). Empty: a random key per process, so several "
        "processes behind one address need the same key.",
    )
    form_token_seconds: int = _doc(2 * 3600, "How long a report form stays valid after it is shown.")
    max_form_bytes: int = _doc(64 * 1024, "Largest public form post, in bytes (bigger: 413).")
    max_api_bytes: int = _doc(1024 * 1024, "Largest JSON body of an API call, in bytes.")
    max_upload_bytes: int = _doc(32 * 1024 * 1024, "Largest upload to /api/v1/match (all files).")
    max_import_bytes: int = _doc(
        512 * 1024 * 1024, "Largest hash-list upload to /banks/import, in bytes (bigger: 413)."
    )
    max_match_queries: int = _doc(1000, "Most hashes (or files) in one /api/v1/match call.")
    report_rate: int = _doc(10, "Reports one visitor may send per rate window.")
    status_rate: int = _doc(30, "Status look-ups one visitor may make per rate window.")
    rate_window_seconds: int = _doc(600, "Length of the rate window, in seconds.")
    login_rate_per_name: int = _doc(10, "Password attempts one staff account name may get per login window.")
    login_rate_per_client: int = _doc(30, "Password attempts one visitor may make per login window.")
    login_window_seconds: int = _doc(
        900,
        "Length of the login rate window, in seconds; failed sign-ins that name no account are also "
        "written to the audit log once per window, with a count.",
    )
    trusted_proxies: tuple[str, ...] = _doc(
        (),
        "Behind a reverse proxy: the proxies' addresses or networks (CIDR, comma-separated). From "
        "them only, X-Forwarded-For gives the client (its right-most address that is not a trusted "
        "proxy; used only in memory, only hashed, for rate limits) and X-Forwarded-Proto the scheme "
        "(https: staff cookies are Secure). Empty: the socket's peer, and no header is believed.",
    )
    time_zone: str = _doc(
        "Europe/Brussels",
        "Time zone of the times on staff pages (an IANA name, e.g. Europe/Brussels or UTC); each staff "
        "member may choose their own on /me/preferences.",
    )
    matcher_refresh_seconds: float = _doc(
        1.0,
        "The match API looks for changed hash lists at most this often (seconds): one database row; "
        "new hashes are taken in, the index is not reloaded.",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> WebConfig:
        env = os.environ if environ is None else environ
        if env.get("MELDPUNT_WEB_FORWARDED_HEADER"):
            raise ValueError(
                "MELDPUNT_WEB_FORWARDED_HEADER is no longer read (it believed the first, forgeable "
                "address): set MELDPUNT_WEB_TRUSTED_PROXIES to your proxies' addresses (CIDR) instead"
            )
        values: dict[str, Any] = {}
        defaults = cls()
        for f in fields(cls):
            raw = env.get(f"MELDPUNT_WEB_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            current = getattr(defaults, f.name)
            try:
                if isinstance(current, tuple):
                    values[f.name] = tuple(p.strip() for p in raw.split(",") if p.strip())
                elif isinstance(current, int):
                    values[f.name] = int(raw)
                elif isinstance(current, float):
                    values[f.name] = float(raw)
                else:
                    values[f.name] = raw
            except ValueError:
                raise ValueError(f"MELDPUNT_WEB_{f.name.upper()}: not a number: {raw!r}") from None
        values.update(overrides)
        config = replace(defaults, **values)
        try:
            check_zone(config.time_zone)
        except ZoneError:
            raise ValueError(f"MELDPUNT_WEB_TIME_ZONE: not a time zone: {config.time_zone!r}") from None
        return config

    @classmethod
    def documented(cls) -> list[tuple[str, str, Any]]:
        c = cls()
        return [(f.name, f.metadata.get("help", ""), getattr(c, f.name)) for f in fields(cls)]
