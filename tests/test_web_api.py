"""The JSON API in-process: reports with tokens and idempotency (SQLite and PostgreSQL), matching
hashes and benign generated images, and the OpenAPI description."""

from __future__ import annotations

import asyncio
import io
import json
import re

import anyio.from_thread
import httpx
import pytest
from sqlalchemy import func, select

from meldpunt.banks.formats import HashRecord
from meldpunt.bootstrap import Services
from meldpunt.domain import Labels, SignalType
from meldpunt.pipeline.intake import create_api_token, list_items, receipt_hash, report_status
from meldpunt.signals import hash_bytes
from meldpunt.store.reports import Item, Report, ReportItem
from meldpunt.web import WebConfig, create_app
from tests.helpers.imagegen import scene
from tests.helpers.oriented import oriented_jpeg, stored_pixels_pdq
from tests.helpers.webclient import WebClient, _database_text, make_client, receipt_code, token_of


def test_reports_need_a_valid_token(client: WebClient, services: Services) -> None:
    body = {"urls": ["https://example.invalid/x"]}
    for headers in ({}, {"Authorization": "Bearer mp_nonsense"}, {"Authorization": "Basic eDp5"}):
        r = client.post("/api/v1/reports", json=body, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json() == {"detail": "a valid API token is required"}
    assert list_items(services) == []


def test_a_report_by_api(client: WebClient, services: Services, auth: dict[str, str]) -> None:
    urls = ["https://example.invalid/a", "https://example.invalid/b"]
    body = {
        "urls": urls,
        "seen_on": "social",
        "description": "found by our classifier",
        "urgent": True,
    }
    r = client.post("/api/v1/reports", json=body, headers=auth)
    assert r.status_code == 201, r.text
    out = r.json()
    assert set(out) == {"receipt", "report_id", "item_ids", "linked"}
    assert len(out["item_ids"]) == 2 and out["linked"] == []
    items = list_items(services)
    assert {i.url for i in items} == set(urls) and all(i.urgent for i in items)
    with services.engine.connect() as conn:
        source, seen_on = conn.execute(select(Report.source, Report.seen_on)).one()
    assert source == "api:partner-be" and seen_on == "social"
    # the same URL again joins the open item
    again = client.post("/api/v1/reports", json={"urls": ["https://example.invalid/a"]}, headers=auth)
    assert again.status_code == 201 and again.json()["linked"] == [out["item_ids"][0]]
    # its receipt works on the public status page
    assert client.get(f"/status/{out['receipt']}").status_code == 200


def test_the_same_idempotency_key_gives_the_same_receipt(
    client: WebClient, services: Services, auth: dict[str, str]
) -> None:
    body = {"urls": ["https://example.invalid/once"], "idempotency_key": "batch-17"}
    first = client.post("/api/v1/reports", json=body, headers=auth)
    second = client.post("/api/v1/reports", json=body, headers=auth)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == second.json()
    header = {**auth, "Idempotency-Key": "batch-18"}
    h1 = client.post("/api/v1/reports", json={"urls": ["https://example.invalid/h"]}, headers=header)
    h2 = client.post("/api/v1/reports", json={"urls": ["https://example.invalid/h"]}, headers=header)
    assert (h1.status_code, h2.status_code) == (201, 200) and h1.json() == h2.json()
    # another client's key is its own
    other = {"Authorization": f"Bearer {create_api_token(services, 'partner-fr')}"}
    third = client.post("/api/v1/reports", json=body, headers=other)
    assert third.status_code == 201 and third.json()["receipt"] != first.json()["receipt"]
    assert len(list_items(services)) == 2


def test_invalid_reports_are_refused_without_echoing_them(client: WebClient, auth: dict[str, str]) -> None:
    bad = client.post("/api/v1/reports", json={"urls": ["ftp://example.invalid/secret"]}, headers=auth)
    assert bad.status_code == 422 and "secret" not in bad.text
    assert bad.json()["detail"] == [
        "Line 1: this is not a web address (it should look like https://example.com/page)."
    ]
    bodies: list[dict[str, object]] = [
        {"urls": []},
        {"urls": ["https://example.invalid/"], "seen_on": "moon"},
        {"urls": "x"},
    ]
    for body in bodies:
        r = client.post("/api/v1/reports", json=body, headers=auth)
        assert r.status_code == 422 and "moon" not in r.text
    many = {"urls": [f"https://example.invalid/{i}" for i in range(101)]}
    assert client.post("/api/v1/reports", json=many, headers=auth).status_code == 422


def test_a_refused_report_comes_back_with_codes_and_their_values(
    client: WebClient, auth: dict[str, str]
) -> None:
    """The 422 of an invalid report carries every reason as a code with its values beside the
    English ``detail``, in the same order: a client can act on (or translate) each one."""
    body = {
        "urls": ["https://example.invalid/ok", "https://user:pw@example.invalid/", "ftp://example.invalid/"],
        "contact": "\u0000",
    }
    r = client.post("/api/v1/reports", json=body, headers=auth)
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"code": "url.credentials", "params": {"n": "2"}},
        {"code": "url.not_http", "params": {"n": "3"}},
        {"code": "contact.bad_text", "params": {}},
    ]
    assert r.json()["detail"][0] == (
        "Line 2: please leave out the user name and password (the part before @): we never sign in."
    )
    assert (
        r.json()["detail"][2]
        == "The contact address contains characters that cannot be stored (such as NUL)."
    )
    assert "user:pw" not in r.text
    # a body that does not fit the schema keeps the schema's errors in `detail`
    schema = client.post(
        "/api/v1/reports", json={"urls": ["https://example.invalid/"], "seen_on": "moon"}, headers=auth
    )
    assert schema.status_code == 422 and schema.json()["detail"][0]["loc"] == ["body", "seen_on"]
    huge = client.post(
        "/api/v1/reports",
        content=b'{"urls": ["' + b"a" * 2_000_000 + b'"]}',
        headers={**auth, "Content-Type": "application/json"},
    )
    assert huge.status_code == 413 and "larger than" in huge.json()["detail"]


