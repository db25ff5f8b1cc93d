"""Link analysis (#13), on SQLite and PostgreSQL: entities recorded from report descriptions and
fetched pages by the real walk on loopback; two reports sharing a Telegram handle and a Bitcoin
address form one group; hubs are shown but not followed; who may look and export (analyst 403,
police and senior 200), every view and export audited; GraphML and CSV read back; retention
removes orphaned entities; and a graph of 100,000 entities listed page by page in bounded memory."""

from __future__ import annotations

import csv
import io
import os
import shutil
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import networkx as nx
import pytest
from sqlalchemy import delete, func, select

from meldpunt import links
from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock, SystemClock
from meldpunt.links import exports as ex
from meldpunt.links.graph import group_graph, groups, most_linked
from meldpunt.pipeline.intake import ReportIn, submit_report
from meldpunt.pipeline.worker import drain
from meldpunt.settings import Settings
from meldpunt.store.entities import Entity, EntityItem, EntityReport, link_entities
from meldpunt.store.reports import Item, Report
from meldpunt.web import create_app
from tests.helpers.browser import ARGS, CHROMIUM, need_browser, screenshot, staff_sign_in
from tests.helpers.fakeweb import Served
from tests.helpers.links import BTC, HANDLE, LinksWeb, bulk_world, seed_report, shared_world
from tests.helpers.pipeline import make_settings
from tests.helpers.workspace import Workspace, _workspace

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def sv(db_url: str) -> Iterator[Services]:
    services = Services(Settings.from_env({}, db=db_url), clock=ManualClock(NOW))
    yield services
    services.close()


def _entities(services: Services) -> dict[tuple[str, str], int]:
    with services.engine.connect() as conn:
        return {(k, v): int(i) for i, k, v in conn.execute(select(Entity.id, Entity.kind, Entity.value))}


# --- where entities come from ---------------------------------------------------------------


@pytest.fixture(scope="module")
def web() -> Iterator[tuple[Served, Served]]:
    w = LinksWeb()
    a = Served(w, "127.0.0.1")  # type: ignore[arg-type]
    b = Served(w, "127.0.0.2")  # type: ignore[arg-type]
    yield a, b
    a.close()
    b.close()


def test_the_walk_and_intake_record_entities_and_shared_ones_make_one_group(
    db_url: str, web: tuple[Served, Served], services_factory: Callable[[Settings], Services]
) -> None:
    a, b = web
    services = services_factory(make_settings(db_url))
    r1 = submit_report(services, ReportIn(urls=[a.url("/gallery")])).report_id
    r2 = submit_report(
        services,
        ReportIn(
            urls=[b.url("/plain")],
            description="Hij zit op telegram @Shared_Handle en wil betaald worden op 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
        ),
    ).report_id
    r3 = submit_report(
        services, ReportIn(urls=["http://10.0.0.1/private"], description="schrijf naar other@example.net")
    ).report_id
    drain(services)
    found = _entities(services)
    assert set(found) == {
        ("handle", HANDLE),
        ("crypto", BTC),
        ("domain", "shop.example.org"),
        ("url", "https://shop.example.org/buy?id=7"),
        ("phone", "+32470123456"),  # on the page without media: its entities are kept all the same
        ("email", "other@example.net"),
    }  # not "t.me/not_in_text": script is not text
    with services.engine.connect() as conn:
        by_report = {int(r) for r in conn.execute(select(EntityReport.report_id)).scalars()}
        by_item = {int(i) for i in conn.execute(select(EntityItem.item_id)).scalars()}
        assert by_report == {r2, r3} and len(by_item) == 2
        page = groups(conn)
    assert page.total == 2
    first, second = page.groups
    assert (first.reports, second.reports) == (2, 1)
    assert {v for _k, v in first.sample} >= {HANDLE, BTC}
    with services.engine.connect() as conn:
        g = group_graph(conn, f"e:{found[('handle', HANDLE)]}").graph
    assert {f"r:{r1}", f"r:{r2}"} <= set(g) and f"r:{r3}" not in g
    assert {"h:127.0.0.1", "h:127.0.0.2"} <= set(g)


def test_backfill_reads_old_descriptions_once(
    db_url: str, services_factory: Callable[[Settings], Services]
) -> None:
    services = services_factory(make_settings(db_url))
    rid, _ = seed_report(services.engine, NOW, "http://10.0.0.9/x", "paypal.me/OldCase")
    assert links.backfill(services) == 1 and links.backfill(services) == 1  # a unique job: once
    drain(services)
    assert ("payment", "paypal:oldcase") in _entities(services)
    with services.engine.connect() as conn:
        assert conn.execute(select(EntityReport.report_id)).scalars().all() == [rid]


