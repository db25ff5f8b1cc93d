"""The statistics (#13): every figure of ``act/figures.py`` cross-checked against SQL written here
independently (plain text SQL, other formulas for the week and the percentiles), on SQLite and
PostgreSQL; the page for seniors (403 for analysts), its CSV downloads, its audit; the annual
report's HTML and PDF (turned into pictures); an empty year says "no data". No media anywhere."""

from __future__ import annotations

import csv
import io
import itertools
import os
import re
import shutil
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from pypdf import PdfReader
from sqlalchemy import Connection, DateTime, bindparam, text

from meldpunt.act import charts, figures
from meldpunt.act.figures import Period, interpolate
from meldpunt.store.db import create_db_engine
from meldpunt.web.i18n import catalog_ids
from tests.helpers.accounts import PASSWORD
from tests.helpers.browser import ARGS, CHROMIUM, need_browser
from tests.helpers.cli import run
from tests.helpers.smtp import _free_port
from tests.helpers.staff import enrol
from tests.helpers.statistics import YEAR, Seeded, seed_statistics
from tests.helpers.workspace import Workspace, _workspace

START = datetime(YEAR, 1, 1, tzinfo=UTC)
END = datetime(YEAR + 1, 1, 1, tzinfo=UTC)


def q(conn: Connection, sql: str, **params: Any) -> list[Any]:
    """Plain SQL with the period's bounds bound as the database stores times."""
    stmt = text(sql)
    for name in ("start", "end"):
        if f":{name}" in sql:
            stmt = stmt.bindparams(bindparam(name, type_=DateTime(timezone=True)))
    return list(conn.execute(stmt, {"start": START, "end": END, **params}).all())


def week_sql(conn: Connection, column: str) -> str:
    """The Monday of ``column``'s week, by another formula than the module's."""
    if conn.dialect.name == "sqlite":
        return f"date({column}, '-' || ((CAST(strftime('%w', {column}) AS INTEGER) + 6) % 7) || ' days')"
    return f"(CAST({column} AT TIME ZONE 'UTC' AS DATE) - (EXTRACT(ISODOW FROM {column} AT TIME ZONE 'UTC')::int - 1))"


def spreads_sql(
    conn: Connection, group: str, value: str, source: str, where: str
) -> dict[str, tuple[int, float, float]]:
    """Per group: count, median, 90th percentile — ranks from window functions, interpolated here
    (and on PostgreSQL also checked against its own ``percentile_cont``)."""
    rows = q(
        conn,
        f"SELECT {group} AS g, {value} AS v FROM {source} WHERE {where} AND {value} IS NOT NULL "
        f"ORDER BY g, v",
    )
    by: dict[str, list[float]] = defaultdict(list)
    for g, v in rows:
        by[str(g or "")].append(float(v))
    out = {g: (len(vs), interpolate(vs, 0.5), interpolate(vs, 0.9)) for g, vs in by.items()}
    if conn.dialect.name == "postgresql":
        for g, med, p90 in q(
            conn,
            f"SELECT {group}, percentile_cont(0.5) WITHIN GROUP (ORDER BY {value}), "
            f"percentile_cont(0.9) WITHIN GROUP (ORDER BY {value}) FROM {source} "
            f"WHERE {where} AND {value} IS NOT NULL GROUP BY 1",
        ):
            _n, m, p = out[str(g or "")]
            assert (m, p) == pytest.approx((med, p90))
    return out


REMOVED = (
    "takedowns t LEFT JOIN contacts c ON c.id = t.contact_id LEFT JOIN locations l ON l.id = t.location_id"
)
REMOVED_WHERE = "t.state = 'removed' AND t.removed_at >= :start AND t.removed_at < :end"


@pytest.fixture
def seeded(db_url: str) -> Iterator[tuple[Any, Seeded]]:
    engine = create_db_engine(db_url)
    try:
        yield engine, seed_statistics(engine)
    finally:
        engine.dispose()


