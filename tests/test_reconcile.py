"""The reconcile sweep end to end: timer events through the handler, against the fake CI's list
APIs (signature recomputed, paging, mixed states) and a real local COS.

* a CI that lists jobs whose callbacks never arrived: the sweep leaves every final job indexed
  and tagged exactly as its callback would; a second sweep changes nothing;
* a job a real callback processed costs one marker check;
* running jobs are left alone, and taken once they finish;
* a sweep racing a late callback runs the actions (and the notify) once;
* out of time: the cursor is kept in COS and the next timer run resumes;
* the inbox: an archived callback answered 503 and never retried is replayed;
* no request carries If-None-Match.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest

from ci_callback import keys
from ci_callback import settings as settings_module
from ci_callback.app import handle, main_handler
from ci_callback.reconcile import run as reconcile
from ci_callback.settings import Settings
from ci_callback_dev.localcos import Fault, LocalCOS
from conftest import BUCKET, REGION, TOKEN, apigw_event, invoke
from fake_ci import PIC_QUEUE, QUEUE, WORKFLOW, FakeCI
from fake_scf import FakeSCF

SECRET_ID = "AKIDlocaltest"
SECRET_KEY = "localtestkey"
NOW = datetime.now(timezone.utc).replace(microsecond=0)
SPEC = {"reconcile": {"lookback_minutes": 180, "settle_minutes": 0, "inbox_age_minutes": 0, "page_size": 2,
                      "sources": [
                          {"bucket": BUCKET, "region": REGION, "queue": QUEUE, "tags": ["SmartCover", "Transcode"]},
                          {"bucket": BUCKET, "region": REGION, "pic_queue": PIC_QUEUE},
                          {"bucket": BUCKET, "region": REGION, "workflow": WORKFLOW}]}}
CONTEXT = {"request_id": "sweep-1", "time_limit_in_ms": 60000}


pytestmark = pytest.mark.usefixtures("logs_at_info")  # conftest: logs to stdout at INFO


@pytest.fixture
def swept(settings, fake_ci):
    return settings.replace(ci_endpoint=fake_ci.url)


def timer(spec=SPEC) -> dict:
    return {"Type": "Timer", "TriggerName": "ci-callback-reconcile", "Time": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Message": json.dumps(spec)}


def sweep_once(settings, request_id="sweep-1", spec=SPEC, **kwargs) -> dict:
    result = handle(timer(spec), dict(CONTEXT, request_id=request_id), settings=settings, **kwargs)
    if result["status"] != "rejected":  # every record listed or archived ends in exactly one count
        assert result["listed"] + result["archived"] == (
            result["already_done"] + result["processed"] + result["failed"] + result["skipped"]), result
        assert sum(result["reasons"].values()) == result["skipped"] or "dedupe-disabled" in result["reasons"]
    return result


def outputs_of(i: int) -> list:
    return [(BUCKET, REGION, f"out/job-{i}-{n}.jpg") for n in range(2)]


def seed_ci(cos: LocalCOS, ci: FakeCI) -> dict:
    """Jobs in every state on both queues, and runs: what CI would list. Returns id -> expectation."""
    client = cos.client()
    expected = {}
    states = ["Success", "Running", "Failed", "Success", "Cancel", "Submitted", "Pause", "Success"]
    for i, state in enumerate(states):
        tag = "SmartCover" if i % 2 else "Transcode"
        job_id = f"j{i:031x}a"
        for _, _, key in outputs_of(i):
            client.put_object(Bucket=BUCKET, Key=key, Body=b"x")
        ci.add_job(job_id, tag, state, BUCKET, f"in/video {i}.mp4", outputs=outputs_of(i),
                   created=NOW - timedelta(minutes=20 + i))
        expected[job_id] = state
    for i in range(2):
        ci.add_job(f"c{i:031x}b", "PicProcess", "Success", BUCKET, f"in/pic-{i}.jpg",
                   outputs=[(BUCKET, REGION, f"out/pic-{i}.webp")], created=NOW - timedelta(minutes=30))
        client.put_object(Bucket=BUCKET, Key=f"out/pic-{i}.webp", Body=b"x")
        expected[f"c{i:031x}b"] = "Success"
    ci.add_run("i" + "1" * 32, "Success", "wk/game.mp4", workflow_id=WORKFLOW,
               tasks=[("Transcode", "j" + "7" * 32, "Success")], created=NOW - timedelta(minutes=15))
    expected["i" + "1" * 32] = "Success"
    # Old news: created long before the padded window, never listed.
    ci.add_job("j" + "e" * 32, "Transcode", "Success", BUCKET, "in/old.mp4", created=NOW - timedelta(days=2))
    return expected


def snapshot(cos: LocalCOS, *, effects_only: bool = False) -> dict:
    """Every object's (ETag, tags); with effects_only, just what actions write (no inbox, markers, sweeps)."""
    client = cos.client()
    found = {}
    page = client.list_objects(Bucket=BUCKET, MaxKeys=1000)
    contents = page.get("Contents") or []
    for item in [contents] if isinstance(contents, dict) else contents:
        key = item["Key"]
        if effects_only and key.startswith(("ci-inbox/", "ci-markers/", "ci-index/sweeps/")):
            continue
        tags = (client.get_object_tagging(Bucket=BUCKET, Key=key).get("TagSet") or {}).get("Tag") or []
        tags = [tags] if isinstance(tags, dict) else tags
        body = client.get_object(Bucket=BUCKET, Key=key)["Body"].get_raw_stream().read()
        found[key] = (body if key.startswith("ci-index/") else item["ETag"], sorted((t["Key"], t["Value"]) for t in tags))
    return found


