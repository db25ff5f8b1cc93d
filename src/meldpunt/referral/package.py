"""A referral package on disk: its files, a signed manifest, a zip; and :func:`verify`.

Layout (a folder named after the case, and the same folder zipped as ``<case>.zip``)::

    RF-20261201-7Q3K9X/
      summary.pdf        the readable summary (URLs, hosting, classification, who decided, timeline)
      summary.html       the same, self-contained HTML
      vics.json          VICS 2.0 #Cases: hashes and categories for Griffeye and other police tools
      media.csv          one row per medium (RFC 4180, UTF-8)
      media/...          the media's bytes, only when held as evidence and asked for
      ...                extra files another format adds (the CyberTipline XML)
      manifest.json      every file above: name, size, SHA-256; the case, when, which hotline
      manifest.sig       the Ed25519 signature of manifest.json's exact bytes, and its key id
      public-keys.json   the hotline's accepted public keys, for checking offline

``manifest.json`` (``format: meldpunt-referral/1``) lists ``files`` as ``{"name", "size",
"sha256"}`` sorted by name, with ``case``, ``created`` (UTC, ISO 8601), ``instance`` and
``with_media``. ``manifest.sig`` (``format: meldpunt-referral-signature/1``) holds ``alg``
(``Ed25519``), ``kid`` (the first 16 hex digits of the SHA-256 of the raw public key),
``signature`` (base64) and ``manifest_sha256`` — the last only so a failed check can say
*which* of the two was changed; the signature alone decides. ``public-keys.json`` is outside the
manifest: it is what the signature is checked *with*, and a key found only there proves the files
are unchanged since signing, not who signed; the hotline's key must come from the hotline (its
``kid`` read out on the phone is enough: it is the key's fingerprint).

:func:`verify` takes the folder or the zip and the public keys to accept and says, per file, what
is wrong: changed (size or SHA-256), missing, extra (in the package but not in the manifest), or
that the signature does not match or is by a key not accepted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import shutil
import stat
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol

from meldpunt.referral.case import Case
from meldpunt.referral.summary import summary_html, summary_pdf
from meldpunt.referral.table import media_csv
from meldpunt.referral.vics import vics_json

FORMAT = "meldpunt-referral/1"
SIG_FORMAT = "meldpunt-referral-signature/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEYS = "public-keys.json"
#: files of the package the manifest does not list (itself, its signature, the keys to check it)
OUTSIDE = frozenset({MANIFEST, SIGNATURE, PUBLIC_KEYS})
#: names the builder writes itself; an extra file may not take one
RESERVED = frozenset({"summary.pdf", "summary.html", "vics.json", "media.csv"}) | OUTSIDE
#: most files a package to verify may hold (a zip of a million entries is not a referral)
MAX_FILES = 10_000
#: most bytes read whole from a package (the manifest, its signature); the rest is hashed in chunks
MAX_READ = 16 << 20


class PackageError(ValueError):
    """A package cannot be built (a bad extra file name) or opened (not a folder or zip, unsafe names)."""


class Signer(Protocol):
    """What signs the manifest: ``stores.signing.KeyRing`` (``sign(data) -> (kid, base64 sig)``)."""

    def sign(self, data: bytes) -> tuple[str, str]: ...


@dataclass(frozen=True)
class PackageFile:
    """A file to put in the package: its path inside it (``media/12-ab34.jpg``) and bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class Package:
    reference: str
    folder: Path
    zip_path: Path
    manifest: Mapping[str, Any]
    #: SHA-256 of manifest.json's bytes (what the signature covers; recorded with the referral)
    manifest_sha256: str
    kid: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class Problem:
    #: changed | missing | extra | signature | manifest | key
    kind: str
    #: the file it is about
    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


