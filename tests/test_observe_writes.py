"""Issue 13 on a fresh local COS per test (these write): replay fixes what inspect points at, a real
Ctrl-C, runs and reviews, and records other features write (sweep summaries, checkpoints)."""

from __future__ import annotations

import io
import json
import re
import shlex
import time
from typing import Any

import pytest

from conftest import BUCKET, TOKEN, apigw_event, invoke
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


def _put(cos, key: str, document: dict[str, Any]) -> None:
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


def test_inspect_shows_a_chain_of_continuations(cos, settings, capsys, monkeypatch):
    """A job too big for one invocation (issue 12): its checkpoint beside the lease markers while
    the chain runs, the steps in the done marker once it finished."""
    import time as clock

    monkeypatch.setenv("CI_CALLBACK_COS_ENDPOINT", cos.endpoint)
    job = "j0000000000000000000000000000c001"
    base = f"ci-markers/job/{job}/Success/"
    status, _ = invoke(apigw_event(job_body(job, "Transcode")), settings)
    assert status == 200
    # Mid-chain: the done marker is not there yet, the lease is renewed, the checkpoint says how far.
    cos.client().delete_object(Bucket=BUCKET, Key=f"{base}done.json")
    _put(cos, f"{base}lease-1.json", {"status": "in-progress", "owner": "step-2", "nonce": "n",
                                      "expires_at": clock.time() + 300})
    checkpoint = {"schema": "ci-callback/checkpoint/1", "kind": "job", "id": job, "state": "Success", "step": 2,
                  "tasks": {"total": 3003, "index": 3, "cursor": 1200, "ahead": [1203], "done": 1201},
                  "status": "continuing"}
    _put(cos, f"{base}checkpoint.json", checkpoint)
    story = inspect_json(capsys, job)
    assert [c["key"] for c in story["continuations"]] == [f"{base}checkpoint.json"]
    assert story["continuations"][0]["summary"] == "step 2, 1201 of 3003 tasks done (continuing)"
    assert story["verdict"]["outcome"] == "processing"
    assert story["verdict"]["line"].startswith("processing (continuing: step 2, 1201 of 3003 tasks done (continuing); ")

    # The chain broke (lease expired, checkpoint left): replay resumes it.
    _put(cos, f"{base}lease-1.json", {"status": "in-progress", "owner": "step-2", "nonce": "n", "expires_at": 1})
    story = inspect_json(capsys, job)
    assert story["verdict"]["outcome"] == "unfinished" and "replay resumes it" in story["verdict"]["line"]

    # Finished: the last step wrote done (with the step count) and deleted the checkpoint.
    cos.client().delete_object(Bucket=BUCKET, Key=f"{base}checkpoint.json")
    _put(cos, f"{base}done.json", {"status": "done", "request_id": "step-3", "source": "continuation", "steps": 3,
                                   "notify": {"ran": False}})
    story = inspect_json(capsys, job)
    assert story["verdict"]["outcome"] == "processed"
    assert [c["summary"] for c in story["continuations"]] == ["finished in 3 steps (2 continuation(s))"]
    code, out, _ = cli(capsys, "inspect", job, "--bucket", BUCKET)
    assert "Continuations" in out and "finished in 3 steps" in out


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
    assert "interrupted: finishing the item in flight" in err
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f]", out + err)  # a pipe: plain lines only
    markers = list_keys(cos, BUCKET, "ci-markers/")
    done = {k.split("/")[2] for k in markers if k.endswith("/done.json")}
    leased = {k.split("/")[2] for k in markers if "/lease-" in k}
    assert len(done) == len(results) and leased == done  # no lease without its done marker


# ---------------------------------------------------------------- the per-delivery record (runtime)