def callback_xml(ci: FakeCI, job_id: str) -> str:
    detail = ci.job_element(ci._jobs[job_id])
    return f"<Response><EventName>TaskFinish</EventName>{detail}</Response>"


def sweep_lines(out: str) -> list:
    return [json.loads(line) for line in out.splitlines() if line.strip() and json.loads(line).get("msg") == "sweep"]


# ---------------------------------------------------------------- the done criterion


def test_a_sweep_recovers_every_lost_callback_exactly_as_the_callbacks_would(cos, swept, fake_ci, capsys):
    expected = seed_ci(cos, fake_ci)
    finals = {i for i, s in expected.items() if s in ("Success", "Failed", "Cancel")}
    result = sweep_once(swept)
    assert result["status"] == "complete", result
    assert result["listed"] == len(expected) and result["processed"] == len(finals)
    assert result["failed"] == 0 and result["already_done"] == 0
    assert result["reasons"] == {"running": 3}  # Running, Submitted, Pause: left alone
    [line] = sweep_lines(capsys.readouterr().out)
    assert line["processed"] == len(finals) and line["status"] == "complete"
    # Every CI call was a signed list or get; pages of 2 followed NextToken.
    assert all(r.status == 200 for r in fake_ci.requests)
    lists = [r for r in fake_ci.requests if r.path in ("/jobs", "/pic_jobs", "/workflowexecution")]
    assert {r.query["orderByTime"] for r in lists} == {"Asc"} and all(r.query["size"] == "2" for r in lists)
    assert len([r for r in lists if r.query.get("tag") == "Transcode"]) == 2  # 4 jobs, 2 per page
    assert [r.path for r in fake_ci.requests if r.path.startswith("/workflowexecution/")] == [
        "/workflowexecution/" + "i" + "1" * 32]
    swept_state = snapshot(cos, effects_only=True)
    # The archive records where each one came from.
    archived = [k for k in snapshot(cos) if k.startswith("ci-inbox/") and "/deliveries/" not in k]
    assert len(archived) == len(finals)
    deliveries = [k for k in snapshot(cos) if "/deliveries/" in k]  # one record per delivery, source in its name
    assert len(deliveries) == len(finals) and all("-reconcile-" in k.rsplit("/", 1)[-1] for k in deliveries)
    assert {json.loads(cos.client().get_object(Bucket=BUCKET, Key=k)["Body"].get_raw_stream().read())["source"]
            for k in archived} == {"reconcile"}

    # A second sweep changes nothing (but its own summary) and costs one marker check per final job.
    def without_summaries(state):
        return {k: v for k, v in state.items() if not k.startswith(("ci-index/sweeps/", "ci-markers/_sweep/"))}

    before = without_summaries(snapshot(cos))
    cos.reset_requests()
    again = sweep_once(swept, request_id="sweep-2")
    # Incremental: jobs created before the first open one are below the watermark, not listed; the
    # inbox checks once the archives written after the first sweep began (too young for it then).
    assert (again["processed"], again["failed"]) == (0, 0) and again["already_done"] <= len(finals) + len(archived)
    assert without_summaries(snapshot(cos)) == before
    writes = [r for r in cos.requests if r.method in ("PUT", "POST", "DELETE") and "sweep" not in r.path]
    assert writes == []

    # The same jobs delivered as callbacks, on a fresh COS, leave the same indexes and tags.
    cos.stop()
    with LocalCOS() as fresh:
        fresh.create_bucket(BUCKET)
        for key in swept_state:
            if not key.startswith("ci-"):
                fresh.client().put_object(Bucket=BUCKET, Key=key, Body=b"x")
        direct = swept.replace(cos_endpoint=fresh.endpoint)
        for ident in sorted(finals):
            if ident in fake_ci._runs:  # a WorkflowFinish callback names its bucket and region
                body = fake_ci.run_xml(fake_ci._runs[ident], "r").replace(
                    "<WorkflowExecution>", f"<WorkflowExecution><BucketId>{BUCKET}</BucketId><Region>{REGION}</Region>", 1)
                body = body.replace("<Response>", "<Response><EventName>WorkflowFinish</EventName>", 1)
            else:
                body = callback_xml(fake_ci, ident)
            status, payload = invoke(apigw_event(body), direct)
            assert (status, payload["status"]) == (200, "processed"), payload
        # Equal but for what the listing cannot know: the swept documents say so (docs/contract.md).
        assert snapshot(fresh, effects_only=True) == without_unknown(swept_state)
    unknown = {json.loads(body).get("kind"): json.loads(body).get("unknown")
               for key, (body, _) in swept_state.items()
               if key.startswith("ci-index/") and any(f"/{name}-" in key for name in ("job", "run"))}
    assert unknown == {"job": ["cos_headers", "workflow"], "workflow": ["cos_headers"]}
    failures = [json.loads(body) for key, (body, _) in swept_state.items() if key.startswith("ci-index/failures/")]
    assert failures and all(f["unknown"] == ["workflow"] for f in failures)


