"""Analyst wellness: per-user preferences over the administrator's defaults, and a daily
viewing-time counter with break reminders and a daily limit.

Preferences. Each user may set blur, greyscale, thumbnail size, a daily viewing limit and a break
interval; a value the user did not set is the administrator's default (stored in the database;
:data:`BUILTIN` until an administrator saves some). Video sound is not a preference: it is always
off (the workspace never sends audio at all).

The time model (simple and honest; it measures exposure, not wall-clock time). Each time an analyst
opens an item page (with its thumbnails) :data:`PAGE_SECONDS` (30 s) are added to the analyst's
total for the current UTC day; each reveal adds :data:`REVEAL_SECONDS` (60 s). Thumbnails
themselves add nothing more: they are part of the page that was counted. The total starts from
zero on each new UTC day. A break is due for the first :data:`BREAK_WINDOW_SECONDS` of viewing
after each multiple of the break interval (25, 50, 75 ... minutes): a calm reminder is shown then.
Past the daily limit the workspace advises to stop and, when the administrator's
``block_reveal_over_limit`` is on, refuses reveals for the rest of the day.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from meldpunt.store.wellness import ViewingTime, WellnessDefaults, WellnessPrefs

#: seconds added for opening an item page (its thumbnails included)
PAGE_SECONDS = 30
#: seconds added for a reveal
REVEAL_SECONDS = 60
#: how long (in counted viewing seconds) the break reminder stays up after each interval multiple
BREAK_WINDOW_SECONDS = 5 * 60
#: video sound: always off, not a preference
VIDEO_SOUND = False

THUMB_SIZES = (160, 240, 320, 480)
LIMIT_RANGE = (10, 24 * 60)
BREAK_RANGE = (5, 240)
DEFAULTS_ID = 1


class PrefsError(ValueError):
    """A preference value out of range; the message says which and why. ``message`` is the English
    text with ``{placeholders}`` (the id a page translates), ``values`` fill them in."""

    def __init__(self, message: str, **values: object) -> None:
        self.message, self.values = message, values
        super().__init__(message.format(**values) if values else message)


@dataclass(frozen=True, slots=True)
class Defaults:
    """The administrator's defaults (or the built-in ones)."""

    blur: bool = True
    greyscale: bool = True
    thumb_size: int = 320
    daily_limit_minutes: int = 120
    break_every_minutes: int = 25
    block_reveal_over_limit: bool = True


BUILTIN = Defaults()
#: the preferences a user may set (block_reveal_over_limit is the administrator's alone)
USER_FIELDS = ("blur", "greyscale", "thumb_size", "daily_limit_minutes", "break_every_minutes")


@dataclass(frozen=True, slots=True)
class Prefs:
    """A user's effective preferences; ``own`` names those the user set."""

    blur: bool
    greyscale: bool
    thumb_size: int
    daily_limit_minutes: int
    break_every_minutes: int
    block_reveal_over_limit: bool
    own: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Today:
    """Where a user stands today (UTC)."""

    day: date
    seconds: int
    prefs: Prefs

    @property
    def minutes(self) -> int:
        return self.seconds // 60

    @property
    def limit_minutes(self) -> int:
        return self.prefs.daily_limit_minutes

    @property
    def over_limit(self) -> bool:
        return self.seconds >= self.prefs.daily_limit_minutes * 60

    @property
    def break_due(self) -> bool:
        interval = self.prefs.break_every_minutes * 60
        return self.seconds >= interval and self.seconds % interval < BREAK_WINDOW_SECONDS

    @property
    def reveal_blocked(self) -> bool:
        return self.over_limit and self.prefs.block_reveal_over_limit


def check(values: dict[str, Any]) -> None:
    """Raise :class:`PrefsError` when a value is out of range."""
    size = values.get("thumb_size")
    if size is not None and size not in THUMB_SIZES:
        raise PrefsError("thumbnail size must be one of {sizes}", sizes=", ".join(map(str, THUMB_SIZES)))
    limit = values.get("daily_limit_minutes")
    if limit is not None and not LIMIT_RANGE[0] <= limit <= LIMIT_RANGE[1]:
        raise PrefsError(
            "the daily limit must be {low} to {high} minutes", low=LIMIT_RANGE[0], high=LIMIT_RANGE[1]
        )
    every = values.get("break_every_minutes")
    if every is not None and not BREAK_RANGE[0] <= every <= BREAK_RANGE[1]:
        raise PrefsError(
            "the break interval must be {low} to {high} minutes", low=BREAK_RANGE[0], high=BREAK_RANGE[1]
        )


def _now() -> datetime:
    return datetime.now(UTC)


