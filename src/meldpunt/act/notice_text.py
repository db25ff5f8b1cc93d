"""The words of a notice: its e-mail (subject and body) and its webhook JSON, rendered from a
template in the contact's language.

Templates are plain text (Jinja2, sandboxed) named ``notice.<lang>.txt``: the first line is
``Subject: ...``, a blank line, then the body. nl, fr and en ship with meldpunt; a hotline adds
languages or overrides ours by putting its own files in ``notice.templates_dir``. A notice lists,
per URL, only what a provider needs to find and remove it — the URL, when it was first reported,
the hashes of its media (SHA-256, MD5, PDQ) — never the media themselves.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from meldpunt.settings import Settings

SHIPPED = Path(__file__).parent / "templates"
#: languages meldpunt ships notice templates in
SHIPPED_LANGUAGES = ("en", "fr", "nl")


class TemplateError(ValueError):
    """A notice template that cannot be used (no ``Subject:`` line, a syntax error)."""


@dataclass(frozen=True)
class MediumHashes:
    sha256: str
    md5: str = ""
    pdq: str = ""


@dataclass(frozen=True)
class NoticeLine:
    """One URL of a notice: what the provider needs to find and remove it."""

    takedown_id: int
    url: str
    first_seen: datetime
    media: tuple[MediumHashes, ...] = ()
    #: a CDN's address: ask the CDN to name the origin host
    ask_origin: bool = False


@dataclass(frozen=True)
class NoticeWords:
    reference: str
    hotline: str
    language: str
    round: int
    items: tuple[NoticeLine, ...]
    link: str
    link_expires: datetime
    first_sent: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@cache
def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        autoescape=False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def template_path(settings: Settings, language: str) -> Path | None:
    """The template for ``language``: the hotline's own first, then the shipped one."""
    names = [f"notice.{language}.txt"]
    folders = [Path(settings.notice.templates_dir)] if settings.notice.templates_dir else []
    folders.append(SHIPPED)
    for folder in folders:
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def pick_language(settings: Settings, wanted: str) -> str:
    """``wanted`` when a template exists for it, else the hotline's notice language, else English."""
    for language in (wanted.lower().strip(), settings.notice.language, "en"):
        if language and language.isalpha() and template_path(settings, language) is not None:
            return language
    return "en"


def _day(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def render(settings: Settings, words: NoticeWords) -> tuple[str, str]:
    """(subject, body) of a notice round in ``words.language``. Raises :class:`TemplateError`."""
    path = template_path(settings, words.language) or template_path(settings, "en")
    assert path is not None  # English ships with meldpunt
    try:
        template = _environment().from_string(path.read_text(encoding="utf-8"))
        text = template.render(
            reference=words.reference,
            hotline=words.hotline,
            round=words.round,
            reminder=words.round > 1,
            first_sent=_day(words.first_sent) if words.first_sent else "",
            link=words.link,
            link_expires=_day(words.link_expires),
            items=[
                {
                    **asdict(item),
                    "first_seen": _day(item.first_seen),
                    "media": [asdict(m) for m in item.media],
                }
                for item in words.items
            ],
            **words.extra,
        )
    except Exception as exc:  # a hotline's template with a mistake: say which file and why
        raise TemplateError(f"notice template {path}: {exc}") from None
    head, _, body = text.partition("\n")
    if not head.lower().startswith("subject:"):
        raise TemplateError(f"notice template {path}: the first line must be 'Subject: ...'")
    subject = " ".join(head.split(":", 1)[1].split())  # one line, whatever the template did
    return subject, body.lstrip("\n").rstrip() + "\n"


def webhook_data(words: NoticeWords) -> dict[str, Any]:
    """The JSON a provider's notice API receives: the same facts as the e-mail, as data."""
    return {
        "reference": words.reference,
        "round": words.round,
        "reminder": words.round > 1,
        "hotline": words.hotline,
        "language": words.language,
        "answer_link": words.link,
        "answer_link_expires": words.link_expires.isoformat(),
        "urls": [item.url for item in words.items],
        "items": [
            {
                "url": item.url,
                "first_seen": item.first_seen.isoformat(),
                "hashes": [asdict(m) for m in item.media],
                "ask_origin": item.ask_origin,
            }
            for item in words.items
        ],
    }
