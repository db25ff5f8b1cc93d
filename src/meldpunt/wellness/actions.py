"""The wellness actions a staff member or the administrator takes, each audited in its own
transaction: saving one's own preferences (with one's time zone, an account setting shown on the
same form) and changing the administrator's defaults."""

from __future__ import annotations

from typing import Any

from meldpunt.accounts import Accounts
from meldpunt.audit import AuditEvent, record
from meldpunt.wellness import Defaults, Wellness


def save_own(
    w: Wellness, accounts: Accounts, user: str, user_id: int, values: dict[str, Any], zone: str | None
) -> dict[str, Any]:
    """Save ``user``'s preferences and time zone in one transaction, audited as ``prefs.change``
    when anything changed (e.g. blur switched off); returns what changed. ``PrefsError`` or
    ``ZoneError`` for a value that does not fit: nothing is saved."""
    with w.engine.begin() as conn:
        changed = w.save_prefs(conn, user, values)
        changed |= accounts.set_time_zone(conn, user_id, zone)
        if changed:
            record(conn, AuditEvent(user, "prefs.change", f"user:{user}", details=changed))
    return changed


def change_defaults(w: Wellness, actor: str, new: Defaults) -> dict[str, Any]:
    """Save the administrator's defaults, audited as ``settings.change`` when anything changed;
    returns what changed."""
    with w.engine.begin() as conn:
        changed = w.set_defaults(conn, actor, new)
        if changed:
            record(conn, AuditEvent(actor, "settings.change", "wellness:defaults", details=changed))
    return changed
