"""One file (or its bytes) -> :class:`Signals`: exact hashes always, PDQ or vPDQ when it is media.

Content never raises: whatever is wrong with the bytes ends up in ``Signals.error``. Only a file
that cannot be read at all (missing, no permission) raises ``OSError`` from :func:`hash_file`;
:func:`meldpunt.signals.hash_files` turns that into a record too.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from pathlib import Path

from meldpunt.settings import Settings
from meldpunt.signals.exact import ExactHashes, hash_data, hash_stream
from meldpunt.signals.image import hash_image
from meldpunt.signals.model import MediaError, MediaKind, Signals
from meldpunt.signals.sniff import HEAD_BYTES, Detected, detect
from meldpunt.signals.video import hash_video

log = logging.getLogger(__name__)

StrPath = str | os.PathLike[str]


def resolve_settings(settings: Settings | None) -> Settings:
    return Settings.from_env() if settings is None else settings


def hash_file(
    path: StrPath, settings: Settings | None = None, *, dihedral: bool = False, every_frame: bool = False
) -> Signals:
    """Signals of the file at ``path`` (``Signals.path`` is ``str(path)``).

    Images are read into memory (up to ``settings.max_file_bytes``) and decoded from there; videos are
    decoded from the file; everything else is only streamed through the exact hashes. ``dihedral``
    applies to images, ``every_frame`` to videos. Raises ``OSError`` only when the file cannot be
    read (or is not a regular file).
    """
    settings = resolve_settings(settings)
    name = os.fspath(path)
    limit = settings.max_file_bytes
    if not stat.S_ISREG(os.stat(name).st_mode):  # opening a FIFO would wait forever
        raise OSError(errno.EINVAL, "not a regular file", name)
    with open(name, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(HEAD_BYTES)
        detected = detect(head, name)
        if detected.kind is MediaKind.OTHER or size == 0 or size > limit:
            return _not_decoded(name, hash_stream(f, head), detected, settings)
        if detected.kind is MediaKind.IMAGE:
            data = head + f.read(limit + 1 - len(head))
            if len(data) > limit:  # it grew while we read it
                return _not_decoded(name, hash_stream(f, data), detected, settings)
            return _media(name, hash_data(data), detected, data, settings, dihedral, every_frame)
        exact = hash_stream(f, head)
    return _media(name, exact, detected, Path(name), settings, dihedral, every_frame)


def hash_bytes(
    data: bytes,
    name: str,
    settings: Settings | None = None,
    *,
    dihedral: bool = False,
    every_frame: bool = False,
) -> Signals:
    """Signals of ``data``; ``name`` is used for the extension (when the magic bytes say nothing) and
    as ``Signals.path``."""
    settings = resolve_settings(settings)
    exact = hash_data(data)
    detected = detect(data[:HEAD_BYTES], name)
    if detected.kind is MediaKind.OTHER or not data or len(data) > settings.max_file_bytes:
        return _not_decoded(name, exact, detected, settings)
    return _media(name, exact, detected, bytes(data), settings, dihedral, every_frame)


def _record(name: str, exact: ExactHashes, detected: Detected, **fields: object) -> Signals:
    s = Signals(
        path=name,
        size=exact.size,
        md5=exact.md5,
        sha1=exact.sha1,
        sha256=exact.sha256,
        kind=detected.kind,
        format=detected.format,
    )
    for key, value in fields.items():
        setattr(s, key, value)
    return s


def _not_decoded(name: str, exact: ExactHashes, detected: Detected, settings: Settings) -> Signals:
    """Exact hashes only: not media, or media refused before decoding (empty, too large)."""
    if detected.kind is MediaKind.OTHER:
        return _record(name, exact, detected)
    what = detected.format or detected.kind.value
    if exact.size == 0:
        error = f"empty file: no {what} data (the name says {detected.kind.value})"
    else:
        error = (
            f"file too large: {exact.size:,} bytes exceeds the {settings.max_file_bytes:,}-byte limit"
            f" for {detected.kind.value}s (settings.max_file_bytes)"
        )
    return _record(name, exact, detected, error=error)


def _media(
    name: str,
    exact: ExactHashes,
    detected: Detected,
    content: bytes | Path,
    settings: Settings,
    dihedral: bool,
    every_frame: bool,
) -> Signals:
    try:
        if detected.kind is MediaKind.IMAGE:
            assert isinstance(content, bytes)
            im = hash_image(content, detected, settings, dihedral=dihedral)
            return _record(
                name,
                exact,
                detected,
                pdq=im.pdq,
                pdq_quality=im.quality,
                pdq_dihedral=im.dihedral,
                orientation=im.orientation,
                pdq_stored=im.stored_pdq,
                pdq_stored_quality=im.stored_quality,
                width=im.width,
                height=im.height,
                format=im.format,
                truncated=im.truncated,
            )
        video = hash_video(content, detected.format, settings, every_frame=every_frame)
        return _record(name, exact, detected, vpdq=video.frames, width=video.width, height=video.height)
    except MediaError as e:
        return _record(name, exact, detected, error=str(e))
    except MemoryError:  # over a sandbox's memory limit (meldpunt.signals.sandbox)
        return _record(
            name, exact, detected, error=f"cannot hash {detected.kind.value}: decoding it ran out of memory"
        )
    except Exception as e:  # a bug or a library failure we did not foresee: still a record
        log.exception("unexpected failure hashing %s", name)
        return _record(
            name, exact, detected, error=f"cannot hash {detected.kind.value}: {type(e).__name__}: {e}"
        )
