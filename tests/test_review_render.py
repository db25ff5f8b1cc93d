"""meldpunt.review.render: blurred greyscale thumbnails and contact sheets, made on the server.

Benign media only: generated photo-like scenes with a fine grid drawn over them (so there is detail
to blur away), and a moving checkerboard-and-disc video generated here with PyAV.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageCms, ImageDraw

from meldpunt.review import RenderError, contact_sheet, render_for_review, thumbnail
from meldpunt.review.render import BACKGROUND, GAP, blur_radius, grid
from meldpunt.settings import Settings
from meldpunt.signals.synthetic import photo_like
from tests.helpers.video import audio_only_mp4

SETTINGS = Settings()


# --- helpers -----------------------------------------------------------------------------------


def detailed(width: int = 640, height: int = 480, seed: int = 7) -> Image.Image:
    """A photo-like scene with a fine grid over it: plenty of high frequencies."""
    im = photo_like(width, height, seed)
    draw = ImageDraw.Draw(im)
    for x in range(0, width, 6):
        draw.line((x, 0, x, height), fill=(255, 255, 255), width=2)
    for y in range(0, height, 6):
        draw.line((0, y, width, y), fill=(0, 0, 0), width=2)
    return im


def encode(im: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def grey(im: Image.Image) -> npt.NDArray[np.float64]:
    return np.asarray(im.convert("L"), dtype=np.float64)


def detail(a: npt.NDArray[np.float64]) -> float:
    """High-frequency energy: the mean absolute difference between neighbouring pixels."""
    return float(np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean())


def assert_no_metadata(data: bytes) -> None:
    im = decode(data)
    assert not im.getexif()
    assert not {"exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "comment"} & set(im.info)
    assert b"Exif\x00" not in data and b"ns.adobe.com/xap" not in data and b"ICC_PROFILE" not in data


def with_orientation(im: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Benign Camera Co."  # make
    return encode(im, "JPEG", quality=92, exif=exif.tobytes())


XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://ns.adobe.com/xap/1.0/"/></x:xmpmeta>'


def image_inputs() -> list[tuple[str, bytes]]:
    base = detailed()
    exif = Image.Exif()
    exif[0x010F] = "Benign Camera Co."
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rgba = base.convert("RGBA")
    alpha = np.full((base.height, base.width), 255, np.uint8)
    alpha[:, : base.width // 3] = 0
    rgba.putalpha(Image.fromarray(alpha))
    return [
        ("photo.jpg", encode(base, "JPEG", quality=92, icc_profile=srgb, exif=exif, xmp=XMP)),
        ("turned.jpg", with_orientation(base, 6)),
        ("alpha.png", encode(rgba, "PNG")),
        ("palette.gif", encode(base.convert("P", palette=Image.Palette.ADAPTIVE), "GIF")),
        ("photo.webp", encode(base, "WEBP", quality=90, exif=Image.Exif().tobytes())),
    ]


IMAGES = image_inputs()

W, H = 160, 120


def pattern(i: int, n: int) -> npt.NDArray[np.uint8]:
    """Frame ``i`` of ``n``: a fine checkerboard with a bright disc crossing it (benign, moving)."""
    yy, xx = np.mgrid[0:H, 0:W]
    board = (((xx + i) // 4 + yy // 4) % 2 * 160 + 40).astype(np.uint8)
    rgb = np.stack([board, board // 2 + (xx * 100 // W).astype(np.uint8), 255 - board], axis=2)
    cx, cy = 20 + i * (W - 40) // max(1, n - 1), H // 2
    rgb[(xx - cx) ** 2 + (yy - cy) ** 2 < 300] = 255
    return rgb


def make_video(
    container: str = "mp4",
    codec: str = "libx264",
    *,
    seconds: float = 3.0,
    rate: int = 10,
    audio: bool = True,
    options: dict[str, str] | None = None,
) -> bytes:
    """The moving :func:`pattern`, encoded in memory, with a quiet tone as an audio stream."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container, options=options or {}) as out:
        video = out.add_stream(codec, rate=rate)
        assert isinstance(video, av.VideoStream)
        video.width, video.height = W, H
        video.pix_fmt = "yuv420p"
        sound = out.add_stream("aac", rate=8000) if audio else None
        n = round(seconds * rate)
        for i in range(n):
            for packet in video.encode(av.VideoFrame.from_ndarray(pattern(i, n), format="rgb24")):
                out.mux(packet)
            if sound is not None:
                t = np.arange(800) + i * 800
                samples = (np.sin(t / 5) * 3000).astype(np.int16)[None, :]
                frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
                frame.sample_rate = 8000
                frame.pts = i * 800
                for packet in sound.encode(frame):
                    out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if sound is not None:
            for packet in sound.encode():
                out.mux(packet)
    return buf.getvalue()


