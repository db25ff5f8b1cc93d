"""The hidden-victims page (``web.estimate``): a senior or the police liaison pastes or uploads a count
table and sees the same numbers as ``meldpunt estimate`` (audited); a bad table comes back with the row
and the table kept; an analyst is refused; a forged token runs nothing; Dutch and French."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.helpers.staff import token
from tests.helpers.workspace import Workspace, _workspace

MSE = Path(__file__).parent / "fixtures" / "mse"


@pytest.fixture
def ws(sqlite_db: str) -> Iterator[Workspace]:
    with ExitStack() as stack:
        yield _workspace(sqlite_db, stack)


def _figure(page: str, label: str) -> str:
    found = re.search(rf"<dt>{re.escape(label)}</dt><dd>(.*?)</dd>", page, re.S)
    assert found, page
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def test_a_senior_pastes_a_table_and_sees_the_published_estimate_audited(ws: Workspace) -> None:
    sara = ws.user("sara", "senior")
    page = sara.get("/estimate")
    assert page.status_code == 200 and 'href="/estimate"' in page.text
    r = sara.post(
        "/estimate",
        data={
            "token": token(page.text),
            "table": (MSE / "Western.csv").read_text(),
            "method": "stepwise",
            "bootstrap": "0",
        },
    )
    assert r.status_code == 200, r.text
    assert _figure(r.text, "Estimated total") == "2483"  # Chan, Silverman & Vincent (2021) §4.2
    assert _figure(r.text, "Observed (on at least one list)") == "345"
    assert "<code>A:E</code>" in r.text
    assert [(a, s, d["total"], d["model"]) for a, s, d in ws.audit("estimate.run")] == [
        ("sara", "estimate", 2483.4, ["A:E"])
    ]


def test_the_police_liaison_uploads_a_file_in_dutch(ws: Workspace) -> None:
    paul = ws.user("paul", "police")
    nl = {"accept-language": "nl-BE,nl;q=0.9"}
    page = paul.get("/estimate", headers=nl)
    assert "Verborgen slachtoffers" in page.text
    r = paul.post(
        "/estimate",
        data={"token": token(page.text), "method": "main", "bootstrap": "100"},
        files={"file": ("korea.csv", (MSE / "Korea.csv").read_bytes(), "text/csv")},
        headers=nl,
    )
    assert r.status_code == 200, r.text
    assert _figure(r.text, "Geschat totaal") == "142"  # MultipleSystemsEstimation: 141.99
    assert "100 herhalingen" in r.text


def test_a_bad_table_says_which_row_and_keeps_the_table(ws: Workspace) -> None:
    sara = ws.user("sara", "senior")
    page = sara.get("/estimate", headers={"accept-language": "fr"})
    bad = "A,B,n\n1,0,5\n1,x,3\n"
    r = sara.post(
        "/estimate", data={"token": token(page.text), "table": bad}, headers={"accept-language": "fr"}
    )
    assert r.status_code == 422
    assert "La table ne peut pas être utilisée" in r.text and "ligne 3, liste B" in r.text
    assert "1,x,3" in r.text
    r = sara.post(
        "/estimate",
        data={
            "token": token(page.text),
            "table": (MSE / "Artificial_3.csv").read_text().replace("1,1,0,6", "1,1,0,6\n0,1,1,0"),
        },
    )
    assert r.status_code == 200  # Artificial_3 has an estimate under main effects (only A:B has none)
    assert "list C never overlaps any other list" in r.text  # English: no Accept-Language
    assert ws.audit("estimate.run")[-1][2]["lists"] == ["A", "B", "C"]


def test_analysts_are_refused_and_a_forged_token_runs_nothing(ws: Workspace) -> None:
    anna = ws.user("anna", "analyst")
    assert anna.get("/estimate").status_code == 403
    assert 'href="/estimate"' not in anna.get("/queue").text
    sara = ws.user("sara", "senior")
    r = sara.post("/estimate", data={"token": "forged", "table": (MSE / "Korea.csv").read_text()})
    assert r.status_code == 400
    assert ws.audit("estimate.run") == []


ESTIMATE_SRC = Path(__file__).parent.parent / "src" / "meldpunt" / "estimate"
SAID = re.compile(
    r'(?:TableError|NoEstimate|Note\.of)\(\s*"((?:[^"\\]|\\.)*)"|template = "((?:[^"\\]|\\.)*)"'
)


def test_every_refusal_and_note_of_the_estimate_is_translated() -> None:
    """The page shows the estimate room's refusals and notes through the catalogues (their English
    templates are the msgids), so each one must be there in Dutch and French with its placeholders."""
    from babel.messages.pofile import read_po

    templates = {
        m.group(1) or m.group(2)
        for path in ESTIMATE_SRC.glob("*.py")
        for m in SAID.finditer(path.read_text())
    }
    assert len(templates) > 20
    web = ESTIMATE_SRC.parent / "web" / "locale"
    for lang in ("nl", "fr", "en"):
        with (web / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
            catalog = {m.id: m.string for m in read_po(f) if m.id}
        for t in templates:
            assert catalog.get(t), (lang, t)
            assert set(re.findall(r"\{\w+\}", t)) == set(re.findall(r"\{\w+\}", str(catalog[t]))), (lang, t)


def test_a_refusal_comes_in_dutch(ws: Workspace) -> None:
    sara = ws.user("sara", "senior")
    nl = {"accept-language": "nl-BE,nl;q=0.9"}
    page = sara.get("/estimate", headers=nl)
    r = sara.post("/estimate", data={"token": token(page.text), "table": "A,B,n\n1,0,5\n0,1,3\n"}, headers=nl)
    assert r.status_code == 422
    assert "de lijsten overlappen nooit" in r.text


def test_a_file_that_is_not_text_is_refused_and_nothing_is_audited(ws: Workspace) -> None:
    sara = ws.user("sara", "senior")
    page = sara.get("/estimate")
    r = sara.post(
        "/estimate",
        data={"token": token(page.text)},
        files={"file": ("table.csv", b"A,B,n\n1,0,\xff\xfe\n", "text/csv")},
    )
    assert r.status_code == 422 and "The file is not UTF-8 text." in r.text
    assert ws.audit("estimate.run") == []
