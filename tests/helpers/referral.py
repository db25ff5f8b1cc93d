"""Referral test helpers: a case built by hand (synthetic hashes of generated patterns, no media
of any concern), a key ring in a temporary folder, and seeded items with decisions, locations and
takedowns for the database side."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert

from meldpunt.referral.case import Case, CaseItem, Decision, Event, Hosting, Medium
from meldpunt.settings import Settings
from meldpunt.store.reports import Medium as MediumRow
from meldpunt.store.triage import TriageClassification, TriageStatus
from meldpunt.stores.signing import KeyRing, load_key_ring

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def hashes(seed: str) -> dict[str, str]:
    """Synthetic hashes (of a seed string, not of any image)."""
    b = seed.encode()
    return {
        "md5": hashlib.md5(b).hexdigest(),
        "sha1": hashlib.sha1(b).hexdigest(),
        "sha256": hashlib.sha256(b).hexdigest(),
        "pdq": hashlib.sha256(b + b"pdq").hexdigest(),
    }


def medium(id: int, url: str, size: int, seed: str, **more: Any) -> Medium:
    h = hashes(seed)
    return Medium(id, url, "image", size, h["md5"], h["sha1"], h["sha256"], h["pdq"], **more)


def sample_case(
    reference: str = "RF-20261201-TEST01", *, url: str = "https://files.example/a/b/pic.jpg"
) -> Case:
    item = CaseItem(
        item_id=7,
        url=url,
        final_url=url.replace("/a/", "/final/"),
        host="files.example",
        server_ip="192.0.2.10",
        urgent=True,
        reported_at=T0,
        reports=((T0, "public"), (T0 + timedelta(hours=1), "api:partner")),
        classification={"status": "baseline", "us": "A1"},
        classified_at=T0 + timedelta(hours=2),
        decisions=(
            Decision({"status": "baseline", "us": "A1"}, "anna", "analyst", "first", T0 + timedelta(hours=1)),
            Decision({"status": "baseline", "us": "A1"}, "sam", "senior", "second", T0 + timedelta(hours=2)),
        ),
        decided_by="analyst",
        hosting=Hosting(
            host="files.example",
            ip="192.0.2.10",
            asn=64496,
            network_owner="Example Net",
            country="NL",
            provider="Example Hosting",
            abuse_contact="abuse@hosting.example",
            located_at=T0 + timedelta(hours=3),
        ),
        media=(
            medium(11, url, 1234, "pattern-11", outcome="new"),
            medium(12, url + "?v=2", 99, "pattern-12", outcome="known", banks=("own",)),
        ),
        timeline=(
            Event(T0 + timedelta(hours=2), "takedown_opened", "system"),
            Event(T0 + timedelta(hours=3), "notice_sent", "system", {"reference": "MP-AAAA-BBBB"}),
            Event(T0 + timedelta(hours=4), "police_due", "system"),
        ),
        takedown_state="noticed",
        references={"notice": ("MP-AAAA-BBBB",)},
    )
    evil = CaseItem(
        item_id=8,
        url='https://evil.example/=HYPERLINK("http://x")',
        host="evil.example",
        classification={"status": "nationally_illegal"},
        hosting=Hosting(provider="-cmd|' /C calc'!A0", country="US"),
        media=(),
    )
    return Case(reference, T0 + timedelta(days=1), "Meldpunt Test", "sam", (item, evil))


def key_ring(folder: Path) -> tuple[Settings, KeyRing]:
    settings = Settings(db=f"sqlite:///{folder / 'ring.db'}")
    return settings, load_key_ring(settings, now=T0)


def seed_classified(
    engine: Engine,
    item_id: int,
    *,
    now: datetime,
    values: dict[str, str] | None = None,
    users: tuple[str, str] = ("anna", "sam"),
    seed: str = "",
) -> int:
    """Two opinions and a final classification on ``item_id``, and one medium with synthetic
    hashes; the medium's id."""
    values = values or {"status": "baseline", "us": "A1"}
    cls = json.dumps(values, sort_keys=True)
    h = hashes(seed or f"item-{item_id}")
    with engine.begin() as conn:
        for role, user in zip(("first", "second"), users, strict=True):
            conn.execute(
                insert(TriageClassification).values(
                    item_id=item_id, user=user, role=role, classification=cls, created_at=now
                )
            )
        conn.execute(
            insert(TriageStatus).values(
                item_id=item_id, stage="final", final=cls, illegal=True, finalized_at=now, updated_at=now
            )
        )
        return int(
            conn.execute(
                insert(MediumRow)
                .values(
                    item_id=item_id,
                    url=f"https://files.example/{item_id}.png",
                    url_key=hashlib.sha256(f"m{item_id}".encode()).hexdigest(),
                    kind="image",
                    size=4321,
                    outcome="new",
                    created_at=now,
                    **h,
                )
                .returning(MediumRow.id)
            ).scalar_one()
        )
