"""The provider answers without an account, through the link in the notice it received (a real
SMTP sink): removed or disputed per URL, recorded once and shown to staff; forged links are 404,
expired ones 410, replayed answers change nothing. And the staff pages: notices outstanding per
contact, one notice, the overdue queue where a senior records a reply, resends or closes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from sqlalchemy import select

from meldpunt.act import timeline
from meldpunt.act.ticks import settle
from meldpunt.audit import entries as audit_entries
from meldpunt.domain.acting import EventKind
from meldpunt.store.acting import NoticeItem
from tests.helpers.accounts import PASSWORD
from tests.helpers.notices import World, link_of, world
from tests.helpers.smtp import SmtpSink
from tests.helpers.staff import Staff, enrol, token
from tests.helpers.webclient import WebClient


@pytest.fixture
def sent(db_url: str, smtp_sink: SmtpSink) -> Iterator[tuple[World, Staff, str, list[int]]]:
    """A notice of two URLs, sent; the app; the link's path; the takedowns."""
    w = world(db_url, smtp_sink)
    w.contact("alpha")
    ids = [w.takedown("alpha", f"http://a.example/{n}") for n in range(2)]
    settle(w.services)
    w.advance(24)
    settle(w.services)
    [message] = smtp_sink.received
    link, _ = link_of(message)
    with ExitStack() as stack:
        yield w, Staff(w.services, stack), link.replace("https://hotline.example", ""), ids


def _answers(w: World) -> dict[int, tuple[str, str]]:
    with w.services.engine.connect() as conn:
        rows = conn.execute(select(NoticeItem.takedown_id, NoticeItem.answer, NoticeItem.answer_note))
        return {r[0]: (r[1], r[2]) for r in rows}


def test_the_provider_marks_a_url_removed_and_disputes_another_once(
    sent: tuple[World, Staff, str, list[int]],
) -> None:
    w, staff, path, (one, two) = sent
    provider = staff.client(("203.0.113.9", 4444))
    page = provider.get(path, headers={"Accept-Language": "fr-BE,fr;q=0.9"})
    assert page.status_code == 200 and 'lang="fr"' in page.text
    assert "http://a.example/0" in page.text and "http://a.example/1" in page.text
    assert "Il est retiré" in page.text and "<script" not in page.text
    assert page.headers["cache-control"] == "no-store"
    # a provider's page, not the reporters': no status look-up, no help-service footer
    assert "<footer" not in page.text and "/status" not in page.text
    r = provider.post(path, data={"takedown": str(one), "answer": "removed", "lang": "nl"})
    assert r.status_code == 200 and "uw antwoord is vastgelegd" in r.text
    assert w.takedown_row(one).next_check_at is not None  # the re-check looks early
    again = provider.post(path, data={"takedown": str(one), "answer": "removed", "lang": "en"})
    assert again.status_code == 200 and "recorded already" in again.text
    empty = provider.post(path, data={"takedown": str(two), "answer": "disputed", "note": " ", "lang": "en"})
    assert empty.status_code == 422 and "why you dispute" in empty.text
    r = provider.post(
        path, data={"takedown": str(two), "answer": "disputed", "note": "It is a medical text."}
    )
    assert r.status_code == 200 and "You disputed it:" in r.text and "It is a medical text." in r.text
    stranger = provider.post(path, data={"takedown": "999999", "answer": "removed"})
    assert stranger.status_code == 404
    assert _answers(w) == {one: ("removed", ""), two: ("disputed", "It is a medical text.")}
    [notice] = w.notices()
    events = [e for e in timeline.for_notice(w.services.engine, notice.id) if e.actor == "provider"]
    assert [e.kind for e in events] == [EventKind.PROVIDER_REMOVED.value, EventKind.PROVIDER_DISPUTED.value]


