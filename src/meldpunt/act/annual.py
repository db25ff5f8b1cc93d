"""The annual report (#13): a year's figures as one self-contained HTML file (CSS and the charts'
SVG inline, no link out) and a PDF (ReportLab, the charts as PNG), shaped like a hotline's annual
report to INHOPE or the IWF's: a title page, the key figures, the charts with their tables, and
short method notes saying what each figure counts. The figures are :mod:`meldpunt.act.figures`'s
— the statistics page's — and so are the words of the notes (English: the report's language, and
its numbers are written as English writes them: 1,000,000)."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from meldpunt.act import charts as chart_module
from meldpunt.act.figures import CHANNELS, TABLE_KEYS, Figures, Period, compute

TEMPLATES = Path(__file__).parent / "templates"
#: the report's numbers, written as its language (English) writes them
NUM = chart_module.Numbers("en")

#: each figure's heading and what it counts (the statistics page shows the same, translated)
SECTIONS: dict[str, tuple[str, str]] = {
    "intake": (
        "Reports and items per week by channel",
        "Reports received and items (URLs) first reported, per ISO week (Monday to Sunday, UTC), by the "
        "channel of the report: the public form, the API, or a partner hotline's forward.",
    ),
    "decisions": (
        "Decisions",
        "Items first reported in the period that have a final decision, by a hash list or by analysts. "
        "Confirmed illegal: a takedown was opened or the final classification is illegal. Settled without any "
        "human view: decided by a hash list and never opened or revealed by anyone (the audit log).",
    ),
    "countries": (
        "Hosting countries",
        "The confirmed illegal items by the country their host was located in when the takedown was opened "
        "(unknown: not located).",
    ),
    "removal": (
        "Time to removal",
        "Takedowns confirmed removed in the period (re-checks found the content gone), hours from the report "
        "and from the first notice. The median is the middle value; 90% were removed within the 90th percentile.",
    ),
    "notices": (
        "Notices",
        "Notices sent to abuse contacts in the period; at the period's end, those sent and not closed "
        "(outstanding) and those escalated to the overdue queue and not closed (overdue).",
    ),
    "forwards": (
        "Forwards by partner and outcome",
        "Items forwarded to partner hotlines in the period, by the partner's newest status (failed: not "
        "delivered; no answer: delivered, nothing back yet).",
    ),
    "urgent": (
        "Urgent cases",
        "Reports marked urgent, urgent alerts raised in the period, acknowledged by its end, and the minutes "
        "from raising to acknowledgement.",
    ),
    "viewing": (
        "Analysts' viewing time",
        "Hours analysts spent viewing content, all together, per week — never per person. A week with fewer "
        "than three people viewing shows no hours.",
    ),
}
#: which charts each section shows
SECTION_CHARTS: dict[str, tuple[str, ...]] = {
    "intake": ("reports", "items"),
    "decisions": ("decisions",),
    "countries": ("countries", "world"),
    "removal": ("removal_distribution", "removal_by_provider", "removal_by_country"),
    "notices": (),
    "forwards": ("forwards",),
    "urgent": (),
    "viewing": ("viewing",),
}


def english(message: str, **values: Any) -> str:
    return message.format(**values) if values else message


@dataclass(frozen=True)
class AnnualReport:
    html: Path
    pdf: Path
    figures: Figures


def key_figures(f: Figures) -> list[tuple[str, str]]:
    """The figures a reader looks for first, as (label, value) in words."""
    num = NUM

    def share(part: int, whole: int) -> str:
        return num.percent(Figures.share(part, whole))

    def hours(v: float | None) -> str:
        return "–" if v is None else f"{num.one(v)} h"

    return [
        ("Reports received", num(sum(f.reports.values()))),
        ("Items (URLs) reported", num(sum(f.items.values()))),
        ("Items assessed", num(f.assessed)),
        ("Confirmed illegal", f"{num(f.illegal)} ({share(f.illegal, f.assessed)})"),
        (
            "Settled without any human view",
            f"{num(f.settled_unseen)} ({share(f.settled_unseen, f.assessed)})",
        ),
        ("Hosting countries", num(len([c for c, _ in f.countries if c]))),
        ("Removed", num(f.removal_from_report.count)),
        ("Median time to removal (from the report)", hours(f.removal_from_report.median)),
        ("90th percentile time to removal", hours(f.removal_from_report.p90)),
        (
            "Notices sent / outstanding / overdue",
            f"{num(f.notices_sent)} / {num(f.notices_outstanding)} / {num(f.notices_overdue)}",
        ),
        ("Forwards to partner hotlines", num(sum(n for _, _, n in f.forwards))),
        (
            "Urgent alerts / median acknowledgement",
            f"{num(f.alerts_raised)} / {num.one(f.acknowledgement.median)} min",
        ),
    ]


def _channel_rows(f: Figures) -> list[tuple[str, int, int]]:
    names = {"public": "public form", "api": "API", "partner": "partner hotlines", "other": "other"}
    return [(names[c], f.reports[c], f.items[c]) for c in CHANNELS]


def write(
    engine: Any,
    year: int,
    out_dir: Path,
    *,
    hotline: str,
    now: datetime,
    progress: Callable[[str], None] | None = None,
) -> AnnualReport:
    """Compute ``year``'s figures and write ``annual-report-YEAR.html`` and ``.pdf`` into ``out_dir``."""
    say = progress or (lambda _step: None)
    period = Period.year(year)
    say("figures")
    f = compute(engine, period)
    drawn = [] if f.empty else chart_module.charts(f, english, "en")
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / f"annual-report-{year}.html"
    pdf_path = out_dir / f"annual-report-{year}.pdf"
    say("html")
    svgs = {c.key: {"title": c.title, "desc": c.desc, "svg": c.svg()} for c in drawn}
    html_path.write_text(_html(f, year, hotline, now, svgs), encoding="utf-8")
    say("pdf")
    pngs = {c.key: (c.title, c.desc, c.png(), c.size) for c in drawn}
    pdf_path.write_bytes(_pdf(f, year, hotline, now, pngs))
    return AnnualReport(html_path, pdf_path, f)