def without_unknown(state: dict) -> dict:
    """STATE with the ``unknown`` markers taken out of the index documents (as the callback writes them)."""
    stripped = {}
    for key, (body, tags) in state.items():
        if key.startswith("ci-index/") and b'"unknown"' in body:
            document = json.loads(body)
            del document["unknown"]
            body = json.dumps(document, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8")
        stripped[key] = (body, tags)
    return stripped


def test_a_job_a_callback_processed_costs_one_marker_check(cos, swept, fake_ci):
    job_id = "j" + "5" * 32
    client = cos.client()
    for _, _, key in outputs_of(5):
        client.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    fake_ci.add_job(job_id, "Transcode", "Success", BUCKET, "in/a.mp4", outputs=outputs_of(5),
                    created=NOW - timedelta(minutes=30))
    status, payload = invoke(apigw_event(callback_xml(fake_ci, job_id)), swept)
    assert (status, payload["status"]) == (200, "processed")
    cos.reset_requests()
    result = sweep_once(swept, spec={"reconcile": {"settle_minutes": 0, "inbox": False, "sources": [
        {"bucket": BUCKET, "region": REGION, "queue": QUEUE, "tags": ["Transcode"]}]}})
    assert (result["listed"], result["already_done"], result["processed"]) == (1, 1, 0)
    about_job = [r for r in cos.requests if job_id in r.path]
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in about_job] == [("HEAD", "done.json")]


