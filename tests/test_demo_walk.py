"""The demo end to end: fresh lists, the loopback demo web, reports walked by a worker to every state."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from meldpunt.demo.run import prepare
from meldpunt.pipeline.intake import list_items, report_status
from meldpunt.pipeline.worker import drain
from meldpunt.settings import Settings
from meldpunt.store.reports import Item


@pytest.mark.slow
def test_demo_reports_reach_every_state(tmp_path: Path) -> None:
    demo = prepare(Settings.from_env({}), tmp_path / "demo.db", act_story=False)
    try:
        drain(demo.services)
    finally:
        demo.stop()
    states = {i.url.split("/", 3)[-1]: i.state for i in list_items(demo.services)}
    assert states["gallery/sunset.html"] == "known"
    assert states["old-link"] == "known"  # followed the redirect
    assert states["gallery/mixed.html"] == "needs_review"
    assert states["blog/waves.html"] == "known"  # only a benign-listed file
    assert states["clips/dusk.html"] == "known"  # the video, by its frames
    assert states["gone.html"] == "unavailable"
    assert states["media/sunset-over-hills.jpg"] == "known"  # a direct media link
    assert all(
        i.state in ("known", "needs_review", "unavailable", "failed") for i in list_items(demo.services)
    )
    assert all(report_status(demo.services, code) is not None for code in demo.receipts)
    # the urgent report comes first
    assert list_items(demo.services)[0].urgent
    # the hosting server's address is recorded, also from a server that closes every connection
    # (the demo web speaks HTTP/1.0)
    with demo.services.engine.connect() as conn:
        ips = dict(conn.execute(select(Item.url, Item.server_ip).where(Item.state == "known")).all())
    assert ips and all(ip == "127.0.0.1" for ip in ips.values()), ips


def test_demo_has_one_enrolled_account_per_role(tmp_path: Path) -> None:
    demo = prepare(Settings.from_env({}), tmp_path / "demo.db", act_story=False)
    demo.stop()
    # one per role, and a second senior (see test_the_demo_can_show_every_triage_flow)
    assert sorted(login.role for login in demo.logins) == ["admin", "analyst", "police", "senior", "senior"]
    accounts = demo.services.accounts()  # the secrets are sealed: the same key opens them
    login = demo.logins[0]
    result = accounts.check_password(login.name, login.password)
    assert result.error is None and result.user_id is not None
    assert accounts.check_second_factor(result.user_id, login.code) is None


def test_the_demo_accounts_take_the_code_an_authenticator_shows_now(tmp_path: Path) -> None:
    """Enrolment used to spend the current step, so the code every authenticator app (and the
    printed "later codes" command) showed was refused as a replay for up to 30 seconds."""
    import pyotp

    demo = prepare(Settings.from_env({}), tmp_path / "demo.db", act_story=False)
    demo.stop()
    accounts = demo.services.accounts()
    for login in demo.logins[:2]:
        result = accounts.check_password(login.name, login.password)
        assert result.user_id is not None
        assert accounts.check_second_factor(result.user_id, pyotp.TOTP(login.totp_secret).now()) is None


@pytest.mark.slow
def test_in_the_demo_a_decision_settles_the_copy_waiting_on_the_slow_host(tmp_path: Path) -> None:
    """#8: the slow host's copy of mixed.html held the file the analysts had just classified, and
    still waited for a human; now it leaves the queue by itself."""
    from meldpunt.stores.review import ReviewStore
    from meldpunt.triage import Triage

    demo = prepare(Settings.from_env({}), tmp_path / "demo.db", act_story=False)
    try:
        drain(demo.services)
    finally:
        demo.stop()
    by_url = {i.url.split("/", 3)[-1]: i for i in list_items(demo.services)}
    first, copy = by_url["gallery/mixed.html"], by_url["slow/gallery/mixed.html"]
    assert first.state == copy.state == "needs_review"
    settings = demo.services.settings
    triage = Triage(demo.services.engine, settings=settings, review_store=ReviewStore.from_settings(settings))
    illegal = {"status": "baseline", "us": "A1", "age_band": "prepubescent"}
    for login in demo.logins[:2]:  # the analyst, then the senior as the second opinion
        triage.claim(first.id, login.name)
        triage.classify(first.id, login.name, illegal)
    assert triage.final_classification(first.id) is not None
    drain(demo.services)
    states = {i.id: i.state for i in list_items(demo.services)}
    assert (states[first.id], states[copy.id]) == ("classified", "known")
    # what still waits is the page whose photo was cut short: hashed from what decodes (#8), for review
    waiting = [i for i in list_items(demo.services) if i.state == "needs_review"]
    assert [i.url.split("/", 3)[-1] for i in waiting] == ["broken.html"]
    assert triage.resolved_without_viewing().awaiting == 1


@pytest.mark.slow
def test_the_demo_can_show_every_triage_flow(tmp_path: Path) -> None:
    """A disagreement waits in the demo, and the demo has a senior who gave neither opinion to
    resolve it (with one senior, a disagreement between the analyst and the senior could not be
    resolved by anyone); the twin behind the slow host stays in the queue for the analysts."""
    from meldpunt.demo.run import seed_disagreement
    from meldpunt.triage import Triage, TriageConfig

    demo = prepare(Settings.from_env({}), tmp_path / "demo.db", act_story=False)
    try:
        assert seed_disagreement(demo.services, demo.disputed_url) is None  # not walked yet
        drain(demo.services)
    finally:
        demo.stop()
    item = seed_disagreement(demo.services, demo.disputed_url)
    assert item is not None
    assert seed_disagreement(demo.services, demo.disputed_url) is None  # once only
    triage = Triage(demo.services.engine, settings=demo.services.settings, config=TriageConfig.from_env())
    assert triage.stage(item) == "disagreement"
    names = {login.name for login in demo.logins}
    assert {"demo-analyst", "demo-senior", "demo-senior2"} <= names
    triage.claim(item, "demo-senior")
    triage.resolve(item, "demo-senior", {"status": "not_illegal"})
    assert triage.stage(item) == "final"
    waiting = [i.url.split("/", 3)[-1] for i in list_items(demo.services) if i.state == "needs_review"]
    assert "slow/gallery/mixed.html" in waiting and "gallery/mixed.html" not in waiting