def test_notify_is_recorded_in_the_done_marker_and_inspect_shows_it(cos, settings, capsys, monkeypatch):
    from fake_scf import FakeSCF

    monkeypatch.setenv("CI_CALLBACK_COS_ENDPOINT", cos.endpoint)
    job = "j0000000000000000000000000000e001"
    with FakeSCF("AKIDlocaltest", "localtestkey", token="localtesttoken") as scf:
        notifying = settings.replace(notify_function="downstream", scf_endpoint=scf.endpoint)
        status, payload = invoke(apigw_event(job_body(job, "Transcode")), notifying)
        assert (status, payload["status"]) == (200, "processed")
        [call] = scf.invocations
    story = inspect_json(capsys, job)
    assert story["notify"]["ran"] is True and story["notify"]["function"] == "downstream"
    assert story["notify"]["request_id"] == call.function_request_id
    assert story["notify"]["event_id"] == call.client_context["event_id"]  # what the consumer dedupes on
    code, out, _ = cli(capsys, "inspect", job, "--bucket", BUCKET)
    assert f"Notify: ran (downstream), event_id {call.client_context['event_id']}, request {call.function_request_id}" in out


def test_a_lost_delivery_record_never_fails_the_callback(cos, settings, capsys):
    """The record is for counting; the archived body is what must be safe. A WARN, and on."""
    from ci_callback import log
    from ci_callback_dev.localcos import Fault
    from test_actions import list_keys

    lines = io.StringIO()
    log.set_stream(lines)
    try:
        cos.inject(Fault(status=403), when=lambda r: r.method == "PUT" and "/deliveries/" in r.path, times=None)
        status, payload = invoke(apigw_event(job_body("j0000000000000000000000000000e002", "Transcode")), settings)
        cos.clear_faults()
    finally:
        log.set_stream(None)
    assert (status, payload["status"]) == (200, "processed")
    assert not [k for k in list_keys(cos, BUCKET, "ci-inbox/") if "/deliveries/" in k]
    warned = [json.loads(line) for line in lines.getvalue().splitlines() if '"delivery record not written"' in line]
    assert warned and warned[0]["level"] == "WARN"


def test_the_delivery_record_is_written_beside_the_archive_not_after_it(cos, settings):
    """Both writes in flight at once: a slow COS costs one slow round trip, not two."""
    from ci_callback_dev.localcos import Fault

    slow = 0.4
    cos.inject(Fault(delay=slow), when=lambda r: r.method == "PUT" and r.path.startswith("/ci-inbox/"), times=None)
    started = time.monotonic()
    status, _ = invoke(apigw_event(job_body("j0000000000000000000000000000e003", "Transcode")), settings)
    elapsed = time.monotonic() - started
    cos.clear_faults()
    assert status == 200
    inbox_puts = [r for r in cos.requests if r.method == "PUT" and r.path.startswith("/ci-inbox/")]
    assert len(inbox_puts) == 2 and any("/deliveries/" in r.path for r in inbox_puts)
    assert elapsed < 2 * slow, f"{elapsed:.2f} s: the two inbox writes ran one after the other"


def test_delivery_records_name_what_a_count_needs(cos, settings):
    from ci_callback import keys
    from test_actions import list_keys, read_json

    job = "j0000000000000000000000000000e004"
    body = job_body(job, "Transcode")
    for request_id in ("ci-try-1", "ci-try-2"):
        invoke(apigw_event(body), settings, {"request_id": request_id, "time_limit_in_ms": 10000})
    records = [k for k in list_keys(cos, BUCKET, f"ci-inbox/job/{job}/") if keys.is_delivery_key("ci-inbox/", k)]
    assert len(records) == 2
    names = sorted((keys.parse_delivery_key("ci-inbox/", k) for k in records), key=lambda n: n.received_at)
    assert [(n.kind, n.callback_id, n.source, n.state, n.request_id) for n in names] == [
        ("job", job, "url", "Success", "ci-try-1"), ("job", job, "url", "Success", "ci-try-2")]
    document = read_json(cos, BUCKET, records[0])
    assert set(document) == {"schema", "kind", "id", "state", "received_at", "source", "request_id", "sha256",
                             "archive_key"}
    assert document["archive_key"].startswith(f"ci-inbox/job/{job}/Success-")
    assert document["sha256"][:16] in document["archive_key"]