def test_running_jobs_are_left_alone_and_taken_once_they_finish(cos, swept, fake_ci):
    job_id = "j" + "6" * 32
    fake_ci.add_job(job_id, "Transcode", "Running", BUCKET, "in/b.mp4", created=NOW - timedelta(minutes=10))
    spec = {"reconcile": {"settle_minutes": 0, "sources": [
        {"bucket": BUCKET, "region": REGION, "queue": QUEUE, "tags": ["Transcode"]}]}}
    first = sweep_once(swept, spec=spec)
    assert (first["skipped"], first["processed"]) == (1, 0)
    assert not [k for k in snapshot(cos) if job_id in k]
    fake_ci.set_state(job_id, "Success")
    assert sweep_once(swept, spec=spec, request_id="sweep-2")["processed"] == 1
    assert [k for k in snapshot(cos) if k.startswith("ci-index/") and job_id in k]


def test_jobs_that_just_ended_are_left_to_their_callback(cos, swept, fake_ci):
    fake_ci.add_job("j" + "8" * 32, "Transcode", "Success", BUCKET, "in/c.mp4", created=NOW - timedelta(minutes=3),
                    ended=datetime.now(timezone.utc))
    spec = {"reconcile": {"settle_minutes": 2, "sources": [
        {"bucket": BUCKET, "region": REGION, "queue": QUEUE, "tags": ["Transcode"]}]}}
    result = sweep_once(swept, spec=spec)
    assert result["reasons"] == {"settling": 1} and result["processed"] == 0


# ---------------------------------------------------------------- races, deadlines, the inbox


