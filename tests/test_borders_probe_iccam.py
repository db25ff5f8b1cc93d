"""#11 probed from outside: a worker process killed (SIGKILL) between ICCAM taking a call and our
recording it. Found: the planned row stayed as if nothing had been sent, so the next attempt
posted the ISP action to ICCAM a second time, and a report was refused ("reference already used")
without saying an earlier attempt had made it. Now the row is marked unsure before the call: the
next attempt looks first (the action is found, not repeated) or says where to look (the report)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from meldpunt.act import iccam, timeline
from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock
from meldpunt.domain.acting import EventKind
from meldpunt.settings import IccamSettings, Settings
from meldpunt.store.iccam import IccamSend
from tests.helpers.iccam import FakeIccam, seed_classified

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

# the worker: the same settings, one send, killed by SIGKILL the moment ICCAM has answered
CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    from datetime import datetime
    from meldpunt.act import iccam
    from meldpunt.bootstrap import Services
    from meldpunt.clock import ManualClock
    from meldpunt.iccam.client import IccamClient
    from meldpunt.settings import IccamSettings, Settings

    args = json.loads(sys.argv[1])
    method = args["method"]
    original = getattr(IccamClient, method)

    def then_die(self, *a, **kw):
        original(self, *a, **kw)
        os.kill(os.getpid(), signal.SIGKILL)

    setattr(IccamClient, method, then_die)
    settings = Settings(db=args["db"], iccam=IccamSettings(**args["iccam"]))
    iccam.send_one(Services(settings, clock=ManualClock(datetime.fromisoformat(args["now"]))), args["send_id"])
    """
)


def _settings(db_url: str, fake: FakeIccam) -> dict[str, Any]:
    user = "nl-api"
    return {
        "url": fake.url,
        "username": user,
        "password": fake.hotlines[user].password,
        "analyst": f"{user}.analyst",
        "country": fake.hotlines[user].country,
        "export_on": True,
        "timeout_s": 5.0,
        "attempts": 3,
    }


def _killed_while_sending(db_url: str, fake: FakeIccam, send_id: int, now: datetime, method: str) -> None:
    args = {
        "db": db_url,
        "iccam": _settings(db_url, fake),
        "send_id": send_id,
        "now": now.isoformat(),
        "method": method,
    }
    r = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == -signal.SIGKILL, r.stderr


def _row(services: Services, item_id: int, what: str) -> Any:
    with services.engine.connect() as conn:
        return conn.execute(
            select(IccamSend).where(IccamSend.item_id == item_id, IccamSend.what == what)
        ).one()


def test_a_worker_killed_after_iccam_took_the_call(db_url: str, fake_iccam: FakeIccam) -> None:
    clock = ManualClock(START)
    services = Services(
        Settings(db=db_url, iccam=IccamSettings(**_settings(db_url, fake_iccam))), clock=clock
    )
    item_id = seed_classified(
        services.engine, "http://198.51.100.21/k", {"status": "baseline"}, now=clock.now(), removed=False
    )
    iccam.plan_exports(services)

    # the report: ICCAM makes it, the worker dies before our link is written
    report = _row(services, item_id, "report")
    _killed_while_sending(db_url, fake_iccam, report.id, clock.now(), "post_report")
    assert len(fake_iccam.reports) == 1
    assert _row(services, item_id, "report").unsure  # marked before the call
    assert iccam.send_one(services, report.id) == "failed"  # ICCAM refuses the reference twice
    assert len(fake_iccam.reports) == 1  # never a second report
    [failed] = [
        e.detail
        for e in timeline.for_item(services.engine, item_id)
        if e.kind == EventKind.ICCAM_FAILED.value
    ]
    assert "already used" in failed["reason"] and "look it up there" in failed["reason"]

    # an action: a report made in full on a second item, then the worker dies after the ISP action
    other = seed_classified(
        services.engine, "http://198.51.100.22/l", {"status": "baseline"}, now=clock.now(), removed=False
    )
    iccam.plan_exports(services)
    for what in ("report", "assessment"):
        assert iccam.send_one(services, _row(services, other, what).id) == "sent"
    action = _row(services, other, "action:2")
    _killed_while_sending(db_url, fake_iccam, action.id, clock.now(), "post_action")
    content = next(c for c in fake_iccam.contents.values() if c.actions)
    assert [a["actionType"] for a in content.actions] == [2]
    assert iccam.send_one(services, action.id) == "sent"
    assert [a["actionType"] for a in content.actions] == [2]  # found there, not posted again
    [exported] = [
        e.detail
        for e in timeline.for_item(services.engine, other)
        if e.kind == EventKind.ICCAM_EXPORTED.value and e.detail.get("action_type") == 2
    ]
    assert exported["found"] is True
    assert not _row(services, other, "action:2").unsure
    services.close()
