"""Issue 13: replay and inspect together, on a fresh local COS per test (writes, unlike test_observe)."""

from __future__ import annotations

import json
import shlex

from conftest import TOKEN, apigw_event, invoke
from observe_scenario import job_body
from test_observe import cli, inspect_json

# ---------------------------------------------------------------- replay fixes what inspect points at


def test_the_fix_inspect_prints_fixes_it(cos, settings, capsys, monkeypatch):
    """Unfinished after a COS outage → run the printed replay command → processed."""
    from ci_callback_dev.localcos import Fault

    monkeypatch.setenv("CI_CALLBACK_COS_ENDPOINT", cos.endpoint)
    monkeypatch.setenv("CI_CALLBACK_TOKENS", TOKEN)
    job = "j0000000000000000000000000000b001"
    cos.inject(Fault(status=503), when=lambda r: r.method == "PUT" and "/ci-index/" in r.path, times=3)
    status, _ = invoke(apigw_event(job_body(job, "Transcode")), settings)
    cos.clear_faults()
    assert status == 503
    story = inspect_json(capsys, job)
    assert story["verdict"]["outcome"] == "unfinished"
    argv = shlex.split(story["verdict"]["fix"])
    assert argv[0] == "ci-callback"
    code, out, err = cli(capsys, *argv[1:], "--quiet")
    assert code == 0, err
    assert [r["outcome"] for r in json.loads(out)] == ["processed"]
    assert inspect_json(capsys, job)["verdict"]["outcome"] == "processed"


