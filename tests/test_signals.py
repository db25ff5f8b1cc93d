"""meldpunt.signals on images and other files: formats, orientation, dihedral, bad input, batches.

All media here are benign: generated patterns and photo-like pictures, and Meta's bridge photos
(tests/fixtures/media, BSD). Videos are in test_video.py.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pillow_heif
import pytest
from PIL import Image, features

from meldpunt.settings import Settings
from meldpunt.signals import DIHEDRAL_ORDER, MediaKind, Signals, hamming, hash_bytes, hash_file, hash_files
from meldpunt.signals.batch import run_batch, safe_hash_file
from meldpunt.signals.pdq import pdq_hash
from meldpunt.signals.synthetic import jpeg_bytes, photo_like
from tests.helpers.oriented import STORED, oriented_jpeg, stored_pixels_pdq

MEDIA = Path(__file__).parent / "fixtures" / "media"
BRIDGE = MEDIA / "bridge"
FULL = Settings(pdq_fast_decode_size=0)
DEFAULT = Settings()


def encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def pdq_of(im: Image.Image) -> str:
    return pdq_hash(np.asarray(im.convert("RGB")))[0]


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return photo_like(320, 240, seed=7)


# --- reference hashes -----------------------------------------------------------------------------


def _bridge_expected() -> list[tuple[str, str, int]]:
    with open(BRIDGE / "expected-pdqhash.csv", newline="") as f:
        rows = [(r["file"], r["pdq_hex"], int(r["quality"])) for r in csv.DictReader(f)]
    return [r for r in rows if (BRIDGE / r[0]).exists()]


@pytest.mark.parametrize("settings", [FULL, DEFAULT], ids=["full-decode", "default"])
def test_bridge_reference_hashes_are_exact(settings: Settings) -> None:
    expected = _bridge_expected()
    assert len(expected) >= 8
    for name, pdq, quality in expected:
        s = hash_file(BRIDGE / name, settings)
        assert (s.pdq, s.pdq_quality, s.error) == (pdq, quality, None), name


def test_exact_hashes_and_record_fields() -> None:
    path = BRIDGE / "aaa-orig.jpg"
    data = path.read_bytes()
    s = hash_file(path)
    assert s.path == str(path)
    assert s.size == len(data)
    assert s.md5 == hashlib.md5(data).hexdigest()
    assert s.sha1 == hashlib.sha1(data).hexdigest()
    assert s.sha256 == hashlib.sha256(data).hexdigest()
    assert (s.kind, s.format, s.width, s.height) == (MediaKind.IMAGE, "JPEG", 1600, 1004)
    assert s.pdq is not None and len(s.pdq) == 64 and s.pdq == s.pdq.lower()


def test_hash_bytes_matches_hash_file() -> None:
    path = BRIDGE / "square-256x256.jpg"
    a = hash_file(path)
    b = hash_bytes(path.read_bytes(), "upload.jpg")
    assert b.path == "upload.jpg"
    assert {**a.to_json_dict(), "path": ""} == {**b.to_json_dict(), "path": ""}


# --- formats and pixel modes -----------------------------------------------------------------------


LOSSLESS = [("PNG", {}), ("BMP", {}), ("TIFF", {}), ("WEBP", {"lossless": True})]
LOSSY = [("JPEG", {"quality": 90}), ("GIF", {}), ("WEBP", {"quality": 90})]


@pytest.mark.parametrize(("fmt", "kw"), LOSSLESS, ids=[f for f, _ in LOSSLESS])
def test_lossless_formats_hash_like_their_pixels(photo: Image.Image, fmt: str, kw: dict[str, object]) -> None:
    s = hash_bytes(encode(photo, fmt, **kw), f"x.{fmt.lower()}")
    assert (s.kind, s.format, s.error, s.width, s.height) == (MediaKind.IMAGE, fmt, None, 320, 240)
    assert s.pdq == pdq_of(photo)
    assert s.pdq_quality is not None and s.pdq_quality >= 50


@pytest.mark.parametrize(("fmt", "kw"), LOSSY, ids=["JPEG", "GIF", "WEBP-lossy"])
def test_lossy_formats_hash_close_to_their_pixels(
    photo: Image.Image, fmt: str, kw: dict[str, object]
) -> None:
    s = hash_bytes(encode(photo, fmt, **kw), "no-extension")
    assert (s.kind, s.format, s.error) == (MediaKind.IMAGE, fmt, None)
    assert s.pdq is not None and hamming(s.pdq, pdq_of(photo)) <= 31


def _heif_encoder() -> bool:
    return bool(pillow_heif.libheif_info().get("HEIF"))


@pytest.mark.skipif(not _heif_encoder(), reason="libheif in this pillow-heif has no HEVC encoder")
def test_heic(photo: Image.Image) -> None:
    data = encode(photo, "HEIF", quality=90)
    s = hash_bytes(data, "x.bin")
    assert (s.kind, s.format, s.error, s.width, s.height) == (MediaKind.IMAGE, "HEIF", None, 320, 240)
    assert s.pdq is not None and hamming(s.pdq, pdq_of(photo)) <= 31


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF codec")
def test_avif(photo: Image.Image) -> None:
    data = encode(photo, "AVIF", quality=90)
    s = hash_bytes(data, "x.bin")
    assert (s.kind, s.format, s.error, s.width, s.height) == (MediaKind.IMAGE, "AVIF", None, 320, 240)
    assert s.pdq is not None and hamming(s.pdq, pdq_of(photo)) <= 31


def _png16_rgb(rgb16: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one)."""
    h, w, _ = rgb16.shape

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_sixteen_bit_images_scale_to_eight_bits(photo: Image.Image) -> None:
    rgb = np.asarray(photo)
    s = hash_bytes(_png16_rgb(rgb.astype(np.uint16) * 257), "x.png")
    assert (s.error, s.pdq) == (None, pdq_of(photo))
    grey8 = photo.convert("L")
    grey16 = Image.fromarray(np.asarray(grey8).astype(np.uint16) * 257)  # mode I;16
    for fmt in ("PNG", "TIFF"):
        s = hash_bytes(encode(grey16, fmt), f"x.{fmt.lower()}")
        assert (s.error, s.pdq) == (None, pdq_of(grey8)), fmt