# -- match -------------------------------------------------------------------------------------------


def _png(seed: int, size: tuple[int, int] = (640, 480)) -> bytes:
    buf = io.BytesIO()
    scene(seed).resize(size).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def known_png(services: Services) -> bytes:
    """A benign generated picture whose SHA-256 and PDQ are in a bank called "demo-known"."""
    data = _png(7)
    s = hash_bytes(data, "known.png")
    assert s.pdq is not None
    labels = Labels(category="demo-A", source="test")
    records = [
        HashRecord(SignalType.SHA256, s.sha256, labels, 1),
        HashRecord(SignalType.PDQ, s.pdq, labels, 2),
    ]
    services.banks.import_records(
        "demo-known", records, source_name="t.csv", source_sha256="ab" * 32, fmt="csv"
    )
    md5 = [HashRecord(SignalType.MD5, "0" * 31 + "1", Labels(category="demo-B"), 1)]
    services.banks.import_records(
        "demo-md5", md5, source_name="m.txt", source_sha256="cd" * 32, fmt="plain", policy="hint"
    )
    return data


def test_match_needs_a_token(client: WebClient) -> None:
    r = client.post("/api/v1/match", json={"hashes": [{"type": "md5", "value": "0" * 32}]})
    assert r.status_code == 401


def test_match_by_hashes(
    client: WebClient, services: Services, auth: dict[str, str], known_png: bytes
) -> None:
    s = hash_bytes(known_png, "k.png")
    assert s.pdq is not None
    near = _flip_bits(s.pdq, 5)
    queries = [
        {"type": "sha256", "value": s.sha256.upper()},
        {"type": "pdq", "value": near},
        {"type": "md5", "value": "0" * 31 + "1"},
        {"type": "sha1", "value": "f" * 40},
        {"type": "md5", "value": "not-hex"},
    ]
    r = client.post("/api/v1/match", json={"hashes": queries}, headers=auth)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [q["query"] for q in results] == queries
    sha, pdq, md5, none, bad = results
    assert [(m["bank"], m["signal_type"], m["distance"]) for m in sha["matches"]] == [
        ("demo-known", "sha256", 0)
    ]
    assert sha["matches"][0]["labels"]["category"] == "demo-A" and sha["matches"][0]["policy"] == "auto"
    assert [(m["bank"], m["signal_type"], m["distance"]) for m in pdq["matches"]] == [
        ("demo-known", "pdq", 5)
    ]
    assert [(m["bank"], m["policy"]) for m in md5["matches"]] == [("demo-md5", "hint")]
    assert none["matches"] == [] and none["error"] is None
    assert bad["matches"] == [] and "32 hex digits" in bad["error"]


