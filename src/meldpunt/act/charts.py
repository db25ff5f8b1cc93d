"""The statistics' charts (#13), drawn on the server with matplotlib's Agg backend: SVG for the page
and the annual report's HTML (text kept as text, so it scales and reads without JavaScript), PNG
for its PDF. Each chart carries its text alternative: an SVG ``<title>`` and ``<desc>`` that say
what the chart shows in words, with the figures a reader would take from it.

Words come from the caller (``t``: the page's translation, or English for the report), so this
module holds no language of its own; country names and the way numbers are written (1,234 in
English, 1.234 in Dutch, 1 234 in French: :class:`Numbers`) come from Babel's CLDR data. The world map is
Natural Earth's 1:110m countries (public domain), vendored as ``data/world-110m.json`` (made by
``scripts/world_map.py`` from world-atlas, ISC) — no tile server, no CDN.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from meldpunt.act.figures import BUCKETS, CHANNELS, Figures, GroupSpread, week_label

#: ``t(message id, **values)``: the caller's translation
Words = Callable[..., str]

WORLD = Path(__file__).parent / "data" / "world-110m.json"
_RENDER = threading.Lock()
#: the Okabe-Ito palette: told apart by people with any common colour-vision deficiency
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
#: how many bars a ranked chart shows (the CSV has every row)
TOP = 12
#: the charts' size in inches at 100 dpi: wide enough for 53 weeks, scaled down on a phone
WIDE = (8.0, 3.6)


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    #: the text alternative: what the chart shows, in words and numbers
    desc: str
    draw: Callable[[Any], None]
    size: tuple[float, float] = WIDE
    #: the figure's margins (left, bottom, right, top as fractions): set, not computed by a layout
    #: engine, which draws a chart several times over to find them
    margins: tuple[float, float, float, float] = (0.07, 0.12, 0.99, 0.97)
    #: the SVG's body drawn by hand (the world map: one path per country), else matplotlib's
    body: Callable[[], str] | None = None

    def _figure(self) -> Any:
        from matplotlib.figure import Figure

        fig = Figure(figsize=self.size, dpi=100)
        left, bottom, right, top = self.margins
        fig.subplots_adjust(left=left, bottom=bottom, right=right, top=top)
        self.draw(fig)
        return fig

    def svg(self) -> str:
        """The chart as inline SVG: scales to its container (no fixed width), ``role="img"`` with
        its title and description."""
        import matplotlib

        if self.body is not None:
            return self._wrap(self.body())
        buf = io.StringIO()
        # rc_context changes matplotlib's global settings: one chart at a time (web threads)
        with _RENDER, matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"meldpunt-{self.key}"}):
            self._figure().savefig(buf, format="svg", metadata={"Date": None})
        return self._wrap(_presentation(buf.getvalue()))

    def _wrap(self, text: str) -> str:
        text = text[text.index("<svg") :]
        head_end = text.index(">") + 1
        head = re.sub(r'\s(width|height)="[^"]*"', "", text[:head_end])
        ident = f"chart-{self.key}"
        head = head.replace(
            "<svg",
            f'<svg class="chart" role="img" aria-labelledby="{ident}-title {ident}-desc"'
            ' preserveAspectRatio="xMidYMid meet"',
            1,
        )
        alt = (
            f'<title id="{ident}-title">{html.escape(self.title)}</title>'
            f'<desc id="{ident}-desc">{html.escape(self.desc)}</desc>'
        )
        return head + alt + text[head_end:]

    def png(self, dpi: int = 150) -> bytes:
        buf = io.BytesIO()
        self._figure().savefig(buf, format="png", dpi=dpi)
        return buf.getvalue()


_STYLE = re.compile(r'\sstyle="([^"]*)"')
_FAMILY = "DejaVu Sans, Arial, Helvetica, sans-serif"


def _attributes(match: re.Match[str]) -> str:
    out = []
    for decl in match.group(1).split(";"):
        name, _, value = decl.partition(":")
        name, value = name.strip(), value.strip()
        if not name:
            continue
        if name == "font-family":
            value = _FAMILY
        out.append(f' {name}="{html.escape(value)}"')
    return "".join(out)


def _presentation(svg: str) -> str:
    """matplotlib's SVG with its CSS turned into presentation attributes: the workspace's Content
    Security Policy (``style-src 'self'``) refuses inline ``style``, and attributes are not CSS.
    Its one ``<style>`` sets two inherited defaults: they go on the root element."""
    svg = re.sub(r"<style[^>]*>.*?</style>", "", svg, flags=re.S)
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = _STYLE.sub(_attributes, svg)
    # matplotlib names every group ("figure_1", "axes_1" ...): the same names in each chart of a
    # page would repeat; only the ids something points at stay
    used = set(re.findall(r"url\(#([^)]+)\)", svg)) | set(re.findall(r'href="#([^"]+)"', svg))
    svg = re.sub(r'\sid="([^"]+)"', lambda m: m.group(0) if m.group(1) in used else "", svg)
    return svg.replace("<svg ", '<svg stroke-linejoin="round" stroke-linecap="butt" ', 1)


@dataclass(frozen=True)
class Numbers:
    """Numbers written the way ``language`` writes them (CLDR, through Babel), for people: a count
    is 1,000,000 in English, 1.000.000 in Dutch and 1 000 000 in French (a narrow no-break space);
    hours and minutes have one decimal (2.5, 2,5); a share is a percentage with one decimal, spaced
    as the language spaces it (84.6%, 84,6 %). Calling it writes a count. The CSV downloads keep
    raw numbers: a spreadsheet reads 1234, not "1.234"."""

    language: str = "en"

    def __call__(self, n: float) -> str:
        from babel.numbers import format_decimal

        return format_decimal(n + 0, locale=self.language)  # + 0: -0.0 is written 0

    def one(self, v: float | None) -> str:
        """``v`` with one decimal; "–" for none."""
        from babel.numbers import format_decimal

        return "–" if v is None else format_decimal(v + 0, format="#,##0.0", locale=self.language)

    def percent(self, share: float | None) -> str:
        """A share (0 to 1) as a percentage with one decimal; "–" for none (nothing to share)."""
        from babel import Locale
        from babel.numbers import format_percent

        if share is None:
            return "–"
        pattern = Locale.parse(self.language).percent_formats[None].pattern.replace("#,##0", "#,##0.0", 1)
        return format_percent(share, format=pattern, locale=self.language)

    def cell(self, value: Any) -> str:
        """A table's cell: a count or a measure written as above, words with spaces for the
        snake_case of the CSV's names, nothing for none."""
        if value is None:
            return ""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return str(value).replace("_", " ")
        return self(value)

    def row(self, row: Sequence[Any]) -> list[str]:
        """A figures table's row as cells; a ``share_…`` row's value (0 to 1 in the CSV) as a
        percentage, as the key figures write it."""
        if len(row) == 2 and str(row[0]).startswith("share_") and isinstance(row[1], int | float):
            return [self.cell(row[0]), self.percent(float(row[1]))]
        return [self.cell(v) for v in row]

    def tick(self, v: float, _pos: Any = None) -> str:
        """An axis' tick label (matplotlib's ``FuncFormatter``): never "1e6" or an offset."""
        return self(v)


