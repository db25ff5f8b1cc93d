"""Service errors are codes with values; every code has an English template and an nl and fr
translation that keeps its placeholders."""

from __future__ import annotations

import re
import string
from pathlib import Path

from meldpunt.pipeline import intake
from meldpunt.pipeline.intake import MESSAGES, InvalidReport, ReportIn, validate
from meldpunt.web.i18n import LANGUAGES, catalog_ids


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_intake_code_has_an_english_template_and_a_translation() -> None:
    # every reason normalise_url gives has its code in the table
    source = Path(intake.__file__).read_text()
    bad_url_codes = set(re.findall(r'BadUrl\(\s*"(\w+)"', source))
    assert bad_url_codes and {f"url.{c}" for c in bad_url_codes} <= MESSAGES.keys()
    for code, template in MESSAGES.items():
        assert re.fullmatch(r"[a-z_]+\.[a-z_]+", code), code
        assert template.strip() and _placeholders(template) <= {"n", "max"}, code
        for lang in LANGUAGES:
            ids = catalog_ids(lang)
            assert template in ids, (lang, code, template)
            if lang != "en":
                assert ids[template] and ids[template] != template, (lang, code)
                assert _placeholders(ids[template]) == _placeholders(template), (lang, code)


def test_validate_returns_codes_with_values_and_the_english_beside_them() -> None:
    report = ReportIn(
        urls=["https://example.invalid/", " ", "https://a:b@example.invalid/"],
        seen_on="moon",
        contact="c" * 321,
        idempotency_key="k" * 201,
    )
    problems = validate(report)
    assert [(p.code, dict(p.values)) for p in problems] == [
        ("url.credentials", {"n": "3"}),  # numbered by its place: a blank entry counts
        ("seen_on.unknown", {}),
        ("contact.too_long", {"max": "320"}),
        ("idempotency_key.too_long", {"max": "200"}),
    ]
    refused = InvalidReport(problems)
    assert refused.problems == problems
    assert refused.errors[0] == (
        "Line 3: please leave out the user name and password (the part before @): we never sign in."
    )
    assert refused.errors[3] == "The idempotency key is too long (at most 200 characters)."
    assert str(refused) == "; ".join(refused.errors)
    assert validate(ReportIn(urls=["https://example.invalid/"])) == []
