"""Every setting is documented: help, a unit that its name says, a row in docs/settings.md (which is
generated from the code and must be in step with it). After Datasette's ``tests/test_docs.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from meldpunt.settings import SUFFIXES, Setting, Settings, env_name
from meldpunt.settings.docs import markdown

DOCS = Path(__file__).parent.parent / "docs" / "settings.md"
SETTINGS = Settings.table()


@pytest.fixture(scope="module")
def docs() -> str:
    return DOCS.read_text(encoding="utf-8")


@pytest.mark.parametrize("row", SETTINGS, ids=lambda r: r.name)
def test_every_setting_has_help(row: Setting) -> None:
    assert len(row.help) > 15 and row.help.endswith((".", ")")), f"{row.name}: help missing or not a sentence"


@pytest.mark.parametrize("row", SETTINGS, ids=lambda r: r.name)
def test_every_setting_is_in_the_docs(row: Setting, docs: str) -> None:
    assert f"| `{row.name}` | `{row.env}` |" in docs, f"{row.name} is missing from docs/settings.md"


@pytest.mark.parametrize("row", SETTINGS, ids=lambda r: r.name)
def test_a_settings_name_ends_in_its_unit(row: Setting) -> None:
    """One suffix per unit: seconds are always ``_s`` (never ``_seconds``), and a name ending in a
    unit's suffix is in that unit."""
    if row.unit in SUFFIXES:
        assert row.name.endswith(SUFFIXES[row.unit]), (
            f"{row.name} is in {row.unit}: end it in {SUFFIXES[row.unit]}"
        )
    for unit, suffix in SUFFIXES.items():
        if row.name.endswith(suffix):
            assert row.unit == unit, f"{row.name} ends in {suffix} but its unit is {row.unit or 'not given'}"
    assert not row.name.endswith(("_seconds", "_secs", "_ms")), row.name


def test_one_variable_per_setting_by_one_rule() -> None:
    for row in SETTINGS:
        section, _, name = row.name.rpartition(".")
        assert row.env == env_name(section, name)
    assert len({r.env for r in SETTINGS}) == len(SETTINGS)


def test_the_matcher_refresh_is_one_setting() -> None:
    assert [r.name for r in SETTINGS if "refresh" in r.name] == ["matcher_refresh_s"]


def test_docs_settings_md_is_in_step_with_the_code(docs: str) -> None:
    assert docs == markdown(), (
        "docs/settings.md is stale: run `meldpunt settings --markdown > docs/settings.md`"
    )


def test_the_triage_and_staff_settings_are_in_the_table() -> None:
    names = {r.env for r in SETTINGS}
    assert {"MELDPUNT_TRIAGE_CLAIM_MINUTES", "MELDPUNT_STAFF_LOCK_MINUTES", "MELDPUNT_WEB_SECRET"} <= names
    assert {"MELDPUNT_DB", "MELDPUNT_REVIEW_KEY"} <= names


def test_only_the_settings_read_the_environment() -> None:
    """One reader: no module outside ``meldpunt.settings`` looks at ``MELDPUNT_*`` variables (the
    web, triage and staff configs each read their own before), so none escapes the table."""
    src = Path(__file__).parent.parent / "src" / "meldpunt"
    readers = [
        str(p.relative_to(src))
        for p in src.rglob("*.py")
        if p.parent.name != "settings"
        and any(
            w in p.read_text(encoding="utf-8") for w in ("os.environ", "getenv(", "environ.get(", "envvar=")
        )
    ]
    assert readers == []
