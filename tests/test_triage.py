"""Triage: schemes as data, the queue, claims, near-duplicate groups, blind second opinions, seniors'
resolutions and corrections, and the hotline's own bank fed by final classifications.

Every hash here is synthetic (random hex); no media are involved."""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, update

from meldpunt.audit import AuditLog
from meldpunt.bootstrap import Services
from meldpunt.domain.reports import MediumOutcome
from meldpunt.pipeline.walk import medium_outcome
from meldpunt.settings import Settings
from meldpunt.signals import MediaKind, Signals
from meldpunt.store.banks import BankRepository
from meldpunt.store.db import create_db_engine
from meldpunt.store.models import Bank, BankEntry
from meldpunt.store.reports import Medium
from meldpunt.stores.review import ReviewStore
from meldpunt.triage import (
    ClaimConflict,
    Classification,
    ClassificationError,
    NotAllowed,
    SchemeError,
    Schemes,
    TriageConfig,
    TriageError,
)
from tests.helpers.world import ILLEGAL, NATIONAL, NOT_ILLEGAL, T0, Clock, World, rand_hex

ILLEGAL_SERIES = {**ILLEGAL, "series": "synthetic-series"}


def flip_bits(pdq: str, bits: int, rng: random.Random) -> str:
    v = int(pdq, 16)
    for b in rng.sample(range(256), bits):
        v ^= 1 << b
    return f"{v:064x}"


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> World:
    settings = Settings(db=db_url, review_key_file=str(tmp_path / "review.key"))
    engine = create_db_engine(db_url)
    return World(engine, settings, Clock(), ReviewStore(secrets.token_bytes(32)))


@pytest.fixture
def sqlite_world(sqlite_db: str, tmp_path: Path) -> World:
    settings = Settings(db=sqlite_db, review_key_file=str(tmp_path / "review.key"))
    return World(create_db_engine(sqlite_db), settings, Clock(), ReviewStore(secrets.token_bytes(32)))


# -- schemes -----------------------------------------------------------------------------------------


def test_default_schemes_load_and_validate() -> None:
    s = Schemes.load()
    assert {"status", "us", "uk", "age_band"} <= set(s.schemes)
    assert {"series_known", "victim_identifiable", "evidence"} <= set(s.flags)
    c = s.validate(ILLEGAL_SERIES)
    assert s.is_illegal(c) and not s.keeps_media(c)
    assert not s.is_illegal(s.validate(NOT_ILLEGAL))
    assert s.is_illegal(s.validate(NATIONAL))
    labels = s.labels(c, "meldpunt:test")
    assert labels.category == "baseline" and labels.baseline is True
    assert labels.series == "synthetic-series" and labels.source == "meldpunt:test"
    assert set(labels.tags) == {"us:A1", "age_band:prepubescent", "series_known"}
    assert s.keeps_media(s.validate({**ILLEGAL, "flags": ["evidence"]}))


def test_validation_lists_every_problem() -> None:
    s = Schemes.load()
    with pytest.raises(ClassificationError) as e:
        s.validate({"us": "Z9", "colour": "red", "flags": ["nope"]})
    text = str(e.value)
    assert "status" in text and "required" in text
    assert "'Z9' is not one of A1, A2, B1, B2" in text
    assert "unknown scheme 'colour'" in text and "unknown flag 'nope'" in text
    with pytest.raises(ClassificationError, match="us must be empty when status is not_illegal"):
        s.validate({"status": "not_illegal", "us": "A1"})
    with pytest.raises(ClassificationError, match="flags"):
        Classification.from_dict({"status": "baseline", "flags": "series_known"})


