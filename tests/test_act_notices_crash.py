"""The walk's crash test, for notices: real worker processes send many notices to a real SMTP
server; one is killed with SIGKILL while sending; after a restart every notice recorded as sent
arrived, none recorded as sent arrived twice, none was lost.

SMTP has no transaction with our database: a message the server accepted in the instant before
the kill, before the worker recorded it, is sent again after the restart — with the same
Message-ID (``<outbox-ID.ROUND@meldpunt>``), so a receiving mail system can drop the copy. Such
copies can only be of messages in flight at the kill (at most one per worker thread); a message
recorded as sent is never sent again."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import func, select

from meldpunt.bootstrap import Services
from meldpunt.settings import Settings
from meldpunt.store.acting import Notice, OutboxMessage
from meldpunt.store.reports import Job
from tests.helpers.acting import seed_contact, seed_item, seed_takedown
from tests.helpers.smtp import SmtpSink, _free_port

NOTICES = 40
KILL_AFTER = 12
THREADS = 2


class SlowSink(SmtpSink):
    """A mail server that takes a moment per message, so the kill lands while workers send."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


def _worker(db: str, sink: SmtpSink, tmp: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(tmp / "data"),
        "MELDPUNT_WORKER_POLL_S": "0.05",
        "MELDPUNT_ACT_TICK_S": "0.1",
        "MELDPUNT_MAIL_SMTP_HOST": sink.host,
        "MELDPUNT_MAIL_SMTP_PORT": str(sink.port),
        "MELDPUNT_NOTICE_BATCH_HOURS": "0",
        "MELDPUNT_NOTICE_QUIET_WEEKDAYS": "",
    }
    cmd = [sys.executable, "-m", "meldpunt.cli", "--db", db, "worker", "--threads", str(THREADS)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _ids(sink: SmtpSink) -> Counter[str]:
    with sink.lock:
        return Counter(str(r.message["Message-ID"]) for r in sink.received)


def _recorded(services: Services) -> set[str]:
    with services.engine.connect() as conn:
        rows = conn.execute(
            select(OutboxMessage.id, OutboxMessage.round).where(OutboxMessage.state == "sent")
        ).all()
    return {f"<outbox-{i}.{r}@meldpunt>" for i, r in rows}


@pytest.mark.slow
def test_sigkill_while_sending_notices_loses_none_and_repeats_none_recorded(
    db_url: str, tmp_path: Path
) -> None:
    services = Services(Settings.from_env({}, db=db_url))
    now = services.clock.now()
    for n in range(NOTICES):
        contact = seed_contact(services.engine, now=now, match=f"p{n}", address=f"abuse@p{n}.example")
        item_id, _ = seed_item(services.engine, f"http://p{n}.example/x", now=now)
        seed_takedown(services.engine, item_id, now=now, contact_id=contact)
    sink = SlowSink(port=_free_port())
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    worker = _worker(db_url, sink, tmp_path)
    try:
        deadline = time.monotonic() + 120
        while len(_ids(sink)) < KILL_AFTER and time.monotonic() < deadline:
            time.sleep(0.01)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        assert worker.returncode == -signal.SIGKILL
        at_kill = _recorded(services)
        arrived_at_kill = _ids(sink)
        assert 0 < len(arrived_at_kill) < NOTICES, "the kill did not land while sending"
        worker = _worker(db_url, sink, tmp_path)  # restarted: picks up what was left
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with services.engine.connect() as conn:
                unsent = conn.execute(
                    select(func.count()).select_from(Notice).where(Notice.state != "sent")
                ).scalar_one()
                open_jobs = conn.execute(
                    select(func.count()).select_from(Job).where(Job.state.in_(["queued", "running"]))
                ).scalar_one()
            if unsent == 0 and open_jobs == 0 and len(_recorded(services)) == NOTICES:
                break
            time.sleep(0.1)
    finally:
        worker.kill()
        worker.wait()
        controller.stop()
    arrived = _ids(sink)
    recorded = _recorded(services)
    assert len(recorded) == NOTICES, "a notice was lost"
    assert recorded <= set(arrived), "a notice recorded as sent never arrived"
    for message_id in at_kill:  # recorded before the kill: never sent again
        assert arrived[message_id] == 1, message_id
    copies = {m: n for m, n in arrived.items() if n > 1}
    assert len(copies) <= THREADS and all(n == 2 for n in copies.values()), copies
    assert set(copies) <= set(arrived_at_kill) - at_kill  # only what was in flight at the kill
    with services.engine.connect() as conn:
        per_notice = conn.execute(
            select(OutboxMessage.ref_id, func.count()).group_by(OutboxMessage.ref_id).having(func.count() > 1)
        ).all()
    assert per_notice == []  # one message per notice: the restart queued nothing twice
    print(
        f"\nkilled after {len(arrived_at_kill)} of {NOTICES} notices; copies of in-flight messages: {len(copies)}"
    )