class Wellness:
    """Preferences, defaults and viewing time, on ``engine``; ``clock`` gives the (aware) time."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = _now) -> None:
        self.engine = engine
        self.clock = clock

    # -- defaults ----------------------------------------------------------------------------------

    def defaults(self, conn: Connection | None = None) -> Defaults:
        if conn is None:
            with self.engine.connect() as c:
                return self.defaults(c)
        row = conn.execute(select(WellnessDefaults).where(WellnessDefaults.id == DEFAULTS_ID)).first()
        if row is None:
            return BUILTIN
        d = row._mapping
        return Defaults(
            blur=d["blur"],
            greyscale=d["greyscale"],
            thumb_size=d["thumb_size"],
            daily_limit_minutes=d["daily_limit_minutes"],
            break_every_minutes=d["break_every_minutes"],
            block_reveal_over_limit=d["block_reveal_over_limit"],
        )

    def set_defaults(self, conn: Connection, actor: str, new: Defaults) -> dict[str, Any]:
        """Save ``new`` in ``conn``'s transaction; returns what changed ({field: [old, new]}) for the
        caller's audit record."""
        check({f.name: getattr(new, f.name) for f in fields(new)})
        old = self.defaults(conn)
        changed = {
            f.name: [getattr(old, f.name), getattr(new, f.name)]
            for f in fields(new)
            if getattr(old, f.name) != getattr(new, f.name)
        }
        values = {f.name: getattr(new, f.name) for f in fields(new)}
        values.update(updated_by=actor, updated_at=self.clock())
        _upsert(conn, WellnessDefaults, {"id": DEFAULTS_ID}, values)
        return changed

    # -- a user's preferences ----------------------------------------------------------------------

    def prefs(self, user: str, conn: Connection | None = None) -> Prefs:
        if conn is None:
            with self.engine.connect() as c:
                return self.prefs(user, c)
        d = self.defaults(conn)
        row = conn.execute(select(WellnessPrefs).where(WellnessPrefs.user == user)).first()
        effective = Prefs(**{f.name: getattr(d, f.name) for f in fields(d)})
        if row is None:
            return effective
        own = {k: row._mapping[k] for k in USER_FIELDS if row._mapping[k] is not None}
        return replace(effective, **own, own=frozenset(own))

    def set_prefs(self, user: str, values: dict[str, Any]) -> Prefs:
        """Save ``user``'s own values (a None value: back to the default)."""
        with self.engine.begin() as conn:
            self.save_prefs(conn, user, values)
            return self.prefs(user, conn)

    def save_prefs(self, conn: Connection, user: str, values: dict[str, Any]) -> dict[str, Any]:
        """Save ``user``'s own values in ``conn``'s transaction; returns what changed in effect
        ({field: [old, new]}) for the caller's audit record."""
        unknown = set(values) - set(USER_FIELDS)
        if unknown:
            raise PrefsError("not a preference: {names}", names=", ".join(sorted(unknown)))
        check(values)
        row = {k: values.get(k) for k in USER_FIELDS}
        before = self.prefs(user, conn)
        # one statement: two saves at once cannot collide
        _upsert(conn, WellnessPrefs, {"user": user}, {"updated_at": self.clock(), **row})
        after = self.prefs(user, conn)
        return {
            k: [getattr(before, k), getattr(after, k)]
            for k in USER_FIELDS
            if getattr(before, k) != getattr(after, k)
        }

    # -- viewing time ------------------------------------------------------------------------------

    def today(self, user: str) -> Today:
        day = self.clock().astimezone(UTC).date()
        with self.engine.connect() as conn:
            seconds = conn.execute(
                select(ViewingTime.seconds).where(ViewingTime.user == user, ViewingTime.day == day)
            ).scalar()
            return Today(day, int(seconds or 0), self.prefs(user, conn))

    def add(self, user: str, seconds: int) -> Today:
        """Add ``seconds`` of viewing to ``user``'s total of today (UTC); the new standing."""
        day = self.clock().astimezone(UTC).date()
        with self.engine.begin() as conn:
            _upsert(
                conn,
                ViewingTime,
                {"user": user, "day": day},
                {"seconds": seconds},
                on_conflict={"seconds": ViewingTime.seconds + seconds},
            )
            total = conn.execute(
                select(ViewingTime.seconds).where(ViewingTime.user == user, ViewingTime.day == day)
            ).scalar_one()
            return Today(day, int(total), self.prefs(user, conn))


def _upsert(
    conn: Connection,
    table: Any,
    keys: dict[str, Any],
    values: dict[str, Any],
    on_conflict: dict[str, Any] | None = None,
) -> None:
    """Insert ``keys`` + ``values``, or on a conflict of ``keys`` set ``on_conflict`` (default:
    ``values``) — one statement on SQLite and PostgreSQL alike."""
    dialect = conn.dialect.name
    if dialect not in ("postgresql", "sqlite"):  # pragma: no cover - meldpunt supports these two
        raise NotImplementedError(dialect)
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    conn.execute(
        ins.values(**keys, **values).on_conflict_do_update(
            index_elements=list(keys), set_=values if on_conflict is None else on_conflict
        )
    )


__all__ = [
    "BREAK_WINDOW_SECONDS",
    "BUILTIN",
    "PAGE_SECONDS",
    "REVEAL_SECONDS",
    "THUMB_SIZES",
    "USER_FIELDS",
    "VIDEO_SOUND",
    "Defaults",
    "Prefs",
    "PrefsError",
    "Today",
    "Wellness",
    "check",
]
