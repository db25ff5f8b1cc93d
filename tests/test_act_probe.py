"""Faults found by probing the merged #10 code from outside, each kept from coming back: what
outside servers really do (compress, answer 2xx and stall, trickle, pour out endless bodies), and
what a stranger may type where a number is expected ("²".isdigit() is True, int("²") raises)."""

from __future__ import annotations

import ast
import json
import tracemalloc
import zlib
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from meldpunt.act.outbox import queue_message
from meldpunt.act.ticks import settle
from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock
from meldpunt.locate.rdap import MAX_BOOTSTRAP_BYTES, MemoryCache, RdapClient, RdapError, _decoder
from meldpunt.settings import MailSettings, NoticeSettings, Settings
from meldpunt.store.acting import Notice, OutboxMessage
from meldpunt.web.security import FormTokens
from tests.helpers.accounts import PASSWORD
from tests.helpers.locate import DOMAIN, HOSTED, NETWORK
from tests.helpers.notices import World, link_of, world
from tests.helpers.probe import Served, gzip_json, ok_then_endless, ok_then_silence, serve, trickle_ok
from tests.helpers.smtp import SmtpSink
from tests.helpers.staff import Staff, enrol

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def _services(db_url: str) -> tuple[Services, ManualClock]:
    clock = ManualClock(NOW)
    settings = Settings(
        db=db_url, mail=MailSettings(webhook_timeout_s=0.5), notice=NoticeSettings(delivery_attempts=3)
    )
    return Services(settings, clock), clock


def _queue_webhook(services: Services, url: str) -> int:
    with services.engine.begin() as conn:
        mid = queue_message(
            conn,
            purpose="probe",
            ref_id=1,
            channel="webhook",
            target=url,
            subject="Notice MP-1",
            body="Please remove http://example.test/x",
            data={"reference": "MP-1", "urls": ["http://example.test/x"]},
            now=services.clock.now(),
        )
    assert mid is not None
    return mid


def _row(services: Services, mid: int) -> Any:
    with services.engine.connect() as conn:
        return conn.execute(select(OutboxMessage).where(OutboxMessage.id == mid)).one()


def test_a_webhook_that_answered_2xx_is_delivered_once_though_its_body_never_comes(db_url: str) -> None:
    """A provider's API that says 200 and then stalls has the notice: it is recorded as sent, not
    timed out and sent again (the notice reached the provider twice before)."""
    services, clock = _services(db_url)
    with serve(ok_then_silence) as hook:
        mid = _queue_webhook(services, f"{hook.base}/notices")
        settle(services)
        clock.advance(24 * 3600)  # past every backoff
        settle(services)
        row = _row(services, mid)
        assert len(hook.posts) == 1
        assert (row.state, row.attempts, row.last_error) == ("sent", 1, "")


def test_a_webhook_answer_body_is_never_read(db_url: str) -> None:
    """Only the status of a webhook's answer counts: an endless (or huge) body is not read into
    the worker's memory; the connection is dropped once the status is known."""
    services, _ = _services(db_url)
    over: list[Served] = []

    def endless(h: BaseHTTPRequestHandler, state: Served) -> None:
        ok_then_endless(h, state)
        over.append(state)

    with serve(endless) as hook:
        mid = _queue_webhook(services, f"{hook.base}/notices")
        settle(services)
        assert _row(services, mid).state == "sent"
        for _ in range(200):  # the handler notices the hang-up at its next writes
            if over:
                break
            hook.done.wait(0.05)
        assert hook.finished == 0 and hook.cut_short == 1


def _registry(h: BaseHTTPRequestHandler, state: Served) -> None:
    path = h.path.split("?")[0]
    if path.startswith("/bootstrap/"):
        kind = path.rsplit("/", 1)[1].removesuffix(".json")
        entries = {"ipv4": ["185.0.0.0/8"], "ipv6": ["2a00::/12"], "dns": ["nl"]}[kind]
        return gzip_json(h, {"version": "1.0", "services": [[entries, [f"{state.base}/rdap/"]]]})
    if path.startswith("/rdap/ip/"):
        return gzip_json(h, NETWORK)
    if path.startswith("/rdap/domain/"):
        return gzip_json(h, DOMAIN)
    h.send_response(404)
    h.send_header("Content-Length", "0")
    h.end_headers()


def test_an_rdap_registry_that_compresses_its_answers_is_understood() -> None:
    """Registries' web servers gzip their answers when the client says it accepts gzip (httpx
    says so by default); such answers are read, not taken for "not JSON"."""
    with serve(_registry) as registry:
        client = RdapClient(f"{registry.base}/bootstrap/", timeout_s=2, cache_days=1)
        try:
            network, _ = client.network(HOSTED, MemoryCache(), NOW)
            domain, _ = client.domain("www.shop-one.nl", MemoryCache(), NOW)
        finally:
            client.close()
    assert network.data["holder"] == "Hosting One B.V."
    assert network.data["abuse_email"] == "abuse@hosting-one.example"
    assert domain.data["registrar"] == "Registrar Eén B.V."


