"""Staff accounts without the web: the permission table (written out by hand here), passwords,
TOTP and its replay guard, recovery codes, lock-out with an injected clock, sessions, the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from typer.testing import CliRunner

from meldpunt.accounts import PERMISSIONS, ROLES, Accounts, AccountsPolicy, LoginError, allowed
from meldpunt.accounts.roles import ALL_PERMISSIONS, ANONYMOUS
from meldpunt.bootstrap import Services
from meldpunt.cli.common import State
from meldpunt.cli.users import app as users_app
from meldpunt.settings import Settings
from meldpunt.store.accounts import RecoveryCode, StaffSession, User
from tests.helpers.accounts import FAST, PASSWORD, Clock, enrolled

# -- the permission table, by hand: any difference from accounts/roles.py fails -------------------

EXPECTED: dict[str, set[str]] = {
    "analyst": {
        "queue.view",
        "item.view",
        "item.reveal",
        "item.classify",
        "prefs.own",
        "actions.view",
        "alerts.ack",
    },
    "senior": {
        "queue.view",
        "item.view",
        "item.reveal",
        "item.classify",
        "prefs.own",
        "disagreement.resolve",
        "classification.correct",
        "banks.manage",
        "stats.view",
        "actions.view",
        "alerts.ack",
        "contacts.manage",
        "notices.manage",
        "alerts.raise",
        "cybertip.export",
        "referrals.create",
        "referrals.download",
        "estimate.run",
        "links.view",
        "links.export",
    },
    "police": {
        "item.facts",
        "urgent.view",
        "prefs.own",
        "alerts.ack",
        "referrals.download",
        "estimate.run",
        "links.view",
        "links.export",
    },
    "admin": {"users.manage", "settings.manage", "audit.read", "prefs.own"},
}
EXPECTED_ANONYMOUS = {"report.submit", "status.view", "health.view"}


def test_every_role_against_the_permission_table_written_by_hand() -> None:
    assert set(ROLES) == set(EXPECTED)
    assert set(ANONYMOUS) == EXPECTED_ANONYMOUS
    everything = set().union(EXPECTED_ANONYMOUS, *EXPECTED.values()) | {"made.up"}
    assert set(ALL_PERMISSIONS) == everything - {"made.up"}
    for role in [*ROLES, None, "nobody"]:
        want = EXPECTED_ANONYMOUS | EXPECTED.get(role or "", set())
        for permission in sorted(everything):
            assert allowed(role, permission) == (permission in want), (role, permission)
    for role, perms in EXPECTED.items():
        assert set(PERMISSIONS[role]) == perms, role


def test_administering_is_not_viewing() -> None:
    assert not allowed("admin", "item.reveal") and not allowed("admin", "item.view")
    assert not allowed("police", "item.reveal") and allowed("police", "item.facts")
    assert not allowed("analyst", "banks.manage") and allowed("senior", "banks.manage")


# -- services ---------------------------------------------------------------------------------------


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    s = Services(Settings.from_env({}, db=db_url))
    yield s
    s.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def accounts(services: Services, clock: Clock) -> Accounts:
    return Accounts(services.engine, AccountsPolicy(), clock=clock, hasher=FAST)


def test_passwords_are_argon2_and_rehashed_when_the_parameters_change(
    accounts: Accounts, clock: Clock
) -> None:
    accounts.create_user("ana", "analyst", PASSWORD)
    with accounts.engine.connect() as conn:
        old = conn.execute(select(User.password_hash)).scalar_one()
    assert old.startswith("$argon2id$") and PASSWORD not in old
    assert accounts.check_password("ana", "wrong password!").error is LoginError.BAD
    assert accounts.check_password("nobody", PASSWORD).error is LoginError.BAD
    stronger = Accounts(accounts.engine, clock=clock, hasher=PasswordHasher(time_cost=2, memory_cost=2048))
    assert stronger.check_password("ana", PASSWORD).user_id is not None
    with accounts.engine.connect() as conn:
        new = conn.execute(select(User.password_hash)).scalar_one()
    assert new != old and "m=2048,t=2" in new
    assert stronger.check_password("ana", PASSWORD).error is None


def test_bad_users_and_roles_are_refused(accounts: Accounts) -> None:
    with pytest.raises(ValueError, match="role"):
        accounts.create_user("x", "root", PASSWORD)
    with pytest.raises(ValueError, match="12"):
        accounts.create_user("x", "analyst", "short")
    generated = accounts.create_user("x", "analyst")
    assert len(generated) >= 20
    with pytest.raises(ValueError, match="exists"):
        accounts.create_user("x", "admin", PASSWORD)


def test_totp_accepts_one_step_either_side_and_never_twice(accounts: Accounts, clock: Clock) -> None:
    uid, secret, _ = enrolled(accounts, clock)
    totp = pyotp.TOTP(secret)
    code = totp.at(clock.now)
    assert accounts.check_second_factor(uid, code) is None
    assert accounts.check_second_factor(uid, code) is LoginError.BAD  # replayed
    clock.tick(30)
    assert accounts.check_second_factor(uid, totp.at(clock.now - timedelta(seconds=30))) is LoginError.BAD
    assert accounts.check_second_factor(uid, totp.at(clock.now + timedelta(seconds=30))) is None  # next step
    clock.tick(120)
    assert accounts.check_second_factor(uid, totp.at(clock.now - timedelta(seconds=90))) is LoginError.BAD
    assert accounts.check_second_factor(uid, totp.at(clock.now - timedelta(seconds=30))) is None
    with accounts.engine.connect() as conn:
        assert conn.execute(select(User.totp_last_step)).scalar_one() == int(clock.now.timestamp()) // 30 - 1


def test_recovery_codes_are_stored_hashed_and_work_once(accounts: Accounts, clock: Clock) -> None:
    uid, _, codes = enrolled(accounts, clock)
    with accounts.engine.connect() as conn:
        stored = conn.execute(select(RecoveryCode.code_hash)).scalars().all()
    assert len(stored) == 10 and not set(stored) & set(codes)
    assert accounts.check_second_factor(uid, codes[3].upper()) is None
    assert accounts.check_second_factor(uid, codes[3]) is LoginError.BAD
    assert accounts.recovery_codes_left(uid) == 9


def test_lock_out_after_five_failures_counts_both_factors_and_lifts(accounts: Accounts, clock: Clock) -> None:
    uid, secret, _ = enrolled(accounts, clock)
    for _ in range(3):
        assert accounts.check_password("ana", "not the password").error is LoginError.BAD
    assert accounts.check_second_factor(uid, "000000") is LoginError.BAD
    assert accounts.check_second_factor(uid, "nope-nope-nope") is LoginError.BAD  # the fifth: locked now
    assert accounts.check_password("ana", PASSWORD).error is LoginError.LOCKED
    assert accounts.check_second_factor(uid, pyotp.TOTP(secret).at(clock.now)) is LoginError.LOCKED
    clock.tick(15 * 60 - 1)
    assert accounts.check_password("ana", PASSWORD).error is LoginError.LOCKED
    clock.tick(2)
    assert accounts.check_password("ana", PASSWORD).error is None
    # a success starts the count again: four more failures do not lock
    for _ in range(4):
        accounts.check_password("ana", "not the password")
    assert accounts.check_password("ana", PASSWORD).error is None


def test_sessions_expire_idle_and_are_stored_hashed(accounts: Accounts, clock: Clock) -> None:
    uid, _, _ = enrolled(accounts, clock)
    token = accounts.start_session(uid, "full")
    assert len(token) >= 43  # 256 bits of base64url
    with accounts.engine.connect() as conn:
        assert token not in conn.execute(select(StaffSession.id_hash)).scalars().all()
    clock.tick(59 * 60)
    assert accounts.session(token) is not None
    clock.tick(61 * 60)
    assert accounts.session(token) is None  # idle too long
    half = accounts.start_session(uid, "password")
    clock.tick(11 * 60)
    assert accounts.promote(half) is None  # the half state is short-lived
    token = accounts.start_session(uid, "full")
    for _ in range(14):
        clock.tick(55 * 60)
        accounts.session(token)
    assert accounts.session(token) is None  # 12 hours at most


def test_disable_and_reset_2fa_end_sessions(accounts: Accounts, clock: Clock) -> None:
    uid, _, _ = enrolled(accounts, clock)
    token = accounts.start_session(uid, "full")
    assert accounts.reset_2fa("ana") and accounts.session(token) is None
    info = accounts.user("ana")
    assert info is not None and not info.enrolled and accounts.recovery_codes_left(uid) == 0
    token = accounts.start_session(uid, "full")
    assert accounts.disable("ana") and accounts.session(token) is None
    assert accounts.check_password("ana", PASSWORD).error is LoginError.DISABLED
    assert not accounts.disable("nobody")


# -- the CLI ----------------------------------------------------------------------------------------

runner = CliRunner()


@pytest.mark.slow
def test_cli_user_add_list_disable_reset(tmp_path: Path) -> None:
    settings = Settings.from_env({}, db=str(tmp_path / "cli.db"))

    def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        state = State(settings)
        try:
            r = runner.invoke(users_app, list(args), input=stdin, obj=state, catch_exceptions=False)
        finally:
            state.close()
        return r.exit_code, r.stdout, r.stderr

    code, out, err = run("add", "root", "--role", "admin")
    assert code == 0 and len(out.strip()) >= 20 and "shown only now" in err
    generated = out.strip()
    code, out, _ = run("add", "ana", "--role", "analyst", "--password-stdin", stdin=PASSWORD + "\n")
    assert code == 0 and out == ""
    assert run("add", "bob", "--role", "wizard")[0] == 2
    assert run("add", "ana", "--role", "senior", "--password-stdin", stdin=PASSWORD + "\n")[0] == 2
    code, out, _ = run("list")
    assert code == 0
    assert out.splitlines() == ["ana\tanalyst\tnot-enrolled", "root\tadmin\tnot-enrolled"]

    services = Services(settings)
    try:
        accounts = Accounts(services.engine)
        assert accounts.check_password("root", generated).error is None
        assert accounts.check_password("ana", PASSWORD).error is None
        root = accounts.user("root")
        assert root is not None
        secret = accounts.begin_enrolment(root.id)
        assert secret is not None and accounts.finish_enrolment(root.id, pyotp.TOTP(secret).now())
        token = accounts.start_session(root.id, "full")
        assert run("list")[1].splitlines()[1] == "root\tadmin\tenrolled"
        assert run("reset-2fa", "root")[0] == 0
        assert accounts.session(token) is None
        assert run("list")[1].splitlines()[1] == "root\tadmin\tnot-enrolled"
        assert run("disable", "ana")[0] == 0
        assert run("list")[1].splitlines()[0] == "ana\tanalyst\tnot-enrolled,disabled"
        assert accounts.check_password("ana", PASSWORD).error is LoginError.DISABLED
        assert run("disable", "nobody")[0] == 2
        assert run("reset-2fa", "nobody")[0] == 2
        from meldpunt.audit import AuditLog

        log = AuditLog(services.engine)
        actions = [(e.action, e.subject) for e in log.entries(limit=50, action="user.*", newest=False)]
        assert actions == [
            ("user.add", "user:root"),
            ("user.add", "user:ana"),
            ("user.reset_2fa", "user:root"),
            ("user.disable", "user:ana"),
        ]
        assert log.verify().ok
    finally:
        services.close()


def test_second_factor_secrets_are_sealed_at_rest(sqlite_db: str) -> None:
    """With a sealer the users table holds no TOTP secret in the clear; sign-in works; a secret
    stored in the clear before is sealed at the next sign-in; another key cannot open them."""
    import secrets as _secrets
    import time

    import pyotp
    from sqlalchemy import select, update

    from meldpunt.accounts import Accounts, SecretSealer
    from meldpunt.store.accounts import User
    from meldpunt.store.db import create_db_engine

    engine = create_db_engine(sqlite_db)
    sealer = SecretSealer.derived_from(_secrets.token_bytes(32))
    accounts = Accounts(engine, sealer=sealer)
    accounts.create_user("ana", "analyst", PASSWORD)
    uid = accounts.user("ana").id  # type: ignore[union-attr]
    secret = accounts.begin_enrolment(uid)
    assert secret is not None and accounts.begin_enrolment(uid) == secret
    with engine.connect() as conn:
        stored = conn.execute(select(User.totp_secret).where(User.id == uid)).scalar_one()
    assert stored is not None
    assert stored != secret and secret not in stored and len(stored) <= 64
    totp = pyotp.TOTP(secret)
    assert accounts.finish_enrolment(uid, totp.now())
    assert accounts.check_second_factor(uid, totp.at(time.time() + 30)) is None

    other = Accounts(engine, sealer=SecretSealer.derived_from(_secrets.token_bytes(32)))
    with pytest.raises(ValueError, match="does not open"):
        other.check_second_factor(uid, totp.at(time.time() - 30))
    with pytest.raises(ValueError, match="needs the sealing key"):
        Accounts(engine).check_second_factor(uid, totp.at(time.time() - 30))

    # a secret stored in the clear (before sealing was switched on) is sealed at the next sign-in
    accounts.create_user("ben", "analyst", PASSWORD)
    bid = accounts.user("ben").id  # type: ignore[union-attr]
    clear = Accounts(engine)
    ben_secret = clear.begin_enrolment(bid)
    assert ben_secret is not None
    ben = pyotp.TOTP(ben_secret)
    assert clear.finish_enrolment(bid, ben.now())
    assert accounts.check_second_factor(bid, ben.at(time.time() + 30)) is None
    with engine.connect() as conn:
        now_stored = conn.execute(select(User.totp_secret).where(User.id == bid)).scalar_one()
    assert now_stored is not None
    assert SecretSealer.is_sealed(now_stored) and sealer.open(bid, now_stored) == ben_secret
    with engine.begin() as conn:  # a sealed secret copied onto another user does not open
        conn.execute(update(User).where(User.id == uid).values(totp_secret=now_stored))
    with pytest.raises(ValueError, match="does not open"):
        accounts.check_second_factor(uid, totp.now())