def _race(settings, body: str, spec: dict, request_id: str) -> list:
    """Two deliveries of a callback and a sweep, released at once."""
    barrier = threading.Barrier(3)
    results: list = []

    def callback() -> None:
        barrier.wait()
        results.append(invoke(apigw_event(body), settings)[1]["status"])

    def sweeper() -> None:
        barrier.wait()
        results.append(sweep_once(settings, request_id=request_id, spec=spec)["status"])

    threads = [threading.Thread(target=callback), threading.Thread(target=callback), threading.Thread(target=sweeper)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_a_sweep_racing_a_late_callback_runs_the_actions_once(cos, swept, fake_ci):
    with FakeSCF(SECRET_ID, SECRET_KEY) as scf:
        notifying = swept.replace(notify_function="downstream", scf_endpoint=scf.endpoint)
        spec = {"reconcile": {"settle_minutes": 0, "inbox": False, "sources": [
            {"bucket": BUCKET, "region": REGION, "queue": QUEUE, "tags": ["Transcode"]}]}}
        for round_ in range(4):
            job_id = f"j{round_:031x}f"
            for _, _, key in outputs_of(round_):
                cos.client().put_object(Bucket=BUCKET, Key=key, Body=b"x")
            fake_ci.add_job(job_id, "Transcode", "Success", BUCKET, f"in/race-{round_}.mp4",
                            outputs=outputs_of(round_), created=NOW - timedelta(minutes=5))
            results = _race(notifying, callback_xml(fake_ci, job_id), spec, f"race-{round_}")
            assert len(results) == 3 and results.count("processed") <= 1, results
        events = [i.client_context["event_id"] for i in scf.invocations]
        # Once per job, however the callbacks and the sweep interleave (the local COS is atomic).
        assert len(events) == len(set(events)) == 4


def run_out_of_time_after(monkeypatch, checks):
    """The sweep's deadline check answers "in time" CHECKS times, then "out of time".

    Returns the budget: set ``budget["left"]`` to grant the next run more checks."""
    budget = {"left": checks}

    def out_of_time(self):
        budget["left"] -= 1
        return budget["left"] < 0

    monkeypatch.setattr(reconcile._Run, "out_of_time", out_of_time)
    return budget


def test_out_of_time_the_cursor_is_kept_and_the_next_run_resumes(cos, swept, fake_ci, monkeypatch):
    expected = seed_ci(cos, fake_ci)
    finals = sum(1 for s in expected.values() if s in ("Success", "Failed", "Cancel"))
    budget = run_out_of_time_after(monkeypatch, 4)
    first = sweep_once(swept)
    assert first["status"] == "partial"
    spec_digest = first["spec"]
    cursor_key = keys.sweep_cursor_key("ci-markers/", spec_digest)
    saved = json.loads(cos.client().get_object(Bucket=BUCKET, Key=cursor_key)["Body"].get_raw_stream().read())
    assert saved["spec"] == spec_digest and saved["phase"] == "list"
    processed = first["processed"]
    for n in range(2, 40):
        budget["left"] = 6
        result = sweep_once(swept, request_id=f"sweep-{n}")
        processed += result["processed"]
        if result["status"] == "complete":
            break
    assert result["status"] == "complete" and processed == finals
    assert cursor_key not in snapshot(cos)  # done: the cursor is gone
    summaries = [k for k in snapshot(cos) if k.startswith("ci-index/sweeps/")]
    assert len(summaries) == n
    last = json.loads(cos.client().get_object(Bucket=BUCKET, Key=sorted(summaries)[-1])["Body"]
                      .get_raw_stream().read())
    assert last["resumed"] is True and last["cursor"] is None


def test_the_inbox_replays_a_503_nobody_retried(cos, swept, fake_ci):
    body = callback_xml(fake_ci, fake_ci.add_job("j" + "9" * 32, "Transcode", "Success", BUCKET, "in/d.mp4",
                                                 outputs=outputs_of(9)).job_id)
    for _, _, key in outputs_of(9):
        cos.client().put_object(Bucket=BUCKET, Key=key, Body=b"x")
    cos.inject(Fault(status=503), when=lambda r: "lease-" in r.path, times=None)
    status, payload = invoke(apigw_event(body), swept)
    assert (status, payload["status"]) == (503, "retry")
    cos.clear_faults()
    # The job's queue is not in the spec: only the inbox can find it.
    spec = {"reconcile": {"inbox_age_minutes": 0, "sources": [
        {"bucket": BUCKET, "region": REGION, "workflow": WORKFLOW}]}}
    result = sweep_once(swept, spec=spec)
    assert (result["archived"], result["replayed"], result["processed"]) == (1, 1, 1), result
    assert [k for k in snapshot(cos) if k.startswith("ci-index/") and "9" * 32 in k]
    again = sweep_once(swept, spec=spec, request_id="sweep-2")
    # The first sweep's state vouches for it: not checked again.
    assert (again["archived"], again["already_done"], again["replayed"]) == (0, 0, 0)
    # The archive still says how the callback first arrived.
    [archived] = [k for k in snapshot(cos) if k.startswith("ci-inbox/job/") and "/deliveries/" not in k]
    assert json.loads(cos.client().get_object(Bucket=BUCKET, Key=archived)["Body"].get_raw_stream().read())[
        "source"] == "url"
    # …and each delivery left its record: CI's (answered 503) and the sweep's replay.
    names = [k.rsplit("/", 1)[-1] for k in snapshot(cos) if "/deliveries/" in k]
    assert sorted(n.split("-")[1] for n in names) == ["replay", "url"]


def test_no_request_carries_if_none_match(cos, swept, fake_ci):
    seed_ci(cos, fake_ci)
    sweep_once(swept)
    creates = [r for r in cos.requests if r.method == "PUT" and "lease-" in r.path]
    assert creates and all(r.headers.get("x-cos-forbid-overwrite") == "true" for r in creates)
    assert not [r for r in cos.requests if "if-none-match" in r.headers]


# ---------------------------------------------------------------- the entry, specs, CI failures


def test_main_handler_reads_the_spec_from_the_environment(cos, swept, fake_ci, monkeypatch):
    seed_ci(cos, fake_ci)
    monkeypatch.setenv("CI_CALLBACK_TOKENS", TOKEN)
    monkeypatch.setenv("CI_CALLBACK_COS_ENDPOINT", cos.endpoint)
    monkeypatch.setenv("CI_CALLBACK_CI_ENDPOINT", fake_ci.url)
    monkeypatch.setenv("TENCENTCLOUD_REGION", REGION)
    monkeypatch.setenv("CI_CALLBACK_RECONCILE_SPEC", json.dumps(SPEC))
    settings_module.reset_settings()
    try:
        event = dict(timer(), Message="")  # a console-made timer with no argument
        result = main_handler(event, CONTEXT)
    finally:
        settings_module.reset_settings()
    assert result["status"] == "complete" and result["processed"] == 8  # 5 jobs, 2 pictures, 1 run


@pytest.mark.parametrize("message", ["user define msg body", json.dumps({"reconcile": {"sources": []}}), ""])
def test_a_bad_spec_is_refused_in_one_line_and_lists_nothing(swept, fake_ci, message, capsys):
    result = handle(dict(timer(), Message=message), CONTEXT, settings=swept)
    assert result["ok"] is False and result["status"] == "rejected" and "\n" not in result["reason"]
    assert fake_ci.requests == []
    errors = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"ERROR"' in line]
    assert [e["msg"] for e in errors] == ["sweep spec refused"]


def test_a_failing_listing_is_logged_and_the_others_go_on(cos, swept, fake_ci):
    seed_ci(cos, fake_ci)
    fake_ci.fail_next(500, times=3)  # the first listing and both retries
    result = sweep_once(swept)
    assert result["list_errors"] == 1 and result["ok"] is False
    assert result["processed"] == 3 + 2 + 1  # SmartCover's listing failed; Transcode, pictures and the run did not
    again = sweep_once(swept, request_id="sweep-2")
    assert again["list_errors"] == 0 and again["processed"] == 2  # the two final SmartCover jobs


def test_an_expired_next_token_lists_the_stream_again(cos, swept, fake_ci):
    seed_ci(cos, fake_ci)
    spec_digest = sweep_once(swept, request_id="probe")["spec"]
    cursor = {"schema": 1, "spec": spec_digest, "started_at": datetime.now(timezone.utc).timestamp(),
              "phase": "list", "stream": 1, "token": "expired", "bucket": 0, "marker": "", "invocations": 1}
    cos.client().put_object(Bucket=BUCKET, Key=keys.sweep_cursor_key("ci-markers/", spec_digest),
                            Body=json.dumps(cursor).encode())
    result = sweep_once(swept, request_id="sweep-2")
    assert result["status"] == "complete" and result["list_errors"] == 0
    assert any(r.query.get("nextToken") == "expired" and r.status == 400 for r in fake_ci.requests)


def test_dedupe_off_means_no_sweep(cos, swept, fake_ci):
    seed_ci(cos, fake_ci)
    result = sweep_once(swept.replace(actions=frozenset({"index", "tag"})))
    assert result["listed"] == 0 and result["reasons"] == {"dedupe-disabled": 1}


def test_settings_for_the_sweep():
    assert Settings.from_env({"CI_CALLBACK_NOTIFY_ENDPOINT": "127.0.0.1:9"}).scf_endpoint == "127.0.0.1:9"
    both = {"CI_CALLBACK_NOTIFY_ENDPOINT": "old:1", "CI_CALLBACK_SCF_ENDPOINT": "new:2"}
    assert Settings.from_env(both).scf_endpoint == "new:2"
    assert Settings.from_env({"CI_CALLBACK_BUCKET_REGIONS": "a-1=ap-shanghai, b-2=ap-beijing"}).bucket_regions == (
        ("a-1", "ap-shanghai"), ("b-2", "ap-beijing"))
    with pytest.raises(Exception, match="CI_CALLBACK_BUCKET_REGIONS"):
        Settings.from_env({"CI_CALLBACK_BUCKET_REGIONS": "nope"})


def test_the_cli_runs_the_same_sweep(cos, swept, fake_ci, monkeypatch, tmp_path, capsys):
    from ci_callback_dev import cli

    seed_ci(cos, fake_ci)
    monkeypatch.setenv("CI_CALLBACK_COS_ENDPOINT", cos.endpoint)
    monkeypatch.setenv("CI_CALLBACK_CI_ENDPOINT", fake_ci.url)
    monkeypatch.setenv("TENCENTCLOUD_REGION", REGION)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(SPEC), encoding="utf-8")
    settings_module.reset_settings()
    try:
        assert cli.main(["reconcile", "--spec", str(spec_file), "--time-limit", "60"]) == 0
        first = json.loads(capsys.readouterr().out)
        assert cli.main(["reconcile", "--spec", json.dumps(SPEC)]) == 0
        second = json.loads(capsys.readouterr().out)
        assert cli.main(["reconcile", "--spec", "{not json"]) == 2
    finally:
        settings_module.reset_settings()
    # The second lists from the first's watermark: fewer records, none processed again.
    assert (first["processed"], second["processed"], second["failed"]) == (8, 0, 0)
    assert 0 < second["already_done"] <= 8


