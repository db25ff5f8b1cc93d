"""Referral packages without a database: what each file holds, and verify naming what was tampered with."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest

from meldpunt.banks.formats.base import HashRecord
from meldpunt.banks.formats.vics import VicsFormat
from meldpunt.domain.signals import SignalType
from meldpunt.referral import Package, PackageError, PackageFile, build_package, verify
from meldpunt.referral.table import COLUMNS, unescape_cell
from meldpunt.referral.vics import CATEGORIES, category, vics_json
from meldpunt.stores.signing import KeyRing, rotate_key_ring
from tests.helpers.referral import T0, key_ring, sample_case

NSRL = Path(__file__).parent / "fixtures" / "vics-nsrl"  # NIST NSRL VICS files (as in test_list_interop)


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return key_ring(tmp_path)[1]


@pytest.fixture
def package(tmp_path: Path, ring: KeyRing) -> Package:
    return build_package(sample_case(), tmp_path / "out", signer=ring, public_keys=ring.public_keys(T0))


def _problems(pkg_path: Path, ring: KeyRing) -> list[tuple[str, str]]:
    return [(p.kind, p.file) for p in verify(pkg_path, ring.public_keys(T0)).problems]


def test_a_package_verifies_as_a_folder_and_as_a_zip(package: Package, ring: KeyRing) -> None:
    names = {p.relative_to(package.folder).as_posix() for p in package.folder.rglob("*") if p.is_file()}
    assert names == {
        "summary.pdf",
        "summary.html",
        "vics.json",
        "media.csv",
        "manifest.json",
        "manifest.sig",
        "public-keys.json",
    }
    for where in (package.folder, package.zip_path):
        result = verify(where, ring.public_keys(T0))
        assert result.ok, result.problems
        assert result.case == "RF-20261201-TEST01"
        assert result.kid == ring.current.kid
        assert result.files == 4
    with zipfile.ZipFile(package.zip_path) as z:
        assert all(n.startswith("RF-20261201-TEST01/") for n in z.namelist())
    manifest = json.loads((package.folder / "manifest.json").read_text())
    assert manifest["case"] == "RF-20261201-TEST01" and manifest["instance"] == "Meldpunt Test"
    assert manifest["created"] == "2026-12-01T09:00:00Z"
    assert [f["name"] for f in manifest["files"]] == ["media.csv", "summary.html", "summary.pdf", "vics.json"]
    keys = json.loads((package.folder / "public-keys.json").read_text())["keys"]
    assert keys[0]["kid"] == ring.current.kid


def _flip(path: Path, at: int = -10) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (lambda d: _flip(d / "media.csv", 40), ("changed", "media.csv")),
        (lambda d: _flip(d / "summary.pdf", 500), ("changed", "summary.pdf")),
        (lambda d: _flip(d / "vics.json", 30), ("changed", "vics.json")),
        (lambda d: _flip(d / "manifest.json", 20), ("signature", "manifest.json")),
        (lambda d: (d / "summary.html").unlink(), ("missing", "summary.html")),
        (lambda d: (d / "notes.txt").write_text("added later"), ("extra", "notes.txt")),
        (
            lambda d: (d / "media").mkdir() or (d / "media" / "x.jpg").write_bytes(b"\xff\xd8\xff"),
            ("extra", "media/x.jpg"),
        ),
        (
            lambda d: _sig(d, lambda s: s[:10] + ("A" if s[10] != "A" else "B") + s[11:]),
            ("signature", "manifest.sig"),
        ),
        (lambda d: (d / "manifest.sig").unlink(), ("missing", "manifest.sig")),
    ],
    ids=[
        "csv-byte",
        "pdf-byte",
        "vics-byte",
        "manifest-byte",
        "deleted",
        "added",
        "added-media",
        "signature",
        "no-signature",
    ],
)
def test_tampering_is_named(package: Package, ring: KeyRing, tamper, expected) -> None:  # type: ignore[no-untyped-def]
    tamper(package.folder)
    problems = _problems(package.folder, ring)
    assert problems == [expected]
    message = str(verify(package.folder, ring.public_keys(T0)).problems[0])
    assert message.startswith(expected[1] + ": ")


def _sig(folder: Path, change) -> None:  # type: ignore[no-untyped-def]
    sig = json.loads((folder / "manifest.sig").read_text())
    sig["signature"] = change(sig["signature"])
    (folder / "manifest.sig").write_text(json.dumps(sig))


def test_a_manifest_rewritten_to_match_a_changed_file_fails_the_signature(
    package: Package, ring: KeyRing
) -> None:
    """Whoever changes a file and writes its new SHA-256 into the manifest still cannot sign it."""
    import hashlib

    csv_path = package.folder / "media.csv"
    csv_path.write_bytes(csv_path.read_bytes().replace(b"Example Hosting", b"Other Hosting"))
    manifest = json.loads((package.folder / "manifest.json").read_text())
    for f in manifest["files"]:
        if f["name"] == "media.csv":
            f["sha256"] = hashlib.sha256(csv_path.read_bytes()).hexdigest()
            f["size"] = csv_path.stat().st_size
    (package.folder / "manifest.json").write_text(json.dumps(manifest))
    assert _problems(package.folder, ring) == [("signature", "manifest.json")]


def test_a_tampered_zip_names_the_file(package: Package, ring: KeyRing, tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(package.zip_path) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("/vics.json"):
                data = data.replace(b'"Category": 1', b'"Category": 0')
            dst.writestr(info, data)
        dst.writestr("RF-20261201-TEST01/readme.txt", b"hello")
    assert _problems(bad, ring) == [("changed", "vics.json"), ("extra", "readme.txt")]


def test_unsafe_or_unreadable_packages_are_refused(tmp_path: Path, ring: KeyRing) -> None:
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../outside.txt", b"x")
    with pytest.raises(PackageError, match="not a safe file name"):
        verify(evil, ring.public_keys(T0))
    not_zip = tmp_path / "x.zip"
    not_zip.write_bytes(b"not a zip")
    with pytest.raises(PackageError, match="neither a package folder nor a readable zip"):
        verify(not_zip, ring.public_keys(T0))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert [(p.kind, p.file) for p in verify(empty, ring.public_keys(T0)).problems] == [
        ("missing", "manifest.json")
    ]


def test_signed_before_a_rotation_verifies_during_the_grace_period_only(tmp_path: Path) -> None:
    settings, ring = key_ring(tmp_path)
    pkg = build_package(sample_case(), tmp_path / "out", signer=ring, public_keys=ring.public_keys(T0))
    rotated_at = T0 + timedelta(days=1)
    new = rotate_key_ring(settings, now=rotated_at)
    assert new.current.kid != ring.current.kid
    grace = settings.keys.grace_days
    inside = rotated_at + timedelta(days=grace) - timedelta(minutes=1)
    assert verify(pkg.zip_path, new.public_keys(inside)).ok
    after = rotated_at + timedelta(days=grace, minutes=1)
    problems = verify(pkg.zip_path, new.public_keys(after)).problems
    assert [(p.kind, p.file) for p in problems] == [("key", "manifest.sig")]
    assert ring.current.kid in str(problems[0])
    # and one signed after the rotation verifies under the new key
    pkg2 = build_package(
        sample_case("RF-20261202-TEST02"), tmp_path / "out", signer=new, public_keys=new.public_keys(after)
    )
    assert verify(pkg2.folder, new.public_keys(after)).ok


def test_the_pdf_has_the_urls_and_the_case_on_every_page(package: Package) -> None:
    from pypdf import PdfReader

    reader = PdfReader(package.folder / "summary.pdf")
    pages = [p.extract_text() for p in reader.pages]
    assert len(pages) >= 2
    for n, text in enumerate(pages, 1):
        assert "RF-20261201-TEST01" in text
        assert f"Page {n} of {len(pages)}" in text
    whole = re.sub(r"\s+", "", "".join(pages))
    for url in (
        "https://files.example/a/b/pic.jpg",
        "https://files.example/final/b/pic.jpg",
        "https://files.example/a/b/pic.jpg?v=2",
    ):
        assert url in whole
    for fact in (
        "192.0.2.10",
        "AS64496",
        "ExampleHosting",
        "abuse@hosting.example",
        "anna",
        "sam",
        "senior",
        "Noticesent",
    ):
        assert fact in whole
    assert reader.metadata is not None and reader.metadata.title == "Police referral RF-20261201-TEST01"


def test_the_html_is_escaped_and_loads_nothing(tmp_path: Path, ring: KeyRing) -> None:
    case = sample_case(url='https://x.example/"><script>alert(1)</script>')
    pkg = build_package(case, tmp_path / "o", signer=ring, public_keys=ring.public_keys(T0))
    html = (pkg.folder / "summary.html").read_text()
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not re.search(r"""(src|href)\s*=|<link|@import|url\(""", html, re.I)
    assert "RF-20261201-TEST01" in html and "anna" in html and "AS64496" in html


def test_vics_is_read_back_by_our_own_reader(package: Package) -> None:
    with open(package.folder / "vics.json", "rb") as f:
        records = [r for r in VicsFormat().read(f) if isinstance(r, HashRecord)]
    types = {r.signal_type for r in records}
    assert types == {SignalType.MD5, SignalType.SHA1, SignalType.SHA256, SignalType.PDQ}
    assert len(records) == 8  # two media, four hashes each
    assert {r.labels.vics_profile for r in records} == {"US"}
    assert {r.labels.vics_category for r in records} == {"1"}
    assert {r.labels.vics["MediaID"] for r in records} == {11, 12}
    doc = json.loads((package.folder / "vics.json").read_text())
    assert doc["@odata.context"].endswith("/2.0.xml/US/$metadata#Cases")
    assert doc["value"][0]["CaseID"] == "RF-20261201-TEST01"
    assert doc["value"][0]["SourceApplicationName"] == "meldpunt"


def test_vics_media_have_the_shape_of_the_nsrl_vics_files(package: Package) -> None:
    ours = json.loads((package.folder / "vics.json").read_text())["value"][0]["Media"][0]
    seen = 0
    for path in sorted(NSRL.glob("*.json")):
        theirs = json.loads(path.read_text())["value"][0]
        for key, value in theirs.items():
            if "odata" in key:
                continue
            assert key in ours, f"{path.name}: {key} missing in ours"
            assert type(ours[key]) is type(value), f"{path.name}: {key} is {type(value).__name__} there"
            if key in ("MD5", "SHA1"):
                assert ours[key] == ours[key].lower() and value == value.lower()
        for key in ("MD5", "FileName", "FilePath"):
            assert key in ours["MediaFiles"][0] and key in theirs["MediaFiles"][0]
        seen += 1
    assert seen >= 10


def test_vics_categories_follow_the_profile_mapping() -> None:
    item = sample_case().items[0]
    assert category(item, "US") == 1
    uk = type(item)(item_id=1, url="u", classification={"uk": "B", "status": "baseline"})
    assert category(uk, "UK") == 2
    assert category(uk, "US") == 1
    none = type(item)(item_id=2, url="u", classification={"age_band": "unknown"})
    assert category(none, "US") is None
    assert set(CATEGORIES) == {"US", "UK"}
    doc = json.loads(vics_json(sample_case(), profile="UK"))
    assert doc["@odata.context"].endswith("/2.0.xml/UK/$metadata#Cases")
    assert all("Category" not in m for m in doc["value"][0]["Media"])  # no uk value: uncategorised
    with pytest.raises(ValueError, match="no VICS category mapping"):
        vics_json(sample_case(), profile="XX")


def test_csv_rows_per_medium_and_no_formula_injection(package: Package) -> None:
    raw = (package.folder / "media.csv").read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert raw.count(b"\r\n") == 4  # header, two media, one item without media
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert tuple(rows[0]) == COLUMNS
    by = [dict(zip(COLUMNS, r, strict=True)) for r in rows[1:]]
    assert [r["medium"] for r in by] == ["11", "12", ""]
    assert by[0]["md5"] and by[0]["vics_category"] == "US:1" and by[0]["asn"] == "AS64496"
    evil = by[2]
    assert evil["provider"] == "'-cmd|' /C calc'!A0"
    assert unescape_cell(evil["provider"]) == "-cmd|' /C calc'!A0"
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


def test_extra_files_are_listed_and_names_are_checked(tmp_path: Path, ring: KeyRing) -> None:
    pkg = build_package(
        sample_case(),
        tmp_path / "o",
        signer=ring,
        public_keys=ring.public_keys(T0),
        extra_files=[PackageFile("cybertip.xml", b"<report/>")],
        media=[PackageFile("media/11-abc.png", b"\x89PNG fake")],
    )
    assert verify(pkg.zip_path, ring.public_keys(T0)).ok
    listed = [f["name"] for f in json.loads((pkg.folder / "manifest.json").read_text())["files"]]
    assert "cybertip.xml" in listed and "media/11-abc.png" in listed
    for bad in ("../x", "/abs", "manifest.json", "vics.json", "a/../b", ""):
        with pytest.raises(PackageError):
            build_package(
                sample_case(f"RF-X-{abs(hash(bad)) % 1000}"),
                tmp_path / "p",
                signer=ring,
                public_keys=[],
                extra_files=[PackageFile(bad, b"x")],
            )
    assert not any((tmp_path / "p").glob("RF-*")), "a refused package leaves nothing behind"
    with pytest.raises(PackageError, match="exists already"):
        build_package(sample_case(), tmp_path / "o", signer=ring, public_keys=[])
    shutil.rmtree(tmp_path / "o")


def test_the_pdf_shows_non_ascii_urls_in_their_ascii_form(tmp_path: Path, ring: KeyRing) -> None:
    from pypdf import PdfReader

    from meldpunt.referral.summary import ascii_url

    url = "https://пример.example/фото/é.jpg?q=ш"
    assert ascii_url(url) == "https://xn--e1afmkfd.example/%D1%84%D0%BE%D1%82%D0%BE/%C3%A9.jpg?q=%D1%88"
    assert ascii_url("https://files.example/a b") == "https://files.example/a b"  # ASCII: as it is
    pkg = build_package(sample_case(url=url), tmp_path / "o", signer=ring, public_keys=ring.public_keys(T0))
    text = re.sub(r"\s+", "", "".join(p.extract_text() for p in PdfReader(pkg.folder / "summary.pdf").pages))
    assert ascii_url(url) in text and "■" not in text
    assert url in (pkg.folder / "summary.html").read_text()  # the HTML and CSV keep it as reported
    assert url in (pkg.folder / "media.csv").read_text()
