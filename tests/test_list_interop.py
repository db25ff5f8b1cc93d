"""Lists other tools write import as they are written, and VICS round trips keep files whole.

Each file here is written the way its tool writes it (python-threatexchange's ``dataset`` command
and vpdq signal, HMA's type names, X-Ways' hash sets, INTERPOL ICSE-style ``;`` CSV), from their
published source; the VICS files are NIST's NSRL (``tests/fixtures/vics-nsrl``, every record
``MediaID: 0``). All hashes are synthetic or of benign files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from pathlib import Path

import pytest

from meldpunt.banks.formats import HashRecord, LineError, SkippedSignal, detect_format, get_format
from meldpunt.domain import Labels, SignalType
from meldpunt.domain.signals import parse_vpdq
from meldpunt.store.banks import BankRepository
from meldpunt.store.db import create_db_engine

T = SignalType
NSRL = Path(__file__).parent / "fixtures" / "vics-nsrl"


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def sha256(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def read(fmt: str, data: bytes, **kw: object) -> list[HashRecord | LineError | SkippedSignal]:
    return list(get_format(fmt).read(io.BytesIO(data), **kw))  # type: ignore[arg-type]


def hashes(items: list[HashRecord | LineError | SkippedSignal]) -> list[HashRecord]:
    return [r for r in items if isinstance(r, HashRecord)]


# -- python-threatexchange ``dataset`` ---------------------------------------------------------------
# ``_print_stdout`` there: "<type> <signal>" then, without -S, " <repr(collab)> <metadata>", where
# metadata prints "<CATEGORY>" or "<CATEGORY> <tag>,<tag>".


def te_dataset_line(kind: str | None, signal: str, collab: str | None, opinion: str | None) -> str:
    parts = ([kind] if kind else []) + [signal]
    if collab is not None:
        parts.append(repr(collab))
    if opinion is not None:
        parts.append(opinion)
    return " ".join(parts)


def test_threatexchange_dataset_lines_end_in_collaboration_and_tags() -> None:
    lines = [
        te_dataset_line("pdq", sha256("a"), "Sample Data", "POSITIVE_CLASS media_type_photo,csam"),
        te_dataset_line("video_md5", md5("b"), "Bob's Collab", "INVESTIGATION_SEED"),
        te_dataset_line("video_sha256", sha256("c"), "Sample Data", "NEGATIVE_CLASS"),
    ]
    data = ("\n".join(lines) + "\n").encode()
    assert detect_format(data, "dataset.txt") == "te"
    got = hashes(read("te", data))
    assert [(r.signal_type, r.value) for r in got] == [
        (T.PDQ, sha256("a")),
        (T.MD5, md5("b")),
        (T.SHA256, sha256("c")),
    ]
    assert got[0].labels == Labels(
        source="Sample Data", tags=("media_type_photo", "csam", "te:positive_class")
    )
    assert got[1].labels == Labels(source="Bob's Collab", tags=("te:investigation_seed",))
    assert got[2].labels.tags == ("te:negative_class",)


def test_threatexchange_dataset_for_one_type_and_one_collab_is_a_plain_list_with_opinions() -> None:
    # -s pdq -c 'Sample Data': neither the type nor the collaboration is printed
    data = (te_dataset_line(None, sha256("a"), None, "POSITIVE_CLASS tagged") + "\n").encode()
    assert detect_format(data, "out.txt") == "plain"
    (rec,) = read("plain", data, signal_type=T.PDQ)
    assert isinstance(rec, HashRecord)
    assert (rec.signal_type, rec.value, rec.labels.tags) == (
        T.PDQ,
        sha256("a"),
        ("tagged", "te:positive_class"),
    )


def test_threatexchange_signals_only_skips_types_we_do_not_match_and_counts_them() -> None:
    # -S: "<type> <signal>", and the first line may well be a type meldpunt does not match
    lines = [
        "url https://example.invalid/page",
        "raw_text some words here",
        "pdq " + sha256("p"),
        'trend_query {"and": ["x"]}',
        "url https://example.invalid/other",
        "video_md5 " + md5("v"),
    ]
    data = ("\n".join(lines) + "\n").encode()
    assert detect_format(data, "signals.txt") == "te"  # not decided by line one
    got = read("te", data)
    assert [type(r).__name__ for r in got] == [
        "SkippedSignal",
        "SkippedSignal",
        "HashRecord",
        "SkippedSignal",
        "SkippedSignal",
        "HashRecord",
    ]
    assert Counter(r.type_name for r in got if isinstance(r, SkippedSignal)) == {
        "url": 2,
        "raw_text": 1,
        "trend_query": 1,
    }


def test_the_import_reports_skipped_types_by_count(sqlite_db: str) -> None:
    repo = BankRepository(create_db_engine(sqlite_db))
    data = (
        b"url https://example.invalid/a\nurl https://example.invalid/b\npdq " + sha256("p").encode() + b"\n"
    )
    result = repo.import_records(
        "te", read("te", data), source_name="s.txt", source_sha256="", fmt="te", policy="hint"
    )
    assert (result.entries, result.skipped, result.unsupported) == (1, 0, {"url": 2})


def test_threatexchange_dataset_csv() -> None:
    # ``--csv``: csv.DictWriter with fields signal_type, signal_str, collab, category, tags;
    # tags joined with spaces, category the aggregate opinion's name
    out = io.StringIO()
    w = csv.DictWriter(out, ["signal_type", "signal_str", "collab", "category", "tags"])
    w.writeheader()
    w.writerow(
        {
            "signal_type": "url",
            "signal_str": "https://example.invalid/",
            "collab": "C",
            "category": "POSITIVE_CLASS",
            "tags": "",
        }
    )
    w.writerow(
        {
            "signal_type": "pdq",
            "signal_str": sha256("x"),
            "collab": "Sample Data",
            "category": "POSITIVE_CLASS",
            "tags": "photo csam",
        }
    )
    w.writerow(
        {
            "signal_type": "video_md5",
            "signal_str": md5("y"),
            "collab": "Sample Data",
            "category": "DISPUTED",
            "tags": "",
        }
    )
    data = out.getvalue().encode()
    assert detect_format(data, "collab.txt") == "csv"
    got = read("csv", data)
    assert isinstance(got[0], SkippedSignal) and got[0].type_name == "url"
    pdq, vmd5 = hashes(got)
    assert (pdq.signal_type, pdq.value) == (T.PDQ, sha256("x"))
    assert pdq.labels.source == "Sample Data"
    assert set(pdq.labels.tags) == {"photo", "csam", "te:positive_class"}
    assert pdq.labels.category is None  # an opinion is not our category
    assert (vmd5.signal_type, vmd5.labels.tags) == (T.MD5, ("te:disputed",))


# -- forensic tools ----------------------------------------------------------------------------------


def test_icse_style_csv_with_semicolons() -> None:
    data = (
        "MD5;SHA1;Category;Series\r\n"
        f"{md5('1').upper()};{hashlib.sha1(b'1').hexdigest().upper()};1;S-1\r\n"
        f"{md5('2').upper()};;2;\r\n"
    ).encode()
    assert detect_format(data, "icse_export.txt") == "csv"
    got = read("csv", data)
    assert [(r.signal_type, r.value) for r in hashes(got)] == [
        (T.MD5, md5("1")),
        (T.SHA1, hashlib.sha1(b"1").hexdigest()),
        (T.MD5, md5("2")),
    ]
    assert all(isinstance(r, HashRecord) for r in got)
    assert hashes(got)[0].labels == Labels(category="1", series="S-1")
    assert hashes(got)[0].media == hashes(got)[1].media != hashes(got)[2].media  # one row, one file


def test_a_lone_type_header_line_as_x_ways_writes_it() -> None:
    data = ("MD5\r\n" + md5("1").upper() + "\r\n" + md5("2") + "\r\n").encode()
    assert detect_format(data, "hashset.txt") == "plain"
    got = read("plain", data)
    assert [(type(r).__name__, getattr(r, "value", None)) for r in got] == [
        ("HashRecord", md5("1")),
        ("HashRecord", md5("2")),
    ]
    # a PDQ header says what 64 hex digits are
    (rec,) = read("plain", ("PDQ\n" + sha256("p") + "\n").encode())
    assert isinstance(rec, HashRecord) and rec.signal_type is T.PDQ
    # only the first line can be a header
    assert isinstance(read("plain", (md5("1") + "\nMD5\n").encode())[1], LineError)


# -- vPDQ as python-threatexchange's vpdq signal writes and reads it ---------------------------------
# ``VpdqCompactFeature.__str__`` is "<hex>,<quality>,<timestamp:.3>" and ``vpdq_to_json`` a
# json.dumps of the list of those strings; ``from_str`` splits on "," into exactly three parts.


def te_vpdq(frames: list[tuple[str, int, float]]) -> str:
    return json.dumps([f"{h},{q},{t:.3}" for h, q, t in frames])


def te_reads_vpdq(value: str) -> list[tuple[str, int, float]]:
    out = []
    for s in json.loads(value):
        h, q, t = s.split(",")
        assert len(h) == 64 and int(h, 16) >= 0 and 0 <= int(q) <= 100
        out.append((h, int(q), float(t)))
    return out


def test_vpdq_in_threatexchange_serialisation_both_ways() -> None:
    frames = [(sha256(f"f{i}"), 100 - i, i * 0.5) for i in range(4)]
    theirs = te_vpdq(frames)
    (rec,) = read("te", f"vpdq {theirs}\n".encode())
    assert isinstance(rec, HashRecord) and rec.signal_type is T.VPDQ
    assert [(f.pdq, f.quality, f.timestamp) for f in parse_vpdq(rec.value)] == frames
    (same,) = read("te", f"video_vpdq {theirs}\n".encode())  # HMA's name for it
    assert isinstance(same, HashRecord) and same.value == rec.value
    # what we write, their reader takes
    for fmt in ("te", "plain"):
        out = io.BytesIO()
        get_format(fmt).write([rec], out)
        line = out.getvalue().decode().strip()
        value = line.split(" ", 1)[1] if fmt == "te" else line
        assert te_reads_vpdq(value) == frames
        again = hashes(read(fmt, out.getvalue(), signal_type=None if fmt == "te" else T.VPDQ))
        assert [r.value for r in again] == [rec.value]


def test_a_threatexchange_vpdq_dataset_line_with_an_opinion() -> None:
    theirs = te_vpdq([(sha256("a"), 90, 0.0), (sha256("b"), 80, 1.0)])
    line = te_dataset_line("vpdq", theirs, "Sample Data", "POSITIVE_CLASS")
    (rec,) = read("te", (line + "\n").encode())
    assert isinstance(rec, HashRecord) and rec.signal_type is T.VPDQ
    assert rec.labels.source == "Sample Data" and len(parse_vpdq(rec.value)) == 2


# -- VICS round trips keep files whole ---------------------------------------------------------------


def _per_media(path_or_bytes: Path | bytes) -> Counter[tuple[str | None, str | None, object]]:
    """(md5, sha1, category) of every Media of a VICS document, as a multiset."""
    data = path_or_bytes.read_bytes() if isinstance(path_or_bytes, Path) else path_or_bytes
    doc = json.loads(data.decode("utf-8-sig"))
    out: Counter[tuple[str | None, str | None, object]] = Counter()
    for media in doc["value"]:
        md5_ = media.get("MD5")
        sha1_ = media.get("SHA1")
        out[(md5_ and md5_.lower(), sha1_ and sha1_.lower(), media.get("Category"))] += 1
    return out


def _export(repo: BankRepository, bank: str) -> bytes:
    out = io.BytesIO()
    records = (HashRecord(st, v, lab, 0, media) for st, v, lab, media in repo.export_groups(bank))
    get_format("vics").write(records, out)
    return out.getvalue()


@pytest.mark.slow
def test_vics_round_trip_keeps_each_media_whole_on_nsrl_files(db_url: str) -> None:
    repo = BankRepository(create_db_engine(db_url))
    files = sorted(NSRL.glob("*.json"))
    assert len(files) >= 10
    for n, path in enumerate(files):
        want = _per_media(path)
        with path.open("rb") as fp:
            repo.import_records(
                f"nsrl-{n}",
                get_format("vics").read(fp),
                source_name=path.name,
                source_sha256="",
                fmt="vics",
                policy="ignore",
            )
        first = _export(repo, f"nsrl-{n}")
        assert _per_media(first) == want, path.name
        repo.import_records(
            f"again-{n}",
            get_format("vics").read(io.BytesIO(first)),
            source_name="x.json",
            source_sha256="",
            fmt="vics",
            policy="ignore",
        )
        assert _per_media(_export(repo, f"again-{n}")) == want, path.name


def test_a_later_import_moves_a_hash_to_its_new_media(sqlite_db: str) -> None:
    """Media A {md5 X, sha1 Y}; a later list has Media B {md5 X, sha1 Z}: X belongs with Z now."""
    repo = BankRepository(create_db_engine(sqlite_db))

    def doc(md5_: str, sha1_: str) -> bytes:
        return json.dumps(
            {
                "odata.metadata": "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#Media",
                "value": [{"MediaID": 0, "MD5": md5_, "SHA1": sha1_, "Category": 8}],
            }
        ).encode()

    x, y, z = md5("x"), hashlib.sha1(b"y").hexdigest(), hashlib.sha1(b"z").hexdigest()
    for data in (doc(x, y), doc(x, z)):
        repo.import_records(
            "b", read("vics", data), source_name="v.json", source_sha256="", fmt="vics", policy="ignore"
        )
    assert _per_media(_export(repo, "b")) == Counter({(None, y, 8): 1, (x, z, 8): 1})
