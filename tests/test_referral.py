"""Referrals on the database (SQLite and PostgreSQL): the cases due, a package made from seeded
items and verified, the takedowns referred, the timeline and the audit log, media only when held
and asked for, downloads counted and audited; and the CLI (create, list, verify)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from meldpunt.act import referrals
from meldpunt.audit import entries as audit_entries
from meldpunt.bootstrap import Services
from meldpunt.cli import app
from meldpunt.clock import ManualClock
from meldpunt.domain.acting import EventKind, TakedownState
from meldpunt.referral import verify
from meldpunt.settings import Settings
from meldpunt.store.acting import ActionEvent, Takedown
from tests.helpers.acting import seed_item, seed_location, seed_takedown
from tests.helpers.cli import runner
from tests.helpers.referral import T0, seed_classified


@pytest.fixture
def services(db_url: str, tmp_path: Path) -> Iterator[Services]:
    settings = Settings.from_env({"MELDPUNT_REFERRAL_DIR": str(tmp_path / "refs")}, db=db_url)
    s = Services(settings, clock=ManualClock(T0 + timedelta(days=1)))
    yield s
    s.close()


def _world(services: Services) -> dict[str, int]:
    """Three items: ``old`` due (not urgent, oldest), ``urgent`` due (urgent, newer), ``plain`` not due."""
    e = services.engine
    services.accounts().create_user("anna", "analyst", "correct horse battery staple")
    services.accounts().create_user("sam", "senior", "correct horse battery staple")
    ids = {}
    for n, (name, urgent, police, at) in enumerate(
        [
            ("old", False, "due", T0),
            ("urgent", True, "due", T0 + timedelta(hours=5)),
            ("plain", False, "", T0),
        ]
    ):
        item_id, _ = seed_item(e, f"https://files.example/{name}/page.html", now=at, urgent=urgent)
        seed_classified(e, item_id, now=at + timedelta(hours=1), seed=name)
        loc = seed_location(
            e,
            item_id,
            now=at,
            ip="192.0.2.44",
            asn=64500 + n,
            provider="Example Hosting",
            abuse_email="abuse@hosting.example",
            country="NL",
        )
        seed_takedown(
            e,
            item_id,
            now=at,
            state=TakedownState.NOTICED,
            location_id=loc,
            police=police,
            # as routing writes them (act.routing.hash_list_labels / analyst_labels)
            labels={
                "source": "hash_list",
                "banks": ["police-list"],
                "categories": ["baseline"],
                "baseline": True,
            },
        )
        ids[name] = item_id
    return ids


def _events(services: Services, item_id: int, kind: EventKind) -> list[dict[str, object]]:
    with services.engine.connect() as conn:
        return [
            json.loads(d)
            for d in conn.execute(
                select(ActionEvent.detail).where(
                    ActionEvent.item_id == item_id, ActionEvent.kind == kind.value
                )
            ).scalars()
        ]


def _audit(services: Services, action: str) -> list[tuple[str, str, dict[str, object]]]:
    with services.engine.connect() as conn:
        return [(x.actor, x.subject, dict(x.details)) for x in audit_entries(conn, action=action)]


def _police(services: Services, item_id: int) -> str:
    with services.engine.connect() as conn:
        return str(conn.execute(select(Takedown.police).where(Takedown.item_id == item_id)).scalar_one())


def test_due_cases_urgent_first_then_oldest(services: Services) -> None:
    ids = _world(services)
    due, total = referrals.due(services)
    assert [d.item_id for d in due] == [ids["urgent"], ids["old"]]
    assert total == 2
    assert due[0].urgent and due[0].country == "NL" and due[0].category == "baseline"


def test_a_package_from_seeded_items_verifies_and_refers_them(services: Services) -> None:
    ids = _world(services)
    made = referrals.create(services, [ids["urgent"], ids["plain"]], by="sam")
    pkg = made.package
    assert verify(pkg.zip_path, referrals.accepted_keys(services)).ok
    assert referrals.verify_package(services, pkg.folder).ok
    assert made.referred == (ids["urgent"],)
    assert _police(services, ids["urgent"]) == "referred"
    assert _police(services, ids["plain"]) == ""  # was not due: nothing to move
    assert _police(services, ids["old"]) == "due"
    for item_id, was_due in ((ids["urgent"], True), (ids["plain"], False)):
        [line] = _events(services, item_id, EventKind.REFERRAL_EXPORTED)
        assert line["reference"] == made.referral.reference and line["was_due"] is was_due
    [(actor, subject, details)] = _audit(services, "referral.create")
    assert actor == "sam" and subject == f"referral:{made.referral.reference}"
    assert details["items"] == [ids["urgent"], ids["plain"]]
    assert details["manifest_sha256"] == made.referral.manifest_sha256
    assert details["with_media"] is False
    # the facts: who decided (with their role), hosting, hashes; never a reporter
    case_csv = (pkg.folder / "media.csv").read_text()
    assert "anna (analyst, first); sam (senior, second)" in case_csv
    assert "https://files.example/urgent/page.html" in case_csv and "AS64501" in case_csv
    assert not list((pkg.folder).glob("media/*"))
    html = (pkg.folder / "summary.html").read_text()
    assert "receipt" not in html.lower()
    # recorded; listed urgent first; on the item
    assert [r.reference for r in referrals.for_item(services, ids["urgent"])] == [made.referral.reference]
    assert referrals.list_referrals(services)[0].urgent
    assert Path(made.referral.path) == pkg.folder.resolve()


def test_bad_choices_write_nothing(services: Services, tmp_path: Path) -> None:
    ids = _world(services)
    with pytest.raises(referrals.NoSuchItems, match="no such item"):
        referrals.create(services, [ids["old"], 999999], by="sam")
    with pytest.raises(referrals.ReferralError, match="at least one"):
        referrals.create(services, [], by="sam")
    assert not (tmp_path / "refs").exists() or not any((tmp_path / "refs").iterdir())
    assert referrals.list_referrals(services) == []
    assert _police(services, ids["old"]) == "due"


def test_media_only_when_held_as_evidence_and_asked_for(services: Services) -> None:
    ids = _world(services)
    item = ids["old"]
    data = b"\x89PNG\r\n\x1a\n" + b"benign generated pattern" * 10
    with services.engine.begin() as conn:
        from meldpunt.store.reports import Medium

        mid = int(conn.execute(select(Medium.id).where(Medium.item_id == item)).scalar_one())
        services.review_store.put(conn, mid, data)
        assert services.evidence_store.keep_from_review(
            conn, services.review_store, mid, reason=["evidence"], user="sam", now=services.clock.now()
        )
    without = referrals.create(services, [item], by="sam")
    assert not any(n.startswith("media/") for n in without.package.files)
    assert _audit(services, "evidence.access") == []
    services.clock.advance(60)  # type: ignore[attr-defined]
    made = referrals.create(services, [item], by="sam", with_media=True)
    assert made.referred == ()  # the first export moved it from due to referred already
    assert without.referred == (item,)
    [name] = [n for n in made.package.files if n.startswith("media/")]
    assert name.endswith(".png")
    assert (made.package.folder / name).read_bytes() == data
    assert made.media_files == 1
    assert verify(made.package.zip_path, referrals.accepted_keys(services)).ok
    [(actor, subject, details)] = _audit(services, "evidence.access")
    assert actor == "sam" and subject == f"medium:{mid}" and details["referral"] == made.referral.reference
    vics = json.loads((made.package.folder / "vics.json").read_text())
    assert vics["value"][0]["Media"][0]["RelativeFilePath"] == name


def test_downloads_are_counted_and_audited(services: Services) -> None:
    ids = _world(services)
    made = referrals.create(services, [ids["old"]], by="sam")
    got = referrals.download(services, made.referral.id, by="officer")
    assert got.zip_path.is_file() and zipfile.is_zipfile(got.zip_path)
    assert referrals.get(services, made.referral.id).downloads == 1
    assert referrals.get(services, made.referral.id).last_download_by == "officer"
    [(actor, subject, _)] = _audit(services, "referral.download")
    assert actor == "officer" and subject == f"referral:{made.referral.reference}"
    made.package.zip_path.unlink()
    with pytest.raises(referrals.PackageGone):
        referrals.download(services, made.referral.id, by="officer")
    with pytest.raises(referrals.NoSuchReferral):
        referrals.download(services, 424242, by="officer")
    assert len(_audit(services, "referral.download")) == 1


def test_cli_create_list_verify(services: Services, db_url: str, tmp_path: Path) -> None:
    ids = _world(services)
    out = tmp_path / "cli-out"
    r = runner.invoke(app, ["--db", db_url, "referral", "create", str(ids["old"]), "--out", str(out)])
    assert r.exit_code == 0, r.output
    [zip_path] = out.glob("RF-*.zip")
    folder = zip_path.with_suffix("")
    assert "referral RF-" in r.stdout and str(zip_path) in r.stdout
    assert _police(services, ids["old"]) == "referred"
    r = runner.invoke(app, ["--db", db_url, "referral", "list"])
    assert r.exit_code == 0 and zip_path.stem in r.stdout
    r = runner.invoke(app, ["--db", db_url, "referral", "verify", str(zip_path)])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"ok: package {zip_path.stem}")
    (folder / "summary.pdf").write_bytes((folder / "summary.pdf").read_bytes()[:-5])
    r = runner.invoke(app, ["--db", db_url, "referral", "verify", str(folder)])
    assert r.exit_code == 1
    assert "summary.pdf: changed" in r.stderr
    r = runner.invoke(app, ["--db", db_url, "referral", "create", "999999"])
    assert r.exit_code == 2 and "no such item" in r.stderr
    r = runner.invoke(app, ["--db", db_url, "referral", "verify", str(tmp_path / "nowhere")])
    assert r.exit_code == 2
    verified = _audit(services, "referral.verify")
    assert [d["ok"] for _, _, d in verified] == [True, False]
    assert all(a.startswith("cli:") for a, _, _ in verified)
    [(actor, _, _)] = _audit(services, "referral.create")
    assert actor.startswith("cli:")


def test_two_exports_at_once_move_the_takedown_once(services: Services) -> None:
    """Two seniors export the same due item at the same moment: both get a package (each export
    is a fact, on the timeline and in the audit log), the takedown moves from due once."""
    import threading

    ids = _world(services)
    results: list[referrals.Created] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def export(who: str) -> None:
        try:
            start.wait()
            results.append(referrals.create(services, [ids["urgent"]], by=who))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=export, args=(who,)) for who in ("sam", "eva")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(len(r.referred) for r in results) == [0, 1]
    assert len({r.referral.reference for r in results}) == 2
    assert all(verify(r.package.zip_path, referrals.accepted_keys(services)).ok for r in results)
    assert _police(services, ids["urgent"]) == "referred"
    lines = _events(services, ids["urgent"], EventKind.REFERRAL_EXPORTED)
    assert sorted(bool(line["was_due"]) for line in lines) == [False, True]
    assert len(_audit(services, "referral.create")) == 2


def test_an_item_a_hash_list_decided_carries_the_lists_labels_as_its_classification(
    services: Services,
) -> None:
    """No analyst saw it: the package says what the hash list said (status baseline from its
    ``baseline`` label, the list's own category kept as given), not "no classification"."""
    from meldpunt.act.routing import hash_list_labels

    at = services.clock.now()
    e = services.engine
    item_id, _ = seed_item(e, "https://files.example/listed/page.html", now=at)
    labels = hash_list_labels(
        [
            {
                "bank": "demo-known",
                "policy": "auto",
                "labels": {"baseline": True, "category": "list-cat-A"},
            }
        ],
        [],
    )
    assert labels is not None
    seed_takedown(e, item_id, now=at, state=TakedownState.NOTICED, police="due", labels=labels)
    [due] = [d for d in referrals.due(services)[0] if d.item_id == item_id]
    assert due.category == "baseline, list-cat-A"
    case = referrals.gather(services, [item_id], by="sam")
    assert dict(case.items[0].classification) == {"status": "baseline", "category": "list-cat-A"}
