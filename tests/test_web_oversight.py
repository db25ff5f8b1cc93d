"""The oversight pages in-process: the police liaison (urgent list, a classified item's facts and
hashes, never the media), seniors' statistics, and the sign-in events in the audit log (the
administrator's pages: ``test_web_admin``). Every image is a
benign generated scene; nothing reaches the internet."""

from __future__ import annotations

import getpass
import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import select

from meldpunt.audit import AuditLog
from meldpunt.store.db import create_db_engine
from meldpunt.store.reports import Item, Medium
from tests.helpers.accounts import PASSWORD
from tests.helpers.cli import run
from tests.helpers.staff import token
from tests.helpers.workspace import Workspace, _workspace
from tests.helpers.world import ILLEGAL


@pytest.fixture
def ws(db_url: str) -> Iterator[Workspace]:
    with ExitStack() as stack:
        yield _workspace(db_url, stack)


def finalise(ws: Workspace, item_id: int) -> None:
    """Two analysts agree that the item is illegal: its classification is final."""
    for name in ("cls-a", "cls-b"):
        ws.staff.accounts.create_user(name, "analyst", PASSWORD)
        ws.triage.claim(item_id, name)
        ws.triage.classify(item_id, name, ILLEGAL)
    assert ws.triage.final_classification(item_id) is not None


def test_police_sees_facts_and_hashes_never_the_media(ws: Workspace) -> None:
    final = ws.item(images=2, urgent=True)
    open_item = ws.item(images=1)
    finalise(ws, final)
    police = ws.user("pol", "police")
    with ws.world.engine.connect() as conn:
        media = conn.execute(
            select(Medium.id, Medium.md5, Medium.sha1, Medium.sha256, Medium.pdq).where(
                Medium.item_id == final
            )
        ).all()
        url = conn.execute(select(Item.url).where(Item.id == final)).scalar_one()
        open_pdq = conn.execute(select(Medium.pdq).where(Medium.item_id == open_item)).scalar_one()

    page = police.get(f"/police/items/{final}")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    for m in media:
        for value in (m.md5, m.sha1, m.sha256, m.pdq):
            if value:
                assert value in page.text
    assert "Legal status (ICCAM): Baseline" in page.text  # scheme values by their titles
    assert "US category (NCMEC/industry): Prepubescent, sex act" in page.text
    assert "<img" not in page.text and "/thumb" not in page.text and "reveal" not in page.text.lower()

    pending = police.get(f"/police/items/{open_item}")
    assert pending.status_code == 200
    assert re.search(r'id="state">awaiting review<', pending.text)
    assert open_pdq not in pending.text and "no final classification" in pending.text
    assert police.get("/police/items/999999").status_code == 404

    urgent = police.get("/police/urgent")
    assert urgent.status_code == 200
    assert url in urgent.text and "192.0.2.7" in urgent.text and f'/police/items/{final}"' in urgent.text
    assert f'/police/items/{open_item}"' not in urgent.text  # not urgent

    # never the item pages, the media or a reveal
    mid = int(media[0].id)
    assert police.get(f"/items/{final}").status_code == 403
    assert police.get(f"/items/{final}/media/{mid}/thumb").status_code == 403
    assert police.post(f"/items/{final}/media/{mid}/reveal", data={"token": "x"}).status_code == 403
    assert police.get("/queue").status_code == 403


def test_logout_events_and_staff_pages_for_seniors(ws: Workspace) -> None:
    ws.item(images=1)
    sen = ws.user("sen", "senior")
    ana = ws.user("ana", "analyst")
    stats = sen.get("/stats")
    assert stats.status_code == 200 and "<td>awaiting review</td><td>1</td>" in stats.text
    assert "Final classifications: 0" in stats.text
    assert ana.get("/stats").status_code == 403
    assert ana.get("/admin/audit").status_code == 403

    me = ana.get("/me")
    assert ana.post("/logout", data={"token": token(me.text)}).status_code == 303
    assert ws.audit("staff.logout") == [("ana", "", {})]
    me = sen.get("/me")
    everywhere = re.findall(r'name="token" value="([^"]+)"', me.text)[-1]
    assert sen.post("/logout-everywhere", data={"token": everywhere}).status_code == 303
    assert ws.audit("staff.logout_everywhere") == [("sen", "", {"sessions": 1})]


def test_bank_commands_are_audited(sqlite_db: str, tmp_path: Path) -> None:
    db = ["--db", sqlite_db]
    lst = tmp_path / "md5s.txt"
    lst.write_text("".join(f"{i:032x}\n" for i in range(1, 4)))  # synthetic hashes
    assert run(*db, "bank", "import", "synthetic", str(lst), "--type", "md5", "--policy", "auto")[0] == 0
    assert run(*db, "bank", "set", "synthetic", "--policy", "hint")[0] == 0
    assert run(*db, "bank", "export", "synthetic", "-o", str(tmp_path / "out.csv"))[0] == 0
    assert run(*db, "bank", "delete", "synthetic")[0] == 0
    engine = create_db_engine(sqlite_db)
    log = AuditLog(engine)
    found = [(e.actor, e.action, e.subject, e.details) for e in log.entries(action="bank.*")]
    actor = f"cli:{getpass.getuser()}"
    assert [(a, act, s) for a, act, s, _ in found] == [
        (actor, "bank.import", "bank:synthetic"),
        (actor, "bank.set", "bank:synthetic"),
        (actor, "bank.export", "bank:synthetic"),
        (actor, "bank.delete", "bank:synthetic"),
    ]
    assert found[0][3]["entries"] == 3 and found[1][3] == {"policy": "hint"} and found[3][3] == {"entries": 3}
    assert log.verify().ok
    engine.dispose()
