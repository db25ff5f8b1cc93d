"""meldpunt.banks.formats: every list format in and out, on synthetic hashes with made-up labels.

One contract test runs over every registered format (what is written reads back, modulo what the
format cannot carry); the rest pins each format's rules: malformed lines reported with their line
numbers and never stopping the stream, comments, BOM, CRLF, case, the VICS fixtures, detection.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meldpunt.banks.formats import (
    FORMATS,
    NO_LABELS,
    CsvFormat,
    HashRecord,
    LineError,
    ListFormat,
    ListFormatError,
    SkippedSignal,
    VicsFormat,
    detect_format,
    get_format,
    register_format,
)
from meldpunt.domain.labels import Labels
from meldpunt.domain.signals import SignalType, normalise_signal

FIXTURES = Path(__file__).parent / "fixtures" / "lists"
T = SignalType


# -- helpers ------------------------------------------------------------------------------------------


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def sha1(s: str) -> str:
    return hashlib.sha1(s.encode()).hexdigest()


def sha256(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def pdna(s: str) -> str:
    return base64.b64encode(hashlib.shake_256(s.encode()).digest(144)).decode()


def vpdq(*seeds: str) -> str:
    frames = [{"hash": sha256(s), "quality": 90, "timestamp": float(i)} for i, s in enumerate(seeds)]
    return normalise_signal(T.VPDQ, json.dumps(frames))


def read(fmt: str | ListFormat, data: bytes, **kw: Any) -> list[HashRecord | LineError | SkippedSignal]:
    f = get_format(fmt) if isinstance(fmt, str) else fmt
    return list(f.read(io.BytesIO(data), **kw))


def read_file(fmt: str | ListFormat, name: str, **kw: Any) -> list[HashRecord | LineError | SkippedSignal]:
    return read(fmt, (FIXTURES / name).read_bytes(), **kw)


def records(items: Iterable[HashRecord | LineError | SkippedSignal]) -> list[HashRecord]:
    return [r for r in items if isinstance(r, HashRecord)]


def errors(items: Iterable[HashRecord | LineError | SkippedSignal]) -> list[LineError]:
    return [r for r in items if isinstance(r, LineError)]


def write(fmt: str | ListFormat, recs: Iterable[HashRecord]) -> tuple[int, bytes]:
    f = get_format(fmt) if isinstance(fmt, str) else fmt
    out = io.BytesIO()
    n = f.write(recs, out)
    return n, out.getvalue()


def key(r: HashRecord) -> tuple[str, str, str]:
    return (r.signal_type.value, r.value, r.labels.to_json())


def same(a: Iterable[HashRecord], b: Iterable[HashRecord]) -> None:
    """Equal as multisets of (type, value, labels): line numbers and order are the format's own."""
    assert sorted(map(key, a)) == sorted(map(key, b))


# -- what each format can carry -------------------------------------------------------------------------


def _no_labels(r: HashRecord) -> HashRecord:
    return replace(r, labels=NO_LABELS)


def _plain(r: HashRecord) -> HashRecord | None:
    # plain loses the type: 64 hex reads back as SHA-256, PhotoDNA needs --type (documented)
    if r.signal_type is T.PHOTODNA:
        return None
    return HashRecord(T.SHA256 if r.signal_type is T.PDQ else r.signal_type, r.value, NO_LABELS)


def _vics(profile: str) -> Callable[[HashRecord], HashRecord]:
    def carried(r: HashRecord) -> HashRecord:
        lb = r.labels
        return replace(
            r,
            labels=Labels(
                series=lb.series,
                victim_identified=lb.victim_identified,
                vics_category=lb.vics_category,
                vics_profile=lb.vics_profile or profile,
                vics=lb.vics,
            ),
        )

    return carried


#: What reading back a written record gives, per format; None: not carried (a LineError instead).
CARRIED: dict[str, Callable[[HashRecord], HashRecord | None]] = {
    "plain": _plain,
    "te": _no_labels,
    "csv": lambda r: r,
    "vics": _vics("US"),
}