def _ticks(axis: Any, num: Numbers) -> None:
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(num.tick))


def country_namer(language: str, t: Words) -> Callable[[str], str]:
    """A country's name in ``language`` (CLDR), from its ISO code; "" is "unknown"."""
    from babel import Locale

    names = Locale.parse(language).territories

    def name(code: str) -> str:
        return str(names.get(code, code)) if code else t("unknown")

    return name


def _style(ax: Any) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=8)
    ax.grid(axis="x" if ax.name == "rectilinear" and getattr(ax, "_horizontal", False) else "y", alpha=0.3)


def _weekly(key: str, title: str, t: Words, f: Figures, attr: str, num: Numbers) -> Chart:
    labels = {c: t(c) for c in ("public", "API", "partner", "other")}
    names = {
        "public": labels["public"],
        "api": labels["API"],
        "partner": labels["partner"],
        "other": labels["other"],
    }
    series = {c: [getattr(w, attr)[c] for w in f.weeks] for c in CHANNELS}
    totals = {c: sum(v) for c, v in series.items()}
    per_week = [sum(getattr(w, attr).values()) for w in f.weeks]
    busiest = max(range(len(per_week)), key=lambda i: per_week[i]) if per_week else None
    desc = t(
        "{n} in all over {weeks} weeks: {parts}.",
        n=num(sum(totals.values())),
        weeks=num(len(f.weeks)),
        parts=", ".join(f"{names[c]} {num(totals[c])}" for c in CHANNELS),
    )
    if busiest is not None and per_week[busiest]:
        desc += " " + t("Busiest week: {week} ({n}).", week=f.weeks[busiest].label, n=num(per_week[busiest]))

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        x = list(range(len(f.weeks)))
        bottom = [0] * len(x)
        for i, c in enumerate(CHANNELS):
            if totals[c] == 0 and c == "other":
                continue
            ax.bar(x, series[c], bottom=bottom, color=PALETTE[i], label=names[c], width=0.85)
            bottom = [b + v for b, v in zip(bottom, series[c], strict=True)]
        step = max(1, len(x) // 13)
        ax.set_xticks(x[::step], [week_label(w.monday)[5:] for w in f.weeks][::step], rotation=0)
        ax.set_ylabel(title, fontsize=8)
        _ticks(ax.yaxis, num)
        ax.legend(fontsize=8, frameon=False, ncols=4, loc="lower left", bbox_to_anchor=(0, 1.0))
        _style(ax)

    return Chart(key, title, desc, draw, margins=(0.07, 0.1, 0.99, 0.9))


def _hbars(
    key: str,
    title: str,
    desc: str,
    names: Sequence[str],
    values: Sequence[float],
    unit: str,
    num: Numbers,
    *,
    second: Sequence[float | None] | None = None,
    legend: tuple[str, str] | None = None,
) -> Chart:
    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        y = list(range(len(names)))[::-1]
        if second is None:
            ax.barh(y, values, color=PALETTE[0], height=0.7)
            for yy, v in zip(y, values, strict=True):
                ax.text(v, yy, f" {num(v)}", va="center", fontsize=8)
            ax.margins(x=0.12)  # room inside the axes for the longest bar's label (" 1,000,000")
        else:
            ax.barh(
                [v + 0.18 for v in y],
                values,
                color=PALETTE[0],
                height=0.36,
                label=legend[0] if legend else None,
            )
            ax.barh(
                [v - 0.18 for v in y],
                [s or 0 for s in second],
                color=PALETTE[1],
                height=0.36,
                label=legend[1] if legend else None,
            )
            # above the bars, never over the longest one
            ax.legend(fontsize=8, frameon=False, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2)
        ax.set_yticks(y, list(names))
        ax.set_xlabel(unit, fontsize=8)
        _ticks(ax.xaxis, num)
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(labelsize=8)
        ax.grid(axis="x", alpha=0.3)

    height = max(1.6, 0.32 * len(names) + 0.9) + (0.25 if second is not None else 0)
    left, bottom, right, top = _bar_margins(names, height)
    if second is not None:
        top = 1 - 0.35 / height  # room for the legend
    return Chart(key, title, desc, draw, (8.0, height), (left, bottom, right, top))


def _bar_margins(names: Sequence[str], height: float) -> tuple[float, float, float, float]:
    """Room on the left for the longest label (8-point text, about 0.06 inch a character on an
    8-inch figure) and half an inch below for the axis' label."""
    longest = max((len(n) for n in names), default=4)
    return (min(0.5, 0.04 + 0.0095 * longest), min(0.45, 0.5 / height), 0.95, 1 - 0.1 / height)


def _spread_chart(
    key: str, title: str, t: Words, rows: list[GroupSpread], name: Callable[[str], str], num: Numbers
) -> Chart:
    shown = rows[:TOP]
    desc = "; ".join(
        t(
            "{name}: {n} removed, median {median} h, 90th percentile {p90} h",
            name=name(r.name),
            n=num(r.count),
            median=num.one(r.median),
            p90=num.one(r.p90),
        )
        for r in shown
    ) or t("No removals in this period.")
    return _hbars(
        key,
        title,
        desc,
        [f"{name(r.name)} ({num(r.count)})"[:34] for r in shown],
        [round(r.median or 0, 1) for r in shown],
        t("hours from the report"),
        num,
        second=[None if r.p90 is None else round(r.p90, 1) for r in shown],
        legend=(t("median"), t("90th percentile")),
    )


def _world(t: Words, f: Figures, name: Callable[[str], str], num: Numbers) -> Chart:
    counts = {c: n for c, n in f.countries if c}
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
    desc = (
        t(
            "Confirmed illegal items by hosting country, darker for more: {parts}.",
            parts=", ".join(f"{name(c)} {num(n)}" for c, n in top),
        )
        if top
        else t("No located hosting countries in this period.")
    )

    def draw(fig: Any) -> None:
        from matplotlib.collections import PolyCollection
        from matplotlib.colors import LogNorm

        ax = fig.add_subplot()
        shapes = _world_shapes()
        top_n = max(counts.values(), default=1)
        norm = LogNorm(vmin=1, vmax=max(top_n, 2))
        cmap = _colormap()
        polys, colours = [], []
        for code, rings in shapes.items():
            n = counts.get(code, 0)
            colour = cmap(norm(n)) if n else "#e6e6e6"
            for ring in rings:
                polys.append(ring)
                colours.append(colour)
        ax.add_collection(PolyCollection(polys, facecolors=colours, edgecolors="#ffffff", linewidths=0.3))
        ax.set_xlim(-172, 192)
        ax.set_ylim(-58, 84)
        ax.set_aspect("equal")
        ax.set_axis_off()
        if counts:
            from matplotlib.cm import ScalarMappable

            bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.6, pad=0.01)
            from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

            # whole numbers (1, 2, 5, 10, 20 …), not matplotlib's "3 × 10⁰"
            bar.ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: num(round(v))))
            bar.ax.yaxis.set_minor_formatter(NullFormatter())
            bar.set_label(t("confirmed illegal items"), fontsize=8)
            bar.ax.tick_params(labelsize=7)

    def body() -> str:
        return world_svg(counts, name, t("confirmed illegal items"), num)

    return Chart(
        "world", t("Hosting countries on the map"), desc, draw, (8.0, 3.9), (0.0, 0.0, 1.0, 1.0), body
    )