def test_every_figure_matches_sql_written_independently(seeded: tuple[Any, Seeded]) -> None:
    engine, _world = seeded
    f = figures.compute(engine, Period.year(YEAR))
    assert not f.empty
    with engine.connect() as conn:
        # intake per week and channel
        channel = (
            "CASE WHEN r.source = 'public' THEN 'public' WHEN r.source LIKE 'api:%' THEN 'api' "
            "WHEN r.source LIKE 'partner:%' THEN 'partner' ELSE 'other' END"
        )
        reports = {
            (str(w)[:10], c): n
            for w, c, n in q(
                conn,
                f"SELECT {week_sql(conn, 'r.created_at')} AS w, {channel} AS c, COUNT(*) FROM reports r "
                "WHERE r.created_at >= :start AND r.created_at < :end GROUP BY 1, 2",
            )
        }
        items = {
            (str(w)[:10], c): n
            for w, c, n in q(
                conn,
                f"SELECT {week_sql(conn, 'i.created_at')} AS w, {channel} AS c, COUNT(*) FROM items i "
                "JOIN reports r ON r.id = i.report_id WHERE i.created_at >= :start AND i.created_at < :end "
                "GROUP BY 1, 2",
            )
        }
        ours_reports = {(w.monday.isoformat(), c): n for w in f.weeks for c, n in w.reports.items() if n}
        ours_items = {(w.monday.isoformat(), c): n for w in f.weeks for c, n in w.items.items() if n}
        assert ours_reports == reports and ours_items == items
        assert f.items == {"public": 12, "api": 3, "partner": 1, "other": 0}  # by hand, too
        assert len(f.weeks) == 53 and f.weeks[0].monday == date(2025, 12, 29)  # ISO 2026-W01

        # decisions
        illegal = (
            "(EXISTS (SELECT 1 FROM takedowns t WHERE t.item_id = i.id) OR EXISTS (SELECT 1 FROM "
            "triage_status s WHERE s.item_id = i.id AND s.illegal = :yes))"
        )
        assessed_where = (
            "i.created_at >= :start AND i.created_at < :end AND i.state IN ('known', 'classified')"
        )
        [(assessed,)] = q(conn, f"SELECT COUNT(*) FROM items i WHERE {assessed_where}")
        [(ill,)] = q(conn, f"SELECT COUNT(*) FROM items i WHERE {assessed_where} AND {illegal}", yes=True)
        [(by_hash,)] = q(
            conn,
            f"SELECT COUNT(*) FROM items i WHERE {assessed_where} AND {illegal} AND i.state = 'known'",
            yes=True,
        )
        seen = [
            int(s.split(":")[1])
            for (s,) in q(
                conn, "SELECT DISTINCT subject FROM audit_log WHERE action IN ('item.view', 'item.reveal')"
            )
        ]
        known = [
            i for (i,) in q(conn, f"SELECT i.id FROM items i WHERE {assessed_where} AND i.state = 'known'")
        ]
        assert (f.assessed, f.illegal, f.illegal_by_hash_list, f.illegal_by_analysts) == (
            assessed,
            ill,
            by_hash,
            ill - by_hash,
        )
        assert f.settled_unseen == len([i for i in known if i not in seen])
        assert (f.assessed, f.illegal, f.settled_unseen) == (13, 11, 5)

        # hosting countries: the confirmed-illegal items, by their takedown's location
        countries = dict(
            q(
                conn,
                "SELECT COALESCE(l.country, ''), COUNT(*) FROM items i LEFT JOIN takedowns t ON t.item_id = i.id "
                f"LEFT JOIN locations l ON l.id = t.location_id WHERE {assessed_where} AND {illegal} "
                "GROUP BY COALESCE(l.country, '')",
                yes=True,
            )
        )
        assert dict(f.countries) == countries and sum(countries.values()) == f.illegal

        # time to removal (hours), overall, from the notice, by provider and by country
        overall = spreads_sql(conn, "'all'", "t.minutes_from_report", REMOVED, REMOVED_WHERE)["all"]
        assert (f.removal_from_report.count, f.removal_from_report.median, f.removal_from_report.p90) == (
            pytest.approx((overall[0], overall[1] / 60, overall[2] / 60))
        )
        notice = spreads_sql(conn, "'all'", "t.minutes_from_notice", REMOVED, REMOVED_WHERE)["all"]
        assert (f.removal_from_notice.count, f.removal_from_notice.median) == pytest.approx(
            (notice[0], notice[1] / 60)
        )
        assert f.removal_from_report.count == 6 and f.removal_from_report.median == pytest.approx(1150 / 60)
        provider = "COALESCE(NULLIF(c.name, ''), NULLIF(c.match, ''), NULLIF(l.provider, ''), '')"
        for ours, group in (
            (f.removal_by_provider, provider),
            (f.removal_by_country, "UPPER(COALESCE(l.country, ''))"),
        ):
            theirs = spreads_sql(conn, group, "t.minutes_from_report", REMOVED, REMOVED_WHERE)
            assert {s.name: (s.count, s.median, s.p90) for s in ours} == {
                g: pytest.approx((n, m / 60, p / 60)) for g, (n, m, p) in theirs.items()
            }
        assert {s.name for s in f.removal_by_provider} == {"Hosting NL", "cloud-us", ""}
        minutes = [
            int(m) for (m,) in q(conn, f"SELECT t.minutes_from_report FROM {REMOVED} WHERE {REMOVED_WHERE}")
        ]
        bounds = [0, 60, 24 * 60, 72 * 60, 168 * 60, 10**12]
        assert [n for _, n in f.removal_buckets] == [
            sum(1 for m in minutes if lo <= m < hi) for lo, hi in itertools.pairwise(bounds)
        ]

        # notices
        [(sent,)] = q(conn, "SELECT COUNT(*) FROM notices WHERE sent_at >= :start AND sent_at < :end")
        open_at_end = "sent_at < :end AND (closed_at IS NULL OR closed_at >= :end)"
        [(outstanding,)] = q(conn, f"SELECT COUNT(*) FROM notices WHERE {open_at_end}")
        [(overdue,)] = q(conn, f"SELECT COUNT(*) FROM notices WHERE {open_at_end} AND escalated_at < :end")
        assert (
            (f.notices_sent, f.notices_outstanding, f.notices_overdue)
            == (sent, outstanding, overdue)
            == (3, 2, 1)
        )

        # forwards by partner and outcome
        forwards = q(
            conn,
            "SELECT partner, CASE WHEN state = 'failed' THEN 'failed' WHEN last_status = '' THEN 'no_answer' "
            "ELSE last_status END AS o, COUNT(*) FROM forwards_out WHERE created_at >= :start AND created_at < :end "
            "GROUP BY partner, o",
        )
        assert sorted(f.forwards) == sorted((p, o, n) for p, o, n in forwards)
        assert ("hotline-fr", "removed", 1) in f.forwards and ("hotline-fr", "failed", 1) in f.forwards

        # urgent cases and time to acknowledgement (minutes)
        [(urgent,)] = q(
            conn,
            "SELECT COUNT(*) FROM reports WHERE urgent = :yes AND created_at >= :start AND created_at < :end",
            yes=True,
        )
        [(raised, acked)] = q(
            conn,
            "SELECT COUNT(*), SUM(CASE WHEN acknowledged_at < :end THEN 1 ELSE 0 END) FROM alerts "
            "WHERE raised_at >= :start AND raised_at < :end",
        )
        ack = spreads_sql(
            conn, "'all'", "a.ack_seconds", "alerts a", "a.raised_at >= :start AND a.raised_at < :end"
        )["all"]
        assert (
            (f.urgent_reports, f.alerts_raised, f.alerts_acknowledged) == (urgent, raised, acked) == (1, 3, 2)
        )
        assert (f.acknowledgement.median, f.acknowledgement.p90) == pytest.approx((ack[1] / 60, ack[2] / 60))
        assert f.acknowledgement.median == pytest.approx(30.0)

        # viewing time: per week, people and hours (none where fewer than three people viewed)
        viewing = {
            str(w)[:10]: (s, p)
            for w, s, p in q(
                conn,
                f"SELECT {week_sql(conn, 'v.day') if conn.dialect.name == 'sqlite' else '(v.day - (EXTRACT(ISODOW FROM v.day)::int - 1))'} AS w, "
                'SUM(v.seconds), COUNT(DISTINCT v."user") FROM wellness_viewing v '
                "WHERE v.day >= :first AND v.day <= :last GROUP BY 1",
                first=date(YEAR, 1, 1),
                last=date(YEAR, 12, 31),
            )
        }
        for v in f.viewing:
            s, p = viewing.get(v.monday.isoformat(), (0, 0))
            assert v.people == p
            assert v.hours == (None if 0 < p < figures.VIEWING_MIN_PEOPLE else pytest.approx(s / 3600))
        assert f.viewing_people == 4 and f.viewing_hours == pytest.approx((1800 * 10 + 5400) / 3600)
        assert [v.people for v in f.viewing if v.people] == [4, 1]


