"""Takedowns for items found illegal, and the route each takes, explained (#10 part "routing")."""

from __future__ import annotations

from meldpunt.act.context import ActNeeds


def tick_takedowns(services: ActNeeds) -> int:
    """Items whose final decision is illegal (an analyst's, or an ``auto`` hash list's label) and
    that have no takedown yet: create one (``to_locate``). The number created."""
    return 0


def tick_route(services: ActNeeds) -> int:
    """Takedowns in ``to_route``: decide their route from the location, contacts and rules."""
    return 0
