"""The mapping between meldpunt's classification schemes and ICCAM's codes, and between our action
timeline and ICCAM's action types — as data (``mapping.yaml`` beside this module, or a hotline's own
file), checked when loaded so that a wrong code fails at start and never half-way through an export.

Why data: hotlines have schemes of their own (``triage.schemes_file``) and ICCAM's lists change; a
mapping in a file is changed without a release, and the test checks every value of the schemes in
use maps one way and back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from meldpunt.iccam.shapes import (
    ACTION_TYPES,
    AGE_CATEGORIES,
    CLASSIFICATIONS,
    CONTENT_TYPES,
    GENDER_CATEGORIES,
    Assessment,
    ShapeError,
)

DEFAULT_FILE = Path(__file__).with_name("mapping.yaml")
_MEMO = re.compile(r"^meldpunt:((?:\s+[a-z0-9_]+=[A-Za-z0-9_.-]+)*)\s*$", re.MULTILINE)


class MappingError(ValueError):
    """The mapping file does not fit: which entry, and why."""


@dataclass(frozen=True)
class Axis:
    """One of our schemes against one ICCAM field (classification, age or gender)."""

    scheme: str
    to_iccam: Mapping[str, int]
    from_iccam: Mapping[int, str]
    default: int
    implied_by: Mapping[str, Mapping[str, int]]

    def code(self, values: Mapping[str, str]) -> int | None:
        value = values.get(self.scheme)
        if value:
            return self.to_iccam.get(value)
        for scheme, table in self.implied_by.items():
            implied = table.get(values.get(scheme, ""))
            if implied is not None:
                return implied
        return None


@dataclass(frozen=True)
class IccamMapping:
    classification: Axis
    age: Axis
    gender: Axis
    carried_in_memo: tuple[str, ...]
    content_type: Mapping[str, int]
    actions: Mapping[str, int]
    unavailable_reasons: frozenset[str]
    reasons: Mapping[int, str]
    action_words: Mapping[int, str]

    # -- our classification -> ICCAM -------------------------------------------------------------
    def assessment(self, values: Mapping[str, str], analyst: str) -> Assessment:
        """ICCAM's assessment of a final classification (scheme -> value). MappingError when the
        status has no ICCAM code: exporting it would say something we did not decide."""
        classification = self.classification.code(values)
        if classification is None:
            raise MappingError(
                f"{self.classification.scheme}={values.get(self.classification.scheme)!r} has no ICCAM classification"
            )
        return Assessment(
            analyst=analyst,
            classification=classification,
            age=self.age.code(values) or self.age.default,
            gender=self.gender.code(values) or self.gender.default,
        )

    def memo(self, values: Mapping[str, str]) -> str:
        """The line that carries the schemes ICCAM has no field for (``meldpunt: us=A1 uk=A``)."""
        carried = [f"{s}={values[s]}" for s in self.carried_in_memo if values.get(s)]
        return "meldpunt: " + " ".join(carried) if carried else ""

    def illegal(self, values: Mapping[str, str]) -> bool:
        return self.classification.code(values) in (1, 2)

    # -- ICCAM -> our classification -------------------------------------------------------------
    def classification_of(self, assessment: Assessment, memo: str = "") -> dict[str, str]:
        """Our scheme values from ICCAM's assessment (and the memo line, when there is one). A code
        the mapping does not take back (doubtful, not determined) gives no value: an analyst decides."""
        out: dict[str, str] = {}
        for axis, code in (
            (self.classification, assessment.classification),
            (self.age, assessment.age),
            (self.gender, assessment.gender),
        ):
            value = axis.from_iccam.get(code)
            if value is not None and not (axis is self.gender and code == self.gender.default):
                out[axis.scheme] = value
        found = _MEMO.search(memo or "")
        if found:
            for pair in found.group(1).split():
                scheme, _, value = pair.partition("=")
                if scheme in self.carried_in_memo:
                    out[scheme] = value
        return out

    # -- the timeline -> ICCAM actions -----------------------------------------------------------
    def action_for(self, kind: str, detail: Mapping[str, Any] | None = None) -> int | None:
        """The ICCAM action type a timeline line of ``kind`` stands for (None: not one ICCAM knows)."""
        code = self.actions.get(kind)
        if code == 3 and str((detail or {}).get("reason", "")) in self.unavailable_reasons:
            return 4
        return code

    def reason(self, action_type: int) -> str:
        return self.reasons.get(action_type, "")

    def word(self, action_type: int) -> str:
        return self.action_words.get(action_type, ACTION_TYPES.get(action_type, f"action_{action_type}"))


def _codes(raw: Any, where: str, allowed: Mapping[int, str]) -> dict[str, int]:
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: expected a table of value: code")
    out: dict[str, int] = {}
    for value, code in raw.items():
        if not isinstance(code, int) or code not in allowed:
            raise MappingError(f"{where}.{value}: {code!r} is not an ICCAM code ({sorted(allowed)})")
        out[str(value)] = code
    return out


def _back(raw: Any, where: str, allowed: Mapping[int, str]) -> dict[int, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: expected a table of code: value")
    out: dict[int, str] = {}
    for code, value in raw.items():
        if not isinstance(code, int) or code not in allowed:
            raise MappingError(f"{where}: {code!r} is not an ICCAM code ({sorted(allowed)})")
        out[code] = str(value)
    return out


def _axis(raw: Any, where: str, allowed: Mapping[int, str], default: int) -> Axis:
    if not isinstance(raw, dict) or not isinstance(raw.get("scheme"), str):
        raise MappingError(f"{where}: needs a scheme name")
    implied: dict[str, dict[str, int]] = {}
    for scheme, table in (raw.get("implied_by") or {}).items():
        implied[str(scheme)] = _codes(table, f"{where}.implied_by.{scheme}", allowed)
    to_iccam = _codes(raw.get("to_iccam"), f"{where}.to_iccam", allowed)
    from_iccam = _back(raw.get("from_iccam"), f"{where}.from_iccam", allowed)
    for code, value in from_iccam.items():
        if to_iccam.get(value) != code:
            raise MappingError(f"{where}.from_iccam.{code}: {value!r} does not map back to {code}")
    return Axis(raw["scheme"], to_iccam, from_iccam, int(raw.get("default", default)), implied)


def parse(data: Any) -> IccamMapping:
    """A mapping from the YAML file's data; MappingError naming the first entry that does not fit."""
    if not isinstance(data, dict):
        raise MappingError("the mapping file is a table")
    actions = _codes(data.get("actions"), "actions", ACTION_TYPES)
    reasons = _back(data.get("reasons"), "reasons", ACTION_TYPES)
    try:
        for code in set(actions.values()) | {4}:
            if code in (4, 5, 7) and not reasons.get(code):
                raise MappingError(f"reasons: action type {code} needs a reason text")
        mapping = IccamMapping(
            classification=_axis(data.get("classification"), "classification", CLASSIFICATIONS, 1),
            age=_axis(data.get("age"), "age", AGE_CATEGORIES, 1),
            gender=_axis(data.get("gender"), "gender", GENDER_CATEGORIES, 1),
            carried_in_memo=tuple(str(s) for s in data.get("carried_in_memo") or ()),
            content_type=_codes(data.get("content_type"), "content_type", CONTENT_TYPES),
            actions=actions,
            unavailable_reasons=frozenset(str(r) for r in data.get("unavailable_reasons") or ()),
            reasons=reasons,
            action_words={
                int(k): str(v)
                for k, v in _back(data.get("action_words"), "action_words", ACTION_TYPES).items()
            },
        )
    except ShapeError as exc:
        raise MappingError(str(exc)) from None
    for key in ("page", "media"):
        if key not in mapping.content_type:
            raise MappingError(f"content_type: needs {key}")
    return mapping


def load(path: str | Path | None = None) -> IccamMapping:
    """The mapping in ``path`` (empty or None: the default beside this module)."""
    return _load(str(path or DEFAULT_FILE))


@cache
def _load(path: str) -> IccamMapping:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise MappingError(f"cannot read the ICCAM mapping {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise MappingError(f"the ICCAM mapping {path} is not YAML: {exc}") from None
    return parse(data)
