"""The seniors' page of forwards waiting for them (#11 part "forward"), in-process (httpx): listed
with the reason in the browser's language, linked from ``/act/attention``, "noted" and "send it
again" as plain forms with tokens, audited; analysts may not open it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from sqlalchemy import insert

from meldpunt.act import forwarding
from meldpunt.bootstrap import Services
from meldpunt.domain.acting import TakedownState
from meldpunt.store.forwarding import ForwardOut
from tests.helpers.acting import seed_item, seed_takedown
from tests.helpers.staff import token
from tests.helpers.webclient import WebClient
from tests.helpers.workspace import Workspace, _workspace


@pytest.fixture
def ws(db_url: str) -> Iterator[Workspace]:
    with ExitStack() as stack:
        yield _workspace(db_url, stack)


def _services(ws: Workspace) -> Services:
    services: Services = ws.staff.app.state.ctx.services
    return services


def _waiting(services: Services, attention: str, state: str = "sent") -> tuple[int, int]:
    """An item forwarded to nl-hotline whose forward waits for a senior: (item id, forward id)."""
    now = services.clock.now()
    item_id, _ = seed_item(services.engine, f"https://nl.example/{attention}", now=now)
    tid = seed_takedown(
        services.engine, item_id, now=now, state=TakedownState.FORWARDED, forward_to="nl-hotline"
    )
    with services.engine.begin() as conn:
        fid = conn.execute(
            insert(ForwardOut)
            .values(
                takedown_id=tid,
                item_id=item_id,
                partner="nl-hotline",
                reference=f"BE-{tid}-TEST",
                message_id=None,
                state=state,
                attention=attention,
                attention_reason="refused: the URL cannot be taken in" if attention == "failed" else "",
                last_status="",
                created_at=now,
                updated_at=now,
            )
            .returning(ForwardOut.id)
        ).scalar_one()
    return item_id, int(fid)


def _post(client: WebClient, target: str) -> tuple[int, str]:
    page = client.get("/act/forwards").text
    form = re.search(rf'<form method="post" action="{re.escape(target)}">(.*?)</form>', page, re.S)
    assert form, page
    r = client.post(target, data={"token": token(form.group(1))})
    return r.status_code, str(r.headers.get("location", ""))


def test_seniors_see_forwards_waiting_and_note_them_audited(ws: Workspace) -> None:
    services = _services(ws)
    item, fid = _waiting(services, "not_illegal")
    sara = ws.user("sara", "senior")
    assert "Forwards waiting for a senior: 1" in sara.get("/act/attention").text
    page = sara.get("/act/forwards").text
    assert f'href="/items/{item}"' in page and "not illegal in their country" in page
    nl = sara.get("/act/forwards", headers={"accept-language": "nl-BE,nl;q=0.9"}).text
    assert "Doorsturingen die op een senior wachten" in nl and "niet illegaal in hun land" in nl
    assert ws.user("anna", "analyst").get("/act/forwards").status_code in (403, 404)
    assert _post(sara, f"/act/forwards/{fid}/noted") == (303, "/act/forwards?msg=noted")
    assert forwarding.attention(services) == []
    assert "No forward is waiting." in sara.get("/act/forwards").text
    assert [s for _, s, _ in ws.audit("forward.noted")] == [f"item:{item}"]
    # a stale form (someone decided meanwhile) changes nothing
    r = sara.post(f"/act/forwards/{fid}/noted", data={"token": "nope"})
    assert r.status_code == 400


def test_a_failed_forward_offers_to_send_it_again(ws: Workspace) -> None:
    services = _services(ws)
    _, fid = _waiting(services, "failed", state="failed")
    sara = ws.user("sara", "senior")
    page = sara.get("/act/forwards").text
    assert "The partner refused the forward or it could not be delivered: refused" in page
    assert f'action="/act/forwards/{fid}/retry"' in page
    # no channel message to send again (seeded without one): refused, nothing changed
    status, _ = _post(sara, f"/act/forwards/{fid}/retry")
    assert status == 409
