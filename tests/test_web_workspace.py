"""The analyst workspace, in-process: queue, item page (claim, context, blurred thumbnails), reveal
(audited, short-lived single-use grant), blind second opinion, seniors' disagreements, roles,
CSRF and claim conflicts. Every image is a benign generated scene; nothing reaches the internet."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from contextlib import ExitStack
from urllib.parse import urlencode

import pytest
from PIL import Image
from sqlalchemy import delete, update

from meldpunt.clock import ManualClock
from meldpunt.store.reports import Medium, ReviewBlob
from meldpunt.web import workspace
from tests.helpers.staff import token
from tests.helpers.workspace import Workspace, _workspace, classify, reveal
from tests.helpers.world import ILLEGAL, NOT_ILLEGAL


@pytest.fixture
def ws(sqlite_db: str) -> Iterator[Workspace]:
    with ExitStack() as stack:
        yield _workspace(sqlite_db, stack)


@pytest.fixture
def ws_any(db_url: str) -> Iterator[Workspace]:
    with ExitStack() as stack:
        yield _workspace(db_url, stack)


def the_whole_flow(ws: Workspace) -> None:
    ana = ws.user("ana", "analyst")
    ben = ws.user("ben", "analyst")
    old = ws.item()
    urgent = ws.item(urgent=True, source="api:partner")

    # the queue: urgent first, then age; filter by source; keyboard links
    q = ana.get("/queue")
    assert q.status_code == 200 and q.headers["cache-control"] == "no-store"
    rows = re.findall(r'<a href="/items/(\d+)" accesskey="(\d)"', q.text)
    assert rows == [(str(urgent), "1"), (str(old), "2")]
    assert "Resolved without anyone viewing" in q.text  # the headline figure, for everyone on the queue
    only = ana.get("/queue", params={"source": "api:*"})
    assert re.findall(r'<a href="/items/(\d+)"', only.text) == [str(urgent)]

    # the item: claimed, context as text, blurred thumbnails
    page = ana.get(f"/items/{old}")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    claim = ws.triage.claim_of(old)
    assert claim is not None and claim.user == "ana"
    assert "https://example.test/" in page.text and '<a href="https://example.test' not in page.text
    assert "192.0.2.7" in page.text and "public" in page.text
    m1, m2 = ws.media(old)
    assert f'<img class="ws-thumb" src="/items/{old}/media/{m1}/thumb"' in page.text
    thumb = ana.get(f"/items/{old}/media/{m1}/thumb")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.headers["cache-control"] == "no-store"
    assert thumb.content != ws.stored(m1)
    picture = Image.open(io.BytesIO(thumb.content))
    assert picture.format == "JPEG" and max(picture.size) <= 320
    assert picture.mode == "L" or len(set(picture.convert("RGB").getpixel((10, 10)))) == 1  # type: ignore[arg-type]
    assert ana.get(f"/items/{urgent}/media/{m1}/thumb").status_code == 404  # not that item's

    # reveal: refused before the POST, audited, shown once beside the form with its grant
    assert ana.get(f"/items/{old}/media/{m1}/revealed.jpg", params={"grant": "1.2.3"}).status_code == 403
    where = reveal(ana, old, m1, page.text)
    assert where.startswith(f"/items/{old}?reveal={m1}&grant=") and where.endswith("#revealed")
    assert ws.audit("item.reveal") == [("ana", f"item:{old}", {"medium": m1})]
    shown = ana.get(where)
    assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
    src = re.search(r'<figure class="ws-revealed" id="revealed">\s*<img src="([^"]+)"', shown.text)
    assert src is not None
    beside = shown.text[shown.text.index('<div class="ws-decide">') :]
    assert beside.index('id="revealed"') < beside.index('action="/items/' + str(old) + '/classify"')
    image_url = src.group(1).replace("&amp;", "&")
    assert ben.get(image_url).status_code == 403  # another session cannot use the grant
    sharp = ana.get(image_url)
    assert sharp.status_code == 200 and sharp.headers["content-type"] == "image/jpeg"
    assert sharp.headers["cache-control"] == "no-store"
    assert sharp.content not in (ws.stored(m1), thumb.content)
    assert Image.open(io.BytesIO(sharp.content)).mode == "RGB"
    assert ana.get(image_url).status_code == 403  # used once
    other = image_url.replace(f"/media/{m1}/", f"/media/{m2}/")
    assert ana.get(other).status_code == 403  # a grant is for one medium
    # a reload says the image was shown once: no image the grant can no longer fetch
    again = ana.get(where)
    assert again.status_code == 200 and "revealed.jpg" not in again.text and "blurred again now" in again.text

    # a second analyst cannot take ana's claim
    conflict = ben.get(f"/items/{old}")
    assert conflict.status_code == 409 and "ana" in conflict.text and "until" in conflict.text

    # classify: a bad classification re-renders the form; then illegal
    assert classify(ana, old, page.text, {"us": "A1"}) == 400
    r = ana.post(
        f"/items/{old}/classify",
        data={
            "token": token(page.text),
            "scheme.status": "baseline",
            "scheme.us": "A1",
            "flag": ["series_known"],
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/queue?msg=classified"
    assert "Classification saved." in ana.get("/queue?msg=classified").text
    assert str(old) not in re.findall(r'<a href="/items/(\d+)"', ana.get("/queue").text)

    # the second opinion is blind
    blind = ben.get(f"/items/{old}")
    assert blind.status_code == 200
    assert "baseline" not in re.sub(
        r'<fieldset class="field ws-scheme">.*?</fieldset>', "", blind.text, flags=re.S
    )
    checked = [c for c in re.findall(r"<input[^>]*checked[^>]*>", blind.text) if 'name="medium"' not in c]
    assert checked and all('value=""' in c for c in checked)  # nothing pre-chosen but "none"
    assert "series_known" not in re.sub(
        r'<fieldset class="field ws-flags">.*?</fieldset>', "", blind.text, flags=re.S
    )
    assert ws.world.own_entries() == []
    r = ben.post(
        f"/items/{old}/classify",
        data={"token": token(blind.text), "scheme.status": "baseline", "scheme.us": "A1"},
    )
    assert r.status_code == 303
    assert ws.triage.stage(old) == "final"
    assert ws.world.own_entries() != []


def test_the_analyst_flow(ws: Workspace) -> None:
    the_whole_flow(ws)


def test_the_analyst_flow_on_every_engine(ws_any: Workspace) -> None:
    the_whole_flow(ws_any)


def test_roles_and_anonymous(ws: Workspace) -> None:
    iid = ws.item(images=1)
    (mid,) = ws.media(iid)
    anonymous = ws.staff.client()
    for url in ("/queue", f"/items/{iid}", f"/items/{iid}/media/{mid}/thumb", "/disagreements"):
        r = anonymous.get(url)
        assert r.status_code == 303 and r.headers["location"] == f"/login?{urlencode({'next': url})}", url
    assert (
        anonymous.post(f"/items/{iid}/media/{mid}/reveal", data={"token": "x"}).headers["location"]
        == "/login"
    )

    ana = ws.user("ana", "analyst")
    assert ana.get(f"/items/{iid}").status_code == 200
    for role in ("police", "admin"):
        client = ws.user(f"{role}-user", role)
        me = client.get("/me")
        r = client.post(f"/items/{iid}/media/{mid}/reveal", data={"token": token(me.text)})
        assert r.status_code == 403, role
        assert client.get(f"/items/{iid}/media/{mid}/revealed.jpg").status_code == 403
        assert client.get(f"/items/{iid}/media/{mid}/revealed.jpg").status_code == 403
        assert client.get(f"/items/{iid}").status_code == 403
        assert client.get(f"/items/{iid}/media/{mid}/thumb").status_code == 403
        assert client.get("/queue").status_code == 403
    assert ws.audit("item.reveal") == []
    claim = ws.triage.claim_of(iid)
    assert claim is not None and claim.user == "ana"


def test_forged_csrf_tokens_are_refused(ws: Workspace) -> None:
    iid = ws.item(images=1)
    (mid,) = ws.media(iid)
    ana = ws.user("ana", "analyst")
    page = ana.get(f"/items/{iid}")
    good = token(page.text)
    issued, nonce, sig = good.split(".")
    forged = f"{issued}.{nonce}.{sig[::-1]}"
    assert ana.post(f"/items/{iid}/media/{mid}/reveal", data={"token": forged}).status_code == 400
    assert ana.post(f"/items/{iid}/media/{mid}/reveal", data={}).status_code == 400
    body = {"token": forged, "scheme.status": "not_illegal"}
    assert ana.post(f"/items/{iid}/classify", data=body).status_code == 400
    # a token of another item's page does not do either
    other = ws.item(images=1)
    other_page = ana.get(f"/items/{other}")
    body["token"] = token(other_page.text)
    assert ana.post(f"/items/{iid}/classify", data=body).status_code == 400
    # cross-site requests are refused even with a good token
    r = ana.post(
        f"/items/{iid}/classify", data={**body, "token": good}, headers={"sec-fetch-site": "cross-site"}
    )
    assert r.status_code == 400
    assert ws.audit("item.reveal") == [] and ws.triage.stage(iid) is None


def test_seniors_see_counts_and_resolve_disagreements(ws: Workspace) -> None:
    ana = ws.user("ana", "analyst")
    ben = ws.user("ben", "analyst")
    sue = ws.user("sue", "senior")
    iid = ws.item(images=1)
    assert ana.get("/disagreements").status_code == 403

    page = ana.get(f"/items/{iid}")
    assert classify(ana, iid, page.text, ILLEGAL) == 303
    page = ben.get(f"/items/{iid}")
    assert classify(ben, iid, page.text, NOT_ILLEGAL) == 303
    assert ws.triage.stage(iid) == "disagreement"

    q = sue.get("/queue")
    assert "Resolved without anyone viewing them" in q.text
    listing = sue.get("/disagreements")
    assert f'href="/disagreements/{iid}"' in listing.text
    d = sue.get(f"/disagreements/{iid}")
    assert d.status_code == 200 and "ana" in d.text and "ben" in d.text and "not_illegal" in d.text
    assert sue.get(f"/items/{iid}").headers["location"] == f"/disagreements/{iid}"
    (mid,) = ws.media(iid)
    where = reveal(sue, iid, mid, d.text)
    assert f"/items/{iid}?reveal={mid}&grant=" in where
    # the senior decides on the disagreement's page: the reveal follows there, beside its form
    moved = sue.get(where).headers["location"]
    assert moved.startswith(f"/disagreements/{iid}?reveal={mid}&grant=")
    beside = sue.get(moved).text
    assert beside.index('<figure class="ws-revealed" id="revealed">') < beside.index(
        f'action="/items/{iid}/resolve"'
    )
    bad = sue.post(f"/items/{iid}/resolve", data={"token": token(d.text), "scheme.us": "A1"})
    assert bad.status_code == 400 and "required" in bad.text
    r = sue.post(f"/items/{iid}/resolve", data={"token": token(d.text), "scheme.status": "baseline"})
    assert r.status_code == 303 and r.headers["location"] == "/queue?msg=resolved"
    assert ws.triage.stage(iid) == "final"


def test_near_matches_and_a_group_decision(ws: Workspace) -> None:
    shared = ws.world.pdq()
    first = ws.item(pdqs=(shared,))
    twin = ws.item(pdqs=(shared,))
    (mid,) = ws.media(first)
    hint = {
        "bank": "partner-hints",
        "entry_id": 4,
        "signal_type": "pdq",
        "distance": 12,
        "policy": "hint",
        "labels": {"category": "synthetic-cat", "tags": ["tag-one", "tag-two"]},
    }
    with ws.world.engine.begin() as conn:
        conn.execute(update(Medium).where(Medium.id == mid).values(matches=json.dumps([hint])))
    ana = ws.user("ana", "analyst")
    page = ana.get(f"/items/{first}")
    # one block per match: labels as a list of name and value, which wraps at words in a narrow card
    assert "<table" not in page.text.split('class="ws-matches"')[1].split("</ul>")[0]
    assert (
        '<strong class="ws-match-bank">partner-hints</strong>' in page.text
        and "distance 12 bits" in page.text
    )
    assert (
        "<dt>category</dt><dd>synthetic-cat</dd>" in page.text
        and "<dt>tags</dt><dd>tag-one, tag-two</dd>" in page.text
    )
    assert 'name="group" value="1"' in page.text and f"#{twin}" in page.text
    r = ana.post(
        f"/items/{first}/classify",
        data={"token": token(page.text), "scheme.status": "not_illegal", "group": "1"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/queue?msg=group"
    assert ws.triage.stage(first) == ws.triage.stage(twin) == "final"  # not illegal: final at once
    assert len(ws.audit("item.classify")) == 2


def test_the_analyst_sees_which_hash_of_an_exif_oriented_photo_matched(ws: Workspace) -> None:
    iid = ws.item(images=1)
    (mid,) = ws.media(iid)
    hint = {
        "bank": "te-hints",
        "entry_id": 9,
        "signal_type": "pdq",
        "distance": 4,
        "policy": "hint",
        "labels": {"category": "synthetic-cat"},
        "hash": "stored",
        "orientation": 6,
    }
    with ws.world.engine.begin() as conn:
        conn.execute(update(Medium).where(Medium.id == mid).values(matches=json.dumps([hint])))
    ana = ws.user("ana", "analyst")
    assert "pdq (stored pixels, EXIF orientation 6)" in ana.get(f"/items/{iid}").text
    ana.headers["Accept-Language"] = "nl"
    assert "pdq (opgeslagen pixels, EXIF-oriëntatie 6)" in ana.get(f"/items/{iid}").text


def test_a_reveal_grant_is_short_lived_and_release_gives_the_item_back(ws: Workspace) -> None:
    iid = ws.item(images=1)
    (mid,) = ws.media(iid)
    ana = ws.user("ana", "analyst")
    page = ana.get(f"/items/{iid}")
    where = reveal(ana, iid, mid, page.text)
    shown = ana.get(where)
    src = re.search(r'<img src="(/items/[^"]+/revealed\.jpg[^"]+)"', shown.text)
    assert src is not None
    image_url = src.group(1).replace("&amp;", "&")
    clock = ws.staff.app.state.ctx.services.clock
    assert isinstance(clock, ManualClock)
    clock.advance(workspace.REVEAL_SECONDS + 5)
    late = ana.get(where)
    assert late.status_code == 200 and "revealed.jpg" not in late.text and "blurred again now" in late.text
    assert ana.get(image_url).status_code == 403
    clock.advance(-(workspace.REVEAL_SECONDS + 5))
    assert ana.get(image_url).status_code == 200

    ben = ws.user("ben", "analyst")
    assert ben.get(f"/items/{iid}").status_code == 409
    r = ana.post(f"/items/{iid}/release", data={"token": token(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/queue?msg=released"
    assert ws.triage.claim_of(iid) is None
    assert ben.get(f"/items/{iid}").status_code == 200


def test_what_cannot_be_rendered_is_not_sent(ws: Workspace) -> None:
    iid = ws.item(images=1)
    (mid,) = ws.media(iid)
    with ws.world.engine.begin() as conn:
        conn.execute(delete(ReviewBlob).where(ReviewBlob.medium_id == mid))
        ws.world.store.put(conn, mid, b"benign text, not an image")
    ana = ws.user("ana", "analyst")
    r = ana.get(f"/items/{iid}/media/{mid}/thumb")
    assert r.status_code == 415 and b"benign text" not in r.content
    assert ana.get(f"/items/{iid}/media/{mid + 99}/thumb").status_code == 404


def test_the_analyst_chooses_which_media_the_decision_covers(ws: Workspace) -> None:
    ana = ws.user("ana", "analyst")
    item = ws.item(images=2)
    photo, logo = ws.media(item)
    page = ana.get(f"/items/{item}")
    boxes = re.findall(
        r'<input type="checkbox" id="medium-(\d+)" name="medium" value="\d+" checked>', page.text
    )
    assert boxes == [str(photo), str(logo)]  # every medium ticked by default
    body: dict[str, str | list[str]] = {
        "token": token(page.text),
        "scheme.status": "not_illegal",
        "media_shown": "1",
    }
    r = ana.post(f"/items/{item}/classify", data=body)
    assert r.status_code == 400 and "choose at least one medium" in r.text
    assert ws.triage.stage(item) is None
    r = ana.post(f"/items/{item}/classify", data={**body, "medium": [str(photo), "99999"]})
    assert r.status_code == 400 and "not among this item" in r.text
    r = ana.post(f"/items/{item}/classify", data={**body, "medium": str(photo)})
    assert r.status_code == 303
    final = ws.triage.final_classification(item)
    assert final is not None and final.media == (photo,)
    [(_, _, details)] = ws.audit("item.classify")
    assert details["classification"] == {"status": "not_illegal", "media": [photo]}  # type: ignore[comparison-overlap]
    facts = ws.user("pol", "police").get(f"/police/items/{item}").text
    assert facts.count("Covered by the decision.") == 1
    assert facts.count("Not covered by the decision") == 1


def test_a_senior_corrects_a_decision_on_the_web(ws: Workspace) -> None:
    ana, sara = ws.user("ana", "analyst"), ws.user("sara", "senior")
    item = ws.item(images=1)
    page = ana.get(f"/items/{item}")
    assert classify(ana, item, page.text, {"status": "not_illegal"}) == 303
    assert ana.get("/decisions").status_code == 403
    listing = sara.get("/decisions")
    assert f'href="/decisions/{item}"' in listing.text and "one analyst" in listing.text
    page = sara.get(f"/decisions/{item}")
    assert page.status_code == 200 and 'value="not_illegal" checked' in page.text
    assert (
        sara.post(f"/items/{item}/correct", data={"token": "forged", "scheme.status": "baseline"}).status_code
        == 400
    )
    bad = sara.post(f"/items/{item}/correct", data={"token": token(page.text), "scheme.status": "nonsense"})
    assert bad.status_code == 400 and "nonsense" in bad.text
    r = sara.post(f"/items/{item}/correct", data={"token": token(page.text), "scheme.status": "baseline"})
    assert r.status_code == 303 and r.headers["location"] == "/decisions?msg=corrected"
    final = ws.triage.final_classification(item)
    assert final is not None and final.values == {"status": "baseline"}
    assert [a for a, _, _ in ws.audit("item.correct")] == ["sara"]
    assert sara.get(f"/decisions/{ws.item(images=1)}").status_code == 404  # no decision yet


def test_the_queue_filters_by_what_an_item_needs_and_oversized_posts_are_refused(ws: Workspace) -> None:
    ana, ben = ws.user("ana", "analyst"), ws.user("ben", "analyst")
    fresh, halfway = ws.item(images=1), ws.item(images=1)
    page = ana.get(f"/items/{halfway}")
    assert classify(ana, halfway, page.text, {"status": "baseline"}) == 303  # illegal: a second is wanted

    def listed(**params: str) -> list[str]:
        return re.findall(r'<a href="/items/(\d+)"', ben.get("/queue", params=params).text)

    assert listed() == [str(fresh), str(halfway)]
    assert listed(needs="first") == [str(fresh)]
    assert listed(needs="second") == [str(halfway)]
    assert listed(needs="<script>") == [str(fresh), str(halfway)]  # unknown: no filter

    page = ben.get(f"/items/{fresh}")
    body = {"token": token(page.text), "scheme.status": "not_illegal", "series": "x" * (128 * 1024)}
    r = ben.post(f"/items/{fresh}/classify", data=body)
    assert r.status_code == 413
    assert ws.triage.stage(fresh) is None  # nothing was saved


def test_the_navigation_offers_only_what_the_role_may_open(ws: Workspace) -> None:
    pol, adm = ws.user("pol", "police"), ws.user("adm", "admin")
    urgent = pol.get("/police/urgent")
    assert urgent.status_code == 200 and 'href="/queue"' not in urgent.text
    users = adm.get("/admin/users")
    assert users.status_code == 200 and 'href="/queue"' not in users.text


def test_a_reveal_grant_renders_once_whichever_process_it_reaches(sqlite_db: str) -> None:
    """Two web processes (two engines on one database) share the record of used grants."""
    from datetime import UTC, datetime, timedelta

    from meldpunt.store.db import create_db_engine

    first, second = create_db_engine(sqlite_db), create_db_engine(sqlite_db)
    now = datetime.now(UTC)
    assert workspace.use_grant(first, "nonce-a", now)
    assert not workspace.use_grant(second, "nonce-a", now)
    assert workspace.use_grant(second, "nonce-b", now)
    # old uses are dropped as new ones come (a grant lives 60 s: its nonce cannot come back)
    assert workspace.use_grant(first, "nonce-c", now + timedelta(minutes=5))
    assert workspace.use_grant(first, "nonce-a", now + timedelta(minutes=5))