def test_replay_records_its_source_and_never_replays_a_delivery_record(cos, settings, capsys, monkeypatch):
    from ci_callback.adapters.services import Services
    from ci_callback.durable.replay import select

    monkeypatch.setenv("CI_CALLBACK_COS_ENDPOINT", cos.endpoint)
    monkeypatch.setenv("CI_CALLBACK_TOKENS", TOKEN)
    job = "j0000000000000000000000000000e005"
    invoke(apigw_event(job_body(job, "Transcode")), settings)
    selected = list(select(Services(settings).storage, BUCKET, settings, f"job/{job}/"))
    assert len(selected) == 1 and "/deliveries/" not in selected[0]
    code, out, err = cli(capsys, "replay", "--bucket", BUCKET, "--prefix", f"job/{job}/", "--quiet", "--force")
    assert code == 0, err
    story = inspect_json(capsys, job)
    assert [d["source"] for d in story["deliveries"]] == ["url", "replay"]
    assert story["deliveries"][1]["request_id"] == f"replay:{selected[0]}"


def test_a_bucket_from_before_delivery_records_is_read_from_the_archive(cos, settings, capsys, monkeypatch):
    from test_actions import list_keys

    monkeypatch.setenv("CI_CALLBACK_COS_ENDPOINT", cos.endpoint)
    job = "j0000000000000000000000000000e006"
    invoke(apigw_event(job_body(job, "Transcode")), settings)
    for key in [k for k in list_keys(cos, BUCKET, "ci-inbox/") if "/deliveries/" in k]:
        cos.client().delete_object(Bucket=BUCKET, Key=key)
    story = inspect_json(capsys, job)
    assert story["deliveries_recorded"] is False
    assert [(d["source"], d["recorded"]) for d in story["deliveries"]] == [("url", False)]
    code, out, _ = cli(capsys, "report", "--bucket", BUCKET, "--since", "1h", "--json", "--quiet")
    data = json.loads(out)
    assert data["callbacks_without_delivery_records"] == 1 and data["duplicates"] == 0


# ---------------------------------------------------------------- reconcile from a laptop: progress and Ctrl-C


def _lost_jobs(cos, ci, count: int) -> list:
    """COUNT final jobs CI lists whose callbacks never came."""
    from datetime import datetime, timedelta, timezone

    from fake_ci import QUEUE

    now = datetime.now(timezone.utc)
    jobs = [f"j0000000000000000000000000000f{n:03d}" for n in range(count)]
    for n, job in enumerate(jobs):
        cos.client().put_object(Bucket=BUCKET, Key=f"out/{job}.mp4", Body=b"x")
        ci.add_job(job, "Transcode", "Success", BUCKET, f"videos/{job}.mp4", outputs=[(BUCKET, "ap-guangzhou",
                   f"out/{job}.mp4")], queue_id=QUEUE, created=now - timedelta(minutes=10, seconds=n))
    return jobs


@pytest.fixture(autouse=True)
def _fresh_settings():
    """reconcile reads its settings from the environment once per container: not across tests."""
    from ci_callback.settings import reset_settings

    reset_settings()
    yield
    reset_settings()


def _spec() -> str:
    from fake_ci import QUEUE

    return json.dumps({"reconcile": {"lookback_minutes": 60, "settle_minutes": 0, "inbox": False, "page_size": 5,
                                     "sources": [{"bucket": BUCKET, "region": "ap-guangzhou", "queue": QUEUE,
                                                  "tags": ["Transcode"]}]}})


def test_reconcile_shows_plain_progress_in_a_pipe(cos, fake_ci, capsys, monkeypatch):
    monkeypatch.setenv("CI_CALLBACK_COS_ENDPOINT", cos.endpoint)
    monkeypatch.setenv("CI_CALLBACK_CI_ENDPOINT", fake_ci.url)
    monkeypatch.setenv("CI_CALLBACK_TOKENS", TOKEN)
    jobs = _lost_jobs(cos, fake_ci, 6)
    code, out, err = cli(capsys, "reconcile", "--spec", _spec())
    assert code == 0, err
    result = json.loads(out)
    assert (result["status"], result["processed"]) == ("complete", len(jobs))
    assert "reconcile: records driven through the pipeline: done, 6," in err
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f]", out + err)
    story = inspect_json(capsys, jobs[0])
    assert story["verdict"]["outcome"] == "processed" and story["deliveries"][0]["source"] == "reconcile"