@pytest.fixture(scope="module")
def clip() -> bytes:
    return make_video()


# --- images ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "data"), IMAGES, ids=[n for n, _ in IMAGES])
def test_thumbnails_are_small_grey_blurred_and_bare(name: str, data: bytes) -> None:
    out = thumbnail(data, name, settings=SETTINGS)
    assert out != data and out[:3] == b"\xff\xd8\xff"
    im = decode(out)
    assert im.format == "JPEG" and im.mode == "L"
    assert max(im.size) == 320 and min(im.size) == 240
    assert_no_metadata(out)
    sharp = thumbnail(data, name, blur=False, settings=SETTINGS)
    assert decode(sharp).mode == "L" and decode(sharp).size == im.size
    blurred, unblurred = detail(grey(im)), detail(grey(decode(sharp)))
    assert blurred < 0.25 * unblurred, (blurred, unblurred)


@pytest.mark.parametrize(("name", "data"), IMAGES, ids=[n for n, _ in IMAGES])
def test_reveal_is_sharp_colour_and_still_re_encoded(name: str, data: bytes) -> None:
    out = thumbnail(data, name, size=1024, blur=False, greyscale=False, settings=SETTINGS)
    assert out != data
    im = decode(out)
    assert im.mode == "RGB" and max(im.size) == 640  # never enlarged
    rgb = np.asarray(im, dtype=np.int16)
    assert np.abs(rgb[..., 0] - rgb[..., 1]).mean() > 5  # colour survives
    assert_no_metadata(out)


def test_exif_orientation_is_applied() -> None:
    arr = np.zeros((200, 400, 3), np.uint8)
    arr[:, :200] = 255  # stored: white left half, black right half
    data = with_orientation(Image.fromarray(arr), 6)  # 6: turn 90 degrees clockwise to show
    im = decode(thumbnail(data, "phone.jpg", settings=SETTINGS))
    assert im.size == (160, 320)
    a = grey(im)
    assert a[:100].mean() > 200 and a[-100:].mean() < 50  # the white half is now on top
    assert_no_metadata(thumbnail(data, "phone.jpg", blur=False, greyscale=False, settings=SETTINGS))


def test_blur_scales_with_the_rendering() -> None:
    assert blur_radius(320, 240) == pytest.approx(19.2)
    assert blur_radius(1024, 10) == pytest.approx(61.44)
    assert blur_radius(10, 10) == 1.0
    data = encode(detailed(1600, 1200), "PNG")
    small, big = (decode(thumbnail(data, "x.png", size=s, settings=SETTINGS)) for s in (200, 800))
    # The same picture is as unreadable at any size: shrunk to the same size, they look alike
    # (away from the edges, which Pillow's blur treats a little differently at each radius).
    a = grey(big.resize(small.size, Image.Resampling.LANCZOS))
    assert np.abs(a - grey(small))[30:-30, 30:-30].mean() < 2


def test_small_images_are_not_enlarged() -> None:
    data = encode(detailed(64, 48), "PNG")
    assert decode(thumbnail(data, "tiny.png", settings=SETTINGS)).size == (64, 48)


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (100, 80), c) for c in ((250, 250, 250), (0, 0, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    im = decode(thumbnail(buf.getvalue(), "anim.gif", settings=SETTINGS))
    assert grey(im).mean() > 200


def _bomb_png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    head = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    body = zlib.compress(b"\x00" * 100_000)
    idat = b"IDAT" + body
    return head + struct.pack(">I", len(body)) + idat + struct.pack(">I", zlib.crc32(idat))


def test_decompression_bomb_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("Pillow was asked to open a bomb")

    monkeypatch.setattr(Image, "open", no_decoding)
    for data, name in ((_bomb_png(100_000, 100_000), "bomb.png"), (_bomb_png(8000, 8000), "b.png")):
        with pytest.raises(RenderError, match=r"image too large: .* exceeds the 50,000,000-pixel limit"):
            thumbnail(data, name, settings=SETTINGS)
        with pytest.raises(RenderError, match="image too large"):
            render_for_review(data, name, reveal=True, settings=SETTINGS)


def test_pixel_limit_applies_to_formats_without_a_header_check() -> None:
    data = encode(detailed(100, 100), "TIFF")
    with pytest.raises(RenderError, match="100x100 pixels exceeds the 5,000-pixel limit"):
        thumbnail(data, "x.tif", settings=Settings(max_image_pixels=5000))
    assert decode(thumbnail(data, "x.tif", settings=SETTINGS)).size == (100, 100)


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"", "empty.jpg", "empty file"),
        (IMAGES[0][1][:300], "cut.jpg", "cannot decode JPEG image"),
        (IMAGES[2][1][:200], "cut.png", "cannot decode PNG image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "junk.png", "cannot decode PNG image"),
        (b"just some words, not a picture\n" * 10, "fake.jpg", "not a recognised image format"),
        (b"just some words\n", "notes.txt", "not an image: the content is neither"),
        (b"\xff\x0a" + bytes(100), "new.jxl", "unsupported image format: JPEG XL"),
    ],
    ids=["empty", "truncated-jpeg", "truncated-png", "corrupt-png", "text-named-jpg", "text", "jxl"],
)
def test_bad_images(data: bytes, name: str, message: str) -> None:
    with pytest.raises(RenderError, match=message):
        thumbnail(data, name, settings=SETTINGS)