def test_alpha_is_composited_on_black(photo: Image.Image) -> None:
    rgba = photo.convert("RGBA")
    alpha = np.zeros((240, 320), np.uint8)
    alpha[40:200, 60:260] = 255
    alpha[100:140] = 128
    rgba.putalpha(Image.fromarray(alpha))
    s = hash_bytes(encode(rgba, "PNG"), "x.png")
    rgb = np.asarray(photo).astype(np.uint16)
    expected = ((rgb * alpha[:, :, None].astype(np.uint16) + 127) // 255).astype(np.uint8)
    assert s.pdq == pdq_hash(expected)[0]
    # Different hidden colours under full transparency do not change the hash.
    hidden = np.asarray(rgba).copy()
    hidden[alpha == 0, :3] = 255
    assert hash_bytes(encode(Image.fromarray(hidden), "PNG"), "y.png").pdq == s.pdq


@pytest.mark.parametrize("mode", ["L", "1", "P", "LA", "CMYK", "I", "F", "RGBA"])
def test_every_pixel_mode_hashes(photo: Image.Image, mode: str) -> None:
    im = photo.convert(mode) if mode not in ("I", "F") else photo.convert("L").convert(mode)
    fmt = {"CMYK": "JPEG", "I": "TIFF", "F": "TIFF"}.get(mode, "PNG")
    if mode == "P":
        im.info["transparency"] = 0
    s = hash_bytes(encode(im, fmt), f"x.{fmt.lower()}")
    assert s.error is None and s.pdq is not None, mode
    if mode in ("L", "I", "F", "CMYK"):
        assert hamming(s.pdq, pdq_of(photo)) <= 31, mode


def test_animated_gif_and_webp_give_their_first_frame(photo: Image.Image) -> None:
    other = photo_like(320, 240, seed=99)
    for fmt in ("GIF", "WEBP"):
        data = encode(photo, fmt, save_all=True, append_images=[other], duration=100, loop=0)
        s = hash_bytes(data, "anim")
        assert s.error is None and s.pdq is not None
        assert hamming(s.pdq, pdq_of(photo)) <= 31, fmt
        assert hamming(s.pdq, pdq_of(other)) > 60, fmt


# --- orientation and dihedral ---------------------------------------------------------------------

T = Image.Transpose


def _tagged(upright: Image.Image, orientation: int, fmt: str, **kw: object) -> bytes:
    t = STORED[orientation]
    stored = upright if t is None else upright.transpose(t)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, fmt, exif=exif.tobytes(), **kw)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_gives_the_upright_hash(photo: Image.Image, orientation: int) -> None:
    s = hash_bytes(_tagged(photo, orientation, "PNG"), "x.png")
    assert (s.pdq, s.width, s.height) == (pdq_of(photo), 320, 240)
    # and the stored pixels' hash too, whenever the tag moves them
    stored = photo if STORED[orientation] is None else photo.transpose(STORED[orientation])  # type: ignore[arg-type]
    expected = None if orientation == 1 else pdq_of(stored)
    assert (s.pdq_stored, s.orientation) == (expected, None if orientation == 1 else orientation)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_oriented_jpeg_has_both_hashes_the_stored_one_as_pdqhash_gives_it(orientation: int) -> None:
    """Meta's hashers, HMA and python-threatexchange hash a file's stored pixels, never turning it
    by its EXIF tag: meldpunt gives that hash too, beside the upright one (still ``pdq``)."""
    data = oriented_jpeg(11, orientation)
    s = hash_bytes(data, "phone.jpg")
    assert s.error is None and s.orientation == orientation
    assert s.pdq_stored == stored_pixels_pdq(data)  # the pdqhash package on the undecorated pixels
    assert s.pdq_stored_quality is not None and s.pdq_stored_quality >= 50
    upright = hash_bytes(oriented_jpeg(11, None), "upright.jpg").pdq
    assert s.pdq is not None and upright is not None and hamming(s.pdq, upright) <= 10
    assert hamming(s.pdq, s.pdq_stored) > 60  # why one hash was not enough
    d = s.to_json_dict()
    assert (d["pdq"], d["pdq_stored"], d["orientation"]) == (s.pdq, s.pdq_stored, orientation)
    assert d["pdq_stored_quality"] == s.pdq_stored_quality


