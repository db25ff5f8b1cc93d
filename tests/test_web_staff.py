"""Staff sign-in through the web app, in-process, on SQLite and PostgreSQL: password then TOTP,
enrolment, recovery codes, replay, lock-out, disabled users, logout (everywhere), CSRF, and the
``require`` dependency on a test route."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from typing import Literal

import pytest
from argon2 import PasswordHasher

from meldpunt.accounts import Accounts, AccountsPolicy
from meldpunt.audit import entries as audit_entries
from meldpunt.bootstrap import Services
from meldpunt.settings import Settings
from meldpunt.web.staff import COOKIE, require
from tests.helpers.accounts import PASSWORD
from tests.helpers.staff import Staff, enrol, password_step, peer, token
from tests.helpers.webclient import WebClient


@pytest.fixture
def staff(db_url: str) -> Iterator[Staff]:
    services = Services(Settings.from_env({}, db=db_url))
    with ExitStack() as stack:
        yield Staff(services, stack)
    services.close()


def second_step(client: WebClient, code: str) -> int:
    page = client.get("/login/totp")
    assert page.status_code == 200
    r = client.post("/login/totp", data={"token": token(page.text), "code": code})
    return r.status_code


def sign_in(staff: Staff, client: WebClient, secret: str, name: str = "ana") -> None:
    assert password_step(client, name) == "/login/totp"
    assert second_step(client, staff.code(secret)) == 303
    staff.clock.tick()


def test_the_whole_journey(staff: Staff) -> None:
    staff.accounts.create_user("ana", "analyst", PASSWORD)
    client = staff.client()
    r = client.get("/test/queue")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Ftest%2Fqueue"
    assert client.get("/api/test/queue").status_code == 401
    assert client.get("/me").headers["location"] == "/login"

    assert password_step(client, password="not the password") == "status 400"
    page = client.get("/login")
    r = client.post("/login", data={"token": token(page.text), "name": "ana", "password": PASSWORD})
    assert r.headers["location"] == "/enrol"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Path=/" in cookie and "Secure" not in cookie  # plain http in the tests
    half_id = client.cookies[COOKIE]
    # half signed in: nothing but the second step
    assert client.get("/test/queue").headers["location"] == "/login?next=%2Ftest%2Fqueue"
    assert client.get("/api/test/queue").status_code == 401
    assert client.get("/me").headers["location"] == "/login"

    secret, codes = enrol(staff, client)
    assert client.cookies[COOKIE] != half_id  # a new id once signed in
    assert client.get("/test/queue").json() == {"name": "ana", "role": "analyst"}
    me = client.get("/me")
    assert me.status_code == 200 and "Recovery codes left: 10" in me.text
    assert "What waits for you" in me.text and "item.reveal" not in me.text  # no permission names

    # log out: the cookie's session is gone
    old_id = client.cookies[COOKIE]
    r = client.post("/logout", data={"token": token(me.text)})
    assert r.headers["location"] == "/login"
    assert staff.accounts.session(old_id) is None
    stale = staff.client()
    stale.cookies.set(COOKIE, old_id)
    assert stale.get("/test/queue").headers["location"] == "/login?next=%2Ftest%2Fqueue"

    # again: password, wrong TOTP, right TOTP
    assert password_step(client) == "/login/totp"
    assert second_step(client, "123456" if staff.code(secret) != "123456" else "654321") == 400
    code = staff.code(secret)
    assert second_step(client, code) == 303
    assert client.get("/test/queue").status_code == 200

    # the same code again, same step, another sign-in: refused
    other = staff.client()
    assert password_step(other) == "/login/totp"
    assert second_step(other, code) == 400
    staff.clock.tick()
    assert second_step(other, staff.code(secret)) == 303
    assert other.get("/test/queue").status_code == 200

    # a recovery code works once
    third = staff.client()
    assert password_step(third) == "/login/totp"
    assert second_step(third, codes[0]) == 303
    assert "Recovery codes left: 9" in third.get("/me").text
    fourth = staff.client()
    assert password_step(fourth) == "/login/totp"
    assert second_step(fourth, codes[0]) == 400


def test_lock_out_after_five_failures_and_unlock_later(staff: Staff) -> None:
    staff.accounts.create_user("ana", "analyst", PASSWORD)
    setup = staff.client()
    secret, _ = enrol(staff, setup)
    client = staff.client()
    for _ in range(3):
        assert password_step(client, password="not the password") == "status 400"
    assert password_step(client) == "/login/totp"
    assert second_step(client, "xxxx-xxxx-xxxx") == 400
    page = client.get("/login/totp")
    r = client.post("/login/totp", data={"token": token(page.text), "code": "yyyy-yyyy-yyyy"})
    assert r.status_code == 400 and "not accepted" in r.text  # the fifth failure: locked now
    r = client.post("/login/totp", data={"token": token(r.text), "code": staff.code(secret)})
    assert r.status_code == 400 and "Sign-in failed" in r.text  # even the right code: back to the start
    assert COOKIE not in client.cookies
    assert password_step(client) == "status 400"  # the right password, but locked
    staff.clock.tick(15 * 60 + 1)
    sign_in(staff, client, secret)
    assert client.get("/test/queue").status_code == 200


def test_disabled_users_cannot_sign_in_and_their_sessions_die(staff: Staff) -> None:
    staff.accounts.create_user("ana", "analyst", PASSWORD)
    client = staff.client()
    enrol(staff, client)
    assert client.get("/test/queue").status_code == 200
    assert staff.accounts.disable("ana")
    assert client.get("/test/queue").headers["location"] == "/login?next=%2Ftest%2Fqueue"
    assert password_step(staff.client()) == "status 400"


def test_logout_everywhere_ends_the_other_sessions(staff: Staff) -> None:
    staff.accounts.create_user("ana", "analyst", PASSWORD)
    staff.accounts.create_user("bob", "analyst", PASSWORD)
    laptop = staff.client()
    secret, _ = enrol(staff, laptop)
    phone = staff.client()
    sign_in(staff, phone, secret)
    bob = staff.client()
    enrol(staff, bob, "bob")
    assert laptop.get("/test/queue").status_code == phone.get("/test/queue").status_code == 200
    me = phone.get("/me").text
    everywhere = re.findall(r'name="token" value="([^"]+)"', me)[1]
    r = phone.post("/logout-everywhere", data={"token": everywhere})
    assert r.headers["location"] == "/login"
    assert laptop.get("/test/queue").headers["location"] == "/login?next=%2Ftest%2Fqueue"
    assert phone.get("/test/queue").headers["location"] == "/login?next=%2Ftest%2Fqueue"
    assert bob.get("/test/queue").status_code == 200  # only ana's sessions


def test_forged_or_foreign_form_tokens_are_refused(staff: Staff) -> None:
    staff.accounts.create_user("ana", "analyst", PASSWORD)
    client = staff.client()
    r = client.post("/login", data={"token": "1700000000.abc.forged", "name": "ana", "password": PASSWORD})
    assert r.status_code == 400 and COOKIE not in client.cookies
    page = client.get("/login")
    r = client.post(
        "/login",
        data={"token": token(page.text), "name": "ana", "password": PASSWORD},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert r.status_code == 400 and COOKIE not in client.cookies
    secret, _ = enrol(staff, client)
    other = staff.client()
    sign_in(staff, other, secret)
    # a token of the other session's form does not work with this session
    foreign = re.findall(r'name="token" value="([^"]+)"', other.get("/me").text)[1]
    assert client.post("/logout-everywhere", data={"token": foreign}).status_code == 400
    assert client.post("/logout-everywhere", data={}).status_code == 400
    assert client.post("/logout", data={"token": foreign}).status_code == 400
    assert client.get("/test/queue").status_code == other.get("/test/queue").status_code == 200


def test_roles_without_the_permission_get_403(staff: Staff) -> None:
    staff.accounts.create_user("pol", "police", PASSWORD)
    staff.accounts.create_user("adm", "admin", PASSWORD)
    for name in ("pol", "adm"):
        client = staff.client()
        enrol(staff, client, name)
        r = client.get("/test/queue")
        assert r.status_code == 403 and "Not allowed" in r.text
        assert client.get("/api/test/queue").status_code == 403
        assert client.get("/me").status_code == 200


def test_require_refuses_unknown_permissions() -> None:
    with pytest.raises(ValueError, match="unknown permission"):
        require("queue.veiw")


# -- the password form under attack ----------------------------------------------------------------


class CountingHasher(PasswordHasher):
    """The tests' fast argon2, noting which hash each verify was against."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verified: list[str | bytes] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verified.append(hash)
        return super().verify(hash, password)


