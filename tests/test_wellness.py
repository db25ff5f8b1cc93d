"""Analyst wellness: preferences over the administrator's defaults (audited when changed), the
daily viewing-time counter (reset at the UTC day boundary), the break reminder, the daily limit
(reveal refused with a clear page) and preferences applied to thumbnails. Benign generated images
only; nothing reaches the internet."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from PIL import Image

from meldpunt.bootstrap import Services
from meldpunt.settings import Settings
from meldpunt.wellness import (
    BUILTIN,
    PAGE_SECONDS,
    REVEAL_SECONDS,
    Defaults,
    PrefsError,
    Wellness,
)
from tests.helpers.staff import token
from tests.helpers.workspace import Workspace, _workspace, reveal

T0 = datetime(2026, 11, 22, 23, 50, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Setup:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.clock = Clock()
        self.wellness = Wellness(ws.world.engine, clock=self.clock)
        ws.staff.app.state.wellness = self.wellness


def _setup(db_url: str) -> Iterator[Setup]:
    with ExitStack() as stack:
        yield Setup(_workspace(db_url, stack))


@pytest.fixture
def well(sqlite_db: str) -> Iterator[Setup]:
    yield from _setup(sqlite_db)


@pytest.fixture
def well_any(db_url: str) -> Iterator[Setup]:
    yield from _setup(db_url)


# -- preferences and defaults ---------------------------------------------------------------------


def test_defaults_user_overrides_and_admin_changes(sqlite_db: str) -> None:
    services = Services(Settings.from_env({}, db=sqlite_db))
    try:
        w = Wellness(services.engine)
        ana = w.prefs("ana")
        assert (ana.blur, ana.greyscale, ana.thumb_size) == (True, True, 320)
        assert (ana.daily_limit_minutes, ana.break_every_minutes) == (120, 25)
        assert ana.own == frozenset() and w.defaults() == BUILTIN

        mine = w.set_prefs("ana", {"blur": False, "daily_limit_minutes": 90})
        assert mine.blur is False and mine.daily_limit_minutes == 90 and mine.greyscale is True
        assert mine.own == {"blur", "daily_limit_minutes"}
        with pytest.raises(PrefsError):
            w.set_prefs("ana", {"thumb_size": 5000})
        with pytest.raises(PrefsError):
            w.set_prefs("ana", {"sound": True})

        with services.engine.begin() as conn:
            changed = w.set_defaults(
                conn, "root", Defaults(blur=True, greyscale=False, daily_limit_minutes=60, thumb_size=240)
            )
        assert changed == {
            "greyscale": [True, False],
            "daily_limit_minutes": [120, 60],
            "thumb_size": [320, 240],
        }
        ana = w.prefs("ana")  # her own values win; the rest follow the new defaults
        assert (ana.blur, ana.daily_limit_minutes, ana.greyscale, ana.thumb_size) == (False, 90, False, 240)
        ben = w.prefs("ben")
        assert (ben.blur, ben.daily_limit_minutes, ben.greyscale) == (True, 60, False)
        w.set_prefs("ana", {"blur": None, "daily_limit_minutes": None})  # back to the defaults
        assert w.prefs("ana").own == frozenset() and w.prefs("ana").daily_limit_minutes == 60
    finally:
        services.close()


def test_the_pages_and_the_audit_of_defaults(well: Setup) -> None:
    ws = well.ws
    ana = ws.user("ana", "analyst")
    root = ws.user("root", "admin")

    page = ana.get("/me/preferences")
    assert page.status_code == 200 and "Video sound is always off" in page.text
    assert ana.get("/admin/wellness-defaults").status_code == 403
    r = ana.post(
        "/me/preferences",
        data={"token": token(page.text), "blur": "off", "greyscale": "", "thumb_size": "480"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/me/preferences?saved=1", r.text
    assert well.wellness.prefs("ana").own == {"blur", "thumb_size"}
    # switching the blur off is a setting change: in the audit log, with what changed
    [(actor, subject, details)] = ws.audit("prefs.change")
    assert (actor, subject) == ("ana", "user:ana")
    assert details == {"blur": [True, False], "thumb_size": [320, 480]}
    bad = ana.post("/me/preferences", data={"token": token(page.text), "daily_limit_minutes": "3"})
    assert bad.status_code == 400 and "daily limit" in bad.text
    forged = ana.post("/me/preferences", data={"token": "1.x.y", "blur": "on"})
    assert forged.status_code == 400 and well.wellness.prefs("ana").blur is False

    page = root.get("/admin/wellness-defaults")
    assert page.status_code == 200
    form = {
        "token": token(page.text),
        "blur": "on",
        "greyscale": "on",
        "block_reveal_over_limit": "on",
        "thumb_size": "320",
        "daily_limit_minutes": "100",
        "break_every_minutes": "20",
    }
    assert root.post("/admin/wellness-defaults", data=form).status_code == 303
    assert well.wellness.defaults().daily_limit_minutes == 100
    assert well.wellness.prefs("ana").break_every_minutes == 20
    (event,) = ws.audit("settings.change")
    assert event == (
        "root",
        "wellness:defaults",
        {"daily_limit_minutes": [120, 100], "break_every_minutes": [25, 20]},
    )
    assert root.post("/admin/wellness-defaults", data=form).status_code == 303
    assert len(ws.audit("settings.change")) == 1  # nothing changed: nothing recorded
    bad = root.post("/admin/wellness-defaults", data={**form, "break_every_minutes": "x"})
    assert bad.status_code == 400 and well.wellness.defaults().break_every_minutes == 20


# -- viewing time ---------------------------------------------------------------------------------


def test_the_counter_accumulates_and_resets_at_the_utc_day(well_any: Setup) -> None:
    ws, w = well_any.ws, well_any.wellness
    iid = ws.item(images=1)
    (mid,) = ws.media(iid)
    ana = ws.user("ana", "analyst")

    page = ana.get(f"/items/{iid}")
    assert page.status_code == 200 and "Viewing time today: 0 min of 120" in page.text
    ana.get(f"/items/{iid}")
    page = ana.get(f"/items/{iid}")
    assert w.today("ana").seconds == 3 * PAGE_SECONDS
    assert "Viewing time today: 1 min of 120" in page.text
    ana.get(f"/items/{iid}/media/{mid}/thumb")  # thumbnails are part of the page: not counted again
    assert w.today("ana").seconds == 3 * PAGE_SECONDS
    where = reveal(ana, iid, mid, page.text)
    assert w.today("ana").seconds == 3 * PAGE_SECONDS + REVEAL_SECONDS
    ana.get(where)  # the item's page showing the reveal beside the form: counted with the reveal
    assert w.today("ana").seconds == 3 * PAGE_SECONDS + REVEAL_SECONDS
    assert "Viewing time today: 2 min of 120" in ana.get("/queue").text  # the queue shows it, adds nothing
    assert w.today("ben").seconds == 0

    well_any.clock.now = T0 + timedelta(minutes=15)  # 00:05 UTC the next day: a new total
    assert w.today("ana").seconds == 0
    ana.get(f"/items/{iid}")
    assert w.today("ana").seconds == PAGE_SECONDS
    well_any.clock.now = T0  # yesterday's total is still there
    assert w.today("ana").seconds == 3 * PAGE_SECONDS + REVEAL_SECONDS


def test_a_break_reminder_after_each_interval(well: Setup) -> None:
    ws, w = well.ws, well.wellness
    iid = ws.item(images=1)
    ana = ws.user("ana", "analyst")
    w.add("ana", 25 * 60 - PAGE_SECONDS + 1)
    assert "short break" not in ana.get("/queue").text
    page = ana.get(f"/items/{iid}")  # passes 25 minutes
    assert "Time for a short break" in page.text
    w.add("ana", 10 * 60)  # 35 minutes: the reminder has been up for its window
    assert "short break" not in ana.get("/queue").text
    w.add("ana", 15 * 60)  # 50 minutes: the next one
    assert "Time for a short break" in ana.get("/queue").text


def test_past_the_daily_limit_reveals_are_refused(well: Setup) -> None:
    ws, w = well.ws, well.wellness
    iid = ws.item(images=1)
    (mid,) = ws.media(iid)
    ana = ws.user("ana", "analyst")
    before = ana.get(f"/items/{iid}")
    assert "/reveal" in before.text
    w.add("ana", 120 * 60)

    page = ana.get(f"/items/{iid}")
    assert "passed your daily viewing limit" in page.text
    assert "Reveals are switched off until tomorrow" in page.text
    assert f"/media/{mid}/reveal" not in page.text  # no reveal button
    r = ana.post(f"/items/{iid}/media/{mid}/reveal", data={"token": token(before.text)})
    assert r.status_code == 403 and "Daily viewing limit reached" in r.text
    assert "nothing was revealed" in r.text
    assert ws.audit("item.reveal") == []

    # the administrator may let reveals go on past the limit (the advice stays)
    with w.engine.begin() as conn:
        w.set_defaults(conn, "root", Defaults(block_reveal_over_limit=False))
    page = ana.get(f"/items/{iid}")
    assert "passed your daily viewing limit" in page.text and f"/media/{mid}/reveal" in page.text
    reveal(ana, iid, mid, page.text)


# -- preferences applied to thumbnails ------------------------------------------------------------


def _energy(jpeg: bytes) -> float:
    """Mean absolute difference between neighbouring pixels: the high-frequency energy."""
    a = np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"), dtype=np.float64)
    return float(np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean())


def test_preferences_apply_to_thumbnails(well: Setup) -> None:
    ws, w = well.ws, well.wellness
    iid = ws.item(images=1)
    (mid,) = ws.media(iid)
    ana = ws.user("ana", "analyst")
    ben = ws.user("ben", "analyst")
    url = f"/items/{iid}/media/{mid}/thumb"

    blurred = ben.get(url)
    assert blurred.status_code == 200 and blurred.headers["content-type"] == "image/jpeg"
    w.set_prefs("ana", {"blur": False, "greyscale": False, "thumb_size": 160})
    sharp = ana.get(url)
    assert sharp.status_code == 200
    assert _energy(sharp.content) > 2 * _energy(blurred.content)
    picture = Image.open(io.BytesIO(sharp.content))
    assert max(picture.size) == 160 and picture.mode == "RGB"
    rgb = np.asarray(picture, dtype=np.int16)
    assert np.abs(rgb[..., 0] - rgb[..., 1]).max() > 10  # colour kept
    default = Image.open(io.BytesIO(blurred.content))
    assert max(default.size) == 320 and default.mode == "L"


def test_saves_at_the_same_moment_do_not_collide(well_any: Setup) -> None:
    """Preferences and defaults are one upsert each: saved from many threads at once, none fails and
    the last word stands."""
    from concurrent.futures import ThreadPoolExecutor

    w = well_any.wellness

    def save(n: int) -> None:
        w.set_prefs("ana", {"thumb_size": 160 if n % 2 else 320})
        with w.engine.begin() as conn:
            w.set_defaults(conn, "adm", Defaults(daily_limit_minutes=60 + n % 2))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(save, range(40)))
    assert w.prefs("ana").thumb_size in (160, 320)
    assert w.prefs("bob").daily_limit_minutes in (60, 61)