LABELS_FULL = Labels(
    category="test-a",
    baseline=True,
    series="Synthetic series A",
    victim_identified=False,
    source="fixture",
    tags=("alpha", "beta"),
    vics_category="1",
    vics_profile="US",
    vics={"MediaID": 7, "IsDistributed": True, "Comments": "synthetic, with a comma"},
)
CONTRACT_RECORDS = [
    HashRecord(T.MD5, md5("c1"), LABELS_FULL),
    HashRecord(T.SHA1, sha1("c1"), LABELS_FULL),  # same MediaID and labels: one VICS Media
    HashRecord(T.PHOTODNA, pdna("c1"), LABELS_FULL),
    HashRecord(T.MD5, md5("c2"), Labels(category="test-b", tags=("gamma",))),
    HashRecord(T.SHA256, sha256("c3"), NO_LABELS),
    HashRecord(T.PDQ, sha256("c4"), Labels(baseline=False, vics_category="0", vics_profile="US")),
    HashRecord(T.VPDQ, vpdq("c5a", "c5b"), Labels(series="Synthetic series B")),
    HashRecord(T.PHOTODNA, pdna("c6"), Labels(victim_identified=True)),
]


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_contract_write_then_read_gives_back_what_the_format_carries(name: str) -> None:
    fmt = get_format(name)
    carried = CARRIED.get(name, lambda r: r)  # a third-party format must be lossless
    n, data = write(fmt, CONTRACT_RECORDS)
    assert n == len(CONTRACT_RECORDS)
    got = read(fmt, data)
    expected = [c for c in map(carried, CONTRACT_RECORDS) if c is not None]
    assert len(errors(got)) == len(CONTRACT_RECORDS) - len(expected)
    same(records(got), expected)
    assert all(r.line >= 1 for r in got)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_contract_labels_given_are_defaults_and_the_files_own_win(name: str) -> None:
    fmt = get_format(name)
    given = Labels(category="given", source="cli", tags=("from-cli",))
    _, data = write(fmt, CONTRACT_RECORDS[:4])
    for r in records(read(fmt, data, labels=given)):
        assert r.labels.source == "cli" or (fmt.carries_labels and r.labels.source == "fixture")
        assert "from-cli" in r.labels.tags
        if not fmt.carries_labels:
            assert r.labels is given  # one shared object, not a copy per line
        elif name == "csv" and r.value in (md5("c1"), md5("c2")):
            assert r.labels.category != "given"


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_contract_empty_input(name: str) -> None:
    fmt = get_format(name)
    n, data = write(fmt, [])
    assert n == 0
    assert read(fmt, data) == []


def test_carries_labels_flags() -> None:
    assert {n: f.carries_labels for n, f in FORMATS.items()} == {
        "plain": False,
        "te": False,
        "csv": True,
        "vics": True,
    }


# -- registry ------------------------------------------------------------------------------------------


def test_get_format_is_case_insensitive_and_names_the_known_ones() -> None:
    assert get_format(" CSV ") is FORMATS["csv"]
    with pytest.raises(ValueError, match=r"unknown list format 'xml'.*csv, plain, te, vics"):
        get_format("xml")


class _Upper:
    """A third-party format: plain, but upper-case (to see registration work)."""

    name = "upper"
    carries_labels = False

    def read(
        self, fp: BinaryIO, *, signal_type: SignalType | None = None, labels: Labels = NO_LABELS
    ) -> Iterator[HashRecord | LineError | SkippedSignal]:
        return get_format("plain").read(fp, signal_type=signal_type, labels=labels)

    def write(self, records: Iterable[HashRecord], fp: BinaryIO) -> int:
        n = 0
        for r in records:
            fp.write(r.value.upper().encode() + b"\n")
            n += 1
        return n


def test_register_format_like_a_third_party() -> None:
    try:
        register_format(_Upper())
        assert get_format("UPPER").name == "upper"
        with pytest.raises(ValueError, match="already registered"):
            register_format(_Upper())
        register_format(_Upper(), replace=True)
    finally:
        FORMATS.pop("upper", None)
    with pytest.raises(TypeError):
        register_format(object())  # type: ignore[arg-type]


# -- plain ---------------------------------------------------------------------------------------------


def test_plain_fixture() -> None:
    got = read_file("plain", "plain.txt")
    assert got == [
        HashRecord(T.MD5, md5("meldpunt fixture 1"), NO_LABELS, 2),
        HashRecord(T.SHA1, sha1("meldpunt fixture 2"), NO_LABELS, 4),
        HashRecord(T.SHA256, sha256("meldpunt fixture 3"), NO_LABELS, 5),
    ]