def _bomb_body() -> bytes:
    """A bootstrap file of 64 MiB of spaces, gzip-compressed to about 64 KiB."""
    z = zlib.compressobj(9, wbits=31)
    spaces = b" " * (1024 * 1024)
    return z.compress(b"{") + b"".join(z.compress(spaces) for _ in range(64)) + z.compress(b"}") + z.flush()


BOMB: list[bytes] = []


def _bomb(h: BaseHTTPRequestHandler, state: Served) -> None:
    body = BOMB[0]
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Encoding", "gzip")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def test_a_compressed_rdap_answer_that_grows_past_the_budget_is_refused_within_it() -> None:
    """Decoding keeps to the answer budget: a small compressed answer that would grow to 64 MiB
    is refused as too large, having taken a few MiB of memory, not 64."""
    BOMB[:] = [_bomb_body()]
    with serve(_bomb) as registry:
        client = RdapClient(f"{registry.base}/bootstrap/", timeout_s=5, cache_days=1)
        tracemalloc.start()
        try:
            with pytest.raises(RdapError, match="too large"):
                client.network(HOSTED, MemoryCache(), NOW)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            client.close()
    assert peak < 4 * MAX_BOOTSTRAP_BYTES


@pytest.mark.parametrize("wbits", [31, 15, -15], ids=["gzip", "zlib", "raw-deflate"])
def test_every_compression_a_registry_may_use_is_decoded(wbits: int) -> None:
    doc = json.dumps(NETWORK).encode()
    z = zlib.compressobj(wbits=wbits)
    packed = z.compress(doc) + z.flush()
    decode = _decoder("rdap.test", "gzip" if wbits == 31 else "deflate")
    out = b"".join(decode(packed[i : i + 7], 1 << 20) for i in range(0, len(packed), 7))
    assert json.loads(out) == NETWORK
    with pytest.raises(RdapError, match="not asked for"):
        _decoder("rdap.test", "br")


def test_a_webhook_trickling_its_answer_is_cut_off_at_the_deadline(db_url: str) -> None:
    """``webhook_timeout_s`` bounds the whole exchange: a target that sends its status line a byte
    at a time (each byte within a per-read timeout) is dropped and the message tried again later,
    instead of holding a worker (and its leased job) for ever."""
    services, _ = _services(db_url)
    over: list[Served] = []

    def trickle(h: BaseHTTPRequestHandler, state: Served) -> None:
        trickle_ok(h, state)
        over.append(state)

    with serve(trickle) as hook:
        mid = _queue_webhook(services, f"{hook.base}/notices")
        settle(services)
        row = _row(services, mid)
        assert (row.state, row.attempts) == ("queued", 1) and "Timeout" in row.last_error
        for _ in range(400):  # the handler notices the hang-up at its next writes
            if over:
                break
            hook.done.wait(0.05)
        assert (hook.finished, hook.cut_short) == (0, 1)


def _trickling_registry(h: BaseHTTPRequestHandler, state: Served) -> None:
    trickle_ok(h, state)
    with state.lock:
        state.posts.append("over")


def test_an_rdap_registry_trickling_its_answer_is_given_up_at_the_deadline() -> None:
    """``rdap_timeout_s`` bounds the whole look-up: a registry sending its status line a byte at
    a time (each within the per-read timeout) is given up on, not waited on for ever."""
    with serve(_trickling_registry) as registry:
        client = RdapClient(f"{registry.base}/bootstrap/", timeout_s=0.5, cache_days=1)
        try:
            with pytest.raises(RdapError, match="no answer within"):
                client.network(HOSTED, MemoryCache(), NOW)
        finally:
            client.close()
        for _ in range(400):  # the handler notices the hang-up at its next writes
            if registry.posts:
                break
            registry.done.wait(0.05)
        assert (registry.finished, registry.cut_short) == (0, 1)


# --- numbers in forms and paths: "²".isdigit() is True, int("²") raises -------------------------

#: digits str.isdigit() accepts and int() refuses (a 500 before), and one int() takes that is no id
NOT_IDS = ("²", "1²", "⑦", "٣", "99999999999999999999")


@pytest.fixture
def sent_notice(db_url: str, smtp_sink: SmtpSink) -> Iterator[tuple[World, Staff, str, int]]:
    """A notice of one URL, sent; the app; the path of the provider's link; the takedown."""
    w = world(db_url, smtp_sink)
    w.contact("alpha")
    takedown = w.takedown("alpha", "http://a.example/0")
    settle(w.services)
    w.advance(24)
    settle(w.services)
    [message] = smtp_sink.received
    link, _ = link_of(message)
    with ExitStack() as stack:
        yield w, Staff(w.services, stack), link.replace("https://hotline.example", ""), takedown


