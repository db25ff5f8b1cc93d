"""The public web pages, in-process: the form in three languages, posting, receipts, status, form
tokens, size and rate limits, security headers, and that no visitor's address is kept anywhere."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from meldpunt.bootstrap import Services
from meldpunt.pipeline.intake import create_api_token, list_items
from meldpunt.settings import Settings
from meldpunt.web import WebConfig, create_app, uvicorn_log_config
from meldpunt.web.i18n import LANGUAGES, catalog_ids, catalog_plurals, pick_language
from meldpunt.web.security import FormTokens
from tests.helpers.webclient import WEB, WebClient, _database_text, form, make_client, receipt_code, token_of

#: The address httpx's ASGI transport gives as the client's.
CLIENT_ADDRESSES = ("127.0.0.1", "testclient")


@pytest.fixture
def services(sqlite_db: str) -> Iterator[Services]:
    s = Services(Settings.from_env({}, db=sqlite_db))
    yield s
    s.close()


@pytest.fixture
def config() -> WebConfig:
    return WebConfig(
        emergency_numbers=("112 (EU emergency number)", "116 000 (missing children)"),
        help_service_url="https://help-service.test/",
    )


@pytest.fixture
def client(services: Services, config: WebConfig) -> Iterator[WebClient]:
    yield from make_client(create_app(services, config))


# -- the form ---------------------------------------------------------------------------------------

EMERGENCY = {
    "nl": "112 (Europees alarmnummer)",
    "fr": "112 (numéro d&#39;urgence européen)",
    "en": "112 (EU emergency number)",
}


@pytest.mark.parametrize(
    ("lang", "title", "urgent"),
    [
        ("nl", "Meld online seksueel misbruik van kinderen", "Dringend: een kind is nu in gevaar"),
        (
            "fr",
            "Signaler des contenus d&#39;abus sexuels sur enfants en ligne",
            "Urgent : un enfant est en danger",
        ),
        ("en", "Report online child sexual abuse material", "Urgent: a child is in danger now"),
    ],
)
def test_the_form_in_three_languages(client: WebClient, lang: str, title: str, urgent: str) -> None:
    for url in (f"/?lang={lang}", f"/report?lang={lang}"):
        r = client.get(url)
        assert r.status_code == 200
        html = r.text
        assert f'<html lang="{lang}">' in html and title in html and urgent in html
        assert f'name="lang" value="{lang}"' in html  # the language travels with the form, no cookie
        assert '<form method="post" action="/report"' in html and "<script" not in html
        for field in ('name="urls"', 'name="seen_on" value="social"', 'name="description"', 'name="contact"'):
            assert field in html
        assert 'type="checkbox" id="urgent" name="urgent"' in html
        # the emergency numbers and the help service are always on the form
        assert EMERGENCY[lang] in html and "116 000 (missing children)" in html
        assert 'href="https://help-service.test/"' in html and "Stop it Now" in html
        assert "set-cookie" not in r.headers


def test_the_language_comes_from_accept_language_when_not_chosen(client: WebClient) -> None:
    assert (
        '<html lang="fr">' in client.get("/", headers={"Accept-Language": "de-DE,fr-BE;q=0.8,en;q=0.5"}).text
    )
    assert '<html lang="nl">' in client.get("/", headers={"Accept-Language": "nl-BE"}).text
    assert '<html lang="en">' in client.get("/", headers={"Accept-Language": "de"}).text
    assert '<html lang="nl">' in client.get("/?lang=nl", headers={"Accept-Language": "fr"}).text
    assert pick_language("xx", "fr;q=0.1, nl;q=0.9") == "nl"
    assert pick_language(None, "en;q=0, fr") == "fr"


#: a message id in a template (``t("…")``, ``t.markup("…")``) or in Python (``_("…")`` with a
#: translator from ``staff_translator``, ``N_("…")`` where it is defined and translated when shown)
MESSAGE = re.compile(r"""(?<![\w.])(?:t|t\.markup|_|N_)\(\s*(["'])((?:(?!\1).)*)\1""")
#: a plural message: ``t.ngettext("…", "…", n)``
PLURAL = re.compile(r"""\bngettext\(\s*(["'])((?:(?!\1).)*)\1,\s*(["'])((?:(?!\3).)*)\3""")


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{\w+\}", text))


def test_every_message_is_translated() -> None:
    used: set[str] = set()
    plurals: set[tuple[str, str]] = set()
    for p in [*WEB.joinpath("templates").glob("*.html"), *WEB.glob("*.py")]:
        text = p.read_text()
        used |= {m[1] for m in MESSAGE.findall(text)}
        plurals |= {(m[1], m[3]) for m in PLURAL.findall(text)}
    assert len(used) > 300 and plurals  # the public pages and the staff pages
    for lang in LANGUAGES:
        ids = catalog_ids(lang)
        missing = sorted(used - ids.keys())
        assert not missing, f"{lang}: not in the catalogue: {missing}"
        forms = catalog_plurals(lang)
        assert not plurals - forms.keys(), f"{lang}: plurals not in the catalogue: {plurals - forms.keys()}"
        if lang != "en":
            untranslated = sorted(m for m in used if not ids[m])
            assert not untranslated, f"{lang}: untranslated: {untranslated}"
            for m in used:  # placeholders kept
                assert _placeholders(m) == _placeholders(ids[m]), (lang, m)
            for singular, plural in plurals:
                assert all(forms[singular, plural]), (lang, singular)
                for form in forms[singular, plural]:
                    assert _placeholders(form) <= _placeholders(plural) | {"{n}"}, (lang, singular, form)


# -- posting -----------------------------------------------------------------------------------------


def test_a_valid_report_redirects_to_its_receipt_and_status(client: WebClient, services: Services) -> None:
    r = form(client, "nl", urls="https://example.invalid/a\r\nexample.invalid/b\r\n", seen_on="chat")
    code = receipt_code(r)
    assert "urgent" not in r.headers["location"] and "lang=nl" in r.headers["location"]
    receipt = client.get(r.headers["location"])
    assert receipt.status_code == 200 and code in receipt.text
    assert f'href="/status/{code}?lang=nl"' in receipt.text
    assert "Bedankt voor uw melding" in receipt.text
    assert "Is een kind nu in gevaar?" not in receipt.text  # only after an urgent report
    items = list_items(services)
    assert sorted(i.url for i in items) == ["http://example.invalid/b", "https://example.invalid/a"]
    assert not any(i.urgent for i in items)
    status = client.get(f"/status/{code}?lang=en")
    assert status.status_code == 200
    assert "We have received your report. It is waiting to be looked at." in status.text
    assert "example.invalid" not in status.text  # nothing about content
    # the code is accepted in lower case and from the lookup form
    assert client.get(f"/status/{code.lower()}").status_code == 200
    lookup = client.get("/status", params={"code": code.lower().replace("-", " "), "lang": "fr"})
    assert lookup.status_code == 303 and lookup.headers["location"].startswith(f"/status/{code}?")
    assert client.get(lookup.headers["location"]).status_code == 200


def test_an_urgent_report_is_raised_and_shows_the_emergency_numbers(
    client: WebClient, services: Services
) -> None:
    form(client, urls="https://example.invalid/calm")
    r = form(client, "fr", urls="https://example.invalid/now", urgent="1", description="en direct")
    code = receipt_code(r)
    assert "urgent=1" in r.headers["location"]
    receipt = client.get(r.headers["location"]).text
    assert code in receipt and "Un enfant est-il en danger maintenant ?" in receipt
    assert EMERGENCY["fr"] in receipt and "116 000 (missing children)" in receipt
    items = list_items(services)
    assert items[0].url == "https://example.invalid/now" and items[0].urgent  # first in the list
    assert not items[1].urgent


def test_invalid_input_is_kept_with_clear_messages(client: WebClient, services: Services) -> None:
    r = form(
        client,
        "nl",
        urls="https://example.invalid/ok\nftp://example.invalid/x\n\nnot an address at all",
        seen_on="social",
        description="zag het <b>gisteren</b>",
        contact="iemand@example.invalid",
        urgent="1",
    )
    assert r.status_code == 400
    html = r.text
    assert "Controleer het formulier" in html
    assert "Regel 2: dit is geen webadres" in html and "Regel 4: dit is geen webadres" in html
    assert "Regel 1:" not in html
    # what was typed is kept (escaped), the choices too
    assert "https://example.invalid/ok\nftp://example.invalid/x\n\nnot an address at all</textarea>" in html
    assert "zag het &lt;b&gt;gisteren&lt;/b&gt;</textarea>" in html
    assert 'value="iemand@example.invalid"' in html
    assert 'value="social" checked' in html and 'name="urgent" value="1" checked' in html
    assert 'name="lang" value="nl"' in html
    assert list_items(services) == []
    empty = form(client, urls="  \n ")
    assert empty.status_code == 400 and "Please give at least one web address." in empty.text
    where = form(client, urls="https://example.invalid/", seen_on="moon")
    assert where.status_code == 400 and "Please choose where you saw it." in where.text


def test_too_many_urls_or_too_large_a_post_is_refused_clearly(client: WebClient, services: Services) -> None:
    many = "\n".join(f"https://example.invalid/{i}" for i in range(101))
    r = form(client, urls=many)
    assert r.status_code == 400 and "Please give at most 100 web addresses in one report." in r.text
    assert "https://example.invalid/100</textarea>" in r.text
    big = form(client, "fr", urls="https://example.invalid/", description="x" * 70_000)
    assert (
        big.status_code == 413 and "Votre signalement est trop volumineux" not in big.text
    )  # lang is in the body
    assert "Your report is too large" in big.text
    big_nl = client.post(
        "/report?lang=nl",
        content=b"urls=" + b"a" * 70_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert big_nl.status_code == 413 and "Uw melding is te groot" in big_nl.text
    assert big_nl.headers["content-security-policy"].startswith("default-src 'self'")
    assert list_items(services) == []


def test_a_malformed_post_gets_a_clear_page(client: WebClient, services: Services) -> None:
    token = token_of(client.get("/report").text)
    fields = {f"f{i}": "x" for i in range(30)}
    r = client.post("/report", data={"token": token, "urls": "https://example.invalid/", **fields})
    assert r.status_code == 400 and "We could not read what was sent." in r.text
    upload = client.post(
        "/report", data={"token": token}, files={"urls": ("a.txt", b"https://example.invalid/")}
    )
    assert upload.status_code == 400 and "We could not read what was sent." in upload.text
    assert list_items(services) == []


# -- form tokens -------------------------------------------------------------------------------------


def test_a_missing_forged_or_expired_token_is_refused(client: WebClient, services: Services) -> None:
    data = {"lang": "en", "urls": "https://example.invalid/", "seen_on": "website"}
    missing = client.post("/report", data=data)
    assert missing.status_code == 400 and "This form has expired" in missing.text
    good = token_of(client.get("/report").text)
    issued, nonce, sig = good.split(".")
    for forged in (f"{issued}.{nonce}.{sig[:-2]}AA", f"{int(issued) + 5}.{nonce}.{sig}", "1.2.3", "x" * 500):
        r = client.post("/report", data={**data, "token": forged})
        assert r.status_code == 400 and "This form has expired" in r.text
    cross = client.post("/report", data={**data, "token": good}, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 400
    assert list_items(services) == []
    assert client.post("/report", data={**data, "token": good}).status_code == 303


def test_a_form_left_open_too_long_keeps_what_was_typed(services: Services, config: WebConfig) -> None:
    now = [1_000_000.0]
    app = create_app(services, config)
    app.state.ctx.tokens = FormTokens(b"k" * 32, max_age=600, clock=lambda: now[0])
    for client in make_client(app):
        old = token_of(client.get("/report?lang=nl").text)
        now[0] += 601
        data = {"token": old, "lang": "nl", "urls": "https://example.invalid/slow", "seen_on": "chat"}
        r = client.post("/report", data=data)
        assert r.status_code == 400 and "Dit formulier stond lang open" in r.text
        assert "https://example.invalid/slow</textarea>" in r.text and 'value="chat" checked' in r.text
        assert list_items(services) == []
        fresh = token_of(r.text)
        assert fresh != old
        assert receipt_code(client.post("/report", data={**data, "token": fresh}))


def test_form_tokens_expire() -> None:
    now = [1_000_000.0]
    tokens = FormTokens(b"k" * 32, max_age=60, clock=lambda: now[0])
    t = tokens.issue("report")
    assert tokens.check("report", t) is not None
    assert tokens.check("other-form", t) is None
    now[0] += 61
    assert tokens.check("report", t) is None
    assert FormTokens(b"j" * 32, 60, clock=lambda: now[0]).check("report", tokens.issue("report")) is None


# -- status ------------------------------------------------------------------------------------------


def test_an_unknown_code_is_a_plain_404(client: WebClient) -> None:
    wording = "We have no report with this code."
    for code in ("AAAAA-AAAAA-AAAAA-AAAAA", "not-a-code", "x" * 300):
        r = client.get(f"/status/{code}")
        assert r.status_code == 404 and wording in r.text
    assert client.get("/receipt/not-a-code").status_code == 404
    assert client.get("/status", params={"code": "nonsense!"}).status_code == 404
    assert client.get("/status").status_code == 200


# -- rate limits -------------------------------------------------------------------------------------


def test_posts_and_status_look_ups_are_rate_limited(services: Services) -> None:
    config = WebConfig(report_rate=2, status_rate=3)
    for client in make_client(create_app(services, config)):
        assert receipt_code(form(client, urls="https://example.invalid/1"))
        r = form(client, urls="https://example.invalid/2")
        code = receipt_code(r)
        third = form(client, "nl", urls="https://example.invalid/3")
        assert third.status_code == 429 and "Wacht even" in third.text
        assert 1 <= int(third.headers["retry-after"]) <= config.rate_window_s
        assert len(list_items(services)) == 2
        for _ in range(3):
            assert client.get(f"/status/{code}").status_code == 200
        limited = client.get(f"/status/{code}")
        assert limited.status_code == 429 and "retry-after" in limited.headers
        # the form itself stays readable
        assert client.get("/report").status_code == 200


# -- headers, health, internal page --------------------------------------------------------------------


def test_security_headers_everywhere(client: WebClient) -> None:
    code = receipt_code(form(client, urls="https://example.invalid/h"))
    for url in ("/", "/report", f"/receipt/{code}", f"/status/{code}", "/status/ZZZZZ", "/health", "/nope"):
        r = client.get(url)
        h = r.headers
        csp = h["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert h["referrer-policy"] == "no-referrer" and h["x-content-type-options"] == "nosniff"
        assert h["cache-control"] == "no-store", url
        assert "server" not in h
    css = client.get("/static/style.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    assert "@import" not in css.text and "url(" not in css.text  # nothing from elsewhere


def test_health(client: WebClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/favicon.ico").status_code == 204


def test_building_the_app_opens_no_database(tmp_path: Path) -> None:
    services = Services(Settings.from_env({}, db=str(tmp_path / "later.db")))
    create_app(services, WebConfig())
    assert not any(tmp_path.iterdir())


def test_internal_items_need_the_token_as_basic_or_bearer(client: WebClient, services: Services) -> None:
    form(client, urls="https://example.invalid/one")
    form(client, urls="https://example.invalid/two", urgent="1")
    token = create_api_token(services, "analysts", ("internal:read",))
    r = client.get("/internal/items")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    assert client.get("/internal/items", params={"token": token}).status_code == 401
    assert client.get("/internal/items", auth=("anyone", "wrong")).status_code == 401
    page = client.get("/internal/items", auth=("anyone", token))
    assert page.status_code == 200
    assert "https://example.invalid/one" in page.text and "https://example.invalid/two" in page.text
    assert page.text.index("/two") < page.text.index("/one")  # urgent first
    assert 'href="https://example.invalid' not in page.text  # reported URLs are never links
    bearer = client.get("/internal/items?state=received", headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 200 and "https://example.invalid/one" in bearer.text
    none = client.get("/internal/items?state=known", headers={"Authorization": f"Bearer {token}"})
    assert none.status_code == 200 and "example.invalid" not in none.text and "No items." in none.text


# -- no address kept anywhere --------------------------------------------------------------------------


def test_no_address_is_kept_in_the_database_or_the_logs(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = WebConfig(trusted_proxies=("127.0.0.1",), report_rate=5)
    proxied = {"X-Forwarded-For": "203.0.113.77, 10.0.0.1"}
    for client in make_client(create_app(services, config)):
        code = receipt_code(
            form(client, "nl", urls="https://example.invalid/p", urgent="1", contact="a@b.invalid")
        )
        page = client.get("/report")
        client.post(
            "/report", data={"token": token_of(page.text), "urls": "example.invalid/q"}, headers=proxied
        )
        form(client, urls="bad url")
        client.get(f"/status/{code}")
        client.get("/status/AAAAA-AAAAA-AAAAA-AAAAA", headers=proxied)
        token = create_api_token(services, "partner", ("reports", "internal:read"))
        auth = {"Authorization": f"Bearer {token}"}
        client.post("/api/v1/reports", json={"urls": ["https://example.invalid/api"]}, headers=auth)
        client.get("/internal/items", auth=("x", token))
    db = _database_text(services)
    assert "example.invalid/p" in db and "example.invalid/api" in db  # the reports are there
    logs = "\n".join(f"{r.name} {r.getMessage()} {r.args!r}" for r in caplog.records)
    for address in (*CLIENT_ADDRESSES, "203.0.113.77", "10.0.0.1"):
        assert address not in db, address
        assert address not in logs, address


def test_rate_limit_counters_hold_no_address() -> None:
    from meldpunt.web.security import RateLimiter

    limiter = RateLimiter(limit=1, window=60)
    assert limiter.hit("198.51.100.4") is None
    assert limiter.hit("198.51.100.4") is not None
    assert limiter.hit("198.51.100.5") is None
    keys = list(limiter.keys())
    assert len(keys) == 2 and all(len(k) == 32 and b"198.51" not in k for k in keys)


def test_web_settings_come_from_the_environment() -> None:
    """(That each is documented: tests/test_docs.py.)"""
    c = WebConfig.from_env(
        {"MELDPUNT_WEB_EMERGENCY_NUMBERS": "112, 113 (help line)", "MELDPUNT_WEB_REPORT_RATE": "3"}
    )
    assert c.emergency_numbers == ("112", "113 (help line)") and c.report_rate == 3
    with pytest.raises(ValueError, match="MELDPUNT_WEB_STATUS_RATE"):
        WebConfig.from_env({"MELDPUNT_WEB_STATUS_RATE": "many"})


def test_the_uvicorn_log_config_has_no_access_log() -> None:
    cfg = uvicorn_log_config()
    assert "access" not in cfg["handlers"]
    assert cfg["loggers"]["uvicorn.access"]["handlers"] == []
    assert cfg["loggers"]["uvicorn.access"]["propagate"] is False


# -- language links point at this site only ------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "//evil.example/x",
        "///evil.example/x",
        "/\\evil.example",
        "/\\/evil.example/x",
        "/%2F%2Fevil.example/x",
        "/%2f/evil.example",
        "/%5Cevil.example",
        "/%5C%5Cevil.example",
        "/%09/evil.example",
        "/%0A/evil.example",
        "/./%2F/evil.example",
    ],
)
def test_language_links_cannot_point_at_another_site(client: WebClient, path: str) -> None:
    from urllib.parse import urljoin, urlsplit

    page = client.get(f"http://meldpunt.test{path}?lang=en&x=1")
    links = re.findall(r'<a href="([^"]*)" lang="(\w\w)" hreflang="\w\w"', page.text)
    assert {lang for _, lang in links} == {"nl", "fr"}, page.text
    for href, lang in links:
        href = href.replace("&amp;", "&")
        assert href.startswith("/") and not href.startswith("//"), href
        assert "\\" not in href and "\t" not in href and "\n" not in href, href
        resolved = urljoin("https://meldpunt.test/a/b", href)
        assert urlsplit(href).netloc == "" and urlsplit(resolved).netloc == "meldpunt.test", href
        assert href.endswith(f"?x=1&lang={lang}"), href  # the query is rebuilt, lang replaced


def test_language_links_keep_the_page_and_its_query(client: WebClient) -> None:
    page = client.get("/status?code=abc&lang=fr").text
    assert 'href="/status?code=abc&amp;lang=nl"' in page and 'href="/status?code=abc&amp;lang=en"' in page
    assert 'href="/?lang=nl"' in client.get("/").text


# -- issue #8: receipts that exist, URLs the fetcher refuses, text every database stores -----------


def test_a_receipt_page_is_shown_only_for_a_code_that_exists(client: WebClient) -> None:
    code = receipt_code(form(client, urls="https://example.invalid/r"))
    assert client.get(f"/receipt/{code}").status_code == 200
    words = {
        "en": "We do not know this receipt code",
        "nl": "Deze ontvangstcode kennen wij niet",
        "fr": "Nous ne connaissons pas ce code de suivi",
    }
    for lang, heading in words.items():
        for unknown in ("AAAAA-BBBBB-CCCCC-DDDDD", "not-a-code"):
            r = client.get(f"/receipt/{unknown}?lang={lang}")
            assert r.status_code == 404 and heading in r.text, (lang, unknown)


def test_the_form_refuses_urls_the_fetcher_always_refuses_in_every_language(
    client: WebClient, services: Services
) -> None:
    urls = (
        "https://user:secret@example.invalid/a\nhttp://example.invalid:0/b\nhttps://" + "x" * 64 + ".example/"
    )
    expected = {
        "en": (
            "Line 1: please leave out the user name and password",
            "Line 2: port 0 is not a port a web server can use.",
            "Line 3: the name of the website in this address is too long.",
        ),
        "nl": (
            "Regel 1: laat de gebruikersnaam en het wachtwoord weg",
            "Regel 2: poort 0 is geen poort",
            "Regel 3: de naam van de website in dit adres is te lang.",
        ),
        "fr": (
            "Ligne 1 : veuillez retirer le nom d&#39;utilisateur et le mot de passe",
            "Ligne 2 : le port 0 n&#39;est pas un port",
            "Ligne 3 : le nom du site dans cette adresse est trop long.",
        ),
    }
    for lang, messages in expected.items():
        r = form(client, lang, urls=urls)
        assert r.status_code == 400
        for message in messages:
            assert message in r.text, (lang, message)
    assert list_items(services) == []


def test_the_form_refuses_text_postgresql_cannot_store_on_every_database(db_url: str) -> None:
    """NUL characters and over-long host names: a 400 with the reason on the form (PostgreSQL
    answered a bare 500), nothing stored, on SQLite and PostgreSQL."""
    services = Services(Settings.from_env({}, db=db_url))
    try:
        for client in make_client(create_app(services, WebConfig(report_rate=100))):
            cases = {
                "urls": ("https://example.invalid/a\x00b", "Regel 1: dit adres bevat tekens die niet"),
                "description": ("zag \x00 het", "De beschrijving bevat tekens die niet bewaard"),
                "contact": ("iemand\x00@example.invalid", "Het contactadres bevat tekens die niet bewaard"),
            }
            for name, (value, message) in cases.items():
                fields = {"urls": "https://example.invalid/ok", name: value}
                r = form(client, "nl", **fields)
                assert r.status_code == 400 and message in r.text, (name, r.status_code)
            long_host = "https://" + ".".join(["a" * 60] * 5) + "/"
            r = form(client, "en", urls=long_host)
            assert (
                r.status_code == 400
                and "Line 1: the name of the website in this address is too long." in r.text
            )
        assert list_items(services) == []
    finally:
        services.close()


@pytest.mark.parametrize("lang", ["nl", "fr"])
def test_every_validation_problem_is_shown_translated_with_its_values(
    client: WebClient, services: Services, lang: str
) -> None:
    """The form shows what ``intake.validate`` refuses (codes with values, no rules of its own),
    each problem in the reporter's language with its line number or limit filled in."""
    bad_urls = "\n".join(
        [
            "https://example.invalid/ok",
            "",
            "ftp://example.invalid/x",  # line 3: url.not_http
            "https://" + "u" * 2100 + ".invalid/",  # line 4: url.too_long
            "https://me:pw@example.invalid/",  # line 5: url.credentials
            "http://example.invalid:0/",  # line 6: url.port
            "https://" + "x" * 64 + ".example/",  # line 7: url.host_too_long
            "https://example.invalid/a\x00b",  # line 8: url.bad_text
        ]
    )
    expected = {
        "nl": [
            "Regel 3: dit is geen webadres",
            "Regel 4: dit adres is te lang.",
            "Regel 5: laat de gebruikersnaam en het wachtwoord weg",
            "Regel 6: poort 0 is geen poort",
            "Regel 7: de naam van de website in dit adres is te lang.",
            "Regel 8: dit adres bevat tekens die niet",
            "Kies waar u het heeft gezien.",
            "De beschrijving is te lang (ten hoogste 10000 tekens).",
            "Het contactadres is te lang.",
        ],
        "fr": [
            "Ligne 3 : ce n&#39;est pas une adresse web",
            "Ligne 4 : cette adresse est trop longue.",
            "Ligne 5 : veuillez retirer le nom d&#39;utilisateur",
            "Ligne 6 : le port 0 n&#39;est pas un port",
            "Ligne 7 : le nom du site dans cette adresse est trop long.",
            "Ligne 8 : cette adresse contient des caractères",
            "Veuillez choisir où vous l&#39;avez vu.",
            "La description est trop longue (au plus 10000 caractères).",
            "L&#39;adresse de contact est trop longue.",
        ],
    }[lang]
    r = form(client, lang, urls=bad_urls, seen_on="moon", description="d" * 10_001, contact="c" * 321)
    assert r.status_code == 400
    for message in expected:
        assert message in r.text, (lang, message)
    assert "Line " not in r.text and "Regel 1" not in r.text and "Ligne 1 " not in r.text
    nul = form(client, lang, urls="https://example.invalid/", description="a\x00", contact="b\x00")
    assert nul.status_code == 400
    assert {"nl": "De beschrijving bevat tekens", "fr": "La description contient des caractères"}[
        lang
    ] in nul.text
    none = form(client, lang, urls="\n \n")
    many = form(client, lang, urls="\n".join(f"https://example.invalid/{i}" for i in range(101)))
    assert {"nl": "Geef ten minste één webadres", "fr": "Veuillez indiquer au moins une adresse web"}[
        lang
    ] in none.text
    assert {"nl": "Geef ten hoogste 100 webadressen", "fr": "Indiquez au plus 100 adresses web"}[
        lang
    ] in many.text
    assert list_items(services) == []