def test_plain_malformed_lines_are_reported_with_their_numbers_and_the_rest_read() -> None:
    data = b"\n".join(
        [
            md5("a").encode(),  # 1
            b"xyz" + md5("b")[3:].encode(),  # 2 bad hex (right length)
            md5("c")[:31].encode(),  # 3 wrong length
            b"\xff\xfe" + md5("d")[2:].encode(),  # 4 invalid UTF-8
            b"# comment",  # 5
            sha1("e").encode(),  # 6
        ]
    )
    got = read("plain", data)
    assert [(type(r).__name__, r.line) for r in got] == [
        ("HashRecord", 1),
        ("LineError", 2),
        ("LineError", 3),
        ("LineError", 4),
        ("HashRecord", 6),
    ]
    errs = errors(got)
    assert "md5 must be 32 hex digits" in errs[0].message
    assert "cannot tell the signal type of a 31-character value" in errs[1].message
    assert errs[2].message == "line is not valid UTF-8"
    assert errs[0].text.startswith("xyz")


def test_plain_crlf_bom_case_and_whitespace() -> None:
    data = b"\xef\xbb\xbf" + md5("a").upper().encode() + b"\r\n\r\n  \t" + sha1("b").encode() + b" \r\n"
    assert [(r.signal_type, r.value, r.line) for r in records(read("plain", data))] == [
        (T.MD5, md5("a"), 1),
        (T.SHA1, sha1("b"), 3),
    ]


def test_plain_64_hex_is_sha256_unless_told_pdq() -> None:
    data = sha256("x").encode() + b"\n"
    assert records(read("plain", data))[0].signal_type is T.SHA256
    assert records(read("plain", data, signal_type=T.PDQ))[0].signal_type is T.PDQ


def test_plain_forced_type_refuses_other_lengths() -> None:
    got = read("plain", (md5("a") + "\n" + sha1("b") + "\n").encode(), signal_type=T.SHA1)
    assert isinstance(got[0], LineError) and got[0].line == 1
    assert got[1] == HashRecord(T.SHA1, sha1("b"), NO_LABELS, 2)


def test_plain_vpdq_and_photodna() -> None:
    v = vpdq("f0", "f1")
    assert records(read("plain", v.encode()))[0] == HashRecord(T.VPDQ, v, NO_LABELS, 1)
    p = pdna("p")
    assert records(read("plain", p.encode(), signal_type=T.PHOTODNA))[0].value == p  # case kept


def test_plain_error_text_is_truncated() -> None:
    (err,) = read("plain", b"z" * 500)
    assert isinstance(err, LineError) and len(err.text) <= 120


def test_plain_write_lower_cases_hex() -> None:
    n, data = write("plain", [HashRecord(T.MD5, md5("a").upper(), NO_LABELS)])
    assert (n, data) == (1, (md5("a") + "\n").encode())


# -- te ------------------------------------------------------------------------------------------------


def test_te_fixture_accepts_aliases_and_any_case() -> None:
    got = read_file("te", "signals.te")
    assert errors(got) == []
    assert [(r.signal_type, r.line) for r in records(got)] == [
        (T.PDQ, 2),
        (T.MD5, 3),
        (T.PDQ, 4),
        (T.SHA1, 5),
        (T.VPDQ, 6),
        (T.PHOTODNA, 7),
    ]
    assert records(got)[2].value == sha256("meldpunt fixture pdq 2")  # upper-case in, lower out


def test_te_malformed_lines() -> None:
    data = (
        "\n".join(
            [
                f"pdq {sha256('a')}",  # 1
                f"tmk {sha256('b')}",  # 2 unknown type
                "md5",  # 3 no hash
                f"md5 {md5('c')} trailing words",  # 4 text after the hash
                f"md5 {md5('d')[:-1]}g",  # 5 bad hex
                "",  # 6
                "# a comment",  # 7
                f"SHA-256 {sha256('e')}",  # 8 alias
            ]
        ).encode()
        + b"\nmd5 \xff"
        + md5("f")[1:].encode()
        + b"\n\xc3 "
        + md5("g").encode()
    )  # 9, 10
    got = read("te", data)
    assert [(type(r).__name__, r.line) for r in got] == [
        ("HashRecord", 1),
        ("LineError", 2),
        ("LineError", 3),
        ("LineError", 4),
        ("LineError", 5),
        ("HashRecord", 8),
        ("LineError", 9),
        ("LineError", 10),
    ]
    errs = errors(got)
    assert errs[0].message == "unknown signal type 'tmk'"
    assert errs[1].message == "expected '<signal type> <hash>'"
    assert errs[2].message == "unexpected text after the hash"
    assert errs[4].message == "line is not valid UTF-8"
    assert errs[5].message.startswith("unknown signal type")


def test_te_crlf_and_bom() -> None:
    data = b"\xef\xbb\xbfmd5 " + md5("a").encode() + b"\r\npdq\t" + sha256("b").encode() + b"\r\n"
    assert records(read("te", data)) == [
        HashRecord(T.MD5, md5("a"), NO_LABELS, 1),
        HashRecord(T.PDQ, sha256("b"), NO_LABELS, 2),
    ]


