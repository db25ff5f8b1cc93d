"""The link graph: reports, items, hosts, providers and entities as nodes, read from the database
in bounded pieces.

Nodes are named ``r:<id>`` (report), ``i:<id>`` (item), ``e:<id>`` (entity), ``h:<host>`` and
``p:<provider>``. Edges: report–item (the report named the item), report–entity (in its
description), item–entity (on its page), item–host, item–provider (its latest location).

Hubs: an entity found in more than ``hub`` reports and items, or a host of more than ``hub`` items,
is common — a platform's domain, a big image host — and joins unrelated cases. Hubs are shown (as
leaves, marked) but never followed: two reports that share only a hub are not one group.
Providers (hosting companies) are never followed either.

Connected groups (:func:`groups`) are found over every non-hub edge, streamed from the database
into numpy arrays (16 bytes an edge, 8 a node slot — a slot per row id —, no Python object per node
or edge), by hooking and pointer jumping; the groups are then counted and sorted with arrays and one
page of them is kept. A group's graph
(:func:`group_graph`) is a breadth-first walk from one node, level by level with ``IN`` queries, at
most ``max_nodes`` nodes, put in a ``networkx`` graph for layout, betweenness and GraphML.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
from sqlalchemy import Connection, func, literal, select, union_all

from meldpunt.store.acting import Location
from meldpunt.store.entities import Entity, EntityItem, EntityReport
from meldpunt.store.reports import Item, Report, ReportItem

#: an entity in more reports and items than this (a host with more items) is a hub
HUB_DEGREE = 50
#: nodes of one group's graph at most
MAX_GROUP_NODES = 300
_IN = 500  # ids per IN (...) query
_STREAM = 10_000


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), _IN):
        yield list(ids[start : start + _IN])


def _stream(conn: Connection, stmt: object) -> Iterator[tuple[Any, ...]]:
    """Rows of ``stmt`` fetched in batches (a server-side cursor on PostgreSQL)."""
    result = conn.execution_options(stream_results=True, yield_per=_STREAM).execute(stmt)  # type: ignore[call-overload]
    for row in result:
        yield tuple(row)


def _pairs(conn: Connection, sql: str) -> Iterator[tuple[Any, ...]]:
    """Rows of a plain ``SELECT`` straight from the driver's cursor, in batches: no row objects,
    so streaming a few hundred thousand pairs allocates little (a named, server-side cursor on
    PostgreSQL)."""
    raw: Any = conn.connection.dbapi_connection
    named = conn.dialect.name == "postgresql"
    cur = raw.cursor(name="links_pairs") if named else raw.cursor()
    try:
        cur.execute(sql)
        while rows := cur.fetchmany(_STREAM):
            yield from rows
    finally:
        cur.close()


def entity_degrees(conn: Connection, ids: Iterable[int]) -> dict[int, int]:
    """Reports plus items each entity is linked to."""
    out: dict[int, int] = {}
    for chunk in _chunks(list(ids)):
        for table in (EntityReport, EntityItem):
            q = (
                select(table.entity_id, func.count())
                .where(table.entity_id.in_(chunk))
                .group_by(table.entity_id)
            )
            for eid, n in conn.execute(q):
                out[int(eid)] = out.get(int(eid), 0) + int(n)
    return out


def _degree_query() -> object:
    both = union_all(
        select(EntityReport.entity_id.label("eid")), select(EntityItem.entity_id.label("eid"))
    ).subquery()
    return select(both.c.eid, func.count().label("n")).group_by(both.c.eid)


def hub_entities(conn: Connection, hub: int = HUB_DEGREE) -> set[int]:
    q = _degree_query().having(func.count() > hub)  # type: ignore[attr-defined]
    return {int(eid) for eid, _n in conn.execute(q)}


def hub_hosts(conn: Connection, hub: int = HUB_DEGREE) -> set[str]:
    q = select(Item.host).where(Item.host != "").group_by(Item.host).having(func.count() > hub)
    return {str(h) for h in conn.execute(q).scalars()}


# --- groups -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupSummary:
    """One connected group: its size by kind and the entity that names it (its lowest id)."""

    anchor: int
    reports: int
    items: int
    entities: int
    #: a few of its entities (kind, value), the most linked first
    sample: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class GroupPage:
    groups: list[GroupSummary]
    total: int
    #: entities and hosts left out as hubs
    hubs: int
    #: peak slots of the union-find (nodes considered)
    nodes: int = 0


def _edges(conn: Connection, sql: str, hubs: set[int] | None = None) -> tuple[Any, Any]:
    """Two int64 arrays (column 1, column 2) of a two-column integer query, read in batches;
    rows whose first column is in ``hubs`` are left out."""
    parts_a, parts_b = [], []
    batch: list[tuple[int, int]] = []
    for row in _pairs(conn, sql):
        if hubs and row[0] in hubs:
            continue
        batch.append(row)  # type: ignore[arg-type]
        if len(batch) >= _STREAM:
            arr = np.asarray(batch, dtype=np.int64)
            parts_a.append(arr[:, 0])
            parts_b.append(arr[:, 1])
            batch = []
    if batch:
        arr = np.asarray(batch, dtype=np.int64)
        parts_a.append(arr[:, 0])
        parts_b.append(arr[:, 1])
    empty = np.zeros(0, dtype=np.int64)
    return (np.concatenate(parts_a) if parts_a else empty), (np.concatenate(parts_b) if parts_b else empty)


def _host_edges(conn: Connection, big_hosts: set[str], first_slot: int) -> tuple[Any, Any]:
    """(host slot, item id) arrays: items read sorted by host, a new slot at each new host, so no
    table of host names is held; hubs left out."""
    slots: list[int] = []
    items: list[int] = []
    slot, last = first_slot - 1, None
    for iid, host in _pairs(conn, "SELECT id, host FROM items WHERE host <> '' ORDER BY host"):
        if host in big_hosts:
            continue
        if host != last:
            slot, last = slot + 1, host
        slots.append(slot)
        items.append(int(iid))
    return np.asarray(slots, dtype=np.int64), np.asarray(items, dtype=np.int64)


def _components(n: int, a: Any, b: Any) -> Any:
    """The component of each of ``n`` slots (its lowest slot), given edges ``a[k]``–``b[k]``:
    hooking and pointer jumping on arrays (Shiloach–Vishkin style), a few passes, no Python
    object per node or edge."""
    parent = np.arange(n, dtype=np.int64)
    while True:
        pa, pb = parent[a], parent[b]
        if np.array_equal(pa, pb):
            return parent
        low = np.minimum(pa, pb)
        np.minimum.at(parent, pa, low)
        np.minimum.at(parent, pb, low)
        while True:  # pointer jumping: every slot straight to its root
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped


def groups(
    conn: Connection, *, offset: int = 0, limit: int = 50, hub: int = HUB_DEGREE, min_reports: int = 1
) -> GroupPage:
    """One page of the connected groups that hold at least one entity and ``min_reports`` reports,
    the largest first (reports, then entities, then items), each named by its lowest entity id."""
    max_r = int(conn.execute(select(func.coalesce(func.max(Report.id), 0))).scalar_one())
    max_i = int(conn.execute(select(func.coalesce(func.max(Item.id), 0))).scalar_one())
    max_e = int(conn.execute(select(func.coalesce(func.max(Entity.id), 0))).scalar_one())
    hubs = hub_entities(conn, hub)
    big_hosts = hub_hosts(conn, hub)
    r0, i0, e0 = 0, max_r + 1, max_r + max_i + 2
    h0 = e0 + max_e + 1
    er_e, er_r = _edges(conn, "SELECT entity_id, report_id FROM entity_reports", hubs)
    ei_e, ei_i = _edges(conn, "SELECT entity_id, item_id FROM entity_items", hubs)
    ri_r, ri_i = _edges(conn, "SELECT report_id, item_id FROM report_items")
    hi_h, hi_i = _host_edges(conn, big_hosts, h0)
    n = h0 + (int(hi_h.max()) - h0 + 1 if len(hi_h) else 0)
    a = np.concatenate([er_e + e0, ei_e + e0, ri_r + r0, hi_h])
    b = np.concatenate([er_r + r0, ei_i + i0, ri_i + i0, hi_i + i0])
    del er_e, er_r, ei_e, ei_i, ri_r, ri_i, hi_h, hi_i
    root = _components(n, a, b)
    present = np.zeros(n, dtype=bool)
    present[a] = True
    present[b] = True
    del a, b
    slots = np.arange(n, dtype=np.int64)
    is_r = present & (slots < i0)
    is_i = present & (slots >= i0) & (slots < e0)
    is_e = present & (slots >= e0) & (slots < h0)
    n_r = np.bincount(root[is_r], minlength=n)
    n_i = np.bincount(root[is_i], minlength=n)
    n_e = np.bincount(root[is_e], minlength=n)
    anchor = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(anchor, root[is_e], slots[is_e] - e0)
    wanted = np.nonzero((n_e > 0) & (n_r >= min_reports))[0]
    order = np.lexsort((anchor[wanted], -n_i[wanted], -n_e[wanted], -n_r[wanted]))
    page_roots = wanted[order[offset : offset + limit]]
    page = [GroupSummary(int(anchor[x]), int(n_r[x]), int(n_i[x]), int(n_e[x])) for x in page_roots]
    members = _members(root, is_e, e0, page_roots, anchor)
    return GroupPage(_with_samples(conn, page, members), len(wanted), len(hubs) + len(big_hosts), n)


def _members(
    root: Any, is_e: Any, e0: int, page_roots: Any, anchor: Any, cap: int = 64
) -> dict[int, list[int]]:
    """Up to ``cap`` entity ids of each group on the page, by the group's anchor."""
    out: dict[int, list[int]] = {int(anchor[x]): [] for x in page_roots}
    if not len(page_roots):
        return out
    slots = np.nonzero(is_e & np.isin(root, page_roots))[0]
    for slot in slots.tolist():
        m = out[int(anchor[root[slot]])]
        if len(m) < cap:
            m.append(slot - e0)
    return out


