"""The registry of list formats, by name.

The built-in formats are registered with ``register_format`` exactly as a third party would add
its own (``register_format(MyFormat())``); the CLI and the importer look formats up by name with
``get_format``.
"""

from __future__ import annotations

from meldpunt.banks.formats.base import ListFormat

FORMATS: dict[str, ListFormat] = {}


def register_format(fmt: ListFormat, *, replace: bool = False) -> ListFormat:
    """Add ``fmt`` under ``fmt.name`` (lower-case); a name already taken needs ``replace=True``."""
    if not isinstance(fmt, ListFormat):
        raise TypeError(f"{fmt!r} is not a ListFormat (name, carries_labels, read, write)")
    name = fmt.name.strip().lower()
    if not name:
        raise ValueError("a list format needs a name")
    if name in FORMATS and not replace:
        raise ValueError(f"a list format named {name!r} is already registered")
    FORMATS[name] = fmt
    return fmt


def get_format(name: str) -> ListFormat:
    """The format called ``name`` (any case); a clear ``ValueError`` naming the known ones if none."""
    try:
        return FORMATS[name.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise ValueError(f"unknown list format {name!r}; known formats: {known}") from None
