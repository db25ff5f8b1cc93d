"""Link analysis (#13): the entities found in reports and pages, joined into a graph of reports,
items, hosts, providers and entities; connected groups, the most linked entities, one group drawn
as SVG, exports for police tools. Every view and export is audited; the workspace pages need
``links.view`` / ``links.export`` (seniors and the police liaison)."""

from __future__ import annotations

from meldpunt.entities import KINDS
from meldpunt.links.service import (
    EntityView,
    GroupView,
    LinksNeeds,
    NoSuchNode,
    backfill,
    entity_view,
    export,
    group_view,
    list_central,
    list_groups,
    parse_node,
    prune,
)

__all__ = [
    "KINDS",
    "EntityView",
    "GroupView",
    "LinksNeeds",
    "NoSuchNode",
    "backfill",
    "entity_view",
    "export",
    "group_view",
    "list_central",
    "list_groups",
    "parse_node",
    "prune",
]