def test_te_vpdq_with_spaces_in_its_json() -> None:
    v = vpdq("a", "b")
    spaced = json.dumps(json.loads(v), indent=None)  # ", " and ": " separators
    assert " " in spaced
    assert records(read("te", f"vpdq {spaced}\n".encode()))[0].value == v


def test_te_write_uses_our_names() -> None:
    recs = [HashRecord(t, v, NO_LABELS) for t, v in [(T.MD5, md5("a").upper()), (T.PDQ, sha256("b"))]]
    _, data = write("te", recs)
    assert data.decode() == f"md5 {md5('a')}\npdq {sha256('b')}\n"


# -- csv -----------------------------------------------------------------------------------------------


def test_csv_fixture_with_one_column_per_type() -> None:
    got = read_file("csv", "labelled.csv")
    assert errors(got) == []
    a = Labels(
        category="test-a",
        baseline=True,
        series="Synthetic series A",
        victim_identified=False,
        source="fixture",
        tags=("alpha", "beta"),
    )
    assert got == [
        HashRecord(T.MD5, md5("meldpunt fixture 5"), a, 2),
        HashRecord(T.SHA1, sha1("meldpunt fixture 5"), a, 2),
        HashRecord(
            T.MD5,
            md5("meldpunt fixture 6"),
            Labels(category="test-b", baseline=False, source="fixture", tags=("alpha", "gamma")),
            3,
        ),
        HashRecord(T.SHA1, sha1("meldpunt fixture 7"), NO_LABELS, 4),
    ]
    first, second = records(got)[:2]
    assert first.labels is second.labels  # a row's records share one Labels


def test_csv_fixture_with_type_and_value_columns() -> None:
    got = read_file("csv", "pairs.csv")
    assert errors(got) == []
    assert [(r.signal_type, r.labels.category, r.labels.vics_category) for r in records(got)] == [
        (T.PDQ, "test-a", "1"),
        (T.MD5, "test-b", None),
        (T.PHOTODNA, None, "2"),
    ]


def test_csv_malformed_rows_with_line_numbers() -> None:
    rows = [
        "signal_type,value,baseline,category",  # 1
        f"md5,{md5('a')},yes,test-a",  # 2
        f"md5,{md5('b')},yes",  # 3 a column missing
        f"md5,{md5('c')},yes,test-a,extra",  # 4 one too many
        f"md5,{md5('d')},maybe,test-a",  # 5 not a boolean
        f"tmk,{md5('e')},,",  # 6 unknown type
        f"md5,{md5('f')[:-1]},,",  # 7 wrong length
        ",,,test-a",  # 8 no hash
        'md5,"' + md5("g") + '",no,"multi',  # 9..10: a quoted cell over two lines
        'line"',
        f"sha1,{sha1('h')},,",  # 11
    ]
    data = "\r\n".join(rows).encode() + b"\r\nmd5," + md5("i").encode() + b",,caf\xe9\r\n"  # 12 latin-1
    got = read("csv", data)
    assert [(type(r).__name__, r.line) for r in got] == [
        ("HashRecord", 2),
        ("LineError", 3),
        ("LineError", 4),
        ("LineError", 5),
        ("LineError", 6),
        ("LineError", 7),
        ("LineError", 8),
        ("HashRecord", 9),
        ("HashRecord", 11),
        ("LineError", 12),
    ]
    errs = errors(got)
    assert errs[0].message == "expected 4 columns as in the header, got 3"
    assert "not a yes/no value" in errs[2].message
    assert errs[3].message == "unknown signal type 'tmk'"
    assert "md5 must be 32 hex digits" in errs[4].message
    assert errs[5].message == "no hash in this row"
    assert errs[6].message == "line is not valid UTF-8"
    assert records(got)[1].labels.category == "multi\r\nline"


def test_csv_unknown_columns_make_the_file_unreadable_unless_x_prefixed() -> None:
    with pytest.raises(ListFormatError, match=r"unknown CSV column\(s\): 'categroy', 'notes'"):
        read("csv", f"md5,categroy,notes\n{md5('a')},x,y\n".encode())
    got = read("csv", f"md5,X_Notes\n{md5('a')},free text\n".encode())
    assert records(got) == [HashRecord(T.MD5, md5("a"), NO_LABELS, 2)]


def test_csv_header_without_a_hash_column_or_value() -> None:
    with pytest.raises(ListFormatError, match="no hash column"):
        read("csv", b"category,series\na,b\n")
    with pytest.raises(ListFormatError, match="no value"):
        read("csv", b"signal_type,category\nmd5,b\n")
    with pytest.raises(ListFormatError, match="named twice"):
        read("csv", b"md5,MD5\n")


