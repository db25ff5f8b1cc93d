"""A survivor's statement (#12): the case's timeline as a PDF to download, in the survivor's language.

Pure: it draws what it is given. The caller (the survivor pages) translates every word and turns
the timeline's facts into sentences, so this module needs no catalogue and no database, and the
words of the page and of the PDF stay the same. What it is given is already safe to show: dates,
domains and countries, never a full URL; the case only by a short label that is not its code (the
code is the survivor's secret, and a PDF is kept, printed and passed on).

The registered hashes go in an annex: it is the survivor's own record, and a lawyer or a police
officer they show it to may need the values. They are printed as plain monospaced lines in blocks
(a table of 100,000 rows would take minutes to lay out).

ReportLab (pure Python), the Bitstream Vera fonts it ships embedded (Latin-1: é, à, ë), "page n of
m" on every page, invariant mode (fixed metadata dates and document id): the same case on the same
day gives the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from meldpunt.referral.summary import numbered_canvas, pdf_fonts

#: annex lines per block (a block is split over pages as needed)
_BLOCK = 60


@dataclass(frozen=True)
class StatementWords:
    """Every word of the statement, translated by the caller. ``page`` holds ``{n}`` and
    ``{total}``."""

    title: str
    header: str
    page: str
    intro: Sequence[str]
    timeline_heading: str
    date_column: str
    fact_column: str
    nothing_yet: str
    explanation_heading: str
    explanation: Sequence[str]
    annex_heading: str
    annex_intro: str
    language: str = "en"


@dataclass(frozen=True)
class Statement:
    """What the statement shows: a label (never the case code), the day it was made, the
    timeline's lines as (date, sentence), and the registered hashes as (type, value)."""

    label: str
    made: str
    words: StatementWords
    facts: Sequence[tuple[str, str]] = ()
    hashes: Sequence[tuple[str, str]] = field(default_factory=tuple)


def statement_pdf(statement: Statement) -> bytes:
    """The statement as a PDF (A4): the label and page numbers on every page."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, Preformatted, SimpleDocTemplate, Spacer, Table, TableStyle

    regular, bold, mono = pdf_fonts()
    w = statement.words
    base = ParagraphStyle("base", fontName=regular, fontSize=10, leading=14, spaceAfter=4)
    h1 = ParagraphStyle("h1", parent=base, fontName=bold, fontSize=16, leading=20, spaceAfter=8)
    h2 = ParagraphStyle("h2", parent=base, fontName=bold, fontSize=12, leading=16, spaceBefore=10)
    code = ParagraphStyle("code", fontName=mono, fontSize=8, leading=10)
    width = A4[0] - 36 * mm

    story: list[Any] = [Paragraph(escape(w.title), h1)]
    story += [Paragraph(escape(line), base) for line in w.intro]
    story.append(Paragraph(escape(w.timeline_heading), h2))
    if statement.facts:
        cell = ParagraphStyle("cell", parent=base, spaceAfter=0)
        rows = [[Paragraph(escape(w.date_column), cell), Paragraph(escape(w.fact_column), cell)]]
        rows += [[Paragraph(escape(d), cell), Paragraph(escape(text), cell)] for d, text in statement.facts]
        table = Table(rows, colWidths=[28 * mm, width - 28 * mm], repeatRows=1)
        table.setStyle(
            TableStyle(
                [
                    ("FONTNAME", (0, 0), (-1, 0), bold),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
                    ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#999999")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        story.append(table)
    else:
        story.append(Paragraph(escape(w.nothing_yet), base))
    story.append(Paragraph(escape(w.explanation_heading), h2))
    story += [Paragraph(escape(line), base) for line in w.explanation]
    if statement.hashes:
        story.append(Spacer(1, 6 * mm))
        story.append(Paragraph(escape(w.annex_heading), h2))
        story.append(Paragraph(escape(w.annex_intro), base))
        lines = [f"{kind:<7}{value}" for kind, value in statement.hashes]
        for s in range(0, len(lines), _BLOCK):
            story.append(Preformatted("\n".join(lines[s : s + _BLOCK]), code))

    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=20 * mm,
        bottomMargin=18 * mm,
        title=w.title,
        subject=w.header,
        creator="meldpunt",
        lang=w.language,
        invariant=1,
    )
    doc.build(story, canvasmaker=_numbered(w.header, w.page, statement.made, regular))
    return out.getvalue()


def _numbered(header: str, page: str, made: str, font: str) -> Any:
    """The statement's pages: the label and the day at the top, "page n of m" below."""
    from reportlab.lib.units import mm

    def decorate(c: Any, w: float, h: float, total: int) -> None:
        c.setFont(font, 8)
        c.drawString(18 * mm, h - 12 * mm, header)
        c.drawRightString(w - 18 * mm, h - 12 * mm, made)
        c.drawRightString(w - 18 * mm, 10 * mm, page.format(n=c._pageNumber, total=total))

    return numbered_canvas(decorate)
