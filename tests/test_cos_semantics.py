"""COS semantics that hold on real COS (docs/tencent-facts.md "COS semantics"), on the local COS:

* the write-once lease sends only ``x-cos-forbid-overwrite: true``; only 409 FileAlreadyExists
  means "exists"; PathConflict / UploadConflict are transient and retried;
* an SDK-side validation error (CosClientError before any I/O) is permanent: no retry, no 503 loop;
* a JSON error body does not crash the error translation;
* a workflow without a region is verified in its bucket's region, and a wrong-region 404 is no
  "not found";
* the notify payload carries a stable event_id.
"""

from __future__ import annotations

import json
import time

import pytest
from qcloud_cos.cos_exception import CosServiceError

from ci_callback import keys
from ci_callback.adapters import cos as storage
from ci_callback.adapters.cos import CosStorage
from ci_callback.errors import AlreadyExists, OutOfTime, StorageError
from ci_callback.model.parse import parse_callback
from ci_callback_dev.localcos import Fault
from conftest import BUCKET, EVENTS, REGION, TOKEN, invoke
from fake_ci import FakeCI
from fake_scf import FakeSCF

SECRET_ID, SECRET_KEY = "AKIDlocaltest", "localtestkey"


@pytest.fixture
def store(settings):
    from ci_callback.settings import Credentials

    return CosStorage(settings, Credentials(SECRET_ID, SECRET_KEY))


def test_the_lease_is_forbid_overwrite_only(cos, store):
    assert store.create_once(BUCKET, "locks/a", {"n": 1}) is True
    assert store.create_once(BUCKET, "locks/a", {"n": 2}) is False
    puts = [r for r in cos.requests if r.method == "PUT" and r.path.startswith("/locks")]
    assert [r.headers.get("x-cos-forbid-overwrite") for r in puts] == ["true", "true"]
    assert [r.status for r in puts] == [200, 409]
    assert not [r for r in cos.requests if "if-none-match" in r.headers]


@pytest.mark.parametrize("code", ["PathConflict", "UploadConflict"])
def test_concurrent_write_conflicts_are_retried(cos, store, code):
    cos.inject(Fault(status=409, code=code), when=lambda r: r.method == "PUT" and r.path.startswith("/locks"), times=1)
    assert store.create_once(BUCKET, "locks/b", {"n": 1}) is True
    assert [r.status for r in cos.requests if r.method == "PUT" and r.path.startswith("/locks")] == [409, 200]


@pytest.mark.parametrize("code", ["ObjectLocked", "InvalidObjectState"])
def test_other_409s_are_permanent_not_exists(cos, store, code):
    cos.inject(Fault(status=409, code=code), when=lambda r: r.method == "PUT" and r.path.startswith("/locks"), times=None)
    with pytest.raises(StorageError) as failed:
        store.create_once(BUCKET, "locks/c", {"n": 1})
    assert not isinstance(failed.value, AlreadyExists) and not failed.value.transient
    assert failed.value.code == code and len([r for r in cos.requests if r.method == "PUT" and r.path.startswith("/locks")]) == 1


def test_sdk_validation_errors_are_permanent_and_never_sent(cos, store):
    before = len(cos.requests)
    with pytest.raises(StorageError) as failed:
        store.put_json("Not_A_Bucket!", "k", {})
    assert failed.value.transient is False and "bucket" in str(failed.value).lower()
    assert len(cos.requests) == before


def test_network_errors_stay_transient(settings):
    from ci_callback.settings import Credentials

    dead = CosStorage(settings.replace(cos_endpoint="http://127.0.0.1:9"), Credentials(SECRET_ID, SECRET_KEY))
    with pytest.raises(StorageError) as failed:
        dead.head(BUCKET, "k")
    assert failed.value.transient is True


def test_a_callback_whose_write_fails_validation_is_not_a_503_loop(cos, settings, monkeypatch):
    # A bucket name the SDK itself refuses (its format check) can only fail the same way again.
    body = (EVENTS / "apigw-transcode-failed-xml.json").read_text(encoding="utf-8")
    event = json.loads(body)
    event["body"] = event["body"].replace(BUCKET, "Bad_Bucket-1250000000")
    event["queryString"] = {"token": TOKEN}
    status, payload = invoke(event, settings)
    assert (status, payload["status"]) == (400, "rejected")  # a retry cannot help: no 503
    assert "bucket format" in payload["reason"]
    # … and no retries were spent on it: the SDK raised before any request.
    assert not [r for r in cos.requests if "Bad_Bucket" in r.host]


@pytest.mark.parametrize("body, code", [
    ('{"Error": {"Code": "SlowDown", "Message": "x"}}', "SlowDown"),
    ('{"code": "InternalError", "message": "x"}', "InternalError"),
    ('{"Response": {"Code": "X"}}', "X"),
    ("[1, 2]", "Unknown"),
    ("not json, not xml", "Unknown"),
])
def test_json_error_bodies_do_not_crash_the_translation(body, code):
    exc = CosServiceError("PUT", body, 503)
    translated = storage._translate(exc, "put b/k")
    assert translated.code == code and translated.transient


