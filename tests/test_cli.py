"""The ``meldpunt`` command end to end: real files, a real database, JSON lines on stdout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from meldpunt.cli import app
from meldpunt.demo import MEDIA
from meldpunt.signals import hash_file
from tests.helpers.cli import run, runner
from tests.helpers.imagegen import save_scene
from tests.helpers.oriented import oriented_jpeg, stored_pixels_pdq


@pytest.fixture
def media(tmp_path: Path) -> Path:
    d = tmp_path / "media"
    d.mkdir()
    save_scene(d / "scene.jpg", 1, quality=92)
    Image.open(d / "scene.jpg").resize((320, 240)).save(d / "scene-small.jpg", quality=70)
    save_scene(d / "other.png", 2)
    (d / "notes.txt").write_text("just text\n")
    data = (d / "scene.jpg").read_bytes()
    # cut inside its header: nothing decodes (a JPEG cut in its image data is hashed as truncated)
    (d / "broken.jpg").write_bytes(data[:300])
    return d


def test_hash_gives_one_json_line_per_file_and_exit_1_when_one_fails(media: Path) -> None:
    code, lines, _ = run("hash", str(media))
    assert code == 1
    by_name = {Path(str(rec["path"])).name: rec for rec in lines}
    assert set(by_name) == {"scene.jpg", "scene-small.jpg", "other.png", "notes.txt", "broken.jpg"}
    for rec in lines:
        assert {"path", "size", "md5", "sha1", "sha256"} <= set(rec)
    assert (
        len(str(by_name["scene.jpg"]["pdq"])) == 64 and 0 <= int(by_name["scene.jpg"]["pdq_quality"]) <= 100
    )  # type: ignore[call-overload]
    assert "pdq" not in by_name["notes.txt"] and "error" not in by_name["notes.txt"]
    assert "error" in by_name["broken.jpg"] and len(str(by_name["broken.jpg"]["sha256"])) == 64
    code, lines, _ = run("hash", str(media / "scene.jpg"), "--dihedral")
    assert code == 0 and len(lines[0]["pdq_dihedral"]) == 8  # type: ignore[arg-type]


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert runner.invoke(app, ["hash"]).exit_code == 2
    assert (
        runner.invoke(
            app, ["--db", str(tmp_path / "x.db"), "scan", str(tmp_path), "--bank", "nope"]
        ).exit_code
        == 2
    )
    assert runner.invoke(app, ["--db", str(tmp_path / "x.db"), "bank", "show", "nope"]).exit_code == 2
    assert (
        runner.invoke(
            app,
            [
                "--db",
                str(tmp_path / "x.db"),
                "bank",
                "import",
                "--policy",
                "auto",
                "b",
                str(tmp_path / "none.txt"),
            ],
        ).exit_code
        == 2
    )
    bad = tmp_path / "l.txt"
    bad.write_text("")
    assert (
        runner.invoke(
            app,
            [
                "--db",
                str(tmp_path / "x.db"),
                "bank",
                "import",
                "--policy",
                "auto",
                "b",
                str(bad),
                "--label",
                "colour=red",
            ],
        ).exit_code
        == 2
    )


def _pdq_list(tmp_path: Path, *files: Path) -> Path:
    lst = tmp_path / "known.te"
    lst.write_text("".join(f"pdq {hash_file(f).pdq}\n" for f in files))
    return lst


def test_bank_import_list_show_export_delete(db_url: str, tmp_path: Path, media: Path) -> None:
    db = ["--db", db_url]
    lst = _pdq_list(tmp_path, media / "scene.jpg")
    code, _, err = run(
        *db,
        "bank",
        "import",
        "--policy",
        "auto",
        "known",
        str(lst),
        "--label",
        "category=demo-A",
        "--label",
        "baseline=yes",
    )
    assert code == 0 and "imported 1 entry" in err
    plain = tmp_path / "md5s.txt"
    plain.write_text(f"{hash_file(media / 'other.png').md5.upper()}\nnot-a-hash\n")
    code, _, err = run(*db, "bank", "import", "benign", str(plain), "--policy", "ignore")
    assert code == 0 and "line 2" in err and "skipped 1" in err
    out = runner.invoke(app, [*db, "bank", "list"]).stdout
    assert "known" in out and "benign" in out and "ignore" in out
    out = runner.invoke(app, [*db, "bank", "show", "known"]).stdout
    assert "known.te" in out and "pdq" in out
    exported = runner.invoke(app, [*db, "bank", "export", "known", "--format", "csv"]).stdout
    assert "demo-A" in exported and str(hash_file(media / "scene.jpg").pdq) in exported
    assert runner.invoke(app, [*db, "bank", "delete", "benign"]).exit_code == 0
    assert "benign" not in runner.invoke(app, [*db, "bank", "list"]).stdout


@pytest.mark.slow
def test_scan_matches_resized_copy_exact_and_benign_lists(db_url: str, tmp_path: Path, media: Path) -> None:
    db = ["--db", db_url]
    run(
        *db,
        "bank",
        "import",
        "--policy",
        "auto",
        "known",
        str(_pdq_list(tmp_path, media / "scene.jpg")),
        "--label",
        "category=demo-A",
    )
    plain = tmp_path / "benign.txt"
    plain.write_text(hash_file(media / "notes.txt").sha1 + "\n")
    run(*db, "bank", "import", "benign", str(plain), "--policy", "ignore")
    code, lines, err = run(*db, "scan", str(media), "--json")
    assert code == 1  # broken.jpg
    got = {Path(str(r["path"])).name: r for r in lines}
    assert [m["bank"] for m in got["scene.jpg"]["matches"]] == ["known"]  # type: ignore[index]
    m = got["scene-small.jpg"]["matches"][0]  # type: ignore[index]
    assert m["signal_type"] == "pdq" and 0 < m["distance"] <= 31 and m["labels"] == {"category": "demo-A"}
    assert got["other.png"]["matches"] == []
    (benign,) = got["notes.txt"]["matches"]  # type: ignore[misc]
    assert benign["policy"] == "ignore" and benign["signal_type"] == "sha1" and benign["distance"] == 0
    assert "error" in got["broken.jpg"]
    assert "5 file(s) scanned" in err
    # --bank narrows the banks
    _, lines, _ = run(*db, "scan", str(media / "notes.txt"), "--bank", "known", "--json")
    assert lines[0]["matches"] == []


@pytest.fixture
def phone_photos(tmp_path: Path) -> tuple[Path, dict[str, int | None], Path]:
    """Photos stored turned and tagged with EXIF orientation 3, 6, 8 (and 1, and none), and a list
    of their stored pixels' PDQ hashes as python-threatexchange writes one (``pdq <hex>``)."""
    d = tmp_path / "phone"
    d.mkdir()
    orientations: dict[str, int | None] = {f"o{o}.jpg": o for o in (3, 6, 8, 1, None)}
    lines = []
    for n, (name, o) in enumerate(orientations.items()):
        data = oriented_jpeg(40 + n, o)
        (d / name).write_bytes(data)
        lines.append(f"pdq {stored_pixels_pdq(data)}\n")
    lst = tmp_path / "phones.te"
    lst.write_text("".join(lines))
    return d, orientations, lst