def test_a_provider_answer_naming_no_url_by_number_is_refused_in_words(
    sent_notice: tuple[World, Staff, str, int],
) -> None:
    """The provider's page has no account in front of it: whatever comes as the URL's number is
    a 404 or 422 page, never a server error, and records nothing."""
    _, staff, path, _ = sent_notice
    provider = staff.client(("203.0.113.9", 4444))
    for raw in NOT_IDS:
        r = provider.post(path, data={"takedown": raw, "answer": "removed", "lang": "en"})
        assert r.status_code in (404, 422), raw
        assert "Please choose an answer" in r.text or "not part of this notice" in r.text, raw


def test_contact_rule_and_takedown_pages_take_only_ascii_numbers(
    sent_notice: tuple[World, Staff, str, int],
) -> None:
    """Paths naming a contact, rule or takedown with another script's digits are 404, not 500."""
    _, staff, _, _ = sent_notice
    staff.accounts.create_user("sam", "senior", PASSWORD)
    senior = staff.client()
    enrol(staff, senior, "sam")
    for raw in NOT_IDS[:3]:
        for page in (f"/act/contacts/{raw}", f"/act/rules/{raw}"):
            assert senior.get(page).status_code == 404, page


def test_a_form_token_with_other_digits_is_refused_not_a_crash() -> None:
    tokens = FormTokens(b"k" * 32, 3600)
    good = tokens.issue("report")
    assert tokens.check("report", good) is not None
    for raw in ("²", "1²", "٣" * 12, "9" * 40):
        forged = ".".join([raw, *good.split(".")[1:]])
        assert tokens.check("report", forged) is None, raw


#: ``.isdigit()`` on bytes (ASCII only by definition): (file, the expression)
BYTES_ISDIGIT = {("web/security.py", "declared")}


def test_web_and_act_code_reads_numbers_from_ascii_digits_only() -> None:
    """Every ``x.isdigit()`` guarding an ``int(x)`` in the web and act code comes with
    ``x.isascii()`` in the same statement (``"²".isdigit()`` is True; ``int("²")`` raises)."""
    root = Path(__file__).parent.parent / "src" / "meldpunt"
    unguarded = []
    for path in sorted([*root.glob("web/*.py"), *root.glob("act/*.py")]):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for stmt in ast.walk(tree):
            if not isinstance(stmt, ast.stmt) or isinstance(stmt, ast.FunctionDef | ast.ClassDef):
                continue
            calls = [
                (n.func.attr, ast.unparse(n.func.value), n.lineno)
                for n in ast.walk(stmt)
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            ]
            ascii_of = {subject for attr, subject, _ in calls if attr == "isascii"}
            for attr, subject, line in calls:
                if attr != "isdigit" or (path.relative_to(root).as_posix(), subject) in BYTES_ISDIGIT:
                    continue
                base = subject.split(".lstrip(")[0]  # "-12".lstrip("-").isdigit()
                if subject not in ascii_of and base not in ascii_of:
                    unguarded.append(f"{path.relative_to(root)}:{line} {subject}.isdigit()")
    assert sorted(set(unguarded)) == []


def test_a_reminder_never_follows_the_last_round_sooner_than_renotice_hours(
    db_url: str, smtp_sink: SmtpSink
) -> None:
    """Workers starting together after an outage may each plan a notice's next reminder from the
    rounds they read: one that read before the last reminder went out writes a due time from the
    round before. That stale schedule is put right, not sent: the provider gets one reminder a
    day, never two in a minute."""
    w = world(db_url, smtp_sink)
    w.contact("alpha")
    w.takedown("alpha", "http://a.example/0")
    settle(w.services)
    w.advance(24)  # Tuesday: the notice
    settle(w.services)
    w.advance(24)  # Wednesday: the first reminder
    settle(w.services)
    assert len(smtp_sink.received) == 2
    [notice] = w.notices()
    wednesday = w.now
    # the stale write of a worker that planned from Tuesday's round: due now, though Wednesday's
    # reminder just went out
    with w.services.engine.begin() as conn:
        conn.execute(update(Notice).where(Notice.id == notice.id).values(next_notice_at=wednesday))
    settle(w.services)
    assert len(smtp_sink.received) == 2
    again = w.notice(notice.id)
    assert again.next_notice_at is not None
    assert again.next_notice_at.replace(tzinfo=UTC) - wednesday == timedelta(hours=24)
    w.advance(24)  # Thursday: the next reminder, on time
    settle(w.services)
    assert len(smtp_sink.received) == 3
