"""Exact hashes (MD5, SHA-1, SHA-256) and size, streamed so a 4 GB file costs 1 MiB of memory."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import BinaryIO

CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class ExactHashes:
    size: int
    md5: str
    sha1: str
    sha256: str


class _Hasher:
    def __init__(self) -> None:
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self._sha256 = hashlib.sha256()

    def update(self, chunk: bytes | memoryview) -> None:
        self.size += len(chunk)
        self._md5.update(chunk)
        self._sha1.update(chunk)
        self._sha256.update(chunk)

    def result(self) -> ExactHashes:
        return ExactHashes(self.size, self._md5.hexdigest(), self._sha1.hexdigest(), self._sha256.hexdigest())


def hash_data(data: bytes) -> ExactHashes:
    h = _Hasher()
    h.update(data)
    return h.result()


def hash_stream(stream: BinaryIO, prefix: bytes = b"") -> ExactHashes:
    """Hash ``prefix`` (bytes already read from the stream) followed by the rest of ``stream``."""
    h = _Hasher()
    h.update(prefix)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while True:
        n = stream.readinto(view)  # type: ignore[attr-defined]
        if not n:
            break
        h.update(view[:n])
    return h.result()