# --- the graph ------------------------------------------------------------------------------


def test_groups_hubs_and_central_entities(sv: Services) -> None:
    ids = shared_world(sv.engine, NOW)
    ents = _entities(sv)
    with sv.engine.connect() as conn:
        page = groups(conn)
        assert [(g.reports, g.items, g.entities) for g in page.groups] == [(2, 2, 3), (1, 1, 1)]
        rows, total = most_linked(conn)
        assert total == 4 and {rows[0].value, rows[1].value} == {HANDLE, BTC} and rows[0].degree == 2
        g = group_graph(conn, f"r:{ids['r2']}")
    assert set(g.graph) >= {f"r:{ids['r1']}", f"i:{ids['i1']}", f"e:{ents[('handle', HANDLE)]}"}
    assert g.graph.nodes[f"e:{ents[('crypto', BTC)]}"]["label"] == BTC
    central = links.group_view(sv, "sam", f"r:{ids['r1']}").central
    assert {central[0][0], central[1][0]} == {f"e:{ents[('handle', HANDLE)]}", f"e:{ents[('crypto', BTC)]}"}
    # a domain found with both groups joins them ... unless it is common (a hub): shown, not followed
    with sv.engine.begin() as conn:
        link_entities(conn, [("domain", "cdn.example")], NOW, report_id=ids["r1"])
        link_entities(conn, [("domain", "cdn.example")], NOW, report_id=ids["r2"])
        link_entities(conn, [("domain", "cdn.example")], NOW, report_id=ids["r3"])
    with sv.engine.connect() as conn:
        assert groups(conn).total == 1
        assert groups(conn, hub=2).total == 2 and groups(conn, hub=2).hubs == 1
        hubbed = group_graph(conn, f"r:{ids['r1']}", hub=2)
    assert f"r:{ids['r3']}" not in hubbed.graph and hubbed.hubs == {
        f"e:{_entities(sv)[('domain', 'cdn.example')]}"
    }


def test_retention_removes_orphaned_entities(sv: Services) -> None:
    ids = shared_world(sv.engine, NOW)
    with sv.engine.begin() as conn:  # the retention rules delete reports; their links cascade
        conn.execute(delete(Report).where(Report.id.in_([ids["r2"], ids["r3"]])))
    assert ("email", "other@example.net") in _entities(sv)
    assert links.prune(sv) == 1
    left = _entities(sv)
    assert ("email", "other@example.net") not in left
    assert {("handle", HANDLE), ("crypto", BTC)} <= set(left)  # still on report 1's page
    with sv.engine.begin() as conn:
        conn.execute(delete(Item).where(Item.id == ids["i1"]))
        conn.execute(delete(Report).where(Report.id == ids["r1"]))
    assert links.prune(sv) == 3 and _entities(sv) == {} and links.prune(sv) == 0


# --- the workspace --------------------------------------------------------------------------


@pytest.fixture
def ws(db_url: str) -> Iterator[Workspace]:
    with ExitStack() as stack:
        yield _workspace(db_url, stack)


def _token(html: str) -> str:
    import re

    m = re.search(r'action="/links/export"[^>]*>\s*<input type="hidden" name="token" value="([^"]+)"', html)
    assert m, "no export form"
    return m.group(1)


