"""#11 probed from outside: police referral packages checked by ``meldpunt referral verify`` in a
subprocess after hostile changes to the folder and the zip (a symbolic link to a FIFO or to a file
outside, an encrypted member, a compression we do not read, a zip bomb, ``../x``, 10,001
members), and summaries made for the longest URLs intake admits. Verify must name the problem,
exit 2 or 1, never hang, never write; the audit chain still verifies afterwards."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from meldpunt.pipeline.intake import MAX_URL_LENGTH
from meldpunt.referral import Package, build_package
from meldpunt.stores.signing import KeyRing
from tests.helpers.referral import T0, key_ring, medium, sample_case

MELDPUNT = str(Path(sys.executable).with_name("meldpunt"))


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return key_ring(tmp_path)[1]


@pytest.fixture
def package(tmp_path: Path, ring: KeyRing) -> Package:
    return build_package(sample_case(), tmp_path / "out", signer=ring, public_keys=ring.public_keys(T0))


def _verify(tmp_path: Path, ring: KeyRing, target: Path) -> subprocess.CompletedProcess[str]:
    """``meldpunt referral verify`` in its own process (a hang fails the test by its timeout)."""
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": ring.public_keys(T0)}, default=str))
    return subprocess.run(
        [
            MELDPUNT,
            "--db",
            f"sqlite:///{tmp_path / 'cli.db'}",
            "referral",
            "verify",
            str(target),
            "--keys",
            str(keys),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


def _audit_verifies(tmp_path: Path) -> None:
    r = subprocess.run(
        [MELDPUNT, "--db", f"sqlite:///{tmp_path / 'cli.db'}", "audit", "verify"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and r.stdout.startswith("ok:"), r.stdout + r.stderr


def test_a_symbolic_link_in_the_folder_is_named_not_followed(
    tmp_path: Path, ring: KeyRing, package: Package
) -> None:
    """Found: a package file replaced by a link to a FIFO hung verify (reading it waits for ever); a
    link to an identical copy outside the folder verified "ok" though the bytes do not travel with
    it. Now any link or special file is refused by name (exit 2)."""
    fifo_pkg = tmp_path / "fifo"
    shutil.copytree(package.folder, fifo_pkg)
    os.mkfifo(tmp_path / "pipe")
    (fifo_pkg / "summary.html").unlink()
    (fifo_pkg / "summary.html").symlink_to(tmp_path / "pipe")
    r = _verify(tmp_path, ring, fifo_pkg)
    assert r.returncode == 2 and "summary.html: a symbolic link" in r.stderr, r.stderr

    outside = tmp_path / "elsewhere.pdf"
    shutil.copy(package.folder / "summary.pdf", outside)
    linked = tmp_path / "linked"
    shutil.copytree(package.folder, linked)
    (linked / "summary.pdf").unlink()
    (linked / "summary.pdf").symlink_to(outside)
    r = _verify(tmp_path, ring, linked)
    assert r.returncode == 2 and "summary.pdf: a symbolic link" in r.stderr

    media = tmp_path / "media-link"
    shutil.copytree(package.folder, media)
    (media / "media").symlink_to(tmp_path, target_is_directory=True)
    r = _verify(tmp_path, ring, media)
    assert r.returncode == 2 and "media: a symbolic link" in r.stderr
    assert _verify(tmp_path, ring, package.folder).returncode == 0
    _audit_verifies(tmp_path)


def _patched_zip(src: Path, dst: Path, offset: int, value: int) -> Path:
    """``src`` with one 16-bit field of every central directory entry set to ``value``."""
    data = bytearray(src.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at != -1:
        struct.pack_into("<H", data, at + offset, value)
        at = data.find(b"PK\x01\x02", at + 4)
    dst.write_bytes(bytes(data))
    return dst


def test_an_encrypted_member_or_unknown_compression_is_named_not_a_traceback(
    tmp_path: Path, ring: KeyRing, package: Package
) -> None:
    """Found: zipfile's RuntimeError (encrypted) and NotImplementedError (compression 99, AES)
    escaped as tracebacks. Now exit 2 naming the member."""
    encrypted = _patched_zip(package.zip_path, tmp_path / "enc.zip", 8, 1)  # general purpose flags
    r = _verify(tmp_path, ring, encrypted)
    assert r.returncode == 2 and "manifest.json: encrypted" in r.stderr and "Traceback" not in r.stderr
    aes = _patched_zip(package.zip_path, tmp_path / "aes.zip", 10, 99)  # compression method
    r = _verify(tmp_path, ring, aes)
    assert r.returncode == 2 and "manifest.json: cannot be read" in r.stderr and "Traceback" not in r.stderr
    _audit_verifies(tmp_path)


def test_a_zip_bomb_member_is_a_change_found_without_inflating_it(
    tmp_path: Path, ring: KeyRing, package: Package
) -> None:
    """A member replaced by 512 MiB of zeros (0.5 MB compressed): its size differs from the
    manifest's, which says "changed" from the zip's directory without inflating a byte."""
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(package.zip_path) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename.endswith("/summary.pdf"):
                with dst.open(info.filename, "w", force_zip64=True) as out:
                    zeros = bytes(1 << 20)
                    for _ in range(512):
                        out.write(zeros)
            else:
                dst.writestr(info, src.read(info))
    assert bomb.stat().st_size < 4 << 20
    r = _verify(tmp_path, ring, bomb)
    assert r.returncode == 1
    assert f"summary.pdf: changed: {512 << 20} bytes, the manifest says" in r.stderr


def test_traversal_and_ten_thousand_members_are_refused_and_nothing_is_written(
    tmp_path: Path, ring: KeyRing, package: Package
) -> None:
    """Held: ``../x``, an absolute name and 10,001 members are refused (exit 2) by name; verify
    never extracts, so nothing appears outside (or inside) the folder it was run in."""
    work = tmp_path / "work"
    work.mkdir()
    for name in ("../x", "/etc/x", "RF/../../x"):
        evil = work / "evil.zip"
        with zipfile.ZipFile(package.zip_path) as src, zipfile.ZipFile(evil, "w") as dst:
            for info in src.infolist():
                dst.writestr(info, src.read(info))
            dst.writestr(name, b"x")
        r = _verify(tmp_path, ring, evil)
        assert r.returncode == 2 and "not a safe file name" in r.stderr, (name, r.stderr)
    many = work / "many.zip"
    with zipfile.ZipFile(many, "w") as z:
        for n in range(10_001):
            z.writestr(f"RF/{n}.txt", b"")
    r = _verify(tmp_path, ring, many)
    assert r.returncode == 2 and "more than 10000 files" in r.stderr
    assert sorted(p.name for p in work.iterdir()) == ["evil.zip", "many.zip"]
    assert not (tmp_path / "x").exists()
    _audit_verifies(tmp_path)


def test_the_pdf_takes_the_longest_urls_intake_admits(tmp_path: Path, ring: KeyRing) -> None:
    """Found: a URL of 2,000 emoji (within intake's 2,048 characters; 24,000 characters
    percent-encoded in the PDF) made one table row taller than a page: ReportLab's LayoutError, no
    package at all. Rows now split across pages; the URL is in the PDF whole, and in the HTML as
    reported (escaped)."""
    from pypdf import PdfReader

    from meldpunt.referral.summary import ascii_url

    url = "https://files.example/" + "\U0001f600" * (MAX_URL_LENGTH - 22)
    rtl = "https://files.example/\u202egpj.exe/<script>alert(1)</script>"
    case = sample_case(url=url)
    item = dataclasses.replace(
        case.items[0],
        final_url="javascript:alert(1)//" + "a" * (MAX_URL_LENGTH - 21),
        media=(medium(11, url, 1, "p"), medium(12, rtl, 2, "q")),
    )
    case = dataclasses.replace(case, items=(item, *case.items[1:]))
    pkg = build_package(case, tmp_path / "out", signer=ring, public_keys=ring.public_keys(T0))
    pages = PdfReader(pkg.folder / "summary.pdf").pages
    text = "".join((p.extract_text() or "") for p in pages)
    flat = "".join(text.split())
    # whole, though broken across lines and pages (the page's header and footer read in between
    # cut one escape per page break): the reported URL's and its medium's emoji
    assert ascii_url(url).startswith("https://files.example/%F0%9F%98%80")
    assert flat.count("%F0%9F%98%80") >= 2 * (MAX_URL_LENGTH - 22) - len(pages)
    assert "javascript:alert(1)//aaaa" in flat
    html = (pkg.folder / "summary.html").read_text()
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert 'href="javascript' not in html
    assert _verify(tmp_path, ring, pkg.zip_path).returncode == 0
