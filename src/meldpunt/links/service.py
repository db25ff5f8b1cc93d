"""What the workspace and the CLI call: pages of groups and of the most linked entities, one
group's view, one entity's sources, exports — each audited (``links.view``, ``links.export``) —
and the upkeep: pruning orphaned entities, backfilling reports taken in before #13."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Engine, select

from meldpunt.audit import AuditEvent, record
from meldpunt.links import exports as ex
from meldpunt.links.graph import (
    CentralEntity,
    GroupGraph,
    GroupPage,
    central,
    entity_degrees,
    group_graph,
    groups,
    most_linked,
)
from meldpunt.links.svg import render
from meldpunt.settings import Settings
from meldpunt.store.entities import Entity, EntityItem, EntityReport, prune_orphans
from meldpunt.store.reports import Item, Report

_NODE = re.compile(r"^([eri]):([0-9]{1,12})$")


class _Clock(Protocol):
    def now(self) -> datetime: ...


class LinksNeeds(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def engine(self) -> Engine: ...

    @property
    def clock(self) -> _Clock: ...


class NoSuchNode(LookupError):
    """The node named does not exist (or its name is malformed)."""


def parse_node(text: str) -> str:
    """A node name as pages use it (``e:12``, ``r:3``, ``i:7``); NoSuchNode otherwise."""
    if not _NODE.match(text or ""):
        raise NoSuchNode(text)
    return text


def _audit(services: LinksNeeds, by: str, action: str, subject: str, details: dict[str, Any]) -> None:
    with services.engine.begin() as conn:
        record(conn, AuditEvent(by, action, subject, details, at=services.clock.now()))


def list_groups(services: LinksNeeds, by: str, *, page: int = 1, per_page: int = 25) -> GroupPage:
    with services.engine.connect() as conn:
        found = groups(conn, offset=(page - 1) * per_page, limit=per_page)
    _audit(services, by, "links.view", "links:groups", {"page": page, "total": found.total})
    return found


def list_central(
    services: LinksNeeds, by: str, *, page: int = 1, per_page: int = 50, kind: str | None = None
) -> tuple[list[CentralEntity], int]:
    with services.engine.connect() as conn:
        rows, total = most_linked(conn, offset=(page - 1) * per_page, limit=per_page, kind=kind)
    _audit(services, by, "links.view", "links:entities", {"page": page, "kind": kind or ""})
    return rows, total


@dataclass(frozen=True)
class GroupView:
    node: str
    group: GroupGraph
    svg: str
    #: the group's entities by betweenness: (node, betweenness, degree in the group)
    central: list[tuple[str, float, int]]

    def label(self, node: str) -> str:
        return str(self.group.graph.nodes[node].get("label", node))

    def kind(self, node: str) -> str:
        return str(self.group.graph.nodes[node].get("kind", ""))


def _exists(services: LinksNeeds, node: str) -> None:
    kind, ident = node.split(":")
    table: Any = {"e": Entity, "r": Report, "i": Item}[kind]
    with services.engine.connect() as conn:
        if conn.execute(select(table.id).where(table.id == int(ident))).first() is None:
            raise NoSuchNode(node)


def _group(services: LinksNeeds, node: str) -> GroupGraph:
    _exists(services, parse_node(node))
    with services.engine.connect() as conn:
        return group_graph(conn, node)


def group_view(
    services: LinksNeeds,
    by: str,
    node: str,
    *,
    title: str = "",
    hub_note: str = "",
    word: Callable[[str], str] | None = None,
    report: Callable[[str], str] | None = None,
) -> GroupView:
    """The group of ``node``, drawn (in the caller's words: see :func:`meldpunt.links.svg.render`)
    with its most central entities; the view is audited."""
    g = _group(services, node)
    picture = render(g.graph, title=title, hub_note=hub_note, word=word, report=report)
    view = GroupView(node, g, picture, central(g.graph))
    _audit(
        services,
        by,
        "links.view",
        f"links:group:{node}",
        {"nodes": g.graph.number_of_nodes(), "truncated": g.truncated},
    )
    return view


@dataclass(frozen=True)
class Source:
    id: int
    label: str
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class EntityView:
    id: int
    kind: str
    value: str
    first_seen: datetime
    last_seen: datetime
    reports: list[Source]
    items: list[Source]
    degree: int


def entity_view(services: LinksNeeds, by: str, entity_id: int, *, limit: int = 200) -> EntityView:
    with services.engine.connect() as conn:
        row = conn.execute(
            select(Entity.id, Entity.kind, Entity.value, Entity.first_seen, Entity.last_seen).where(
                Entity.id == entity_id
            )
        ).first()
        if row is None:
            raise NoSuchNode(f"e:{entity_id}")
        reports = [
            Source(int(r), f"report {r}", f, last)
            for r, f, last in conn.execute(
                select(EntityReport.report_id, EntityReport.first_seen, EntityReport.last_seen)
                .where(EntityReport.entity_id == entity_id)
                .order_by(EntityReport.report_id)
                .limit(limit)
            )
        ]
        items = [
            Source(int(i), str(u), f, last)
            for i, u, f, last in conn.execute(
                select(EntityItem.item_id, Item.url, EntityItem.first_seen, EntityItem.last_seen)
                .join(Item, Item.id == EntityItem.item_id)
                .where(EntityItem.entity_id == entity_id)
                .order_by(EntityItem.item_id)
                .limit(limit)
            )
        ]
        degree = entity_degrees(conn, [entity_id]).get(entity_id, 0)
    _audit(services, by, "links.view", f"links:entity:{entity_id}", {"kind": row.kind})
    return EntityView(
        int(row.id), str(row.kind), str(row.value), row.first_seen, row.last_seen, reports, items, degree
    )


#: export formats: name -> (media type, file suffix)
FORMATS = {
    "graphml": ("application/graphml+xml", "graphml"),
    "nodes": ("text/csv; charset=utf-8", "nodes.csv"),
    "edges": ("text/csv; charset=utf-8", "edges.csv"),
}


def export(
    services: LinksNeeds, by: str, fmt: str, *, node: str | None = None
) -> tuple[str, str, Iterator[str] | bytes]:
    """``(file name, media type, body)`` of one group (``node`` names it) or of the whole graph
    (``node`` None: streamed); audited (``links.export``) before the first byte."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    media, suffix = FORMATS[fmt]
    body: Iterator[str] | bytes
    if node is not None:
        g = _group(services, node).graph
        body = (
            ex.group_graphml(g)
            if fmt == "graphml"
            else (ex.group_nodes_csv(g) if fmt == "nodes" else ex.group_edges_csv(g)).encode()
        )
        name = f"links-group-{node.replace(':', '')}.{suffix}"
        details: dict[str, Any] = {"format": fmt, "group": node, "nodes": g.number_of_nodes()}
    else:
        makers = {"graphml": ex.whole_graphml, "nodes": ex.whole_nodes_csv, "edges": ex.whole_edges_csv}
        body = makers[fmt](services.engine)
        name = f"links-all.{suffix}"
        details = {"format": fmt, "group": "all"}
    _audit(services, by, "links.export", f"links:{node or 'all'}", details)
    return name, media, body


def prune(services: LinksNeeds) -> int:
    """Delete entities whose every source is gone (retention); audited when any went."""
    with services.engine.begin() as conn:
        n = prune_orphans(conn)
        if n:
            record(conn, AuditEvent("system", "links.prune", "", {"count": n}, at=services.clock.now()))
    return n


def backfill(services: LinksNeeds) -> int:
    """Queue the ``entities`` job for every report with a description (reports taken in before
    link analysis existed; the job is unique per report, so running this twice is harmless). The
    pages of items fetched before cannot be read again: their text was never kept."""
    from meldpunt.pipeline.entities import enqueue_report

    n = 0
    with services.engine.begin() as conn:
        ids = conn.execute(select(Report.id).where(Report.description != "").order_by(Report.id)).scalars()
        for rid in list(ids):
            enqueue_report(conn, int(rid))
            n += 1
    return n


__all__ = [
    "FORMATS",
    "EntityView",
    "GroupView",
    "LinksNeeds",
    "NoSuchNode",
    "Source",
    "backfill",
    "entity_view",
    "export",
    "group_view",
    "list_central",
    "list_groups",
    "parse_node",
    "prune",
]
