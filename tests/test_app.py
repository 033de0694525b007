"""The whole pipeline through ``main_handler`` / ``handle``, and the CLI around it.

These tests pin the pure pipeline (edge → auth → parse → route → response). The
built-in COS actions (archive, dedupe, index, tag, …) are switched off
(``CI_CALLBACK_ACTIONS=none``: no known name, so the action set is empty) and a token
is configured, so no test here needs a COS endpoint; actions and auth have their own tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import pytest

from ci_callback import app, log
from ci_callback import settings as settings_module
from ci_callback.app import handle, main_handler
from ci_callback.settings import Settings
from ci_callback_dev import events
from conftest import EVENTS, ROOT, SCF_EVENTS

# HTTP trigger events (the timer and CMQ samples carry no HTTP request).
EVENT_FILES = sorted(p for p in EVENTS.glob("*.json") if p.name.startswith(("apigw-", "function-url-")))
CONTEXT = json.loads((EVENTS / "context.json").read_text(encoding="utf-8"))

# name -> (status, kind, tag, state, handlers), read off each event's body by hand.
EXPECTED = {
    "apigw-review-simple-json.json": ("processed", "moderation", "ReviewImage", "Success", ["moderation_finished"]),
    "apigw-segment-xml-base64.json": ("processed", "job", "Segment", "Success", ["job_succeeded"]),
    "apigw-smartcover-xml.json": ("processed", "job", "SmartCover", "Success", ["job_succeeded"]),
    "apigw-transcode-failed-xml.json": ("processed", "job", "Transcode", "Failed", ["job_failed"]),
    "apigw-workflow-xml.json": ("processed", "workflow", None, "Success", ["workflow_finished"]),
    "function-url-console-test-json.json": ("test", "moderation", None, "Success", ["moderation_finished"]),
    "function-url-picprocess-json.json": ("processed", "job", "PicProcess", "Success", ["job_succeeded"]),
    "function-url-review-detail-json.json": ("processed", "moderation", "ReviewImage", "Success", ["moderation_finished"]),
    "function-url-workflow-json.json": ("processed", "workflow", None, "Failed", ["workflow_finished"]),
}


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch):
    """main_handler reads settings from the environment: make it the defaults, then forget them."""
    for name in list(os.environ):
        if name.startswith("CI_CALLBACK_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CI_CALLBACK_ACTIONS", NO_ACTIONS)
    monkeypatch.setenv("CI_CALLBACK_TOKENS", f"old-token,{TOKEN}")
    settings_module.reset_settings()
    yield
    settings_module.reset_settings()
    log.set_level("INFO")


def load(name_or_path, token=True) -> dict:
    """An event file, with our token added to its query (as CI sends ``?token=…``)."""
    path = name_or_path if hasattr(name_or_path, "read_text") else EVENTS / name_or_path
    event = json.loads(path.read_text(encoding="utf-8"))
    return authorized(event) if token else event


def authorized(event: dict) -> dict:
    return events.with_token(event, TOKEN)


def body_of(event: dict) -> bytes:
    return events.body_of(event)


def post(body, content_type="application/json", **extra) -> dict:
    event = {"httpMethod": "POST", "path": "/", "headers": {"content-type": content_type}, "body": body,
             "queryString": {"token": TOKEN}}
    event.update(extra)
    return event


def check(out: dict, status: int) -> dict:
    """Well-formed integrated response: JSON string body with ok/status/reason."""
    assert set(out) == {"isBase64Encoded", "statusCode", "headers", "body"}
    assert out["statusCode"] == status, out["body"]
    assert out["isBase64Encoded"] is False
    assert out["headers"]["Content-Type"].startswith("application/json")
    assert isinstance(out["body"], str)
    out["body"].encode("utf-8")
    payload = json.loads(out["body"])
    assert {"ok", "status", "reason"} <= set(payload)
    assert payload["ok"] is (200 <= status < 300)
    assert isinstance(payload["reason"], str) and payload["reason"]
    assert "\n" not in payload["reason"]
    json.dumps(out)
    return payload


TOKEN = "test-token-0123456789"
NO_ACTIONS = "none"  # no known action name: Settings.actions is empty, so nothing touches COS
SETTINGS = Settings(tokens=(TOKEN,), actions=frozenset())


# ---------------------------------------------------------------- the project's sample events


def test_every_event_file_has_an_expectation():
    assert {p.name for p in EVENT_FILES} == set(EXPECTED)


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda p: p.stem)
def test_event_files_through_main_handler(path, capsys):
    out = main_handler(load(path), dict(CONTEXT))
    payload = check(out, 200)
    status, kind, tag, state, handlers = EXPECTED[path.name]
    assert payload["status"] == status
    assert (payload["kind"], payload["tag"], payload["state"]) == (kind, tag, state)
    assert payload["handlers"] == handlers
    assert isinstance(payload["actions"], list)
    assert payload["id"]
    # One single-line JSON log record for the invocation, carrying SCF's request id.
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    summary = [r for r in lines if r["msg"] == "callback"]
    assert len(summary) == 1
    assert summary[0]["request_id"] == CONTEXT["request_id"]
    assert summary[0]["status"] == 200


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda p: p.stem)
def test_event_files_without_context(path):
    payload = check(main_handler(load(path), None), 200)
    assert payload["status"] == EXPECTED[path.name][0]


def test_console_test_reason():
    payload = check(main_handler(load("function-url-console-test-json.json"), CONTEXT), 200)
    assert payload["status"] == "test"
    assert "test" in payload["reason"]


def test_valid_callback_nothing_matched_is_ignored():
    body = json.dumps({"EventName": "TaskFinish", "JobsDetail": {"JobId": "j9", "Tag": "Transcode", "State": "Running"}})
    payload = check(handle(post(body), settings=SETTINGS), 200)
    assert payload["status"] == "ignored"
    assert payload["handlers"] == ["nothing_to_do"]


# ---------------------------------------------------------------- user handlers


def test_user_handler_for_a_tag_runs_on_a_copy():
    before = [r.name for r in app.router.resolve(_smartcover())]
    mine = app.router.copy()
    seen = []

    @mine.on_job("SmartCover", state="Success")
    def announce(callback, inv):
        seen.append(callback.job_id)
        inv.record("announce", covers=[o.key for o in callback.outputs])

    payload = check(handle(load("apigw-smartcover-xml.json"), CONTEXT, router=mine), 200)
    assert payload["handlers"] == ["announce", "job_succeeded"]  # most specific first
    assert payload["actions"][0]["action"] == "announce"
    assert payload["actions"][0]["covers"]
    assert seen == [payload["id"]]
    # The global router is untouched.
    assert [r.name for r in app.router.resolve(_smartcover())] == before
    assert check(main_handler(load("apigw-smartcover-xml.json"), CONTEXT), 200)["handlers"] == ["job_succeeded"]


def test_user_handler_for_another_tag_does_not_run():
    mine = app.router.copy()
    mine.on_job("Transcode")(lambda callback, inv: inv.record("wrong"))
    payload = check(handle(load("apigw-smartcover-xml.json"), CONTEXT, router=mine), 200)
    assert payload["handlers"] == ["job_succeeded"]


def test_services_and_settings_reach_the_handler():
    mine = app.router.copy()
    got = {}

    @mine.on_workflow()
    def grab(callback, inv):
        got.update(request_id=inv.request_id, services=inv.services, settings=inv.settings, deadline=inv.deadline)

    services = types.SimpleNamespace(storage=types.SimpleNamespace(learn_regions=lambda named: None))  # no I/O: every action is off
    custom = Settings(max_body_bytes=64 * 1024, tokens=(TOKEN,), actions=frozenset())
    check(handle(load("apigw-workflow-xml.json"), {"request_id": "rid-1", "time_limit_in_ms": 3000},
                 settings=custom, router=mine, services=services), 200)
    assert got["request_id"] == "rid-1"
    assert got["services"] is services
    assert got["settings"] is custom
    assert got["deadline"] is not None


def _smartcover():
    from ci_callback import parse_callback

    return parse_callback(body_of(load("apigw-smartcover-xml.json")))


# ---------------------------------------------------------------- errors


INVALID_BODIES = {
    "empty": "",
    "whitespace": "  \n\t ",
    "plain-text": "hello world",
    "html": "<html><body>hi</body></html>",
    "json-array": "[1, 2, 3]",
    "json-empty": "{}",
    "json-string": '"TaskFinish"',
    "json-no-jobid": '{"EventName": "TaskFinish", "JobsDetail": {"State": "Success"}}',
    "json-two-jobs": '{"EventName": "TaskFinish", "JobsDetail": [{"JobId": "a"}, {"JobId": "b"}]}',
    "json-truncated": '{"EventName": "TaskFinish", "JobsDetail": {"JobId": "a"',
    "json-nan": '{"EventName": "TaskFinish", "JobsDetail": {"JobId": NaN}}',
    "json-deep": "[" * 50000 + "]" * 50000,
    "xml-truncated": "<Response><EventName>TaskFinish</EventName><JobsDetail>",
    "xml-multiline-error": "<Response>\n\n<JobsDetail>\n<JobId>a</JobId>\n</Oops>\n</Response>",
    "xml-dtd": '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]><Response>&x;</Response>',
    "xml-wrong-root": "<Error><Code>NoSuchKey</Code></Error>",
    "xml-empty-response": "<Response></Response>",
    "xml-no-runid": "<Response><EventName>WorkflowFinish</EventName><WorkflowExecution><State>Success</State>"
                    "</WorkflowExecution></Response>",
}


@pytest.mark.parametrize("body", INVALID_BODIES.values(), ids=INVALID_BODIES.keys())
def test_invalid_bodies_are_400_with_a_one_line_reason(body):
    payload = check(handle(post(body), CONTEXT, settings=SETTINGS), 400)
    assert payload == {"ok": False, "status": "rejected", "reason": payload["reason"]}
    assert len(payload["reason"]) <= 200


def test_invalid_base64_body_is_400():
    event = load("apigw-segment-xml-base64.json")
    event["body"] = event["body"][:-3] + "!!!"
    payload = check(handle(event, CONTEXT, settings=SETTINGS), 400)
    assert "base64" in payload["reason"]


def test_body_over_the_limit_is_413():
    event = load("apigw-smartcover-xml.json")
    small = Settings(max_body_bytes=100, tokens=(TOKEN,), actions=frozenset())
    payload = check(handle(event, CONTEXT, settings=small), 413)
    assert "100" in payload["reason"]
    event = load("apigw-segment-xml-base64.json")
    check(handle(event, CONTEXT, settings=small), 413)


def test_max_body_from_env(monkeypatch):
    monkeypatch.setenv("CI_CALLBACK_MAX_BODY_BYTES", "64")
    settings_module.reset_settings()
    check(main_handler(load("function-url-workflow-json.json"), CONTEXT), 413)
    assert Settings.from_env({"CI_CALLBACK_MAX_BODY_BYTES": "64"}).max_body_bytes == 64


@pytest.mark.parametrize("event", [None, [], "POST /", 0], ids=repr)
def test_non_dict_event_is_400(event):
    payload = check(main_handler(event, CONTEXT), 400)
    assert payload["status"] == "rejected"


def test_handler_exception_is_a_500_json_not_a_crash(capsys):
    mine = app.router.copy()

    @mine.on_job("SmartCover")
    def broken(callback, inv):
        raise RuntimeError("boom: secret detail\nsecond line")

    out = handle(load("apigw-smartcover-xml.json"), CONTEXT, router=mine)
    payload = check(out, 500)
    assert payload["status"] == "rejected"
    assert "boom" not in out["body"]  # internals stay in the log, not the response
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    errors = [r for r in records if r["level"] == "ERROR"]
    assert errors and errors[0]["error_type"] == "RuntimeError"
    assert "boom" in errors[0]["trace"]
    assert errors[0]["request_id"] == CONTEXT["request_id"]
    assert records[-1]["status"] == 500


def test_handler_exception_in_the_fallback_is_a_500():
    mine = app.router.copy()
    mine.fallback(lambda callback, inv: 1 / 0)
    body = json.dumps({"EventName": "TaskFinish", "JobsDetail": {"JobId": "j", "State": "Running"}})
    check(handle(post(body), CONTEXT, router=mine, settings=SETTINGS), 500)


@pytest.mark.parametrize("query, status", [({}, 401), ({"token": "wrong"}, 403), ({"token": "old-token"}, 200)])
def test_token_is_checked_before_anything_else(query, status):
    event = load("apigw-smartcover-xml.json", token=False)
    event["queryString"] = query
    payload = check(main_handler(event, CONTEXT), status)
    assert ("kind" in payload) is (status == 200)  # nothing parsed before the token passes


def test_get_is_405_with_allow():
    out = main_handler(dict(load("apigw-smartcover-xml.json"), httpMethod="GET",
                            requestContext={"httpMethod": "GET"}), CONTEXT)
    payload = check(out, 405)
    assert out["headers"]["Allow"] == "POST"
    assert "GET" in payload["reason"]


def test_captured_browser_get_is_405():
    path = SCF_EVENTS / "apigw-event-captured.json"
    if not path.exists():
        pytest.skip("shared apigw-event-captured.json not available")
    out = main_handler(load(path), CONTEXT)
    check(out, 405)
    assert out["headers"]["Allow"] == "POST"


def test_doc_sample_post_is_a_400_not_a_callback():
    path = SCF_EVENTS / "apigw-event-doc.json"
    if not path.exists():
        pytest.skip("shared apigw-event-doc.json not available")
    payload = check(main_handler(load(path), CONTEXT), 400)
    assert "not a CI callback" in payload["reason"]


def test_lone_surrogate_in_a_json_body_is_refused_without_crashing(monkeypatch):
    # A lone "\ud800" can be no CI job id and no COS key: 400, and the log line still writes.
    import io

    strict = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")  # like a real UTF-8 stdout
    monkeypatch.setattr(log, "_stream", strict)
    body = '{"EventName": "TaskFinish", "JobsDetail": {"JobId": "j\\ud800", "Tag": "T\\udfff", "State": "Success"}}'
    out = handle(post(body), CONTEXT, settings=SETTINGS)
    payload = check(out, 400)
    assert "surrogate" in payload["reason"]
    strict.flush()
    line = strict.buffer.getvalue().decode("utf-8").strip()
    assert json.loads(line)["status"] == 400


def test_paired_surrogate_escapes_are_accepted():
    body = '{"EventName": "TaskFinish", "JobsDetail": {"JobId": "j1", "Tag": "T", "State": "Success", "Operation": {"UserData": "\\ud83d\\ude00"}}}'
    out = handle(post(body), CONTEXT, settings=SETTINGS)
    check(out, 200)


# ---------------------------------------------------------------- CLI


def cli(*args, stdin=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CI_CALLBACK_")}
    env["CI_CALLBACK_ACTIONS"] = NO_ACTIONS
    env["CI_CALLBACK_TOKENS"] = TOKEN
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "handler"), str(ROOT / "dev")])
    return subprocess.run(
        [sys.executable, "-m", "ci_callback_dev.cli", *map(str, args)],
        cwd=ROOT, env=env, input=stdin, capture_output=True, timeout=60,
    )


def test_cli_parse_prints_the_model(tmp_path):
    body = tmp_path / "smartcover.xml"
    body.write_bytes(body_of(load("apigw-smartcover-xml.json")))
    done = cli("parse", body)
    assert done.returncode == 0, done.stderr
    model = json.loads(done.stdout)
    assert model["kind"] == "job"
    assert model["tag"] == "SmartCover"
    assert model["details"]["type"] == "SmartCoverResult"
    from ci_callback import parse_callback

    assert model == json.loads(json.dumps(parse_callback(body.read_bytes()).to_dict(), default=str))


def test_cli_parse_from_stdin():
    done = cli("parse", "-", stdin=body_of(load("function-url-workflow-json.json")))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["kind"] == "workflow"


@pytest.mark.parametrize(
    "content",
    [b"hello world", b"{}", b"<Response>\n<broken", b"", b"\xff\xfe\x00junk"],
    ids=["text", "empty-object", "bad-xml", "empty", "binary"],
)
def test_cli_parse_non_callback_exits_2_with_one_line(tmp_path, content):
    path = tmp_path / "body.bin"
    path.write_bytes(content)
    done = cli("parse", path)
    assert done.returncode == 2
    assert done.stdout == b""
    err = done.stderr.decode()
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err


def test_cli_parse_missing_file_exits_2(tmp_path):
    done = cli("parse", tmp_path / "nope.xml")
    assert done.returncode == 2
    assert done.stdout == b""
    assert done.stderr.decode().count("\n") == 1


def event_file(tmp_path, name) -> str:
    """A copy of an events/ file with our token in its query, for the CLI."""
    path = tmp_path / name
    path.write_text(json.dumps(load(name)), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda p: p.stem)
def test_cli_invoke_prints_pure_json(path, tmp_path):
    done = cli("invoke", event_file(tmp_path, path.name))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)  # nothing but the response on stdout
    payload = check(out, 200)
    assert payload["status"] == EXPECTED[path.name][0]
    logs = [json.loads(line) for line in done.stderr.decode().splitlines()]
    assert any(r["msg"] == "callback" for r in logs)  # logs went to stderr


def test_cli_invoke_with_context(tmp_path):
    done = cli("invoke", event_file(tmp_path, "apigw-transcode-failed-xml.json"), "--context", EVENTS / "context.json")
    assert done.returncode == 0, done.stderr
    check(json.loads(done.stdout), 200)
    logs = [json.loads(line) for line in done.stderr.decode().splitlines()]
    assert {r["request_id"] for r in logs} == {CONTEXT["request_id"]}
    assert any(r["level"] == "ERROR" and r["state"] == "Failed" for r in logs)  # job_failed's record
    assert logs[-1]["msg"] == "callback" and logs[-1]["status"] == 200


def test_cli_invoke_error_responses_are_still_json(tmp_path):
    event = tmp_path / "get.json"
    event.write_text(json.dumps({"httpMethod": "GET", "path": "/"}))
    done = cli("invoke", event)
    assert done.returncode == 0
    out = json.loads(done.stdout)
    check(out, 405)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(post("not a callback")))
    check(json.loads(cli("invoke", bad).stdout), 400)


def test_cli_invoke_unreadable_event_exits_2(tmp_path):
    path = tmp_path / "event.json"
    path.write_text("{not json")
    done = cli("invoke", path)
    assert done.returncode == 2
    assert done.stdout == b""
    assert done.stderr.decode().count("\n") == 1