def test_large_exif_oriented_jpeg_stored_hash_stays_close_to_the_full_decode() -> None:
    """A phone-sized photo is decoded at reduced size (``pdq_fast_decode_size``): its stored-pixel
    hash stays within Meta's 10 bits of what pdqhash gives on the full stored pixels."""
    data = oriented_jpeg(12, 6, size=(2600, 2100))
    s = hash_bytes(data, "big.jpg", DEFAULT)
    assert (s.width, s.height, s.orientation) == (2600, 2100, 6)
    assert s.pdq_stored is not None and hamming(s.pdq_stored, stored_pixels_pdq(data)) <= 10


@pytest.mark.parametrize("orientation", [None, 1])
def test_no_orientation_or_orientation_1_gives_one_hash(orientation: int | None) -> None:
    data = oriented_jpeg(11, orientation)
    s = hash_bytes(data, "plain.jpg", dihedral=True)
    assert s.pdq == stored_pixels_pdq(data) and s.pdq_dihedral is not None
    assert (s.orientation, s.pdq_stored, s.pdq_stored_quality) == (None, None, None)
    assert not {"orientation", "pdq_stored", "pdq_stored_quality"} & set(s.to_json_dict())


def test_rotated_tagged_jpeg_hashes_like_the_upright_jpeg(photo: Image.Image) -> None:
    upright = hash_bytes(encode(photo, "JPEG", quality=95), "a.jpg")
    tagged = hash_bytes(_tagged(photo, 6, "JPEG", quality=95), "b.jpg")
    stored = hash_bytes(encode(photo.transpose(T.ROTATE_90), "JPEG", quality=95), "c.jpg")
    assert upright.pdq and tagged.pdq and stored.pdq
    assert hamming(tagged.pdq, upright.pdq) <= 10
    assert hamming(stored.pdq, upright.pdq) > 60
    assert (tagged.width, tagged.height) == (320, 240)