def _shade(n: int, top: int) -> str:
    """The map's colour for ``n`` of at most ``top`` (log scale, light to dark blue; grey: none)."""
    if n <= 0:
        return "#e6e6e6"
    x = 1.0 if top <= 1 else math.log(n) / math.log(top)
    light, dark = (0xC6, 0xDB, 0xEF), (0x08, 0x30, 0x6B)
    return "#" + "".join(f"{round(a + (b - a) * x):02x}" for a, b in zip(light, dark, strict=True))


def world_svg(
    counts: dict[str, int], name: Callable[[str], str], unit: str, num: Callable[[int], str] = str
) -> str:
    """The world map drawn by hand: one ``<path>`` per country (plate carrée: x = longitude,
    y = -latitude), shaded by its count, each with a ``<title>`` (its name and count: a tooltip,
    and what a screen reader says), and a legend of five shades; ``num`` writes the counts."""
    top = max(counts.values(), default=1)
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="-172 -86 364 160" font-family="DejaVu Sans, Arial, Helvetica, sans-serif">',
        '<rect x="-172" y="-86" width="364" height="160" fill="#ffffff"/>',
        '<g stroke="#ffffff" stroke-width="0.2" stroke-linejoin="round">',
    ]
    for code, rings in _world_shapes().items():
        d = "".join("M" + "L".join(f"{x:g} {-y:g}" for x, y in ring) + "Z" for ring in rings)
        n = counts.get(code, 0)
        label = f"{name(code)}: {num(n)}" if n else name(code)
        parts.append(f'<path d="{d}" fill="{_shade(n, top)}"><title>{html.escape(label)}</title></path>')
    parts.append("</g>")
    if counts:
        steps = sorted({1, *(max(1, round(top ** (i / 4))) for i in range(5))})
        x = -160.0
        parts.append(f'<text x="{x:g}" y="64" font-size="5" fill="#333">{html.escape(unit)}</text>')
        for i, v in enumerate(steps):
            xx = x + i * 22
            parts.append(f'<rect x="{xx:g}" y="66" width="8" height="5" fill="{_shade(v, top)}"/>')
            parts.append(
                f'<text x="{xx + 9:g}" y="70.5" font-size="5" fill="#333">{html.escape(num(v))}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


@cache
def _world_shapes() -> dict[str, list[list[list[float]]]]:
    data: dict[str, list[list[list[float]]]] = json.loads(WORLD.read_text())["countries"]
    return data


def _colormap() -> Any:
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("meldpunt", ["#c6dbef", "#08306b"])


def charts(f: Figures, t: Words, language: str = "en") -> list[Chart]:
    """Every chart of the figures ``f``, in the order the page and the report show them."""
    name = country_namer(language, t)
    num = Numbers(language)
    out = [
        _weekly("reports", t("Reports per week by channel"), t, f, "reports", num),
        _weekly("items", t("Items (URLs) per week by channel"), t, f, "items", num),
    ]
    share_illegal = Figures.share(f.illegal, f.assessed)
    share_unseen = Figures.share(f.settled_unseen, f.assessed)
    out.append(
        _hbars(
            "decisions",
            t("Decisions on the items assessed"),
            t(
                "{assessed} items assessed: {illegal} confirmed illegal ({share}), {hash} of them by a hash list "
                "and {analysts} by analysts; {unseen} settled without any human view ({unseen_share}).",
                assessed=num(f.assessed),
                illegal=num(f.illegal),
                share=num.percent(share_illegal),
                hash=num(f.illegal_by_hash_list),
                analysts=num(f.illegal_by_analysts),
                unseen=num(f.settled_unseen),
                unseen_share=num.percent(share_unseen),
            ),
            [
                t("assessed"),
                t("confirmed illegal"),
                t("illegal, by a hash list"),
                t("illegal, by analysts"),
                t("settled without any human view"),
            ],
            [f.assessed, f.illegal, f.illegal_by_hash_list, f.illegal_by_analysts, f.settled_unseen],
            t("items"),
            num,
        )
    )
    top = f.countries[:TOP]
    out.append(
        _hbars(
            "countries",
            t("Hosting countries"),
            ", ".join(f"{name(c)} {num(n)}" for c, n in top)
            or t("No confirmed illegal items in this period."),
            [name(c)[:30] for c, _ in top],
            [n for _, n in top],
            t("confirmed illegal items"),
            num,
        )
    )
    out.append(_world(t, f, name, num))
    bucket_words = {
        "under_1h": t("under 1 hour"),
        "1h_24h": t("1 to 24 hours"),
        "1d_3d": t("1 to 3 days"),
        "3d_7d": t("3 to 7 days"),
        "over_7d": t("over 7 days"),
    }
    assert set(bucket_words) == {k for k, _ in BUCKETS}
    r = f.removal_from_report
    out.append(
        _hbars(
            "removal_distribution",
            t("Time to removal"),
            t(
                "{n} removed; from the report: median {median} h, 90th percentile {p90} h. {parts}.",
                n=num(r.count),
                median=num.one(r.median),
                p90=num.one(r.p90),
                parts=", ".join(f"{bucket_words[k]}: {num(n)}" for k, n in f.removal_buckets),
            ),
            [bucket_words[k] for k, _ in f.removal_buckets],
            [n for _, n in f.removal_buckets],
            t("removed items"),
            num,
        )
    )
    out.append(
        _spread_chart(
            "removal_by_provider",
            t("Time to removal by provider"),
            t,
            f.removal_by_provider,
            lambda s: s or t("unknown"),
            num,
        )
    )
    out.append(
        _spread_chart(
            "removal_by_country", t("Time to removal by hosting country"), t, f.removal_by_country, name, num
        )
    )
    out.append(_forwards_chart(t, f, num))
    out.append(_viewing_chart(t, f, num))
    return out


#: a forward's outcome in words (the CSV keeps the codes)
OUTCOMES = {
    "failed": "not delivered",
    "no_answer": "no answer yet",
    "received": "received",
    "assessed": "assessed",
    "notice_sent": "notice sent",
    "removed": "removed",
    "not_illegal": "not illegal",
    "unavailable": "unavailable",
}


def outcome_words(t: Words, code: str) -> str:
    return t(OUTCOMES[code]) if code in OUTCOMES else code


def _forwards_chart(t: Words, f: Figures, num: Numbers) -> Chart:
    partners = sorted({p for p, _, _ in f.forwards})
    outcomes = sorted({o for _, o, _ in f.forwards})
    counts = {(p, o): n for p, o, n in f.forwards}
    desc = "; ".join(
        f"{p}: "
        + ", ".join(f"{outcome_words(t, o)} {num(counts[(p, o)])}" for o in outcomes if (p, o) in counts)
        for p in partners
    ) or t("No forwards in this period.")

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        y = list(range(len(partners)))[::-1]
        left = [0] * len(partners)
        for i, o in enumerate(outcomes):
            values = [counts.get((p, o), 0) for p in partners]
            ax.barh(
                y, values, left=left, color=PALETTE[i % len(PALETTE)], label=outcome_words(t, o), height=0.6
            )
            left = [a + b for a, b in zip(left, values, strict=True)]
        ax.set_yticks(y, partners)
        ax.set_xlabel(t("forwards"), fontsize=8)
        _ticks(ax.xaxis, num)
        if outcomes:
            ax.legend(fontsize=8, frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(labelsize=8)

    height = max(1.6, 0.4 * len(partners) + 1.0)
    return Chart(
        "forwards",
        t("Forwards by partner and outcome"),
        desc,
        draw,
        (8.0, height),
        (*_bar_margins(partners, height)[:2], 0.8, _bar_margins(partners, height)[3]),
    )


def _viewing_chart(t: Words, f: Figures, num: Numbers) -> Chart:
    shown = [v.hours for v in f.viewing]
    desc = t(
        "Viewing time of all analysts together: {hours} hours by {people} people.",
        hours=num.one(f.viewing_hours),
        people=num(f.viewing_people),
    )
    if any(v is None for v in shown):
        desc += " " + t("Weeks with fewer than {n} people viewing show no hours.", n=3)

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        x = list(range(len(f.viewing)))
        ax.bar(x, [v if v is not None else 0 for v in shown], color=PALETTE[2], width=0.85)
        step = max(1, len(x) // 13)
        ax.set_xticks(x[::step], [week_label(v.monday)[5:] for v in f.viewing][::step])
        ax.set_ylabel(t("hours"), fontsize=8)
        _ticks(ax.yaxis, num)
        _style(ax)
        if not any(shown):
            ax.set_yticks([])

    return Chart("viewing", t("Analysts' viewing time per week (all together)"), desc, draw)


__all__ = ["Chart", "Numbers", "charts", "country_namer"]
