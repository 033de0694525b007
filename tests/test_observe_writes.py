"""Issue 13 on a fresh local COS per test (these write): replay fixes what inspect points at, a real
Ctrl-C, runs and reviews, and records other features write (sweep summaries, checkpoints)."""

from __future__ import annotations

import json
import shlex
from typing import Any, Dict

import pytest

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




# ---------------------------------------------------------------- records other features write, by their agreed keys


def _put(cos, key: str, document: Dict[str, Any]) -> None:
    from conftest import BUCKET

    cos.client().put_object(Bucket=BUCKET, Key=key, Body=json.dumps(document).encode("utf-8"))


def test_report_lists_the_sweep_summaries_of_the_window(cos, settings, capsys, monkeypatch):
    from datetime import datetime, timedelta, timezone

    from conftest import BUCKET

    monkeypatch.setenv("CI_CALLBACK_COS_ENDPOINT", cos.endpoint)
    now = datetime.now(timezone.utc)
    recent, old = now - timedelta(minutes=5), now - timedelta(days=3)
    _put(cos, f"ci-index/sweeps/{recent:%Y-%m-%d}/{recent:%H%M%S}-sweep-1.json",
         {"schema": 1, "request_id": "sweep-1", "listed": 40, "final": 38, "recovered": 2, "complete": True})
    _put(cos, f"ci-index/sweeps/{old:%Y-%m-%d}/{old:%H%M%S}-sweep-0.json", {"schema": 1, "listed": 9})
    code, out, _ = cli(capsys, "report", "--bucket", BUCKET, "--since", "1h", "--json", "--quiet")
    assert code == 0
    sweeps = json.loads(out)["sweeps"]
    assert [(s["request_id"], s["listed"], s["recovered"]) for s in sweeps] == [("sweep-1", 40, 2)]
    code, out, _ = cli(capsys, "report", "--bucket", BUCKET, "--since", "1h", "--quiet")
    assert "Sweeps" in out and "sweep-1" in out


def test_inspect_shows_a_checkpoint_next_to_the_lease_markers(cos, settings, capsys, monkeypatch):
    """A continuation's checkpoint (long jobs split over invocations) is part of the story."""
    from conftest import BUCKET

    monkeypatch.setenv("CI_CALLBACK_COS_ENDPOINT", cos.endpoint)
    monkeypatch.setenv("CI_CALLBACK_TOKENS", TOKEN)
    job = "j0000000000000000000000000000c001"
    status, _ = invoke(apigw_event(job_body(job, "Transcode")), settings)
    assert status == 200
    _put(cos, f"ci-markers/job/{job}/Success/checkpoint.json", {"schema": 1, "next": 5, "of": 9})
    story = inspect_json(capsys, job)
    assert [c["key"] for c in story["continuations"]] == [f"ci-markers/job/{job}/Success/checkpoint.json"]
    assert story["continuations"][0]["body"] == {"schema": 1, "next": 5, "of": 9}
    code, out, _ = cli(capsys, "inspect", job, "--bucket", BUCKET)
    assert "Continuations" in out and "checkpoint.json" in out
    assert story["verdict"]["outcome"] == "processed"


@pytest.mark.parametrize("event, kind, callback_id, found", [
    ("apigw-workflow-xml.json", "workflow", "i1a2b3c4d5e6f11ee9f0a52540000000a", ["run manifest", "latest-run pointer"]),
    ("apigw-review-simple-json.json", "moderation", "si1a2b3c4d5e6f11ee9f0a525400000012", ["review record"]),
])
def test_inspect_finds_runs_and_reviews_by_their_id(cos, settings, capsys, monkeypatch, event, kind, callback_id, found):
    from test_actions import deliver_event

    monkeypatch.setenv("CI_CALLBACK_COS_ENDPOINT", cos.endpoint)
    status, _ = deliver_event(event, settings)
    assert status == 200
    story = inspect_json(capsys, callback_id)
    assert story["kind"] == kind
    assert [d["what"] for d in story["index"] if d["found"]] == found
    assert story["verdict"]["outcome"] == "processed"
    assert story["outputs"] == []


def test_ctrl_c_on_a_real_replay_leaves_nothing_half_written(cos, settings):
    """SIGINT to ``ci-callback replay``: it stops between callbacks, exits 130, prints what it
    did; every callback is either processed (done marker) or untouched (no lease left)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from ci_callback import log
    from ci_callback_dev.localcos import Fault
    from conftest import BUCKET, ROOT
    from test_actions import list_keys

    log.set_stream(open(os.devnull, "w"))
    jobs = [f"j0000000000000000000000000000d{n:03d}" for n in range(40)]
    # 403 is not retried: each delivery fails fast (still a 503 for CI, after archiving).
    cos.inject(Fault(status=403), when=lambda r: r.method == "PUT" and "/ci-index/" in r.path, times=None)
    for job in jobs:
        assert invoke(apigw_event(job_body(job, "Transcode", input_key=f"videos/{job}.mp4")), settings)[0] == 503
    cos.clear_faults()
    log.set_stream(None)
    env = {**os.environ, "CI_CALLBACK_COS_ENDPOINT": cos.endpoint, "CI_CALLBACK_TOKENS": TOKEN,
           "PYTHONPATH": os.pathsep.join([str(ROOT / "dev"), str(ROOT / "handler")])}
    cos.inject(Fault(delay=0.02), times=None)  # a slower COS, so the run is still going when interrupted
    proc = subprocess.Popen([sys.executable, "-m", "ci_callback_dev.cli", "replay", "--bucket", BUCKET, "--prefix", "job/"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(k.endswith("/done.json") for k in list_keys(cos, BUCKET, "ci-markers/")):  # one is through
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    results = json.loads(out)
    assert 0 < len(results) < len(jobs)
    assert {r["outcome"] for r in results} == {"processed"}
    assert f"stopped after {len(results)} of {len(jobs)}" in err
    markers = list_keys(cos, BUCKET, "ci-markers/")
    done = {k.split("/")[2] for k in markers if k.endswith("/done.json")}
    leased = {k.split("/")[2] for k in markers if "/lease-" in k}
    assert len(done) == len(results) and leased == done  # no lease without its done marker
