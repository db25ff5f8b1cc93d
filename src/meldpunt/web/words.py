"""Words for the codes a staff page shows: item states, medium outcomes and kinds, report sources,
opinion roles, staff roles, bank policies and classification values — in the page's language,
never the raw code (``needs_review``, ``api:partner``, ``nationally_illegal``, ``second``).

Every template gets a :class:`Words` as ``word`` (``{{ word.state(i.state) }}``). A code this
module does not know is shown as it is: a new state shows up untranslated rather than not at all
(the staff pages' i18n test lists every code and fails on one without a word).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from meldpunt.triage import Classification, Problem, Schemes
from meldpunt.web.i18n import N_, Translator

STATES = {
    "received": N_("received"),
    "fetched": N_("fetched"),
    "hashed": N_("hashed"),
    "matched": N_("matched"),
    "known": N_("known from a hash list"),
    "needs_review": N_("awaiting review"),
    "classified": N_("classified"),
    "unavailable": N_("unavailable"),
    "failed": N_("failed"),
}
OUTCOMES = {
    "known": N_("on a hash list"),
    "ignored": N_("on a benign list"),
    "new": N_("new"),
    "failed": N_("could not be read"),
    "": N_("pending"),
}
KINDS = {"image": N_("image"), "video": N_("video"), "other": N_("other file")}
#: opinions on an item (``triage_classifications.role``)
OPINIONS = {
    "first": N_("first opinion"),
    "second": N_("second opinion"),
    "resolution": N_("senior's resolution"),
    "correction": N_("senior's correction"),
}
#: staff roles (``accounts.roles``)
ROLES = {
    "analyst": N_("analyst"),
    "senior": N_("senior analyst"),
    "police": N_("police liaison"),
    "admin": N_("administrator"),
}
#: where the reporter saw it (the public form's words)
SEEN_ON = {
    "website": N_("A website"),
    "social": N_("A social network"),
    "chat": N_("A chat or messaging app"),
    "filesharing": N_("A file-sharing service"),
    "other": N_("Somewhere else"),
}
SOURCE_PUBLIC = N_("public report form")
SOURCE_API = N_("API ({client})")
SOURCE_PARTNER = N_("partner hotline ({name})")
SOURCE_ANY_API = N_("any API client")
UNKNOWN = N_("unknown")
POLICIES = {"auto": N_("classifies"), "hint": N_("hint"), "ignore": N_("benign")}
#: triage stages
STAGES = {
    "second": N_("awaiting a second opinion"),
    "disagreement": N_("in disagreement"),
    "final": N_("final"),
}


@dataclass(frozen=True)
class Words:
    t: Translator
    schemes: Schemes | None = None

    def _of(self, table: Mapping[str, str], value: str | None) -> str:
        code = value or ""
        return self.t(table[code]) if code in table else code

    def state(self, value: str | None) -> str:
        return self._of(STATES, value)

    def outcome(self, value: str | None) -> str:
        return self._of(OUTCOMES, value)

    def kind(self, value: str | None) -> str:
        return self._of(KINDS, value) if value else self.t(UNKNOWN)

    def opinion(self, value: str | None) -> str:
        return self._of(OPINIONS, value)

    def role(self, value: str | None) -> str:
        return self._of(ROLES, value)

    def policy(self, value: str | None) -> str:
        return self._of(POLICIES, value)

    def seen_on(self, value: str | None) -> str:
        return self._of(SEEN_ON, value)

    def stage(self, value: str | None) -> str:
        return self._of(STAGES, value)

    def source(self, value: str | None) -> str:
        """``public`` (the form), ``api:<client>``, or another channel's name."""
        code = value or ""
        if code == "public":
            return self.t(SOURCE_PUBLIC)
        kind, sep, name = code.partition(":")
        if sep and kind == "api" and name == "*":
            return self.t(SOURCE_ANY_API)
        if sep and kind == "api":
            return self.t(SOURCE_API, client=name)
        if sep and kind == "partner":
            return self.t(SOURCE_PARTNER, name=name)
        return code

    def scheme(self, name: str) -> str:
        s = self.schemes.schemes.get(name) if self.schemes is not None else None
        return s.titles.get(self.t.lang, s.title) if s is not None else name

    def value(self, scheme: str, value: str) -> str:
        s = self.schemes.schemes.get(scheme) if self.schemes is not None else None
        v = s.get(value) if s is not None else None
        return (v.titles.get(self.t.lang, v.title) or value) if v is not None else value

    def flag(self, name: str) -> str:
        f = self.schemes.flags.get(name) if self.schemes is not None else None
        return (f.titles.get(self.t.lang, f.title) or name) if f is not None else name

    def values(self, pairs: Iterable[tuple[str, str]] | Mapping[str, str]) -> list[str]:
        """``scheme: value`` for each chosen value, both by their titles."""
        items = pairs.items() if isinstance(pairs, Mapping) else pairs
        return [f"{self.scheme(k)}: {self.value(k, v)}" for k, v in items]

    def problem(self, p: Problem) -> str:
        """A reason a classification was refused, in words: schemes and values by their titles."""
        v = dict(p.values)
        if "value" in v and "scheme" in v:
            v["value"] = self.value(v["scheme"], v["value"])
        for k in ("scheme", "other"):
            if k in v:
                v[k] = self.scheme(v[k])
        return self.t(p.message, **v)

    def classification(self, c: Classification) -> str:
        """A classification in words: its values, flags, series and media, by their titles."""
        parts = self.values(c.values)
        if c.flags:
            parts.append(self.t("flags: {flags}", flags=", ".join(self.flag(f) for f in c.flags)))
        if c.series:
            parts.append(self.t("series: {series}", series=c.series))
        if c.media is not None:
            parts.append(self.t("media: {media}", media=", ".join(map(str, c.media))))
        return "; ".join(parts)


@cache
def _schemes(file: str) -> Schemes:
    return Schemes.load(file) if file else Schemes.load()


def schemes_of(app_state: Any) -> Schemes:
    """The triage service's schemes when the app has one, else those its settings name."""
    triage = getattr(app_state, "triage", None)
    found = getattr(triage, "schemes", None)
    if isinstance(found, Schemes):
        return found
    return _schemes(app_state.ctx.services.settings.triage.schemes_file)