def test_file_size_limit() -> None:
    name, data = IMAGES[0]
    with pytest.raises(RenderError, match=r"file too large: .*settings\.max_file_bytes"):
        thumbnail(data, name, settings=Settings(max_file_bytes=1000))


def test_sizes_are_checked() -> None:
    with pytest.raises(ValueError, match="size"):
        thumbnail(IMAGES[0][1], "x.jpg", size=5)
    with pytest.raises(ValueError, match="frames"):
        contact_sheet(b"x", "x.mp4", frames=0)


# --- videos ------------------------------------------------------------------------------------


def sheet_size(count: int, tile: tuple[int, int] = (W, H)) -> tuple[int, int]:
    columns, rows = grid(count)
    return columns * tile[0] + (columns + 1) * GAP, rows * tile[1] + (rows + 1) * GAP


def test_grid() -> None:
    assert [grid(n) for n in (1, 2, 4, 5, 9, 10, 16)] == [
        (1, 1),
        (2, 1),
        (2, 2),
        (3, 2),
        (3, 3),
        (4, 3),
        (4, 4),
    ]


def tile_boxes(count: int, tile: tuple[int, int] = (W, H)) -> list[tuple[int, int, int, int]]:
    columns, _ = grid(count)
    return [
        (
            GAP + c * (tile[0] + GAP),
            GAP + r * (tile[1] + GAP),
            GAP + c * (tile[0] + GAP) + tile[0],
            GAP + r * (tile[1] + GAP) + tile[1],
        )
        for r, c in (divmod(k, columns) for k in range(count))
    ]


def test_contact_sheet_grid_and_blur(clip: bytes) -> None:
    out = contact_sheet(clip, "clip.mp4", settings=SETTINGS)
    assert out != clip
    sheet = decode(out)
    assert sheet.format == "JPEG" and sheet.mode == "L"
    assert sheet.size == sheet_size(9) == (3 * 160 + 4 * GAP, 3 * 120 + 4 * GAP)
    assert_no_metadata(out)
    a = grey(sheet)
    # The gaps between the tiles are background, the tiles are not.
    for x0, y0, x1, y1 in tile_boxes(9):
        assert abs(a[y0 - GAP + 1 : y0 - 1, x0:x1].mean() - BACKGROUND) < 6
        assert abs(a[y0:y1, x0 - GAP + 1 : x0 - 1].mean() - BACKGROUND) < 6
        assert a[y0 : y0 + 80, x0:x1].std() > 5
    sharp = grey(decode(contact_sheet(clip, "clip.mp4", blur=False, settings=SETTINGS)))
    # High frequencies in each tile above its time label: the blur took almost all of them away.
    for x0, y0, x1, _ in tile_boxes(9):
        blurred, unblurred = detail(a[y0 : y0 + 80, x0:x1]), detail(sharp[y0 : y0 + 80, x0:x1])
        assert blurred < 0.25 * unblurred, (blurred, unblurred)


def test_contact_sheet_tiles_follow_the_video(clip: bytes) -> None:
    """The disc moves left to right: tiles in order show it further right each time."""
    sheet = decode(contact_sheet(clip, "clip.mp4", frames=4, blur=False, greyscale=False, settings=SETTINGS))
    assert sheet.mode == "RGB" and sheet.size == sheet_size(4)
    a = np.asarray(sheet, dtype=np.int16)
    centres = []
    for x0, y0, x1, _ in tile_boxes(4):
        band = a[y0 + 50 : y0 + 70, x0:x1]
        white = (band.min(axis=2) > 235).sum(axis=0)  # the disc is the only white
        centres.append(float((white * np.arange(x1 - x0)).sum() / white.sum()))
    assert centres == sorted(centres) and centres[-1] - centres[0] > 60, centres


@pytest.mark.parametrize("frames", [1, 2, 5, 16])
def test_contact_sheet_tile_counts(clip: bytes, frames: int) -> None:
    assert decode(contact_sheet(clip, "clip.mp4", frames=frames, settings=SETTINGS)).size == sheet_size(
        frames
    )


