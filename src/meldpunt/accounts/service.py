"""The account services: users, argon2 passwords, TOTP with replay protection, recovery codes,
server-side sessions and lock-out. Storage is :mod:`meldpunt.store.accounts`.

- Passwords: argon2id (argon2-cffi's ``PasswordHasher`` defaults), re-hashed on the next good
  login when the parameters change.
- TOTP: 30-second steps, 6 digits, one step either side accepted (``valid_window=1``); the step of
  the last accepted code is stored and no code of that step or an earlier one is accepted again.
- TOTP secrets at rest: sealed with AES-256-GCM (:class:`SecretSealer`, the user id as associated
  data) under a key kept outside the database, so a copy of the database alone gives neither the
  passwords nor the second factors. Without a sealer (tests) they are stored as they are; a secret
  stored before sealing was switched on is sealed at its owner's next sign-in.
- Recovery codes: 10 at enrolment, shown once, stored as SHA-256 (each has 60 random bits), each
  usable once.
- Sessions: a random id of 256 bits in the cookie, its SHA-256 in the database, with an absolute
  expiry, an idle expiry and a stage: ``password`` (first factor only: grants nothing but the second
  step) or ``full``. The id changes when the stage does.
- Lock-out per account (never per address): ``max_failures`` failed passwords or second factors in
  a row lock the account for ``lock_minutes``; the counter restarts after a success or a lock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from functools import cached_property
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Engine, delete, insert, or_, select, update
from sqlalchemy.engine import Connection

from meldpunt.accounts.roles import ROLES
from meldpunt.accounts.zones import check_zone
from meldpunt.settings import StaffSettings
from meldpunt.store.accounts import RecoveryCode, StaffSession, User


class SecretSealer:
    """Seals TOTP secrets for the ``users`` table: the secret's 20 bytes, AES-256-GCM with a random
    nonce and the user id as associated data, stored as 64 characters of URL-safe base64 (a secret
    stored in the clear is 32 base32 characters: the two cannot be confused)."""

    SEALED_LENGTH = 64

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the sealing key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def derived_from(cls, master: bytes) -> SecretSealer:
        """A sealer under a key derived (HKDF-SHA256) from another 32-byte key, e.g. the review
        store's: one key fewer to keep, and neither key reveals the other."""
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"meldpunt:totp-secrets:v1").derive(
            master
        )
        return cls(key)

    @staticmethod
    def _aad(user_id: int) -> bytes:
        return b"meldpunt-totp:v1:user:" + str(int(user_id)).encode()

    def seal(self, user_id: int, secret: str) -> str:
        raw = base64.b32decode(secret)
        nonce = secrets.token_bytes(12)
        sealed = nonce + self._aead.encrypt(nonce, raw, self._aad(user_id))
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    @classmethod
    def is_sealed(cls, stored: str) -> bool:
        return len(stored) == cls.SEALED_LENGTH

    def open(self, user_id: int, stored: str) -> str:
        if not self.is_sealed(stored):
            return stored  # stored before sealing was switched on
        try:
            blob = base64.urlsafe_b64decode(stored + "=" * (-len(stored) % 4))
            raw = self._aead.decrypt(blob[:12], blob[12:], self._aad(user_id))
        except (InvalidTag, binascii.Error, ValueError):
            raise ValueError(
                f"the second-factor secret of user {user_id} does not open (wrong key?)"
            ) from None
        return base64.b32encode(raw).decode()


TOTP_STEP = 30
TOTP_DIGITS = 6
TOTP_WINDOW = 1
RECOVERY_CODES = 10
#: Recovery codes are written in this alphabet (no 0/O, 1/I/L) in groups of four.
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything here is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


#: the staff section of the settings (``MELDPUNT_STAFF_*``); the older name, kept for one release
AccountsPolicy = StaffSettings


