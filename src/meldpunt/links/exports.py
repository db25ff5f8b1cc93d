"""Exports for police tools: GraphML (yEd, Gephi, i2 via import, networkx) and two CSV tables
(nodes, edges), for one group or the whole graph.

The whole graph is streamed row by row from the database (a generator holding one connection):
its size is the database's, never a Python graph's. Its nodes are every entity and every report
and item an entity was found in; its edges are entity–report, entity–item, report–item between
those, and item–host. CSV cells that start like a spreadsheet formula get a leading apostrophe
(``referral.table.escape_cell``: a URL or an entity is text an adversary chose).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import networkx as nx
from sqlalchemy import Connection, Engine, exists, select

from meldpunt.links.graph import _stream
from meldpunt.referral.table import escape_cell
from meldpunt.store.entities import Entity, EntityItem, EntityReport
from meldpunt.store.reports import Item, ReportItem

NODE_COLUMNS = ("id", "type", "kind", "label", "hub")
EDGE_COLUMNS = ("source", "target")
#: characters XML 1.0 cannot carry
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _row(values: tuple[object, ...]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow([escape_cell(str(v)) for v in values])
    return buf.getvalue()


def _xml(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def group_graphml(graph: nx.Graph) -> bytes:
    g = nx.Graph()
    for n, a in graph.nodes(data=True):
        g.add_node(
            n,
            type=str(a.get("type", "")),
            kind=str(a.get("kind", "")),
            label=_xml(str(a.get("label", ""))),
            hub=bool(a.get("hub")),
        )
    g.add_edges_from(graph.edges)
    return "\n".join(nx.generate_graphml(g)).encode()


def group_nodes_csv(graph: nx.Graph) -> str:
    rows = [_row(NODE_COLUMNS)]
    for n, a in sorted(graph.nodes(data=True)):
        rows.append(_row((n, a.get("type", ""), a.get("kind", ""), a.get("label", ""), bool(a.get("hub")))))
    return "".join(rows)


def group_edges_csv(graph: nx.Graph) -> str:
    return "".join([_row(EDGE_COLUMNS), *(_row(tuple(sorted(e))) for e in sorted(graph.edges))])


# --- the whole graph, streamed ----------------------------------------------------------------


def _whole_nodes(conn: Connection) -> Iterator[tuple[str, str, str, str]]:
    for eid, kind, value in _stream(conn, select(Entity.id, Entity.kind, Entity.value).order_by(Entity.id)):
        yield f"e:{eid}", "entity", str(kind), str(value)
    reports = select(EntityReport.report_id).distinct().order_by(EntityReport.report_id)
    for (rid,) in _stream(conn, reports):
        yield f"r:{rid}", "report", "", f"report {rid}"
    items = select(Item.id, Item.url).where(exists().where(EntityItem.item_id == Item.id)).order_by(Item.id)
    for iid, url in _stream(conn, items):
        yield f"i:{iid}", "item", "", str(url)
    hosts = (
        select(Item.host)
        .where(Item.host != "", exists().where(EntityItem.item_id == Item.id))
        .distinct()
        .order_by(Item.host)
    )
    for (host,) in _stream(conn, hosts):
        yield f"h:{host}", "host", "", str(host)


def _whole_edges(conn: Connection) -> Iterator[tuple[str, str]]:
    for eid, rid in _stream(conn, select(EntityReport.entity_id, EntityReport.report_id)):
        yield f"e:{eid}", f"r:{rid}"
    for eid, iid in _stream(conn, select(EntityItem.entity_id, EntityItem.item_id)):
        yield f"e:{eid}", f"i:{iid}"
    both = (
        select(ReportItem.report_id, ReportItem.item_id)
        .where(exists().where(EntityReport.report_id == ReportItem.report_id))
        .where(exists().where(EntityItem.item_id == ReportItem.item_id))
    )
    for rid, iid in _stream(conn, both):
        yield f"r:{rid}", f"i:{iid}"
    hosts = select(Item.id, Item.host).where(Item.host != "", exists().where(EntityItem.item_id == Item.id))
    for iid, host in _stream(conn, hosts):
        yield f"i:{iid}", f"h:{host}"


def whole_nodes_csv(engine: Engine) -> Iterator[str]:
    yield _row(NODE_COLUMNS)
    with engine.connect() as conn:
        for n, t, k, label in _whole_nodes(conn):
            yield _row((n, t, k, label, False))


def whole_edges_csv(engine: Engine) -> Iterator[str]:
    yield _row(EDGE_COLUMNS)
    with engine.connect() as conn:
        for a, b in _whole_edges(conn):
            yield _row((a, b))


def _attr(text: str) -> str:
    return _xml(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def whole_graphml(engine: Engine) -> Iterator[str]:
    """GraphML written as it is read (the same keys as :func:`group_graphml`)."""
    yield (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">\n'
        '<key id="d0" for="node" attr.name="type" attr.type="string"/>\n'
        '<key id="d1" for="node" attr.name="kind" attr.type="string"/>\n'
        '<key id="d2" for="node" attr.name="label" attr.type="string"/>\n'
        '<graph edgedefault="undirected">\n'
    )
    with engine.connect() as conn:
        for n, t, k, label in _whole_nodes(conn):
            yield (
                f'<node id="{_attr(n)}"><data key="d0">{t}</data><data key="d1">{_attr(k)}</data>'
                f'<data key="d2">{_attr(label)}</data></node>\n'
            )
        for a, b in _whole_edges(conn):
            yield f'<edge source="{_attr(a)}" target="{_attr(b)}"/>\n'
    yield "</graph>\n</graphml>\n"


__all__ = [
    "group_edges_csv",
    "group_graphml",
    "group_nodes_csv",
    "whole_edges_csv",
    "whole_graphml",
    "whole_nodes_csv",
]