def counting(staff: Staff) -> CountingHasher:
    """Swap in an account service whose hasher counts (same clock, same policy)."""
    hasher = CountingHasher()
    staff.accounts = Accounts(staff.accounts.engine, AccountsPolicy(), clock=staff.clock, hasher=hasher)
    staff.app.state.accounts = staff.accounts
    return hasher


def limits(staff: Staff, per_name: int, per_client: int) -> None:
    c = staff.app.state.ctx
    c.config = replace(c.config, login_rate_per_name=per_name, login_rate_per_client=per_client)


def audit(staff: Staff, action: str) -> list[tuple[str, dict[str, object]]]:
    with staff.accounts.engine.connect() as conn:
        return [(e.actor, dict(e.details)) for e in audit_entries(conn, action=action)]


def test_sign_in_is_rate_limited_per_account_name(staff: Staff) -> None:
    hasher = counting(staff)
    limits(staff, per_name=3, per_client=100)
    staff.accounts.create_user("ana", "analyst", PASSWORD)
    staff.accounts.create_user("bob", "analyst", PASSWORD)
    for n in range(3):  # from three different clients
        assert password_step(staff.client(peer(n)), "ana", "not the password") == "status 400"
    verified = len(hasher.verified)
    fourth = staff.client(peer(9))
    page = fourth.get("/login")
    r = fourth.post("/login", data={"token": token(page.text), "name": " ANA ", "password": PASSWORD})
    assert r.status_code == 429 and "Too many sign-in attempts" in r.text and COOKIE not in fourth.cookies
    assert int(r.headers["retry-after"]) > 0
    assert len(hasher.verified) == verified  # refused before any argon2 work
    assert password_step(staff.client(peer(9)), "bob") == "/enrol"  # another name: not held up
    staff.clock.tick(15 * 60 + 1)  # the window is over (and ana's lock too: 3 failures did not lock)
    assert password_step(staff.client(peer(9)), "ana") == "/enrol"