class LoginError(Enum):
    BAD = "bad"  # unknown user, wrong password or wrong code: the same answer for all
    LOCKED = "locked"
    DISABLED = "disabled"


@dataclass(frozen=True)
class UserInfo:
    id: int
    name: str
    role: str
    enrolled: bool
    disabled: bool
    locked_until: datetime | None


@dataclass(frozen=True)
class CurrentUser:
    """The user behind a session, as the web layer sees it."""

    id: int
    name: str
    role: str
    #: "password" (half signed in) or "full"
    stage: str
    enrolled: bool
    #: SHA-256 of the session id: binds form tokens to this session
    session_hash: str
    #: the user's own time zone (an IANA name); None: the hotline's default
    time_zone: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.stage == "full"


@dataclass(frozen=True)
class PasswordResult:
    user_id: int | None
    error: LoginError | None
    #: no account has the name (for the audit log only: the answer is the same as a wrong password)
    unknown: bool = False


def new_password() -> str:
    """A generated password: 20 characters of base64url, 120 bits."""
    return secrets.token_urlsafe(15)


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(12))
    return "-".join(raw[i : i + 4] for i in range(0, 12, 4))


def _normal_recovery_code(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


class Accounts:
    def __init__(
        self,
        engine: Engine,
        policy: StaffSettings | None = None,
        clock: Clock = _utcnow,
        hasher: PasswordHasher | None = None,
        sealer: SecretSealer | None = None,
        sealer_factory: Callable[[], SecretSealer] | None = None,
    ) -> None:
        self.engine = engine
        self._sealer = sealer
        #: makes the sealer when a secret is first sealed or opened (its key is read only then)
        self._sealer_factory = sealer_factory
        self.policy = policy or StaffSettings()
        self.clock = clock
        self.hasher = hasher or PasswordHasher()

    @cached_property
    def _dummy_hash(self) -> str:
        """What :meth:`check_password` verifies against when there is no account to check. Made at
        the first password check, before the account is looked up (so that first answer takes as
        long whatever the name), not with every ``Accounts``: 0.25 s each, for every process."""
        return self.hasher.hash(secrets.token_urlsafe(16))

    @property
    def sealer(self) -> SecretSealer | None:
        if self._sealer is None and self._sealer_factory is not None:
            self._sealer = self._sealer_factory()
        return self._sealer

    # -- users ----------------------------------------------------------------------------------

    def create_user(self, name: str, role: str, password: str | None = None) -> str:
        """Create a user (no second factor yet: enrolment happens at the first sign-in); returns the
        password, generated when none is given. Raises ValueError on a bad role or name."""
        name = name.strip()
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
        if not name or len(name) > 120:
            raise ValueError("a user name has 1 to 120 characters")
        password = password if password is not None else new_password()
        if len(password) < 12:
            raise ValueError("a password has at least 12 characters")
        now = self.clock()
        with self.engine.begin() as conn:
            if conn.execute(select(User.id).where(User.name == name)).first() is not None:
                raise ValueError(f"a user named {name!r} exists already")
            conn.execute(
                insert(User).values(
                    name=name,
                    role=role,
                    password_hash=self.hasher.hash(password),
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
        return password

    def list_users(self) -> list[UserInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    User.id, User.name, User.role, User.totp_enrolled, User.disabled, User.locked_until
                ).order_by(User.name)
            ).all()
        return [
            UserInfo(r.id, r.name, r.role, bool(r.totp_enrolled), bool(r.disabled), _aware(r.locked_until))
            for r in rows
        ]

    def user(self, name: str) -> UserInfo | None:
        return next((u for u in self.list_users() if u.name == name), None)

    def _set(self, name: str, **values: Any) -> bool:
        """Update a user by name and end all their sessions; False when there is no such user."""
        with self.engine.begin() as conn:
            user_id = conn.execute(select(User.id).where(User.name == name)).scalar()
            if user_id is None:
                return False
            conn.execute(update(User).where(User.id == user_id).values(updated_at=self.clock(), **values))
            conn.execute(delete(StaffSession).where(StaffSession.user_id == user_id))
            if "totp_secret" in values:
                conn.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        return True

    def set_time_zone(self, conn: Connection, user_id: int, zone: str | None) -> dict[str, Any]:
        """Set (or with None forget) the user's own time zone, in the caller's transaction (which
        audits it); returns what changed (``{}``: nothing). :class:`~meldpunt.accounts.zones.ZoneError`
        for a name that is not a zone."""
        new = None if zone is None else check_zone(zone)
        old = conn.execute(select(User.time_zone).where(User.id == user_id)).scalar()
        if old == new:
            return {}
        conn.execute(update(User).where(User.id == user_id).values(time_zone=new, updated_at=self.clock()))
        return {"time_zone": [old, new]}

    def disable(self, name: str) -> bool:
        """Disable a user: they cannot sign in and every session of theirs ends now."""
        return self._set(name, disabled=True)

    def reset_2fa(self, name: str) -> bool:
        """Forget the user's second factor and recovery codes, end their sessions: they enrol again
        at their next sign-in (with their password)."""
        return self._set(name, totp_secret=None, totp_enrolled=False, totp_last_step=None)

    # -- first factor ---------------------------------------------------------------------------

    def _locked(self, locked_until: datetime | None) -> bool:
        until = _aware(locked_until)
        return until is not None and until > self.clock()

    def _fail(self, user_id: int, add: int = 1) -> None:
        """Count a failure; lock the account when there were too many in a row. ``add=0``: the
        same statements, counting nothing (an attempt on a locked account takes the same path)."""
        with self.engine.begin() as conn:
            conn.execute(update(User).where(User.id == user_id).values(failed_count=User.failed_count + add))
            count = conn.execute(select(User.failed_count).where(User.id == user_id)).scalar_one()
            if count >= self.policy.max_failures:
                conn.execute(
                    update(User)
                    .where(User.id == user_id)
                    .values(
                        failed_count=0,
                        locked_until=self.clock() + timedelta(minutes=self.policy.lock_minutes),
                    )
                )

    def _succeed(self, user_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(User).where(User.id == user_id).values(failed_count=0, locked_until=None))

    def check_password(self, name: str, password: str) -> PasswordResult:
        """One argon2 verify on every path, so the time of the answer tells nothing: against the
        account's hash, or against a dummy hash when no account has the name or the account is
        locked (a locked account must not answer faster than a wrong password, or tell whether the
        password was right). A locked account's attempt also runs :meth:`_fail`'s statements,
        counting nothing."""
        dummy = self._dummy_hash  # made (once) whatever the name
        with self.engine.connect() as conn:
            row = conn.execute(
                select(User.id, User.password_hash, User.disabled, User.locked_until).where(
                    User.name == name.strip()
                )
            ).first()
        locked = row is not None and self._locked(row.locked_until)
        checked = dummy if row is None or locked else row.password_hash
        try:
            self.hasher.verify(checked, password)
            right = row is not None and not locked
        except (VerificationError, InvalidHashError):
            right = False
        if row is None:
            return PasswordResult(None, LoginError.BAD, unknown=True)
        if not right:
            self._fail(row.id, add=0 if locked else 1)
            return PasswordResult(None, LoginError.LOCKED if locked else LoginError.BAD)
        if row.disabled:
            return PasswordResult(None, LoginError.DISABLED)
        if self.hasher.check_needs_rehash(row.password_hash):
            with self.engine.begin() as conn:
                conn.execute(
                    update(User).where(User.id == row.id).values(password_hash=self.hasher.hash(password))
                )
        return PasswordResult(row.id, None)

    # -- second factor --------------------------------------------------------------------------

    def _step(self) -> int:
        return int(self.clock().timestamp()) // TOTP_STEP

    def begin_enrolment(self, user_id: int) -> str | None:
        """The pending TOTP secret of a user who has not enrolled yet (made on first call); None
        when the user has enrolled already."""
        with self.engine.begin() as conn:
            row = conn.execute(select(User.totp_secret, User.totp_enrolled).where(User.id == user_id)).first()
            if row is None or row.totp_enrolled:
                return None
            if row.totp_secret:
                return self._open(user_id, str(row.totp_secret))
            secret = pyotp.random_base32()
            conn.execute(
                update(User).where(User.id == user_id).values(totp_secret=self._seal(user_id, secret))
            )
            return secret

    def _seal(self, user_id: int, secret: str) -> str:
        return self.sealer.seal(user_id, secret) if self.sealer is not None else secret

    def _open(self, user_id: int, stored: str) -> str:
        if self.sealer is None:
            if SecretSealer.is_sealed(stored):
                raise ValueError("second-factor secrets are sealed: this service needs the sealing key")
            return stored
        return self.sealer.open(user_id, stored)

    def _accept_totp(self, user_id: int, secret: str, code: str) -> bool:
        """Accept a code of the current step or one either side, never of a step already used."""
        code = code.strip().replace(" ", "")
        if len(code) != TOTP_DIGITS or not code.isdigit():
            return False
        totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP)
        now = self._step()
        for step in range(now - TOTP_WINDOW, now + TOTP_WINDOW + 1):
            if not hmac.compare_digest(totp.at(step * TOTP_STEP), code):
                continue
            with self.engine.begin() as conn:  # atomic: two requests with one code, one wins
                done = conn.execute(
                    update(User)
                    .where(
                        User.id == user_id,
                        or_(User.totp_last_step.is_(None), User.totp_last_step < step),
                    )
                    .values(totp_last_step=step)
                )
            return done.rowcount == 1
        return False

    def finish_enrolment(self, user_id: int, code: str) -> list[str] | None:
        """Confirm the pending secret with a code from the app: the user is enrolled and gets their
        recovery codes (returned once, stored hashed). None when the code is wrong."""
        with self.engine.connect() as conn:
            row = conn.execute(select(User.totp_secret, User.totp_enrolled).where(User.id == user_id)).first()
        if row is None or row.totp_enrolled or not row.totp_secret:
            return None
        if not self._accept_totp(user_id, self._open(user_id, row.totp_secret), code):
            self._fail(user_id)
            return None
        codes = [_new_recovery_code() for _ in range(RECOVERY_CODES)]
        with self.engine.begin() as conn:
            conn.execute(update(User).where(User.id == user_id).values(totp_enrolled=True))
            conn.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
            conn.execute(
                insert(RecoveryCode),
                [
                    {"user_id": user_id, "code_hash": _sha256(_normal_recovery_code(c)), "used_at": None}
                    for c in codes
                ],
            )
        self._succeed(user_id)
        return codes

    def check_second_factor(self, user_id: int, code: str) -> LoginError | None:
        """A TOTP code (6 digits) or a recovery code; None when accepted."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(User.totp_secret, User.totp_enrolled, User.disabled, User.locked_until).where(
                    User.id == user_id
                )
            ).first()
        if row is None or row.disabled:
            return LoginError.DISABLED
        if self._locked(row.locked_until):
            return LoginError.LOCKED
        if not row.totp_enrolled or not row.totp_secret:
            return LoginError.BAD
        bare = code.strip().replace(" ", "")
        if bare.isdigit() and len(bare) == TOTP_DIGITS:
            ok = self._accept_totp(user_id, self._open(user_id, row.totp_secret), bare)
        else:
            ok = self._use_recovery_code(user_id, code)
        if not ok:
            self._fail(user_id)
            return LoginError.BAD
        self._succeed(user_id)
        if self.sealer is not None and not SecretSealer.is_sealed(row.totp_secret):
            sealed = self.sealer.seal(user_id, row.totp_secret)
            with self.engine.begin() as conn:  # a secret from before sealing: sealed now
                conn.execute(
                    update(User)
                    .where(User.id == user_id, User.totp_secret == row.totp_secret)
                    .values(totp_secret=sealed)
                )
        return None

    def _use_recovery_code(self, user_id: int, code: str) -> bool:
        normal = _normal_recovery_code(code)
        if not normal or len(normal) > 64:
            return False
        with self.engine.begin() as conn:
            done = conn.execute(
                update(RecoveryCode)
                .where(
                    RecoveryCode.user_id == user_id,
                    RecoveryCode.code_hash == _sha256(normal),
                    RecoveryCode.used_at.is_(None),
                )
                .values(used_at=self.clock())
            )
        return done.rowcount == 1

    def recovery_codes_left(self, user_id: int) -> int:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(RecoveryCode.id).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
            ).all()
        return len(rows)

    # -- sessions -------------------------------------------------------------------------------

    def start_session(self, user_id: int, stage: str) -> str:
        """A new session; returns its id (for the cookie), of which only the hash is stored."""
        assert stage in ("password", "full")
        token = secrets.token_urlsafe(32)
        now = self.clock()
        lifetime = (
            timedelta(hours=self.policy.session_hours)
            if stage == "full"
            else timedelta(minutes=self.policy.half_session_minutes)
        )
        with self.engine.begin() as conn:
            conn.execute(
                insert(StaffSession).values(
                    id_hash=_sha256(token),
                    user_id=user_id,
                    stage=stage,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + lifetime,
                )
            )
        return token

    def promote(self, token: str) -> str | None:
        """Turn a half session into a full one under a new id (the old id stops working)."""
        found = self.session(token)
        if found is None or found.stage != "password":
            return None
        self.end_session(token)
        return self.start_session(found.id, "full")

    def session(self, token: str | None) -> CurrentUser | None:
        """The user of a live session, and note that it was seen; None for anything else (expired,
        idle too long, user disabled, unknown)."""
        if not token or len(token) > 200:
            return None
        id_hash = _sha256(token)
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(
                select(
                    StaffSession.stage,
                    StaffSession.last_seen_at,
                    StaffSession.expires_at,
                    User.id,
                    User.name,
                    User.role,
                    User.disabled,
                    User.totp_enrolled,
                    User.time_zone,
                )
                .join(User, User.id == StaffSession.user_id)
                .where(StaffSession.id_hash == id_hash)
            ).first()
            if row is None:
                return None
            expires = _aware(row.expires_at)
            seen = _aware(row.last_seen_at)
            idle = timedelta(minutes=self.policy.idle_minutes)
            if row.disabled or expires is None or expires <= now or seen is None or now - seen > idle:
                conn.execute(delete(StaffSession).where(StaffSession.id_hash == id_hash))
                return None
            conn.execute(update(StaffSession).where(StaffSession.id_hash == id_hash).values(last_seen_at=now))
        return CurrentUser(
            id=row.id,
            name=row.name,
            role=row.role,
            stage=row.stage,
            enrolled=bool(row.totp_enrolled),
            session_hash=id_hash,
            time_zone=row.time_zone,
        )

    def end_session(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(StaffSession).where(StaffSession.id_hash == _sha256(token)))

    def end_all_sessions(self, user_id: int) -> int:
        """Log out everywhere: every session of the user ends; returns how many there were."""
        with self.engine.begin() as conn:
            done = conn.execute(delete(StaffSession).where(StaffSession.user_id == user_id))
        return int(done.rowcount)

    def purge_expired(self) -> int:
        with self.engine.begin() as conn:
            done = conn.execute(delete(StaffSession).where(StaffSession.expires_at <= self.clock()))
        return int(done.rowcount)


def totp_uri(secret: str, name: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app reads (typed in or from a QR code)."""
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP).provisioning_uri(
        name=name, issuer_name=issuer
    )