def test_hash_prints_the_stored_pixels_hash_of_exif_oriented_photos(
    phone_photos: tuple[Path, dict[str, int | None], Path],
) -> None:
    d, orientations, _ = phone_photos
    code, lines, _ = run("hash", str(d))
    assert code == 0
    for rec in lines:
        path = Path(str(rec["path"]))
        o = orientations[path.name]
        assert len(str(rec["pdq"])) == 64  # the upright picture's hash stays ``pdq``
        if o in (None, 1):
            assert rec["pdq"] == stored_pixels_pdq(path.read_bytes())
            assert not {"pdq_stored", "orientation"} & set(rec)
        else:
            assert (rec["pdq_stored"], rec["orientation"]) == (stored_pixels_pdq(path.read_bytes()), o)
            assert rec["pdq_stored"] != rec["pdq"] and int(rec["pdq_stored_quality"]) >= 50  # type: ignore[call-overload]
    result = runner.invoke(app, ["hash", str(d / "o6.jpg"), "--format", "table"])
    assert result.exit_code == 0 and "stored (orientation 6)" in result.stdout


@pytest.mark.parametrize("dihedral", [False, True], ids=["plain", "dihedral"])
def test_scan_matches_exif_oriented_photos_by_their_stored_pixels_once(
    db_url: str, phone_photos: tuple[Path, dict[str, int | None], Path], dihedral: bool
) -> None:
    """Each photo matches its list entry exactly once, by the stored hash when it has one, also with
    --dihedral (whose rotated variants of the upright hash come within a few bits of it too)."""
    d, orientations, lst = phone_photos
    db = ["--db", db_url]
    code, _, err = run(*db, "bank", "import", "phones", str(lst), "--policy", "auto")
    assert code == 0, err
    extra = ["--dihedral"] if dihedral else []
    code, lines, err = run(*db, "scan", str(d), "--json", *extra)
    assert code == 0
    for rec in lines:
        o = orientations[Path(str(rec["path"])).name]
        (m,) = rec["matches"]  # type: ignore[misc]
        assert (m["bank"], m["signal_type"], m["distance"]) == ("phones", "pdq", 0)
        if o in (None, 1):
            assert "hash" not in m and "orientation" not in m
        else:
            assert (m["hash"], m["orientation"]) == ("stored", o)
    assert "5 file(s) scanned, 5 matched — phones: 5" in err
    table = runner.invoke(app, [*db, "scan", str(d / "o8.jpg"), *extra]).stdout
    assert "pdq (stored, orientation 8)" in table