def test_every_figure_downloads_as_csv_that_parses(seeded: tuple[Any, Seeded]) -> None:
    engine, _ = seeded
    f = figures.compute(engine, Period.year(YEAR))
    assert tuple(f.tables) == figures.TABLE_KEYS
    for key, table in f.tables.items():
        rows = list(csv.reader(io.StringIO(table.csv())))
        assert tuple(rows[0]) == table.columns and len(rows) == len(table.rows) + 1, key
    decisions = dict(csv.reader(io.StringIO(f.tables["decisions"].csv())))
    assert decisions["share_confirmed_illegal"] == f"{11 / 13:.2f}"


def test_a_period_is_checked() -> None:
    with pytest.raises(ValueError, match="before its first"):
        Period.days(date(2026, 2, 1), date(2026, 1, 1))
    with pytest.raises(ValueError, match="no such year"):
        Period.year(12)
    with pytest.raises(ValueError, match="time zone"):
        Period(datetime(2026, 1, 1), datetime(2026, 2, 1))
    assert Period.days(date(2026, 1, 1), date(2026, 1, 1)).end == datetime(2026, 1, 2, tzinfo=UTC)


def test_an_empty_year_has_no_data_and_its_charts_still_draw(db_url: str) -> None:
    engine = create_db_engine(db_url)
    try:
        f = figures.compute(engine, Period.year(2031))
    finally:
        engine.dispose()
    assert f.empty and f.removal_from_report.median is None
    drawn = charts.charts(f, lambda m, **kw: m.format(**kw))
    assert [c.key for c in drawn][:2] == ["reports", "items"]
    for c in drawn:
        svg = c.svg()
        assert svg.startswith("<svg") and f'id="chart-{c.key}-title"' in svg and "<desc" in svg


