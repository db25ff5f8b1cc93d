"""Administering staff accounts: add a user, change a role, reset the second factor, disable and
re-enable — one method per action, used by the web pages and the ``meldpunt user`` commands alike,
so both keep the same rules:

- a role is one of :data:`~meldpunt.accounts.roles.ROLES`; a name has 1 to 120 characters and is
  not taken; a chosen password has at least 12 characters (else one is generated);
- the last active (not disabled) administrator can be neither disabled nor given another role: a
  hotline must never lock itself out of its own administration;
- nobody disables themselves or changes their own role (the CLI's actor ``cli:<os user>`` is not
  a staff account, so this never stops the command line).

Each action and its audit entry commit in one transaction: there is no change without its entry.
Refusals are :class:`AdminError` with a code and parameters (the web translates them, the CLI
prints :attr:`AdminError.message`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from meldpunt.accounts.roles import ROLES
from meldpunt.accounts.service import Accounts, new_password
from meldpunt.audit.log import AuditEvent, record
from meldpunt.store.accounts import RecoveryCode, StaffSession, User

#: the role that administers (holds ``users.manage``)
ADMIN_ROLE = "admin"
MAX_NAME = 120
MIN_PASSWORD = 12

#: English for each refusal (the CLI prints these; the web has its own translated words)
MESSAGES = {
    "unknown_role": "unknown role {role!r}; one of {roles}",
    "bad_name": "a user name has 1 to {max} characters",
    "short_password": "a password has at least {min} characters",
    "exists": "a user named {name!r} exists already",
    "no_user": "no user named {name!r}",
    "last_admin": "{name!r} is the last active administrator: add or enable another one first",
    "yourself": "you cannot disable yourself or change your own role",
}


class AdminError(ValueError):
    """An action refused: ``code`` (a key of :data:`MESSAGES`) and its parameters."""

    def __init__(self, code: str, **params: Any) -> None:
        self.code = code
        self.params = params
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return MESSAGES[self.code].format(**self.params)


class UserAdmin:
    """The administrator's actions on :class:`Accounts`' users, each audited as ``actor``."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts
        self.engine = accounts.engine

    # -- the actions ---------------------------------------------------------------------------------

    def add(self, actor: str, name: str, role: str, password: str | None = None) -> str:
        """Add a user (they set up their authenticator at their first sign-in); returns the
        password, generated when none is given — shown once, never stored or audited."""
        name = name.strip()
        _check_role(role)
        if not name or len(name) > MAX_NAME:
            raise AdminError("bad_name", max=MAX_NAME)
        password = password if password is not None else new_password()
        if len(password) < MIN_PASSWORD:
            raise AdminError("short_password", min=MIN_PASSWORD)
        hashed = self.accounts.hasher.hash(password)
        now = self.accounts.clock()
        with self.engine.begin() as conn:
            if conn.execute(select(User.id).where(User.name == name)).first() is not None:
                raise AdminError("exists", name=name)
            conn.execute(
                insert(User).values(
                    name=name,
                    role=role,
                    password_hash=hashed,
                    totp_secret=None,
                    totp_enrolled=False,
                    totp_last_step=None,
                    disabled=False,
                    failed_count=0,
                    locked_until=None,
                    created_at=now,
                    updated_at=now,
                )
            )
            self._audit(conn, actor, "user.add", name, role=role)
        return password

    def set_role(self, actor: str, name: str, role: str) -> bool:
        """Give a user another role; their sessions end (the next sign-in carries the new role).
        False when the role was theirs already (nothing done, nothing audited)."""
        _check_role(role)
        with self.engine.begin() as conn:
            row = self._row(conn, actor, name)
            if row.role == role:
                return False
            if row.role == ADMIN_ROLE and not row.disabled:
                self._keep_an_admin(conn, name)
            self._update(conn, row.id, role=role)
            self._audit(conn, actor, "user.role", name, before=row.role, role=role)
        return True

    def disable(self, actor: str, name: str) -> bool:
        """They cannot sign in, and every session of theirs ends now. False when disabled already."""
        with self.engine.begin() as conn:
            row = self._row(conn, actor, name)
            if row.disabled:
                return False
            if row.role == ADMIN_ROLE:
                self._keep_an_admin(conn, name)
            self._update(conn, row.id, disabled=True)
            self._audit(conn, actor, "user.disable", name)
        return True

    def enable(self, actor: str, name: str) -> bool:
        """Undo :meth:`disable` (and any lock-out). False when the user was not disabled."""
        with self.engine.begin() as conn:
            row = self._row(conn, actor, name, self_allowed=True)
            if not row.disabled:
                return False
            self._update(conn, row.id, disabled=False, failed_count=0, locked_until=None)
            self._audit(conn, actor, "user.enable", name)
        return True

    def reset_2fa(self, actor: str, name: str) -> None:
        """Forget their authenticator and recovery codes (a lost phone) and end their sessions:
        they enrol again at their next sign-in, with their password."""
        with self.engine.begin() as conn:
            row = self._row(conn, actor, name, self_allowed=True)
            self._update(conn, row.id, totp_secret=None, totp_enrolled=False, totp_last_step=None)
            conn.execute(delete(RecoveryCode).where(RecoveryCode.user_id == row.id))
            self._audit(conn, actor, "user.reset_2fa", name)

    # -- internals -----------------------------------------------------------------------------------

    def _row(self, conn: Connection, actor: str, name: str, *, self_allowed: bool = False) -> Any:
        if not self_allowed and actor == name:
            raise AdminError("yourself")
        row = conn.execute(
            select(User.id, User.role, User.disabled).where(User.name == name.strip()).with_for_update()
        ).first()
        if row is None:
            raise AdminError("no_user", name=name)
        return row

    def _keep_an_admin(self, conn: Connection, name: str) -> None:
        """Refuse when ``name`` is the only active administrator. The active administrators' rows
        are locked (PostgreSQL), so two administrators cannot disable each other at once."""
        active = conn.execute(
            select(User.id).where(User.role == ADMIN_ROLE, User.disabled.is_(False)).with_for_update()
        ).all()
        if len(active) <= 1:
            raise AdminError("last_admin", name=name)

    def _update(self, conn: Connection, user_id: int, **values: Any) -> None:
        conn.execute(
            update(User).where(User.id == user_id).values(updated_at=self.accounts.clock(), **values)
        )
        conn.execute(delete(StaffSession).where(StaffSession.user_id == user_id))

    def _audit(self, conn: Connection, actor: str, action: str, name: str, **details: Any) -> None:
        record(conn, AuditEvent(actor, action, f"user:{name}"[:200], details, at=self.accounts.clock()))


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AdminError("unknown_role", role=role, roles=", ".join(ROLES))
