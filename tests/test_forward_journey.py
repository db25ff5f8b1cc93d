"""The two-instance journey of #11 (part "forward"): a report to hotline A (BE) about a benign page
hosted by a fake provider in the Netherlands is classified illegal by A's analyst, routed to partner
B (NL) and forwarded over the signed channel; B takes it into its own walk (fetch, hash, match), B's
analyst classifies it, B's routing sends its own notice to the provider's abuse address (a real SMTP
server on loopback); the provider removes the page; B's re-checks see it gone; ``removed`` goes back
to A, whose item timeline shows received, assessed, notice sent and removed, and whose takedown is
removed at B's time. Everything runs on one injected clock: the test prints the times.

The second test runs two real ``meldpunt serve`` processes (real clock, SQLite, tiny tick and poll
settings) and shows a forward arrive at B and its ``received`` come back to A across processes.
Every image is a benign generated scene; nothing leaves loopback.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from meldpunt.act.contacts import add_contact
from meldpunt.act.context import utc
from meldpunt.act.partners import Partners
from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock
from meldpunt.domain.acting import EventKind, TakedownState
from meldpunt.pipeline.intake import ReportIn, submit_report
from meldpunt.settings import MailSettings, NoticeSettings, Settings, TriageSettings
from meldpunt.store.acting import ActionEvent, Location
from meldpunt.web.act_routing import event_words
from meldpunt.web.i18n import Translator
from tests.helpers.forward import Instance, pair, route_to, settle_all, start
from tests.helpers.providers import Providers, install, seed_watched
from tests.helpers.routing import T0
from tests.helpers.serve import stop_processes
from tests.helpers.smtp import SmtpSink, _free_port
from tests.helpers.world import ILLEGAL

PASSWORD = "a long benign test passphrase 42"
#: how long the provider takes from the notice to removing the page
PROVIDER_TAKES = timedelta(hours=2)


@pytest.fixture
def journey(
    db_url: str,
    db_b: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    smtp_sink: SmtpSink,
) -> Iterator[SimpleNamespace]:
    clock = ManualClock(T0)
    world = Providers(clock)
    install(monkeypatch, world)
    provider = world.add("nlhost", "complies", after=PROVIDER_TAKES)

    def hotline(s: Settings) -> Settings:
        return replace(
            s,
            triage=TriageSettings(second_opinion=False),
            mail=MailSettings(
                smtp_host=smtp_sink.host,
                smtp_port=smtp_sink.port,
                sender="ntd@hotline.test",
                reply_to="ntd@hotline.test",
                public_url="http://127.0.0.1",
            ),
            notice=NoticeSettings(quiet_weekdays=(), holidays=()),
        )

    a = start(db_url, "be-hotline", "BE", clock, tmp_path, resolver=world.resolve, settings=hotline)
    b = start(db_b, "nl-hotline", "NL", clock, tmp_path, resolver=world.resolve, settings=hotline)
    pair(a, b)
    add_contact(
        b.services,
        {
            "scope": "domain",
            "match": provider.host,
            "name": "NL Host",
            "channel": "email",
            "address": "abuse@nlhost.test",
        },
        "test",
    )
    try:
        yield SimpleNamespace(a=a, b=b, clock=clock, provider=provider, smtp=smtp_sink)
    finally:
        a.stop()
        b.stop()
        world.close()


def _classify(inst: Instance, item_id: int, who: str) -> None:
    accounts = inst.services.accounts()
    accounts.create_user(who, "analyst", PASSWORD)
    inst.services.triage.claim(item_id, who)
    inst.services.triage.classify(item_id, who, ILLEGAL)


def _status_at(inst: Instance, item_id: int) -> dict[str, datetime]:
    with inst.services.engine.connect() as conn:
        rows = conn.execute(
            select(ActionEvent.detail).where(
                ActionEvent.item_id == item_id, ActionEvent.kind == EventKind.PARTNER_STATUS.value
            )
        ).scalars()
        return {d["status"]: utc(datetime.fromisoformat(d["at"])) for d in map(json.loads, rows)}


def test_forward_partner_notice_removal_and_status_back(journey: SimpleNamespace) -> None:
    j = journey
    a, b = j.a, j.b
    url = j.provider.url(1)
    item = submit_report(a.services, ReportIn(urls=[url])).item_ids[0]
    reported = j.clock.now()
    settle_all(a)
    _classify(a, item, "anna")  # A's analyst: illegal
    settle_all(a)
    route_to(a, item, country="NL", host=j.provider.host, provider="NL Host", asn=64500)
    j.clock.advance(600)
    settle_all(a, b)
    assert a.takedown(item).state == TakedownState.FORWARDED
    forwarded = utc(a.takedown(item).first_notice_at)
    [fin] = b.forwards_in()
    b_item = int(fin.item_id)
    assert fin.reference == a.forwards_out()[0].reference
    j.clock.advance(1800)
    _classify(b, b_item, "bram")  # B's analyst, in B's own queue
    settle_all(a, b)
    assert b.takedown(b_item).state in (TakedownState.TO_NOTICE, TakedownState.NOTICED)
    # B's notice collects for its batching window, then goes out by e-mail
    for _ in range(48):
        if j.smtp.to("abuse@nlhost.test"):
            break
        j.clock.advance(1800)
        settle_all(a, b)
    [mail] = j.smtp.to("abuse@nlhost.test")
    assert url in mail.text
    j.provider.notice()
    # the provider removes it; B's re-checks see it gone; removed goes back to A
    for _ in range(96):
        if "removed" in _status_at(a, item):
            break
        j.clock.advance(1800)
        settle_all(a, b)
    td = a.takedown(item)
    at = _status_at(a, item)
    assert list(at) == ["received", "assessed", "notice_sent", "removed"]
    assert at["removed"] == utc(b.takedown(b_item).removed_at)
    # A keeps re-checking a forwarded URL itself: whichever sees it gone first closes the takedown
    # (the partner's status, at the partner's time, or A's own third miss); the other changes nothing
    assert td.state == TakedownState.REMOVED
    if td.removal_reason == "partner nl-hotline: removed":
        assert utc(td.removed_at) == at["removed"]
    else:
        assert "404" in td.removal_reason and utc(td.removed_at) <= at["removed"] + timedelta(hours=6)
    words = [
        event_words(k, d, Translator("en"))
        for k, d, _ in a.events(item)
        if k in (EventKind.PARTNER_STATUS, EventKind.FORWARD_QUEUED, EventKind.FORWARD_SENT)
    ]
    assert words[-4:] == [
        "Partner nl-hotline: received.",
        "Partner nl-hotline: assessed.",
        "Partner nl-hotline: notice sent to the provider.",
        "Partner nl-hotline: removed.",
    ]

    def mins(x: datetime) -> int:
        return int((x - utc(reported)).total_seconds() // 60)

    print(
        "\nforward journey (injected clock, minutes from the report to A):"
        f" forwarded {mins(forwarded)}, received at B {mins(at['received'])},"
        f" B's notice sent {mins(at['notice_sent'])}, removed {mins(at['removed'])};"
        f" time to removal from A's forward: {td.minutes_from_notice} min"
    )


# -- two real processes --------------------------------------------------------------------------------------


def _env(name: str, country: str) -> dict[str, str]:
    return {
        **os.environ,
        "MELDPUNT_FETCH_ALLOWED_NETWORKS": "127.0.0.0/8",
        "MELDPUNT_WORKER_POLL_S": "0.1",
        "MELDPUNT_ACT_TICK_S": "0.1",
        "MELDPUNT_REVIEW_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "MELDPUNT_WEB_SECRET": secrets.token_hex(32),
        "MELDPUNT_PARTNER_INSTANCE_NAME": name,
        "MELDPUNT_ACT_HOME_COUNTRY": country,
    }


def _wait(what: str, check: Any, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_serve_processes_forward_and_the_status_comes_back(tmp_path: Path) -> None:
    sides = {}
    for name, country in (("be-hotline", "BE"), ("nl-hotline", "NL")):
        db = str(tmp_path / f"{name}.db")
        env = _env(name, country)
        services = Services(Settings.from_env(env, db=db))
        services.engine  # noqa: B018 - migrated before the processes start
        sides[name] = SimpleNamespace(db=db, env=env, services=services, port=_free_port())
    a, b = sides["be-hotline"], sides["nl-hotline"]
    for me, other, cc in ((a, b, "NL"), (b, a, "BE")):
        other_name = "nl-hotline" if other is b else "be-hotline"
        key = other.services.signing_keys().current.public_b64
        Partners(me.services).add(other_name, f"http://127.0.0.1:{other.port}", [cc], [key], actor="test")
    # A's item, found illegal, located in NL, waiting to be forwarded (seeded as the act tests do)
    clock = ManualClock(datetime.now(T0.tzinfo))
    world = Providers(clock)
    provider = world.add("nlhost", "complies")
    watched = seed_watched(
        a.services,
        provider,
        1,
        noticed_at=None,
        reported_at=a.services.clock.now(),
        state=TakedownState.TO_FORWARD,
        forward_to="nl-hotline",
        labels={"source": "analyst", "classification": {"status": "baseline"}, "categories": ["baseline"]},
    )
    with a.services.engine.begin() as conn:
        conn.execute(update(Location).where(Location.item_id == watched.item_id).values(country="NL"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for side in (a, b):
            log = open(tmp_path / f"{side.port}.log", "wb")  # noqa: SIM115 - closed with the process
            cmd = [
                sys.executable,
                "-m",
                "meldpunt.cli",
                "--db",
                side.db,
                "serve",
                "--port",
                str(side.port),
                "--workers",
                "1",
            ]
            procs.append(subprocess.Popen(cmd, env=side.env, stdout=log, stderr=log))
        for side in (a, b):
            url = f"http://127.0.0.1:{side.port}/health"
            _wait("the web process", lambda url=url: _up(url), 60)

        def forwarded_in() -> Any:
            with b.services.engine.connect() as conn:
                from meldpunt.store.forwarding import ForwardIn

                return conn.execute(select(ForwardIn)).first()

        fin = _wait("the forward to arrive at B", forwarded_in)
        assert fin.sender == "be-hotline" and fin.url == watched.url

        def received() -> Any:
            with a.services.engine.connect() as conn:
                rows = conn.execute(
                    select(ActionEvent.detail).where(
                        ActionEvent.item_id == watched.item_id,
                        ActionEvent.kind == EventKind.PARTNER_STATUS.value,
                    )
                ).scalars()
                return [json.loads(d)["status"] for d in rows]

        statuses = _wait("received to come back to A", received)
        assert statuses[0] == "received"
    finally:
        stop_processes(procs)
        world.close()
        for side in (a, b):
            side.services.close()


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