def test_percentiles_interpolate_between_ranks() -> None:
    assert interpolate([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert interpolate([10.0], 0.9) == 10.0
    assert interpolate([0.0, 10.0], 0.9) == pytest.approx(9.0)


@pytest.fixture
def ws(db_url: str) -> Iterator[Workspace]:
    with ExitStack() as stack:
        yield _workspace(db_url, stack)


PERIOD = f"from={YEAR}-01-01&to={YEAR}-12-31"


def test_the_page_shows_seniors_every_figure_as_charts_and_csv_and_refuses_analysts(ws: Workspace) -> None:
    seed_statistics(ws.world.engine)
    senior = ws.user("sen", "senior")
    analyst = ws.user("ana2", "analyst")
    page = senior.get(f"/statistics?{PERIOD}")
    assert page.status_code == 200, page.text[:500]
    html = page.text
    assert re.search(r'id="key-items">16<', html) and re.search(r'id="key-illegal">11 \(84\.6%\)<', html)
    assert html.count('<svg class="chart" role="img"') == 10 and " style=" not in html.split("<svg", 1)[1]
    assert 'id="chart-world-title">Hosting countries on the map<' in html and "Netherlands: 3" in html
    assert "http://" not in html.replace("http://www.w3.org", "")  # nothing fetched from elsewhere
    assert 'href="/statistics"' in html  # the navigation
    for key in figures.TABLE_KEYS:
        got = senior.get(f"/statistics/{key}.csv?{PERIOD}")
        assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv"), key
        assert "attachment" in got.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(got.text)))
        assert len(rows) > 1, key
    countries = dict(
        list(csv.reader(io.StringIO(senior.get(f"/statistics/countries.csv?{PERIOD}").text)))[1:]
    )
    assert countries == {"NL": "3", "US": "2", "": "4", "DE": "1", "FR": "1"}
    assert analyst.get(f"/statistics?{PERIOD}").status_code == 403
    assert analyst.get(f"/statistics/intake.csv?{PERIOD}").status_code == 403
    assert senior.get("/statistics/nothing.csv").status_code == 404
    bad = senior.get("/statistics?from=2026-13-01")
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.text
    assert senior.get("/statistics?from=2026-05-01&to=2026-01-01").status_code == 422
    viewed = ws.audit("statistics.view")
    assert viewed[0] == ("sen", "statistics", {"from": "2026-01-01", "to": "2026-12-31"})
    downloads = ws.audit("statistics.download")
    assert len(downloads) == len(figures.TABLE_KEYS) + 1 and downloads[0][1] == "statistics:intake"
    empty = senior.get("/statistics?from=2031-01-01&to=2031-12-31")
    assert empty.status_code == 200 and 'id="no-data"' in empty.text