def test_dihedral_variants_in_documented_order(photo: Image.Image) -> None:
    s = hash_bytes(encode(photo, "PNG"), "x.png", dihedral=True)
    assert s.pdq_dihedral is not None and len(s.pdq_dihedral) == 8 == len(DIHEDRAL_ORDER)
    assert s.pdq_dihedral[0] == s.pdq == pdq_of(photo)
    order = [None, T.ROTATE_90, T.ROTATE_180, T.ROTATE_270, T.FLIP_TOP_BOTTOM, T.FLIP_LEFT_RIGHT]
    order += [T.TRANSPOSE, T.TRANSVERSE]
    for i, t in enumerate(order):
        moved = photo if t is None else photo.transpose(t)
        h = hash_bytes(encode(moved, "PNG"), "m.png").pdq
        assert h is not None
        distances = [hamming(h, v) for v in s.pdq_dihedral]
        assert distances[i] <= 31 and distances[i] == min(distances), (DIHEDRAL_ORDER[i], distances)
    assert "pdq_dihedral" in s.to_json_dict()
    assert "pdq_dihedral" not in hash_bytes(encode(photo, "PNG"), "x.png").to_json_dict()


# --- fast decode and robustness --------------------------------------------------------------------


def test_fast_decode_drift_on_bridge_images() -> None:
    small = Settings(pdq_fast_decode_size=256)  # 1600x1004 -> decoded at 800x502
    for name, _, _ in _bridge_expected():
        full = hash_file(BRIDGE / name, FULL)
        fast = hash_file(BRIDGE / name, small)
        assert full.pdq and fast.pdq and full.pdq_quality is not None
        if full.pdq_quality >= 80:
            assert hamming(full.pdq, fast.pdq) <= 10, name


def test_fast_decode_drift_on_large_jpegs() -> None:
    drifts = []
    for seed in range(3):
        data = jpeg_bytes(photo_like(2600, 2100, seed=seed), quality=90)  # decoded at 1/4: 650x525
        full = hash_bytes(data, "x.jpg", FULL)
        fast = hash_bytes(data, "x.jpg", DEFAULT)
        assert full.pdq and fast.pdq and full.pdq_quality is not None and full.pdq_quality >= 80
        assert (fast.width, fast.height) == (2600, 2100)  # the picture's size, not the decoded one
        drifts.append(hamming(full.pdq, fast.pdq))
    assert max(drifts) <= 10, drifts


def test_edited_copies_stay_close_and_other_pictures_far() -> None:
    im = photo_like(1024, 768, seed=3)
    base = hash_bytes(jpeg_bytes(im, quality=90), "a.jpg").pdq
    assert base is not None
    copies = {
        "resized": jpeg_bytes(im.resize((512, 384), Image.Resampling.LANCZOS), quality=90),
        "recompressed": jpeg_bytes(im, quality=40),
        "cropped": jpeg_bytes(im.crop((15, 12, 1009, 756)), quality=90),
        "png": encode(im, "PNG"),
    }
    for what, data in copies.items():
        h = hash_bytes(data, "b").pdq
        assert h is not None and hamming(base, h) <= 31, what
    for seed in (4, 5):
        other = hash_bytes(jpeg_bytes(photo_like(1024, 768, seed=seed)), "c.jpg").pdq
        assert other is not None and hamming(base, other) > 60


# --- detection and bad input -----------------------------------------------------------------------


def test_magic_bytes_beat_the_extension(photo: Image.Image) -> None:
    png = encode(photo, "PNG")
    assert (hash_bytes(png, "notes.txt").kind, hash_bytes(png, "clip.mp4").format) == (MediaKind.IMAGE, "PNG")
    text = hash_bytes(b"just some text\n", "clip.mp4")
    assert text.kind is MediaKind.VIDEO and text.error and text.vpdq is None


def test_other_files_get_exact_hashes_only() -> None:
    for data, name in [(b"hello\n", "a.txt"), (b"PK\x03\x04" + bytes(100), "b.zip"), (b"", "c.txt")]:
        s = hash_bytes(data, name)
        assert (s.kind, s.error, s.pdq, s.vpdq) == (MediaKind.OTHER, None, None, None)
        assert s.sha256 == hashlib.sha256(data).hexdigest()
        assert set(s.to_json_dict()) == {"path", "size", "md5", "sha1", "sha256", "kind"}


def _png_claiming(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + body + struct.pack(">I", zlib.crc32(body)) + bytes(64)
    )


def _tiff_claiming(width: int, height: int) -> bytes:
    """A greyscale TIFF header claiming ``width`` x ``height`` pixels, with almost no data behind it."""
    tags = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1)]
    tags += [(273, 4, 8 + 2 + 12 * 9 + 4), (277, 3, 1), (278, 4, height), (279, 4, width * height)]
    ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", t, k, 1, v) for t, k, v in tags)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + bytes(100)