def test_bank_threshold_wins_over_default(sqlite_db: str, tmp_path: Path, media: Path) -> None:
    db = ["--db", sqlite_db]
    run(
        *db,
        "bank",
        "import",
        "--policy",
        "auto",
        "strict",
        str(_pdq_list(tmp_path, media / "scene.jpg")),
        "--pdq-threshold",
        "0",
    )
    _, lines, _ = run(*db, "scan", str(media / "scene-small.jpg"), "--json")
    d = hash_file(media / "scene-small.jpg")
    assert d.pdq != hash_file(media / "scene.jpg").pdq
    assert lines[0]["matches"] == []


def test_index_is_persisted_and_kept_in_step(sqlite_db: str, tmp_path: Path, media: Path) -> None:
    db = ["--db", sqlite_db]
    run(*db, "bank", "import", "--policy", "auto", "a", str(_pdq_list(tmp_path, media / "scene.jpg")))
    _, lines, _ = run(*db, "scan", str(media / "scene-small.jpg"), "--json")
    assert len(lines[0]["matches"]) == 1  # type: ignore[arg-type]
    index_dir = Path(sqlite_db + ".pdqindex")
    assert index_dir.is_dir()
    # appended in another process's import: seen by the next scan
    lst = tmp_path / "b.te"
    lst.write_text(f"pdq {hash_file(media / 'other.png').pdq}\n")
    run(*db, "bank", "import", "--policy", "auto", "b", str(lst))
    _, lines, _ = run(*db, "scan", str(media / "other.png"), "--json")
    assert [m["bank"] for m in lines[0]["matches"]] == ["b"]  # type: ignore[union-attr]
    # deleted: gone from the index too (rebuilt), no stale match
    run(*db, "bank", "delete", "a")
    _, lines, _ = run(*db, "scan", str(media / "scene-small.jpg"), "--json")
    assert lines[0]["matches"] == []


