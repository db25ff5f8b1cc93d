"""meldpunt.signals on videos: Meta vPDQ compatibility, frame choice, containers, bad input.

Benign media only: Meta's doorknob test video (tests/fixtures/media, BSD) and moving patterns
generated here with PyAV.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from meldpunt.settings import Settings
from meldpunt.signals import MediaKind, Signals, hamming, hash_bytes, hash_file
from meldpunt.signals.model import MediaError
from meldpunt.signals.pdq import pdq_hash
from meldpunt.signals.video import frame_step, hash_video
from tests.helpers.video import audio_only_mp4

MEDIA = Path(__file__).parent / "fixtures" / "media"
DOORKNOB = MEDIA / "doorknob-hd-no-bar.mp4"


def meta_frames() -> list[tuple[int, int, str, float]]:
    rows = []
    for line in (MEDIA / "doorknob-hd-no-bar.txt").read_text().splitlines():
        if line.strip():
            frame, quality, pdq, ts = line.split(",")
            rows.append((int(frame), int(quality), pdq, float(ts)))
    return rows


@pytest.fixture(scope="module")
def doorknob_every_frame() -> Signals:
    return hash_file(DOORKNOB, every_frame=True)


@pytest.mark.slow
def test_every_frame_matches_metas_vpdq(doorknob_every_frame: Signals) -> None:
    s = doorknob_every_frame
    ref = meta_frames()
    assert s.error is None and s.vpdq is not None
    frames = s.vpdq
    assert len(frames) == len(ref) == 120
    assert [f.frame for f in frames] == [r[0] for r in ref]
    assert max(abs(f.timestamp - r[3]) for f, r in zip(frames, ref, strict=True)) < 0.0006
    distances = [hamming(f.pdq, r[2]) for f, r in zip(frames, ref, strict=True) if r[1] >= 50]
    assert len(distances) >= 50
    assert max(distances) <= 31, max(distances)
    assert sum(distances) / len(distances) <= 10


def test_one_frame_per_second_picks_vpdq_frames(doorknob_every_frame: Signals) -> None:
    s = hash_file(DOORKNOB)
    assert (s.kind, s.format, s.width, s.height, s.error) == (MediaKind.VIDEO, "MP4", 1280, 720, None)
    assert s.vpdq is not None
    assert [(f.frame, round(f.timestamp, 3)) for f in s.vpdq] == [(0, 0.0), (30, 1.0), (60, 2.0), (90, 3.0)]
    every = {f.frame: f for f in doorknob_every_frame.vpdq or []}
    assert all(f == every[f.frame] for f in s.vpdq)
    half = hash_file(DOORKNOB, Settings(vpdq_frame_interval_s=0.5))
    assert [f.frame for f in half.vpdq or []] == list(range(0, 120, 15))


def test_frame_step_truncates_like_vpdq() -> None:
    assert frame_step(1.0, 30.0) == 30
    assert frame_step(1.0, 30000 / 1001) == 29
    assert frame_step(1.0, 0.5) == 1
    assert frame_step(2.5, 24.0) == 60


W, H = 160, 120


def pattern(i: int, n: int) -> np.ndarray:
    """Frame ``i`` of ``n``: a bright disc crossing a colour gradient (benign, moving)."""
    yy, xx = np.mgrid[0:H, 0:W]
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = (xx * 255 // W).astype(np.uint8)
    rgb[..., 2] = (yy * 255 // H).astype(np.uint8)
    cx, cy = 20 + i * (W - 40) // max(1, n - 1), H // 2
    rgb[(xx - cx) ** 2 + (yy - cy) ** 2 < 400] = 255
    return rgb


def make_video(container: str, codec: str, *, seconds: float = 2.0, rate: Fraction | int = 10) -> bytes:
    """The moving :func:`pattern`, encoded in memory."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=rate)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height = W, H
        stream.pix_fmt = "yuv420p"
        n = round(float(seconds * rate))
        for i in range(n):
            for packet in stream.encode(av.VideoFrame.from_ndarray(pattern(i, n), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


CONTAINERS = [
    ("mp4", "libx264", "MP4"),
    ("webm", "libvpx-vp9", "WebM"),
    ("mov", "libx264", "MOV"),
    ("avi", "mpeg4", "AVI"),
    ("matroska", "ffv1", "Matroska"),
]


@pytest.mark.parametrize(("container", "codec", "label"), CONTAINERS, ids=[c[2] for c in CONTAINERS])
def test_containers(tmp_path: Path, container: str, codec: str, label: str) -> None:
    data = make_video(container, codec)
    ext = {"matroska": "mkv"}.get(container, container)
    path = tmp_path / f"clip.{ext}"
    path.write_bytes(data)
    s = hash_file(path)
    assert (s.kind, s.format, s.error, s.width, s.height) == (MediaKind.VIDEO, label, None, 160, 120)
    assert s.md5 == hashlib.md5(data).hexdigest()
    assert s.vpdq is not None and [f.frame for f in s.vpdq] == [0, 10]
    every = hash_bytes(data, "upload.bin", every_frame=True)
    assert every.vpdq is not None and len(every.vpdq) == 20 and every.error is None
    assert every.vpdq[0] == s.vpdq[0] and every.vpdq[10] == s.vpdq[1]
    # The first frame hashes close to the picture it was made from (lossy codecs move a few bits).
    assert hamming(s.vpdq[0].pdq, pdq_hash(pattern(0, 20))[0]) <= 31
    assert s.to_json_dict()["vpdq"][1] == {"frame": 10, "timestamp": 1.0, "pdq": s.vpdq[1].pdq} | {
        "quality": s.vpdq[1].quality
    }


def test_ntsc_rate_uses_vpdq_frame_numbers() -> None:
    data = make_video("mp4", "libx264", seconds=3, rate=Fraction(30000, 1001))
    s = hash_bytes(data, "ntsc.mp4")
    assert s.vpdq is not None
    assert [f.frame for f in s.vpdq] == [0, 29, 58, 87]
    assert [round(f.timestamp, 3) for f in s.vpdq] == [0.0, 0.968, 1.935, 2.903]


def test_too_long_videos_are_refused() -> None:
    data = make_video("mp4", "libx264", seconds=3)
    s = hash_bytes(data, "x.mp4", Settings(max_video_s=1.5))
    assert s.error == "video too long: 0:00:03 exceeds the 0:00:01.5 limit (settings.max_video_s)"
    assert s.vpdq is None and s.sha1 == hashlib.sha1(data).hexdigest()
    s = hash_bytes(data, "x.mp4", Settings(max_video_frames=2))
    assert s.error is not None and "more than 2 frames" in s.error
    s = hash_bytes(data, "x.mp4", Settings(max_video_frames=3))
    assert s.error is None and s.vpdq is not None and len(s.vpdq) == 3


@pytest.mark.parametrize(
    ("make", "name", "message"),
    [
        (lambda: make_video("mp4", "libx264")[:3000], "cut.mp4", "cannot decode MP4"),
        (lambda: (lambda d: d[: len(d) // 2])(make_video("webm", "libvpx-vp9")), "cut.webm", ""),
        (lambda: b"\x1a\x45\xdf\xa3" + bytes(300), "junk.mkv", "cannot decode Matroska"),
        (lambda: b"plain text, not a film\n" * 20, "fake.avi", "cannot decode AVI"),
        (lambda: b"", "empty.mov", "empty file"),
        (audio_only_mp4, "song.mp4", "no video stream"),
    ],
    ids=["truncated-mp4", "truncated-webm", "corrupt-mkv", "text-named-avi", "empty", "audio-only"],
)
def test_bad_videos(
    make: Callable[[], bytes], name: str, message: str, capfd: pytest.CaptureFixture[str]
) -> None:
    data = make()
    s = hash_bytes(data, name)
    assert s.kind is MediaKind.VIDEO and s.sha256 == hashlib.sha256(data).hexdigest()
    if message:
        assert s.error is not None and message in s.error, s.error
        assert s.vpdq is None
    else:  # a stream cut short decodes what is there, like vpdq, or says why not
        assert (s.error is None) != (s.vpdq is None)
    out, _ = capfd.readouterr()
    assert out == ""


def test_video_too_large_for_settings(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(make_video("mp4", "libx264"))
    s = hash_file(path, Settings(max_file_bytes=100))
    assert s.error is not None and s.error.startswith("file too large:") and s.vpdq is None


def test_playlists_cannot_make_ffmpeg_open_other_files(tmp_path: Path) -> None:
    (tmp_path / "real.mp4").write_bytes(make_video("mp4", "libx264"))
    playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nfile:{}\n#EXT-X-ENDLIST\n"
    for name in ("list.m3u8", "list.mp4"):
        (tmp_path / name).write_text(playlist.format(tmp_path / "real.mp4"))
    # FFmpeg itself would follow the .m3u8 one (its HLS demuxer opens the listed file): ours may not.
    with pytest.raises(MediaError):
        hash_video(tmp_path / "list.m3u8", "MP4", Settings())
    concat = f"ffconcat version 1.0\nfile '{tmp_path / 'real.mp4'}'\n"
    (tmp_path / "concat.mkv").write_text(concat)
    for name in ("list.mp4", "concat.mkv"):
        s = hash_file(tmp_path / name)
        assert s.kind is MediaKind.VIDEO and s.error is not None and s.vpdq is None, name


def test_names_that_look_like_urls_are_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_video("mp4", "libx264")
    (tmp_path / "http:clip.mp4").write_bytes(data)
    (tmp_path / "concat:a.mp4|b.mp4").write_bytes(data)
    monkeypatch.chdir(tmp_path)
    for name in ("http:clip.mp4", "concat:a.mp4|b.mp4"):
        s = hash_file(name)
        assert s.error is None and s.vpdq is not None and len(s.vpdq) == 2, name
