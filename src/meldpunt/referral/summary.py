"""A referral's readable summary: ``summary.html`` (Jinja2) and ``summary.pdf`` (ReportLab).

Both say the same: per item the URLs, the classification and who decided it when (police need to
know who can testify), the hosting facts, the media's hashes and the action timeline. In English,
the language police forces across borders share; times in UTC.

The HTML is autoescaped (every URL and provider name is text an adversary chose) and
self-contained: its style is inline, it loads nothing (no font, script or image from anywhere),
so it opens the same on an offline forensic workstation. The PDF is drawn with ReportLab (pure
Python, no system libraries): the case reference in the header and "page n of m" in the footer of
every page; its fonts are the Bitstream Vera fonts ReportLab ships, embedded; long URLs wrap at
any character. It is written in ReportLab's invariant mode (fixed metadata dates and document id),
so the same case gives the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit
from xml.sax.saxutils import escape

from jinja2 import Environment, FileSystemLoader, select_autoescape

from meldpunt.referral.case import Case, CaseItem, Event
from meldpunt.referral.vics import category

TEMPLATES = Path(__file__).with_name("templates")

#: the timeline's lines in words (``domain.acting.EventKind`` values); others: the kind itself
EVENT_WORDS = {
    "takedown_opened": "Found illegal: a takedown was opened",
    "located": "Located",
    "routed": "Routed",
    "notice_queued": "Added to a notice to the provider",
    "notice_sent": "Notice sent to the provider",
    "reminder_sent": "Reminder sent to the provider",
    "delivery_failed": "A delivery failed",
    "escalated": "Escalated",
    "police_due": "Police referral due",
    "provider_removed": "The provider says it is removed",
    "provider_disputed": "The provider disputes it",
    "reply_recorded": "A reply was recorded",
    "checked_online": "Checked: still online",
    "checked_missing": "Checked: not found",
    "removed": "Removed",
    "moved": "Moved to another host",
    "forward_pending": "To be forwarded to a partner hotline",
    "closed": "Closed",
    "alert_raised": "Urgent alert raised",
    "alert_sent": "Urgent alert sent",
    "alert_escalated": "Urgent alert escalated",
    "alert_acknowledged": "Urgent alert acknowledged",
    "contact_suspect": "The abuse contact was marked suspect",
    "forward_queued": "Forward to a partner hotline queued",
    "forward_sent": "Forwarded to a partner hotline",
    "forward_failed": "Forwarding failed",
    "partner_status": "Status from the partner hotline",
    "forward_received": "Received from a partner hotline",
    "referral_exported": "Referred to the police",
    "iccam_exported": "Exported to ICCAM",
    "iccam_imported": "Imported from ICCAM",
}
#: detail keys worth a word on the line (a reference, a partner, a state, a reason)
_DETAIL_KEYS = ("state", "reference", "partner", "status", "reason", "country", "check")


def utc_text(at: datetime | None) -> str:
    if at is None:
        return "—"
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def event_words(e: Event) -> str:
    words = EVENT_WORDS.get(e.kind, e.kind.replace("_", " ").capitalize())
    extra = [f"{k}: {e.detail[k]}" for k in _DETAIL_KEYS if e.detail.get(k) not in (None, "", [], {})]
    return f"{words} ({'; '.join(extra)})" if extra else words


def _category_words(profile: str) -> Callable[[CaseItem], str]:
    def words(item: CaseItem) -> str:
        c = category(item, profile)
        return "uncategorised" if c is None else f"{c} ({profile} profile)"

    return words


_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def summary_html(case: Case, *, profile: str = "US") -> bytes:
    """The summary as one self-contained HTML page (UTF-8)."""
    template = _env.get_template("summary.html")
    return template.render(
        case=case, profile=profile, time=utc_text, words=event_words, category=_category_words(profile)
    ).encode("utf-8")


# -- PDF --------------------------------------------------------------------------------------------------

_FONTS_READY = False


def pdf_fonts() -> tuple[str, str, str]:
    """The PDFs' fonts (the referral summary, the survivor's statement, the annual report): Vera regular
    and bold (shipped with ReportLab) and Courier for hashes (no Vera Sans Mono). Registered once."""
    global _FONTS_READY
    from reportlab import rl_config
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if not _FONTS_READY:
        folder = Path(rl_config.__file__).parent / "fonts"
        pdfmetrics.registerFont(TTFont("Vera", str(folder / "Vera.ttf")))
        pdfmetrics.registerFont(TTFont("VeraBd", str(folder / "VeraBd.ttf")))
        _FONTS_READY = True
    return "Vera", "VeraBd", "Courier"


def ascii_url(url: str) -> str:
    """``url`` as ASCII, the form a browser sends: the host in IDNA (punycode), the rest
    percent-encoded as UTF-8. The PDF shows URLs so (its embedded fonts have Latin glyphs only: a
    Cyrillic path would print as boxes); the HTML, CSV and VICS files keep them as reported."""
    if url.isascii():
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            host = quote(host, safe="")
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        if parts.username is not None:
            netloc = quote(parts.username, safe="") + "@" + netloc
        keep = "/%:@!$&'()*+,;=-._~?"
        return urlunsplit(
            (
                parts.scheme,
                netloc,
                quote(parts.path, safe=keep),
                quote(parts.query, safe=keep),
                quote(parts.fragment, safe=keep),
            )
        )
    except ValueError:
        return quote(url, safe="/%:@!$&'()*+,;=-._~?#")


def _p(text: str) -> str:
    """Plain text for a ReportLab paragraph (which reads a little markup): escaped."""
    return escape(text)


def summary_pdf(case: Case, *, profile: str = "US") -> bytes:
    """The summary as a PDF: the case reference on every page, page numbers "n of m"."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        KeepTogether,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    regular, bold, mono = pdf_fonts()
    base = ParagraphStyle("base", fontName=regular, fontSize=9, leading=12)
    small = ParagraphStyle("small", parent=base, fontSize=8, leading=10, textColor=colors.HexColor("#333333"))
    h1 = ParagraphStyle("h1", parent=base, fontName=bold, fontSize=15, leading=19, spaceAfter=6)
    h2 = ParagraphStyle(
        "h2", parent=base, fontName=bold, fontSize=12, leading=15, spaceBefore=10, spaceAfter=4
    )
    h3 = ParagraphStyle(
        "h3", parent=base, fontName=bold, fontSize=10, leading=13, spaceBefore=6, spaceAfter=2
    )
    cat_words = _category_words(profile)
    width = A4[0] - 30 * mm

    from reportlab.pdfbase.pdfmetrics import stringWidth

    def fits(text: str, font: str, size: float, room: float) -> bool:
        return "\n" not in text and stringWidth(text, font, size) <= room

    def mono_lines(text: str, room: float, size: float = 8) -> str:
        """Courier is monospaced: a URL or hash broken at a fixed number of characters, as
        plain lines (a Paragraph that may break anywhere measures every character: 100x slower)."""
        n = max(8, int(room // (0.6 * size)))
        return "\n".join(text[i : i + n] for i in range(0, len(text), n)) or " "

    def facts(rows: list[tuple[str, str, bool]]) -> Table:
        room = width - 35 * mm - 2
        data: list[list[Any]] = []
        style: list[Any] = [
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ("TOPPADDING", (0, 0), (-1, -1), 1),
            ("FONT", (0, 0), (0, -1), bold, 9, 12),
        ]
        for n, (k, v, code) in enumerate(rows):
            if code:
                data.append([k, mono_lines(v, room)])
                style.append(("FONT", (1, n), (1, n), mono, 8, 10))
            elif fits(v, regular, 9, room):
                data.append([k, v])
                style.append(("FONT", (1, n), (1, n), regular, 9, 12))
            else:
                data.append([k, Paragraph(_p(v), base)])
        t = Table(data, colWidths=[35 * mm, width - 35 * mm], splitInRow=1)
        t.setStyle(TableStyle(style))
        return t

    def grid(header: list[str], rows: list[list[str]], widths: list[float]) -> Table:
        data: list[list[Any]] = [list(header)]
        for r in rows:
            data.append(
                [
                    c if fits(c, regular, 8, w - 5) else Paragraph(_p(c), small)
                    for c, w in zip(r, widths, strict=True)
                ]
            )
        t = Table(data, colWidths=widths, repeatRows=1, splitInRow=1)
        t.setStyle(
            TableStyle(
                [
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#999999")),
                    ("LEFTPADDING", (0, 0), (-1, -1), 2),
                    ("FONT", (0, 0), (-1, 0), bold, 9, 12),
                    ("FONT", (0, 1), (-1, -1), regular, 8, 10),
                    ("TEXTCOLOR", (0, 1), (-1, -1), colors.HexColor("#333333")),
                ]
            )
        )
        return t

    story: list[Any] = [
        Paragraph(_p(f"Police referral {case.reference}" + (" — URGENT" if case.urgent else "")), h1)
    ]
    story.append(
        facts(
            [
                ("Case", case.reference, True),
                ("From", case.instance, False),
                ("Made", f"{utc_text(case.created)} by {case.created_by}", False),
                ("Items", f"{len(case.items)} ({case.media_count} media)", False),
                (
                    "Media files",
                    "included (folder media/)" if case.with_media else "not included: hashes only",
                    False,
                ),
                ("VICS profile", profile, False),
            ]
        )
    )
    story.append(Spacer(1, 4))
    story.append(
        Paragraph(
            _p(
                "Reports are anonymous: this package holds no reporter's identity or address. Every file is "
                "listed with its SHA-256 in manifest.json, signed (Ed25519) in manifest.sig; check it with "
                "`meldpunt referral verify` and the hotline's public key. URLs with characters outside ASCII "
                "are shown here in their ASCII form (IDNA host, percent-encoded path: what a browser sends); "
                "summary.html, media.csv and vics.json hold them as reported."
            ),
            small,
        )
    )
    for item in case.items:
        story.append(Paragraph(_p(f"Item {item.item_id}" + (" — urgent" if item.urgent else "")), h2))
        rows = [("Reported URL", ascii_url(item.url), True)]
        if item.final_url and item.final_url != item.url:
            rows.append(("After redirects", ascii_url(item.final_url), True))
        reported = utc_text(item.reported_at)
        if len(item.reports) > 1:
            reported += f" (reported {len(item.reports)} times)"
        classification = "; ".join(f"{k}: {v}" for k, v in sorted(item.classification.items())) or "—"
        if item.flags:
            classification += f" (flags: {', '.join(item.flags)})"
        rows += [
            ("First reported", reported, False),
            ("Classification", classification, False),
            ("VICS category", cat_words(item), False),
            (
                "Classified",
                utc_text(item.classified_at)
                + (" by a hash list match" if item.decided_by == "hash_list" else ""),
                False,
            ),
        ]
        if item.takedown_state:
            removed = f", removed {utc_text(item.removed_at)}" if item.removed_at else ""
            rows.append(("Takedown", item.takedown_state + removed, False))
        for name, refs in sorted(item.references.items()):
            rows.append((name.capitalize(), ", ".join(refs), True))
        story.append(facts(rows))
        story.append(Paragraph("Who decided", h3))
        if item.decisions:
            story.append(
                grid(
                    ["When", "Who", "Role", "Opinion", "Values"],
                    [
                        [
                            utc_text(d.at),
                            d.user,
                            d.staff_role,
                            d.opinion,
                            ", ".join(f"{k}={v}" for k, v in sorted(d.values.items())),
                        ]
                        for d in item.decisions
                    ],
                    [42 * mm, 30 * mm, 20 * mm, 22 * mm, width - 114 * mm],
                )
            )
        else:
            story.append(
                Paragraph(
                    _p(
                        "No analyst's opinion: "
                        + (
                            "classified by a hash list match."
                            if item.decided_by == "hash_list"
                            else "none recorded."
                        )
                    ),
                    base,
                )
            )
        h = item.hosting
        story.append(Paragraph("Hosting", h3))
        hosting = [
            ("Host", h.host or item.host or "—", True),
            ("IP address", h.ip or item.server_ip or "—", True),
            (
                "AS number",
                (f"AS{h.asn}" if h.asn is not None else "—")
                + (f" ({h.network_owner})" if h.network_owner else ""),
                False,
            ),
            ("Country", h.country or "—", False),
            ("Provider", (h.provider or "—") + (f" (CDN: {h.cdn})" if h.cdn else ""), False),
            ("Abuse contact", h.abuse_contact or "—", False),
        ]
        if h.registrar:
            hosting.append(("Registrar", h.registrar, False))
        hosting.append(("Located", utc_text(h.located_at), False))
        story.append(facts(hosting))
        story.append(Paragraph(_p(f"Media ({len(item.media)})"), h3))
        for m in item.media:
            line = f"{m.id} · {m.kind or '?'} · {m.size} bytes · {m.outcome or '—'}"
            if m.banks:
                line += f" (hash lists: {', '.join(m.banks)})"
            rows = [
                ("Medium", line, False),
                ("URL", ascii_url(m.url), True),
                ("MD5", m.md5 or "—", True),
                ("SHA-1", m.sha1 or "—", True),
                ("SHA-256", m.sha256 or "—", True),
                ("PDQ", m.pdq or "—", True),
            ]
            if m.file:
                rows.append(("File", m.file, True))
            story.append(KeepTogether([facts(rows), Spacer(1, 4)]))
        if not item.media:
            story.append(Paragraph("No media.", base))
        story.append(Paragraph("Timeline", h3))
        if item.timeline:
            story.append(
                grid(
                    ["When", "Who", "What"],
                    [[utc_text(e.at), e.actor, event_words(e)] for e in item.timeline],
                    [42 * mm, 30 * mm, width - 72 * mm],
                )
            )
        else:
            story.append(Paragraph("Nothing recorded.", base))

    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=20 * mm,
        bottomMargin=18 * mm,
        title=f"Police referral {case.reference}",
        author=case.instance,
        subject=f"Case {case.reference}",
        creator="meldpunt",
        invariant=1,
    )
    doc.build(story, canvasmaker=_numbered_canvas(case.reference, regular, case.created))
    return out.getvalue()


def numbered_canvas(decorate: Callable[[Any, float, float, int], None]) -> Any:
    """A canvas class that keeps its pages until the end, when their count is known, then lets
    ``decorate(canvas, width, height, total)`` draw each page's header and footer ("page n of m")."""
    from reportlab.pdfgen.canvas import Canvas

    class NumberedCanvas(Canvas):  # type: ignore[misc]  # reportlab has no type hints
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []
            self.setCreator("meldpunt")

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                w, h = self._pagesize
                self.saveState()
                decorate(self, w, h, total)
                self.restoreState()
                Canvas.showPage(self)
            Canvas.save(self)

    return NumberedCanvas


def _numbered_canvas(reference: str, font: str, created: datetime) -> Any:
    """The referral summary's pages: the case and the day at the top, the case and "page n of m" below."""
    from reportlab.lib.units import mm

    def decorate(c: Any, w: float, h: float, total: int) -> None:
        c.setFont(font, 8)
        c.drawString(15 * mm, h - 12 * mm, f"Police referral · case {reference}")
        c.drawRightString(w - 15 * mm, h - 12 * mm, utc_text(created))
        c.drawString(15 * mm, 10 * mm, f"Case {reference}")
        c.drawRightString(w - 15 * mm, 10 * mm, f"Page {c._pageNumber} of {total}")

    return numbered_canvas(decorate)