BAD: dict[str, tuple[Callable[[Image.Image], bytes], str, str]] = {
    "jpeg cut in its header": (lambda p: jpeg_bytes(p)[:300], "a.jpg", "cannot decode JPEG image"),
    "corrupt png": (lambda p: encode(p, "PNG")[:60] + os.urandom(500), "b.png", "cannot decode PNG image"),
    "text named jpg": (lambda p: b"not a picture\n" * 10, "c.jpg", "not a recognised image format"),
    "empty jpg": (lambda p: b"", "d.jpg", "empty file"),
    "jpeg xl": (lambda p: b"\xff\x0a" + bytes(200), "e.jxl", "unsupported image format: JPEG XL"),
    "png bomb": (
        lambda p: _png_claiming(20000, 20000),
        "f.png",
        "image too large: 20000x20000 pixels exceeds the 50,000,000-pixel limit",
    ),
    "gif bomb": (
        lambda p: b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\xf7\x00\x00" + bytes(800),
        "g.gif",
        "image too large: 65535x65535 pixels",
    ),
    "tiff bomb": (lambda p: _tiff_claiming(9000, 9000), "h.tif", "image too large: 9000x9000 pixels"),
    "tiff bomb pillow refuses": (
        lambda p: _tiff_claiming(20000, 20000),
        "i.tif",
        "image too large: 400,000,000 pixels exceeds the 50,000,000-pixel limit",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_images_give_an_error_and_exact_hashes(photo: Image.Image, case: str) -> None:
    make, name, message = BAD[case]
    data = make(photo)
    s = hash_bytes(data, name)
    assert s.kind is MediaKind.IMAGE
    assert s.error is not None and message in s.error, s.error
    assert (s.pdq, s.pdq_quality, s.size, s.md5) == (None, None, len(data), hashlib.md5(data).hexdigest())
    assert json.loads(json.dumps(s.to_json_dict()))["error"] == s.error


def test_size_limits_are_settings(photo: Image.Image, tmp_path: Path) -> None:
    data = encode(photo, "TIFF")  # no header shortcut for TIFF: Pillow's reading of the header decides
    s = hash_bytes(data, "x.tif", Settings(max_image_pixels=320 * 240 - 1))
    assert s.error == (
        "image too large: 320x240 pixels exceeds the 76,799-pixel limit (settings.max_image_pixels)"
    )
    assert hash_bytes(data, "x.tif", Settings(max_image_pixels=320 * 240)).error is None
    path = tmp_path / "x.tif"
    path.write_bytes(data)
    big = hash_file(path, Settings(max_file_bytes=len(data) - 1))
    assert big.error is not None and big.error.startswith("file too large:") and big.pdq is None
    assert big.sha256 == hashlib.sha256(data).hexdigest()
    assert hash_file(path, Settings(max_file_bytes=len(data))).error is None


def test_library_noise_stays_off_stdout(photo: Image.Image, capfd: pytest.CaptureFixture[str]) -> None:
    for _, (make, name, _) in BAD.items():
        hash_bytes(make(photo), name)
    hash_bytes(jpeg_bytes(photo)[:-200], "cut.jpg")
    out, _ = capfd.readouterr()
    assert out == ""


# --- JSON ----------------------------------------------------------------------------------------


def test_to_json_dict_shape(photo: Image.Image) -> None:
    s = hash_bytes(encode(photo, "PNG"), "x.png")
    d = s.to_json_dict()
    assert set(d) == {"path", "size", "md5", "sha1", "sha256", "kind", "format", "width", "height", "pdq"} | {
        "pdq_quality"
    }
    assert (d["kind"], d["format"], d["pdq"], d["pdq_quality"]) == ("image", "PNG", s.pdq, s.pdq_quality)
    bad = hash_bytes(b"\x89PNG\r\n\x1a\n" + bytes(30), "y.png").to_json_dict()
    assert set(bad) == {"path", "size", "md5", "sha1", "sha256", "kind", "format", "error"}
    json.dumps(d)


# --- batches -------------------------------------------------------------------------------------


def _crash_on_boom(path: str) -> Signals:
    """A task that kills its worker process on one file, as a decoder crash would."""
    if path.endswith("boom.png"):
        os._exit(3)
    return safe_hash_file(path, settings=DEFAULT, dihedral=False, every_frame=False)


def _tree(tmp_path: Path, photo: Image.Image) -> list[Path]:
    (tmp_path / "b" / "deeper").mkdir(parents=True)
    (tmp_path / "a").mkdir()
    files = {
        "a/2.png": encode(photo, "PNG"),
        "a/10.jpg": jpeg_bytes(photo),
        "a/broken.jpg": b"\xff\xd8\xff" + bytes(50),
        "b/deeper/z.txt": b"hello",
        "b/boom.png": encode(photo.rotate(90), "PNG"),
        "b/empty.gif": b"",
        "c.webp": encode(photo, "WEBP"),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return [tmp_path / n for n in files]


def test_hash_files_recurses_sorted_in_input_order_on_a_pool(tmp_path: Path, photo: Image.Image) -> None:
    _tree(tmp_path, photo)
    os.mkfifo(tmp_path / "a" / "pipe")  # must not hang the batch
    inputs = [tmp_path / "c.webp", tmp_path / "missing.png", tmp_path / "b", tmp_path / "a"]
    pooled = list(hash_files(inputs, workers=2))
    names = [os.path.relpath(s.path, tmp_path) for s in pooled]
    expected = ["c.webp", "missing.png", "b/boom.png", "b/empty.gif", "b/deeper/z.txt"]
    expected += ["a/10.jpg", "a/2.png", "a/broken.jpg", "a/pipe"]
    assert names == expected
    by_name = dict(zip(names, pooled, strict=True))
    assert by_name["missing.png"].error and "cannot read file" in by_name["missing.png"].error
    assert by_name["a/broken.jpg"].error and by_name["b/empty.gif"].error
    assert by_name["a/pipe"].error == "cannot read file: not a regular file"
    assert by_name["b/deeper/z.txt"].kind is MediaKind.OTHER and by_name["a/2.png"].pdq == pdq_of(photo)
    sequential = list(hash_files(inputs, workers=1))
    assert [s.to_json_dict() for s in sequential] == [s.to_json_dict() for s in pooled]


class _BreaksBeforeTheNextSubmit:
    """A first pool that breaks as ``ProcessPoolExecutor`` does when a worker dies between two
    submits: the dying file's future fails with ``BrokenProcessPool`` and so does the next
    ``submit`` (the other files run here, in this process). A real pool shows it only when its
    manager thread notices the death before the next file goes in: a fresh-clone run did."""

    def __init__(self) -> None:
        self.broken = False

    def submit(self, fn: Any, path: str) -> Any:
        from concurrent.futures import Future
        from concurrent.futures.process import BrokenProcessPool

        if self.broken:
            raise BrokenProcessPool("A child process terminated abruptly")
        future: Future[Signals] = Future()
        if path.endswith("boom.png"):
            self.broken = True
            future.set_exception(BrokenProcessPool("A child process terminated abruptly"))
        else:
            future.set_result(fn(path))
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def test_a_worker_dying_before_the_next_submit_marks_only_its_file(
    tmp_path: Path, photo: Image.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The submit that finds the pool broken neither ends the batch nor loses its file: the
    files in flight are recovered, that file goes to the next pool, all in input order."""
    import meldpunt.signals.batch as batch

    real = batch._pool
    first = iter([_BreaksBeforeTheNextSubmit()])
    monkeypatch.setattr(batch, "_pool", lambda workers: next(first, None) or real(workers))
    paths = [str(p) for p in _tree(tmp_path, photo)] * 2
    results = list(run_batch(paths, _crash_on_boom, workers=2))
    assert [s.path for s in results] == paths
    for s in results:
        if s.path.endswith("boom.png"):
            assert s.error and "crashed" in s.error
        else:
            assert s == safe_hash_file(s.path, settings=DEFAULT, dihedral=False, every_frame=False)


def test_a_worker_crash_marks_only_its_file(tmp_path: Path, photo: Image.Image) -> None:
    paths = [str(p) for p in _tree(tmp_path, photo)] * 2
    results = list(run_batch(paths, _crash_on_boom, workers=2))
    assert [s.path for s in results] == paths
    for s in results:
        if s.path.endswith("boom.png"):
            assert s.error and "crashed" in s.error
            assert s.sha256 == hashlib.sha256(Path(s.path).read_bytes()).hexdigest()
        else:
            assert s == safe_hash_file(s.path, settings=DEFAULT, dihedral=False, every_frame=False)