def test_a_banks_own_pdq_threshold_counts(
    client: WebClient, services: Services, auth: dict[str, str], known_png: bytes
) -> None:
    pdq = hash_bytes(known_png, "k.png").pdq
    assert pdq is not None
    tight = [HashRecord(SignalType.PDQ, pdq, Labels(category="demo-C"), 1)]
    services.banks.import_records(
        "tight", tight, source_name="t.txt", source_sha256="ef" * 32, fmt="plain", pdq_threshold=3
    )
    queries = [{"type": "pdq", "value": pdq}, {"type": "pdq", "value": _flip_bits(pdq, 5)}]
    exact, near = client.post("/api/v1/match", json={"hashes": queries}, headers=auth).json()["results"]
    assert [(m["bank"], m["distance"]) for m in exact["matches"]] == [("demo-known", 0), ("tight", 0)]
    assert [(m["bank"], m["distance"]) for m in near["matches"]] == [("demo-known", 5)]


def _flip_bits(hex_hash: str, n: int) -> str:
    value = int(hex_hash, 16)
    for bit in range(n):
        value ^= 1 << (bit * 37 % 256)
    return f"{value:064x}"


def test_match_by_upload(
    client: WebClient, services: Services, auth: dict[str, str], known_png: bytes
) -> None:
    smaller = _png(7, (320, 240))  # the same picture, resized: another file, the same PDQ within a few bits
    other = _png(99)
    files = [
        ("file", ("known.png", known_png, "image/png")),
        ("file", ("small.png", smaller, "image/png")),
        ("file", ("other.png", other, "image/png")),
        ("file", ("notes.txt", b"just text", "text/plain")),
    ]
    r = client.post("/api/v1/match", files=files, headers=auth)
    assert r.status_code == 200, r.text
    known, small, unrelated, text = r.json()["results"]
    assert (
        known["query"]["file"] == "known.png"
        and known["query"]["sha256"] == hash_bytes(known_png, "k").sha256
    )
    assert {m["signal_type"] for m in known["matches"]} == {"sha256", "pdq"}
    assert [m["signal_type"] for m in small["matches"]] == ["pdq"] and small["matches"][0]["distance"] <= 31
    assert unrelated["matches"] == [] and text["matches"] == [] and "pdq" not in text["query"]
    assert client.post("/api/v1/match", files={"nothing": (None, "x")}, headers=auth).status_code == 422


def test_match_by_upload_finds_exif_oriented_photos_by_their_stored_pixels(
    client: WebClient, services: Services, auth: dict[str, str]
) -> None:
    """A list made by Meta's hashers / HMA holds the hash of a phone photo's stored pixels: an upload
    tagged with orientation 3, 6 or 8 matches it, and the match says it was the stored hash."""
    photos = {o: oriented_jpeg(30 + o, o) for o in (3, 6, 8, 1)}
    records = [
        HashRecord(SignalType.PDQ, stored_pixels_pdq(data), Labels(category="demo-A"), n)
        for n, data in enumerate(photos.values(), 1)
    ]
    services.banks.import_records(
        "phones", records, source_name="te.txt", source_sha256="12" * 32, fmt="plain", policy="auto"
    )
    files = [("file", (f"o{o}.jpg", data, "image/jpeg")) for o, data in photos.items()]
    r = client.post("/api/v1/match", files=files, headers=auth)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    for (o, data), res in zip(photos.items(), results, strict=True):
        q, matches = res["query"], res["matches"]
        assert [(m["bank"], m["signal_type"], m["distance"]) for m in matches] == [("phones", "pdq", 0)], o
        if o == 1:  # one hash: nothing to say which
            assert (matches[0]["hash"], matches[0]["orientation"]) == (None, None)
            assert q["pdq"] == stored_pixels_pdq(data) and "pdq_stored" not in q
        else:
            assert (matches[0]["hash"], matches[0]["orientation"]) == ("stored", o)
            assert (q["orientation"], q["pdq_stored"]) == (o, stored_pixels_pdq(data))
            assert q["pdq"] != q["pdq_stored"] and q["pdq_stored_quality"] >= 50


def test_match_keeps_nothing_it_is_sent(client: WebClient, services: Services, auth: dict[str, str]) -> None:
    probe = "ab" * 32
    before = _database_text(services)
    client.post("/api/v1/match", json={"hashes": [{"type": "sha256", "value": probe}]}, headers=auth)
    data = _png(3)
    client.post("/api/v1/match", files={"file": ("p.png", data, "image/png")}, headers=auth)
    after = _database_text(services)
    assert probe not in after and hash_bytes(data, "p").sha256 not in after
    assert len(after) == len(before)


