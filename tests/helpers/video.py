"""Benign generated video for tests."""

from __future__ import annotations

import io

import av
import numpy as np


def audio_only_mp4() -> bytes:
    """An MP4 with a sound stream and no video (benign: a tone)."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("aac", rate=8000)
        samples = (np.sin(np.arange(8000) / 5) * 8000).astype(np.int16)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()
