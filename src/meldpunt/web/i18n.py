"""Dutch, French and English with gettext: the .po files in ``locale/`` are compiled in memory at
start-up with Babel (no build step, no .mo files to keep in step).

The language comes from ``?lang=`` (or the form's hidden ``lang`` field) — a link, no cookie — else
from Accept-Language, else English. Staff pages follow Accept-Language only
(:func:`meldpunt.web.context.staff_language`). Message ids are the English text.
"""

from __future__ import annotations

import gettext
import html
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from markupsafe import Markup

LANGUAGES: dict[str, str] = {"nl": "Nederlands", "fr": "Français", "en": "English"}
DEFAULT_LANGUAGE = "en"
LOCALE_DIR = Path(__file__).parent / "locale"


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``lang`` (English: the message ids themselves)."""
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if lang not in LANGUAGES or not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def pick_language(requested: str | None, accept_language: str | None) -> str:
    """An explicit choice if we have it, else the best of Accept-Language, else English."""
    if requested:
        code = requested.strip().lower()[:2]
        if code in LANGUAGES:
            return code
    best: tuple[float, int, str] | None = None
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        pieces = part.strip().split(";")
        code = pieces[0].strip().lower()[:2]
        if code not in LANGUAGES:
            continue
        q = 1.0
        for p in pieces[1:]:
            name, _, value = p.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and (best is None or (q, -position) > (best[0], best[1])):
            best = (q, -position, code)
    return best[2] if best else DEFAULT_LANGUAGE


@dataclass(frozen=True)
class Translator:
    lang: str

    @property
    def gettext(self) -> Callable[[str], str]:
        return translations(self.lang).gettext

    def __call__(self, message: str, **values: object) -> str:
        text = translations(self.lang).gettext(message)
        return text.format(**values) if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: object) -> str:
        text = translations(self.lang).ngettext(singular, plural, n)
        return text.format(n=n, **values)

    def markup(self, message: str, **values: object) -> Markup:
        """A message for an element's content, with markup put in through its placeholders: the
        translated text is escaped (``&``, ``<``, ``>``; quotes stay as written, which text
        content allows — never use it inside an attribute), and so is every value unless it is
        markup already (a template's ``{% set %}`` block). The message id holds no HTML, and a
        translation cannot add any."""
        text = html.escape(translations(self.lang).gettext(message), quote=False)
        return Markup(text).format(**values) if values else Markup(text)


def N_(message: str) -> str:
    """Mark a message id for translation where it is defined; it is translated where it is shown."""
    return message


def catalog_ids(lang: str) -> Mapping[str, str]:
    """msgid -> msgstr of a catalogue (for tests: every message used is translated)."""
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    return {str(m.id): str(m.string) for m in catalog if m.id and isinstance(m.id, str)}


def catalog_plurals(lang: str) -> Mapping[tuple[str, str], tuple[str, ...]]:
    """(singular, plural) -> the plural forms of a catalogue (for tests, like :func:`catalog_ids`)."""
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    return {
        (str(m.id[0]), str(m.id[1])): tuple(str(s) for s in m.string or ())
        for m in catalog
        if m.id and isinstance(m.id, tuple)
    }


@cache
def _territories(lang: str) -> Mapping[str, str]:
    from babel import Locale, UnknownLocaleError

    try:
        return dict(Locale.parse(lang).territories)
    except (ValueError, UnknownLocaleError):
        return {}


def country_name(code: str, lang: str) -> str:
    """A country's name in ``lang`` (``FR`` -> "Frankrijk" in Dutch), from Babel's territory names
    (CLDR), so no catalogue has to keep some 250 names in step; the code itself when Babel has no
    name for it, "" for "". Pages show names: a person reads "Pays-Bas", not "NL"."""
    code = code.strip().upper()
    if not code:
        return ""
    return _territories(lang if lang in LANGUAGES else DEFAULT_LANGUAGE).get(code, code)