def test_who_may_look_and_export_everything_audited(ws: Workspace) -> None:
    services: Services = ws.staff.app.state.ctx.services
    ids = shared_world(services.engine, services.clock.now())
    ents = _entities(services)
    handle = ents[("handle", HANDLE)]
    analyst = ws.user("ana", "analyst")
    for path in ("/links", "/links/entities", f"/links/groups/e:{handle}", f"/links/entities/{handle}"):
        assert analyst.get(path).status_code == 403
    assert analyst.post("/links/export", data={"format": "graphml"}).status_code == 403
    police = ws.user("pol", "police")
    senior = ws.user("sam", "senior")
    for client in (police, senior):
        listing = client.get("/links")
        assert listing.status_code == 200 and HANDLE in listing.text and 'href="/links"' in listing.text
        assert client.get("/links/entities?kind=crypto").status_code == 200
        group = client.get(f"/links/groups/e:{handle}")
        assert group.status_code == 200 and "<svg" in group.text and "<script" not in group.text
        detail = client.get(f"/links/entities/{handle}")
        assert detail.status_code == 200 and f"Report {ids['r2']}" in detail.text
    assert police.get("/links/groups/x:1").status_code == 404
    assert police.get("/links/groups/e:999999").status_code == 404
    assert police.get("/links/entities/abc").status_code == 404
    views = ws.audit("links.view")
    assert {a for a, _s, _d in views} == {"pol", "sam"}
    assert {s for _a, s, _d in views} >= {"links:groups", "links:entities", f"links:group:e:{handle}"}

    page = police.get(f"/links/groups/e:{handle}").text
    assert f">report {ids['r2']}</text>" in page and "<title>user handle: " in page
    # the picture in the page's words; the exports below keep the graph's own (English) labels
    dutch = police.get(f"/links/groups/e:{handle}", headers={"Accept-Language": "nl"}).text
    assert f">melding {ids['r2']}</text>" in dutch and "<title>gebruikersnaam: " in dutch
    assert f">report {ids['r2']}<" not in dutch
    r = police.post(
        "/links/export", data={"token": _token(page), "format": "graphml", "group": f"e:{handle}"}
    )
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    g = nx.read_graphml(io.BytesIO(r.content))
    assert g.nodes[f"e:{handle}"]["label"] == HANDLE and g.nodes[f"r:{ids['r2']}"]["type"] == "report"
    assert g.has_edge(f"e:{handle}", f"r:{ids['r2']}") and f"r:{ids['r3']}" not in g
    nodes = police.post(
        "/links/export", data={"token": _token(page), "format": "nodes", "group": f"e:{handle}"}
    )
    rows = list(csv.DictReader(io.StringIO(nodes.text)))
    assert {row["id"] for row in rows} == set(g)
    everything = police.post("/links/export", data={"token": _token(page), "format": "graphml"})
    whole = nx.read_graphml(io.BytesIO(everything.content))
    assert f"r:{ids['r3']}" in whole and whole.has_edge(f"e:{handle}", f"i:{ids['i1']}")
    edges = police.post("/links/export", data={"token": _token(page), "format": "edges"})
    assert (
        edges.text.startswith("source,target") and len(edges.text.splitlines()) == whole.number_of_edges() + 1
    )
    assert police.post("/links/export", data={"token": "forged", "format": "graphml"}).status_code == 400
    exports = ws.audit("links.export")
    assert [(s, d["format"]) for _a, s, d in exports] == [
        (f"links:e:{handle}", "graphml"),
        (f"links:e:{handle}", "nodes"),
        ("links:all", "graphml"),
        ("links:all", "edges"),
    ]


def test_pages_in_dutch_and_french(ws: Workspace) -> None:
    services: Services = ws.staff.app.state.ctx.services
    shared_world(services.engine, services.clock.now())
    senior = ws.user("sam", "senior")
    nl = senior.get("/links", headers={"Accept-Language": "nl"}).text
    fr = senior.get("/links", headers={"Accept-Language": "fr"}).text
    assert "Verbanden tussen meldingen" in nl and "Liens entre les signalements" in fr


# --- a graph of 100,000 entities ------------------------------------------------------------


@pytest.mark.slow
def test_a_graph_of_100000_entities_pages_in_bounded_memory(sqlite_db: str) -> None:
    """SQLite here (the suite's time); ``bench/links.py`` runs the same on PostgreSQL too."""
    sv = Services(Settings.from_env({}, db=sqlite_db), clock=ManualClock(NOW))
    try:
        started = time.perf_counter()
        reports = bulk_world(sv.engine, NOW, 100_000)
        built = time.perf_counter() - started
        with sv.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Entity)).scalar_one() == 100_000
            t0 = time.perf_counter()
            first = groups(conn, limit=25)
            t_groups = time.perf_counter() - t0
            t0 = time.perf_counter()
            rows, total = most_linked(conn, offset=50_000, limit=50)
            t_central = time.perf_counter() - t0
            tracemalloc.start()  # the same again, traced: peak memory (slower under the tracer)
            last = groups(conn, offset=12_475, limit=25)
            _cur, peak_groups = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            most_linked(conn, offset=50_000, limit=50)
            g = group_graph(conn, "e:1")
            _cur, peak_rest = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            lines = sum(1 for _ in ex.whole_edges_csv(sv.engine))
            _cur, peak_export = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    finally:
        sv.close()
    assert first.total == 12_500 and len(first.groups) == 25 and len(last.groups) == 25
    assert all((x.reports, x.items, x.entities) == (2, 2, 8) for x in first.groups + last.groups)
    assert first.groups[0].anchor == 1 and last.groups[-1].anchor == 99_993
    assert total == 100_000 and len(rows) == 50
    assert g.graph.number_of_nodes() == 14 and not g.truncated  # 2 reports, 2 items, 2 hosts, 8 entities
    assert lines == 1 + 112_500 + 12_500  # 9 entity links a group, and the hosts of items with entities
    print(
        f"\n100k entities, {reports} reports on SQLite: built in {built:.1f} s; groups page {t_groups:.2f} s "
        f"(traced peak {peak_groups / 2**20:.1f} MiB); most linked page {t_central:.2f} s; most linked and a "
        f"group traced peak {peak_rest / 2**20:.1f} MiB; whole edge CSV traced peak {peak_export / 2**20:.1f} MiB"
    )
    # bounded: arrays of 8 bytes a node slot and 16 an edge, one page of groups; not a Python graph
    assert max(peak_groups, peak_rest, peak_export) < 64 * 2**20