def test_sign_in_is_rate_limited_per_client_without_keeping_its_address(staff: Staff) -> None:
    limits(staff, per_name=100, per_client=5)
    staff.accounts.create_user("ana", "analyst", PASSWORD)
    noisy = staff.client(peer(7))
    for n in range(5):
        assert password_step(noisy, f"guess-{n}", "not the password") == "status 400"
    assert password_step(noisy, "ana") == "status 429"
    assert password_step(staff.client(peer(8)), "ana") == "/enrol"  # another client
    guard = staff.app.state.signin_guard
    held = [*guard.by_client.keys(), *guard.by_name.keys()]
    assert held and all(b"198.51.100" not in k and b"guess" not in k for k in held)
    staff.clock.tick(15 * 60 + 1)
    assert password_step(noisy, "ana") == "/enrol"


def test_a_locked_account_answers_like_a_wrong_password(staff: Staff) -> None:
    hasher = counting(staff)
    staff.accounts.create_user("ana", "analyst", PASSWORD)
    staff.accounts.create_user("bob", "analyst", PASSWORD)
    for n in range(5):
        assert password_step(staff.client(peer(n)), "ana", "not the password") == "status 400"
    ana = staff.accounts.user("ana")
    assert ana is not None and ana.locked_until is not None
    dummy = staff.accounts._dummy_hash

    def attempt(name: str, password: str) -> tuple[int, str, list[str | bytes]]:
        client = staff.client(peer(50))
        page = client.get("/login")
        before = len(hasher.verified)
        r = client.post("/login", data={"token": token(page.text), "name": name, "password": password})
        body = r.text.replace(token(r.text), "TOKEN").replace(f'value="{name}"', 'value="NAME"')
        return r.status_code, body, hasher.verified[before:]

    wrong = attempt("bob", "not the password")
    locked_wrong = attempt("ana", "not the password")
    locked_right = attempt("ana", PASSWORD)
    unknown = attempt("nobody", PASSWORD)
    assert wrong[0] == locked_wrong[0] == locked_right[0] == unknown[0] == 400
    assert wrong[1] == locked_wrong[1] == locked_right[1] == unknown[1]  # the same page, word for word
    # the same work: one argon2 verify each; a locked account's against the dummy hash, so the
    # answer cannot tell whether its password was right
    assert len(wrong[2]) == len(locked_wrong[2]) == len(locked_right[2]) == len(unknown[2]) == 1
    assert wrong[2][0] != dummy and locked_wrong[2] == locked_right[2] == unknown[2] == [dummy]
    ana = staff.accounts.user("ana")
    assert ana is not None and ana.locked_until is not None  # still locked, not extended
    staff.clock.tick(15 * 60 + 1)
    assert password_step(staff.client(peer(51)), "ana") == "/enrol"


