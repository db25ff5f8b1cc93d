"""The routing pages in-process (httpx): seniors edit abuse contacts and rules (validated, form
tokens, audited), see takedowns waiting for them and route them again; the analyst's item page
shows the Action panel in the browser's language (#10 part "routing")."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from sqlalchemy import update

from meldpunt.act import contacts, routing
from meldpunt.bootstrap import Services
from meldpunt.domain.acting import TakedownState
from meldpunt.store.acting import Takedown
from tests.helpers.acting import seed_location
from tests.helpers.staff import token
from tests.helpers.webclient import WebClient
from tests.helpers.workspace import Workspace, _workspace
from tests.helpers.world import ILLEGAL

DUTCH = "nl-BE,nl;q=0.9"
FRENCH = "fr-BE,fr;q=0.9"


@pytest.fixture
def ws(db_url: str) -> Iterator[Workspace]:
    with ExitStack() as stack:
        yield _workspace(db_url, stack)


def _services(ws: Workspace) -> Services:
    services: Services = ws.staff.app.state.ctx.services
    return services


def _form(client: WebClient, page_url: str, target: str, **data: str) -> tuple[int, str, str]:
    """Post the form of ``page_url`` whose action is ``target`` with its own token: (status,
    location, body)."""
    page = client.get(page_url).text
    form = re.search(rf'<form method="post" action="{re.escape(target)}">(.*?)</form>', page, re.S)
    assert form, page
    r = client.post(target, data={"token": token(form.group(1)), **data})
    return r.status_code, str(r.headers.get("location", "")), r.text


CONTACT = {
    "scope": "domain",
    "match": "Files.Example.com",
    "name": "Example Files",
    "channel": "email",
    "address": "abuse@example.com",
    "language": "nl",
    "accepts": "1",
    "note": "",
}


def test_seniors_add_edit_and_delete_contacts_audited(ws: Workspace) -> None:
    sara = ws.user("sara", "senior")
    assert sara.get("/act/contacts").status_code == 200
    # invalid: refused with the reasons, nothing saved
    status, _, body = _form(
        sara, "/act/contacts/new", "/act/contacts", **{**CONTACT, "address": "nope", "match": "x y"}
    )
    assert status == 422
    assert "The contact was not saved" in body and "x y is not a domain name (like example.com)" in body
    assert contacts.list_contacts(_services(ws))[1] == 0
    # valid
    status, where, _ = _form(sara, "/act/contacts/new", "/act/contacts", **CONTACT)
    assert status == 303
    cid = int(where.split("/")[3].split("?")[0])
    page = sara.get(where).text
    assert "Saved." in page and "files.example.com" in page
    listed = sara.get("/act/contacts?q=example+files").text
    assert f'href="/act/contacts/{cid}"' in listed
    # edit: an unticked checkbox says no
    status, _, _ = _form(sara, f"/act/contacts/{cid}", f"/act/contacts/{cid}", **{**CONTACT, "accepts": ""})
    assert status == 303 and contacts.get_contact(_services(ws), cid).accepts is False
    assert "does not accept notices" in sara.get("/act/contacts").text
    # delete
    status, where, _ = _form(sara, f"/act/contacts/{cid}", f"/act/contacts/{cid}/delete")
    assert (status, where) == (303, "/act/contacts?msg=deleted")
    assert sara.get(f"/act/contacts/{cid}").status_code == 404
    assert [(a, s) for a, s, _ in ws.audit("contact.add")] == [("sara", f"contact:{cid}")]
    assert [d["changed"] for _, _, d in ws.audit("contact.edit")] == [{"accepts": [True, False]}]
    assert len(ws.audit("contact.delete")) == 1
    # the audit log says it in words
    log = ws.user("adm", "admin").get("/admin/audit?action=contact.*").text
    for sentence in (
        f"sara added abuse contact {cid}",
        f"sara changed abuse contact {cid}",
        f"sara deleted abuse contact {cid}",
    ):
        assert sentence in log, sentence


def test_seniors_add_the_known_cdn_contacts(ws: Workspace) -> None:
    sara = ws.user("sara", "senior")
    assert "Cloudflare" in sara.get("/act/contacts").text
    status, where, _ = _form(sara, "/act/contacts", "/act/contacts/known")
    assert (status, where) == (303, "/act/contacts?msg=saved")
    found, total = contacts.list_contacts(_services(ws), search="cloudflare")
    assert total == 2 and all(c.cdn and c.address == "abuse@cloudflare.com" for c in found)
    assert [actor for actor, _, _ in ws.audit("contact.add")] == ["sara", "sara"]
    _form(sara, "/act/contacts", "/act/contacts/known")  # again: nothing twice
    assert contacts.list_contacts(_services(ws))[1] == 2


def test_a_form_without_its_token_changes_nothing(ws: Workspace) -> None:
    sara = ws.user("sara", "senior")
    r = sara.post("/act/contacts", data={**CONTACT, "token": "forged"})
    assert r.status_code == 400 and "This form has expired" in r.text
    r = sara.post("/act/rules", data={"country": "NL", "action": "none"})
    assert r.status_code == 400
    assert contacts.list_contacts(_services(ws))[1] == 0
    assert ws.audit("contact.add") == [] and ws.audit("rule.add") == []


def test_analysts_may_not_edit_contacts(ws: Workspace) -> None:
    ana = ws.user("ana", "analyst")
    for url in ("/act/contacts", "/act/contacts/new", "/act/rules", "/act/attention"):
        assert ana.get(url).status_code == 403
    assert ana.post("/act/contacts", data=CONTACT).status_code == 403
    assert "/act/contacts" not in ana.get("/queue").text


def test_seniors_edit_routing_rules(ws: Workspace) -> None:
    sara = ws.user("sara", "senior")
    page = sara.get("/act/rules").text
    assert "notice to the provider" in page and "police referral" in page  # the defaults
    status, _, body = _form(sara, "/act/rules", "/act/rules", country="NL", action="forward", partner="")
    assert status == 422 and "say which partner hotline it is forwarded to" in body
    status, where, _ = _form(
        sara,
        "/act/rules",
        "/act/rules",
        country="nl",
        action="forward",
        partner="Offlimits",
        police="1",
        police_categories="A1, baseline",
        position="1",
    )
    assert (status, where) == (303, "/act/rules?msg=saved")
    [nl] = [r for r in contacts.list_rules(_services(ws)) if r.country == "NL"]
    assert (nl.partner, nl.police, nl.police_categories) == ("Offlimits", True, ("A1", "baseline"))
    status, _, _ = _form(
        sara, f"/act/rules/{nl.id}", f"/act/rules/{nl.id}", country="NL", action="none", position="1"
    )
    assert status == 303 and contacts.get_rule(_services(ws), nl.id).action == "none"
    status, _, _ = _form(sara, f"/act/rules/{nl.id}", f"/act/rules/{nl.id}/delete")
    assert status == 303
    assert [actor for actor, _, _ in ws.audit("rule.add")] == ["sara"]
    assert len(ws.audit("rule.edit")) == 1 and len(ws.audit("rule.delete")) == 1


def _routed_item(ws: Workspace, **location: object) -> int:
    """An item two analysts found illegal, located, its takedown routed."""
    services = _services(ws)
    t = ws.triage
    anna, bert = ws.world.user("anna", "analyst"), ws.world.user("bert", "analyst")
    item = ws.item(images=1)
    t.claim(item, anna)
    t.classify(item, anna, ILLEGAL)
    t.claim(item, bert)
    t.classify(item, bert, ILLEGAL)
    assert routing.tick_takedowns(services) == 1
    seed_location(services.engine, item, now=services.clock.now(), host="example.test", **location)
    with services.engine.begin() as conn:
        conn.execute(
            update(Takedown).where(Takedown.item_id == item).values(state=TakedownState.TO_ROUTE.value)
        )
    assert routing.tick_route(services) == 1
    return item


def test_takedowns_without_a_contact_wait_for_a_senior_who_routes_them_again(ws: Workspace) -> None:
    item = _routed_item(ws, country="US")
    sara = ws.user("sara", "senior")
    page = sara.get("/act/attention").text
    assert f'href="/items/{item}"' in page
    assert "Nobody to send a notice to: add an abuse contact." in page
    assert (
        "Add an abuse contact for its domain, network, AS number or provider (or a rule), then route it again."
        in page
    )
    td = routing.takedown_of(_services(ws), item)
    assert td is not None
    status, where, _ = _form(sara, "/act/attention", f"/act/takedowns/{td.id}/reroute")
    assert (status, where) == (303, "/act/attention?msg=rerouted")
    assert routing.takedown_of(_services(ws), item).state == TakedownState.TO_ROUTE  # type: ignore[union-attr]
    assert "Nothing is waiting" in sara.get("/act/attention").text
    assert [s for _, s, _ in ws.audit("takedown.reroute")] == [f"item:{item}"]


@pytest.mark.parametrize(
    ("accept_language", "words"),
    [
        (
            None,
            [
                "Action",
                "notice to be sent",
                "Hosted in our country (BE): a notice to the provider.",
                "Found illegal: a takedown was opened.",
                "the system",
            ],
        ),
        (
            DUTCH,
            [
                "Actie",
                "melding te versturen",
                "Gehost in ons land (BE): een melding aan de provider.",
                "Illegaal bevonden",
            ],
        ),
        (
            FRENCH,
            [
                "notification à envoyer",
                "Hébergé dans notre pays (BE)",
                "Un signalement à la police est dû.",
            ],
        ),
    ],
)
def test_the_item_page_shows_the_action_panel(
    ws: Workspace, accept_language: str | None, words: list[str]
) -> None:
    contacts.add_contact(
        _services(ws),
        {"scope": "domain", "match": "example.test", "address": "abuse@example.test", "name": "Example"},
        "sara",
    )
    item = _routed_item(ws, country="BE")
    sara = ws.user("sara", "senior")
    if accept_language:
        sara.headers["Accept-Language"] = accept_language
    page = sara.get(f"/items/{item}").text
    panel = page[page.index('class="act-panel"') :]
    for w in words:
        assert w in panel, w
    assert "abuse@example.test" in panel
