"""The machinery of settings as data: how a setting is declared, named, read and listed.

A setting is a field of a frozen dataclass declared with :func:`setting` (default, help, unit).
Its environment variable follows one rule: ``MELDPUNT_`` + the section (if any) + the name, upper
case (``web.secret`` -> ``MELDPUNT_WEB_SECRET``). Its name ends in its unit's suffix (``_s``,
``_minutes``, ``_hours``, ``_days``, ``_bytes``, ``_mb``); counts, bits and pixels have none.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, get_args, get_origin, get_type_hints

PREFIX = "MELDPUNT_"

#: unit -> the suffix every setting in that unit ends with (units not named here have no suffix)
SUFFIXES: dict[str, str] = {
    "seconds": "_s",
    "minutes": "_minutes",
    "hours": "_hours",
    "days": "_days",
    "bytes": "_bytes",
    "MB": "_mb",
}

#: old environment variables still read, with a warning, until the release after 0.9 -> new name
RENAMED: dict[str, str] = {
    "MELDPUNT_MAX_VIDEO_SECONDS": "max_video_s",
    "MELDPUNT_VPDQ_SECONDS_PER_HASH": "vpdq_frame_interval_s",
    "MELDPUNT_WEB_FORM_TOKEN_SECONDS": "web.form_token_s",
    "MELDPUNT_WEB_RATE_WINDOW_SECONDS": "web.rate_window_s",
    "MELDPUNT_WEB_LOGIN_WINDOW_SECONDS": "web.login_window_s",
    "MELDPUNT_WEB_MATCHER_REFRESH_SECONDS": "matcher_refresh_s",
}

#: old environment variables whose meaning changed: starting with one set is refused
REFUSED: dict[str, str] = {
    "MELDPUNT_WEB_FORWARDED_HEADER": "MELDPUNT_WEB_FORWARDED_HEADER is no longer read (it believed the first, "
    "forgeable address): set MELDPUNT_WEB_TRUSTED_PROXIES to your proxies' addresses (CIDR) instead",
}

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class SettingsError(ValueError):
    """A setting's value cannot be used (not a number, not one of its choices, a refused variable)."""


class RenamedSettingWarning(FutureWarning):
    """An old environment variable was read; it stops being read in the next release."""


def setting(
    default: Any,
    help: str,
    *,
    unit: str = "",
    secret: bool = False,
    choices: tuple[str, ...] = (),
    shown_default: str | None = None,
) -> Any:
    """A field that is a setting: its default, one line (or a few) of help, its unit. ``secret``
    values are never printed; ``shown_default`` replaces a default that depends on the machine."""
    meta = {"help": help, "unit": unit, "secret": secret, "choices": choices, "shown_default": shown_default}
    if callable(default):
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


#: the metadata of a field holding a section of settings (``web``, ``triage``, ``staff``)
SECTION: Mapping[str, Any] = {"section": True}


@dataclass(frozen=True)
class Setting:
    """One row of the settings table."""

    name: str  #: dotted: ``db``, ``web.secret``
    env: str  #: ``MELDPUNT_DB``, ``MELDPUNT_WEB_SECRET``
    kind: type  #: int, float, bool, str or tuple (comma-separated in the environment)
    default: Any
    unit: str
    help: str
    secret: bool = False
    choices: tuple[str, ...] = ()
    shown_default: str | None = None

    @property
    def attr(self) -> str:
        return self.name.rpartition(".")[2]

    def default_text(self) -> str:
        return self.shown_default if self.shown_default is not None else show(self, self.default)

    def convert(self, raw: str, source: str) -> Any:
        """The value of ``raw`` (as found in ``source``, an environment variable) or a clear error."""
        text = raw.strip()
        try:
            if self.kind is bool:
                if text.lower() in _TRUE + _FALSE:
                    return text.lower() in _TRUE
                raise SettingsError(f"{source}: yes or no (1/0, true/false, on/off), not {raw!r}")
            if self.kind is int:
                return int(text)
            if self.kind is float:
                return float(text)
        except ValueError as e:
            if isinstance(e, SettingsError):
                raise
            raise SettingsError(f"{source}: not a number: {raw!r}") from None
        if self.kind is tuple:
            return tuple(p.strip() for p in raw.split(",") if p.strip())
        if self.choices and text.lower() not in self.choices:
            raise SettingsError(f"{source}: {', '.join(self.choices)}, not {raw!r}")
        return text.lower() if self.choices else raw


def show(row: Setting, value: Any) -> str:
    """A value as ``meldpunt settings`` and the docs write it (a secret only says whether it is set)."""
    if row.secret:
        return "(set)" if value else "(not set)"
    if isinstance(value, tuple):
        return ", ".join(value) if value else "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value if value else "(empty)"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def env_name(section_name: str, name: str) -> str:
    return f"{PREFIX}{section_name.upper()}_{name.upper()}" if section_name else f"{PREFIX}{name.upper()}"


def _kind(hint: Any) -> type:
    origin = get_origin(hint)
    if origin is tuple:
        return tuple
    if origin is not None:  # str | None and the like: the first argument
        return _kind(get_args(hint)[0])
    return hint if isinstance(hint, type) else str


def table(cls: type, section_name: str = "") -> list[Setting]:
    """Every setting of ``cls`` (sections included, in order), as rows."""
    hints = get_type_hints(cls)
    defaults = cls()
    rows: list[Setting] = []
    for f in fields(cls):
        if f.metadata.get("section"):
            rows += table(hints[f.name], f.name)
            continue
        if "help" not in f.metadata:
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with setting(): it has no help")
        m = f.metadata
        rows.append(
            Setting(
                name=f"{section_name}.{f.name}" if section_name else f.name,
                env=env_name(section_name, f.name),
                kind=_kind(hints[f.name]),
                default=getattr(defaults, f.name),
                unit=m["unit"],
                help=m["help"],
                secret=m["secret"],
                choices=m["choices"],
                shown_default=m["shown_default"],
            )
        )
    return rows


def read(
    cls: type, environ: Mapping[str, str], section_name: str = "", sources: dict[str, str] | None = None
) -> Any:
    """An instance of ``cls`` with the values the environment sets; ``sources`` gets, per setting
    set, the variable it came from. An old variable of :data:`RENAMED` is read with a warning."""
    for old, message in REFUSED.items():
        if environ.get(old) and (not section_name or old.startswith(env_name(section_name, ""))):
            raise SettingsError(message)
    found = {} if sources is None else sources
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.metadata.get("section"):
            values[f.name] = read(hints[f.name], environ, f.name, found)
    for row in table(cls, section_name):
        if "." in row.name and not section_name:
            continue  # read above, in its section
        var, raw = row.env, environ.get(row.env, "")
        if raw == "":
            var, raw = _renamed(row, environ)
        if raw != "":
            values[row.attr] = row.convert(raw, var)
            found[row.name] = var
    return cls(**values)


def _renamed(row: Setting, environ: Mapping[str, str]) -> tuple[str, str]:
    for old, new in RENAMED.items():
        if new == row.name and environ.get(old, "") != "":
            warnings.warn(
                f"{old} is deprecated and will not be read in the next release: set {row.env} instead",
                RenamedSettingWarning,
                stacklevel=4,
            )
            return old, environ[old]
    return row.env, ""