def test_a_hotline_adds_its_own_schemes_file(tmp_path: Path) -> None:
    extra = tmp_path / "ours.yaml"
    extra.write_text(
        "schemes:\n"
        "  - name: uk\n    title: UK (ours)\n    labels: category\n"
        "    values: [{value: A, illegal: true}, {value: B, illegal: true}]\n"
        "  - name: platform\n    must_agree: false\n    labels: tag\n    values: [{value: forum}, {value: chat}]\n"
        "flags:\n  - {name: reported_to_police, title: Reported to police}\n"
    )
    s = Schemes.load(extra)
    assert [v.value for v in s.schemes["uk"].values] == ["A", "B"]
    assert "platform" in s.schemes and "reported_to_police" in s.flags and "series_known" in s.flags
    c = s.validate(
        {"status": "nationally_illegal", "uk": "B", "platform": "chat", "flags": ["reported_to_police"]}
    )
    assert set(s.labels(c, "x").tags) == {"uk:B", "platform:chat", "reported_to_police"}
    with pytest.raises(ClassificationError):
        s.validate({"status": "nationally_illegal", "uk": "C"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("schemes:\n  - name: x\n    values: [{value: a, illegal: maybe}]\n")
    with pytest.raises(SchemeError, match="illegal must be true or false"):
        Schemes.load(bad)
    with pytest.raises(SchemeError, match="excludes unknown"):
        Schemes.from_data({"schemes": [{"name": "x", "values": [{"value": "a", "excludes": ["y"]}]}]})


def test_agreement_is_on_the_must_agree_schemes() -> None:
    s = Schemes.load()
    a = s.validate({**ILLEGAL, "age_band": "pubescent"})
    b = s.validate({**ILLEGAL, "flags": ["victim_identifiable"]})
    assert s.agree(a, b)
    assert not s.agree(a, s.validate({**ILLEGAL, "us": "A2"}))
    combined = s.combine(a, b)
    assert combined.values["age_band"] == "prepubescent"
    assert combined.flags == ("series_known", "victim_identifiable")


# -- queue and claims ----------------------------------------------------------------------------------


def test_queue_urgent_first_then_oldest_with_filters(world: World) -> None:
    w = world
    anna = w.user("anna", "analyst")
    old = w.item(age_minutes=60)
    new = w.item(age_minutes=5)
    urgent_new = w.item(urgent=True, age_minutes=1)
    urgent_old = w.item(urgent=True, age_minutes=30, source="api:partner-be")
    w.item(state="known")
    w.item(state="fetched")
    t = w.triage()
    assert [e.item_id for e in t.entries(anna)] == [urgent_old, urgent_new, old, new]
    assert [e.item_id for e in t.entries(anna, source="api:partner-be")] == [urgent_old]
    assert [e.item_id for e in t.entries(anna, source="api:*")] == [urgent_old]
    assert [e.item_id for e in t.entries(anna, source="public")] == [urgent_new, old, new]
    with pytest.raises(NotAllowed):
        t.entries(anna, state="disagreement")
    with pytest.raises(TriageError):
        t.entries(anna, state="final")
    with pytest.raises(NotAllowed):
        t.entries(w.user("root", "admin"))


def test_claims_conflict_renew_and_expire(world: World) -> None:
    w = world
    anna, bert = w.user("anna", "analyst"), w.user("bert", "analyst")
    item = w.item()
    t = w.triage()
    c = t.claim(item, anna)
    assert c.expires_at == T0 + timedelta(minutes=15) and not c.renewed
    with pytest.raises(ClaimConflict) as e:
        t.claim(item, bert)
    assert e.value.holder == "anna"
    assert [(x.claimed_by, x.mine) for x in t.entries(bert)] == [("anna", False)]
    assert [(x.claimed_by, x.mine) for x in t.entries(anna)] == [("anna", True)]  # yours, not "free"
    with pytest.raises(ClaimConflict):
        t.classify(item, bert, NOT_ILLEGAL)
    w.clock.now = T0 + timedelta(minutes=10)
    renewed = t.claim(item, anna)
    assert renewed.renewed and renewed.expires_at == T0 + timedelta(minutes=25)
    w.clock.now = T0 + timedelta(minutes=26)  # anna's claim has expired: the item is free
    assert t.claim_of(item) is None
    taken = t.claim(item, bert, minutes=5)
    assert taken.user == "bert" and not taken.renewed
    assert t.release(item, bert) and t.claim_of(item) is None
    with pytest.raises(NotAllowed):
        t.claim(item, w.user("pol", "police"))
    with pytest.raises(TriageError):
        t.claim(w.item(state="known"), anna)
    assert AuditLog(w.engine).verify().ok
    assert len(AuditLog(w.engine).entries(action="item.claim")) == 3


def flip_at(pdq: str, bits: range) -> str:
    v = int(pdq, 16)
    for b in bits:
        v ^= 1 << b
    return f"{v:064x}"


def test_near_duplicates_form_a_group(sqlite_world: World) -> None:
    w = sqlite_world
    base = w.pdq()
    a = w.item(pdqs=(base,))
    b = w.item(pdqs=(flip_at(base, range(0, 8)),))  # 8 bits from a
    c = w.item(pdqs=(w.pdq(), flip_at(base, range(0, 16))))  # 16 from a, 8 from b: joins through b
    same = w.item(pdqs=())
    far = w.item(pdqs=(flip_at(base, range(0, 60)),))
    with w.engine.begin() as conn:  # an exact copy of a's medium (by SHA-256) without a PDQ
        sha = conn.execute(select(Medium.sha256).where(Medium.item_id == a)).scalar_one()
        conn.execute(
            insert(Medium).values(
                item_id=same,
                url="https://example.test/copy",
                url_key="0" * 64,
                sha256=sha,
                outcome="new",
                created_at=T0,
            )
        )
    t = w.triage()
    assert t.group_of(a) == sorted([a, b, c, same])
    assert t.group_of(c) == t.group_of(a)
    assert t.group_of(far) == [far]
    assert w.triage(group_distance=7).group_of(a) == sorted([a, same])
    # a final item leaves the groups
    anna = w.user("anna", "analyst")
    t.classify(b, anna, NOT_ILLEGAL)
    assert t.group_of(a) == sorted([a, same])


# -- the main flow -------------------------------------------------------------------------------------


def test_second_opinion_agree_banks_and_purges_then_a_copy_is_auto_classified(world: World) -> None:
    w = world
    anna, bert = w.user("anna", "analyst"), w.user("bert", "analyst")
    rng = random.Random(3)
    pdq = w.pdq()
    item = w.item(pdqs=(pdq,))
    # a saved PDQ index exists before: the fresh matcher below must catch up with the new import
    Services(w.settings).matcher()
    t = w.triage()

    t.claim(item, anna)
    [first] = t.classify(item, anna, ILLEGAL_SERIES)
    assert (first.role, first.stage) == ("first", "second")
    assert w.blobs_of(item) == 1 and w.own_entries() == []
    # the first analyst no longer sees it; nor can they give the second opinion
    assert [e.item_id for e in t.entries(anna)] == []
    with pytest.raises(TriageError, match="different analyst"):
        t.classify(item, anna, ILLEGAL_SERIES)
    with pytest.raises(TriageError, match="different analyst"):
        t.claim(item, anna)

    # bert sees it like any fresh item, and his view reveals no opinion
    assert [e.item_id for e in t.entries(bert)] == [item]
    view = t.item_for_review(item, bert)
    assert view.can_classify and len(view.media) == 1 and view.media[0].viewable
    flat = repr(view)
    for secret in ("baseline", "A1", "synthetic-series", "series_known", "anna"):
        assert secret not in flat
    assert not t.item_for_review(item, anna).can_classify
    with pytest.raises(NotAllowed):
        t.opinions(item, bert)

    t.claim(item, bert)
    [second] = t.classify(item, bert, {**ILLEGAL, "flags": ["victim_identifiable"]})
    assert (second.role, second.stage) == ("second", "final")
    final = t.final_classification(item)
    assert final is not None and final.series == "synthetic-series"
    assert final.flags == ("series_known", "victim_identifiable")
    assert t.claim_of(item) is None and t.entries(bert) == []
    assert w.blobs_of(item) == 0

    entries = w.own_entries()
    assert {st for st, _, _ in entries} == {"md5", "sha1", "sha256", "pdq"}
    labels = entries[0][2]
    for part in ('"category":"baseline"', '"baseline":true', '"series":"synthetic-series"'):
        assert part in labels
    assert '"source":"meldpunt:test"' in labels and "victim_identifiable" in labels
    with w.engine.connect() as conn:
        assert conn.execute(select(Bank.policy).where(Bank.name == "hotline-own")).scalar() == "auto"
    assert BankRepository(w.engine).imports("hotline-own")[0]["entry_count"] == 4

    # a new copy, anywhere, a few bits off: a fresh matcher's index has caught up
    near = flip_bits(pdq, 4, rng)
    copy = Signals(
        path="copy.png",
        size=1000,
        md5=rand_hex(rng, 32),
        sha1=rand_hex(rng, 40),
        sha256=rand_hex(rng, 64),
        kind=MediaKind.IMAGE,
        pdq=near,
        pdq_quality=100,
    )
    services = Services(w.settings)
    try:
        matches = services.matcher().match(copy)
    finally:
        services.close()
    assert [(m.bank, m.signal_type, m.policy) for m in matches] == [("hotline-own", "pdq", "auto")]
    assert matches[0].labels.category == "baseline"
    assert medium_outcome(matches, copy)[0] is MediumOutcome.KNOWN

    counts = t.resolved_without_viewing()
    assert counts.classified == 1 and counts.awaiting == 0
    assert [e.action for e in AuditLog(w.engine).entries(action="item.classify")] == ["item.classify"] * 2
    assert AuditLog(w.engine).verify().ok


def test_disagreement_is_resolved_by_a_senior_then_corrected(world: World) -> None:
    w = world
    anna, bert = w.user("anna", "analyst"), w.user("bert", "analyst")
    sara, sam = w.user("sara", "senior"), w.user("sam", "senior")
    item = w.item(pdqs=(w.pdq(),))
    t = w.triage()
    repo = BankRepository(w.engine)

    assert t.classify(item, anna, ILLEGAL)[0].stage == "second"
    assert t.classify(item, bert, NATIONAL)[0].stage == "disagreement"
    assert w.blobs_of(item) == 1 and w.own_entries() == []
    assert t.entries(anna) == [] and t.entries(bert) == []
    assert [e.item_id for e in t.entries(sara, state="disagreement")] == [item]
    with pytest.raises(NotAllowed):
        t.resolve(item, bert, ILLEGAL)
    with pytest.raises(TriageError, match="disagreement"):
        t.classify(item, sara, ILLEGAL)
    assert [(o.user, o.role) for o in t.opinions(item, sara)] == [("anna", "first"), ("bert", "second")]

    out = t.resolve(item, sara, NATIONAL)
    assert (out.role, out.stage) == ("resolution", "final")
    assert w.blobs_of(item) == 0
    entries = w.own_entries()
    assert len(entries) == 4 and all('"category":"nationally_illegal"' in e[2] for e in entries)
    with pytest.raises(TriageError):
        t.resolve(item, sam, NATIONAL)
    [d] = t.decisions(sam)
    assert (d.item_id, d.via, d.illegal, d.banked) == (item, "resolution", True, True)
    assert d.classification.values["status"] == "nationally_illegal"
    with pytest.raises(NotAllowed):
        t.decisions(anna)

    # relabel: re-imported, nothing deleted, the epoch stays
    epoch = repo.counter("pdq_epoch")
    with pytest.raises(NotAllowed):
        t.correct(item, anna, ILLEGAL)
    t.correct(item, sam, ILLEGAL)
    entries = w.own_entries()
    assert len(entries) == 4 and all('"category":"baseline"' in e[2] for e in entries)
    assert repo.counter("pdq_epoch") == epoch

    # retract: not illegal after all -> the entries go and PDQ indexes must rebuild
    t.correct(item, sam, NOT_ILLEGAL)
    [d] = t.decisions(sam)
    assert (d.via, d.illegal, d.banked) == ("correction", False, False)
    assert w.own_entries() == []
    assert repo.counter("pdq_epoch") == epoch + 1
    final = t.final_classification(item)
    assert final is not None and final.values == {"status": "not_illegal"}
    actions = [e.action for e in AuditLog(w.engine).entries(action="item.*")]
    assert actions.count("item.resolve") == 1 and actions.count("item.correct") == 2
    assert AuditLog(w.engine).verify().ok


def test_not_illegal_is_final_at_once_and_evidence_keeps_media(sqlite_world: World) -> None:
    w = sqlite_world
    anna, bert = w.user("anna", "analyst"), w.user("bert", "analyst")
    t = w.triage()
    a = w.item(pdqs=(w.pdq(),))
    [o] = t.classify(a, anna, NOT_ILLEGAL)
    assert (o.role, o.stage) == ("first", "final")
    assert w.own_entries() == [] and w.blobs_of(a) == 0  # not illegal: not banked (default)

    b = w.item(pdqs=(w.pdq(),))
    t.classify(b, anna, {**ILLEGAL, "flags": ["evidence"]})
    t.classify(b, bert, ILLEGAL)
    assert t.stage(b) == "final"
    assert w.blobs_of(b) == 0  # moved to the evidence store (tests/test_evidence.py)
    assert "evidence" not in w.own_entries()[0][2]  # evidence is not a bank tag

    # everything needs a second opinion when configured; nothing does with second_opinion off
    c = w.item()
    assert w.triage(second_opinion_all=True).classify(c, anna, NOT_ILLEGAL)[0].stage == "second"
    d = w.item()
    assert w.triage(second_opinion=False).classify(d, anna, ILLEGAL)[0].stage == "final"

    w.item(state="known")
    w.item(state="known")
    counts = t.resolved_without_viewing()
    assert (counts.known, counts.classified) == (2, 3)


def test_group_decision_covers_near_duplicates(sqlite_world: World) -> None:
    w = sqlite_world
    anna, bert, cleo = w.user("anna", "analyst"), w.user("bert", "analyst"), w.user("cleo", "analyst")
    rng = random.Random(5)
    base = w.pdq()
    a = w.item(pdqs=(base,))
    b = w.item(pdqs=(flip_bits(base, 3, rng),))
    c = w.item(pdqs=(flip_bits(base, 2, rng),))
    other = w.item(pdqs=(w.pdq(),))
    t = w.triage()
    t.claim(c, cleo)  # someone else works on c: the group decision leaves it alone
    out = t.classify(a, anna, ILLEGAL, group=True)
    assert sorted((o.item_id, o.stage) for o in out) == [(a, "second"), (b, "second")]
    out = t.classify(b, bert, ILLEGAL, group=True)
    assert sorted((o.item_id, o.role, o.stage) for o in out) == [
        (a, "second", "final"),
        (b, "second", "final"),
    ]
    assert t.stage(c) is None and t.stage(other) is None
    assert len({k for st, k, _ in w.own_entries() if st == "pdq"}) == 2
    assert AuditLog(w.engine).verify().ok


def _media_of(w: World, item_id: int) -> list[int]:
    with w.engine.connect() as conn:
        return [
            int(m)
            for m in conn.execute(
                select(Medium.id).where(Medium.item_id == item_id).order_by(Medium.id)
            ).scalars()
        ]


def _hashes(w: World, medium_id: int) -> set[str]:
    with w.engine.connect() as conn:
        r = conn.execute(
            select(Medium.md5, Medium.sha1, Medium.sha256, Medium.pdq).where(Medium.id == medium_id)
        ).one()
    return {r.md5, r.sha1, r.sha256, r.pdq}


def test_a_decision_covers_the_media_chosen_and_only_those_are_banked(sqlite_world: World) -> None:
    w = sqlite_world
    anna, bert = w.user("anna", "analyst"), w.user("bert", "analyst")
    t = w.triage()
    rng = random.Random(11)
    photo_pdq = w.pdq()
    a = w.item(pdqs=(photo_pdq, w.pdq()))  # the photo, and a site logo beside it
    photo, logo = _media_of(w, a)
    other = w.item(pdqs=(w.pdq(),))

    with pytest.raises(ClassificationError, match="not among this item's media"):
        t.classify(a, anna, {**ILLEGAL, "media": [_media_of(w, other)[0]]})
    with pytest.raises(ClassificationError, match="at least one"):
        t.classify(a, anna, {**ILLEGAL, "media": []})
    assert t.stage(a) is None

    # a near-duplicate item in the group: the choice carries over to its copy of the photo only
    b = w.item(pdqs=(flip_bits(photo_pdq, 3, rng), w.pdq()))
    b_photo, b_logo = _media_of(w, b)
    out = t.classify(a, anna, {**ILLEGAL, "media": [photo]}, group=True)
    assert sorted(o.item_id for o in out) == [a, b]
    t.classify(a, bert, {**ILLEGAL, "media": [photo, logo]})  # both chose the photo
    t.classify(b, bert, ILLEGAL)  # no choice given: the first's choice stands
    assert t.stage(a) == t.stage(b) == "final"
    final = t.final_classification(a)
    assert final is not None and final.media == (photo,)
    banked = {k for _, k, _ in w.own_entries()}
    assert _hashes(w, photo) <= banked and _hashes(w, b_photo) <= banked
    assert not (_hashes(w, logo) | _hashes(w, b_logo)) & banked

    # two analysts who chose different media do not agree
    c = w.item(pdqs=(w.pdq(), w.pdq()))
    c1, c2 = _media_of(w, c)
    t.classify(c, anna, {**ILLEGAL, "media": [c1]})
    assert t.classify(c, bert, {**ILLEGAL, "media": [c2]})[0].stage == "disagreement"


def test_a_pdq_without_a_quality_neither_groups_nor_is_banked(sqlite_world: World) -> None:
    """One "usable PDQ" rule (``domain.pdq.pdq_usable``): a hash whose quality is missing is
    unusable for grouping and banking, as it always was for matching."""
    w = sqlite_world
    anna, bert = w.user("anna", "analyst"), w.user("bert", "analyst")
    base = w.pdq()
    a = w.item(pdqs=(base,))
    b = w.item(pdqs=(flip_at(base, range(0, 3)),))  # 3 bits from a: a near-duplicate
    (b_medium,) = _media_of(w, b)
    t = w.triage()
    assert t.group_of(a) == sorted([a, b])
    with w.engine.begin() as conn:
        conn.execute(update(Medium).where(Medium.id == b_medium).values(pdq_quality=None))
    assert t.group_of(a) == [a] and t.group_of(b) == [b]
    t.classify(b, anna, ILLEGAL)
    t.classify(b, bert, ILLEGAL)
    assert t.stage(b) == "final"
    banked = {k for _, k, _ in w.own_entries()}
    with w.engine.connect() as conn:
        sha256, pdq = conn.execute(select(Medium.sha256, Medium.pdq).where(Medium.id == b_medium)).one()
    assert sha256 in banked and pdq not in banked


def test_a_correction_leaves_entries_another_item_banked_too(sqlite_world: World) -> None:
    w = sqlite_world
    sara = w.user("sara", "senior")
    t = w.triage(second_opinion=False)
    x = w.item(pdqs=(w.pdq(),))
    y = w.item(pdqs=(w.pdq(),))
    [mx], [my] = _media_of(w, x), _media_of(w, y)
    with w.engine.begin() as conn:  # the same file reached through two reports
        r = conn.execute(
            select(Medium.md5, Medium.sha1, Medium.sha256, Medium.pdq).where(Medium.id == mx)
        ).one()
        conn.execute(
            update(Medium).where(Medium.id == my).values(md5=r.md5, sha1=r.sha1, sha256=r.sha256, pdq=r.pdq)
        )
    t.classify(x, sara, ILLEGAL)
    t.classify(y, sara, ILLEGAL)
    assert len(w.own_entries()) == 4
    t.correct(x, sara, NOT_ILLEGAL)
    assert len(w.own_entries()) == 4  # y's decision still stands behind them
    t.correct(y, sara, NOT_ILLEGAL)
    assert w.own_entries() == []
    assert AuditLog(w.engine).verify().ok


def test_invalid_classification_changes_nothing(sqlite_world: World) -> None:
    w = sqlite_world
    anna = w.user("anna", "analyst")
    item = w.item()
    t = w.triage()
    with pytest.raises(ClassificationError):
        t.classify(item, anna, {"status": "maybe"})
    assert t.stage(item) is None
    with pytest.raises(NotAllowed):
        t.classify(item, "nobody", NOT_ILLEGAL)


def test_bank_sync_catches_up_after_a_crash(sqlite_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    w = sqlite_world
    anna = w.user("anna", "analyst")
    item = w.item(pdqs=(w.pdq(),))
    t = w.triage(second_opinion=False)
    calls: list[int] = []
    real: Callable[[], int] = t.sync_bank
    monkeypatch.setattr(t, "sync_bank", lambda: calls.append(1) or 0)  # type: ignore[func-returns-value]
    t.classify(item, anna, ILLEGAL)
    assert calls and w.own_entries() == []
    assert real() == 1 and len(w.own_entries()) == 4
    assert real() == 0
    with w.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(BankEntry)).scalar_one() == 4


def test_config_from_the_environment() -> None:
    cfg = TriageConfig.from_env(
        {
            "MELDPUNT_TRIAGE_OWN_BANK": "ours",
            "MELDPUNT_TRIAGE_SECOND_OPINION": "no",
            "MELDPUNT_TRIAGE_GROUP_DISTANCE": "12",
        },
        hotline="be",
    )
    assert (cfg.own_bank, cfg.second_opinion, cfg.group_distance, cfg.hotline) == ("ours", False, 12, "be")
    assert TriageConfig.from_env({}) == TriageConfig()


def test_migration_0005_goes_down_and_up(sqlite_db: str) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from meldpunt.store.db import alembic_config

    engine = create_db_engine(sqlite_db)
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
    assert "triage_status" not in inspect(engine).get_table_names()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    assert {"triage_claims", "triage_classifications", "triage_status"} <= set(
        inspect(engine).get_table_names()
    )


def test_scheme_titles_follow_the_language_where_the_file_gives_them(tmp_path: Path) -> None:
    schemes = Schemes.load()
    nl, en = schemes.describe("nl"), schemes.describe("en")
    status_nl = next(s for s in nl["schemes"] if s["name"] == "status")
    assert status_nl["title"] == "Juridische status (ICCAM)"
    assert [v["title"] for v in status_nl["values"]][-1] == "Niet illegaal"
    assert next(s for s in en["schemes"] if s["name"] == "status")["title"] == "Legal status (ICCAM)"
    assert schemes.describe("de") == en  # no German titles: English
    own = tmp_path / "own.yaml"
    own.write_text("schemes:\n  - {name: local, title: 'Plain title', values: [{value: x}]}\n")
    assert Schemes.load(own).describe("nl")["schemes"][-1]["title"] == "Plain title"
    own.write_text("schemes:\n  - {name: local, title: {}, values: [{value: x}]}\n")
    with pytest.raises(SchemeError, match="title is a text or a mapping"):
        Schemes.load(own)
