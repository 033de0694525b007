"""Queue delivery end to end: CMQ topic batches through the handler, on a real local COS.

A batch of valid and malformed records processes the valid ones and archives the malformed as
rejected; a transient COS fault makes the invocation raise after the rest were processed, and
SCF's redelivery completes it with the done records coming back as cheap duplicates.
"""

from __future__ import annotations

import json

import pytest

from ci_callback.app import handle
from ci_callback.errors import RetryBatch
from ci_callback_dev.localcos import Fault
from conftest import BUCKET, EVENTS
from fake_ci import FakeCI

BATCH = json.loads((EVENTS / "cmq-topic-batch.json").read_text(encoding="utf-8"))
CONTEXT = {"request_id": "cmq-1", "time_limit_in_ms": 30000}
XML_JOB = "j1a2b3c4d5e6f11ee9f0a525400000031"
JSON_JOB = "j1a2b3c4d5e6f11ee9f0a525400000032"


pytestmark = pytest.mark.usefixtures("logs_at_info")  # conftest: logs to stdout at INFO


@pytest.fixture
def queued(cos, settings):
    cos.client().put_object(Bucket=BUCKET, Key="out/queued-720p.mp4", Body=b"x")
    # No token on this path; the index bucket keeps the rejected records.
    return settings.replace(tokens=(), index_bucket=BUCKET)


def keys_in(cos) -> list:
    page = cos.client().list_objects(Bucket=BUCKET, MaxKeys=1000)
    contents = page.get("Contents") or []
    return sorted(c["Key"] for c in ([contents] if isinstance(contents, dict) else contents))


def read(cos, key) -> dict:
    return json.loads(cos.client().get_object(Bucket=BUCKET, Key=key)["Body"].get_raw_stream().read())


def lines(out: str) -> list:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_a_batch_processes_its_valid_records_and_archives_the_malformed_one(cos, queued, capsys):
    result = handle(BATCH, CONTEXT, settings=queued)
    assert result["ok"] and [r["status"] for r in result["records"]] == [200, 200, 400]
    present = keys_in(cos)
    assert any(k.startswith("ci-index/") and XML_JOB in k for k in present)  # indexed, output tagged
    assert f"ci-index/failures/{JSON_JOB}.json" in present
    tags = cos.client().get_object_tagging(Bucket=BUCKET, Key="out/queued-720p.mp4")["TagSet"]["Tag"]
    assert {t["Key"]: t["Value"] for t in tags}["ci-job-id"] == XML_JOB
    [rejected] = [k for k in present if k.startswith("ci-inbox/_rejected/")]
    document = read(cos, rejected)
    assert document["body"] == "Hello from CMQ!" and document["msg_id"] == "1407374883553284"
    assert document["source"] == "queue" and document["rejected"] == "body is neither XML nor JSON"
    archived = [k for k in present if k.startswith("ci-inbox/job/") and "/deliveries/" not in k]
    assert len(archived) == 2 and {read(cos, k)["source"] for k in archived} == {"queue"}
    deliveries = [read(cos, k) for k in present if "/deliveries/" in k]
    assert len(deliveries) == 2 and {d["source"] for d in deliveries} == {"queue"}
    decisions = [r for r in lines(capsys.readouterr().out) if r["msg"] == "callback"]
    assert [(d["status"], d["source"], d["msg_id"]) for d in decisions] == [
        (200, "queue", "1407374883553282"), (200, "queue", "1407374883553283"), (400, "queue", "1407374883553284")]


def test_a_transient_fault_raises_after_the_rest_and_the_redelivery_completes(cos, queued, capsys):
    # Every write about the JSON job fails with a 503 until the fault is cleared.
    cos.inject(Fault(status=503), when=lambda r: JSON_JOB in r.path and r.method == "PUT", times=None)
    with pytest.raises(RetryBatch) as raised:
        handle(BATCH, CONTEXT, settings=queued)
    assert raised.value.transient and "1 of 3" in str(raised.value)
    present = keys_in(cos)
    assert any(k.startswith("ci-index/") and XML_JOB in k for k in present)  # the others went through
    assert f"ci-index/failures/{JSON_JOB}.json" not in present
    errors = [r for r in lines(capsys.readouterr().out) if r["level"] == "ERROR" and "batch" in r["msg"]]
    assert errors and errors[0]["failed"] == ["1407374883553283"]

    cos.clear_faults()
    cos.reset_requests()
    result = handle(BATCH, dict(CONTEXT, request_id="cmq-1-retry"), settings=queued)  # SCF's async retry
    assert [r["outcome"] for r in result["records"]] == ["duplicate", "processed", "rejected"]
    assert f"ci-index/failures/{JSON_JOB}.json" in keys_in(cos)
    about_done = [r for r in cos.requests if XML_JOB in r.path and "/deliveries/" not in r.path]
    assert len(about_done) <= 3  # archive rewrite, claim refused, done check: a cheap duplicate
    assert len([r for r in cos.requests if XML_JOB in r.path and "/deliveries/" in r.path]) == 1  # and counted


def test_envelopes_are_unwrapped_and_records_verify_against_ci(cos, queued):
    record = dict(BATCH["Records"][0]["CMQ"])
    record["msgBody"] = json.dumps({"msgBody": record["msgBody"], "source": "ci"})
    with FakeCI("AKIDlocaltest", "localtestkey") as ci:
        ci.add_job(XML_JOB, "Transcode", "Success", BUCKET, "videos/queued.mp4")
        verified = queued.replace(verify_jobs=True, ci_endpoint=ci.url)
        result = handle({"Records": [{"CMQ": record}]}, CONTEXT, settings=verified)
        assert [r["status"] for r in result["records"]] == [200]
        assert [r.path for r in ci.requests] == [f"/jobs/{XML_JOB}"]


def test_a_bucket_outside_the_allow_list_is_rejected_not_retried(cos, queued):
    strict = queued.replace(allowed_buckets=frozenset({"otherbucket-1250000000"}), index_bucket=None)
    result = handle({"Records": BATCH["Records"][:1]}, CONTEXT, settings=strict)
    assert [r["status"] for r in result["records"]] == [403]
    assert not [k for k in keys_in(cos) if k.startswith("ci-index/")]


def test_out_of_time_the_rest_of_the_batch_is_left_for_the_redelivery(cos, queued):
    with pytest.raises(RetryBatch) as raised:
        handle(BATCH, {"request_id": "cmq-late", "time_limit_in_ms": 2000}, settings=queued)
    assert "3 of 3" in str(raised.value)
    assert keys_in(cos) == ["out/queued-720p.mp4"]


def test_a_misconfigured_function_lets_scf_retry_the_batch(monkeypatch):
    from ci_callback import settings as settings_module

    monkeypatch.setenv("CI_CALLBACK_FANOUT", "lots")
    settings_module.reset_settings()
    try:
        with pytest.raises(RetryBatch, match="CI_CALLBACK_FANOUT"):
            handle(BATCH, CONTEXT)  # acknowledging it would drop every record
    finally:
        settings_module.reset_settings()
