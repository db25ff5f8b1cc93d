"""A referral's media as a VICS 2.0 Case (``vics.json``): what Griffeye and other police tools import.

Written with the bank exporter's writer (``banks.formats.vics.VicsFormat``, version 2.0,
``#Cases``), so the file has the same shape as the VICS hash sets police already load (the NSRL
VICS files: ``MediaID`` an integer, ``MD5``/``SHA1`` lower-case hex, ``Category`` an integer,
``MediaSize`` a string of digits, ``MediaFiles`` with ``FileName``/``FilePath``/``MD5``), and our
own reader reads it back. One Media per medium; SHA-256 and PDQ go in ``AlternativeHashes``.

Categories: VICS numbers mean different things under each national profile, so the mapping from
our classification schemes is data (:data:`CATEGORIES`), per profile, and the file declares its
profile in ``@odata.context``. For each medium the first scheme of the profile's list that has a
value in the item's final classification gives the number; none: ``Category`` is left out
(uncategorised). The numbering:

* ``US`` (Project VIC US): 0 non-pertinent, 1 child abuse material (CAM), 2 child exploitive
  (non-CAM) / age difficult, 3 CGI/animation, 4 comparison images. Our ``us`` scheme's A1, A2,
  B1 and B2 are all CAM (1); the ``status`` scheme's baseline and nationally_illegal are CAM (1),
  not_illegal is non-pertinent (0).
* ``UK`` (CAID): 1 category A, 2 category B, 3 category C. Our ``uk`` scheme's A/B/C map to 1/2/3;
  ``status`` gives no UK number (CAID grades by the Sentencing Council's categories only).

A hotline whose police use another profile adds it here (or passes its own mapping).
"""

from __future__ import annotations

import io
import posixpath
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit

from meldpunt.banks.formats.base import HashRecord
from meldpunt.banks.formats.vics import VicsFormat
from meldpunt.domain.labels import Labels
from meldpunt.domain.signals import SignalType
from meldpunt.referral.case import Case, CaseItem, Medium

#: profile -> [(scheme, {value: VICS category})], in order of precedence
CATEGORIES: Mapping[str, tuple[tuple[str, Mapping[str, int]], ...]] = {
    "US": (
        ("us", {"A1": 1, "A2": 1, "B1": 1, "B2": 1}),
        ("status", {"baseline": 1, "nationally_illegal": 1, "not_illegal": 0}),
    ),
    "UK": (("uk", {"A": 1, "B": 2, "C": 3}),),
}
SOURCE_APPLICATION = "meldpunt"


def category(
    item: CaseItem,
    profile: str,
    mapping: Mapping[str, tuple[tuple[str, Mapping[str, int]], ...]] = CATEGORIES,
) -> int | None:
    """The VICS category of ``item``'s media under ``profile`` (None: uncategorised)."""
    for scheme, numbers in mapping.get(profile, ()):
        value = item.classification.get(scheme)
        if value is not None and value in numbers:
            return numbers[value]
    return None


def _media_file(m: Medium) -> dict[str, str]:
    """Where the medium was found, as VICS ``MediaFiles`` say where a file was: the URL's last path
    segment and the rest (scheme and host included, so the police see the whole address)."""
    parts = urlsplit(m.url)
    path = parts.path or "/"
    name = posixpath.basename(path) or "(index)"
    folder = (
        f"{parts.scheme}://{parts.netloc}{posixpath.dirname(path)}"
        if parts.netloc
        else posixpath.dirname(m.url)
    )
    return {"MD5": m.md5, "FileName": name, "FilePath": folder}


def _records(case: Case, profile: str) -> Iterator[HashRecord]:
    for item in case.items:
        cat = category(item, profile)
        for m in item.media:
            extra: dict[str, object] = {
                "MediaID": m.id,
                "MediaSize": str(m.size),
                "IsDistributed": True,
                "Comments": f"{case.reference} item {item.item_id}: {m.url}",
            }
            if m.md5:
                extra["MediaFiles"] = [_media_file(m)]
            if m.file:
                extra["RelativeFilePath"] = m.file
            labels = Labels(
                vics_category=None if cat is None else str(cat),
                vics_profile=profile,
                vics=extra,
            )
            for st, value in (
                (SignalType.MD5, m.md5),
                (SignalType.SHA1, m.sha1),
                (SignalType.SHA256, m.sha256),
                (SignalType.PDQ, m.pdq),
            ):
                if value:
                    yield HashRecord(st, value.lower(), labels, media=m.id)


def vics_json(case: Case, *, profile: str = "US") -> bytes:
    """The case's media as a VICS 2.0 ``#Cases`` document (UTF-8 JSON)."""
    if profile not in CATEGORIES:
        raise ValueError(f"no VICS category mapping for profile {profile!r} (known: {', '.join(CATEGORIES)})")
    out = io.BytesIO()
    fmt = VicsFormat(
        "2.0",
        profile=profile,
        collection="Cases",
        case_id=case.reference,
        case_fields={
            "CaseNumber": case.reference,
            "SourceApplicationName": SOURCE_APPLICATION,
            "SourceAgency": case.instance,
            "CreatedDate": case.created.isoformat(),
        },
    )
    fmt.write(_records(case, profile), out)
    return out.getvalue()