def test_match_limits(client: WebClient, services: Services, auth: dict[str, str]) -> None:
    cap = {"hashes": [{"type": "md5", "value": "0" * 32}] * 1001}
    assert client.post("/api/v1/match", json=cap, headers=auth).status_code == 422
    bad_json = {**auth, "Content-Type": "application/json"}
    assert client.post("/api/v1/match", content=b"{nope", headers=bad_json).status_code == 422
    config = WebConfig(max_match_queries=3, max_upload_bytes=50_000)
    for small in make_client(create_app(services, config)):
        four = {"hashes": [{"type": "md5", "value": "0" * 32}] * 4}
        assert small.post("/api/v1/match", json=four, headers=auth).status_code == 422
        big = small.post("/api/v1/match", files={"file": ("big.bin", b"\0" * 60_000)}, headers=auth)
        assert big.status_code == 413 and "larger than" in big.json()["detail"]
        files = [("file", (f"{i}.txt", b"x")) for i in range(4)]
        assert small.post("/api/v1/match", files=files, headers=auth).status_code == 400


# -- documentation -------------------------------------------------------------------------------------


def test_openapi_documents_the_api(client: WebClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/api/v1/reports", "/api/v1/match", "/health"} <= set(spec["paths"])
    assert not any(p.startswith(("/report", "/status", "/internal", "/receipt")) for p in spec["paths"])
    match = spec["paths"]["/api/v1/match"]["post"]
    assert {"application/json", "multipart/form-data"} <= set(match["requestBody"]["content"])
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    reports = spec["paths"]["/api/v1/reports"]["post"]
    assert {"201", "200", "401"} <= set(reports["responses"])
    assert any(p["name"] == "idempotency-key" for p in reports["parameters"])
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    assert "POST /api/v1/reports" in docs.text and "POST /api/v1/match" in docs.text
    csp = docs.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "http" not in csp and "<script" not in docs.text


def test_openapi_document_is_valid_and_every_ref_resolves(client: WebClient) -> None:
    from openapi_spec_validator import validate

    spec = client.get("/openapi.json").json()
    validate(spec)  # raises on any error, unresolvable $refs included
    body = spec["paths"]["/api/v1/match"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/MatchRequest"}
    schemas = spec["components"]["schemas"]
    assert {"MatchRequest", "HashQuery", "ReportRequest", "InvalidReportResponse", "ProblemOut"} <= set(
        schemas
    )
    refused = spec["paths"]["/api/v1/reports"]["post"]["responses"]["422"]["content"]["application/json"]
    assert refused["schema"] == {"$ref": "#/components/schemas/InvalidReportResponse"}
    text = json.dumps(spec)
    assert "$defs" not in text
    for ref in re.findall(r'"\$ref": "([^"]+)"', text):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref


def test_match_opens_a_report_only_when_asked(
    client: WebClient, services: Services, auth: dict[str, str]
) -> None:
    body = {
        "hashes": [{"type": "md5", "value": "0" * 32}],
        "report": {"urls": ["https://upload.example/u/123"], "seen_on": "filesharing"},
    }
    r = client.post("/api/v1/match", json=body, headers=auth)
    assert r.status_code == 200, r.text
    receipt = r.json()["receipt"]
    assert receipt["receipt"] and len(receipt["item_ids"]) == 1
    bad = {"hashes": body["hashes"], "report": {"urls": ["ftp://x"], "seen_on": "website"}}
    assert client.post("/api/v1/match", json=bad, headers=auth).status_code == 422
    assert (
        client.post("/api/v1/match", json={"hashes": body["hashes"]}, headers=auth).json().get("receipt")
        is None
    )


# -- issue #8: races, idempotency, text PostgreSQL refuses ------------------------------------------


def test_concurrent_reports_through_form_and_api_make_one_item_per_url(services: Services) -> None:
    """10 URLs, 8 reporters each — half through the public form, half through the API — all at
    once against the app (handlers run in its thread pool on connections of their own): one item
    per URL on both databases, every receipt valid and linked to it."""
    urls = [f"https://race.example/item-{n}" for n in range(10)]
    app = create_app(services, WebConfig(report_rate=10_000, status_rate=10_000))
    auth = {"Authorization": f"Bearer {create_api_token(services, 'racer')}"}

    async def race() -> list[tuple[str, str, httpx.Response]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://meldpunt.test") as client:
            tokens = [token_of((await client.get("/report")).text) for _ in range(len(urls) * 4)]

            async def by_form(url: str, token: str) -> tuple[str, str, httpx.Response]:
                data = {"token": token, "lang": "en", "seen_on": "website", "urls": url}
                return url, "form", await client.post("/report", data=data)

            async def by_api(url: str) -> tuple[str, str, httpx.Response]:
                return url, "api", await client.post("/api/v1/reports", json={"urls": [url]}, headers=auth)

            calls = []
            for n, url in enumerate(urls):
                calls += [by_form(url, tokens[n * 4 + i]) for i in range(4)]
                calls += [by_api(url) for _ in range(4)]
            return list(await asyncio.gather(*calls))

    with anyio.from_thread.start_blocking_portal() as portal:
        answers = portal.call(race)
    with services.engine.connect() as conn:
        per_url = dict(conn.execute(select(Item.url, func.count()).group_by(Item.url)).all())
        item_of = dict(conn.execute(select(Item.url, Item.id)).all())
        links = set(conn.execute(select(ReportItem.report_id, ReportItem.item_id)).all())
        report_of = dict(conn.execute(select(Report.receipt_hash, Report.id)).all())
    assert per_url == dict.fromkeys(urls, 1)
    assert len(answers) == 80
    for url, how, r in answers:
        if how == "form":
            code = receipt_code(r)
        else:
            assert r.status_code == 201, r.text
            code = r.json()["receipt"]
            assert r.json()["item_ids"] == [item_of[url]]
        assert (report_of[receipt_hash(code)], item_of[url]) in links, (url, how)
        assert report_status(services, code) is not None


def test_an_idempotency_key_with_another_request_is_a_409_that_says_so(
    client: WebClient, services: Services, auth: dict[str, str]
) -> None:
    body = {"urls": ["https://example.invalid/one"], "idempotency_key": "batch-1"}
    first = client.post("/api/v1/reports", json=body, headers=auth)
    again = client.post("/api/v1/reports", json=body, headers=auth)
    assert (first.status_code, again.status_code) == (201, 200) and first.json() == again.json()
    more = {**body, "urls": ["https://example.invalid/one", "https://example.invalid/two"]}
    conflict = client.post("/api/v1/reports", json=more, headers=auth)
    assert conflict.status_code == 409
    assert "idempotency key was already used for a different report" in conflict.json()["detail"]
    header = {**auth, "Idempotency-Key": "batch-1"}  # the header names the same key
    moved = client.post("/api/v1/reports", json={"urls": ["https://example.invalid/three"]}, headers=header)
    assert moved.status_code == 409
    # through /api/v1/match's report too
    hashes = [{"type": "md5", "value": "0" * 32}]
    report = {"urls": ["https://upload.example/u/1"], "idempotency_key": "upload-1"}
    m1 = client.post("/api/v1/match", json={"hashes": hashes, "report": report}, headers=auth)
    m2 = client.post("/api/v1/match", json={"hashes": hashes, "report": report}, headers=auth)
    assert m1.status_code == m2.status_code == 200 and m1.json()["receipt"] == m2.json()["receipt"]
    other = {**report, "urls": ["https://upload.example/u/2"]}
    m3 = client.post("/api/v1/match", json={"hashes": hashes, "report": other}, headers=auth)
    assert m3.status_code == 409 and "different report" in m3.json()["detail"]
    assert sorted(i.url for i in list_items(services)) == [
        "https://example.invalid/one",
        "https://upload.example/u/1",
    ]


def test_text_postgresql_cannot_store_is_refused_with_its_reason_not_a_500(
    client: WebClient, services: Services, auth: dict[str, str]
) -> None:
    ok = "https://example.invalid/"
    cases: list[tuple[dict[str, object], dict[str, str], str]] = [
        ({"urls": ["https://example.invalid/a\u0000b"]}, {}, "url.bad_text"),
        ({"urls": [ok], "description": "x\u0000"}, {}, "description.bad_text"),
        ({"urls": [ok], "contact": "\u0000"}, {}, "contact.bad_text"),
        ({"urls": [ok], "idempotency_key": "k\u0000"}, {}, "idempotency_key.bad_text"),
        ({"urls": ["https://" + "h" * 250 + ".example/"]}, {}, "url.host_too_long"),
        ({"urls": ["https://" + "l" * 64 + ".example/"]}, {}, "url.host_too_long"),
        ({"urls": ["https://user:pw@example.invalid/"]}, {}, "url.credentials"),
    ]
    for body, headers, reason in cases:
        r = client.post("/api/v1/reports", json=body, headers={**auth, **headers})
        assert r.status_code == 422, (body, r.status_code, r.text)
        assert reason in [e["code"] for e in r.json()["errors"]], (body, r.json())
    nul_report = {
        "hashes": [{"type": "md5", "value": "0" * 32}],
        "report": {"urls": [ok], "contact": "\u0000"},
    }
    r = client.post("/api/v1/match", json=nul_report, headers=auth)
    assert r.status_code == 422 and r.json()["errors"] == [{"code": "contact.bad_text", "params": {}}]
    assert r.json()["detail"] == [
        "The contact address contains characters that cannot be stored (such as NUL)."
    ]
    assert list_items(services) == []