def test_csv_bom_case_insensitive_header_comments_and_blank_lines() -> None:
    data = (
        b"\xef\xbb\xbf# exported by a synthetic tool\r\n\r\nSHA-1,Victim_Identified,TAGS\r\n"
        + sha1("a").upper().encode()
        + b',1,"x, y|z"\r\n\r\n'
    )
    (r,) = read("csv", data)
    assert r == HashRecord(T.SHA1, sha1("a"), Labels(victim_identified=True, tags=("x", "y", "z")), 4)


def test_csv_empty_type_is_detected_or_taken_from_signal_type() -> None:
    data = f"signal_type,hash\n,{sha256('a')}\n,{md5('b')}\n".encode()
    assert [r.signal_type for r in records(read("csv", data))] == [T.SHA256, T.MD5]
    assert records(read("csv", data, signal_type=T.PDQ))[0].signal_type is T.PDQ


def test_csv_vics_column_and_bad_json_in_it() -> None:
    data = f'md5,vics\n{md5("a")},"{{""MediaID"": 3}}"\n{md5("b")},{{not json\n'.encode()
    got = read("csv", data)
    assert records(got)[0].labels.vics == {"MediaID": 3}
    assert errors(got)[0].line == 3 and "not JSON" in errors(got)[0].message


def test_csv_given_labels_are_defaults() -> None:
    data = f"md5,category\n{md5('a')},own\n{md5('b')},\n".encode()
    given = Labels(category="given", source="cli")
    a, b = records(read("csv", data, labels=given))
    assert (a.labels.category, a.labels.source) == ("own", "cli")
    assert b.labels is given


def test_csv_write_header_and_cells() -> None:
    _, data = write("csv", [HashRecord(T.MD5, md5("a"), LABELS_FULL)])
    header, row, _ = data.decode().split("\r\n")
    assert header == (
        "signal_type,value,category,baseline,series,victim_identified,source,tags,"
        "vics_category,vics_profile,vics"
    )
    assert row.startswith(f"md5,{md5('a')},test-a,true,Synthetic series A,false,fixture,alpha|beta,1,US,")


def test_csv_cells_a_spreadsheet_would_run_are_guarded_and_read_back() -> None:
    """A label like ``=HYPERLINK(...)`` from a partner's list must not become a formula when an
    analyst opens the export in a spreadsheet; meldpunt's own reader gives the label back whole."""
    hostile = Labels(
        series='=HYPERLINK("http://x.invalid","click")', source="@SUM(1+1)", tags=("+1", "-x", "ok")
    )
    _, data = write("csv", [HashRecord(T.MD5, md5("a"), hostile)])
    row = data.decode().split("\r\n")[1]
    assert ",\"'=HYPERLINK(" in row and ",'@SUM(1+1)," in row and "'+1|-x|ok" in row
    [back] = CsvFormat().read(io.BytesIO(data))
    assert isinstance(back, HashRecord) and back.labels == hostile


def _big_vics(path: Path, media: int) -> None:
    context = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Media"
    with path.open("w") as f:
        f.write(f'{{"@odata.context": "{context}", "value": [')
        for i in range(media):
            sep = "," if i else ""
            f.write(
                f'{sep}{{"MediaID": {i}, "MD5": "{md5(str(i))}", "Category": 0, "Comments": "synthetic {i}"}}'
            )
        f.write("]}")


@pytest.mark.slow
def test_vics_is_streamed_one_media_at_a_time(tmp_path: Path) -> None:
    """A big police hash set is read without holding the document: memory stays a small fraction
    of the file however many Media it has."""
    import tracemalloc

    path = tmp_path / "big.json"
    _big_vics(path, 60_000)
    size = path.stat().st_size
    tracemalloc.start()
    try:
        with path.open("rb") as fp:
            n = sum(1 for r in VicsFormat().read(fp) if isinstance(r, HashRecord))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 60_000
    assert peak < size / 5, (peak, size)  # json.loads of the whole file needs several times its size


def test_vics_broken_part_way_or_value_before_metadata() -> None:
    good = '{{"@odata.context": "x/2.0.xml/US/$metadata#Media", "value": [{{"MD5": "{}"}}, {{"MD5": '.format(
        md5("a")
    )
    reader = VicsFormat().read(io.BytesIO(good.encode()))
    assert isinstance(next(reader), HashRecord)  # what came before the break
    with pytest.raises(ListFormatError, match="not JSON"):
        list(reader)
    late = '{{"value": [{{"MD5": "{}"}}], "@odata.context": "x/2.0.xml/US/$metadata#Media"}}'.format(md5("a"))
    with pytest.raises(ListFormatError, match="before its 'value'"):
        list(VicsFormat().read(io.BytesIO(late.encode())))


