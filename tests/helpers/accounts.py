"""Accounts for tests: a fast password policy, a settable clock, an enrolled user."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
from argon2 import PasswordHasher

from meldpunt.accounts import Accounts

PASSWORD = "correct horse battery staple"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 30) -> None:
        self.now += timedelta(seconds=seconds)


FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def enrolled(
    accounts: Accounts, clock: Clock, name: str = "ana", role: str = "analyst"
) -> tuple[int, str, list[str]]:
    """A user with a second factor: (id, TOTP secret, recovery codes)."""
    accounts.create_user(name, role, PASSWORD)
    info = accounts.user(name)
    assert info is not None
    secret = accounts.begin_enrolment(info.id)
    assert secret is not None
    codes = accounts.finish_enrolment(info.id, pyotp.TOTP(secret).at(clock.now))
    assert codes is not None and len(codes) == 10
    clock.tick()
    return info.id, secret, codes
