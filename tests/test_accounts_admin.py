"""Administering accounts through :class:`meldpunt.accounts.admin.UserAdmin`, the one service the
administrator's pages and the ``meldpunt user`` commands share: its rules (the last active
administrator stays; nobody disables or demotes themselves), and each change audited in the
transaction that makes it — on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meldpunt.accounts import Accounts, LoginError
from meldpunt.accounts.admin import AdminError, UserAdmin
from meldpunt.audit import AuditLog
from meldpunt.bootstrap import Services
from meldpunt.cli.common import State
from meldpunt.cli.users import app as users_app
from meldpunt.settings import Settings
from tests.helpers.accounts import FAST, PASSWORD, Clock, enrolled
from tests.helpers.audit import tamper


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def admin(db_url: str, clock: Clock) -> Iterator[UserAdmin]:
    services = Services(Settings.from_env({}, db=db_url))
    yield UserAdmin(Accounts(services.engine, clock=clock, hasher=FAST))
    services.close()


def _log(admin: UserAdmin) -> list[tuple[str, str, str, dict[str, object]]]:
    entries = AuditLog(admin.engine).entries(action="user.*")
    return [(e.actor, e.action, e.subject, dict(e.details)) for e in entries]


def test_the_last_active_administrator_can_be_neither_disabled_nor_demoted(admin: UserAdmin) -> None:
    admin.add("cli:root", "root", "admin", PASSWORD)
    refusals: tuple[Callable[[], object], ...] = (
        lambda: admin.disable("cli:op", "root"),
        lambda: admin.set_role("cli:op", "root", "senior"),
    )
    for refused in refusals:
        with pytest.raises(AdminError) as e:
            refused()
        assert e.value.code == "last_admin" and e.value.params == {"name": "root"}
    admin.add("root", "second", "admin", PASSWORD)
    assert admin.disable("root", "second")
    # a disabled administrator does not count: root is the last active one again
    with pytest.raises(AdminError, match="last active administrator"):
        admin.set_role("cli:op", "root", "analyst")
    assert admin.enable("root", "second")
    assert admin.set_role("second", "root", "senior")  # now there is another
    with pytest.raises(AdminError) as e:
        admin.disable("cli:op", "second")
    assert e.value.code == "last_admin"
    assert admin.accounts.user("second") is not None
    assert {u.name: (u.role, u.disabled) for u in admin.accounts.list_users()} == {
        "root": ("senior", False),
        "second": ("admin", False),
    }


def test_nobody_disables_or_demotes_themselves_and_bad_input_is_refused(admin: UserAdmin) -> None:
    admin.add("cli:root", "adm", "admin", PASSWORD)
    admin.add("cli:root", "adm2", "admin", PASSWORD)
    codes = []
    for call in (
        lambda: admin.disable("adm", "adm"),
        lambda: admin.set_role("adm", "adm", "analyst"),
        lambda: admin.add("adm", "x", "wizard"),
        lambda: admin.add("adm", " ", "analyst"),
        lambda: admin.add("adm", "x", "analyst", "short"),
        lambda: admin.add("adm", "adm2", "analyst"),
        lambda: admin.disable("adm", "nobody"),
        lambda: admin.enable("adm", "nobody"),
        lambda: admin.reset_2fa("adm", "nobody"),
        lambda: admin.set_role("adm", "adm2", "root"),
    ):
        with pytest.raises(AdminError) as e:
            call()
        codes.append(e.value.code)
    assert codes == [
        "yourself",
        "yourself",
        "unknown_role",
        "bad_name",
        "short_password",
        "exists",
        "no_user",
        "no_user",
        "no_user",
        "unknown_role",
    ]
    # nothing refused was done or audited
    assert [a for _, a, _, _ in _log(admin)] == ["user.add", "user.add"]


def test_every_action_is_audited_and_ends_the_users_sessions(admin: UserAdmin, clock: Clock) -> None:
    accounts = admin.accounts
    password = admin.add("adm", "ana", "analyst")
    assert len(password) >= 20 and accounts.check_password("ana", password).error is None
    user_id, _, _ = enrolled(accounts, clock, "bob", "analyst")
    session = accounts.start_session(user_id, "full")
    assert admin.set_role("adm", "bob", "senior")
    assert accounts.session(session) is None  # the next sign-in carries the new role
    assert not admin.set_role("adm", "bob", "senior")  # the same role: nothing done, nothing audited
    session = accounts.start_session(user_id, "full")
    admin.reset_2fa("adm", "bob")
    info = accounts.user("bob")
    assert info is not None and not info.enrolled and accounts.recovery_codes_left(user_id) == 0
    assert accounts.session(session) is None
    assert admin.disable("adm", "bob")
    assert not admin.disable("adm", "bob")
    assert accounts.check_password("bob", PASSWORD).error is LoginError.DISABLED
    assert admin.enable("adm", "bob")
    assert accounts.check_password("bob", PASSWORD).error is None
    assert _log(admin) == [
        ("adm", "user.add", "user:ana", {"role": "analyst"}),
        ("adm", "user.role", "user:bob", {"before": "analyst", "role": "senior"}),
        ("adm", "user.reset_2fa", "user:bob", {}),
        ("adm", "user.disable", "user:bob", {}),
        ("adm", "user.enable", "user:bob", {}),
    ]
    assert password not in str(_log(admin))
    assert AuditLog(admin.engine).entries(action="user.*")[-1].at == clock.now  # the injected clock


def test_no_change_without_its_audit_entry(admin: UserAdmin) -> None:
    """The change and its entry commit together: when the entry cannot be written (the log's head
    row is gone), the user is not disabled either."""
    admin.add("cli:root", "ana", "analyst", PASSWORD)
    tamper(admin.engine, "DELETE FROM audit_head")
    with pytest.raises(RuntimeError, match="audit_head"):
        admin.disable("adm", "ana")
    with pytest.raises(RuntimeError):
        admin.add("adm", "eve", "analyst", PASSWORD)
    info = admin.accounts.user("ana")
    assert info is not None and not info.disabled
    assert admin.accounts.user("eve") is None


runner = CliRunner()


@pytest.mark.slow
def test_the_cli_keeps_the_same_rules(tmp_path: Path) -> None:
    settings = Settings.from_env({}, db=str(tmp_path / "cli.db"))

    def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
        state = State(settings)
        try:
            r = runner.invoke(users_app, list(args), input=stdin, obj=state, catch_exceptions=False)
        finally:
            state.close()
        return r.exit_code, r.stderr

    assert run("add", "root", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")[0] == 0
    assert run("add", "ana", "--role", "analyst", "--password-stdin", stdin=PASSWORD + "\n")[0] == 0
    code, err = run("disable", "root")
    assert code == 2 and "last active administrator" in err
    code, err = run("role", "root", "senior")
    assert code == 2 and "last active administrator" in err
    assert run("role", "ana", "wizard")[0] == 2
    assert run("role", "ana", "senior")[0] == 0
    assert run("disable", "ana")[0] == 0
    assert run("enable", "ana")[0] == 0
    assert run("enable", "nobody")[0] == 2
    services = Services(settings)
    try:
        accounts = Accounts(services.engine, hasher=FAST)
        assert [(u.name, u.role, u.disabled) for u in accounts.list_users()] == [
            ("ana", "senior", False),
            ("root", "admin", False),
        ]
        log = AuditLog(services.engine)
        assert [e.action for e in log.entries(action="user.*")] == [
            "user.add",
            "user.add",
            "user.role",
            "user.disable",
            "user.enable",
        ]
        assert all(e.actor.startswith("cli:") for e in log.entries(action="user.*"))
    finally:
        services.close()