def test_csv_leaves_the_callers_stream_open() -> None:
    fp = io.BytesIO(f"md5\n{md5('a')}\n".encode())
    list(CsvFormat().read(fp))
    assert not fp.closed
    out = io.BytesIO()
    CsvFormat().write([], out)
    assert not out.closed


# -- vics ----------------------------------------------------------------------------------------------


def test_vics_1_3_fixture() -> None:
    got = read_file("vics", "vics-1.3.json")
    recs = records(got)
    # Media 1 and 2: MD5, SHA1 (repeated in AlternativeHashes, read once), PhotoDNA
    assert [(r.signal_type, r.line) for r in recs] == [
        (T.MD5, 1),
        (T.SHA1, 1),
        (T.PHOTODNA, 1),
        (T.MD5, 2),
        (T.SHA1, 2),
        (T.PHOTODNA, 2),
        (T.SHA1, 3),
        (T.PHOTODNA, 3),
    ]
    first = recs[0]
    assert first.value == md5("meldpunt vics1 1")
    assert recs[2].value == pdna("meldpunt vics1 1")  # base64 kept as given
    assert first.labels == Labels(
        vics_category="1",
        vics_profile="1.3",
        victim_identified=False,
        vics={"MediaID": 1, "MediaSize": "1001", "IsDistributed": "true"},
    )
    (err,) = errors(got)
    assert err.line == 3 and "md5 must be 32 hex digits" in err.message and "Media 3" in err.message


def test_vics_2_0_fixture() -> None:
    got = read_file("vics", "vics-2.0-us.json")
    recs = records(got)
    by_media: dict[int, list[HashRecord]] = {}
    for r in recs:
        by_media.setdefault(r.line, []).append(r)
    assert {m: [r.signal_type for r in rs] for m, rs in by_media.items()} == {
        1: [T.MD5, T.SHA1, T.PHOTODNA],
        2: [T.MD5, T.SHA1],
        3: [T.PHOTODNA],
    }
    lb = by_media[1][0].labels
    assert lb.vics_profile == "US" and lb.vics_category == "1"
    assert lb.series == "Synthetic series A" and lb.victim_identified is True
    assert lb.category is None and lb.tags == ()  # bank policy, not the reader's call
    assert lb.vics["Tags"] == "synthetic|fixture" and lb.vics["IsPrecategorized"] == "true"
    for dropped in ("MediaFiles", "Exifs", "RelativeFilePath", "AlternativeHashes", "MD5", "Category"):
        assert dropped not in lb.vics
    # an unknown alternative hash is kept (in vics), not made a record
    assert by_media[2][0].labels.vics["AlternativeHashes"] == [
        {"HashName": "F1", "HashValue": "synthetic-f1-value"}
    ]
    assert by_media[3][0].labels.victim_identified is True  # "true" as a string
    errs = errors(got)
    assert [(e.line, e.message) for e in errs] == [
        (4, "Media 4: not a yes/no value: 'perhaps'"),
        (5, "Media 5 has no hash"),
    ]


def test_vics_2_0_hash_set_with_bom() -> None:
    got = read_file("vics", "vics-2.0-hashset.json")
    assert errors(got) == [] and len(got) == 6
    assert {r.labels.vics_profile for r in records(got)} == {"Default"}
    assert {r.labels.vics_category for r in records(got)} == {"0"}


@pytest.mark.parametrize("name", ["vics-1.3.json", "vics-2.0-us.json", "vics-2.0-hashset.json"])
def test_vics_fixture_round_trip(name: str) -> None:
    first = records(read_file("vics", name))
    _, data = write("vics", first)
    again = read("vics", data)
    assert errors(again) == []
    same(records(again), first)
    doc = json.loads(data)
    if name == "vics-1.3.json":
        assert doc["odata.metadata"] == "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#Media"
    else:
        assert "/2.0.xml/" in doc["@odata.context"]
    # regrouped by MediaID: as many Media as the source had with hashes
    assert len(doc["value"]) == len({r.line for r in first})


