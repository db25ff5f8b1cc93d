"""Notices on real components: the real SMTP sink, the injected clock, SQLite and PostgreSQL.
Batching per contact, sending days, reminders every 24 h for a week, escalation to the seniors and
the police, closing when removed, a refused recipient marking its contact suspect."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from meldpunt.act import notice_answers, timeline
from meldpunt.act.notices import tick_notices
from meldpunt.act.ticks import settle
from meldpunt.domain.acting import EventKind
from meldpunt.store.acting import Contact
from tests.helpers.notices import world
from tests.helpers.smtp import SmtpSink


def test_three_items_for_one_contact_make_one_email_another_contact_its_own(
    db_url: str, smtp_sink: SmtpSink
) -> None:
    w = world(db_url, smtp_sink)
    w.contact("alpha")
    w.contact("beta")
    first = [w.takedown("alpha", f"http://a.example/page{n}") for n in range(2)]
    other = w.takedown("beta", "http://b.example/x")
    settle(w.services)
    assert smtp_sink.received == []  # the batching window is open
    w.advance(10)
    first.append(w.takedown("alpha", "http://a.example/page2", media=2))
    settle(w.services)
    assert smtp_sink.received == []
    [a, b] = w.notices()
    assert a.state == b.state == "collecting" and sorted(w.items_of(a.id)) == sorted(first)
    assert a.reference != b.reference and a.reference.startswith("MP-")
    w.advance(14)  # 24 h after the first
    settle(w.services)
    [to_a] = smtp_sink.to("abuse@alpha.example")
    [to_b] = smtp_sink.to("abuse@beta.example")
    assert a.reference in to_a.subject and "3 URLs" in to_a.subject
    for n in range(3):
        assert f"http://a.example/page{n}" in to_a.text
    assert "http://b.example/x" in to_b.text and "a.example" not in to_b.text
    assert to_a.message["X-Meldpunt-Reference"] == a.reference
    assert "https://hotline.example/provider/" in to_a.text
    assert "SHA-256 " in to_a.text and "MD5 " in to_a.text and "PDQ " in to_a.text
    assert not to_a.message.is_multipart()  # never an attachment, never the media
    sent = w.notice(a.id)
    assert sent.state == "sent" and sent.rounds == 1 and sent.sent_at is not None
    for takedown_id in [*first, other]:
        row = w.takedown_row(takedown_id)
        assert row.state == "noticed" and row.first_notice_at is not None
    kinds = [e.kind for e in timeline.for_notice(w.services.engine, a.id)]
    assert kinds.count(EventKind.NOTICE_QUEUED.value) == 3 and kinds.count(EventKind.NOTICE_SENT.value) == 3
    settle(w.services)
    assert len(smtp_sink.received) == 2  # settled again: nothing sent twice


def test_a_notice_due_on_saturday_goes_on_monday_and_holidays_are_quiet(
    db_url: str, smtp_sink: SmtpSink
) -> None:
    friday = datetime(2026, 1, 9, 12, 0, tzinfo=UTC)
    w = world(db_url, smtp_sink, start=friday, holidays=("2026-01-12",))
    w.contact("alpha")
    w.takedown("alpha", "http://a.example/x")
    settle(w.services)
    w.advance(24)  # Saturday
    settle(w.services)
    w.advance(24)  # Sunday
    settle(w.services)
    w.advance(24)  # Monday, a holiday
    settle(w.services)
    assert smtp_sink.received == []
    w.advance(24)  # Tuesday
    settle(w.services)
    assert len(smtp_sink.received) == 1
    [notice] = w.notices()
    # the next reminder: 24 h later, a Wednesday
    assert notice.next_notice_at is not None
    assert (
        notice.next_notice_at.replace(tzinfo=UTC) - notice.sent_at.replace(tzinfo=UTC)
    ).total_seconds() == 24 * 3600


def test_a_reminder_due_on_saturday_waits_for_monday_and_police_after_0_hours_is_never(
    db_url: str, smtp_sink: SmtpSink
) -> None:
    thursday = datetime(2026, 1, 8, 12, 0, tzinfo=UTC)
    w = world(db_url, smtp_sink, start=thursday, escalate_after=0, police_after_hours=0)
    w.contact("alpha")
    w.takedown("alpha", "http://a.example/x")
    settle(w.services)
    w.advance(24)  # Friday: sent
    settle(w.services)
    [notice] = w.notices()
    assert notice.sent_at is not None and len(smtp_sink.received) == 1
    # due Saturday 12:00: moved to the start of Monday in the hotline's zone (Brussels)
    assert notice.next_notice_at.replace(tzinfo=UTC) == datetime(2026, 1, 11, 23, 0, tzinfo=UTC)
    w.advance(24)  # Saturday
    settle(w.services)
    w.advance(24)  # Sunday
    settle(w.services)
    assert len(smtp_sink.received) == 1
    w.advance(24)  # Monday
    settle(w.services)
    assert len(smtp_sink.received) == 2 and "Reminder 1:" in smtp_sink.received[-1].subject
    row = w.notice(notice.id)
    assert row.escalation == 1  # escalate_after=0: with the first reminder
    w.advance(24 * 30)
    settle(w.services)
    assert w.notice(notice.id).escalation == 1  # police_after_hours=0: never to the police


def test_reminders_every_24_hours_for_a_week_then_escalation_and_police(
    db_url: str, smtp_sink: SmtpSink
) -> None:
    w = world(db_url, smtp_sink, quiet_weekdays=(), escalate_after=3, police_after_hours=48)
    w.contact("alpha")
    online = w.takedown("alpha", "http://a.example/stays")
    gone = w.takedown("alpha", "http://a.example/goes")
    settle(w.services)
    w.advance(24)
    settle(w.services)
    [notice] = w.notices()
    assert len(smtp_sink.received) == 1
    w.remove(gone)
    for day in range(1, 8):
        w.advance(24)
        settle(w.services)
        got = smtp_sink.to("abuse@alpha.example")
        assert len(got) == 1 + day, day
        reminder = got[-1]
        assert f"Reminder {day}:" in reminder.subject and notice.reference in reminder.subject
        assert "http://a.example/stays" in reminder.text and "http://a.example/goes" not in reminder.text
        row = w.notice(notice.id)
        assert row.rounds == 1 + day
        assert row.escalation == (0 if day < 4 else 1 if day < 6 else 2), day
    ids = {m.message["Message-ID"] for m in smtp_sink.received}
    assert len(ids) == len(smtp_sink.received)  # each round its own message
    assert w.takedown_row(online).police == "due" and w.takedown_row(gone).police == ""
    assert [r.id for r in notice_answers.overdue(w.services.engine)] == [notice.id]
    kinds = [e.kind for e in timeline.for_notice(w.services.engine, notice.id)]
    assert kinds.count(EventKind.REMINDER_SENT.value) == 7
    assert kinds.count(EventKind.ESCALATED.value) == 1 and EventKind.POLICE_DUE.value in kinds


def test_a_notice_closes_when_everything_in_it_is_removed(db_url: str, smtp_sink: SmtpSink) -> None:
    w = world(db_url, smtp_sink, quiet_weekdays=())
    w.contact("alpha")
    ids = [w.takedown("alpha", f"http://a.example/{n}") for n in range(2)]
    settle(w.services)
    w.advance(24)
    settle(w.services)
    [notice] = w.notices()
    for takedown_id in ids:
        w.remove(takedown_id)
    settle(w.services)
    row = w.notice(notice.id)
    assert row.state == "closed" and row.closed_at is not None
    w.advance(24 * 3)
    settle(w.services)
    assert len(smtp_sink.received) == 1  # no reminders for a closed notice


def test_everything_removed_before_the_window_closed_sends_nothing(db_url: str, smtp_sink: SmtpSink) -> None:
    w = world(db_url, smtp_sink)
    w.contact("alpha")
    takedown = w.takedown("alpha", "http://a.example/x")
    settle(w.services)
    w.remove(takedown)
    w.advance(24)
    settle(w.services)
    assert smtp_sink.received == [] and w.notices()[0].state == "closed"


def test_a_refused_recipient_marks_the_contact_suspect_and_the_notice_overdue(
    db_url: str, smtp_sink: SmtpSink
) -> None:
    w = world(db_url, smtp_sink)
    w.contact("alpha", address="gone@alpha.example")
    smtp_sink.refuse.add("gone@alpha.example")
    takedown = w.takedown("alpha", "http://a.example/x")
    settle(w.services)
    w.advance(24)
    settle(w.services)
    [notice] = w.notices()
    assert notice.state == "failed" and notice.escalation == 1
    assert w.takedown_row(takedown).state == "to_notice"  # not noticed: nobody was told
    with w.services.engine.connect() as conn:
        contact = conn.execute(select(Contact).where(Contact.id == w.contacts["alpha"])).one()
    assert contact.suspect and "refused" in contact.suspect_reason
    kinds = [e.kind for e in timeline.for_notice(w.services.engine, notice.id)]
    assert EventKind.DELIVERY_FAILED.value in kinds and EventKind.CONTACT_SUSPECT.value in kinds
    assert [r.id for r in notice_answers.overdue(w.services.engine)] == [notice.id]
    # a senior corrects the address and resends: delivered, the takedown noticed

    with w.services.engine.begin() as conn:
        conn.execute(
            update(Contact).where(Contact.id == w.contacts["alpha"]).values(address="abuse@alpha.example")
        )
    assert notice_answers.resend_now(w.services, notice.id, "sam")
    settle(w.services)
    [got] = smtp_sink.to("abuse@alpha.example")
    assert notice.reference in got.subject
    assert w.notice(notice.id).state == "sent" and w.takedown_row(takedown).state == "noticed"


def test_the_contacts_address_is_read_at_sending_and_do_not_contact_holds_the_notice(
    db_url: str, smtp_sink: SmtpSink
) -> None:
    w = world(db_url, smtp_sink, quiet_weekdays=())
    w.contact("alpha", address="old@alpha.example")
    w.contact("tipper")
    w.takedown("alpha", "http://a.example/x")
    held = w.takedown("tipper", "http://t.example/x")
    settle(w.services)
    with w.services.engine.begin() as conn:  # a senior corrects one contact and bars the other
        conn.execute(
            update(Contact).where(Contact.id == w.contacts["alpha"]).values(address="abuse@alpha.example")
        )
        conn.execute(update(Contact).where(Contact.id == w.contacts["tipper"]).values(do_not_contact=True))
    w.advance(24)
    settle(w.services)
    assert [m.recipients for m in smtp_sink.received] == [["abuse@alpha.example"]]
    tipper = next(n for n in w.notices() if n.contact_id == w.contacts["tipper"])
    assert tipper.state == "failed" and tipper.escalation == 1
    assert w.takedown_row(held).state == "to_notice"
    assert [r.id for r in notice_answers.overdue(w.services.engine)] == [tipper.id]


def test_concurrent_ticks_open_one_notice_per_contact_and_send_it_once(
    db_url: str, smtp_sink: SmtpSink
) -> None:
    """Eight workers' ticks at once, several times: one collecting notice per contact, each URL in
    it once, one message per notice."""
    w = world(db_url, smtp_sink)
    names = [f"c{n}" for n in range(4)]
    for name in names:
        w.contact(name)
    takedowns = [w.takedown(name, f"http://{name}.example/{k}") for name in names for k in range(3)]
    errors: list[BaseException] = []

    def race(threads: int = 8) -> None:
        barrier = threading.Barrier(threads)

        def one() -> None:
            barrier.wait()
            try:
                tick_notices(w.services)
            except Exception as exc:  # a lost race must not be an error
                errors.append(exc)

        pool = [threading.Thread(target=one) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()

    for _ in range(3):
        race()
    assert errors == []
    notices = w.notices()
    assert sorted(n.contact_id for n in notices) == sorted(w.contacts.values())
    assert sorted(t for n in notices for t in w.items_of(n.id)) == sorted(takedowns)
    w.advance(24)
    for _ in range(3):
        race()
    assert errors == []
    settle(w.services)
    assert sorted(r.recipients[0] for r in smtp_sink.received) == sorted(f"abuse@{n}.example" for n in names)
    assert w.outbox_count() == len(names)


def test_a_notice_in_the_contacts_language_from_the_hotlines_own_template_and_by_webhook(
    db_url: str, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    own = tmp_path / "templates"
    own.mkdir()
    (own / "notice.de.txt").write_text(
        "Subject: [{{ reference }}] Meldung ({{ items|length }})\n\n{% for i in items %}{{ i.url }}\n{% endfor %}"
        "Antwort: {{ link }}\n"
    )
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        w = world(db_url, smtp_sink, templates_dir=str(own))
        w.contact("dutch", language="nl")
        w.contact("german", language="de")
        w.contact("unknown", language="xx")
        w.contact("cdn", channel="webhook", address=f"http://127.0.0.1:{server.server_address[1]}/notices")
        w.takedown("dutch", "http://nl.example/a")
        w.takedown("german", "http://de.example/a")
        w.takedown("unknown", "http://xx.example/a")
        cdn = w.takedown("cdn", "http://cdn.example/a", route=json.dumps({"ask_origin": True}))
        settle(w.services)
        w.advance(24)
        settle(w.services)
    finally:
        server.shutdown()
        server.server_close()
    [nl] = smtp_sink.to("abuse@dutch.example")
    assert "melding van materiaal" in nl.subject and "Kenmerk:" in nl.text
    [de] = smtp_sink.to("abuse@german.example")
    assert "Meldung (1)" in de.subject and "http://de.example/a" in de.text and "Antwort: https://" in de.text
    [xx] = smtp_sink.to("abuse@unknown.example")
    assert "Dear abuse team" in xx.text  # no template in that language: the hotline's default
    [body] = received
    assert body["urls"] == ["http://cdn.example/a"] and str(body["reference"]).startswith("MP-")
    assert str(body["answer_link"]).startswith("https://hotline.example/provider/")
    [item] = body["items"]
    assert item["ask_origin"] is True and item["hashes"][0]["sha256"]
    assert "image" not in json.dumps(body) and "base64" not in json.dumps(body)  # hashes, never media
    assert w.takedown_row(cdn).state == "noticed"
