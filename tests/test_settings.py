"""The one settings object: read from the environment by one rule, every section included, built once
and handed to the services; ``meldpunt settings`` says where each value came from."""

from __future__ import annotations

import warnings

import pytest
from typer.testing import CliRunner

from meldpunt.bootstrap import Services
from meldpunt.cli import app
from meldpunt.settings import RenamedSettingWarning, Settings, SettingsError
from meldpunt.web import create_app

runner = CliRunner()


def test_every_section_comes_from_the_environment_by_one_rule() -> None:
    s, sources = Settings.load(
        {
            "MELDPUNT_DB": "x.db",
            "MELDPUNT_WEB_REPORT_RATE": "3",
            "MELDPUNT_WEB_EMERGENCY_NUMBERS": "112, 113 (help line)",
            "MELDPUNT_TRIAGE_SECOND_OPINION": "no",
            "MELDPUNT_TRIAGE_CLAIM_MINUTES": "20",
            "MELDPUNT_STAFF_COOKIE_SECURE": "Always",
            "MELDPUNT_STAFF_SESSION_HOURS": "8",
        },
        hash_workers=2,
    )
    assert (s.db, s.web.report_rate, s.web.emergency_numbers) == ("x.db", 3, ("112", "113 (help line)"))
    assert (s.triage.second_opinion, s.triage.claim_minutes) == (False, 20)
    assert (s.staff.cookie_secure, s.staff.session_hours, s.hash_workers) == ("always", 8, 2)
    assert sources == {
        "db": "MELDPUNT_DB",
        "web.report_rate": "MELDPUNT_WEB_REPORT_RATE",
        "web.emergency_numbers": "MELDPUNT_WEB_EMERGENCY_NUMBERS",
        "triage.second_opinion": "MELDPUNT_TRIAGE_SECOND_OPINION",
        "triage.claim_minutes": "MELDPUNT_TRIAGE_CLAIM_MINUTES",
        "staff.cookie_secure": "MELDPUNT_STAFF_COOKIE_SECURE",
        "staff.session_hours": "MELDPUNT_STAFF_SESSION_HOURS",
        "hash_workers": "argument",
    }
    assert Settings.load({})[1] == {} and Settings.from_env({}) == Settings()


@pytest.mark.parametrize(
    ("var", "raw"),
    [
        ("MELDPUNT_TRIAGE_SECOND_OPINION", "maybe"),  # was read as "no" before
        ("MELDPUNT_STAFF_COOKIE_SECURE", "sometimes"),
        ("MELDPUNT_WEB_STATUS_RATE", "many"),
        ("MELDPUNT_FETCH_TIMEOUT_S", "soon"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(var: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=var):
        Settings.from_env({var: raw})
    result = runner.invoke(app, ["settings"], env={var: raw})
    assert result.exit_code == 2 and var in result.stderr


def test_renamed_variables_are_read_with_a_warning_naming_the_new_one() -> None:
    env = {"MELDPUNT_WEB_FORM_TOKEN_SECONDS": "60", "MELDPUNT_WEB_MATCHER_REFRESH_SECONDS": "0"}
    with pytest.warns(RenamedSettingWarning) as said:
        s, sources = Settings.load(env)
    assert sorted(str(w.message).split(" is ")[0] for w in said) == sorted(env)
    assert "set MELDPUNT_WEB_FORM_TOKEN_S instead" in str(said[0].message)
    assert (s.web.form_token_s, s.matcher_refresh_s) == (60, 0)
    assert sources == {
        "web.form_token_s": "MELDPUNT_WEB_FORM_TOKEN_SECONDS",
        "matcher_refresh_s": "MELDPUNT_WEB_MATCHER_REFRESH_SECONDS",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        both = Settings.from_env({"MELDPUNT_MAX_VIDEO_S": "5", "MELDPUNT_MAX_VIDEO_SECONDS": "9"})
    assert both.max_video_s == 5  # the new name wins, and nothing is said


def test_the_command_line_says_which_old_variable_to_rename(sqlite_db: str) -> None:
    result = runner.invoke(
        app, ["--db", sqlite_db, "settings"], env={"MELDPUNT_WEB_RATE_WINDOW_SECONDS": "60"}
    )
    assert result.exit_code == 0
    assert "warning: MELDPUNT_WEB_RATE_WINDOW_SECONDS is deprecated" in result.stderr
    assert (
        "web.rate_window_s = 60 seconds  [MELDPUNT_WEB_RATE_WINDOW_S, set by MELDPUNT_WEB_RATE_WINDOW_SECONDS]"
        in result.stdout
    )


def test_a_refused_variable_stops_every_command() -> None:
    result = runner.invoke(app, ["settings"], env={"MELDPUNT_WEB_FORWARDED_HEADER": "X-Forwarded-For"})
    assert result.exit_code == 2 and "MELDPUNT_WEB_TRUSTED_PROXIES" in result.stderr


def test_meldpunt_settings_lists_every_setting_with_its_variable_and_source(sqlite_db: str) -> None:
    env = {
        "MELDPUNT_TRIAGE_CLAIM_MINUTES": "20",
        "MELDPUNT_REVIEW_KEY": "c2VjcmV0IGtleSBub3QgdG8gYmUgcHJpbnRlZA==",
    }
    result = runner.invoke(app, ["--db", sqlite_db, "settings"], env=env)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len([line for line in lines if not line.startswith(" ")]) == len(Settings.table())
    assert f"db = {sqlite_db}  [MELDPUNT_DB, set by --db]" in lines
    assert (
        "triage.claim_minutes = 20 minutes  [MELDPUNT_TRIAGE_CLAIM_MINUTES, set by MELDPUNT_TRIAGE_CLAIM_MINUTES]"
        in lines
    )
    assert "staff.lock_minutes = 15 minutes  [MELDPUNT_STAFF_LOCK_MINUTES, default]" in lines
    assert "web.form_token_s = 7200 seconds  [MELDPUNT_WEB_FORM_TOKEN_S, default]" in lines
    assert "review_key = (set)  [MELDPUNT_REVIEW_KEY, set by MELDPUNT_REVIEW_KEY]" in lines
    assert env["MELDPUNT_REVIEW_KEY"] not in result.stdout
    changed = runner.invoke(app, ["--db", sqlite_db, "settings", "--changed"], env=env).stdout
    assert [line.split(" =")[0] for line in changed.splitlines() if not line.startswith(" ")] == [
        "db",
        "review_key",
        "triage.claim_minutes",
    ]


def test_the_services_hand_each_part_of_the_one_object_on(db_url: str) -> None:
    settings = Settings.from_env(
        {
            "MELDPUNT_STAFF_MAX_FAILURES": "3",
            "MELDPUNT_WEB_REPORT_RATE": "4",
            "MELDPUNT_MATCHER_REFRESH_S": "7",
        },
        db=db_url,
    )
    services = Services(settings)
    try:
        assert services.accounts().policy is settings.staff
        context = create_app(services).state.ctx
        assert context.config is settings.web and context.matchers.check_s == 7
    finally:
        services.close()
