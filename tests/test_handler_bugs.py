"""Every entry survives a handler's bug: one item fails, is counted failed, the others go on.

The sweep, queue batches and replay all run their items through the one item runner
(``ci_callback.runner.run_item``), which owns the bug guard. These are its contract tests,
one per entry, with a user handler that raises for one job only.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from ci_callback.adapters.services import Services
from ci_callback.app import handle, replay
from ci_callback.errors import RetryBatch
from ci_callback.routing import handlers
from ci_callback.routing.router import Router
from conftest import BUCKET, EVENTS, REGION, apigw_event, invoke
from fake_ci import QUEUE

NOW = datetime.now(timezone.utc).replace(microsecond=0)
JOBS = [f"j{i:031x}c" for i in range(3)]
BAD = JOBS[1]


pytestmark = pytest.mark.usefixtures("logs_at_info")  # conftest: logs to stdout at INFO


def buggy_router() -> Router:
    """The built-in handlers, plus a user handler with a bug that fires for one job."""
    router = handlers.register(Router())

    @router.on_job("Transcode", state="Success")
    def announce(callback, inv):
        if callback.job_id == BAD:
            raise RuntimeError("a bug in the user's handler")

    return router


def seed(cos, fake_ci) -> None:
    client = cos.client()
    for i, job_id in enumerate(JOBS):
        client.put_object(Bucket=BUCKET, Key=f"out/bug-{i}.mp4", Body=b"x")
        fake_ci.add_job(job_id, "Transcode", "Success", BUCKET, f"in/bug-{i}.mp4",
                        outputs=[(BUCKET, REGION, f"out/bug-{i}.mp4")], created=NOW - timedelta(minutes=20 + i))


def indexed(cos) -> set:
    page = cos.client().list_objects(Bucket=BUCKET, Prefix="ci-index/", MaxKeys=1000)
    contents = page.get("Contents") or []
    keys = [c["Key"] for c in ([contents] if isinstance(contents, dict) else contents)]
    return {job for job in JOBS if any(job in key for key in keys)}


def test_a_handler_raising_on_one_listed_job_does_not_stop_the_sweep(cos, settings, fake_ci, capsys):
    """Given three lost callbacks and a handler that raises on the second, when the timer
    sweeps, then it returns, the other two are indexed, the summary is written and the bad one
    is counted failed (its trace logged), so the next sweep takes it again."""
    seed(cos, fake_ci)
    spec = {"reconcile": {"settle_minutes": 0, "inbox": False, "sources": [
        {"bucket": BUCKET, "region": REGION, "queue": QUEUE, "tags": ["Transcode"]}]}}
    timer = {"Type": "Timer", "TriggerName": "ci-callback-reconcile", "Time": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
             "Message": json.dumps(spec)}
    swept = settings.replace(ci_endpoint=fake_ci.url)
    result = handle(timer, {"request_id": "sweep-bug", "time_limit_in_ms": 60000}, settings=swept,
                    router=buggy_router())
    assert (result["listed"], result["processed"], result["failed"]) == (3, 2, 1), result
    assert indexed(cos) == set(JOBS) - {BAD}  # the user's handler (most specific) runs first, and raised
    page = cos.client().list_objects(Bucket=BUCKET, Prefix="ci-index/sweeps/", MaxKeys=10)
    assert page.get("Contents"), "the sweep summary was written"
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert any(line["msg"] == "unhandled error" and "a bug in the user's handler" in line["trace"] for line in lines)
    marker = cos.client().list_objects(Bucket=BUCKET, Prefix=f"ci-markers/job/{BAD}/", MaxKeys=10)
    keys = [c["Key"] for c in (marker.get("Contents") or [])] if not isinstance(marker.get("Contents"), dict) \
        else [marker["Contents"]["Key"]]
    assert not any(key.endswith("done.json") for key in keys), "the failed job stays re-drivable"
    again = handle(timer, {"request_id": "sweep-bug-2", "time_limit_in_ms": 60000}, settings=swept,
                   router=buggy_router())
    assert (again["processed"], again["failed"]) == (0, 1), again  # taken again, and fails again


def test_a_handler_raising_on_one_queue_record_lets_the_others_finish(cos, settings):
    """A CMQ batch: the record whose handler raises is answered 500, the others are processed,
    and the batch raises after them so SCF redelivers it (the rest come back as duplicates)."""
    batch = json.loads((EVENTS / "cmq-topic-batch.json").read_text(encoding="utf-8"))
    bodies = [json.loads(record["CMQ"]["msgBody"]) if record["CMQ"]["msgBody"].startswith("{") else None
              for record in batch["Records"]]
    assert bodies  # the sample's shape, read by the queue tests too
    router = handlers.register(Router())
    calls = []

    @router.on_job(state="Success")
    def explode(callback, inv):
        calls.append(callback.job_id)
        raise RuntimeError("a bug for every successful job")

    with pytest.raises(RetryBatch):
        handle(batch, {"request_id": "cmq-bug", "time_limit_in_ms": 60000},
               settings=settings.replace(index_bucket=BUCKET), router=router)
    assert calls, "the handler ran"
    rejected = cos.client().list_objects(Bucket=BUCKET, Prefix="ci-inbox/_rejected/", MaxKeys=10)
    assert rejected.get("Contents"), "the malformed record after the buggy one was still handled"


def test_a_handler_raising_during_replay_fails_that_archive_only(cos, settings):
    """Replaying two archived callbacks: the one whose handler raises answers 500, the other 200."""
    sample = json.loads((EVENTS / "apigw-smartcover-xml.json").read_text(encoding="utf-8"))
    body = sample["body"]
    other = body.replace("<JobId>", "<JobId>x", 1)
    for text in (body, other):
        status, payload = invoke(apigw_event(text), settings)
        assert status == 200, payload
    page = cos.client().list_objects(Bucket=BUCKET, Prefix="ci-inbox/job/", MaxKeys=100)
    archives = sorted(c["Key"] for c in page["Contents"] if "/deliveries/" not in c["Key"])
    assert len(archives) == 2
    router = handlers.register(Router())

    @router.on_job("SmartCover")
    def explode(callback, inv):
        if callback.job_id.startswith("x"):
            raise RuntimeError("a bug for one job")

    storage = Services(settings).storage
    results = replay(storage, BUCKET, settings, archives, force=True, router=router)
    assert sorted(r.status for r in results) == [200, 500], results