def test_vics_write_shape_2_0_cases() -> None:
    fmt = VicsFormat("2.0", collection="Cases", case_id="case-1")
    _, data = write(fmt, CONTRACT_RECORDS[:3])
    doc = json.loads(data)
    assert doc["@odata.context"].endswith("/2.0.xml/US/$metadata#Cases")
    (case,) = doc["value"]
    assert case["CaseID"] == "case-1"
    (media,) = case["Media"]
    assert media["MediaID"] == 7 and media["Category"] == 1 and media["VictimIdentified"] is False
    assert media["MD5"] == md5("c1") and media["SHA1"] == sha1("c1")
    assert media["AlternativeHashes"] == [{"HashName": "PhotoDNA", "HashValue": pdna("c1")}]
    same(records(read(fmt, data)), map(_vics("US"), CONTRACT_RECORDS[:3]))


def test_vics_write_1_x_and_versions() -> None:
    _, data = write(VicsFormat("1.x"), CONTRACT_RECORDS[4:5])
    assert json.loads(data)["odata.metadata"].endswith("/1.3.xml#Media")
    with pytest.raises(ValueError, match="VICS version"):
        VicsFormat("3.0")


def test_vics_refuses_categories_under_another_profile() -> None:
    uk = HashRecord(T.MD5, md5("uk"), Labels(vics_category="2", vics_profile="UK"))
    us = HashRecord(T.MD5, md5("us"), Labels(vics_category="1", vics_profile="US"))
    out = io.BytesIO()
    with pytest.raises(ListFormatError, match="profile"):
        VicsFormat().write([us, uk], out)
    assert out.getvalue() == b""  # nothing half-written
    _, data = write(VicsFormat(profile="UK"), [uk])
    assert "/2.0.xml/UK/" in json.loads(data)["@odata.context"]


def test_vics_same_media_id_two_md5s_stay_two_media() -> None:
    lb = Labels(vics_profile="US", vics={"MediaID": 1})
    recs = [HashRecord(T.MD5, md5("a"), lb), HashRecord(T.MD5, md5("b"), lb)]
    _, data = write("vics", recs)
    assert len(json.loads(data)["value"]) == 2
    same(records(read("vics", data)), recs)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"md5 abc", "not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"value": []}', "not a VICS document"),
        (b"[1, 2]", "not a VICS document"),
        (b'{"@odata.context": "x", "value": 3}', "no 'value' list"),
    ],
)
def test_vics_unreadable_files_raise(data: bytes, match: str) -> None:
    with pytest.raises(ListFormatError, match=match):
        read("vics", data)


def test_vics_given_labels_are_defaults() -> None:
    given = Labels(category="given", vics_profile="UK")
    r = records(read_file("vics", "vics-2.0-us.json", labels=given))[0]
    assert (r.labels.category, r.labels.vics_profile) == ("given", "US")


# -- detect_format -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "filename", "expected"),
    [
        (b"", "list.csv", "csv"),
        (b"", "LIST.JSON", "vics"),
        (b"", "signals.te", "te"),
        (b'\xef\xbb\xbf  {"@odata.context": ...', "export.txt", "vics"),
        (b"md5,category\n", "export.txt", "csv"),
        (b'"Signal_Type","Value"\r\n', "export", "csv"),
        (b"# list\n\npdq " + sha256("a").encode() + b"\n", "list.txt", "te"),
        (b"VIDEO_MD5 " + md5("a").encode(), "list.lst", "te"),
        (md5("a").encode() + b"\n" + md5("b").encode(), "list.txt", "plain"),
        (b"# only a comment\n", "list.txt", "plain"),
        (b"a,b,c\n", "list.txt", "plain"),
    ],
)
def test_detect_format(head: bytes, filename: str, expected: str) -> None:
    assert detect_format(head, filename) == expected


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.iterdir() if p.suffix != ".md"))
def test_detect_format_on_the_fixtures(name: str) -> None:
    expected = {".txt": "plain", ".te": "te", ".csv": "csv", ".json": "vics"}[Path(name).suffix]
    data = (FIXTURES / name).read_bytes()
    assert detect_format(data[:4096], name) == expected
    assert detect_format(data[:4096], "no-extension") == expected


# -- property tests --------------------------------------------------------------------------------------