def test_tiles_fit_the_size(clip: bytes) -> None:
    sheet = decode(contact_sheet(clip, "clip.mp4", frames=4, size=80, settings=SETTINGS))
    assert sheet.size == sheet_size(4, (80, 60))


def test_short_video_shows_each_frame_once() -> None:
    data = make_video(seconds=0.3, audio=False)  # 3 frames
    assert decode(contact_sheet(data, "short.mp4", settings=SETTINGS)).size == sheet_size(3)


def test_video_without_index_is_read_from_the_start() -> None:
    """A live Matroska stream has neither cues nor a duration: no seeking, one pass instead."""
    data = make_video("matroska", "ffv1", seconds=4, audio=False, options={"live": "1"})
    out = contact_sheet(data, "live.mkv", frames=4, blur=False, greyscale=False, settings=SETTINGS)
    assert decode(out).size == sheet_size(4)
    # Evenly spread over the 40 frames: the disc still moves left to right.
    a = np.asarray(decode(out), dtype=np.int16)
    centres = []
    for x0, y0, x1, _ in tile_boxes(4):
        white = (a[y0 + 50 : y0 + 70, x0:x1].min(axis=2) > 235).sum(axis=0)
        centres.append(float((white * np.arange(x1 - x0)).sum() / white.sum()))
    assert centres == sorted(centres) and centres[-1] - centres[0] > 60, centres
    with pytest.raises(RenderError, match="video too long"):
        contact_sheet(data, "live.mkv", settings=Settings(max_video_s=2.0))


def test_long_videos_are_refused(clip: bytes) -> None:
    with pytest.raises(RenderError, match=r"video too long: 0:00:03 exceeds .*settings\.max_video_s"):
        contact_sheet(clip, "clip.mp4", settings=Settings(max_video_s=1.5))
    with pytest.raises(RenderError, match=r"video frames too large: 160x120"):
        contact_sheet(clip, "clip.mp4", settings=Settings(max_image_pixels=1000))
    with pytest.raises(RenderError, match="file too large"):
        contact_sheet(clip, "clip.mp4", settings=Settings(max_file_bytes=1000))


@pytest.mark.parametrize(
    ("make", "name", "message"),
    [
        (lambda: make_video()[:3000], "cut.mp4", "cannot decode MP4"),
        (lambda: b"\x1a\x45\xdf\xa3" + bytes(300), "junk.mkv", "cannot decode Matroska"),
        (lambda: b"plain text, not a film\n" * 20, "fake.avi", "cannot decode AVI"),
        (lambda: b"", "empty.mov", "empty file"),
        (audio_only_mp4, "song.mp4", "no video stream"),
        (lambda: IMAGES[0][1], "photo.jpg", "not a video: the content is an image"),
    ],
    ids=["truncated-mp4", "corrupt-mkv", "text-named-avi", "empty", "audio-only", "image"],
)
def test_bad_videos(make: Callable[[], bytes], name: str, message: str) -> None:
    with pytest.raises(RenderError, match=message):
        contact_sheet(make(), name, settings=SETTINGS)


def test_playlists_are_not_followed(tmp_path: Any) -> None:
    (tmp_path / "real.mp4").write_bytes(make_video(audio=False))
    playlist = f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nfile:{tmp_path / 'real.mp4'}\n#EXT-X-ENDLIST\n"
    concat = f"ffconcat version 1.0\nfile '{tmp_path / 'real.mp4'}'\n"
    for data, name in ((playlist, "list.mp4"), (concat, "concat.mkv")):
        with pytest.raises(RenderError):
            contact_sheet(data.encode(), name, settings=SETTINGS)


# --- dispatch ----------------------------------------------------------------------------------


def test_render_for_review_dispatches_on_content(clip: bytes) -> None:
    name, data = IMAGES[1]
    out, kind = render_for_review(data, name, settings=SETTINGS)
    assert kind == "image/jpeg" and decode(out).mode == "L" and max(decode(out).size) == 320
    out, kind = render_for_review(
        encode(detailed(1600, 1200), "PNG"), "x.png", reveal=True, settings=SETTINGS
    )
    assert kind == "image/jpeg" and decode(out).mode == "RGB" and decode(out).size == (1024, 768)
    # Names lie; the bytes decide.
    out, kind = render_for_review(clip, "holiday.jpg", settings=SETTINGS)
    assert kind == "image/jpeg" and decode(out).size == sheet_size(9)
    out, _ = render_for_review(clip, "clip.mp4", reveal=True, settings=SETTINGS)
    assert decode(out).mode == "RGB" and decode(out).size == sheet_size(9)
    with pytest.raises(RenderError, match="neither an image nor a video"):
        render_for_review(b"%PDF-1.4 a document", "doc.pdf", settings=SETTINGS)
