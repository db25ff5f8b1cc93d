"""Labels: one schema for what a hash-list entry says about the material it stands for.

The six fields every list format maps onto (category, baseline, series, victim_identified,
source, tags) plus VICS's own category and profile, kept exactly as given, and the other VICS
media fields (IsDistributed, ...) in ``vics`` so a VICS round trip loses nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


class LabelError(ValueError):
    """A label key or value that does not fit the schema."""


def parse_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    s = str(value).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise LabelError(f"not a yes/no value: {value!r}")


@dataclass(frozen=True, slots=True)
class Labels:
    category: str | None = None
    baseline: bool | None = None
    series: str | None = None
    victim_identified: bool | None = None
    source: str | None = None
    tags: tuple[str, ...] = ()
    vics_category: str | None = None
    vics_profile: str | None = None
    vics: Mapping[str, Any] = field(default_factory=dict)

    # -- conversion -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The labels as JSON-ready data; unset fields are left out."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None or v == () or v == {}:
                continue
            out[f.name] = list(v) if f.name == "tags" else (dict(v) if f.name == "vics" else v)
        return out

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, compact): equal labels give equal strings."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Labels:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise LabelError(f"unknown label(s): {', '.join(sorted(unknown))}")
        kw: dict[str, Any] = {}
        for key, v in data.items():
            if v is None:
                continue
            if key in ("baseline", "victim_identified"):
                kw[key] = parse_bool(v)
            elif key == "tags":
                kw[key] = _tags(v)
            elif key == "vics":
                if not isinstance(v, Mapping):
                    raise LabelError("vics must be an object")
                kw[key] = dict(v)
            else:
                kw[key] = str(v)
        return cls(**kw)

    @classmethod
    def from_json(cls, text: str | None) -> Labels:
        return cls.from_dict(json.loads(text)) if text else cls()

    @classmethod
    def from_options(cls, options: Iterable[str]) -> Labels:
        """Parse ``KEY=VALUE`` options (``--label category=A --label tags=x,y``)."""
        data: dict[str, Any] = {}
        for opt in options:
            key, sep, value = opt.partition("=")
            if not sep or not key.strip():
                raise LabelError(f"a label is KEY=VALUE, got {opt!r}")
            key = key.strip()
            if key == "tags":
                data["tags"] = [*data.get("tags", []), *_tags(value)]
            else:
                data[key] = value
        return cls.from_dict(data)

    def merged(self, other: Labels) -> Labels:
        """``self`` with every field ``other`` sets overriding it; tags are united."""
        changes: dict[str, Any] = {}
        for f in fields(other):
            v = getattr(other, f.name)
            if v is None or v == () or v == {}:
                continue
            if f.name == "tags":
                changes["tags"] = tuple(dict.fromkeys((*self.tags, *v)))
            elif f.name == "vics":
                changes["vics"] = {**self.vics, **v}
            else:
                changes[f.name] = v
        return replace(self, **changes)

    def __hash__(self) -> int:
        return hash(self.to_json())


def _tags(v: object) -> tuple[str, ...]:
    """Tags from a list, or from a string separated by ``,`` or ``|`` (as CSV cells write them)."""
    if isinstance(v, str):
        items: Iterable[object] = v.replace("|", ",").split(",")
    elif isinstance(v, Iterable):
        items = v
    else:
        raise LabelError(f"tags must be a list or a comma-separated string, got {v!r}")
    return tuple(dict.fromkeys(s for s in (str(x).strip() for x in items) if s))
