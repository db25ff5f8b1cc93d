"""Every staff page in Dutch and French, with data in every state, holds no untranslated message and
no raw code: item states, medium outcomes, report sources (``public``, ``api:…``), scheme values
(``nationally_illegal``), opinion and staff roles, validation errors of classification and
preferences. Untranslated messages are caught as they are looked up (a fallback catalogue that
records every miss); raw codes by the words of the page's visible text."""

from __future__ import annotations

import gettext
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from html.parser import HTMLParser

import pytest
from sqlalchemy import update

from meldpunt.domain.reports import ItemState, MediumOutcome
from meldpunt.store.reports import Item, Medium
from meldpunt.web.i18n import translations
from tests.helpers.staff import token
from tests.helpers.webclient import WebClient
from tests.helpers.workspace import Workspace, _workspace, classify
from tests.helpers.world import ILLEGAL, NATIONAL, NOT_ILLEGAL

LANGS = {"nl": "nl-BE,nl;q=0.9", "fr": "fr-BE,fr;q=0.9"}
#: codes that must never be shown as they are (words of that spelling that the language itself
#: uses are left out per language: French "police", "image", "public" …)
CODES = (
    {s.value for s in ItemState}
    | {o.value for o in MediumOutcome}
    | {"first", "second", "resolution", "correction", "disagreement", "final"}
    | {"analyst", "police", "admin", "public", "auto", "hint", "ignore", "image", "video", "other"}
    | {"nationally_illegal", "not_illegal", "baseline_illegal", "series_known", "prepubescent", "website"}
)
NATIVE = {
    "nl": {"video", "hint", "auto", "website"},
    "fr": {"police", "image", "public", "correction", "final", "auto", "second"},
}
WORD = re.compile(r"[\w:]+")


class _Misses(gettext.NullTranslations):
    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def gettext(self, message: str) -> str:
        self.seen.add(message)
        return message

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        self.seen.add(msgid1)
        return msgid1 if n == 1 else msgid2


@contextmanager
def misses(lang: str) -> Iterator[_Misses]:
    catalogue = translations(lang)
    recorder = _Misses()
    catalogue.add_fallback(recorder)
    try:
        yield recorder
    finally:
        catalogue._fallback = None  # type: ignore[attr-defined]


class _Text(HTMLParser):
    """The visible text, less code (hashes, URLs) and keyboard keys."""

    SKIP = frozenset({"code", "kbd", "script", "style"})

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if not self.depth:
            self.parts.append(data)


def visible_words(html: str) -> set[str]:
    p = _Text()
    p.feed(html)
    return set(WORD.findall(" ".join(p.parts)))


@pytest.fixture
def ws(sqlite_db: str) -> Iterator[Workspace]:
    with ExitStack() as stack:
        yield _workspace(sqlite_db, stack)


def _data(ws: Workspace) -> dict[str, int]:
    """Items in every state and stage, from the public form and from an API client."""
    t = ws.triage
    for name in ("ana", "ben"):
        ws.staff.accounts.create_user(name, "analyst", "correct horse battery staple 1")
    items = {
        "open": ws.item(urgent=True),
        "api": ws.item(source="api:partner"),
        "second": ws.item(),
        "disagreement": ws.item(),
        "classified": ws.item(urgent=True),
        "banked": ws.item(),
    }
    t.claim(items["second"], "ana")
    t.classify(items["second"], "ana", ILLEGAL)
    for user, c in (("ana", ILLEGAL), ("ben", NATIONAL)):
        t.claim(items["disagreement"], user)
        t.classify(items["disagreement"], user, c)
    t.claim(items["classified"], "ana")
    t.classify(items["classified"], "ana", NOT_ILLEGAL)
    for user in ("ana", "ben"):
        t.claim(items["banked"], user)
        t.classify(items["banked"], user, ILLEGAL)
    for state in ("received", "fetched", "unavailable", "failed", "known"):
        items[state] = ws.world.item(state=state, urgent=True, pdqs=(ws.world.pdq(), ws.world.pdq()))
    with ws.world.engine.begin() as conn:
        for state, outcome in (("known", "known"), ("unavailable", "failed")):
            conn.execute(update(Medium).where(Medium.item_id == items[state]).values(outcome=outcome))
        conn.execute(update(Item).values(host="example.test"))
    return items


