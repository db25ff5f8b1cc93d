"""Sign-in details, in-process on SQLite and PostgreSQL: a deep link survives the sign-in (password
and TOTP, or enrolment) and only ever leads to a page of this site; the enrolment page's QR code;
``/me`` as a landing page (what waits, per role); times in the staff member's zone and the page's
language (a preference, audited)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from html import unescape

import pytest

from meldpunt.bootstrap import Services
from meldpunt.settings import Settings
from meldpunt.web import WebConfig
from meldpunt.web.qr import qr_svg
from meldpunt.web.staff import format_when, next_path
from tests.helpers.accounts import PASSWORD
from tests.helpers.staff import Staff, token
from tests.helpers.webclient import WebClient
from tests.helpers.workspace import Workspace, _workspace, classify
from tests.helpers.world import ILLEGAL, NOT_ILLEGAL

DUTCH = "nl-BE,nl;q=0.9"
FRENCH = "fr-BE,fr;q=0.9"


@pytest.fixture
def staff(db_url: str) -> Iterator[Staff]:
    services = Services(Settings.from_env({}, db=db_url))
    with ExitStack() as stack:
        yield Staff(services, stack)
    services.close()


@pytest.fixture
def ws(db_url: str) -> Iterator[Workspace]:
    with ExitStack() as stack:
        yield _workspace(db_url, stack)


def _hidden_next(html: str) -> str | None:
    found = re.search(r'name="next" value="([^"]*)"', html)
    return unescape(found.group(1)) if found else None


def _enrol_at(staff: Staff, client: WebClient, enrol_url: str) -> tuple[str, str]:
    """The enrolment page at ``enrol_url``; (the secret, the page)."""
    page = client.get(enrol_url)
    assert page.status_code == 200
    found = re.search(r'<code id="secret">([A-Z2-7 ]+)</code>', page.text)
    assert found
    return found.group(1).replace(" ", ""), page.text


# -- 1. a deep link survives sign-in ----------------------------------------------------------------


def test_a_deep_link_survives_enrolment_and_a_later_password_and_totp_sign_in(staff: Staff) -> None:
    staff.accounts.create_user("ana", "analyst", PASSWORD)
    client = staff.client()
    asked = client.get("/test/queue?source=api%3Apartner&page=2")
    assert asked.status_code == 303
    login_url = asked.headers["location"]
    assert login_url == "/login?next=%2Ftest%2Fqueue%3Fsource%3Dapi%253Apartner%26page%3D2"
    page = client.get(login_url)
    assert _hidden_next(page.text) == "/test/queue?source=api%3Apartner&page=2"

    # first sign-in: password, then enrolment, then the recovery codes' "continue" leads there
    r = client.post(
        "/login",
        data={
            "token": token(page.text),
            "name": "ana",
            "password": PASSWORD,
            "next": _hidden_next(page.text),
        },
    )
    assert r.headers["location"].startswith("/enrol?next=")
    secret, enrol_page = _enrol_at(staff, client, r.headers["location"])
    assert _hidden_next(enrol_page) == "/test/queue?source=api%3Apartner&page=2"
    done = client.post(
        "/enrol",
        data={"token": token(enrol_page), "code": staff.code(secret), "next": _hidden_next(enrol_page)},
    )
    assert done.status_code == 200
    assert 'href="/test/queue?source=api%3Apartner&amp;page=2"' in done.text
    assert client.get("/test/queue").json()["name"] == "ana"

    # signed out, a link to a page: password, TOTP, and there
    client.cookies.clear()
    staff.clock.tick()
    asked = client.get("/test/queue?page=3")
    page = client.get(asked.headers["location"])
    r = client.post(
        "/login",
        data={
            "token": token(page.text),
            "name": "ana",
            "password": PASSWORD,
            "next": _hidden_next(page.text),
        },
    )
    assert r.headers["location"] == "/login/totp?next=%2Ftest%2Fqueue%3Fpage%3D3"
    totp = client.get(r.headers["location"])
    assert _hidden_next(totp.text) == "/test/queue?page=3"
    wrong = client.post(
        "/login/totp", data={"token": token(totp.text), "code": "x", "next": "/test/queue?page=3"}
    )
    assert wrong.status_code == 400 and _hidden_next(wrong.text) == "/test/queue?page=3"  # kept on a retry
    r = client.post(
        "/login/totp",
        data={"token": token(wrong.text), "code": staff.code(secret), "next": "/test/queue?page=3"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/test/queue?page=3"
    # already signed in: /login?next= goes straight there
    assert client.get("/login?next=%2Ftest%2Fqueue").headers["location"] == "/test/queue"


def test_without_a_deep_link_sign_in_ends_on_me_and_forms_carry_no_next(staff: Staff) -> None:
    staff.accounts.create_user("ana", "analyst", PASSWORD)
    client = staff.client()
    assert client.get("/me").headers["location"] == "/login"
    page = client.get("/login")
    assert _hidden_next(page.text) is None
    r = client.post("/login", data={"token": token(page.text), "name": "ana", "password": PASSWORD})
    assert r.headers["location"] == "/enrol"
    secret, enrol_page = _enrol_at(staff, client, "/enrol")
    done = client.post("/enrol", data={"token": token(enrol_page), "code": staff.code(secret)})
    assert 'href="/me"' in done.text


@pytest.mark.parametrize(
    "hostile",
    [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "///evil.example",
        "/%2F%2Fevil.example",
        "/%5Cevil.example",
        "javascript:alert(1)",
        "evil.example/x",
        "/queue\r\nSet-Cookie: x=1",
        "/login",
        "/login/totp?next=%2F%2Fevil.example",
        "",
    ],
)
def test_a_sign_in_never_leads_to_another_site(staff: Staff, hostile: str) -> None:
    assert next_path(hostile) == "/me"
    staff.accounts.create_user("ana", "analyst", PASSWORD)
    client = staff.client()
    page = client.get("/login", params={"next": hostile})
    assert _hidden_next(page.text) is None
    r = client.post(
        "/login", data={"token": token(page.text), "name": "ana", "password": PASSWORD, "next": hostile}
    )
    assert r.headers["location"] == "/enrol"


def test_a_local_deep_link_is_kept_and_re_encoded() -> None:
    assert next_path("/items/12") == "/items/12"
    assert next_path("/queue?needs=second&source=api%3A*") == "/queue?needs=second&source=api%3A%2A"
    assert next_path("/items/12#media") == "/items/12"
    assert next_path("/a%20b") == "/a%20b"


def test_a_post_while_signed_out_ends_on_me(staff: Staff) -> None:
    client = staff.client()
    r = client.post("/items/3/classify", data={"token": "x"})
    assert r.status_code == 303 and r.headers["location"] == "/login"


# -- 2. enrolment shows a QR code --------------------------------------------------------------------


def test_enrolment_shows_a_qr_code_of_the_otpauth_uri_with_issuer_and_name(staff: Staff) -> None:
    staff.accounts.create_user("ana.de-smet", "analyst", PASSWORD)
    client = staff.client()
    page = client.get("/login")
    client.post("/login", data={"token": token(page.text), "name": "ana.de-smet", "password": PASSWORD})
    secret, html = _enrol_at(staff, client, "/enrol")
    uri = f"otpauth://totp/meldpunt:ana.de-smet?secret={secret}&issuer=meldpunt"
    assert f'<code id="uri">{uri.replace("&", "&amp;")}</code>' in html
    svg = re.search(r'<figure class="qr" id="qr"[^>]*>(<svg.*?</svg>)</figure>', html, re.S)
    assert svg, html
    assert svg.group(1) == str(qr_svg(uri))  # the code drawn is the address shown
    assert "<script" not in html and "style=" not in svg.group(
        1
    )  # no JavaScript; the CSP allows no inline style
    assert 'viewBox="' in svg.group(1)


# -- 3. /me: what waits ------------------------------------------------------------------------------


def _waiting(html: str) -> dict[str, int]:
    return {
        k: int(n)
        for k, n in re.findall(r'<li id="waiting-(\w+)"><a [^>]*><span class="n">(\d+)</span>', html)
    }


def test_me_shows_what_waits_for_each_role_and_no_permission_names(ws: Workspace) -> None:
    ana, ben = ws.user("ana", "analyst"), ws.user("ben", "analyst")
    sam = ws.user("sam", "senior")
    pol, adm = ws.user("pol", "police"), ws.user("adm", "admin")
    first, urgent, third = ws.item(), ws.item(urgent=True), ws.item()
    me = ana.get("/me").text
    assert _waiting(me) == {"first": 3, "second": 0, "urgent": 1}
    assert "You hold no claim now." in me and "queue.view" not in me and "<code>" not in me

    page = ana.get(f"/items/{first}")  # claims it
    assert classify(ana, first, page.text, ILLEGAL) == 303  # a second opinion is wanted now
    ana.get(f"/items/{urgent}")
    me = ana.get("/me").text
    assert _waiting(me) == {
        "first": 2,
        "second": 0,
        "urgent": 1,
    }  # her own first opinion is not hers to check
    claims = re.search(r'<ul class="mine-list" id="claims">(.*?)</ul>', me, re.S)
    assert (
        claims and f'href="/items/{urgent}"' in claims.group(1) and f"/items/{first}" not in claims.group(1)
    )
    assert re.search(r"viewing.*\d+ min of your daily limit of 120 min", me, re.S)
    assert _waiting(ben.get("/me").text) == {"first": 2, "second": 1, "urgent": 1}

    page = ben.get(f"/items/{first}")
    assert classify(ben, first, page.text, NOT_ILLEGAL) == 303  # a disagreement
    assert _waiting(sam.get("/me").text) == {"first": 2, "second": 0, "urgent": 1, "disagreements": 1}
    assert _waiting(ben.get("/me").text) == {"first": 2, "second": 0, "urgent": 1}

    police = pol.get("/me").text
    assert _waiting(police) == {"urgent": 1} and 'href="/police/urgent"' in police
    assert "viewing time" not in police and "Claimed by you" not in police  # a liaison never views media
    admin = adm.get("/me").text
    assert _waiting(admin) == {} and 'href="/admin/users"' in admin and "What waits" not in admin
    del third


# -- 4. times in the staff member's zone, dates in the page's language --------------------------------


def test_format_when_shows_the_zone_and_the_language() -> None:
    winter = datetime(2026, 12, 1, 11, 30, tzinfo=UTC)
    assert format_when(winter, "Europe/Brussels", "en") == "Dec 1, 2026 12:30\u202fPM CET"
    assert format_when(winter, "Europe/Brussels", "nl") == "1 dec 2026 12:30 CET"
    assert format_when(winter, "Europe/Brussels", "fr") == "1 déc. 2026 12:30 CET"
    summer = datetime(2026, 7, 1, 11, 30)  # naive: SQLite's way of saying UTC
    assert format_when(summer, "Europe/Brussels", "nl") == "1 jul 2026 13:30 CEST"
    assert format_when(summer, "America/New_York", "fr") == "1 juil. 2026 07:30 EDT"
    assert format_when(None) == ""


def test_times_follow_the_zone_preference_with_the_setting_as_default(ws: Workspace) -> None:
    ana = ws.user("ana", "analyst")
    item = ws.item()
    ana.get(f"/items/{item}")  # claimed until (real clock) + 30 min
    me = ana.get("/me").text
    assert "Times are shown in Europe/Brussels." in me and "(the hotline&#39;s default)" in me
    assert re.search(r"until \w{3} \d+, \d{4} \d+:\d\d\s[AP]M CES?T", me)

    prefs = ana.get("/me/preferences")
    assert '<option value="" selected>Default (Europe/Brussels)</option>' in prefs.text
    r = ana.post("/me/preferences", data={"token": token(prefs.text), "time_zone": "Asia/Tokyo"})
    assert r.status_code == 303
    ana.headers["Accept-Language"] = DUTCH
    me = ana.get("/me").text
    assert "Tijden worden getoond in Asia/Tokyo." in me and re.search(r"tot \d+ \w+ \d{4} \d\d:\d\d JST", me)
    assert ws.audit("prefs.change") == [("ana", "user:ana", {"time_zone": [None, "Asia/Tokyo"]})]
    assert 'value="Asia/Tokyo" selected' in ana.get("/me/preferences").text

    prefs = ana.get("/me/preferences")
    bad = ana.post("/me/preferences", data={"token": token(prefs.text), "time_zone": "Mars/Olympus_Mons"})
    assert bad.status_code == 400 and "Mars/Olympus_Mons is geen bekende tijdzone" in bad.text
    assert "Asia/Tokyo" in ana.get("/me").text  # nothing lost
    prefs = ana.get("/me/preferences")
    assert ana.post("/me/preferences", data={"token": token(prefs.text), "time_zone": ""}).status_code == 303
    assert "Europe/Brussels" in ana.get("/me").text  # back to the default


def test_the_default_zone_is_a_setting_and_a_wrong_one_is_refused() -> None:
    assert WebConfig.from_env({}).time_zone == "Europe/Brussels"
    assert WebConfig.from_env({"MELDPUNT_WEB_TIME_ZONE": "UTC"}).time_zone == "UTC"
    with pytest.raises(ValueError, match="MELDPUNT_WEB_TIME_ZONE"):
        WebConfig.from_env({"MELDPUNT_WEB_TIME_ZONE": "Europe/Atlantis"})