# ---------------------------------------------------------------- the incremental sweep (issue 19)

ONE_QUEUE = {"reconcile": {"settle_minutes": 0, "inbox_age_minutes": 0, "page_size": 100, "sources": [
    {"bucket": BUCKET, "region": REGION, "queue": QUEUE, "tags": ["Transcode"]}]}}


def _add_jobs(cos: LocalCOS, ci: FakeCI, first: int, count: int) -> None:
    for i in range(first, first + count):
        ci.add_job(f"k{i:031x}a", "Transcode", "Success", BUCKET, f"in/inc-{i}.mp4",
                   created=NOW - timedelta(minutes=60) + timedelta(seconds=i))


def _costs(cos: LocalCOS, ci: FakeCI, settings, request_id: str) -> tuple[dict, int, int]:
    """One sweep of ONE_QUEUE: its summary, its COS requests and its CI list calls."""
    cos.reset_requests()
    ci.reset_requests()
    result = sweep_once(settings, request_id=request_id, spec=ONE_QUEUE)
    lists = [r for r in ci.requests if r.path == "/jobs"]
    return result, len(cos.requests), len(lists)


def test_confirmed_jobs_are_not_checked_again_and_new_ones_cost_their_processing(cos, swept, fake_ci):
    _add_jobs(cos, fake_ci, 0, 200)
    first, first_cos, _ = _costs(cos, fake_ci, swept, "sweep-1")
    assert (first["processed"], first["failed"]) == (200, 0)
    # Given 200 confirmed jobs, a later sweep over the unchanged world is nearly free.
    later, later_cos, later_lists = _costs(cos, fake_ci, swept, "sweep-2")
    assert (later["processed"], later["failed"]) == (0, 0), later
    assert later_cos <= 10 and later_lists <= 2, (later_cos, later_lists)
    # 20 new jobs are all processed, at what processing them costs.
    _add_jobs(cos, fake_ci, 200, 20)
    new, new_cos, new_lists = _costs(cos, fake_ci, swept, "sweep-3")
    assert (new["processed"], new["failed"]) == (20, 0), new
    assert new_cos <= 20 * (first_cos / 200) + 10 and new_lists <= 2, (new_cos, first_cos)


def test_a_lost_or_corrupt_state_costs_one_full_sweep_never_a_job(cos, swept, fake_ci):
    _add_jobs(cos, fake_ci, 0, 30)
    assert _costs(cos, fake_ci, swept, "sweep-1")[0]["processed"] == 30
    for key in [k for k in snapshot(cos) if k.startswith("ci-markers/_sweep/") and "/state-" in k]:
        cos.client().put_object(Bucket=BUCKET, Key=key, Body=b'{"schema": 1, "watermark": "x"}')
    _add_jobs(cos, fake_ci, 30, 5)
    again, _, _ = _costs(cos, fake_ci, swept, "sweep-2")
    assert (again["processed"], again["failed"], again["listed"]) == (5, 0, 35), again