_hex16 = st.binary(min_size=16, max_size=16).map(bytes.hex)
_hex20 = st.binary(min_size=20, max_size=20).map(bytes.hex)
_hex32 = st.binary(min_size=32, max_size=32).map(bytes.hex)
_frames = st.lists(
    st.fixed_dictionaries(
        {
            "hash": _hex32,
            "quality": st.integers(0, 100),
            "timestamp": st.integers(0, 10**7).map(lambda t: t / 1000),
        }
    ),
    min_size=1,
    max_size=3,
)
_values = st.one_of(
    st.tuples(st.just(T.MD5), _hex16),
    st.tuples(st.just(T.SHA1), _hex20),
    st.tuples(st.just(T.SHA256), _hex32),
    st.tuples(st.just(T.PDQ), _hex32),
    st.tuples(st.just(T.VPDQ), _frames.map(lambda f: normalise_signal(T.VPDQ, json.dumps(f)))),
    st.tuples(
        st.just(T.PHOTODNA), st.binary(min_size=144, max_size=144).map(lambda b: base64.b64encode(b).decode())
    ),
)
# label text as a CSV cell keeps it: no surrounding whitespace, not empty
_text = st.text(min_size=1, max_size=20).filter(lambda s: s == s.strip())
_tag = _text.filter(lambda s: "," not in s and "|" not in s)
_json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=10))
_labels = st.builds(
    Labels,
    category=st.none() | _text,
    baseline=st.none() | st.booleans(),
    series=st.none() | _text,
    victim_identified=st.none() | st.booleans(),
    source=st.none() | _text,
    tags=st.lists(_tag, max_size=3, unique=True).map(tuple),
    vics_category=st.none() | _text,
    vics_profile=st.none() | _text,
    vics=st.dictionaries(st.text(max_size=8), _json_scalar, max_size=3),
)


def _records(labels: st.SearchStrategy[Labels]) -> st.SearchStrategy[list[HashRecord]]:
    return st.lists(
        st.builds(lambda tv, lb: HashRecord(tv[0], tv[1], lb), _values, labels),
        max_size=12,
        unique_by=lambda r: (r.signal_type, r.value),
    )


_settings = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.slow
@_settings
@given(_records(_labels))
def test_property_csv_round_trip(recs: list[HashRecord]) -> None:
    n, data = write("csv", recs)
    got = read("csv", data)
    assert n == len(recs) and errors(got) == []
    assert [(r.signal_type, r.value, r.labels) for r in records(got)] == [
        (r.signal_type, r.value, r.labels) for r in recs
    ]


@_settings
@given(_records(st.just(NO_LABELS)))
def test_property_te_round_trip(recs: list[HashRecord]) -> None:
    n, data = write("te", recs)
    got = read("te", data)
    assert n == len(recs)
    assert got == [replace(r, line=i) for i, r in enumerate(recs, 1)]


_vics_key = st.text(min_size=1, max_size=8).filter(
    lambda k: (
        k not in ("Category", "VictimIdentified", "Series", "AlternativeHashes", "MediaFiles", "Exifs")
        and k != "RelativeFilePath"
        and k.lower() not in ("md5", "sha1", "sha256", "photodna")
        and not k.startswith("odata.")
        and "@odata." not in k
    )
)
_vics_labels = st.builds(
    Labels,
    series=st.none() | st.text(min_size=1, max_size=10),
    victim_identified=st.none() | st.booleans(),
    vics_category=st.none() | st.text(min_size=1, max_size=4),
    vics_profile=st.just("US"),
    vics=st.one_of(
        st.dictionaries(_vics_key, _json_scalar, max_size=2),
        st.integers(1, 3).map(lambda i: {"MediaID": i}),
    ),
)


@_settings
@given(_records(_vics_labels))
def test_property_vics_round_trip(recs: list[HashRecord]) -> None:
    n, data = write("vics", recs)
    got = read("vics", data)
    assert n == len(recs) and errors(got) == []
    same(records(got), recs)


@pytest.mark.parametrize("name", ["plain", "te", "csv"])
def test_line_formats_stream(name: str) -> None:
    """The first record comes before the input has been read through (10-million-line lists)."""
    lines = [f"md5 {md5(str(i))}" if name == "te" else md5(str(i)) for i in range(50_000)]
    data = ("md5\n" if name == "csv" else "").encode() + "\n".join(lines).encode()
    fp = io.BytesIO(data)
    first = next(iter(get_format(name).read(fp)))
    assert isinstance(first, HashRecord)
    assert fp.tell() < len(data) // 10


def test_csv_long_vpdq_cell_and_type_without_value() -> None:
    v = vpdq(*(f"frame {i}" for i in range(2000)))  # ~200 KB: over the csv module's default limit
    assert len(v) > 131072
    data = f'signal_type,value\nvpdq,"{v.replace(chr(34), chr(34) * 2)}"\npdq,\n'.encode()
    got = read("csv", data)
    assert records(got) == [HashRecord(T.VPDQ, v, NO_LABELS, 2)]
    assert [(e.line, e.message) for e in errors(got)] == [(3, "a signal type but no value")]