# --- in a real browser ----------------------------------------------------------------------


@pytest.mark.slow
def test_the_group_view_in_chromium_at_1280_and_390_px(sqlite_db: str, tmp_path: Path) -> None:
    """The group view on demo-like data: drawn, no sideways scrolling at 390 px, no JavaScript."""
    need_browser()
    import uvicorn
    from playwright.sync_api import sync_playwright

    from meldpunt.demo.run import DEMO_PASSWORD, demo_accounts
    from meldpunt.settings import WebSettings

    services = Services(Settings.from_env({}, db=sqlite_db, web=WebSettings(secret="s")), SystemClock())
    try:
        ids = shared_world(services.engine, services.clock.now())
        with services.engine.begin() as conn:
            link_entities(
                conn, [("phone", "+32470123456"), ("email", "seller@example.net")], NOW, report_id=ids["r2"]
            )
            link_entities(conn, [("iban", "NL91ABNA0417164300")], NOW, item_id=ids["i2"])
        handle = _entities(services)[("handle", HANDLE)]
        login = next(a for a in demo_accounts(services) if a.role == "senior")
        app = create_app(services, services.settings.web)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    context = browser.new_context(
                        java_script_enabled=False, viewport={"width": 1280, "height": 900}
                    )
                    page = context.new_page()
                    staff_sign_in(
                        page, base, login.name, DEMO_PASSWORD, login.code
                    )  # once: a second factor's code is accepted once
                    for width in (1280, 390):
                        page.set_viewport_size({"width": width, "height": 900})
                        page.goto(f"{base}/links/groups/e:{handle}")
                        screenshot(page, f"links-group-{width}")
                        assert page.locator("svg.links-graph circle").count() >= 4
                        assert page.evaluate("document.documentElement.scrollWidth") <= width
                        for path, name in (
                            ("/links", "groups"),
                            ("/links/entities", "entities"),
                            (f"/links/entities/{handle}", "entity"),
                        ):
                            page.goto(f"{base}{path}")
                            screenshot(page, f"links-{name}-{width}")
                            assert page.evaluate("document.documentElement.scrollWidth") <= width, path
                    context.close()
                finally:
                    browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    finally:
        services.close()
    assert shutil.which("true")  # nothing else to check: the pictures are looked at


def test_the_cli_backfills_and_prunes(sqlite_db: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    services = Services(Settings.from_env({}, db=sqlite_db), clock=ManualClock(NOW))
    try:
        seed_report(services.engine, NOW, "http://10.0.0.9/x", "paypal.me/OldCase")
        rid, _ = seed_report(services.engine, NOW, "http://10.0.0.9/y")
        with services.engine.begin() as conn:
            link_entities(conn, [("email", "gone@example.net")], NOW, report_id=rid)
            conn.execute(delete(Report).where(Report.id == rid))
    finally:
        services.close()
    env = {"MELDPUNT_DB": sqlite_db, "HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")}
    run = [sys.executable, "-m", "meldpunt.cli"]
    out = subprocess.run([*run, "links", "backfill"], env=env, capture_output=True, text=True, check=True)
    assert "1 report(s) queued" in out.stdout
    out = subprocess.run([*run, "links", "prune"], env=env, capture_output=True, text=True, check=True)
    assert "1 orphaned entities deleted" in out.stdout
