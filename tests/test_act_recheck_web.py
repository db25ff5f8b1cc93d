"""The removals page (#10 part "recheck"): removed items with their time to removal from the notice
and from the report, per provider the count and the median, as a table and a server-drawn chart;
for ``actions.view`` only, in the staff member's language, without JavaScript. Also the reporter's
status rule: "removed" once every illegal item is."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import pytest

from meldpunt.act.removals import removals
from meldpunt.domain.acting import TakedownState
from meldpunt.domain.reports import ItemState, public_status
from meldpunt.web.act_recheck import chart
from tests.helpers.acting import seed_contact, seed_item, seed_takedown
from tests.helpers.workspace import Workspace, _workspace

NOW = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)


@pytest.fixture
def ws(db_url: str) -> Iterator[Workspace]:
    with ExitStack() as stack:
        yield _workspace(db_url, stack)


def removed(ws: Workspace, url: str, contact: int | None, from_notice: int | None, from_report: int) -> int:
    engine = ws.world.engine
    item_id, _ = seed_item(engine, url, now=NOW)
    first_miss = NOW + timedelta(minutes=from_report)
    return seed_takedown(
        engine,
        item_id,
        now=NOW,
        state=TakedownState.REMOVED,
        contact_id=contact,
        removed_at=first_miss,
        minutes_from_notice=from_notice,
        minutes_from_report=from_report,
        removal_reason="404: HTTP 404",
        first_notice_at=None if from_notice is None else first_miss - timedelta(minutes=from_notice),
    )


def seed(ws: Workspace) -> None:
    engine = ws.world.engine
    fast = seed_contact(engine, now=NOW, match="fast hosting", name="Fast Hosting")
    slow = seed_contact(
        engine, now=NOW, match="slow hosting", name="Slow Hosting", address="abuse@slow.example"
    )
    removed(ws, "https://a.example/1", fast, 30, 90)
    removed(ws, "https://a.example/2", fast, 50, 110)
    removed(ws, "https://a.example/3", fast, 70, 130)
    removed(ws, "https://b.example/1", slow, 3 * 1440, 3 * 1440 + 60)
    item_id, _ = seed_item(engine, "https://b.example/2", now=NOW)
    seed_takedown(engine, item_id, now=NOW, state=TakedownState.NOTICED, contact_id=slow)


def test_the_figures_per_provider(ws: Workspace) -> None:
    seed(ws)
    figures = removals(ws.world.engine)
    assert figures.removed == 4 and figures.online == 1
    by = {p.provider: p for p in figures.providers}
    assert by["Fast Hosting"].removed == 3 and by["Fast Hosting"].median_from_notice == 50
    assert by["Fast Hosting"].median_from_report == 110 and by["Fast Hosting"].online == 0
    assert by["Slow Hosting"].removed == 1 and by["Slow Hosting"].online == 1
    assert [p.provider for p in figures.providers] == ["Slow Hosting", "Fast Hosting"]  # slowest first
    bars = chart(figures.providers)["bars"]
    assert bars[0]["notice"] > bars[1]["notice"] >= 1


def test_the_removals_page_for_those_who_may_see_actions(ws: Workspace) -> None:
    seed(ws)
    analyst = ws.user("ana", "analyst")
    page = analyst.get("/act/removals")
    assert page.status_code == 200
    html = page.text
    assert "<script" not in html
    assert 'href="/act/removals"' in html and 'aria-current="page"' in html  # in the navigation
    assert "Fast Hosting" in html and "Slow Hosting" in html and "https://a.example/2" in html
    assert re.search(r"<svg[^>]*viewBox", html) and html.count("<rect") >= 4  # two bars a provider
    assert "50 min" in html and "1 h 50 min" in html and "3 d 0 h" in html
    assert "not found (404)" in html
    analyst.headers["Accept-Language"] = "nl"
    nl = analyst.get("/act/removals").text
    assert "Verwijderingen" in nl and "niet gevonden (404)" in nl and "vanaf de melding" in nl
    analyst.headers["Accept-Language"] = "fr"
    assert "Délai médian de retrait par hébergeur" in analyst.get("/act/removals").text


def test_the_removals_page_is_refused_without_the_permission(ws: Workspace) -> None:
    police = ws.user("pol", "police")
    assert police.get("/act/removals").status_code == 403
    assert 'href="/act/removals"' not in police.get("/police/urgent").text


def test_an_empty_removals_page(ws: Workspace) -> None:
    page = ws.user("sen", "senior").get("/act/removals")
    assert page.status_code == 200 and "No item has been removed yet." in page.text


def test_the_reporters_status_says_removed_once_every_illegal_item_is() -> None:
    known, classified, fetched = ItemState.KNOWN, ItemState.CLASSIFIED, ItemState.FETCHED
    assert public_status([(known, True, True)]) == "removed"
    assert public_status([(known, True, True), (classified, True, False)]) == "action_taken"
    assert public_status([(known, True, True), (classified, False, False)]) == "removed"
    assert public_status([(known, True)]) == "action_taken"  # no takedown part known: as before
    assert public_status([(known, True, True), (fetched, False, False)]) == "assessing"
