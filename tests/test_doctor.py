"""Contract of ``ci-callback doctor``: against the running function (its HTTP server on the local
COS), the local CI and a real sweep, it fails and names a queue whose callback points elsewhere,
with the connect line that fixes it, and passes once `connect --apply` wired it."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from ci_callback.settings import Settings, reset_settings
from ci_callback_dev.cli import main
from ci_callback_dev.doctor import check_url, doctor
from ci_callback_dev.localdemo import make_http_server
from conftest import BUCKET, REGION
from fake_ci import PIC_QUEUE, QUEUE, WORKFLOW
from test_connect import ELSEWHERE, SPEC, TOKEN  # the same wiring connect sets up


@pytest.fixture
def stack(cos, fake_ci, monkeypatch):
    """The function served over HTTP, the local CI with the spec's queues, env as a laptop has it."""
    for name, value in {"CI_CALLBACK_TOKENS": TOKEN, "CI_CALLBACK_CI_ENDPOINT": fake_ci.url,
                        "CI_CALLBACK_COS_ENDPOINT": cos.endpoint, "CI_CALLBACK_RECONCILE_SPEC": SPEC,
                        "TENCENTCLOUD_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    reset_settings()  # the sweep entry reads the container's cached settings
    server = make_http_server(Settings.from_env())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake_ci.add_queue(QUEUE, name="transcode-queue", notify=ELSEWHERE)
    fake_ci.add_queue(PIC_QUEUE, pic=True)
    fake_ci.add_workflow(WORKFLOW)
    host, port = server.server_address[:2]
    yield f"http://{host}:{port}/", fake_ci
    server.shutdown()
    reset_settings()


pytestmark = pytest.mark.usefixtures("logs_at_info")  # conftest: logs to stdout at INFO


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert TOKEN not in err  # the function's own log lines too
    return code, out


def test_doctor_names_the_queue_pointing_elsewhere_then_passes_once_wired(stack, capsys):
    url, ci = stack
    assert run(capsys, "reconcile", "--quiet")[0] == 0  # the timer's sweep: a fresh summary

    code, out = run(capsys, "doctor", "--url", url)
    assert code == 1
    line = next(line for line in out.splitlines() if QUEUE in line and "points at" in line)
    assert line.startswith("✗") and "https://old.example.com/cb" in line
    assert f"ci-callback connect --url {url} --queue {QUEUE} --bucket {BUCKET} --region {REGION} --apply" in line
    assert f"✗ pic_queue {PIC_QUEUE} ({BUCKET}): callbacks are Off" in out
    assert "✓ the sweep spec is valid (3 source(s))" in out
    assert out.count("the role lists its jobs") == 3
    assert "✓ the newest sweep summary is 0 min old (limit 60 min)" in out
    assert TOKEN not in out

    assert run(capsys, "connect", "--url", url, "--apply", "--allow-intranet")[0] == 0
    code, out = run(capsys, "doctor", "--url", url)
    assert code == 0, out
    assert "✗" not in out and out.rstrip().endswith("checks hold")
    assert f"✓ queue {QUEUE} ({BUCKET}) calls back to {url}?token=Zr0m… (TaskFinish, JSON)" in out
    assert f"✓ {url} without a token answers 401" in out
    assert "with the console test body answers 200 'test'" in out
    assert TOKEN not in out


def test_a_token_the_function_does_not_accept_fails_the_url_check(stack):
    url, _ = stack
    checks = check_url(url + "?token=wrong-token-1234")
    assert checks[0].ok and not checks[1].ok
    assert "answers 403" in checks[1].line and "wrong-token" not in checks[1].render()


def test_a_stale_sweep_and_a_role_that_cannot_list_fail(stack, capsys):
    url, ci = stack
    assert run(capsys, "reconcile", "--quiet")[0] == 0
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    ci.fail_next(403, times=50)
    checks = doctor(Settings.from_env(), url + f"?token={TOKEN}", SPEC, now=later)
    failed = [c.render() for c in checks if not c.ok]
    assert any("newest sweep summary is 120 min old (limit 60 min)" in line for line in failed)
    assert any(f"queue {QUEUE}" in line and "cannot list its jobs" in line and "doc 436/54011" in line
               or "not readable" in line for line in failed)


def test_an_invalid_spec_is_one_line(stack, capsys):
    url, _ = stack
    code, out = run(capsys, "doctor", "--url", url, "--spec", '{"reconcile": {"sources": []}}')
    assert code == 1
    assert "✗ the sweep spec is not valid: reconcile.sources must be a non-empty list" in out


def test_a_callback_left_unfinished_in_the_last_hour_is_listed_with_its_inspect_line(stack, cos):
    from ci_callback_dev.localcos import Fault
    from conftest import apigw_event, invoke
    from observe_scenario import job_body

    url, _ = stack
    job = "j00000000000000000000000000000a04"
    cos.client().put_object(Bucket=BUCKET, Key=f"out/{job}.mp4", Body=b"output")
    # COS fails the index write and its retries: archived, answered 503, not finished.
    cos.inject(Fault(status=503), when=lambda r: r.method == "PUT" and "/ci-index/" in r.path, times=3)
    status, _ = invoke(apigw_event(job_body(job, "Transcode"), token=TOKEN), Settings.from_env())
    cos.clear_faults()
    assert status == 503
    checks = doctor(Settings.from_env(), url + f"?token={TOKEN}", SPEC)
    lines = [c.render() for c in checks]
    assert f"✗ {BUCKET}: 1 callback(s) unfinished in the last hour" in lines
    assert any(line.startswith(f"✗   job {job}:") and f"fix: ci-callback inspect {job} --bucket {BUCKET}" in line
               for line in lines), lines
