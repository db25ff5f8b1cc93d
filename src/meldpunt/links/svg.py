"""A group's graph drawn as SVG on the server: positions from ``networkx.spring_layout`` (seeded,
so one group is drawn the same way twice), circles coloured by node type, hubs dashed, entity
nodes linking to their page. No script, no CDN; the picture scales to the screen (``viewBox``).
"""

from __future__ import annotations

from collections.abc import Callable
from xml.sax.saxutils import escape, quoteattr

import networkx as nx

W, H, MARGIN = 800.0, 560.0, 40.0
#: fill per node type / entity kind (the legend on the page uses the same)
COLOURS = {
    "report": "#1f5fa8",
    "item": "#6b7280",
    "host": "#0891b2",
    "provider": "#a16207",
    "handle": "#0f766e",
    "crypto": "#b45309",
    "payment": "#be123c",
    "iban": "#e11d48",
    "phone": "#15803d",
    "email": "#0369a1",
    "domain": "#7c3aed",
    "url": "#a78bfa",
}
_LABELLED = 80  # a graph this small gets labels beside its nodes; a larger one only tooltips


def colour(attrs: dict[str, object]) -> str:
    key = str(attrs.get("kind") or attrs.get("type") or "")
    return COLOURS.get(key, "#374151")


def _short(text: str, n: int = 26) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def render(
    graph: nx.Graph,
    *,
    title: str = "",
    hub_note: str = "",
    word: Callable[[str], str] | None = None,
    report: Callable[[str], str] | None = None,
) -> str:
    """The SVG document (a string) of ``graph`` (nodes carry ``type``, ``kind``, ``label``,
    ``hub`` as :func:`meldpunt.links.graph.group_graph` sets them). The words are the caller's
    (the page's language): ``hub_note`` is added to a hub's tooltip, ``word`` names a node's type
    or kind in its tooltip, ``report`` labels a report by its number ("melding 12"); without them
    the graph's own English labels, as the exports carry them."""
    nodes = sorted(graph.nodes)
    if not nodes:
        pos: dict[str, tuple[float, float]] = {}
    elif len(nodes) == 1:
        pos = {nodes[0]: (0.0, 0.0)}
    else:
        raw = nx.spring_layout(graph, seed=7, iterations=80)
        pos = {n: (float(raw[n][0]), float(raw[n][1])) for n in nodes}
    xs = [p[0] for p in pos.values()] or [0.0]
    ys = [p[1] for p in pos.values()] or [0.0]
    span_x = (max(xs) - min(xs)) or 1.0
    span_y = (max(ys) - min(ys)) or 1.0

    def at(n: str) -> tuple[float, float]:
        x, y = pos[n]
        return (
            MARGIN + (x - min(xs)) / span_x * (W - 2 * MARGIN),
            MARGIN + (y - min(ys)) / span_y * (H - 2 * MARGIN),
        )

    r = 9.0 if len(nodes) <= _LABELLED else 5.0
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W:g} {H:g}" role="img" '
        f'class="links-graph" aria-label={quoteattr(title)}>',
        f"<title>{escape(title)}</title>",
        '<g stroke="#9ca3af" stroke-width="1.2">',
    ]
    for a, b in sorted(graph.edges):
        (x1, y1), (x2, y2) = at(a), at(b)
        out.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}"/>')
    out.append("</g>")
    for n in nodes:
        attrs = graph.nodes[n]
        x, y = at(n)
        label = str(attrs.get("label", n))
        if report is not None and attrs.get("type") == "report":
            label = report(n.split(":", 1)[1])
        kind = str(attrs.get("kind") or attrs.get("type") or "")
        if word is not None:
            kind = word(kind)
        hub = bool(attrs.get("hub"))
        shape = (
            f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r:.1f}" height="{2 * r:.1f}"'
            if attrs.get("type") == "report"
            else f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}"'
        )
        dash = ' stroke-dasharray="3 2"' if hub else ""
        node = (
            f'{shape} fill="{colour(attrs)}" stroke="#111827" stroke-width="1"{dash}>'
            f"<title>{escape(kind)}: {escape(label)}{(' ' + escape(hub_note)) if hub and hub_note else ''}</title>"
            f"{'</rect>' if attrs.get('type') == 'report' else '</circle>'}"
        )
        if n.startswith("e:"):
            node = f'<a href="/links/entities/{escape(n[2:])}">{node}</a>'
        out.append(node)
        if len(nodes) <= _LABELLED and attrs.get("type") in ("entity", "report", "host"):
            anchor = "end" if x > W * 0.7 else "start"
            dx = -(r + 3) if anchor == "end" else r + 3
            out.append(
                f'<text x="{x + dx:.1f}" y="{y + 4:.1f}" font-size="12" font-family="sans-serif" '
                f'text-anchor="{anchor}" fill="#111827">{escape(_short(label))}</text>'
            )
    out.append("</svg>")
    return "\n".join(out)


__all__ = ["COLOURS", "colour", "render"]
