"""Classification schemes as data: which schemes, values and flags exist, which values are illegal
(and so need a second opinion), and how a classification becomes bank labels.

The defaults ship in ``schemes.yaml`` beside this module; a hotline adds a file of its own (same
format) whose schemes and flags replace those of the same name or are added. A classification is
``{"<scheme>": "<value>", ..., "flags": [...], "series": "..."}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from meldpunt.domain import Labels
from meldpunt.domain.problems import Problem as Problem  # one shape for every service

DEFAULT_FILE = Path(__file__).with_name("schemes.yaml")
LABEL_MODES = ("category", "tag", "none")
#: keys of a classification that are not scheme names
RESERVED = frozenset({"flags", "series", "media"})
#: most media one classification may name
MAX_MEDIA = 1000
MAX_SERIES = 200


class SchemeError(ValueError):
    """A schemes file that cannot be read or does not fit the format."""


class ClassificationError(ValueError):
    """A classification that does not fit the schemes; ``problems`` lists every reason (English),
    ``details`` the same as :class:`Problem` items."""

    def __init__(self, problems: Sequence[str | Problem]) -> None:
        self.details = [p if isinstance(p, Problem) else Problem("{text}", {"text": p}) for p in problems]
        self.problems = [str(p) for p in self.details]
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class SchemeValue:
    value: str
    title: str = ""
    #: the title in other languages (language code -> text), for the staff pages
    titles: Mapping[str, str] = field(default_factory=dict)
    illegal: bool = False
    baseline: bool = False
    #: schemes that must be left empty when this value is chosen
    excludes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scheme:
    name: str
    title: str
    values: tuple[SchemeValue, ...]
    required: bool = False
    must_agree: bool = True
    labels: str = "none"
    titles: Mapping[str, str] = field(default_factory=dict)

    def get(self, value: str) -> SchemeValue | None:
        return next((v for v in self.values if v.value == value), None)


@dataclass(frozen=True)
class Flag:
    name: str
    title: str = ""
    tag: bool = True
    keep_media: bool = False
    titles: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Classification:
    """Scheme values, flags, an optional series name, and the media it covers.

    ``media`` names the item's media the decision is about (ids, sorted); None means every medium
    of the item that needed review. An analyst leaves out what is not the point of the report (a
    site's logo, a banner) so that it does not go into the hotline's bank with the item."""

    values: Mapping[str, str] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    series: str | None = None
    media: tuple[int, ...] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Classification:
        if not isinstance(data, Mapping):
            raise ClassificationError([Problem("a classification is an object of scheme values and flags")])
        problems: list[Problem] = []
        values: dict[str, str] = {}
        for k, v in data.items():
            if k in RESERVED or v is None or v == "":
                continue
            if not isinstance(v, str):
                problems.append(
                    Problem("{scheme}: a value is a text, got {got}", {"scheme": str(k), "got": repr(v)})
                )
            else:
                values[str(k)] = v
        raw_flags = data.get("flags") or []
        if isinstance(raw_flags, str) or not isinstance(raw_flags, Iterable):
            problems.append(Problem("flags: a list of flag names"))
            raw_flags = []
        flags = tuple(sorted({str(f) for f in raw_flags}))
        series = data.get("series")
        if series is not None and not isinstance(series, str):
            problems.append(Problem("series: a text"))
            series = None
        media: tuple[int, ...] | None = None
        raw_media = data.get("media")
        if raw_media is not None:
            if isinstance(raw_media, str) or not isinstance(raw_media, Iterable):
                problems.append(Problem("media: a list of medium ids"))
            else:
                ids = list(raw_media)
                if not all(isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in ids):
                    problems.append(Problem("media: medium ids are positive whole numbers"))
                elif not ids:
                    problems.append(Problem("media: choose at least one medium"))
                elif len(ids) > MAX_MEDIA:
                    problems.append(Problem("media: at most {n}", {"n": str(MAX_MEDIA)}))
                else:
                    media = tuple(sorted(set(ids)))
        if problems:
            raise ClassificationError(problems)
        return cls(dict(sorted(values.items())), flags, (series or "").strip() or None, media)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(sorted(self.values.items()))
        if self.flags:
            out["flags"] = list(self.flags)
        if self.series:
            out["series"] = self.series
        if self.media is not None:
            out["media"] = list(self.media)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Classification:
        return cls.from_dict(json.loads(text))


class Schemes:
    def __init__(self, schemes: Sequence[Scheme], flags: Sequence[Flag]) -> None:
        self.schemes = {s.name: s for s in schemes}
        self.flags = {f.name: f for f in flags}

    # -- loading -----------------------------------------------------------------------------------
    @classmethod
    def load(cls, *extra: str | Path) -> Schemes:
        """The defaults, then each extra file in turn (same names replace, new names are added)."""
        schemes: dict[str, Scheme] = {}
        flags: dict[str, Flag] = {}
        for path in (DEFAULT_FILE, *(Path(p) for p in extra if str(p))):
            try:
                data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError) as e:
                raise SchemeError(f"{path}: cannot read the schemes file: {e}") from None
            s, f = _parse(data, str(path))
            schemes.update({x.name: x for x in s})
            flags.update({x.name: x for x in f})
        out = cls(list(schemes.values()), list(flags.values()))
        out._check_references()
        return out

    @classmethod
    def from_data(cls, data: Any, origin: str = "<data>") -> Schemes:
        s, f = _parse(data, origin)
        out = cls(s, f)
        out._check_references()
        return out

    def _check_references(self) -> None:
        for s in self.schemes.values():
            for v in s.values:
                unknown = [x for x in v.excludes if x not in self.schemes]
                if unknown:
                    raise SchemeError(f"scheme {s.name}, value {v.value}: excludes unknown {unknown}")

    # -- rules -------------------------------------------------------------------------------------
    def validate(self, data: Mapping[str, Any] | Classification) -> Classification:
        """The classification, checked: every problem is listed in one ``ClassificationError``."""
        c = data if isinstance(data, Classification) else Classification.from_dict(data)
        problems: list[Problem] = []
        for name, value in c.values.items():
            scheme = self.schemes.get(name)
            if scheme is None:
                problems.append(
                    Problem(
                        "unknown scheme {name} (known: {known})",
                        {"name": repr(name), "known": ", ".join(self.schemes)},
                    )
                )
            elif scheme.get(value) is None:
                allowed = ", ".join(v.value for v in scheme.values)
                problems.append(
                    Problem(
                        "{scheme}: {got} is not one of {allowed}",
                        {"scheme": name, "got": repr(value), "allowed": allowed},
                    )
                )
        for scheme in self.schemes.values():
            if scheme.required and scheme.name not in c.values:
                problems.append(Problem("{scheme} is required", {"scheme": scheme.name}))
        for name, sv in self._chosen(c):
            for other in sv.excludes:
                if other in c.values:
                    problems.append(
                        Problem(
                            "{other} must be empty when {scheme} is {value}",
                            {"other": other, "scheme": name, "value": sv.value},
                        )
                    )
        for f in c.flags:
            if f not in self.flags:
                problems.append(
                    Problem(
                        "unknown flag {name} (known: {known})",
                        {"name": repr(f), "known": ", ".join(self.flags)},
                    )
                )
        if c.series is not None and len(c.series) > MAX_SERIES:
            problems.append(Problem("series: at most {n} characters", {"n": str(MAX_SERIES)}))
        if problems:
            raise ClassificationError(problems)
        return c

    def _chosen(self, c: Classification) -> list[tuple[str, SchemeValue]]:
        out = []
        for name, value in c.values.items():
            scheme = self.schemes.get(name)
            sv = scheme.get(value) if scheme else None
            if sv is not None:
                out.append((name, sv))
        return out

    def is_illegal(self, c: Classification) -> bool:
        return any(sv.illegal for _, sv in self._chosen(c))

    def keeps_media(self, c: Classification) -> bool:
        return any(self.flags[f].keep_media for f in c.flags if f in self.flags)

    def agree(self, a: Classification, b: Classification) -> bool:
        """Whether two opinions agree: the same value (or none) in every ``must_agree`` scheme, and
        at least one medium chosen by both."""
        if a.media is not None and b.media is not None and not set(a.media) & set(b.media):
            return False
        return all(
            a.values.get(s.name) == b.values.get(s.name) for s in self.schemes.values() if s.must_agree
        )

    def combine(self, first: Classification, second: Classification) -> Classification:
        """The final classification of two agreeing opinions: the second's values where it gave one
        (the first's otherwise), the flags of both, the series either named (the second's first),
        and only the media both chose (None: all)."""
        values = {**first.values, **second.values}
        if first.media is None or second.media is None:
            media = second.media if first.media is None else first.media
        else:
            media = tuple(sorted(set(first.media) & set(second.media)))
        return Classification(
            dict(sorted(values.items())),
            tuple(sorted({*first.flags, *second.flags})),
            second.series or first.series,
            media,
        )

    def labels(self, c: Classification, source: str) -> Labels:
        """The bank labels of a final classification, in the engine's label schema."""
        category = None
        baseline = False
        tags: list[str] = []
        for scheme in self.schemes.values():
            value = c.values.get(scheme.name)
            sv = scheme.get(value) if value is not None else None
            if sv is None:
                continue
            baseline = baseline or sv.baseline
            if scheme.labels == "category" and category is None:
                category = sv.value
            elif scheme.labels == "category" or scheme.labels == "tag":
                tags.append(f"{scheme.name}:{sv.value}")
        tags += [f for f in c.flags if f in self.flags and self.flags[f].tag]
        return Labels(category=category, baseline=baseline, series=c.series, source=source, tags=tuple(tags))

    def describe(self, lang: str = "en") -> dict[str, Any]:
        """The schemes as plain data (for a form), titles in ``lang`` where the file gives them."""
        return {
            "schemes": [
                {
                    "name": s.name,
                    "title": s.titles.get(lang, s.title),
                    "required": s.required,
                    "values": [{"value": v.value, "title": v.titles.get(lang, v.title)} for v in s.values],
                }
                for s in self.schemes.values()
            ],
            "flags": [{"name": f.name, "title": f.titles.get(lang, f.title)} for f in self.flags.values()],
        }


def _bool(d: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    v = d.get(key, default)
    if not isinstance(v, bool):
        raise SchemeError(f"{where}: {key} must be true or false, got {v!r}")
    return v


def _title(d: Mapping[str, Any], default: str, where: str) -> tuple[str, dict[str, str]]:
    """``title``: a text, or a mapping of language code to text (``en`` the default title)."""
    v = d.get("title", default)
    if isinstance(v, Mapping):
        titles = {str(k).strip().lower(): str(t) for k, t in v.items() if isinstance(t, (str, int, float))}
        if not titles:
            raise SchemeError(f"{where}: title is a text or a mapping of language code to text")
        return titles.get("en", next(iter(titles.values()))), titles
    return str(v), {}


def _name(d: Mapping[str, Any], key: str, where: str) -> str:
    v = d.get(key)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = str(v)
    if not isinstance(v, str) or not v.strip():
        raise SchemeError(f"{where}: {key} is required (a non-empty string)")
    return v.strip()


def _parse(data: Any, origin: str) -> tuple[list[Scheme], list[Flag]]:
    if data is None:
        return [], []
    if not isinstance(data, Mapping):
        raise SchemeError(f"{origin}: the top level is a mapping with 'schemes' and/or 'flags'")
    unknown = set(data) - {"schemes", "flags"}
    if unknown:
        raise SchemeError(f"{origin}: unknown key(s) {sorted(unknown)}")
    schemes: list[Scheme] = []
    for i, s in enumerate(data.get("schemes") or []):
        where = f"{origin}: scheme #{i + 1}"
        if not isinstance(s, Mapping):
            raise SchemeError(f"{where}: a scheme is a mapping")
        name = _name(s, "name", where)
        where = f"{origin}: scheme {name}"
        if name in RESERVED:
            raise SchemeError(f"{where}: {name!r} is reserved")
        labels = s.get("labels", "none")
        if labels not in LABEL_MODES:
            raise SchemeError(f"{where}: labels must be one of {', '.join(LABEL_MODES)}")
        values: list[SchemeValue] = []
        for v in s.get("values") or []:
            if not isinstance(v, Mapping):
                raise SchemeError(f"{where}: a value is a mapping with 'value'")
            value = _name(v, "value", where)
            excludes = v.get("excludes") or []
            if not isinstance(excludes, list) or not all(isinstance(x, str) for x in excludes):
                raise SchemeError(f"{where}, value {value}: excludes is a list of scheme names")
            title, titles = _title(v, "", f"{where}, value {value}")
            values.append(
                SchemeValue(
                    value=value,
                    title=title,
                    titles=titles,
                    illegal=_bool(v, "illegal", False, f"{where}, value {value}"),
                    baseline=_bool(v, "baseline", False, f"{where}, value {value}"),
                    excludes=tuple(excludes),
                )
            )
        if not values:
            raise SchemeError(f"{where}: a scheme needs values")
        if len({v.value for v in values}) != len(values):
            raise SchemeError(f"{where}: a value is listed twice")
        title, titles = _title(s, name, where)
        schemes.append(
            Scheme(
                name=name,
                title=title,
                titles=titles,
                values=tuple(values),
                required=_bool(s, "required", False, where),
                must_agree=_bool(s, "must_agree", True, where),
                labels=str(labels),
            )
        )
    flags: list[Flag] = []
    for i, f in enumerate(data.get("flags") or []):
        where = f"{origin}: flag #{i + 1}"
        if not isinstance(f, Mapping):
            raise SchemeError(f"{where}: a flag is a mapping with 'name'")
        name = _name(f, "name", where)
        title, titles = _title(f, name, f"{origin}: flag {name}")
        flags.append(
            Flag(
                name=name,
                title=title,
                titles=titles,
                tag=_bool(f, "tag", True, f"{origin}: flag {name}"),
                keep_media=_bool(f, "keep_media", False, f"{origin}: flag {name}"),
            )
        )
    return schemes, flags
