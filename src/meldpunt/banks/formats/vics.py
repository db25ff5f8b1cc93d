"""Project VIC VICS JSON: the hash sets police tools (Griffeye, Magnet, XAMN, ...) exchange.

What the structure is, and where that comes from. VICS is an OData JSON dump; the data model
itself is only shared under agreement (projectvic.org/vics-data-model), so this follows what open
source readers and writers of it do: IPED (``ProjectVICHashLookup.java`` and ``HashDBTool.java`` in
sepinf-inc/IPED), RECON ITR's VIC import/export (C++, ``export_hashes_as_vic``) and GLEAPP's
``projectvic.py``:

* version 1.x: top-level ``"odata.metadata": "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#Media"``
  (1.1, 1.2 and 1.3 are seen; ``#Cases`` too). No profile.
* version 2.0: top-level ``"@odata.context":
  "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Cases"``; the path
  segment after ``2.0.xml/`` is the national profile whose category numbering applies (``US``,
  ``UK`` for CAID, ``Default``, ``CUSTOM`` are seen).
* ``value`` is a list either of Cases (``{"CaseID": ..., "Media": [...], "SourceApplicationName":
  ...}``, what case exports look like) or directly of Media (``#Media``, what national hash-set
  portals distribute). Both are read; the item holding a ``Media`` list is a Case.
* a Media: ``MediaID``, ``Category`` (an int; may be null), ``MD5``, ``SHA1`` (upper-case hex as
  distributed), ``Series``, ``VictimIdentified``, ``OffenderIdentified``, ``IsDistributed``,
  ``IsPrecategorized``, ``Tags``, ``Comments``, ``MediaSize``, ``DateUpdated``, ... Flags come as
  JSON booleans or as the strings "true"/"false". ``AlternativeHashes`` is a list of
  ``{"HashName": "PhotoDNA", "HashValue": <base64, 192 chars>}`` (1.x writers also repeat SHA1
  there). ``MediaFiles`` lists the files a case found the media as (``FileName``, ``FilePath``, the
  same ``MD5``); ``Exifs`` the file's EXIF rows; ``odata.id`` and ``...@odata.navigationLinkUrl``
  are OData links.

Reading, one record per distinct hash of a Media: ``MD5`` -> md5, ``SHA1`` -> sha1, ``SHA256``
-> sha256, ``PhotoDNA`` (a top-level key, as some exports write it) and every ``AlternativeHashes``
entry whose HashName is a known signal type (PhotoDNA, SHA1, SHA256, PDQ, vPDQ) -> records too;
PhotoDNA values are kept as given (case matters in base64) and are not matchable. Labels:
``vics_category`` = Category exactly as given (as a string), ``vics_profile`` = the 2.0 profile,
or for 1.x files, which have none, the data-model version (``"1.3"``; ``"1.x"`` if the URL does not
say), ``series`` = Series, ``victim_identified`` = VictimIdentified. ``category`` and ``tags`` are
left alone (VICS Tags stay in ``vics``): what a VICS category means is a bank-policy decision;
the importer should map e.g. US/Default category 0 ("non-pertinent", benign) away from anything
that blocks, and give ``--label category=...`` itself. Every other Media field goes into
``labels.vics`` so it round-trips, except: ``MediaFiles``, ``Exifs`` and ``RelativeFilePath``
(where copies sat on a seized device, GPS and camera data: case evidence, not hash-list data, and
nothing a hotline should hold) and the OData link keys. Case-level fields are not kept. The
labels given by the caller are defaults under these. ``signal_type`` is ignored.

Errors: a bad hash or flag is a ``LineError`` whose ``line`` is the 1-based ordinal of the Media
entry in the document. A file that is not UTF-8 JSON, or not a VICS document, raises
``ListFormatError`` — for a document broken part way, after the Media before the break were
yielded (an import is one transaction: it then keeps nothing).

Large files: the document is streamed (``ijson``'s C backend, its path-free ``basic_parse``
events): one Media entry is in memory at a time, whatever the file's size (police hash sets run
to gigabytes) and its shape (a Case's Media are read one by one; its MediaFiles and Exifs, which
are not kept, are skipped without being built). OData puts the metadata property (``odata.metadata`` /
``@odata.context``, which names the version) first; a document whose ``value`` comes before it is
refused. Hostile nesting is refused as it streams: a document nested deeper than ``MAX_DEPTH``
(64) levels is a ``ListFormatError`` at that point, in constant memory (ijson's own path-keeping
parser spends memory and time quadratic in the depth: 200 KB of ``[`` took 23 GB).

Writing (``VicsFormat(version=None | "2.0" | "1.1" | "1.2" | "1.3", profile=..., collection="Media"
| "Cases")``; the registered ``vics`` has ``version=None``: 1.x if the records came from a 1.x
file (their ``vics_profile`` is a version), else 2.0; and ``#Media``, the hash-set shape): records
with the same non-zero ``HashRecord.media`` and identical labels — the hashes one Media record
held, as the reader and the bank export mark them — become one Media again (MD5 and SHA1 as
fields, other types as ``AlternativeHashes`` with HashName ``PhotoDNA``, ``SHA256``, ``PDQ``,
``vPDQ``), so a read-write-read round trip is faithful. ``MediaID`` is not what groups them:
hash sets such as NIST's NSRL give every record ``MediaID: 0``, and regrouping by it paired an MD5
with another file's SHA-1. Only records without ``media`` (bank entries imported before entries
kept their media group, records built by hand) are still regrouped by ``MediaID`` and identical
labels; records with neither each become their own Media. A 2.0 file's profile is ``profile`` if given, else the first 2.0
``vics_profile`` among the records, else ``Default``; a record that carries a vics_category under
another profile (or version) is refused (``ListFormatError``, nothing written): its category number
would be read under the wrong scheme. Records are buffered until the end (grouping needs them all),
then written one Media per line. Case-level fields are not read; for ``Cases`` the writer writes
``CaseID`` (``case_id`` or a fresh UUID) and the ``case_fields`` it is given (a police referral
package, ``meldpunt.referral.vics``, names its source application and case number there).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, BinaryIO, Literal

import ijson

from meldpunt.banks.formats.base import (
    NO_LABELS,
    HashRecord,
    LineError,
    ListFormatError,
    hex_value,
)
from meldpunt.domain.labels import LabelError, Labels, parse_bool
from meldpunt.domain.signals import InvalidSignal, SignalType, normalise_signal, signal_type_from_name

#: deepest nesting read; a VICS Case nests about 9 levels (value, Case, Media, MediaFiles, Exifs)
MAX_DEPTH = 64
V1_KEY = "odata.metadata"
V2_KEY = "@odata.context"
V1_URL = "http://github.com/ICMEC/ProjectVic/DataModels/{version}.xml#{collection}"
V2_URL = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/{profile}/$metadata#{collection}"
DEFAULT_PROFILE = "Default"

_CONTEXT = re.compile(r"DataModels/(?P<version>\d+(?:\.\d+)*)\.xml(?:/(?P<profile>[^/$#?]+))?", re.I)
_V1_VERSION = re.compile(r"^1\.\d+$")
#: Media fields that are hashes: the field name (lower-case) -> signal type.
_HASH_FIELDS = {
    "md5": SignalType.MD5,
    "sha1": SignalType.SHA1,
    "sha256": SignalType.SHA256,
    "photodna": SignalType.PHOTODNA,
}
#: Media fields that become labels (handled explicitly, not kept in ``vics``).
_LABEL_FIELDS = frozenset({"Category", "Series", "VictimIdentified"})
#: Media fields not kept: case evidence (device paths, EXIF/GPS), not hash-list data.
_DROPPED_FIELDS = frozenset({"MediaFiles", "Exifs", "RelativeFilePath"})
#: Never taken from ``labels.vics`` on writing: the labels say these.
_RESERVED = frozenset({"Category", "VictimIdentified"})
_ALT = "AlternativeHashes"
#: HashName written for each type that goes into AlternativeHashes.
_ALT_NAMES = {
    SignalType.SHA256: "SHA256",
    SignalType.PDQ: "PDQ",
    SignalType.VPDQ: "vPDQ",
    SignalType.PHOTODNA: "PhotoDNA",
}
_TOP_FIELDS = {SignalType.MD5: "MD5", SignalType.SHA1: "SHA1"}


def _is_odata(key: str) -> bool:
    return key.startswith("odata.") or "@odata." in key


def _clean(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if not _is_odata(k)}


def _profile_of(key: str, url: object) -> str | None:
    m = _CONTEXT.search(url) if isinstance(url, str) else None
    version = m["version"] if m else None
    if key == V1_KEY or (version and version.startswith("1")):
        return version or "1.x"
    return m["profile"] if m and m["profile"] else None


def _preview_json(obj: object) -> str:
    text = json.dumps(obj, ensure_ascii=False, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


class VicsFormat:
    name = "vics"
    carries_labels = True

    def __init__(
        self,
        version: str | None = None,
        *,
        profile: str | None = None,
        collection: Literal["Media", "Cases"] = "Media",
        case_id: str | None = None,
        case_fields: Mapping[str, Any] | None = None,
    ) -> None:
        if version == "1.x":
            version = "1.3"
        if version is not None and version != "2.0" and not _V1_VERSION.match(version):
            raise ValueError(f"VICS version must be 2.0 or 1.x (1.1, 1.2, 1.3), got {version!r}")
        if collection not in ("Media", "Cases"):
            raise ValueError(f"collection must be Media or Cases, got {collection!r}")
        self.version = version
        self.profile = profile
        self.collection = collection
        self.case_id = case_id
        #: Case-level fields written before its ``Media`` (a referral's ``SourceApplicationName``,
        #: ``CaseNumber`` ...); ``Cases`` only
        self.case_fields = dict(case_fields or {})

    # -- reading -------------------------------------------------------------------------------------
    def read(
        self, fp: BinaryIO, *, signal_type: SignalType | None = None, labels: Labels = NO_LABELS
    ) -> Iterator[HashRecord | LineError]:
        for ordinal, (profile, media) in enumerate(_stream(fp), 1):
            yield from _read_media(media, ordinal, profile, labels)

    # -- writing -------------------------------------------------------------------------------------
    def write(self, records: Iterable[HashRecord], fp: BinaryIO) -> int:
        builder = _MediaBuilder()
        n = 0
        for r in records:
            builder.add(r)
            n += 1
        version, profile = self._declared(builder.profiles)
        if version == "2.0":
            head = {V2_KEY: V2_URL.format(profile=profile, collection=self.collection)}
        else:
            head = {V1_KEY: V1_URL.format(version=version, collection=self.collection)}
        opening = json.dumps(head)[:-1] + ', "value": ['
        closing = "]}\n"
        if self.collection == "Cases":
            case_id = self.case_id or str(uuid.uuid4())
            fields = "".join(
                json.dumps(k) + ": " + json.dumps(v, ensure_ascii=False) + ", "
                for k, v in self.case_fields.items()
                if k not in ("CaseID", "Media")
            )
            opening += '{"CaseID": ' + json.dumps(case_id) + ", " + fields + '"Media": ['
            closing = "]}" + closing
        fp.write((opening + "\n").encode("utf-8"))
        for i, media in enumerate(builder.media()):
            sep = "" if i == 0 else ",\n"
            fp.write((sep + json.dumps(media, ensure_ascii=False)).encode("utf-8"))
        fp.write(("\n" + closing).encode("utf-8"))
        return n

    def _declared(self, profiles: dict[str, bool]) -> tuple[str, str]:
        """The version and profile the file declares (a 1.x file's "profile" is its version).

        Refuses records whose categories were given under another profile."""
        version = self.version
        first = next(iter(profiles), None)
        if version is None:  # auto: what the records came from
            version = first if first and _V1_VERSION.match(first) and not self.profile else "2.0"
        if version != "2.0":
            declared = version
        else:
            v2 = (p for p in profiles if not _V1_VERSION.match(p))
            declared = self.profile or next(v2, None) or DEFAULT_PROFILE
        clash = sorted(p for p, has_category in profiles.items() if has_category and p != declared)
        if clash:
            raise ListFormatError(
                f"records carry VICS categories under profile(s) {', '.join(clash)} but the file "
                f"declares {declared!r}: their category numbers would be misread; export each "
                "profile separately"
            )
        return version, declared


class _NoBOM:
    """A binary stream without its UTF-8 byte-order mark, if it had one."""

    def __init__(self, fp: BinaryIO) -> None:
        self._fp = fp
        self._head: bytes | None = None

    def read(self, n: int = -1) -> bytes:
        if n == 0:  # ijson probes with read(0) whether the stream gives bytes
            return b""
        if self._head is None:
            head = self._fp.read(3)
            if head.startswith((b"\xff\xfe", b"\xfe\xff")):
                raise UnicodeDecodeError("utf-8", head, 0, 1, "a UTF-16 byte-order mark")
            self._head = b"" if head == b"\xef\xbb\xbf" else head
            rest = self._fp.read(n - len(self._head) if n > len(self._head) else (-1 if n < 0 else 0))
            out, self._head = self._head + rest, b""
            return out
        return self._fp.read(n)


def _stream(fp: BinaryIO) -> Iterator[tuple[str | None, Any]]:
    """(profile, Media) for each Media of the document, one at a time: the items of its ``value``
    list, or for a Case (an item with a ``Media`` list) each of its Media in turn."""
    events = ijson.basic_parse(_NoBOM(fp), use_float=True)
    profile: str | None = None
    meta_key: str | None = None
    saw_value = False
    key: str | None = None  # the top-level key whose value comes next
    try:
        first = next(events, None)
        if first is None or first[0] != "start_map":
            raise ListFormatError(f"not a VICS document: no {V1_KEY!r} or {V2_KEY!r} at the top")
        for event, value in events:
            if event == "map_key":
                key = str(value)
                if key in (V1_KEY, V2_KEY):
                    meta_key = key
                elif key == "value":
                    if meta_key is None:
                        raise ListFormatError(
                            f"not a VICS document: no {V1_KEY!r} or {V2_KEY!r} before its 'value'"
                        )
                    saw_value = True
                continue
            if event == "end_map":  # the end of the document
                break
            if key == "value":
                if event != "start_array":
                    raise ListFormatError("not a VICS document: no 'value' list")
                for item_event, item_value in events:
                    if item_event == "end_array":
                        break
                    if item_event == "start_map":
                        for media in _case_or_media(events):
                            yield profile, media
                    else:  # not an object: the reader says so
                        yield profile, _build(item_event, item_value, events, 2)
            elif event in ("start_map", "start_array"):
                _skip(events, 1)
            elif key is not None and key == meta_key:
                profile = _profile_of(meta_key, value)
    except ijson.IncompleteJSONError as e:
        raise ListFormatError(f"not a VICS file: not JSON ({_short(e)})") from None
    except ijson.JSONError as e:
        if "utf8" in str(e).lower() or "utf-8" in str(e).lower():
            raise ListFormatError(f"not a VICS file: not UTF-8 ({_short(e)})") from None
        raise ListFormatError(f"not a VICS file: not JSON ({_short(e)})") from None
    except UnicodeDecodeError as e:
        raise ListFormatError(f"not a VICS file: not UTF-8 (byte {e.start})") from None
    if meta_key is None:
        raise ListFormatError(f"not a VICS document: no {V1_KEY!r} or {V2_KEY!r} at the top")
    if not saw_value:
        raise ListFormatError("not a VICS document: no 'value' list")


def _case_or_media(events: Iterator[tuple[str, Any]]) -> Iterator[dict[str, Any]]:
    """The Media of an item of ``value`` whose ``start_map`` was just read: a Case's ``Media``
    one at a time (never the whole Case in memory; its own fields are not kept), or the item
    itself when it is a Media. Fields not kept (``MediaFiles``, ``Exifs``) are skipped unbuilt."""
    fields: dict[str, Any] = {}
    is_case = False
    key = ""
    for ev, val in events:
        if ev == "end_map":
            if not is_case:
                yield fields
            return
        if ev == "map_key":
            key = str(val)
        elif key == "Media" and ev == "start_array":
            is_case = True
            for media_ev, media_val in events:
                if media_ev == "end_array":
                    break
                if media_ev == "start_map":
                    yield _media_object(events)
                else:
                    yield _build(media_ev, media_val, events, 4)
        elif key in _DROPPED_FIELDS and ev in ("start_map", "start_array"):
            _skip(events, 3)
        else:
            fields[key] = _build(ev, val, events, 3)
    raise ijson.IncompleteJSONError("the document ends inside a Media entry")


def _media_object(events: Iterator[tuple[str, Any]]) -> dict[str, Any]:
    """A Media of a Case (at depth 5) whose ``start_map`` was just read, its dropped fields
    skipped unbuilt."""
    fields: dict[str, Any] = {}
    key = ""
    for ev, val in events:
        if ev == "end_map":
            return fields
        if ev == "map_key":
            key = str(val)
        elif key in _DROPPED_FIELDS and ev in ("start_map", "start_array"):
            _skip(events, 5)
        else:
            fields[key] = _build(ev, val, events, 5)
    raise ijson.IncompleteJSONError("the document ends inside a Media entry")


def _too_deep() -> ListFormatError:
    return ListFormatError(f"not a VICS document: nested deeper than {MAX_DEPTH} levels")


def _skip(events: Iterator[tuple[str, Any]], outer: int) -> None:
    """Consume the rest of a container opened at depth ``outer + 1`` (kept nowhere)."""
    depth = 1
    for ev, _ in events:
        if ev in ("start_map", "start_array"):
            depth += 1
            if outer + depth > MAX_DEPTH:
                raise _too_deep()
        elif ev in ("end_map", "end_array"):
            depth -= 1
            if depth == 0:
                return
    raise ijson.IncompleteJSONError("the document ends inside a value")


def _build(event: str, value: Any, events: Iterator[tuple[str, Any]], outer: int) -> Any:
    """The whole JSON value that starts with ``event`` (its later events taken from ``events``),
    found at depth ``outer``: refused as soon as it nests deeper than ``MAX_DEPTH`` in all."""
    if event not in ("start_map", "start_array"):
        return value
    builder = ijson.ObjectBuilder()
    builder.event(event, value)
    depth = 1
    for ev, val in events:
        if ev in ("start_map", "start_array"):
            depth += 1
            if outer + depth > MAX_DEPTH:
                raise _too_deep()
        builder.event(ev, val)
        if ev in ("end_map", "end_array"):
            depth -= 1
            if depth == 0:
                return builder.value
    raise ijson.IncompleteJSONError("the document ends inside a Media entry")


def _short(e: Exception) -> str:
    text = str(e).strip() or type(e).__name__
    return text[:200]


def _read_media(
    media: object, ordinal: int, profile: str | None, defaults: Labels
) -> Iterator[HashRecord | LineError]:
    if not isinstance(media, dict):
        yield LineError(ordinal, "a Media entry is not a JSON object", _preview_json(media))
        return
    hashes: list[tuple[SignalType, object]] = []
    vics: dict[str, Any] = {}
    for k, v in media.items():
        st = _HASH_FIELDS.get(k.lower())
        if st is not None:
            if v not in (None, ""):
                hashes.append((st, v))
        elif k == _ALT and isinstance(v, list):
            kept = []
            for entry in v:
                alt = _alt_hash(entry)
                if alt is None:
                    kept.append(_clean(entry) if isinstance(entry, dict) else entry)
                else:
                    hashes.append(alt)
            if kept:
                vics[k] = kept
        elif k not in _LABEL_FIELDS and k not in _DROPPED_FIELDS and not _is_odata(k):
            vics[k] = v
    try:
        labels = defaults.merged(_media_labels(media, profile, vics))
    except LabelError as e:
        yield LineError(ordinal, f"Media {_media_name(media)}: {e}", _preview_json(media))
        return
    seen: set[tuple[SignalType, str]] = set()
    for st, raw in hashes:
        try:
            if not isinstance(raw, str):
                raise InvalidSignal(f"{st.value} is not a string: {raw!r}")
            value = normalise_signal(st, raw)
        except InvalidSignal as e:
            yield LineError(ordinal, f"Media {_media_name(media)}: {e}", _preview_json(media))
            continue
        if (st, value) not in seen:
            seen.add((st, value))
            yield HashRecord(st, value, labels, ordinal, ordinal)
    if not hashes:
        yield LineError(ordinal, f"Media {_media_name(media)} has no hash", _preview_json(media))


def _alt_hash(entry: object) -> tuple[SignalType, object] | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("HashName"), str):
        return None
    try:
        return signal_type_from_name(entry["HashName"]), entry.get("HashValue")
    except InvalidSignal:
        return None


def _media_labels(media: dict[str, Any], profile: str | None, vics: dict[str, Any]) -> Labels:
    category = media.get("Category")
    series = media.get("Series")
    if isinstance(series, dict | list):  # not a name: keep it as it is
        vics["Series"] = series
        series = None
    victim = media.get("VictimIdentified")
    return Labels(
        vics_category=None if category in (None, "") else str(category),
        vics_profile=profile,
        series=None if series in (None, "") else str(series),
        victim_identified=None if victim in (None, "") else parse_bool(victim),
        vics=vics,
    )


def _media_name(media: dict[str, Any]) -> str:
    mid = media.get("MediaID")
    return "(no MediaID)" if mid is None else f"{mid}"


class _MediaBuilder:
    """Collects records into Media dicts: those of one source Media (same ``media``) and identical
    labels together again. Records without ``media`` (entries imported before banks kept media
    groups, records built by hand) fall back to regrouping by MediaID and identical labels."""

    def __init__(self) -> None:
        self._media: list[dict[str, Any]] = []
        self._groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        #: profile -> whether some record under it carries a vics_category
        self.profiles: dict[str, bool] = {}

    def add(self, r: HashRecord) -> None:
        lb = r.labels
        if lb.vics_profile is not None:
            self.profiles[lb.vics_profile] = self.profiles.get(lb.vics_profile, False) or (
                lb.vics_category is not None
            )
        top = _TOP_FIELDS.get(r.signal_type)
        value = hex_value(r.signal_type, r.value)
        media = None
        group: list[dict[str, Any]] | None = None
        key = None
        if r.media:
            key = (f"m{r.media}", lb.to_json())
        elif "MediaID" in lb.vics:
            key = ("id" + json.dumps(lb.vics["MediaID"], sort_keys=True), lb.to_json())
        if key is not None:
            group = self._groups.setdefault(key, [])
            media = next((m for m in group if top is None or top not in m), None)
        if media is None:
            media = _new_media(lb)
            self._media.append(media)
            if group is not None:
                group.append(media)
        if top is not None:
            media[top] = value
        else:
            media.setdefault(_ALT, []).append({"HashName": _ALT_NAMES[r.signal_type], "HashValue": value})

    def media(self) -> Iterator[dict[str, Any]]:
        return iter(self._media)


def _new_media(lb: Labels) -> dict[str, Any]:
    media: dict[str, Any] = {}
    if "MediaID" in lb.vics:
        media["MediaID"] = lb.vics["MediaID"]
    if lb.vics_category is not None:
        media["Category"] = _category(lb.vics_category)
    if lb.series is not None:
        media["Series"] = lb.series
    if lb.victim_identified is not None:
        media["VictimIdentified"] = lb.victim_identified
    for k, v in lb.vics.items():
        if k == _ALT and isinstance(v, list):
            media[_ALT] = [dict(e) if isinstance(e, dict) else e for e in v]  # hashes get appended
        elif k not in media and k not in _RESERVED and k.lower() not in _HASH_FIELDS:
            media[k] = v
    return media


def _category(c: str) -> int | str:
    """VICS categories are ints; written as one where the string is exactly one ("01" is not)."""
    try:
        return int(c) if str(int(c)) == c else c
    except ValueError:
        return c
