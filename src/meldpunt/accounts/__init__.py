"""Staff accounts: roles and their permissions (as data), argon2 passwords, mandatory TOTP,
recovery codes, server-side sessions and lock-out. The web layer builds on :class:`Accounts`."""

from meldpunt.accounts.roles import ANONYMOUS, PERMISSIONS, ROLES, allowed
from meldpunt.accounts.service import (
    Accounts,
    AccountsPolicy,
    CurrentUser,
    LoginError,
    SecretSealer,
    UserInfo,
)

__all__ = [
    "ANONYMOUS",
    "PERMISSIONS",
    "ROLES",
    "Accounts",
    "AccountsPolicy",
    "CurrentUser",
    "LoginError",
    "SecretSealer",
    "UserInfo",
    "allowed",
]