@dataclass(frozen=True)
class VerifyResult:
    problems: tuple[Problem, ...] = ()
    case: str = ""
    kid: str = ""
    files: int = 0
    created: str = ""
    instance: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def _safe_name(name: str) -> str:
    """``name`` as a relative POSIX path inside the package, or :class:`PackageError`."""
    p = PurePosixPath(name)
    if (
        not name
        or "\\" in name
        or p.is_absolute()
        or any(part in ("", ".", "..") for part in name.split("/"))
        or any(ord(c) < 32 for c in name)
        or len(name) > 200
    ):
        raise PackageError(f"not a safe file name inside a package: {name!r}")
    return str(p)


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _utc_iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def build_package(
    case: Case,
    out_dir: Path,
    *,
    signer: Signer,
    public_keys: Sequence[Mapping[str, Any]],
    media: Iterable[PackageFile] = (),
    extra_files: Iterable[PackageFile] = (),
    profile: str = "US",
) -> Package:
    """Write ``case``'s package into ``out_dir/<reference>/`` and ``out_dir/<reference>.zip``.

    ``media``: the media's bytes (only those the export asked for and the evidence store holds);
    ``extra_files``: more files another format adds (each listed in the manifest like the rest).
    The folder is written under a temporary name and renamed when complete, so a package that is
    there is whole; an existing package of the same reference is refused."""
    out_dir.mkdir(parents=True, exist_ok=True)
    folder = out_dir / case.reference
    zip_path = out_dir / f"{case.reference}.zip"
    if folder.exists() or zip_path.exists():
        raise PackageError(f"a package {case.reference} exists already in {out_dir}")
    files: dict[str, bytes] = {
        "summary.pdf": summary_pdf(case, profile=profile),
        "summary.html": summary_html(case, profile=profile),
        "vics.json": vics_json(case, profile=profile),
        "media.csv": media_csv(case, profile=profile),
    }
    for f in [*media, *extra_files]:
        name = _safe_name(f.name)
        if name in files or name in RESERVED:
            raise PackageError(f"two files named {name} in one package")
        files[name] = f.data
    manifest = {
        "format": FORMAT,
        "case": case.reference,
        "created": _utc_iso(case.created),
        "instance": case.instance,
        "created_by": case.created_by,
        "items": [i.item_id for i in case.items],
        "with_media": case.with_media,
        "files": [
            {"name": n, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
            for n, d in sorted(files.items())
        ],
    }
    mbytes = manifest_bytes(manifest)
    kid, sig = signer.sign(mbytes)
    msha = hashlib.sha256(mbytes).hexdigest()
    files[MANIFEST] = mbytes
    files[SIGNATURE] = (
        json.dumps(
            {"format": SIG_FORMAT, "alg": "Ed25519", "kid": kid, "signature": sig, "manifest_sha256": msha},
            indent=1,
            sort_keys=True,
        )
        + "\n"
    ).encode()
    files[PUBLIC_KEYS] = (json.dumps({"keys": list(public_keys)}, indent=1, sort_keys=True) + "\n").encode()

    tmp = out_dir / f".tmp-{case.reference}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for name, data in files.items():
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        tmp_zip = out_dir / f".tmp-{case.reference}-{os.getpid()}.zip"
        _write_zip(tmp_zip, case.reference, files, case.created)
        os.replace(tmp, folder)
        os.replace(tmp_zip, zip_path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        (out_dir / f".tmp-{case.reference}-{os.getpid()}.zip").unlink(missing_ok=True)
        raise
    return Package(case.reference, folder, zip_path, manifest, msha, kid, tuple(sorted(files)))


def _write_zip(path: Path, top: str, files: Mapping[str, bytes], at: datetime) -> None:
    stamp = at.astimezone(UTC).timetuple()[:6]
    stamp = (max(stamp[0], 1980), *stamp[1:])
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name in sorted(files):
            info = zipfile.ZipInfo(f"{top}/{name}", date_time=stamp)  # type: ignore[arg-type]
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, files[name])


def remove_package(pkg: Package) -> None:
    """Delete a package's folder and zip (its referral was not recorded)."""
    shutil.rmtree(pkg.folder, ignore_errors=True)
    pkg.zip_path.unlink(missing_ok=True)


# -- verifying ---------------------------------------------------------------------------------------------


class _Source(Protocol):
    def names(self) -> list[str]: ...

    def size(self, name: str) -> int: ...

    def read(self, name: str) -> bytes: ...

    def digest(self, name: str) -> tuple[int, str]: ...


class _Folder:
    def __init__(self, root: Path) -> None:
        self.root = root

    def names(self) -> list[str]:
        """Every file's relative name. A package holds plain files and folders only: a symbolic
        link (to a file outside, to ``/dev/zero``) or a FIFO is refused by name — reading one hung
        the check, or vouched for bytes that do not travel with the package."""
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for d in dirnames:
                _plain(self.root, Path(dirpath) / d, folder=True)
            for f in sorted(filenames):
                full = Path(dirpath) / f
                _plain(self.root, full, folder=False)
                out.append(full.relative_to(self.root).as_posix())
                if len(out) > MAX_FILES:
                    raise PackageError(f"more than {MAX_FILES} files: not a referral package")
        return out

    def size(self, name: str) -> int:
        return (self.root / name).lstat().st_size

    def read(self, name: str) -> bytes:
        with open(self.root / name, "rb") as f:
            return f.read(MAX_READ)

    def digest(self, name: str) -> tuple[int, str]:
        h = hashlib.sha256()
        size = 0
        with open(self.root / name, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
        return size, h.hexdigest()


def _plain(root: Path, path: Path, *, folder: bool) -> None:
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        raise PackageError(
            f"{path.relative_to(root).as_posix()}: a symbolic link; a package holds plain files only"
        )
    if not (stat.S_ISDIR(mode) if folder else stat.S_ISREG(mode)):
        raise PackageError(f"{path.relative_to(root).as_posix()}: not a plain file")


class _Zip:
    def __init__(self, z: zipfile.ZipFile) -> None:
        self.z = z
        infos = [i for i in z.infolist() if not i.is_dir()]
        if len(infos) > MAX_FILES:
            raise PackageError(f"more than {MAX_FILES} files: not a referral package")
        raw = [i.filename for i in infos]
        for n in raw:
            _safe_name(n)
        tops = {n.split("/", 1)[0] for n in raw}
        # the package's files sit in one folder named after the case (as we write it), or at the top
        self.prefix = f"{tops.pop()}/" if len(tops) == 1 and all("/" in n for n in raw) else ""
        self.map: dict[str, zipfile.ZipInfo] = {}
        for i in infos:
            name = i.filename[len(self.prefix) :]
            if name in self.map:
                raise PackageError(f"the zip holds {name} twice")
            self.map[name] = i

    def names(self) -> list[str]:
        return sorted(self.map)

    def size(self, name: str) -> int:
        return self.map[name].file_size

    def read(self, name: str) -> bytes:
        with self._open(name) as f:
            return f.read(MAX_READ)

    def digest(self, name: str) -> tuple[int, str]:
        h = hashlib.sha256()
        size = 0
        with self._open(name) as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
        return size, h.hexdigest()

    def _open(self, name: str) -> IO[bytes]:
        """A member to read; an encrypted one or one in a compression we do not read is refused by
        name (zipfile raised RuntimeError / NotImplementedError, a traceback from the CLI)."""
        info = self.map[name]
        if info.flag_bits & 0x1:
            raise PackageError(f"{name}: encrypted in the zip; a referral package is not encrypted")
        try:
            return self.z.open(info)
        except NotImplementedError as e:
            raise PackageError(f"{name}: cannot be read from the zip ({e})") from None


def _keys(public_keys: Iterable[Mapping[str, Any] | str]) -> dict[str, bytes]:
    """kid -> raw public key, from ``{"kid", "public"}`` dicts (``KeyRing.public_keys``) or base64."""
    out: dict[str, bytes] = {}
    for k in public_keys:
        text = k if isinstance(k, str) else str(k.get("public", ""))
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(raw) == 32:
            out[hashlib.sha256(raw).hexdigest()[:16]] = raw
    return out


def _signature_ok(raw: bytes, data: bytes, sig: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(sig, validate=True), data)
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


def verify(path: Path | str, public_keys: Iterable[Mapping[str, Any] | str]) -> VerifyResult:
    """Check a package (its folder or its zip) against ``public_keys`` (the keys to accept).

    Every file listed must be there with its size and SHA-256, no other file may be there (besides
    the manifest, its signature and the public keys), and the manifest's signature must be valid
    under an accepted key. Every problem found is named with its file. :class:`PackageError`
    when ``path`` is neither a folder nor a readable zip."""
    path = Path(path)
    if path.is_dir():
        return _verify(_Folder(path), public_keys)
    try:
        with zipfile.ZipFile(path) as z:
            return _verify(_Zip(z), public_keys)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:  # corrupt members too
        raise PackageError(f"{path} is neither a package folder nor a readable zip ({e})") from None


def _verify(src: _Source, public_keys: Iterable[Mapping[str, Any] | str]) -> VerifyResult:
    names = set(src.names())
    problems: list[Problem] = []
    if MANIFEST not in names:
        return VerifyResult(
            (Problem("missing", MANIFEST, "missing: the package cannot be checked without it"),)
        )
    mbytes = src.read(MANIFEST)
    kid = ""
    if SIGNATURE not in names:
        problems.append(Problem("missing", SIGNATURE, "missing: the manifest is not signed"))
    else:
        problems += _check_signature(src.read(SIGNATURE), mbytes, _keys(public_keys))
        kid = _kid(src.read(SIGNATURE))
    try:
        manifest = json.loads(mbytes)
        if (
            not isinstance(manifest, dict)
            or manifest.get("format") != FORMAT
            or not isinstance(manifest.get("files"), list)
        ):
            raise ValueError(f"not a {FORMAT} manifest")
        listed = {str(f["name"]): (int(f["size"]), str(f["sha256"])) for f in manifest["files"]}
    except (ValueError, KeyError, TypeError) as e:
        problems.append(Problem("manifest", MANIFEST, f"unreadable ({e})"))
        return VerifyResult(tuple(problems), kid=kid)
    for name, (size, sha) in sorted(listed.items()):
        if name not in names:
            problems.append(
                Problem("missing", name, "missing: listed in the manifest but not in the package")
            )
            continue
        # a size that differs is a change without reading a byte: a zip bomb's member says so
        got_size, got_sha = (src.size(name), "") if src.size(name) != size else src.digest(name)
        if got_size != size or got_sha != sha:
            problems.append(
                Problem(
                    "changed",
                    name,
                    f"changed: its SHA-256 is {got_sha} ({got_size} bytes), the manifest says {sha} ({size} bytes)"
                    if got_sha
                    else f"changed: {got_size} bytes, the manifest says {size} bytes",
                )
            )
    for name in sorted(names - set(listed) - OUTSIDE):
        problems.append(Problem("extra", name, "extra: in the package but not in the manifest"))
    return VerifyResult(
        tuple(problems),
        case=str(manifest.get("case", "")),
        kid=kid,
        files=len(listed),
        created=str(manifest.get("created", "")),
        instance=str(manifest.get("instance", "")),
    )


def _kid(sig_bytes: bytes) -> str:
    try:
        return str(json.loads(sig_bytes).get("kid", ""))
    except (ValueError, AttributeError):
        return ""


def _check_signature(sig_bytes: bytes, mbytes: bytes, keys: Mapping[str, bytes]) -> Iterator[Problem]:
    try:
        sig = json.loads(sig_bytes)
        if not isinstance(sig, dict) or sig.get("format") != SIG_FORMAT or sig.get("alg") != "Ed25519":
            raise ValueError(f"not a {SIG_FORMAT} Ed25519 signature")
        kid, signature = str(sig["kid"]), str(sig["signature"])
    except (ValueError, KeyError, TypeError) as e:
        yield Problem("signature", SIGNATURE, f"unreadable ({e})")
        return
    if kid not in keys:
        yield Problem(
            "key",
            SIGNATURE,
            f"signed by key {kid}, which is not among the accepted keys (unknown, or retired longer ago than the grace period)",
        )
        return
    if _signature_ok(keys[kid], mbytes, signature):
        return
    if sig.get("manifest_sha256") and sig.get("manifest_sha256") != hashlib.sha256(mbytes).hexdigest():
        yield Problem(
            "signature", MANIFEST, f"changed after signing: the signature (key {kid}) does not match it"
        )
    else:
        yield Problem(
            "signature", SIGNATURE, f"the signature is wrong: it does not match manifest.json under key {kid}"
        )