def _html(f: Figures, year: int, hotline: str, now: datetime, svgs: dict[str, dict[str, str]]) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    name = chart_module.country_namer("en", english)
    return env.get_template("annual_report.html").render(
        f=f,
        year=year,
        hotline=hotline,
        generated=now.strftime("%Y-%m-%d %H:%M UTC"),
        keys=key_figures(f),
        sections=SECTIONS,
        section_charts=SECTION_CHARTS,
        charts=svgs,
        channels=_channel_rows(f),
        country=name,
        tables=f.tables,
        table_keys=TABLE_KEYS,
        num=NUM,
    )


# -- PDF ---------------------------------------------------------------------------------------------


def _pdf(
    f: Figures,
    year: int,
    hotline: str,
    now: datetime,
    pngs: dict[str, tuple[str, str, bytes, tuple[float, float]]],
) -> bytes:
    from xml.sax.saxutils import escape

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        Image,
        KeepTogether,
        PageBreak,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    from meldpunt.referral.summary import pdf_fonts

    regular, bold, _ = pdf_fonts()
    body = ParagraphStyle("body", fontName=regular, fontSize=9.5, leading=13)
    small = ParagraphStyle(
        "small", parent=body, fontSize=8, leading=10.5, textColor=colors.HexColor("#444444")
    )
    h1 = ParagraphStyle("h1", parent=body, fontName=bold, fontSize=26, leading=32, spaceAfter=8)
    h2 = ParagraphStyle(
        "h2",
        parent=body,
        fontName=bold,
        fontSize=15,
        leading=19,
        spaceBefore=10,
        spaceAfter=6,
        textColor=colors.HexColor("#08306b"),
    )
    big = ParagraphStyle("big", parent=body, fontName=bold, fontSize=14, leading=18)
    width = A4[0] - 36 * mm

    def p(text: str, style: ParagraphStyle = body) -> Any:
        return Paragraph(escape(text), style)

    def grid(header: list[str], rows: list[list[str]], widths: list[float] | None = None) -> Any:
        data = [[p(h, small) for h in header]] + [[p(str(c), small) for c in r] for r in rows]
        table = Table(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
        table.setStyle(
            TableStyle(
                [
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#deebf7")),
                    ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#bbbbbb")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        return table

    story: list[Any] = [
        Spacer(1, 60 * mm),
        p(hotline, big),
        p(f"Annual report {year}", h1),
        p(
            "Reports, decisions, removals and cooperation with partners, from the hotline's own records.",
            body,
        ),
        Spacer(1, 8 * mm),
        p(
            f"Period: 1 January {year} to 31 December {year} (UTC). Generated {now.strftime('%Y-%m-%d %H:%M UTC')}.",
            small,
        ),
        p("Figures only: this report holds no content, no URL and no personal data.", small),
        PageBreak(),
        p("Key figures", h2),
    ]
    if f.empty:
        story.append(
            p(f"No data for {year}: nothing was reported, decided, removed or forwarded in this year.", big)
        )
    keys = key_figures(f)
    story.append(grid(["Figure", str(year)], [[k, v] for k, v in keys], [width * 0.65, width * 0.35]))
    for section, (title, note) in SECTIONS.items():
        block: list[Any] = [p(title, h2)]
        for key in SECTION_CHARTS[section]:
            if key not in pngs:
                continue
            _ctitle, desc, png, (w_in, h_in) = pngs[key]
            h = width * h_in / w_in
            block.append(Image(io.BytesIO(png), width=width, height=h))
            block.append(p(desc, small))
            block.append(Spacer(1, 3 * mm))
        if section == "intake":
            block.append(
                grid(["Channel", "Reports", "Items"], [[a, NUM(b), NUM(c)] for a, b, c in _channel_rows(f)])
            )
        elif section in ("notices", "urgent", "decisions"):
            rows = f.tables[section].rows
            block.append(
                grid(
                    ["Figure", "Value"],
                    [NUM.row(r) for r in rows],
                )
            )
        elif section == "countries" and f.countries:
            name = chart_module.country_namer("en", english)
            block.append(
                grid(["Country", "Confirmed illegal"], [[name(c), NUM(n)] for c, n in f.countries[:25]])
            )
        elif section == "removal":
            r, n = f.removal_from_report, f.removal_from_notice
            block.append(
                grid(
                    ["Measured from", "Removed", "Median (h)", "90th percentile (h)"],
                    [
                        ["the report", NUM(r.count), NUM.one(r.median), NUM.one(r.p90)],
                        ["the first notice", NUM(n.count), NUM.one(n.median), NUM.one(n.p90)],
                    ],
                )
            )
        block.append(Spacer(1, 2 * mm))
        block.append(p("Method: " + note, small))
        story.append(KeepTogether(block[:3]))
        story.extend(block[3:])
    story.append(p("About these figures", h2))
    story.append(
        p(
            "Every figure is computed from the hotline's database by meldpunt, the same as the statistics page in "
            "the workspace, where each can be downloaded as CSV. Times are UTC. Percentiles interpolate between "
            "ranks. The world map uses Natural Earth's 1:110m country outlines (public domain).",
            small,
        )
    )

    buf = io.BytesIO()

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(regular, 8)
        canvas.setFillColor(colors.HexColor("#666666"))
        canvas.drawString(18 * mm, 10 * mm, f"{hotline} · annual report {year}")
        canvas.drawRightString(A4[0] - 18 * mm, 10 * mm, str(doc.page))
        canvas.restoreState()

    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=18 * mm,
        title=f"{hotline} annual report {year}",
        author=hotline,
        creator="meldpunt",
    )
    doc.build(story, onFirstPage=lambda c, d: None, onLaterPages=footer)
    return buf.getvalue()


__all__ = ["SECTIONS", "AnnualReport", "key_figures", "write"]