def _with_samples(
    conn: Connection, page: list[GroupSummary], members: dict[int, list[int]], per: int = 4
) -> list[GroupSummary]:
    """The page's groups, each with a few of its entities, the most linked first."""
    ids = [e for m in members.values() for e in m]
    deg = entity_degrees(conn, ids)
    values = _entity_values(conn, ids)
    out = []
    for g in page:
        best = sorted(members[g.anchor], key=lambda e: (-deg.get(e, 0), e))[:per]
        out.append(
            GroupSummary(
                g.anchor, g.reports, g.items, g.entities, tuple(values[e] for e in best if e in values)
            )
        )
    return out


def _entity_values(conn: Connection, ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    out: dict[int, tuple[str, str]] = {}
    for chunk in _chunks(list(ids)):
        for eid, kind, value in conn.execute(
            select(Entity.id, Entity.kind, Entity.value).where(Entity.id.in_(chunk))
        ):
            out[int(eid)] = (str(kind), str(value))
    return out


# --- one group's graph ------------------------------------------------------------------------


@dataclass
class GroupGraph:
    graph: nx.Graph
    #: the walk stopped at ``max_nodes``: the group is larger than shown
    truncated: bool = False
    hubs: set[str] = field(default_factory=set)


def _add(g: nx.Graph, node: str, **attrs: object) -> None:
    if node not in g:
        g.add_node(node, **attrs)


def group_graph(
    conn: Connection, start: str, *, hub: int = HUB_DEGREE, max_nodes: int = MAX_GROUP_NODES
) -> GroupGraph:
    """The group ``start`` (a node name, e.g. ``e:12``) belongs to, walked breadth-first with the
    rules of :func:`groups` (hubs shown, not followed), at most ``max_nodes`` nodes."""
    g: nx.Graph = nx.Graph()
    hubs: set[str] = set()
    frontier = [start]
    seen = {start}
    truncated = False
    big_hosts = hub_hosts(conn, hub)
    while frontier and not truncated:
        ents = [int(n[2:]) for n in frontier if n.startswith("e:")]
        reps = [int(n[2:]) for n in frontier if n.startswith("r:")]
        items = [int(n[2:]) for n in frontier if n.startswith("i:")]
        host_names = [n[2:] for n in frontier if n.startswith("h:")]
        edges: list[tuple[str, str]] = []
        for chunk in _chunks(ents):
            edges += [
                (f"e:{e}", f"r:{r}")
                for e, r in conn.execute(
                    select(EntityReport.entity_id, EntityReport.report_id).where(
                        EntityReport.entity_id.in_(chunk)
                    )
                )
            ]
            edges += [
                (f"e:{e}", f"i:{i}")
                for e, i in conn.execute(
                    select(EntityItem.entity_id, EntityItem.item_id).where(EntityItem.entity_id.in_(chunk))
                )
            ]
        for chunk in _chunks(reps):
            edges += [
                (f"r:{r}", f"i:{i}")
                for r, i in conn.execute(
                    select(ReportItem.report_id, ReportItem.item_id).where(ReportItem.report_id.in_(chunk))
                )
            ]
            edges += [
                (f"r:{r}", f"e:{e}")
                for r, e in conn.execute(
                    select(EntityReport.report_id, EntityReport.entity_id).where(
                        EntityReport.report_id.in_(chunk)
                    )
                )
            ]
        for chunk in _chunks(items):
            edges += [
                (f"i:{i}", f"r:{r}")
                for i, r in conn.execute(
                    select(ReportItem.item_id, ReportItem.report_id).where(ReportItem.item_id.in_(chunk))
                )
            ]
            edges += [
                (f"i:{i}", f"e:{e}")
                for i, e in conn.execute(
                    select(EntityItem.item_id, EntityItem.entity_id).where(EntityItem.item_id.in_(chunk))
                )
            ]
            edges += [
                (f"i:{i}", f"h:{h}")
                for i, h in conn.execute(
                    select(Item.id, Item.host).where(Item.id.in_(chunk), Item.host != "")
                )
            ]
            latest = (
                select(Location.item_id, func.max(Location.id).label("lid"))
                .where(Location.item_id.in_(chunk))
                .group_by(Location.item_id)
                .subquery()
            )
            edges += [
                (f"i:{i}", f"p:{p}")
                for i, p in conn.execute(
                    select(latest.c.item_id, Location.provider)
                    .join(Location, Location.id == latest.c.lid)
                    .where(Location.provider != "")
                )
            ]
        for name in host_names:
            if name in big_hosts:
                continue
            q = select(Item.id).where(Item.host == name).order_by(Item.id).limit(max_nodes + 1)
            edges += [(f"h:{name}", f"i:{i}") for i in conn.execute(q).scalars()]
        new = sorted({b for _a, b in edges if b not in seen})
        room = max_nodes - len(seen)
        if len(new) > room:
            truncated = True
            new = new[:room]
        seen.update(new)
        for a, b in edges:
            if a in seen and b in seen:
                g.add_edge(a, b)
        for n in frontier:
            _add(g, n)
        # which of the new nodes are hubs (shown, not followed)
        new_ents = [int(n[2:]) for n in new if n.startswith("e:")]
        deg = entity_degrees(conn, new_ents)
        nxt = []
        for n in new:
            if (n.startswith("e:") and deg.get(int(n[2:]), 0) > hub) or (
                n.startswith("h:") and n[2:] in big_hosts
            ):
                hubs.add(n)
            elif not n.startswith("p:"):
                nxt.append(n)
        frontier = nxt
    _label(conn, g, hubs)
    return GroupGraph(g, truncated, hubs)


def _label(conn: Connection, g: nx.Graph, hubs: set[str]) -> None:
    """Node attributes ``type`` and ``label`` (what GraphML and CSV carry) and ``hub``."""
    ents = [int(n[2:]) for n in g if n.startswith("e:")]
    values = _entity_values(conn, ents)
    items: dict[int, str] = {}
    for chunk in _chunks([int(n[2:]) for n in g if n.startswith("i:")]):
        items.update(
            {int(i): str(u) for i, u in conn.execute(select(Item.id, Item.url).where(Item.id.in_(chunk)))}
        )
    kinds = {"r": "report", "i": "item", "e": "entity", "h": "host", "p": "provider"}
    for n, attrs in g.nodes(data=True):
        prefix, rest = n.split(":", 1)
        attrs["type"] = kinds[prefix]
        attrs["hub"] = n in hubs
        if prefix == "e":
            kind, value = values.get(int(rest), ("", ""))
            attrs["kind"], attrs["label"] = kind, value
        elif prefix == "i":
            attrs["kind"], attrs["label"] = "", items.get(int(rest), "")
        elif prefix == "r":
            attrs["kind"], attrs["label"] = "", f"report {rest}"
        else:
            attrs["kind"], attrs["label"] = "", rest


def central(graph: nx.Graph, top: int = 10) -> list[tuple[str, float, int]]:
    """The group's entities by betweenness (exact on the bounded group graph), then degree."""
    if graph.number_of_nodes() == 0:
        return []
    bc = nx.betweenness_centrality(graph, normalized=True)
    ents = [n for n in graph if n.startswith("e:")]
    ranked = sorted(ents, key=lambda n: (-bc.get(n, 0.0), -graph.degree(n), n))
    return [(n, float(bc.get(n, 0.0)), int(graph.degree(n))) for n in ranked[:top]]


# --- the most linked entities, and one entity -------------------------------------------------


@dataclass(frozen=True)
class CentralEntity:
    id: int
    kind: str
    value: str
    reports: int
    items: int

    @property
    def degree(self) -> int:
        return self.reports + self.items


def most_linked(
    conn: Connection, *, offset: int = 0, limit: int = 50, kind: str | None = None
) -> tuple[list[CentralEntity], int]:
    """Entities by the number of reports and items they were found in (degree), paged; the total."""
    both = union_all(
        select(EntityReport.entity_id.label("eid"), literal(1).label("r"), literal(0).label("i")),
        select(EntityItem.entity_id.label("eid"), literal(0).label("r"), literal(1).label("i")),
    ).subquery()
    agg = (
        select(both.c.eid, func.sum(both.c.r).label("r"), func.sum(both.c.i).label("i"))
        .group_by(both.c.eid)
        .subquery()
    )
    q = select(Entity.id, Entity.kind, Entity.value, agg.c.r, agg.c.i).join(agg, agg.c.eid == Entity.id)
    count = select(func.count()).select_from(Entity)
    if kind:
        q = q.where(Entity.kind == kind)
        count = count.where(Entity.kind == kind)
    q = q.order_by((agg.c.r + agg.c.i).desc(), Entity.id).offset(offset).limit(limit)
    rows = [CentralEntity(int(a), str(b), str(c), int(r), int(i)) for a, b, c, r, i in conn.execute(q)]
    return rows, int(conn.execute(count).scalar_one())


__all__ = [
    "HUB_DEGREE",
    "MAX_GROUP_NODES",
    "CentralEntity",
    "GroupGraph",
    "GroupPage",
    "GroupSummary",
    "central",
    "entity_degrees",
    "group_graph",
    "groups",
    "hub_entities",
    "hub_hosts",
    "most_linked",
]
