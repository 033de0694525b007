"""A mixed run on the local COS, shared by the inspect/report/HTML tests.

Real callbacks go through ``handle`` as API Gateway events; faults come from the local
COS's fault injection; nothing is written by hand except a lease that a "crashed"
concurrent delivery still holds (what a live in-flight run looks like from outside).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from ci_callback_dev.localcos import Fault
from conftest import BUCKET, apigw_event, invoke

OUTPUTS = ["out/ok-0.jpg", "out/ok-1.jpg", "out/full-tags.jpg", "out/gone.jpg"]


def job_body(job_id: str, tag: str = "SmartCover", state: str = "Success", outputs: list[str] | None = None,
             ended: datetime | None = None, code: str = "Success", message: str = "",
             input_key: str = "videos/in.mp4") -> str:
    ended = ended or datetime.now(timezone.utc) - timedelta(seconds=5)
    stamp = ended.astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m-%dT%H:%M:%S+0800")
    names = "".join(f"<ObjectName>{o}</ObjectName>" for o in (outputs or []))
    result = (f"<MediaResult><OutputFile><Bucket>{BUCKET}</Bucket><Region>ap-guangzhou</Region>{names}"
              "<ObjectPrefix/><Md5Info/></OutputFile></MediaResult>") if outputs else ""
    return (
        f"<Response><EventName>TaskFinish</EventName><JobsDetail><Code>{code}</Code><Message>{message}</Message>"
        f"<JobId>{job_id}</JobId><Tag>{tag}</Tag><State>{state}</State>"
        f"<CreationTime>{stamp}</CreationTime><StartTime>{stamp}</StartTime><EndTime>{stamp}</EndTime>"
        f"<Input><BucketId>{BUCKET}</BucketId><Object>{input_key}</Object><Region>ap-guangzhou</Region></Input>"
        f"<Operation><Output><Bucket>{BUCKET}</Bucket><Region>ap-guangzhou</Region><Object>out/{job_id}.mp4</Object></Output>"
        f"{result}</Operation></JobsDetail></Response>"
    )


@dataclass
class Mixed:
    """Ids of each story, and what was sent."""

    processed: str = "j00000000000000000000000000000a01"
    failed: str = "j00000000000000000000000000000a02"
    duplicate: str = "j00000000000000000000000000000a03"
    unfinished: str = "j00000000000000000000000000000a04"
    processing: str = "j00000000000000000000000000000a05"
    waiting: str = "j00000000000000000000000000000a06"  # only Running arrived
    recovered: str = "j00000000000000000000000000000a07"  # CI's delivery lost; the sweep found it
    never: str = "j00000000000000000000000000000fff"
    statuses: dict[str, list[int]] = field(default_factory=dict)
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def send(self, cos, settings, job_id: str, body: str, request_id: str) -> int:
        status, _ = invoke(apigw_event(body), settings, {"request_id": request_id, "time_limit_in_ms": 10000})
        self.statuses.setdefault(job_id, []).append(status)
        return status


def sweep(settings, ci, job_id: str, request_id: str) -> int:
    """CI's delivery of JOB_ID was lost: the reconcile sweep (a real timer event through the
    handler, against the fake CI's list API) finds the final job and processes it."""
    from ci_callback.app import handle
    from fake_ci import QUEUE

    now = datetime.now(timezone.utc)
    ci.add_job(job_id, "Snapshot", "Success", BUCKET, "videos/r.mp4",
               outputs=[(BUCKET, "ap-guangzhou", f"out/{job_id}.mp4")], queue_id=QUEUE,
               created=now - timedelta(minutes=3), ended=now - timedelta(seconds=5))
    spec = {"reconcile": {"lookback_minutes": 60, "settle_minutes": 0, "inbox": False, "sources": [
        {"bucket": BUCKET, "region": "ap-guangzhou", "queue": QUEUE, "tags": ["Snapshot"]}]}}
    event = {"Type": "Timer", "TriggerName": "ci-callback-reconcile", "Time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
             "Message": json.dumps(spec)}
    result = handle(event, {"request_id": request_id, "time_limit_in_ms": 60000},
                    settings=settings.replace(ci_endpoint=ci.url))
    assert result["status"] == "complete" and result["processed"] == 1, result
    return 200


def tag(cos, key: str, tags: dict[str, str]) -> None:
    cos.client().put_object_tagging(Bucket=BUCKET, Key=key,
                                    Tagging={"TagSet": {"Tag": [{"Key": k, "Value": v} for k, v in tags.items()]}})


def mixed_run(cos, settings, ci) -> Mixed:
    run = Mixed()
    client = cos.client()
    for key in [*OUTPUTS[:3], "out/dup.jpg", f"out/{run.unfinished}.mp4", f"out/{run.processing}.mp4",
                f"out/{run.recovered}.mp4"]:
        # out/gone.jpg is never written: "missing"
        client.put_object(Bucket=BUCKET, Key=key, Body=b"output")
    tag(cos, "out/full-tags.jpg", {f"user-{n}": str(n) for n in range(10)})  # no room for ours: "skipped"

    run.send(cos, settings, run.processed, job_body(run.processed, outputs=OUTPUTS), "req-processed")
    run.send(cos, settings, run.failed, job_body(run.failed, "Transcode", "Failed", code="InvalidArgument",
                                                   message="the input media has no video stream"), "req-failed")
    body = job_body(run.duplicate, "Snapshot", outputs=["out/dup.jpg"])
    run.send(cos, settings, run.duplicate, body, "req-dup-1")
    run.send(cos, settings, run.duplicate, body, "req-dup-2")  # CI's retry: identical body

    # COS fails the index write (and its retries): archived, lease released, 503 for CI.
    cos.inject(Fault(status=503), when=lambda r: r.method == "PUT" and "/ci-index/" in r.path, times=3)
    run.send(cos, settings, run.unfinished, job_body(run.unfinished, "Transcode", input_key="videos/u.mp4"), "req-unfinished")
    cos.clear_faults()

    # A concurrent delivery holds a live lease: archive this one with dedupe on, it answers duplicate.
    lease = {"status": "in-progress", "owner": "other-delivery", "nonce": "ab", "expires_at": round(time.time() + 600, 3)}
    client.put_object(Bucket=BUCKET, Key=f"ci-markers/job/{run.processing}/Success/lease-1.json",
                      Body=json.dumps(lease).encode())
    run.send(cos, settings, run.processing, job_body(run.processing, "Transcode", input_key="videos/p.mp4"), "req-processing")

    run.send(cos, settings, run.waiting, job_body(run.waiting, "Transcode", "Running", input_key="videos/w.mp4"), "req-waiting")
    run.statuses.setdefault(run.recovered, []).append(sweep(settings, ci, run.recovered, "sweep-1"))
    return run