def test_ctrl_c_stops_the_sweep_between_records_and_it_resumes(cos, fake_ci, monkeypatch):
    """First Ctrl-C: the sweep acts as if its deadline had come (the record in flight
    finishes, the cursor and the summary are written); the next run resumes and finishes."""
    import os
    import signal
    from datetime import datetime, timezone

    from ci_callback import log
    from ci_callback_dev.progress import Progress
    from ci_callback_dev.runs import reconcile_once
    from test_actions import list_keys

    monkeypatch.setenv("CI_CALLBACK_COS_ENDPOINT", cos.endpoint)
    monkeypatch.setenv("CI_CALLBACK_CI_ENDPOINT", fake_ci.url)
    monkeypatch.setenv("CI_CALLBACK_TOKENS", TOKEN)
    jobs = _lost_jobs(cos, fake_ci, 12)

    class CtrlCAfterFirst(Progress):
        def advance(self, n: int = 1) -> None:
            super().advance(n)
            if self.done == 1:
                os.kill(os.getpid(), signal.SIGINT)  # while the sweep is still going

    def timer() -> dict:
        return {"Type": "Timer", "TriggerName": "cli", "Message": _spec(),
                "Time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}

    lines = io.StringIO()
    try:
        result, interrupted = reconcile_once(timer(), {"request_id": "cli-1"}, CtrlCAfterFirst(lines, live=False),
                                             stream=lines)
    finally:
        log.set_stream(None)
    assert interrupted and result["status"] == "partial", result
    assert 1 <= result["processed"] < len(jobs)
    assert "finishing the record in flight, then keeping the cursor" in lines.getvalue()
    assert [k for k in list_keys(cos, BUCKET, "ci-markers/_sweep/") if k.endswith("/cursor.json")]
    done = {k.split("/")[2] for k in list_keys(cos, BUCKET, "ci-markers/job/") if k.endswith("/done.json")}
    leased = {k.split("/")[2] for k in list_keys(cos, BUCKET, "ci-markers/job/") if "/lease-" in k}
    assert len(done) == result["processed"] and leased == done  # nothing half-done

    try:
        again, interrupted = reconcile_once(timer(), {"request_id": "cli-2"}, Progress.quiet(), stream=io.StringIO())
    finally:
        log.set_stream(None)
    assert not interrupted and again["status"] == "complete"
    assert again["processed"] + result["processed"] == len(jobs)
    assert len(list_keys(cos, BUCKET, "ci-index/sweeps/")) == 2  # one summary per run, the partial one too


def test_a_large_jobs_story_counts_its_outputs_and_lists_what_needs_a_look(cos, settings, capsys, monkeypatch):
    monkeypatch.setenv("CI_CALLBACK_COS_ENDPOINT", cos.endpoint)
    job = "j0000000000000000000000000000e007"
    outputs = [f"out/many-{n:02d}.jpg" for n in range(25)]
    for key in outputs[:-2]:  # the last two were never written
        cos.client().put_object(Bucket=BUCKET, Key=key, Body=b"x")
    assert invoke(apigw_event(job_body(job, "Snapshot", outputs=outputs)), settings)[0] == 200
    code, out, _ = cli(capsys, "inspect", job, "--bucket", BUCKET)
    assert "Outputs (25)\n  2 missing, 23 tagged\n" in out
    assert out.count("missing      ") == 2 and "tagged       " not in out
    assert len(inspect_json(capsys, job)["outputs"]) == 25


def test_one_unreadable_object_does_not_end_a_report(cos, settings, capsys, monkeypatch):
    from ci_callback_dev.localcos import Fault

    monkeypatch.setenv("CI_CALLBACK_COS_ENDPOINT", cos.endpoint)
    jobs = ["j0000000000000000000000000000e008", "j0000000000000000000000000000e009"]
    for job in jobs:
        assert invoke(apigw_event(job_body(job, "Transcode")), settings)[0] == 200
    cos.inject(Fault(status=403), when=lambda r: r.method == "GET" and r.path.startswith(f"/ci-inbox/job/{jobs[0]}/"),
               times=None)
    code, out, _ = cli(capsys, "report", "--bucket", BUCKET, "--since", "1h", "--json", "--quiet")
    code_text, text, _ = cli(capsys, "report", "--bucket", BUCKET, "--since", "1h", "--quiet")
    cos.clear_faults()
    assert code == code_text == 0
    data = json.loads(out)
    assert data["callbacks"] == 2 and len(data["unreadable"]) == 1 and jobs[0] in data["unreadable"][0]
    assert "1 object(s) could not be read and count as absent" in text
