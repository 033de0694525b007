"""Settings: each field declared once, ENV_VARS derived from it, and bad values fail loud."""

from __future__ import annotations

import dataclasses
import json

import pytest

import conftest  # noqa: F401  (puts handler/ on sys.path)
from ci_callback import settings as settings_module
from ci_callback.app import handle
from ci_callback.errors import CiCallbackError, Misconfigured
from ci_callback.settings import ALL_ACTIONS, ENV_VARS, Settings, problems

TOKEN = "settings-token"
EVENT = {"httpMethod": "POST", "path": "/", "headers": {}, "body": "<Response/>", "queryString": {"token": TOKEN}}


def test_env_vars_are_derived_from_the_fields() -> None:
    assert list(ENV_VARS) == [f.metadata["env"] for f in dataclasses.fields(Settings)]
    assert all(ENV_VARS.values())
    assert "CI_CALLBACK_TOKENS" in ENV_VARS and "TENCENTCLOUD_REGION" in ENV_VARS


def test_settings_are_frozen_and_replace_makes_a_copy() -> None:
    settings = Settings(tokens=("tok-Zq9",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.fanout = 3  # type: ignore[misc]
    assert settings.replace(fanout=3).fanout == 3 and settings.fanout == 10
    assert "tok-Zq9" not in repr(settings)


def test_empty_means_the_default() -> None:
    names = ["CI_CALLBACK_MAX_BODY_BYTES", "CI_CALLBACK_FANOUT", "CI_CALLBACK_VERIFY_JOBS", "CI_CALLBACK_ACTIONS",
             "CI_CALLBACK_LOG_LEVEL", "CI_CALLBACK_MARKER_TTL_SECONDS", "CI_CALLBACK_TAG_PREFIX"]
    assert Settings.from_env({name: " " for name in names}) == Settings()
    assert Settings().actions == frozenset(ALL_ACTIONS)


@pytest.mark.parametrize("value, expected", [
    ("true", True), ("TRUE", True), ("1", True), ("Yes", True), ("on", True),
    ("false", False), ("False", False), ("0", False), ("NO", False), ("off", False),
])
def test_booleans_in_any_case(value: str, expected: bool) -> None:
    assert Settings.from_env({"CI_CALLBACK_VERIFY_JOBS": value}).verify_jobs is expected


def test_none_means_no_actions_and_known_names_are_kept() -> None:
    assert Settings.from_env({"CI_CALLBACK_ACTIONS": "none"}).actions == frozenset()
    assert Settings.from_env({"CI_CALLBACK_ACTIONS": " index , tag "}).actions == {"index", "tag"}


@pytest.mark.parametrize("name, value", [
    ("CI_CALLBACK_VERIFY_JOBS", "maybe"),
    ("CI_CALLBACK_MAX_BODY_BYTES", "1MB"),
    ("CI_CALLBACK_MAX_BODY_BYTES", "0"),
    ("CI_CALLBACK_MAX_BODY_BYTES", str(7 * 1024 * 1024)),
    ("CI_CALLBACK_FANOUT", "33"),
    ("CI_CALLBACK_FANOUT", "ten"),
    ("CI_CALLBACK_MARKER_TTL_SECONDS", "-5"),
    ("CI_CALLBACK_ACTIONS", "archive,indx"),
    ("CI_CALLBACK_LOG_LEVEL", "LOUD"),
])
def test_a_value_that_does_not_parse_is_misconfigured(name: str, value: str) -> None:
    with pytest.raises(Misconfigured) as raised:
        Settings.from_env({name: value})
    assert raised.value.variable == name
    assert isinstance(raised.value, CiCallbackError) and not raised.value.transient
    assert [line.split(":")[0] for line in problems({name: value})] == [name]


def test_problems_lists_every_bad_value_one_line_each() -> None:
    found = problems({"CI_CALLBACK_FANOUT": "99", "CI_CALLBACK_VERIFY_JOBS": "maybe", "CI_CALLBACK_TOKENS": "x"})
    assert [line.split(":")[0] for line in found] == ["CI_CALLBACK_VERIFY_JOBS", "CI_CALLBACK_FANOUT"]
    assert all("\n" not in line for line in found)
    assert problems({"CI_CALLBACK_FANOUT": "8"}) == []


def test_a_misconfigured_function_answers_503_and_logs_the_name_not_the_value(monkeypatch, capsys) -> None:
    monkeypatch.setenv("CI_CALLBACK_TOKENS", TOKEN)
    monkeypatch.setenv("CI_CALLBACK_VERIFY_JOBS", "secret-looking-value")
    settings_module.reset_settings()
    try:
        response = handle(EVENT, {"request_id": "rid"})
        again = handle(EVENT, {"request_id": "rid"})  # not cached: still refused until fixed
    finally:
        settings_module.reset_settings()
    assert response["statusCode"] == again["statusCode"] == 503
    body = json.loads(response["body"])
    assert body == {"ok": False, "status": "misconfigured", "reason": "misconfigured: CI_CALLBACK_VERIFY_JOBS"}
    out = capsys.readouterr().out
    records = [json.loads(line) for line in out.splitlines()]
    errors = [r for r in records if r["level"] == "ERROR"]
    assert errors and errors[0]["variable"] == "CI_CALLBACK_VERIFY_JOBS"
    assert "secret-looking-value" not in out
    assert TOKEN not in out


def test_the_cli_reports_a_misconfiguration_in_one_line(monkeypatch, capsys) -> None:
    from ci_callback_dev import cli

    monkeypatch.setenv("CI_CALLBACK_FANOUT", "lots")
    assert cli.main(["replay", "--bucket", "examplebucket-1250000000", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["ci-callback: misconfigured: CI_CALLBACK_FANOUT: not an integer"]