def test_video_matches_by_share_of_frames(sqlite_db: str, tmp_path: Path) -> None:
    clip = MEDIA / "drifting-dusk.mp4"
    sig = hash_file(clip)
    assert sig.vpdq
    half = [
        {"hash": f.pdq, "quality": f.quality, "timestamp": f.timestamp}
        for f in sig.vpdq[: len(sig.vpdq) // 2]
    ]
    lst = tmp_path / "videos.te"
    full = [{"hash": f.pdq, "quality": f.quality, "timestamp": f.timestamp} for f in sig.vpdq]
    lst.write_text(f"vpdq {json.dumps(full, separators=(',', ':'))}\n")
    run("--db", sqlite_db, "bank", "import", "--policy", "auto", "videos", str(lst))
    _, lines, _ = run("--db", sqlite_db, "scan", str(clip), "--json")
    (m,) = lines[0]["matches"]  # type: ignore[misc]
    assert m["signal_type"] == "vpdq" and m["frame_share"] == 1.0
    # an entry holding only half the frames: below the 80% share, no match
    lst.write_text(f"vpdq {json.dumps(half, separators=(',', ':'))}\n")
    run("--db", sqlite_db, "bank", "import", "videos", str(lst), "--replace")
    _, lines, _ = run("--db", sqlite_db, "scan", str(clip), "--json")
    assert lines[0]["matches"] == []


def test_demo_runs_and_shows_every_outcome(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["demo", "--scan", "--demo-db", str(tmp_path / "demo.db")], catch_exceptions=False
    )
    assert result.exit_code == 0
    out = result.stdout + result.stderr
    for expected in (
        "sunset-over-hills-resized-copy.jpg",
        "checkerboard.png",
        "drifting-dusk.mp4",
        "blue-waves.webp",
        "ignore",
    ):
        assert expected in out


def test_random_noise_images_do_not_match(sqlite_db: str, tmp_path: Path, media: Path) -> None:
    run(
        "--db",
        sqlite_db,
        "bank",
        "import",
        "--policy",
        "auto",
        "known",
        str(_pdq_list(tmp_path, media / "scene.jpg")),
    )
    rng = np.random.default_rng(3)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(tmp_path / f"n{i}.png")
    _, lines, _ = run("--db", sqlite_db, "scan", *(str(tmp_path / f"n{i}.png") for i in range(3)), "--json")
    assert all(rec["matches"] == [] for rec in lines)


FIXTURES = Path(__file__).parent / "fixtures" / "lists"


@pytest.mark.parametrize(
    "name", ["vics-2.0-us.json", "vics-1.3.json", "labelled.csv", "signals.te", "plain.txt"]
)
def test_every_list_format_imports_detected_and_exports_again(
    sqlite_db: str, tmp_path: Path, name: str
) -> None:
    db = ["--db", sqlite_db]
    code, _, err = run(*db, "bank", "import", "--policy", "auto", "b", str(FIXTURES / name))
    assert code == 0, err
    info = runner.invoke(app, [*db, "bank", "show", "b"]).stdout
    assert "entries:" in info and name in info
    for fmt in ("csv", "vics", "te"):
        out = tmp_path / f"out.{fmt}"
        result = runner.invoke(app, [*db, "bank", "export", "b", "--format", fmt, "-o", str(out)])
        assert result.exit_code == 0, result.stderr
        if fmt == "vics" and "vics" in name:
            json.loads(out.read_text())
    # what went out as CSV comes back in with the same entries and labels
    run(*db, "bank", "import", "--policy", "auto", "again", str(tmp_path / "out.csv"))
    exported = runner.invoke(app, [*db, "bank", "export", "again", "--format", "csv"]).stdout
    assert exported == runner.invoke(app, [*db, "bank", "export", "b", "--format", "csv"]).stdout


def test_strict_import_rejects_and_writes_nothing(sqlite_db: str, tmp_path: Path) -> None:
    lst = tmp_path / "l.txt"
    lst.write_text("d41d8cd98f00b204e9800998ecf8427e\nnot hex\n")
    code, _, err = run("--db", sqlite_db, "bank", "import", "--policy", "auto", "b", str(lst), "--strict")
    assert code == 1 and "line 2" in err and "nothing was imported" in err
    assert "no banks yet" in runner.invoke(app, ["--db", sqlite_db, "bank", "list"]).stdout


def test_token_create_prints_once_and_refuses_a_second_of_the_same_name(sqlite_db: str) -> None:
    from meldpunt.bootstrap import Services
    from meldpunt.pipeline.intake import check_api_token
    from meldpunt.settings import Settings

    result = runner.invoke(app, ["--db", sqlite_db, "token", "create", "partner"])
    token = result.stdout.strip()
    assert result.exit_code == 0 and token.startswith("mp_")
    assert check_api_token(Services(Settings.from_env({}, db=sqlite_db)), token) == "partner"
    assert runner.invoke(app, ["--db", sqlite_db, "token", "create", "partner"]).exit_code == 2
