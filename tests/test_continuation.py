"""Continuations: a job too big for one invocation checkpoints, invokes itself, and goes on.

Run on the real local COS (with latency injected), the real COS adapter, and the SCF
adapter's in-process hook: every continuation event is run next, as SCF would run it,
each with its own time limit.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from ci_callback import keys
from ci_callback.actions import builtin as actions
from ci_callback.adapters import scf as notify
from ci_callback.app import handle
from ci_callback.errors import NotifyError
from ci_callback_dev import bigjob
from ci_callback_dev.localcos import Fault
from ci_callback_dev.localscf import capture_invokes, release_invokes
from conftest import BUCKET, REGION, apigw_event, invoke

MARKERS = "ci-markers/job/"


def context(limit_ms: int, n: int = 1) -> dict:
    return {"request_id": f"chain-{n}", "time_limit_in_ms": limit_ms, "function_name": "ci-callback",
            "namespace": "default"}


@pytest.fixture
def chain():
    pending: list = []
    capture_invokes(pending.append)
    yield pending
    release_invokes()


def seed_job(cos, n: int, job_id: str) -> dict:
    cos.seed(BUCKET, bigjob.output_keys(n))
    return apigw_event(bigjob.segment_body(n, "xml", job_id))


def run_chain(event, settings, pending, limit_ms, most=40):
    """Deliver EVENT, then run every continuation it invokes; [(status, payload, seconds)]."""
    runs = []
    step = 0
    while event is not None and step < most:
        step += 1
        started = time.monotonic()
        response = handle(event, context(limit_ms, step), settings=settings)
        runs.append((response["statusCode"], json.loads(response["body"]), time.monotonic() - started))
        event = pending.pop(0) if pending else None
    return runs


def tagged(cos, n: int) -> int:
    client = cos.client()
    count = 0
    for key in bigjob.output_keys(n):
        tags = (client.get_object_tagging(Bucket=BUCKET, Key=key).get("TagSet") or {}).get("Tag") or []
        tags = [tags] if isinstance(tags, dict) else tags
        count += any(t["Key"] == "ci-source" for t in tags)
    return count


def marker_keys(cos) -> list:
    listing = cos.client().list_objects(Bucket=BUCKET, Prefix=MARKERS, MaxKeys=1000).get("Contents") or []
    listing = [listing] if isinstance(listing, dict) else listing
    return sorted(item["Key"].rsplit("/", 1)[-1] for item in listing)


def test_a_job_too_big_for_one_invocation_finishes_through_a_chain(cos, settings, chain, monkeypatch):
    monkeypatch.setattr(actions, "PART_SIZE", 100)  # small parts, so this job's index is split too
    n, limit_ms = 400, 1500
    event = seed_job(cos, n, "jchain000000000000000000000000001")
    cos.inject(Fault(delay=0.01), times=None)
    runs = run_chain(event, settings, chain, limit_ms)
    cos.clear_faults()
    statuses = [(status, payload["status"]) for status, payload, _ in runs]
    assert statuses[0] == (202, "continuing"), runs[0]
    assert len(runs) >= 2 and statuses[-1] == (200, "processed"), statuses
    assert all(s == (202, "continuing") for s in statuses[1:-1]), statuses
    deadline = max(limit_ms / 1000 - 0.5, limit_ms / 2000)
    assert max(seconds for _, _, seconds in runs) < deadline, [round(s, 3) for _, _, s in runs]
    assert tagged(cos, n) == n
    assert marker_keys(cos) == ["done.json", "lease-1.json"]  # the checkpoint is gone
    index_key = keys.job_index_key("ci-index/", BUCKET, "videos/long-show.mp4", "jchain000000000000000000000000001")
    client = cos.client()
    main = json.loads(client.get_object(Bucket=BUCKET, Key=index_key)["Body"].get_raw_stream().read())
    assert main["parts"]["count"] == 4 and main["parts"]["outputs"] == n and "outputs" not in main
    seen = []
    for part_key in main["parts"]["keys"]:
        part = json.loads(client.get_object(Bucket=BUCKET, Key=part_key)["Body"].get_raw_stream().read())
        seen += [o["object"] for o in part["outputs"]]
    assert seen == bigjob.output_keys(n)
    done = json.loads(client.get_object(Bucket=BUCKET, Key=f"{MARKERS}jchain000000000000000000000000001/Success/done.json")
                      ["Body"].get_raw_stream().read())
    assert done["steps"] == len(runs)


def test_a_redelivery_during_the_chain_is_a_duplicate(cos, settings, chain):
    event = seed_job(cos, 300, "jchain000000000000000000000000002")
    cos.inject(Fault(delay=0.01), times=None)
    status, payload = invoke(event, settings, context(1200))
    assert (status, payload["status"]) == (202, "continuing")
    status, payload = invoke(event, settings, context(1200, 2))
    cos.clear_faults()
    assert (status, payload["status"]) == (200, "duplicate"), payload
    assert "checkpoint.json" in marker_keys(cos)
    runs = run_chain(chain.pop(0), settings, chain, 10000)
    assert runs[-1][0] == 200 and tagged(cos, 300) == 300


def test_a_failed_invoke_answers_503_and_the_retry_resumes_from_the_checkpoint(cos, settings, chain, capsys):
    event = seed_job(cos, 300, "jchain000000000000000000000000003")

    def refuse(function, namespace, qualifier, context):
        raise NotifyError("invoke refused (test)", transient=True)

    notify.set_local_invoke(refuse)
    cos.inject(Fault(delay=0.01), times=None)
    status, payload = invoke(event, settings, context(1200))
    cos.clear_faults()
    assert (status, payload["status"]) == (503, "retry"), payload
    assert marker_keys(cos) == ["checkpoint.json", "lease-1.json"]  # the lease expired, its number kept
    lease = json.loads(cos.client().get_object(Bucket=BUCKET, Key=f"{MARKERS}jchain000000000000000000000000003/Success/lease-1.json")["Body"].get_raw_stream().read())
    assert lease["status"] == "released" and lease["expires_at"] == 0
    capture_invokes(chain.append)
    status, payload = invoke(event, settings, context(10000, 2))  # CI's retry
    assert (status, payload["status"]) == (200, "processed"), payload
    tag_record = next(a for a in payload["actions"] if a["action"] == "tag")
    assert sum(v for k, v in tag_record.items() if k in ("tagged", "unchanged", "missing")) == 300
    assert tagged(cos, 300) == 300 and marker_keys(cos) == ["done.json", "lease-1.json", "lease-2.json"]
    assert any("resuming from a checkpoint" in line for line in capsys.readouterr().out.splitlines())


def test_small_jobs_never_read_or_write_a_checkpoint(cos, settings, chain):
    event = seed_job(cos, 5, "jchain000000000000000000000000004")
    cos.reset_requests()
    status, payload = invoke(event, settings, context(3000))
    assert (status, payload["status"]) == (200, "processed")
    assert not any("checkpoint" in r.path for r in cos.requests)
    assert chain == []


@pytest.mark.parametrize("pointer, expected", [
    ({"v": 1, "bucket": BUCKET, "checkpoint": "elsewhere/job/x/Success/checkpoint.json"}, 400),
    ({"v": 1, "bucket": BUCKET, "checkpoint": "ci-markers/job/x/Success/lease-1.json"}, 400),
    ({"v": 2, "bucket": BUCKET, "checkpoint": "ci-markers/job/x/Success/checkpoint.json"}, 400),
    ({"v": 1, "bucket": "other-1250000000", "checkpoint": "ci-markers/job/x/Success/checkpoint.json"}, 403),
    ({"v": 1, "bucket": BUCKET, "checkpoint": "ci-markers/job/x/Success/checkpoint.json"}, 200),
])
def test_continuation_events_are_checked_before_anything_is_read(cos, settings, pointer, expected):
    allowing = settings.replace(allowed_buckets=frozenset({BUCKET}))
    response = handle({"ci_callback": {"continuation": pointer}}, context(3000), settings=allowing)
    assert response["statusCode"] == expected, response
    if expected == 200:
        assert json.loads(response["body"])["status"] == "nothing-to-do"


def test_a_continuation_whose_lease_was_taken_over_stops(cos, settings, chain):
    event = seed_job(cos, 300, "jchain000000000000000000000000005")
    cos.inject(Fault(delay=0.01), times=None)
    status, _ = invoke(event, settings, context(1200))
    cos.clear_faults()
    assert status == 202
    lease_key = f"{MARKERS}jchain000000000000000000000000005/Success/lease-1.json"
    cos.client().put_object(Bucket=BUCKET, Key=lease_key, Body=json.dumps(
        {"status": "in-progress", "nonce": "someone-else", "expires_at": time.time() + 600}).encode())
    response = handle(chain.pop(0), context(3000, 2), settings=settings)
    assert response["statusCode"] == 200 and json.loads(response["body"])["status"] == "nothing-to-do"
    assert chain == []


def test_a_continuation_that_cannot_read_cos_raises_so_scf_retries_it(cos, settings, chain):
    event = seed_job(cos, 300, "jchain000000000000000000000000006")
    cos.inject(Fault(delay=0.01), times=None)
    assert invoke(event, settings, context(1200))[0] == 202
    cos.clear_faults()
    cos.inject(Fault(status=503), times=None)
    with pytest.raises(Exception, match="unavailable|503"):
        handle(chain.pop(0), context(3000, 2), settings=settings)
    cos.clear_faults()


def test_two_thousand_outputs_under_a_four_second_limit_finish_through_the_chain(cos, settings, chain):
    """The issue's bar: 202 before the deadline, then a chain run as SCF would run it that ends
    with every output tagged, the index complete and the done marker, no invocation late."""
    n, limit_ms, job_id = 2000, 4000, "jchain000000000000000000000002000"
    event = seed_job(cos, n, job_id)
    cos.inject(Fault(delay=0.01), times=None)
    runs = run_chain(event, settings, chain, limit_ms)
    cos.clear_faults()
    assert (runs[0][0], runs[0][1]["status"]) == (202, "continuing")
    assert (runs[-1][0], runs[-1][1]["status"]) == (200, "processed")
    assert max(seconds for _, _, seconds in runs) < limit_ms / 1000 - 0.5, [round(s, 2) for _, _, s in runs]
    assert tagged(cos, n) == n
    assert marker_keys(cos) == ["done.json", "lease-1.json"]
    index_key = keys.job_index_key("ci-index/", BUCKET, "videos/long-show.mp4", job_id)
    main = json.loads(cos.client().get_object(Bucket=BUCKET, Key=index_key)["Body"].get_raw_stream().read())
    assert main["parts"]["count"] == 2 and main["parts"]["outputs"] == n


def test_notify_goes_once_at_the_end_of_the_chain_and_lists_the_index(cos, settings, monkeypatch):
    sent: list = []
    capture_invokes(sent.append)
    try:
        notifying = settings.replace(notify_function="downstream")
        job_id = "jchain000000000000000000000000007"
        event = seed_job(cos, 300, job_id)
        cos.inject(Fault(delay=0.01), times=None)
        runs, step = [], 0
        while event is not None and step < 40:
            step += 1
            response = handle(event, context(1200, step), settings=notifying)
            runs.append(response["statusCode"])
            continuations = [e for e in sent if "ci_callback" in e]
            event = continuations[0] if continuations else None
            sent[:] = [e for e in sent if e is not event]
        cos.clear_faults()
    finally:
        release_invokes()
    assert runs[0] == 202 and runs[-1] == 200 and len(runs) >= 2
    assert len(sent) == 1, [list(e) for e in sent]  # the notify, once
    index_key = keys.job_index_key("ci-index/", BUCKET, "videos/long-show.mp4", job_id)
    assert {"bucket": BUCKET, "key": index_key} in sent[0]["written"]


def test_every_continuation_kind_has_one_home(cos, settings, chain):
    """One dispatcher, keyed by the pointer's kind: a job's chain and a sweep's cursor; an
    unknown kind is refused in one line."""
    from ci_callback.app import CONTINUATIONS

    assert set(CONTINUATIONS) == {"job", "sweep"}
    unknown = handle({"ci_callback": {"continuation": {"v": 1, "for": "nobody"}}}, context(3000), settings=settings)
    assert unknown["statusCode"] == 400
    assert "unknown continuation kind" in json.loads(unknown["body"])["reason"]


def test_a_sweep_that_runs_out_of_time_continues_at_once(cos, settings, fake_ci, monkeypatch, chain):
    """Issue 11 × 12: the sweep keeps its cursor and invokes a continuation (not the next tick)."""
    from test_reconcile import CONTEXT, run_out_of_time_after, seed_ci, timer

    swept = settings.replace(ci_endpoint=fake_ci.url)
    expected = seed_ci(cos, fake_ci)
    finals = sum(1 for s in expected.values() if s in ("Success", "Failed", "Cancel"))
    budget_left = run_out_of_time_after(monkeypatch, 4)
    sweep_context = dict(CONTEXT, function_name="ci-callback", namespace="default")
    first = handle(timer(), dict(sweep_context, request_id="sweep-1"), settings=swept)
    assert first["status"] == "partial"
    processed, steps = first["processed"], 1
    while chain and steps < 40:
        event = chain.pop(0)
        assert event["ci_callback"]["continuation"]["for"] == "sweep"
        budget_left["left"] = 6
        steps += 1
        result = handle(event, dict(sweep_context, request_id=f"sweep-{steps}"), settings=swept)
        processed += result["processed"]
    assert steps > 1 and result["status"] == "complete" and processed == finals


def test_a_job_the_sweeps_listing_finishes_loses_its_broken_chains_checkpoint(cos, settings, fake_ci, chain):
    """Issue 17: the listing rebuilds the callback from CI's record (another body, so the old
    checkpoint is not resumed); finishing the job by that path still removes the checkpoint."""
    from fake_ci import QUEUE
    from test_reconcile import CONTEXT, NOW, timer

    job_id = "jchain00000000000000000000000000a"
    event = seed_job(cos, 300, job_id)
    cos.inject(Fault(delay=0.01), times=None)
    status, _ = invoke(event, settings, context(1200))
    cos.clear_faults()
    assert status == 202 and "checkpoint.json" in marker_keys(cos)
    chain.clear()  # the continuation is lost
    lease_key = f"{MARKERS}{job_id}/Success/lease-1.json"
    cos.client().put_object(Bucket=BUCKET, Key=lease_key, Body=json.dumps(  # … and its lease has expired
        {"status": "in-progress", "nonce": "gone", "expires_at": time.time() - 1}).encode())
    fake_ci.add_job(job_id, "Segment", "Success", BUCKET, "videos/long-show.mp4",
                    outputs=[(BUCKET, REGION, key) for key in bigjob.output_keys(300)],
                    created=NOW - timedelta(minutes=20))
    spec = {"reconcile": {"settle_minutes": 0, "inbox": False, "sources": [
        {"bucket": BUCKET, "region": REGION, "queue": QUEUE, "tags": ["Segment"]}]}}
    swept = settings.replace(ci_endpoint=fake_ci.url)
    result = handle(timer(spec), dict(CONTEXT, function_name="ci-callback"), settings=swept)
    assert (result["status"], result["processed"]) == ("complete", 1), result
    assert tagged(cos, 300) == 300
    assert marker_keys(cos) == ["done.json", "lease-1.json", "lease-2.json"]


def test_a_job_step_that_finishes_no_task_does_not_invoke_itself(cos, settings, chain, capsys):
    """Issue 17: a continuation whose time runs out before its first task says why and chains no
    further (SCF's retry of the failed continuation, or the sweep's re-drive, resumes it)."""
    from ci_callback.errors import ContinuationFailed

    job_id = "jchain00000000000000000000000000b"
    event = seed_job(cos, 300, job_id)
    cos.inject(Fault(delay=0.01), times=None)
    status, _ = invoke(event, settings, context(1200))
    assert status == 202 and len(chain) == 1
    continuation = chain.pop(0)
    cos.inject(Fault(delay=0.3), times=None)  # slower than the whole step's budget
    with pytest.raises(ContinuationFailed, match="no progress: the timeout leaves no time after the reserve"):
        handle(continuation, context(300, 2), settings=settings)
    cos.clear_faults()
    assert chain == [] and "checkpoint.json" in marker_keys(cos)
    assert "job step made no progress; not continued" in capsys.readouterr().out


def test_under_a_3_s_timeout_a_timer_tick_makes_no_self_invocation(cos, settings, fake_ci, chain, capsys):
    """Issue 17: the sweep's reserve does not fit a 3 s limit, so a tick lists nothing; it keeps
    its cursor and says why, and invokes nothing (else every tick starts an endless no-op chain)."""
    from test_reconcile import CONTEXT, seed_ci, timer

    swept = settings.replace(ci_endpoint=fake_ci.url)
    seed_ci(cos, fake_ci)
    short = dict(CONTEXT, function_name="ci-callback", namespace="default", time_limit_in_ms=3000)
    for tick in range(3):
        result = handle(timer(), dict(short, request_id=f"tick-{tick}"), settings=swept)
        assert result["status"] == "partial" and result["pages"] == 0 and result["processed"] == 0
        assert result["stalled"] == "the timeout leaves no time after the reserve"
    assert chain == []
    assert "sweep made no progress; not continued" in capsys.readouterr().out
    from test_reconcile import snapshot

    documents = [json.loads(body) for key, (body, _) in snapshot(cos).items() if key.startswith("ci-index/sweeps/")]
    assert len(documents) == 3 and all(d["continuation"] is None and d["stalled"] for d in documents)


def test_the_sweeps_inbox_redrive_picks_up_a_lost_continuation(cos, settings, fake_ci, chain, capsys):
    from test_reconcile import CONTEXT, SPEC, timer

    job_id = "jchain000000000000000000000000008"
    event = seed_job(cos, 300, job_id)
    cos.inject(Fault(delay=0.01), times=None)
    status, _ = invoke(event, settings, context(1200))
    cos.clear_faults()
    assert status == 202
    chain.clear()  # the continuation is lost
    lease_key = f"{MARKERS}{job_id}/Success/lease-1.json"
    cos.client().put_object(Bucket=BUCKET, Key=lease_key, Body=json.dumps(  # … and its lease has expired
        {"status": "in-progress", "nonce": "gone", "expires_at": time.time() - 1}).encode())
    swept = settings.replace(ci_endpoint=fake_ci.url)
    result = handle(timer(SPEC), dict(CONTEXT, function_name="ci-callback"), settings=swept)
    assert result["status"] == "complete", result
    assert tagged(cos, 300) == 300
    assert marker_keys(cos) == ["done.json", "lease-1.json", "lease-2.json"]
    assert "resuming from a checkpoint" in capsys.readouterr().out
