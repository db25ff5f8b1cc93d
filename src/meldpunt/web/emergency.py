"""The emergency numbers on the public form's urgent box and the receipt: the hotline's country's
numbers, each with its label in the page's language.

``web.emergency_numbers`` (``MELDPUNT_WEB_EMERGENCY_NUMBERS``, comma-separated) holds entries of
the form::

    NUMBER=LABEL                              one label, shown through the catalogues
    NUMBER=en:LABEL|nl:LABEL|fr:LABEL         a label per language (English, else the first, elsewhere)
    TEXT                                      the old form: free text, shown through the catalogues

A Belgian hotline::

    112=EU emergency number,101=Police,116 000=en:Missing children (Child Focus)|nl:Vermiste kinderen (Child Focus)|fr:Enfants disparus (Child Focus)

A label given once is looked up in the catalogues, so the labels shipped here (:data:`KNOWN`) come
translated; a hotline writing its own labels writes them per language. Labels cannot hold a comma
or ``|`` (the separators). The old form (``112 (EU emergency number)``) keeps working unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from meldpunt.web.i18n import LANGUAGES, N_, Translator

#: labels the catalogues translate, so ``NUMBER=LABEL`` with one of these needs no per-language text
KNOWN = (
    N_("EU emergency number"),
    N_("Emergency services"),
    N_("Police"),
    N_("Missing children"),
    N_("Missing children (Child Focus)"),
    N_("Child helpline"),
)

_NUMBER = re.compile(r"^\+?[0-9][0-9 ]{0,19}$")
_LANG = re.compile(r"^([a-z]{2}):(.*)$", re.S)


@dataclass(frozen=True)
class EmergencyNumber:
    """One configured entry: a number with labels (``""``: the one label for every language), or
    the old free text (``number`` empty)."""

    number: str
    labels: dict[str, str] = field(default_factory=dict)
    text: str = ""

    def label(self, t: Translator) -> str:
        lang = t.lang
        if lang in self.labels:
            return self.labels[lang]
        if "" in self.labels:
            return t.gettext(self.labels[""])
        if "en" in self.labels:
            return self.labels["en"]
        return next(iter(self.labels.values()), "")


@dataclass(frozen=True)
class Shown:
    """An emergency number as a page shows it."""

    number: str
    label: str
    #: the number to dial (``tel:``), "" for old free-text entries
    tel: str

    def __str__(self) -> str:
        return f"{self.number} ({self.label})" if self.label else self.number


def parse(entries: tuple[str, ...] | list[str]) -> tuple[EmergencyNumber, ...]:
    """The setting's entries, or ValueError naming the one that cannot be read."""
    parsed: list[EmergencyNumber] = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        if "=" not in entry:
            parsed.append(EmergencyNumber("", {}, entry))
            continue
        number, _, rest = entry.partition("=")
        number = " ".join(number.split())
        if not _NUMBER.match(number):
            raise ValueError(
                f"web.emergency_numbers: {entry!r}: {number!r} is not a phone number (digits, spaces, a leading +)"
            )
        labels: dict[str, str] = {}
        for piece in rest.split("|"):
            piece = piece.strip()
            if not piece:
                continue
            found = _LANG.match(piece)
            lang, label = (found.group(1), found.group(2).strip()) if found else ("", piece)
            if found and lang not in LANGUAGES:
                raise ValueError(
                    f"web.emergency_numbers: {entry!r}: {lang!r} is not a language of the pages "
                    f"({', '.join(LANGUAGES)})"
                )
            if lang in labels:
                raise ValueError(
                    f"web.emergency_numbers: {entry!r}: two labels for {lang or 'every language'}"
                )
            labels[lang] = label
        parsed.append(EmergencyNumber(number, labels))
    return tuple(parsed)


def shown(numbers: tuple[EmergencyNumber, ...], t: Translator) -> list[Shown]:
    """The numbers in ``t``'s language."""
    out = []
    for n in numbers:
        if not n.number:
            out.append(Shown(t.gettext(n.text), "", ""))
        else:
            out.append(Shown(n.number, n.label(t), n.number.replace(" ", "")))
    return out
