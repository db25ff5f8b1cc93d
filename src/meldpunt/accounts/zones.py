"""Time zones of staff members: IANA names (``Europe/Brussels``) from the system's tz database,
through :mod:`zoneinfo`. A staff member's own zone is a preference; without one, the hotline's
setting (``MELDPUNT_WEB_TIME_ZONE``) applies. Times are stored in UTC and only shown in a zone."""

from __future__ import annotations

import functools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


class ZoneError(ValueError):
    """Not a time zone this system knows; ``message`` is the English text with ``{zone}``."""

    def __init__(self, zone: str) -> None:
        self.message, self.values = "{zone} is not a known time zone", {"zone": zone}
        super().__init__(self.message.format(zone=zone))


@functools.cache
def zone_names() -> tuple[str, ...]:
    """Every zone to choose from: the tz database's canonical ``Area/City`` names and UTC (no
    ``posix/…``, ``Etc/GMT+1`` or other legacy aliases), sorted."""
    names = {
        n
        for n in available_timezones()
        if "/" in n and not n.startswith(("Etc/", "posix/", "right/", "SystemV/", "US/", "Brazil/"))
    }
    return tuple(sorted(names | {"UTC"}))


def check_zone(name: str) -> str:
    """``name`` when it is a zone this system knows (any IANA name, aliases included); else
    :class:`ZoneError`."""
    if not name or len(name) > 64 or name != name.strip() or ".." in name or name.startswith("/"):
        raise ZoneError(name[:64])
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ZoneError(name) from None
    return name
