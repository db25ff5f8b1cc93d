"""Urgent cases: alerts to the on-call people, acknowledgement, escalation (#10 part "alerts")."""

from __future__ import annotations

from meldpunt.act.context import ActNeeds


def tick_alerts(services: ActNeeds) -> int:
    """Raise alerts for new urgent items; escalate open alerts past ``alert.ack_minutes``."""
    return 0
