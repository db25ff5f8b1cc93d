"""#11's pages probed from outside (SQLite and PostgreSQL): each role posts to the routes of the
others (403), with no token or a forged one (400, nothing done), and ids no database holds — a
number beyond 64 bits answered 500 from the referral and CyberTipline routes (the database
refused the integer), now 404."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from meldpunt.domain.acting import TakedownState
from meldpunt.domain.reports import ItemState
from tests.helpers.acting import seed_item, seed_location, seed_takedown
from tests.helpers.referral import seed_classified
from tests.helpers.workspace import Workspace, _workspace

HUGE = "99999999999999999999999"


@pytest.fixture
def ws(db_url: str) -> Iterator[Workspace]:
    with ExitStack() as stack:
        yield _workspace(db_url, stack)


def _token(html: str) -> str:
    m = re.search(r'name="token" value="([^"]+)"', html)
    assert m
    return m.group(1)


def test_each_role_is_refused_the_others_posts(ws: Workspace) -> None:
    analyst, police = ws.user("ana", "analyst"), ws.user("pol", "police")
    for who in (analyst, police):
        assert who.get("/act/forwards").status_code == 403
        for path in ("/act/forwards/1/noted", "/act/forwards/1/retry", "/items/1/cybertip.xml"):
            assert who.post(path, data={"token": "x"}).status_code == 403, path
        assert who.post("/referrals", data={"token": "x", "item": "1"}).status_code == 403
        assert who.post("/items/1/referral", data={"token": "x"}).status_code == 403
    assert analyst.get("/referrals").status_code == 403
    assert analyst.post("/referrals/1/download", data={"token": "x"}).status_code == 403
    assert ws.audit("referral.download") == [] and ws.audit("referral.create") == []


def _due(ws: Workspace) -> int:
    """An item due for a police referral (so the list page has its form and token)."""
    services = ws.staff.app.state.ctx.services
    now = services.clock.now()
    item_id, _ = seed_item(ws.world.engine, "https://files.example/due/", now=now, state=ItemState.CLASSIFIED)
    seed_classified(ws.world.engine, item_id, now=now, seed="due")
    loc = seed_location(ws.world.engine, item_id, now=now, country="NL", provider="Example Hosting")
    seed_takedown(
        ws.world.engine, item_id, now=now, state=TakedownState.NOTICED, location_id=loc, police="due"
    )
    return int(item_id)


def test_no_token_forged_tokens_and_ids_beyond_64_bits(ws: Workspace) -> None:
    _due(ws)
    senior = ws.user("sam", "senior")
    tok = _token(senior.get("/referrals").text)
    for path in (
        "/act/forwards/1/noted",
        "/act/forwards/1/retry",
        "/referrals/1/download",
        "/items/1/referral",
    ):
        assert senior.post(path, data={}).status_code == 400, path
        assert senior.post(path, data={"token": "forged"}).status_code == 400, path
    assert senior.post("/items/1/cybertip.xml", data={}).status_code in (400, 403)
    for path in (f"/act/forwards/{HUGE}/noted", f"/referrals/{HUGE}/download"):
        assert senior.post(path, data={"token": tok}).status_code == 404, path
    for path in (f"/items/{HUGE}/referral", f"/items/{HUGE}/cybertip.xml"):
        assert senior.post(path, data={"token": tok}).status_code in (400, 404), path
    assert senior.post("/referrals", data={"token": tok, "item": HUGE}).status_code == 400
    assert ws.audit("referral.create") == [] and ws.audit("referral.download") == []