def test_failed_sign_ins_for_unknown_names_are_one_audit_row_per_window(staff: Staff) -> None:
    limits(staff, per_name=100, per_client=11)
    staff.accounts.create_user("ana", "analyst", PASSWORD)
    for n in range(20):  # ten from each of two clients
        assert password_step(staff.client(peer(n % 2)), f"made-up-{n}", "hunter2") == "status 400"
    assert password_step(staff.client(peer(0)), "made-up-20", "hunter2") == "status 400"  # its 11th
    assert password_step(staff.client(peer(0)), "made-up-21", "hunter2") == "status 429"  # its 12th
    assert password_step(staff.client(peer(3)), "ana", "not the password") == "status 400"
    rows = audit(staff, "staff.login_failed")
    assert [actor for actor, _ in rows] == ["?", "ana"]  # the first unknown name at once; ana's own
    assert rows[0][1]["unknown_name"] == 1 and rows[1][1] == {"step": "password"}
    staff.clock.tick(15 * 60 + 1)
    staff.client(peer(4)).get("/login")  # the first sign-in request after the window closes it
    rows = audit(staff, "staff.login_failed")
    assert len(rows) == 3
    actor, summary = rows[2]
    assert actor == "?" and summary["unknown_name"] == 20 and summary["throttled"] == 1
    assert summary["since"] == "2026-11-22T12:00:00+00:00" and summary["until"] == "2026-11-22T12:15:01+00:00"
    assert len(audit(staff, "staff.login_failed")) == 3  # nothing more to write
    with staff.accounts.engine.connect() as conn:
        written = repr([(e.actor, e.details) for e in audit_entries(conn)])
    assert "made-up" not in written and "hunter2" not in written


def test_the_login_form_token_is_single_use(staff: Staff) -> None:
    hasher = counting(staff)
    staff.accounts.create_user("ana", "analyst", PASSWORD)
    client = staff.client()
    page = client.get("/login")
    used = token(page.text)
    r = client.post("/login", data={"token": used, "name": "ana", "password": "not the password"})
    assert r.status_code == 400 and "Sign-in failed" in r.text
    verified = len(hasher.verified)
    again = client.post("/login", data={"token": used, "name": "ana", "password": PASSWORD})
    assert again.status_code == 400 and "This form has expired" in again.text
    assert COOKIE not in client.cookies and len(hasher.verified) == verified
    fresh = client.post("/login", data={"token": token(r.text), "name": "ana", "password": PASSWORD})
    assert fresh.headers["location"] == "/enrol"
