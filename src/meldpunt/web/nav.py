"""The workspace navigation as data: each link beside the permission its page requires, so every
role sees exactly the pages it may open (a link that answers 403 is a bug this table prevents)."""

from __future__ import annotations

from dataclasses import dataclass

from meldpunt.accounts import allowed
from meldpunt.web.i18n import N_


@dataclass(frozen=True)
class NavLink:
    href: str
    #: the English message id (shown through ``t``)
    label: str
    #: the permission the page's route requires
    permission: str
    #: an access key, shown as ``<kbd>`` beside the label ("" for none)
    key: str = ""


#: in the order a user reads them: the work first, then oversight, then administration
NAV: tuple[NavLink, ...] = (
    NavLink("/queue", N_("Queue"), "queue.view", "q"),
    NavLink("/disagreements", N_("Disagreements"), "disagreement.resolve", "d"),
    NavLink("/decisions", N_("Decisions"), "classification.correct"),
    NavLink("/banks", N_("Banks"), "banks.manage"),
    NavLink("/act/attention", N_("Takedowns to decide"), "contacts.manage"),
    NavLink("/act/contacts", N_("Abuse contacts"), "contacts.manage"),
    NavLink("/notices", N_("Notices"), "actions.view"),
    NavLink("/overdue", N_("Overdue notices"), "actions.view"),
    NavLink("/stats", N_("Items by state"), "stats.view"),
    NavLink("/statistics", N_("Figures and charts"), "stats.view"),
    NavLink("/police/urgent", N_("Urgent items"), "urgent.view"),
    NavLink("/referrals", N_("Police referrals"), "referrals.download"),
    NavLink("/estimate", N_("Hidden victims"), "estimate.run"),
    NavLink("/links", N_("Links"), "links.view"),
    NavLink("/act/removals", N_("Removals"), "actions.view"),
    NavLink("/alerts", N_("Alerts"), "alerts.ack"),
    NavLink("/admin/users", N_("Users"), "users.manage"),
    NavLink("/admin/audit", N_("Audit log"), "audit.read"),
    NavLink("/admin/wellness-defaults", N_("Wellness defaults"), "settings.manage"),
)


def nav_links(role: str | None) -> list[NavLink]:
    """The links ``role`` may follow, in :data:`NAV`'s order."""
    return [link for link in NAV if allowed(role, link.permission)]


def home(role: str | None) -> str:
    """Where the brand link leads a signed-in user: their first page of work, else their account."""
    links = nav_links(role)
    return links[0].href if links else "/me"
