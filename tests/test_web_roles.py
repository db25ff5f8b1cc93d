"""Every route of the app × every role (and anonymous), against a table written out by hand here —
not derived from ``roles.py`` nor from the routes' declarations, so a route that slips its guard,
a permission given to the wrong role, or a new route nobody thought about fails this test.

"Granted" means the answer is not a refusal: not 401, not 403, not a redirect to /login. A 400,
404, 409 or 422 (a form without its token, a dummy id) is an answer the role was allowed to get.
API routes answer to the API token, not to staff roles: they must answer 401 to every staff
session that brings no token, and not 401 with one. Every image is a benign generated scene."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import BaseRoute, Mount

from meldpunt.pipeline.api_tokens import SCOPES, create_api_token
from tests.helpers.webclient import WebClient
from tests.helpers.workspace import Workspace, _workspace

ANON = "anonymous"
ROLES = ("analyst", "senior", "police", "admin")
#: everyone, signed in or not
EVERYONE = frozenset({ANON, *ROLES})
#: answers to the API token only (never to a staff session)
TOKEN = "token"
#: the sign-in steps themselves: open to everyone; each step decides by the session's stage
SIGN_IN = "sign-in"

ANALYST_UP = frozenset({"analyst", "senior"})
SENIOR = frozenset({"senior"})
POLICE = frozenset({"police"})
ADMIN = frozenset({"admin"})
STAFF = frozenset(ROLES)

#: (method, path) -> who may. Written by hand from the issue's table:
#: anonymous — public form, status page, health; analyst — queue, items (blurred), reveal,
#: classify, own preferences; senior — all an analyst may + disagreements, statistics;
#: police — classified items' facts and hashes, urgent list (no reveal, no item pages);
#: admin — users, settings, audit log (no item pages, no reveal).
EXPECTED: dict[tuple[str, str], frozenset[str] | str] = {
    # public
    ("GET", "/"): EVERYONE,
    ("GET", "/report"): EVERYONE,
    ("POST", "/report"): EVERYONE,
    ("GET", "/receipt/{code}"): EVERYONE,
    ("GET", "/status"): EVERYONE,
    ("GET", "/status/{code}"): EVERYONE,
    ("GET", "/health"): EVERYONE,
    ("GET", "/favicon.ico"): EVERYONE,
    ("GET", "/openapi.json"): EVERYONE,
    ("GET", "/api/docs"): EVERYONE,
    ("GET", "/provider/{token}"): EVERYONE,
    # survivors (#12): a survivor's own session cookie, never a staff role
    ("GET", "/survivor"): EVERYONE,
    ("GET", "/survivor/register"): EVERYONE,
    ("POST", "/survivor/register"): EVERYONE,
    ("GET", "/survivor/sign-in"): EVERYONE,
    ("POST", "/survivor/sign-in"): EVERYONE,
    ("POST", "/survivor/sign-out"): EVERYONE,
    ("GET", "/survivor/case"): EVERYONE,
    ("GET", "/survivor/case/export"): EVERYONE,
    ("GET", "/survivor/case/statement.pdf"): EVERYONE,
    ("POST", "/survivor/case/add"): EVERYONE,
    ("POST", "/survivor/case/withdraw"): EVERYONE,
    # partner hotlines' instances (#11): the Ed25519 signature is the authentication, not a session
    ("GET", "/api/v1/partner/keys"): EVERYONE,
    ("POST", "/api/v1/partner/inbox"): EVERYONE,
    ("POST", "/provider/{token}"): EVERYONE,
    ("GET", "/static"): EVERYONE,
    # the API token
    ("POST", "/api/v1/reports"): TOKEN,
    ("POST", "/api/v1/match"): TOKEN,
    ("GET", "/internal/items"): TOKEN,
    # signing in and out
    ("GET", "/login"): SIGN_IN,
    ("POST", "/login"): SIGN_IN,
    ("GET", "/login/totp"): SIGN_IN,
    ("POST", "/login/totp"): SIGN_IN,
    ("GET", "/enrol"): SIGN_IN,
    ("POST", "/enrol"): SIGN_IN,
    ("POST", "/logout"): SIGN_IN,
    ("POST", "/logout-everywhere"): SIGN_IN,
    # own preferences
    ("GET", "/me"): STAFF,
    ("GET", "/me/preferences"): STAFF,
    ("POST", "/me/preferences"): STAFF,
    # the analyst workspace
    ("GET", "/queue"): ANALYST_UP,
    ("GET", "/items/{item_id}"): ANALYST_UP,
    ("GET", "/items/{item_id}/media/{medium_id}/thumb"): ANALYST_UP,
    ("POST", "/items/{item_id}/media/{medium_id}/reveal"): ANALYST_UP,
    ("GET", "/items/{item_id}/media/{medium_id}/revealed.jpg"): ANALYST_UP,
    ("POST", "/items/{item_id}/release"): ANALYST_UP,
    ("POST", "/items/{item_id}/classify"): ANALYST_UP,
    # seniors
    ("GET", "/disagreements"): SENIOR,
    ("GET", "/disagreements/{item_id}"): SENIOR,
    ("POST", "/items/{item_id}/resolve"): SENIOR,
    ("GET", "/decisions"): SENIOR,
    ("GET", "/decisions/{item_id}"): SENIOR,
    ("POST", "/items/{item_id}/correct"): SENIOR,
    ("GET", "/stats"): SENIOR,
    ("GET", "/statistics"): SENIOR,
    ("GET", "/statistics/{key}.csv"): SENIOR,
    ("GET", "/banks"): SENIOR,
    ("GET", "/banks/{name}"): SENIOR,
    ("GET", "/banks/{name}/entries"): SENIOR,
    ("POST", "/banks/import"): SENIOR,
    ("POST", "/banks/{name}/settings"): SENIOR,
    ("POST", "/banks/{name}/delete"): SENIOR,
    ("POST", "/banks/{name}/lookup"): SENIOR,
    # locate and act: abuse contacts, routing rules, takedowns waiting for a senior
    ("GET", "/act/contacts"): SENIOR,
    ("GET", "/act/contacts/new"): SENIOR,
    ("GET", "/act/contacts/{contact_id}"): SENIOR,
    ("POST", "/act/contacts"): SENIOR,
    ("POST", "/act/contacts/known"): SENIOR,
    ("POST", "/act/contacts/{contact_id}"): SENIOR,
    ("POST", "/act/contacts/{contact_id}/delete"): SENIOR,
    ("GET", "/act/rules"): SENIOR,
    ("GET", "/act/rules/{rule_id}"): SENIOR,
    ("POST", "/act/rules"): SENIOR,
    ("POST", "/act/rules/{rule_id}"): SENIOR,
    ("POST", "/act/rules/{rule_id}/delete"): SENIOR,
    ("GET", "/act/attention"): SENIOR,
    ("POST", "/act/takedowns/{takedown_id}/reroute"): SENIOR,
    ("POST", "/notices/{notice_id}/reply"): SENIOR,
    ("POST", "/notices/{notice_id}/resend"): SENIOR,
    ("POST", "/notices/{notice_id}/close"): SENIOR,
    # acting on items (notices)
    ("GET", "/notices"): ANALYST_UP,
    ("GET", "/overdue"): ANALYST_UP,
    ("GET", "/notices/{notice_id}"): ANALYST_UP,
    # police liaison
    ("GET", "/police/urgent"): POLICE,
    # urgent alerts (#10): whoever may acknowledge sees them; a senior marks an item urgent
    ("GET", "/alerts"): frozenset({"analyst", "senior", "police"}),
    ("POST", "/alerts/{alert_id}/ack"): frozenset({"analyst", "senior", "police"}),
    ("POST", "/items/{item_id}/alert"): SENIOR,
    ("GET", "/police/items/{item_id}"): POLICE,
    # police referral packages (#11): the liaison and seniors download, seniors make them
    ("GET", "/referrals"): frozenset({"senior", "police"}),
    ("POST", "/referrals/{referral_id}/download"): frozenset({"senior", "police"}),
    ("POST", "/referrals"): SENIOR,
    # link analysis (#13): seniors and the police liaison look and export
    ("GET", "/links"): frozenset({"senior", "police"}),
    ("GET", "/links/entities"): frozenset({"senior", "police"}),
    ("GET", "/links/entities/{entity_id}"): frozenset({"senior", "police"}),
    ("GET", "/links/groups/{node}"): frozenset({"senior", "police"}),
    ("POST", "/links/export"): frozenset({"senior", "police"}),
    ("POST", "/items/{item_id}/referral"): SENIOR,
    # forwards waiting for a senior (#11), the CyberTipline export of an item (#11)
    ("GET", "/act/forwards"): SENIOR,
    ("POST", "/act/forwards/{forward_id}/noted"): SENIOR,
    ("POST", "/act/forwards/{forward_id}/retry"): SENIOR,
    ("POST", "/items/{item_id}/cybertip.xml"): SENIOR,
    # the hidden-victims estimate (#13): seniors and the police liaison
    ("GET", "/estimate"): frozenset({"senior", "police"}),
    ("POST", "/estimate"): frozenset({"senior", "police"}),
    # administrator
    ("GET", "/admin/users"): ADMIN,
    ("POST", "/admin/users/add"): ADMIN,
    ("POST", "/admin/users/role"): ADMIN,
    ("POST", "/admin/users/reset-2fa"): ADMIN,
    ("POST", "/admin/users/disable"): ADMIN,
    ("POST", "/admin/users/enable"): ADMIN,
    ("GET", "/admin/audit"): ADMIN,
    ("GET", "/admin/audit.csv"): ADMIN,
    ("GET", "/admin/wellness-defaults"): ADMIN,
    ("POST", "/admin/wellness-defaults"): ADMIN,
    # locate and act (#10): removals (actions.view)
    ("GET", "/act/removals"): ANALYST_UP,
    # routes the test harness (tests.test_web_staff.Staff) adds to the app it builds
    ("GET", "/test/queue"): ANALYST_UP,
    ("GET", "/api/test/queue"): ANALYST_UP,
}


def _walk(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every route, into included routers (FastAPI keeps them nested)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context = getattr(route, "include_context", None)
            yield from _walk(included.routes, prefix + str(getattr(context, "prefix", "") or ""))
        elif isinstance(route, Mount):
            yield "GET", prefix + route.path
        else:
            path = prefix + str(getattr(route, "path", ""))
            for method in sorted(getattr(route, "methods", None) or {"GET"}):
                if method != "HEAD":
                    yield method, path


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    return set(_walk(list(app.routes)))


#: what :func:`meldpunt.web.staff.require` answers a signed-in role that lacks the permission
ROLE_FORBIDDEN = "Your role does not allow this page."


def _to_login(r: httpx.Response) -> bool:
    return r.status_code in (302, 303, 307) and r.headers.get("location", "").split("?")[0] == "/login"


def denied(r: httpx.Response) -> bool:
    """Any refusal at all (strict: used to prove a role is kept out)."""
    return r.status_code in (401, 403) or _to_login(r)


def role_refused(r: httpx.Response) -> bool:
    """A refusal for want of a role (a 403 for a missing or stale reveal grant is an answer the
    role was allowed to get: only the role check's own page counts)."""
    return r.status_code == 401 or _to_login(r) or (r.status_code == 403 and ROLE_FORBIDDEN in r.text)


@pytest.fixture
def world(sqlite_db: str) -> Iterator[Workspace]:
    with ExitStack() as stack:
        yield _workspace(sqlite_db, stack)


def _url(path: str, ids: dict[str, str]) -> str:
    if path == "/static":
        return "/static/style.css"
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no value for a parameter of {path}: add it to the test"
    return path


def _call(client: WebClient, method: str, url: str, **kw: Any) -> httpx.Response:
    if method == "POST":
        kw.setdefault("data", {})
    return client.request(method, url, **kw)


def test_every_route_is_in_the_table(world: Workspace) -> None:
    found = app_routes(world.staff.app)
    missing = sorted(found - EXPECTED.keys())
    stale = sorted(EXPECTED.keys() - found)
    assert not missing, f"routes with no line in the hand-written table: {missing}"
    assert not stale, f"table lines for routes that no longer exist: {stale}"


def test_every_route_by_every_role(world: Workspace) -> None:
    item = world.item(images=1, urgent=True)
    medium = world.media(item)[0]
    ids = {
        "item_id": str(item),
        "medium_id": str(medium),
        "code": "nosuchcode",
        "name": "nosuchbank",
        "alert_id": "1",
        "referral_id": "1",
        "contact_id": "1",
        "rule_id": "1",
        "takedown_id": "1",
        "forward_id": "1",
    }
    ids |= {"notice_id": "1", "token": "1.1.nosuchtoken", "entity_id": "1", "node": f"r:{item}"}
    ids |= {"key": "intake"}  # a statistics figure (#13)
    clients: dict[str, WebClient] = {ANON: world.staff.client()}
    for role in ROLES:
        clients[role] = world.user(f"user-{role}", role)
    api_token = create_api_token(world.staff.app.state.ctx.services, "roles-test", SCOPES)

    problems: list[str] = []
    for (method, path), who in sorted(EXPECTED.items()):
        url = _url(path, ids)
        for principal, client in clients.items():
            r = _call(client, method, url)
            where = f"{principal} {method} {path} -> {r.status_code} {r.headers.get('location', '')}"
            if r.status_code >= 500:
                problems.append(f"server error: {where}")
            elif who == SIGN_IN:
                if r.status_code in (401, 403):
                    problems.append(f"sign-in step refused: {where}")
            elif who == TOKEN:
                if r.status_code != 401:
                    problems.append(f"token route answered without a token: {where}")
            elif isinstance(who, frozenset):
                if principal in who and role_refused(r):
                    problems.append(f"refused, the table grants it: {where}")
                if principal not in who and not denied(r):
                    problems.append(f"GRANTED, the table does not: {where}")
        if who == TOKEN:  # with the token (and a staff session beside it): not refused
            bearer = {"Authorization": f"Bearer {api_token}"}
            if path == "/internal/items":
                basic = base64.b64encode(f"roles-test:{api_token}".encode()).decode()
                bearer = {"Authorization": f"Basic {basic}"}
            r = _call(clients["analyst"], method, url, headers=bearer)
            if r.status_code in (401, 403) or r.status_code >= 500:
                problems.append(f"token refused: {method} {path} -> {r.status_code}")
    assert not problems, "\n".join(problems)
