"""Notices batched per abuse contact, reminders, escalation and providers' answers (#10 part
"notices")."""

from __future__ import annotations

from meldpunt.act.context import ActNeeds


def tick_notices(services: ActNeeds) -> int:
    """Gather ``to_notice`` takedowns into their contact's notice, send notices whose batching
    window closed, remind and escalate what is overdue. The number moved."""
    return 0