def test_forged_unknown_and_expired_links(sent: tuple[World, Staff, str, list[int]]) -> None:
    w, staff, path, (one, _) = sent
    client = staff.client()
    notice_id, stamp, sig = path.rsplit("/", 1)[1].split(".")
    forged = f"/provider/{notice_id}.{stamp}.{'A' + sig[1:] if sig[0] != 'A' else 'B' + sig[1:]}"
    longer = f"/provider/{notice_id}.{int(stamp) + 86400}.{sig}"  # a later expiry, same signature
    for bad in (forged, longer, f"/provider/{int(notice_id) + 1}.{stamp}.{sig}", "/provider/nonsense"):
        r = client.get(bad)
        assert r.status_code == 404 and "not valid" in r.text, bad
        assert client.post(bad, data={"takedown": str(one), "answer": "removed"}).status_code == 404
    w.advance(24 * 61)  # notice.link_days = 60
    r = client.get(f"{path}?lang=nl")
    assert r.status_code == 410 and "verlopen" in r.text
    assert client.post(path, data={"takedown": str(one), "answer": "removed"}).status_code == 410
    assert _answers(w)[one] == ("", "")


def test_a_cross_site_post_is_refused(sent: tuple[World, Staff, str, list[int]]) -> None:
    w, staff, path, (one, _) = sent
    client = staff.client()
    r = client.post(
        path, data={"takedown": str(one), "answer": "removed"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert r.status_code == 400
    r = client.post(
        path, data={"takedown": str(one), "answer": "removed"}, headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 400
    assert _answers(w)[one] == ("", "")


def _signed_in(staff: Staff, name: str, role: str) -> WebClient:
    staff.accounts.create_user(name, role, PASSWORD)
    client = staff.client()
    enrol(staff, client, name)
    return client


def test_staff_see_notices_and_a_senior_records_a_reply_resends_and_closes(
    sent: tuple[World, Staff, str, list[int]],
) -> None:
    w, staff, _path, (one, two) = sent
    [notice] = w.notices()
    analyst = _signed_in(staff, "ana", "analyst")
    senior = _signed_in(staff, "sam", "senior")
    listing = analyst.get("/notices")
    assert listing.status_code == 200 and notice.reference in listing.text and "Alpha" in listing.text
    assert 'href="/notices"' in listing.text and 'href="/overdue"' in listing.text
    page = analyst.get(f"/notices/{notice.id}")
    assert page.status_code == 200 and "http://a.example/1" in page.text and "delivered" in page.text
    assert "Record the reply" not in page.text  # reading only
    assert analyst.get(f"/notices/{notice.id + 100}").status_code == 404
    page = senior.get(f"/notices/{notice.id}", headers={"Accept-Language": "nl"})
    assert "Antwoord vastleggen" in page.text
    form = token(page.text)
    denied = analyst.post(f"/notices/{notice.id}/close", data={"token": form, "reason": "x"})
    assert denied.status_code == 403
    r = senior.post(
        f"/notices/{notice.id}/reply",
        data={"token": form, "takedown": str(one), "answer": "removed", "note": "mail of 6 Jan"},
    )
    assert r.status_code == 303
    assert _answers(w)[one] == ("removed", "mail of 6 Jan")
    shown = analyst.get(f"/notices/{notice.id}")
    assert "Removed" in shown.text and "mail of 6 Jan" in shown.text and "a reply was recorded" in shown.text
    assert (
        senior.post(
            f"/notices/{notice.id}/reply", data={"token": "forged", "takedown": str(two), "answer": "removed"}
        ).status_code
        == 400
    )
    r = senior.post(f"/notices/{notice.id}/resend", data={"token": form})
    assert r.status_code == 303 and r.headers["location"].endswith("done=resent")
    settle(w.services)
    assert w.notice(notice.id).rounds == 2
    assert senior.post(f"/notices/{notice.id}/close", data={"token": form, "reason": " "}).status_code == 422
    r = senior.post(
        f"/notices/{notice.id}/close", data={"token": form, "reason": "provider unreachable; police informed"}
    )
    assert r.status_code == 303
    assert w.notice(notice.id).state == "closed"
    with w.services.engine.connect() as conn:
        actions = [
            (e.actor, e.action, e.subject) for e in audit_entries(conn) if e.action.startswith("notice.")
        ]
    assert actions == [
        ("sam", "notice.reply", f"notice:{notice.id}"),
        ("sam", "notice.resend", f"notice:{notice.id}"),
        ("sam", "notice.close", f"notice:{notice.id}"),
    ]
    kinds = [e.kind for e in timeline.for_notice(w.services.engine, notice.id)]
    assert EventKind.REPLY_RECORDED.value in kinds and kinds[-1] == EventKind.CLOSED.value
    overdue = senior.get("/overdue")
    assert overdue.status_code == 200 and notice.reference not in overdue.text