def _check(
    lang: str, client: WebClient, url: str, *, form: dict[str, str] | None = None, status: int = 200
) -> None:
    with misses(lang) as recorder:
        if form is None:
            r = client.get(url)
        else:
            page = client.get(url)
            r = client.post(url, data={"token": token(page.text), **form})
    assert r.status_code == status, (url, r.status_code)
    assert not recorder.seen, f"{lang} {url}: not in the catalogue: {sorted(recorder.seen)}"
    raw = (visible_words(r.text) & CODES) - NATIVE[lang]
    raw |= {w for w in visible_words(r.text) if w.startswith("api:")}
    assert not raw, f"{lang} {url}: raw codes on the page: {sorted(raw)}"


@pytest.mark.slow
@pytest.mark.parametrize("lang", sorted(LANGS))
def test_every_staff_page_in_words_of_its_language(ws: Workspace, lang: str) -> None:
    items = _data(ws)
    users = {
        role: ws.user(f"u{n}{lang}", role) for n, role in enumerate(("analyst", "senior", "police", "admin"))
    }
    for client in users.values():
        client.headers["Accept-Language"] = LANGS[lang]
    analyst, senior, police, admin = (users[r] for r in ("analyst", "senior", "police", "admin"))

    for url in ("/queue", "/me", "/me/preferences", f"/items/{items['open']}", f"/items/{items['api']}"):
        _check(lang, analyst, url)
    _check(lang, analyst, f"/items/{items['second']}")  # a second opinion, given blind
    for state in ("classified", "known", "unavailable", "disagreement"):  # not for this analyst now
        r = analyst.get(f"/items/{items[state]}")
        assert r.status_code in (200, 303, 404, 409), (state, r.status_code)
        if r.status_code != 303:
            _check(lang, analyst, f"/items/{items[state]}", status=r.status_code)
    classified = {"nl": "geclassificeerd", "fr": "classé"}[lang]  # shown as classified everywhere
    assert f'id="state">{classified}<' in analyst.get(f"/items/{items['classified']}").text
    assert f'id="state">{classified}<' in police.get(f"/police/items/{items['classified']}").text
    page = analyst.get(f"/items/{items['open']}")
    # a classification the schemes refuse: every reason in the page's language
    assert classify(analyst, items["open"], page.text, {"status": "not_illegal", "uk": "C"}) == 400
    with misses(lang) as recorder:
        body = {"token": token(page.text), "scheme.status": "not_illegal", "scheme.uk": "C"}
        refused = analyst.post(f"/items/{items['open']}/classify", data=body)
    assert refused.status_code == 400 and not recorder.seen, sorted(recorder.seen)
    english = visible_words(refused.text) & {"must", "empty", "when", "uk", "not_illegal"}
    assert not english, (english, re.findall(r"<div class=\"errors\".*?</div>", refused.text, re.S))
    _check(lang, analyst, "/me/preferences", form={"thumb_size": "7"}, status=400)
    _check(lang, analyst, "/me/preferences", form={"blur": "maybe"}, status=400)

    for url in (
        "/disagreements",
        f"/disagreements/{items['disagreement']}",
        "/decisions",
        f"/decisions/{items['classified']}",
        f"/decisions/{items['banked']}",
        "/stats",
        "/statistics",
        "/banks",
        "/banks/hotline-own",
    ):
        _check(lang, senior, url)
    for url in ("/police/urgent", *(f"/police/items/{i}" for i in items.values())):
        _check(lang, police, url)
    for url in ("/admin/users", "/admin/audit", "/admin/wellness-defaults"):
        _check(lang, admin, url)
    _check(lang, admin, "/admin/wellness-defaults", form={"thumb_size": "7"}, status=400)


@pytest.mark.parametrize("lang", sorted(LANGS))
def test_an_items_matches_name_the_banks_policy_in_words(ws: Workspace, lang: str) -> None:
    """The matches table of an item page showed a bank's policy as its code (``ignore``, ``auto``)."""
    import json

    item = ws.item(images=1)
    match = {"bank": "benign-list", "entry_id": 1, "signal_type": "md5", "distance": 0, "policy": "ignore"}
    with ws.world.engine.begin() as conn:
        conn.execute(update(Medium).where(Medium.item_id == item).values(matches=json.dumps([match])))
    analyst = ws.user(f"ana{lang}", "analyst")
    analyst.headers["Accept-Language"] = LANGS[lang]
    _check(lang, analyst, f"/items/{item}")
    benign = {"nl": "onschuldig", "fr": "inoffensif"}[lang]
    page = analyst.get(f"/items/{item}").text
    assert f'<p class="small">{benign}</p>' in page and '<p class="small">ignore</p>' not in page
