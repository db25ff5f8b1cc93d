"""Urgent alerts on real components: an SMTP server and a webhook server on loopback, an injected
clock. An urgent item alerts the first on-call person and the webhook within one settle; nobody
acknowledging escalates to the next, then to everyone again; an acknowledgement stops it and
records the time it took; concurrent ticks raise one alert per item and escalate once."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from meldpunt.act import alerts
from meldpunt.act.context import ActNeeds
from meldpunt.act.ticks import run_ticks, settle
from meldpunt.audit import entries
from meldpunt.domain.reports import ItemState
from meldpunt.pipeline.intake import ReportIn, submit_report
from meldpunt.store.acting import Alert, OutboxMessage
from meldpunt.store.reports import Item
from tests.helpers.acting import seed_item
from tests.helpers.alerts import START, HookServer, alert_events, alert_services, hook_server
from tests.helpers.smtp import SmtpSink, smtp_sink

__all__ = ["hook_server", "smtp_sink"]  # fixtures

ANN, BERT = "ann@hotline.example", "bert@hotline.example"


def _alerts(services: ActNeeds) -> list[alerts.AlertView]:
    return alerts.open_alerts(services.engine) + alerts.acknowledged_alerts(services.engine)


def test_an_urgent_report_alerts_on_call_one_and_the_webhook_within_one_settle(
    db_url: str, smtp_sink: SmtpSink, hook_server: HookServer
) -> None:
    services, _clock = alert_services(db_url, smtp_sink, hook_server)
    # the fetch of a loopback address is refused by the fetcher at once: nothing leaves the machine
    receipt = submit_report(services, ReportIn(urls=["http://127.0.0.1:9/live"], urgent=True))
    settle(services)
    [alert] = _alerts(services)
    assert alert.item_id == receipt.item_ids[0] and alert.open and alert.level == 0
    assert alert.raised_at == START and alert.next_escalation_at == START + timedelta(minutes=10)
    [mail] = smtp_sink.to(ANN)
    assert smtp_sink.to(BERT) == []
    assert f"ALERT-{alert.id}" in mail.subject and mail.message["X-Priority"] == "1"
    assert f"https://hotline.example/alerts#alert-{alert.id}" in mail.text and "Ann Oncall" in mail.text
    assert "127.0.0.1:9" not in mail.text  # never the reported URL, never a description
    [page] = hook_server.bodies()
    assert page["reference"] == f"ALERT-{alert.id}" and page["level"] == 1 and page["event"] == "raised"
    assert page["link"] == f"https://hotline.example/alerts#alert-{alert.id}"
    assert "127.0.0.1:9" not in str(page) and set(page) >= {"text", "link", "reference", "level"}
    kinds = [e.kind for e in alert_events(services, alert.id)]
    assert kinds == ["alert_raised", "alert_sent", "alert_sent"]
    settle(services)  # nothing more until someone acknowledges or the time is up
    assert len(smtp_sink.received) == 1 and len(hook_server.bodies()) == 1


def test_no_acknowledgement_escalates_to_the_next_then_everyone_until_acknowledged(
    db_url: str, smtp_sink: SmtpSink, hook_server: HookServer
) -> None:
    services, clock = alert_services(db_url, smtp_sink, hook_server)
    _item_id, _ = seed_item(
        services.engine, "http://x.test/a", now=START, urgent=True, state=ItemState.RECEIVED
    )
    settle(services)
    [alert] = _alerts(services)
    clock.advance(9 * 60)
    settle(services)
    assert smtp_sink.to(BERT) == []  # not yet
    clock.advance(60)
    settle(services)
    [to_bert] = smtp_sink.to(BERT)
    assert "again" in to_bert.subject and len(smtp_sink.to(ANN)) == 1
    escalated = hook_server.bodies("escalated")
    assert [b["level"] for b in escalated] == [2]
    [row] = alerts.open_alerts(services.engine)
    assert row.level == 1 and row.next_escalation_at == START + timedelta(minutes=20)
    # after the last on-call person: everyone again, every ack_minutes
    clock.advance(10 * 60)
    settle(services)
    assert len(smtp_sink.to(ANN)) == 2 and len(smtp_sink.to(BERT)) == 2
    assert [b["level"] for b in hook_server.bodies("escalated")] == [2, 3]
    assert hook_server.bodies("escalated")[-1]["whole_list"] is True
    clock.advance(4 * 60)
    done = alerts.acknowledge(services, alert.id, by="carla")
    assert done.by_you and done.alert.ack_seconds == 24 * 60 and done.alert.acknowledged_by == "carla"
    settle(services)
    [acked] = hook_server.bodies("acknowledged")
    assert acked["by"] == "carla" and acked["ack_seconds"] == 24 * 60
    sent = len(smtp_sink.received)
    clock.advance(3600)
    settle(services)
    assert len(smtp_sink.received) == sent  # acknowledged: no further escalation
    again = alerts.acknowledge(services, alert.id, by="dirk")
    assert not again.by_you and again.alert.acknowledged_by == "carla"
    kinds = [e.kind for e in alert_events(services, alert.id)]
    assert kinds.count("alert_escalated") == 2 and kinds.count("alert_acknowledged") == 1
    with services.engine.connect() as conn:
        [audit] = list(entries(conn, action="alert.acknowledge"))
    assert audit.actor == "carla" and audit.subject == f"alert:{alert.id}"
    assert audit.details["ack_seconds"] == 24 * 60


def test_a_senior_marks_an_item_urgent_once_and_it_is_audited(
    db_url: str, smtp_sink: SmtpSink, hook_server: HookServer
) -> None:
    services, _ = alert_services(db_url, smtp_sink, hook_server)
    item_id, _ = seed_item(services.engine, "http://x.test/b", now=START, state=ItemState.NEEDS_REVIEW)
    first = alerts.raise_alert(services, item_id, by="sara", reason="live stream, child visible")
    second = alerts.raise_alert(services, item_id, by="sara")
    assert first.new and not second.new and first.alert.id == second.alert.id
    settle(services)
    assert len(smtp_sink.to(ANN)) == 1 and len(hook_server.bodies()) == 1
    assert "live stream" not in smtp_sink.to(ANN)[0].text  # the reason stays in the workspace
    assert "live stream" not in str(hook_server.bodies())
    with services.engine.connect() as conn:
        assert conn.execute(select(Item.urgent).where(Item.id == item_id)).scalar_one() is True
        [audit] = list(entries(conn, action="alert.raise"))
    assert audit.actor == "sara" and audit.subject == f"item:{item_id}"
    with pytest.raises(alerts.NoSuchItem):
        alerts.raise_alert(services, 10**9, by="sara")
    with pytest.raises(alerts.NoSuchAlert):
        alerts.acknowledge(services, 10**9, by="sara")


def test_an_urgent_item_without_an_alert_gets_one_but_not_old_ones(db_url: str, smtp_sink: SmtpSink) -> None:
    """A report that committed just before a crash alerts on the next tick; an urgent item from
    long ago (before alerts were set up) does not page anyone."""
    services, _clock = alert_services(db_url, smtp_sink, None)
    _old, _ = seed_item(services.engine, "http://x.test/old", now=START - timedelta(days=3), urgent=True)
    new, _ = seed_item(services.engine, "http://x.test/new", now=START - timedelta(minutes=5), urgent=True)
    settle(services)
    assert [a.item_id for a in _alerts(services)] == [new]


def test_an_undeliverable_alert_stays_on_the_page_with_its_failure_counted(
    db_url: str, smtp_sink: SmtpSink
) -> None:
    services, _clock = alert_services(db_url, smtp_sink, None, oncall=("Nobody <not an address>",))
    _item_id, _ = seed_item(services.engine, "http://x.test/c", now=START, urgent=True)
    settle(services)
    [alert] = alerts.open_alerts(services.engine)
    assert alerts.failed_deliveries(services.engine, [alert.id]) == {alert.id: 1}
    [failed] = [e for e in alert_events(services, alert.id) if e.kind == "delivery_failed"]
    assert "not an e-mail address" in failed.detail["error"]


def test_concurrent_ticks_raise_one_alert_per_item_and_escalate_once(
    db_url: str, smtp_sink: SmtpSink, hook_server: HookServer
) -> None:
    services, clock = alert_services(db_url, smtp_sink, hook_server)
    items = [
        seed_item(services.engine, f"http://x.test/{n}", now=START, urgent=True, state=ItemState.RECEIVED)[0]
        for n in range(6)
    ]

    def race() -> None:
        barrier = threading.Barrier(4)
        errors: list[BaseException] = []

        def tick() -> None:
            try:
                barrier.wait()
                for _ in range(3):
                    alerts.tick_alerts(services)
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=tick) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors

    race()
    with services.engine.connect() as conn:
        rows = conn.execute(select(Alert.item_id, Alert.level)).all()
        assert sorted(r.item_id for r in rows) == items and {r.level for r in rows} == {0}
    clock.advance(10 * 60)
    race()
    with services.engine.connect() as conn:
        assert {r.level for r in conn.execute(select(Alert.level))} == {1}
        rounds = conn.execute(
            select(OutboxMessage.ref_id, OutboxMessage.round, OutboxMessage.channel, OutboxMessage.target)
        ).all()
    assert len(rounds) == len(set(rounds)) == 6 * 2 * 2  # (e-mail + webhook) x (level 1, level 2)
    settle(services)
    assert len(smtp_sink.to(ANN)) == 6 and len(smtp_sink.to(BERT)) == 6
    for alert in _alerts(services):
        kinds = [e.kind for e in alert_events(services, alert.id)]
        assert kinds.count("alert_raised") == 1 and kinds.count("alert_escalated") == 1


def test_acknowledging_and_escalating_at_once_never_both_win(db_url: str) -> None:
    services, clock = alert_services(db_url, None, None, oncall=())
    _item_id, _ = seed_item(services.engine, "http://x.test/d", now=START, urgent=True)
    run_ticks(services)
    [alert] = alerts.open_alerts(services.engine)
    clock.advance(10 * 60)
    alerts.acknowledge(services, alert.id, by="carla")
    run_ticks(services)  # the escalation read it open before? its conditional update loses
    [done] = alerts.acknowledged_alerts(services.engine)
    assert done.level == 0 and done.ack_seconds == 600 and done.next_escalation_at is None
    with services.engine.begin() as conn:  # an escalation that read it while open finds it moved
        moved = conn.execute(
            update(Alert).where(Alert.id == alert.id, Alert.state == "open", Alert.level == 0).values(level=1)
        ).rowcount
    assert moved == 0


def test_an_alert_still_waiting_to_be_sent_is_not_sent_once_acknowledged(db_url: str) -> None:
    services, clock = alert_services(db_url, None, None)
    services = type(services)(
        replace(services.settings, mail=replace(services.settings.mail, smtp_host="127.0.0.1", smtp_port=1)),
        clock,
    )
    seed_item(services.engine, "http://x.test/e", now=START, urgent=True)
    settle(services)  # the SMTP server is down: the e-mail waits for its retry
    [alert] = alerts.open_alerts(services.engine)
    with services.engine.connect() as conn:
        [row] = conn.execute(select(OutboxMessage).where(OutboxMessage.ref_id == alert.id)).all()
    assert row.state == "queued" and row.attempts == 1
    alerts.acknowledge(services, alert.id, by="carla")
    clock.advance(3600)
    settle(services)
    with services.engine.connect() as conn:
        [row] = conn.execute(select(OutboxMessage).where(OutboxMessage.ref_id == alert.id)).all()
    assert row.state == "failed" and row.attempts == 1 and "acknowledged by carla" in row.last_error