#: 1234 as each language writes it (CLDR): a comma, a full stop, a narrow no-break space
THOUSANDS = {"en": "1,234", "nl": "1.234", "fr": "1\u202f234"}
NETHERLANDS = {"en": "Netherlands", "nl": "Nederland", "fr": "Pays-Bas"}


def _thousands() -> figures.Figures:
    """A year's figures made up, with counts over a thousand (seeding 1,234 rows would be slow)."""
    period = Period.year(YEAR)
    per_channel = {"public": 1234, "api": 0, "partner": 0, "other": 0}
    f = figures.Figures(
        period=period,
        weeks=[figures.Week(period.weeks()[9], dict(per_channel), dict(per_channel))],
        reports=dict(per_channel),
        items=dict(per_channel),
        assessed=2000,
        illegal=1234,
        illegal_by_hash_list=1234,
        illegal_by_analysts=0,
        settled_unseen=0,
        countries=[("NL", 1234)],
        removal_from_report=figures.Spread(1234, 1234.5, 2000.0),
        removal_from_notice=figures.Spread(0, None, None),
        removal_buckets=[(k, 1234 if k == "over_7d" else 0) for k, _ in figures.BUCKETS],
        removal_by_provider=[figures.GroupSpread("example-host", 1234, 10.0, 20.0)],
        removal_by_country=[],
        notices_sent=1234,
        notices_outstanding=0,
        notices_overdue=0,
        forwards=[("Partner", "received", 1234)],
        urgent_reports=0,
        alerts_raised=0,
        alerts_acknowledged=0,
        acknowledgement=figures.Spread(0, None, None),
        viewing=[],
        viewing_hours=None,
        viewing_people=0,
    )
    f.tables.update(figures.tables(f))
    return f