def test_a_workflow_is_verified_in_its_buckets_region(cos, settings):
    event = json.loads((EVENTS / "apigw-workflow-xml.json").read_text(encoding="utf-8"))
    event["queryString"] = {"token": TOKEN}
    callback = parse_callback(event["body"])
    assert callback.input.region is None  # WorkflowFinish names no region
    with FakeCI(SECRET_ID, SECRET_KEY) as ci:
        ci.add_run(callback.run_id, callback.state, callback.input.key)
        ci.bucket_region(callback.input.bucket, "ap-shanghai")
        verifying = settings.replace(verify_jobs=True, ci_endpoint=ci.url)
        # Asked in the function's region: CI answers 404 NoSuchBucket. That is no "no such run":
        # the callback is kept (archived, 503), never rejected.
        status, payload = invoke(event, verifying)
        assert (status, payload["status"]) == (503, "retry"), payload
        assert "CI_CALLBACK_BUCKET_REGIONS" in payload["reason"] or "ap-guangzhou" in payload["reason"]
        mapped = verifying.replace(bucket_regions=((callback.input.bucket, "ap-shanghai"),))
        status, payload = invoke(event, mapped)
        assert (status, payload["status"]) == (200, "processed"), payload
        assert [r.host.split(".")[2] for r in ci.requests] == [REGION, "ap-shanghai"]


def test_the_notify_payload_has_a_stable_event_id(cos, settings):
    event = json.loads((EVENTS / "apigw-transcode-failed-xml.json").read_text(encoding="utf-8"))
    event["queryString"] = {"token": TOKEN}
    callback = parse_callback(event["body"])
    with FakeSCF(SECRET_ID, SECRET_KEY) as scf:
        notifying = settings.replace(notify_function="downstream", scf_endpoint=scf.endpoint)
        assert invoke(event, notifying)[0] == 200
        forced = notifying.replace(actions=notifying.actions - {"dedupe"})  # a replay --force: notify again
        assert invoke(event, forced)[0] == 200
        ids = [i.client_context["event_id"] for i in scf.invocations]
    assert ids == [keys.event_id("job", callback.job_id, "Failed")] * 2
    assert ids[0].startswith("ev-") and len(ids[0]) == 35
    assert keys.event_id("job", callback.job_id, "Success") != ids[0]


def test_a_request_whose_timeout_fires_at_the_deadline_is_out_of_time(cos, store):
    """The client timeout is cut to the deadline: when it fires there, the work is left to do
    (a continuation picks it up), it did not fail."""
    store.put_json(BUCKET, "slow/a", {"n": 1})
    cos.inject(Fault(delay=3), when=lambda r: r.method == "GET" and r.path.startswith("/slow"), times=None)
    near = store.until(time.monotonic() + 0.8)
    with pytest.raises(OutOfTime):
        near.get_json(BUCKET, "slow/a")


# ---------------------------------------------------------------- one region rule, in the adapter


def test_a_workflow_for_a_mapped_bucket_sends_every_cos_request_to_that_region(cos, settings):
    """Given a WorkflowFinish callback (it names no region) for a bucket CI_CALLBACK_BUCKET_REGIONS
    maps to ap-shanghai, when it arrives, then the archive, delivery record, markers and index all
    go to ap-shanghai: the adapter resolves the bucket's region, callers never pick one."""
    event = json.loads((EVENTS / "function-url-workflow-json.json").read_text(encoding="utf-8"))
    event["queryString"] = {"token": TOKEN}
    callback = parse_callback(event["body"])
    assert callback.input.region is None and callback.input.bucket
    mapped = settings.replace(bucket_regions=((callback.input.bucket, "ap-shanghai"),))
    cos.reset_requests()
    status, payload = invoke(event, mapped)
    assert (status, payload["status"]) == (200, "processed"), payload
    hosts = {r.host.split(".")[2] for r in cos.requests}
    assert hosts == {"ap-shanghai"}, hosts
    assert len(cos.requests) >= 4  # archive, delivery record, lease, manifest, pointer, done marker


def test_a_job_writes_where_the_callback_says_its_bucket_is(cos, settings):
    """What the callback says of a bucket's region wins over the mapping; other buckets (the
    index bucket) use the mapping, else the function's region."""
    event = json.loads((EVENTS / "apigw-transcode-failed-xml.json").read_text(encoding="utf-8"))
    event["queryString"] = {"token": TOKEN}
    callback = parse_callback(event["body"])
    assert callback.input.region
    mapped = settings.replace(bucket_regions=((callback.input.bucket, "ap-beijing"),))
    cos.reset_requests()
    status, payload = invoke(event, mapped)
    assert status == 200, payload
    assert {r.host.split(".")[2] for r in cos.requests} == {callback.input.region}
