"""The staff pages in the analyst's browser language (Accept-Language; no ``?lang=`` there): Dutch,
French, and English without the header. Every template and Python message is in the catalogues
(:func:`tests.test_web_public.test_every_message_is_translated`); here: the pages come out in the
language, and no staff template holds English text outside ``t(…)``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.helpers.webclient import WEB, WebClient
from tests.helpers.workspace import Workspace, _workspace

DUTCH = "nl-BE,nl;q=0.9"
FRENCH = "fr-BE,fr;q=0.9,en;q=0.5"

#: the staff pages' templates (the public ones are checked by the public pages' tests)
STAFF_TEMPLATES = ("staff_", "ws_", "ov_", "wl_", "bk_")
#: words a staff template may show as they are: technical names, not English
AS_IS = {
    "MD5",
    "SHA-1",
    "SHA-256",
    "PDQ",
    "sha256",
    "KEY",
    "VALUE",
    "category",
    "tags",
    "meldpunt",
    "bank",
    "import",
}


@pytest.fixture
def ws(sqlite_db: str) -> Iterator[Workspace]:
    with ExitStack() as stack:
        yield _workspace(sqlite_db, stack)


def _analyst(ws: Workspace, name: str, accept_language: str | None) -> WebClient:
    client = ws.user(name, "analyst")  # enrols and signs in (in English: no header yet)
    if accept_language:
        client.headers["Accept-Language"] = accept_language
    return client


@pytest.mark.parametrize(
    ("accept_language", "lang", "queue_words", "item_words"),
    [
        (
            DUTCH,
            "nl",
            ["Wachtrij", "Gemelde URL", "Afgehandeld zonder dat iemand ze hoefde te bekijken", "dringend"],
            [
                "Voor u geclaimd tot",
                "Vervaagde miniatuur in grijstinten van medium",
                "Classificatie",
                "onthullen",
            ],
        ),
        (
            FRENCH,
            "fr",
            ["File d'attente", "URL signalée", "Traités sans que personne ne les regarde", "urgent"],
            [
                "Réservé pour vous jusqu'à",
                "Miniature floutée en niveaux de gris du média",
                "Classification",
                "Révéler le média",
            ],
        ),
        (
            None,
            "en",
            ["Queue", "Reported URL", "Resolved without anyone viewing them", "urgent"],
            [
                "Claimed for you until",
                "Blurred greyscale thumbnail of medium",
                "Save classification",
                "Reveal medium",
            ],
        ),
    ],
)
def test_the_queue_and_an_item_come_in_the_browser_language(
    ws: Workspace, accept_language: str | None, lang: str, queue_words: list[str], item_words: list[str]
) -> None:
    ws.item()
    item = ws.item(urgent=True)
    client = _analyst(ws, "ana", accept_language)
    queue = client.get("/queue")
    assert queue.status_code == 200
    html = queue.text.replace("&#39;", "'")
    assert f'<html lang="{lang}">' in html
    for words in queue_words:
        assert words in html, (lang, words)
    page = client.get(f"/items/{item}")
    assert page.status_code == 200
    html = page.text.replace("&#39;", "'")
    assert f'<html lang="{lang}">' in html
    for words in item_words:
        assert words.casefold() in html.casefold(), (lang, words)
    # a message the Python code puts on the queue, and a ?lang= that staff pages do not follow
    released = client.post(f"/items/{item}/release", data={"token": _token(page.text)})
    assert released.status_code == 303
    after = client.get(str(released.headers["location"]) + "&lang=en").text
    expected = {"nl": "Item vrijgegeven.", "fr": "Élément libéré.", "en": "Item released."}[lang]
    assert expected in after.replace("&#39;", "'")


def _token(html: str) -> str:
    found = re.search(r'name="token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def _bare_text(template: str) -> list[str]:
    """Words of a template outside Jinja expressions, statements, comments and HTML tags."""
    text = re.sub(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", " ", template, flags=re.S)
    shown = " ".join(
        re.findall(r'\b(?:alt|aria-label|title|placeholder)="([^"]*)"', text)
    )  # attributes read out
    text = re.sub(r"<!doctype[^>]*>|<[^>]*>", " ", text, flags=re.S | re.I) + " " + shown
    return [w for w in re.findall(r"[A-Za-z][A-Za-z0-9-]+", text) if w not in AS_IS]


def test_no_staff_template_holds_english_outside_gettext() -> None:
    found = {
        p.name: words
        for p in sorted(WEB.joinpath("templates").glob("*.html"))
        if p.name.startswith(STAFF_TEMPLATES) and (words := _bare_text(p.read_text()))
    }
    assert not found, found


@pytest.mark.parametrize(
    ("accept_language", "lang", "heading"),
    [
        (DUTCH, "nl", "Inloggen voor medewerkers"),
        (FRENCH, "fr", "Connexion du personnel"),
        (None, "en", "Staff sign-in"),
    ],
)
def test_the_sign_in_page_comes_in_the_browser_language(
    ws: Workspace, accept_language: str | None, lang: str, heading: str
) -> None:
    client = ws.staff.client()
    if accept_language:
        client.headers["Accept-Language"] = accept_language
    page = client.get("/login").text
    assert f'<html lang="{lang}">' in page and f"<h1>{heading}</h1>" in page


def test_staff_sign_in_pages_have_no_public_language_links_or_footer(ws: Workspace) -> None:
    """Staff pages follow the browser's language: the public pages' ?lang= links would do nothing
    there, and the public footer (help for reporters) is not for staff."""
    client = ws.staff.client()
    page = client.get("/login").text
    assert "?lang=" not in page and 'class="langs"' not in page and "<footer" not in page
    public = client.get("/").text
    assert "?lang=nl" in public and "<footer" in public
