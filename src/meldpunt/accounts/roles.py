"""Who may do what, as data: role -> the set of permission names it holds.

Administering is not viewing: ``admin`` manages users and settings and reads the audit log, but
cannot reveal an item. The police liaison reads facts and hashes of classified items, never the
media. Code asks :func:`allowed` (or the web dependency ``require``), never compares role names.
"""

from __future__ import annotations

from collections.abc import Mapping

#: What anyone may do without an account (for completeness; the public pages need no check).
ANONYMOUS: frozenset[str] = frozenset({"report.submit", "status.view", "health.view"})

_ANALYST = frozenset(
    {"queue.view", "item.view", "item.reveal", "item.classify", "prefs.own", "actions.view", "alerts.ack"},
)

PERMISSIONS: Mapping[str, frozenset[str]] = {
    "analyst": _ANALYST,
    "senior": _ANALYST
    | {
        "disagreement.resolve",
        "classification.correct",
        "banks.manage",
        "stats.view",
        # locate and act: abuse contacts and routing rules, overdue notices, urgent marks
        "contacts.manage",
        "notices.manage",
        "alerts.raise",
        # the CyberTipline-style XML export of an item found illegal (#11)
        "cybertip.export",
        # police referral packages (#11): make them, and download them like the police liaison
        "referrals.create",
        "referrals.download",
        # multiple systems estimation of the hidden number of victims (#13)
        "estimate.run",
        # link analysis (#13): groups, central entities, a group's graph; exports for police tools
        "links.view",
        "links.export",
    },
    "police": frozenset(
        {
            "item.facts",
            "urgent.view",
            "prefs.own",
            "alerts.ack",
            "referrals.download",
            "links.view",
            "links.export",
            "estimate.run",
        }
    ),
    "admin": frozenset({"users.manage", "settings.manage", "audit.read", "prefs.own"}),
}

#: The role names, in order of the table above.
ROLES: tuple[str, ...] = tuple(PERMISSIONS)

#: Every permission name that exists (a typo in ``require("...")`` is caught at start-up).
ALL_PERMISSIONS: frozenset[str] = frozenset().union(ANONYMOUS, *PERMISSIONS.values())


def allowed(role: str | None, permission: str) -> bool:
    """Whether ``role`` (None: anonymous) holds ``permission``."""
    if permission in ANONYMOUS:
        return True
    return role is not None and permission in PERMISSIONS.get(role, frozenset())