def test_counts_are_written_as_the_page_language_writes_them_and_the_csv_stays_raw(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,234 in English, 1.234 in Dutch, 1 234 in French: the key figures, the tables, the charts'
    captions, their bar labels and the map's tooltips; the CSV downloads keep 1234 for a spreadsheet."""
    made_up = _thousands()
    monkeypatch.setattr("meldpunt.web.statistics.compute", lambda _engine, _period: made_up)
    senior = ws.user("sen", "senior")
    for lang, n in THOUSANDS.items():
        senior.headers["Accept-Language"] = lang
        html = senior.get(f"/statistics?{PERIOD}").text
        assert f'id="key-items">{n}<' in html, lang
        assert f"<td>{n}</td>" in html, lang  # the channel, country and removal tables
        share = {"en": "61.7%", "nl": "61,7%", "fr": "61,7\u00a0%"}[lang]
        assert f'id="key-illegal">{n} ({share})<' in html, lang
        hours = {"en": "1,234.5", "nl": "1.234,5", "fr": "1\u202f234,5"}[lang]
        assert f"<td>{hours}</td>" in html, lang  # the median hours
        captions = re.findall(r"<figcaption[^>]*>(.*?)</figcaption>", html, re.S)
        assert sum(n in c for c in captions) >= 6 and not any("1234" in c for c in captions), lang
        decisions = html.split('id="figure-decisions"', 1)[1].split("</svg>", 1)[0]
        assert f"> {n}</text>" in decisions, lang  # on the bar
        assert f">{n.replace('234', '000')}</text>" in decisions, lang  # the axis' tick
        assert f"{NETHERLANDS[lang]}: {n}</title>" in html, lang  # the map's tooltip
        assert "1234" not in re.sub(r"<svg.*?</svg>", "", html, flags=re.S), lang
    rows = list(csv.reader(io.StringIO(senior.get(f"/statistics/intake.csv?{PERIOD}").text)))
    assert rows[1][3:] == ["1234", "1234"]
    assert (
        dict(csv.reader(io.StringIO(senior.get(f"/statistics/countries.csv?{PERIOD}").text)))["NL"] == "1234"
    )


def test_the_annual_report_writes_counts_as_english_does(tmp_path: Path) -> None:
    """The report is English: 1,234 in its key figures, its HTML tables and its PDF's tables."""
    from meldpunt.act import annual

    f = _thousands()
    keys = dict(annual.key_figures(f))
    assert keys["Reports received"] == "1,234" and keys["Confirmed illegal"] == "1,234 (61.7%)"
    assert keys["Median time to removal (from the report)"] == "1,234.5 h"
    now = datetime(YEAR + 1, 1, 2, tzinfo=UTC)
    html = annual._html(f, YEAR, "Example hotline", now, {})
    assert "<td>1,234</td>" in html and "1234" not in html
    words = " ".join(
        page.extract_text()
        for page in PdfReader(io.BytesIO(annual._pdf(f, YEAR, "Example hotline", now, {}))).pages
    )
    assert "1,234" in words and "1,234.5" in words and "1234" not in words
    assert charts.charts(f, annual.english, "en")[0].desc.startswith("1,234 in all")


#: copies of the pictures for a person to look at, when ``MELDPUNT_SCREENSHOTS`` names a folder
SHOTS = Path(os.environ["MELDPUNT_SCREENSHOTS"]) if os.environ.get("MELDPUNT_SCREENSHOTS") else None


def _pictures(pdf: Path, prefix: str) -> list[Path]:
    """The PDF's pages as PNG (pdftoppm), copied where a person looks at them when that folder exists."""
    if shutil.which("pdftoppm") is None:
        if os.environ.get("MELDPUNT_REQUIRE_BROWSER") == "1":  # scripts/test.sh installs poppler-utils
            pytest.fail("pdftoppm (poppler-utils) is not installed")
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    subprocess.run(
        ["pdftoppm", "-r", "40", "-png", str(pdf), str(pdf.with_suffix(""))], check=True, timeout=120
    )
    pages = sorted(pdf.parent.glob(pdf.stem + "-*.png"))
    if SHOTS is not None and SHOTS.is_dir():
        for page in pages:
            shutil.copy(page, SHOTS / f"{prefix}-{page.name}")
    return pages


@pytest.mark.slow
def test_the_annual_report_is_one_html_file_and_a_pdf_that_turn_into_pictures(
    seeded: tuple[Any, Seeded], db_url: str, tmp_path: Path
) -> None:
    code, _, err = run("--db", db_url, "report", "annual", "--year", str(YEAR), "--out", str(tmp_path))
    assert code == 0, err
    html = (tmp_path / f"annual-report-{YEAR}.html").read_text()
    pdf = tmp_path / f"annual-report-{YEAR}.pdf"
    assert f"Annual report {YEAR}" in html and html.count('<svg class="chart"') == 10
    # self-contained: nothing to fetch (the SVG namespaces are names, not links)
    assert not re.search(r'(src|href)="(https?:)?//', html) and "<link" not in html and "<script" not in html
    assert "Confirmed illegal" in html and "Method." in html and "no-data" not in html
    pages = _pictures(pdf, "annual")
    assert len(pages) >= 4
    words = PdfReader(str(pdf)).pages[1].extract_text()
    assert "Key figures" in words and "Confirmed illegal" in words
    with create_db_engine(db_url).connect() as conn:
        actions = [
            a for (a,) in conn.execute(text("SELECT action FROM audit_log WHERE action = 'report.annual'"))
        ]
    assert actions == ["report.annual"]


def test_an_empty_year_makes_a_report_that_says_no_data(db_url: str, tmp_path: Path) -> None:
    code, _, err = run("--db", db_url, "report", "annual", "--year", "2031", "--out", str(tmp_path))
    assert code == 0 and "no data for 2031" in err
    html = (tmp_path / "annual-report-2031.html").read_text()
    assert 'id="no-data"' in html and "No data for 2031" in html
    words = PdfReader(str(tmp_path / "annual-report-2031.pdf")).pages[1].extract_text()
    assert "No data for 2031" in words
    assert run("--db", db_url, "report", "annual", "--year", "12", "--out", str(tmp_path))[0] == 2


#: (language, Accept-Language) the page is looked at in, each at a desk's and a phone's width
LOOKS = (("nl", "nl-BE,nl;q=0.9"), ("fr", "fr-BE,fr;q=0.9"), ("en", "en"))
WIDTHS = (1280, 390)


@pytest.mark.slow
def test_the_charts_in_a_real_browser_in_three_languages_at_a_desk_and_on_a_phone(sqlite_db: str) -> None:
    """Debian chromium without JavaScript: every chart drawn (a visible SVG with its title), the
    page no wider than the screen, in the page's language; screenshots kept for a person to look at."""
    need_browser()
    from playwright.sync_api import sync_playwright

    with ExitStack() as stack:
        ws = _workspace(sqlite_db, stack)
        seed_statistics(ws.world.engine)
        ws.staff.accounts.create_user("sara", "senior", PASSWORD)
        client = ws.staff.client()
        enrol(ws.staff, client, "sara")
        cookie = client.cookies.get("mp_staff")
        assert cookie
        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(ws.staff.app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        stack.callback(thread.join, 10)
        stack.callback(setattr, server, "should_exit", True)
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        problems: list[str] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                for width in WIDTHS:
                    context = browser.new_context(
                        java_script_enabled=False, viewport={"width": width, "height": 900}
                    )
                    context.add_cookies([{"name": "mp_staff", "value": cookie, "url": base}])
                    page = context.new_page()
                    for lang, accept in LOOKS:
                        page.set_extra_http_headers({"Accept-Language": accept})
                        response = page.goto(f"{base}/statistics?{PERIOD}")
                        assert response is not None and response.status == 200
                        if page.get_attribute("html", "lang") != lang:
                            problems.append(f"{lang} {width}: not in {lang}")
                        wide = int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))
                        if wide > 0:
                            problems.append(f"{lang} {width}: {wide} px too wide")
                        boxes = [c.bounding_box() for c in page.locator("svg.chart").all()]
                        if len(boxes) != 10 or any(
                            b is None or b["width"] < 0.8 * min(width, 960) - 60 for b in boxes
                        ):
                            problems.append(
                                f"{lang} {width}: charts not drawn to the column's width: {boxes}"
                            )
                        if lang != "en" and (left := _english_left(lang, page.inner_text("main"))):
                            problems.append(f"{lang} {width}: English left: {left}")
                        if SHOTS is not None and SHOTS.is_dir():
                            page.screenshot(path=str(SHOTS / f"page-{lang}-{width}.png"), full_page=True)
                            page.locator("#figure-world").screenshot(
                                path=str(SHOTS / f"world-{lang}-{width}.png")
                            )
                    context.close()
            finally:
                browser.close()
        assert not problems, "\n".join(problems)


def _english_left(lang: str, text: str) -> list[str]:
    """English sentences of the catalogue still on a page in another language."""
    return [
        msgid
        for msgid, msgstr in catalog_ids(lang).items()
        if msgstr and " " in msgid and "{" not in msgid and len(msgid) >= 12
        if msgid in text and msgid not in msgstr
    ]
