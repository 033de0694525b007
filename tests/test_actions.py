"""The COS actions, as a product contract.

Given a real CI callback, when it arrives through ``handle`` (what ``main_handler``
calls) as an API Gateway event, then these COS objects and tags exist. Every test
runs the real pipeline against a real local S3-compatible server (``LocalCOS``) with
the real COS SDK; outputs are seeded with ``put_object`` first, as CI would have
written them. What the README promises ("What it writes", "Trust, durability…",
"Adding your own handler") is checked here object by object.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from xml.sax.saxutils import escape

import pytest

from ci_callback.actions.builtin import MAX_TAG_KEY, MAX_TAG_VALUE, MAX_TAGS, merge_tags, valid_tag
from ci_callback.model.parse import parse_callback
from ci_callback.settings import Settings
from ci_callback_dev.localcos import Fault, LocalCOS
from conftest import BUCKET, EVENTS, REGION, TOKEN, corpus_file, invoke, url_event

# Buckets the corpus samples name.
MEDIA_BUCKET = "test-123456789"  # SmartCover, Transcode, Snapshot, Segment
PIC_BUCKET = "test-1234567890"  # PicProcess, WorkflowFinish
REVIEW_BUCKET = "test-1251000000"  # ReviewImage-json-5
CORPUS_BUCKETS = (MEDIA_BUCKET, PIC_BUCKET, REVIEW_BUCKET)

OUR_TAG_KEYS = {"ci-job-id", "ci-tag", "ci-source"}


# ---------------------------------------------------------------- helpers


@pytest.fixture
def store(cos):
    """The local COS with the corpus buckets created and the request log cleared."""
    for bucket in CORPUS_BUCKETS:
        cos.create_bucket(bucket)
    cos.reset_requests()
    return cos


def _content_type(body: bytes) -> str:
    return "application/json" if body.lstrip()[:1] in (b"{", b"[") else "application/xml"


def deliver(body, settings, **kwargs) -> tuple[int, dict]:
    """POST one callback body through the Function URL trigger, as CI does."""
    raw = body if isinstance(body, bytes) else body.encode("utf-8")
    return invoke(url_event(raw, content_type=_content_type(raw)), settings, **kwargs)


def deliver_event(name: str, settings) -> tuple[int, dict]:
    """One of our sample SCF events, with our token in its query string."""
    event = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    query = event.get("queryString") if isinstance(event.get("queryString"), dict) else {}
    event["queryString"] = dict(query, token=TOKEN)
    return invoke(event, settings)


def seed(cos, bucket: str, keys: Iterable[str], tags: dict[str, str] | None = None) -> None:
    client = cos.client()
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=f"content of {key}".encode())
        if tags:
            client.put_object_tagging(Bucket=bucket, Key=key, Tagging=_tagging(tags))


def _tagging(tags: dict[str, str]) -> dict:
    return {"TagSet": {"Tag": [{"Key": k, "Value": v} for k, v in tags.items()]}}


def tags_of(cos, bucket: str, key: str) -> dict[str, str]:
    response = cos.client().get_object_tagging(Bucket=bucket, Key=key)
    items = (response.get("TagSet") or {}).get("Tag") or []
    if isinstance(items, dict):
        items = [items]
    return {item["Key"]: item.get("Value") or "" for item in items}


def read_bytes(cos, bucket: str, key: str) -> bytes:
    response = cos.client().get_object(Bucket=bucket, Key=key, KeySimplifyCheck=False)
    return response["Body"].get_raw_stream().read()


def read_json(cos, bucket: str, key: str) -> dict:
    return json.loads(read_bytes(cos, bucket, key))


def list_keys(cos, bucket: str, prefix: str = "") -> list[str]:
    client, keys, marker = cos.client(), [], ""
    while True:
        page = client.list_objects(Bucket=bucket, Prefix=prefix, Marker=marker, MaxKeys=1000)
        contents = page.get("Contents") or []
        keys += [item["Key"] for item in contents]
        if str(page.get("IsTruncated", "false")).lower() != "true" or not contents:
            return sorted(keys)
        marker = page.get("NextMarker") or contents[-1]["Key"]


def snapshot(cos, bucket: str) -> dict[str, tuple[bytes, dict[str, str]]]:
    """Every object in the bucket: its bytes and its tags."""
    return {key: (read_bytes(cos, bucket, key), tags_of(cos, bucket, key)) for key in list_keys(cos, bucket)}


def without_deliveries(snap: dict[str, tuple[bytes, dict[str, str]]]) -> dict[str, tuple[bytes, dict[str, str]]]:
    """Each delivery adds its own delivery record by design (so duplicates can be counted);
    everything else a re-delivery leaves must match one delivery byte for byte."""
    return {key: value for key, value in snap.items() if "/deliveries/" not in key}


def deliveries_in(snap: dict[str, tuple[bytes, dict[str, str]]]) -> int:
    return sum(1 for key in snap if "/deliveries/" in key)


def log_lines(capsys) -> list[dict]:
    """The JSON log lines written to stdout so far (one object per line)."""
    lines = []
    for line in capsys.readouterr().out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def tagging_requests(records, method: str | None = None) -> list:
    return [r for r in records if r.query.startswith("tagging") and (method is None or r.method == method)]


def expected_tags(job_id: str, tag: str) -> dict[str, str]:
    return {"ci-job-id": job_id, "ci-tag": tag, "ci-source": "ci-callback"}


def parsed(body: bytes) -> dict:
    """The normalised callback, as a JSON round trip (what the index documents hold)."""
    return json.loads(json.dumps(parse_callback(body).to_dict(), default=str))


# ---------------------------------------------------------------- 1. SmartCover

SMARTCOVER_JOB = "j6842765cf84611ecb8546d80f2baf56f"
SMARTCOVER_COVERS = [f"output/smartcover-{i}.jpg" for i in range(5)]
SMARTCOVER_INDEX = f"ci-index/{MEDIA_BUCKET}/input/demo.mp4/job-{SMARTCOVER_JOB}.json"


def test_smartcover_index_lists_every_cover_and_every_cover_is_tagged(store, settings):
    body = corpus_file("SmartCover-xml-1.xml")
    seed(store, MEDIA_BUCKET, SMARTCOVER_COVERS[:3])
    user_tags = {"owner": "marketing", "campaign": "spring 2026"}
    seed(store, MEDIA_BUCKET, SMARTCOVER_COVERS[3:4], tags=user_tags)  # a cover the user tagged already
    seed(store, MEDIA_BUCKET, SMARTCOVER_COVERS[4:])

    status, payload = deliver(body, settings)

    assert (status, payload["status"]) == (200, "processed")
    assert payload["handlers"] == ["job_succeeded"]
    index = read_json(store, MEDIA_BUCKET, SMARTCOVER_INDEX)
    assert index["schema"] == 1
    assert index["type"] == "SmartCoverResult"
    assert (index["kind"], index["event"], index["tag"], index["state"]) == ("job", "TaskFinish", "SmartCover", "Success")
    assert index["job_id"] == SMARTCOVER_JOB
    assert index["input"] == {"bucket": MEDIA_BUCKET, "region": "ap-chongqing", "object": "input/demo.mp4"}
    assert index["covers"] == [{"bucket": MEDIA_BUCKET, "region": "ap-chongqing", "object": key}
                               for key in SMARTCOVER_COVERS]
    assert index["outputs"] == index["covers"]
    assert (index["created_at"], index["started_at"], index["ended_at"]) == (
        "2022-06-30T15:29:42+08:00", "2022-06-30T15:29:43+08:00", "2022-06-30T15:29:48+08:00")
    assert "workflow" in index and index["workflow"] is None  # this sample ran outside a workflow
    assert index["user_data"] == "This is my SmartCover job."
    # The whole normalised callback is in the index, nothing lost.
    assert {k: v for k, v in index.items() if k not in ("schema", "type", "covers")} == parsed(body)

    ours = expected_tags(SMARTCOVER_JOB, "SmartCover")
    for key in SMARTCOVER_COVERS:
        want = dict(ours, **user_tags) if key == SMARTCOVER_COVERS[3] else ours
        assert tags_of(store, MEDIA_BUCKET, key) == want, key


def test_smartcover_index_names_the_workflow_when_the_job_ran_in_one(cos, settings):
    # Our own sample event carries <Workflow>; the corpus SmartCover sample does not.
    event = json.loads((EVENTS / "apigw-smartcover-xml.json").read_text(encoding="utf-8"))
    body = event["body"].encode("utf-8")
    callback = parse_callback(body)
    seed(cos, BUCKET, [o.key for o in callback.outputs])

    status, payload = deliver(body, settings)

    assert (status, payload["status"]) == (200, "processed")
    index = read_json(cos, BUCKET, f"ci-index/{BUCKET}/videos/launch day.mp4/job-j1a2b3c4d5e6f11ee9f0a525400000001.json")
    assert index["workflow"] == {"name": "SmartCover_1700000000001", "run_id": "i1a2b3c4d5e6f11ee9f0a525400000002",
                                 "workflow_id": "w1a2b3c4d5e6f11ee9f0a525400000003", "workflow_name": "covers"}
    assert [c["object"] for c in index["covers"]] == [f"covers/launch-{i}.jpg" for i in range(5)]


# ---------------------------------------------------------------- 2. PicProcess

PIC_JOB = "c93984788066911ed89ed352d4d9d2084"


@pytest.mark.parametrize("sample", ["PicProcess-xml-1.xml", "PicProcess-json-2.json"])
def test_picprocess_index_has_original_and_processed_image_info(store, settings, sample):
    body = corpus_file(sample)
    seed(store, PIC_BUCKET, ["input/deer.jpg", "output/out.jpg"])

    status, payload = deliver(body, settings)

    assert (status, payload["status"]) == (200, "processed")
    index = read_json(store, PIC_BUCKET, f"ci-index/{PIC_BUCKET}/input/deer.jpg/job-{PIC_JOB}.json")
    assert (index["type"], index["tag"], index["job_id"], index["state"]) == ("PicProcessResult", "PicProcess", PIC_JOB, "Success")
    assert index["input"]["object"] == "input/deer.jpg"
    assert index["outputs"] == [{"bucket": PIC_BUCKET, "region": "ap-chongqing", "object": "output/out.jpg"}]
    original, processed = index["original"], index["processed"]
    assert original["etag"] == "d5a491cd3d8d071e3212c3478e8e35a1"  # CI sends it quoted; we strip the quotes
    assert (original["format"], original["width"], original["height"], original["quality"]) == ("JPEG", 500, 417, 68)
    assert (processed["format"], processed["width"], processed["height"], processed["quality"], processed["size"]) == (
        "JPEG", 417, 500, 68, 24911)
    assert processed["etag"] is None  # the samples send an empty/absent processed Etag
    if sample.endswith(".json"):
        assert index["workflow"]["run_id"] == "ic90edd59f84f11ec9d4f525400a3c59f"
        assert index["cos_headers"]["Content-Type"] == "image/jpeg"
    assert tags_of(store, PIC_BUCKET, "output/out.jpg") == expected_tags(PIC_JOB, "PicProcess")
    assert tags_of(store, PIC_BUCKET, "input/deer.jpg") == {}  # only outputs are tagged


def test_picprocess_processed_etag_is_stored_without_quotes(cos, settings):
    event = json.loads((EVENTS / "function-url-picprocess-json.json").read_text(encoding="utf-8"))
    seed(cos, BUCKET, ["thumbs/鹿 deer+1.webp"])

    status, payload = deliver_event("function-url-picprocess-json.json", settings)

    assert (status, payload["status"]) == (200, "processed")
    job_id = json.loads(event["body"])["JobsDetail"][0]["JobId"]
    index = read_json(cos, BUCKET, f"ci-index/{BUCKET}/photos/鹿 deer+1.jpg/job-{job_id}.json")
    assert index["original"]["etag"] == "7b4f0a1e5d2c3b4a59687766554433aa"
    assert index["processed"]["etag"] == "0d1c2b3a495867768594a3b2c1d0e0f1"
    assert (index["processed"]["format"], index["processed"]["size"], index["processed"]["quality"]) == ("WEBP", 9214, 80)
    assert tags_of(cos, BUCKET, "thumbs/鹿 deer+1.webp") == expected_tags(job_id, "PicProcess")


# ---------------------------------------------------------------- 3. other Tags: generic index of outputs

SNAPSHOT_OUTPUTS = [f"output/snapshot-{i}.jpg" for i in range(6)] + ["output/sprite-0.jpg"]


@pytest.mark.parametrize(
    ("sample", "tag", "job_id", "outputs"),
    [
        ("Transcode-xml-1.xml", "Transcode", "j68427030f84611ecb8546d80f2baf56f", ["output/transcode.mp4"]),
        ("Snapshot-xml-1.xml", "Snapshot", "j4e431ba0f86711ecb8546d80f2baf56f", SNAPSHOT_OUTPUTS),
    ],
)
def test_media_job_index_lists_every_output_and_tags_each(store, settings, sample, tag, job_id, outputs):
    body = corpus_file(sample)
    seed(store, MEDIA_BUCKET, outputs)

    status, payload = deliver(body, settings)

    assert (status, payload["status"]) == (200, "processed")
    index = read_json(store, MEDIA_BUCKET, f"ci-index/{MEDIA_BUCKET}/input/demo.mp4/job-{job_id}.json")
    assert (index["type"], index["tag"], index["job_id"]) == ("MediaResult", tag, job_id)
    assert [o["object"] for o in index["outputs"]] == outputs
    assert all(o["bucket"] == MEDIA_BUCKET and o["region"] == "ap-chongqing" for o in index["outputs"])
    assert {k: v for k, v in index.items() if k not in ("schema", "type")} == parsed(body)
    for key in outputs:
        assert tags_of(store, MEDIA_BUCKET, key) == expected_tags(job_id, tag), key
    tag_action = next(a for a in payload["actions"] if a["action"] == "tag")
    assert tag_action == {"action": "tag", "objects": len(outputs), "tagged": len(outputs)}


def test_a_missing_output_is_reported_not_fatal(store, settings, capsys):
    body = corpus_file("Snapshot-xml-1.xml")
    seed(store, MEDIA_BUCKET, SNAPSHOT_OUTPUTS[:-1])  # the sprite was never written

    status, payload = deliver(body, settings)

    assert (status, payload["status"]) == (200, "processed")
    tag_action = next(a for a in payload["actions"] if a["action"] == "tag")
    assert (tag_action["tagged"], tag_action["missing"]) == (6, 1)
    assert "output/sprite-0.jpg" not in list_keys(store, MEDIA_BUCKET, "output/")  # tagging never creates objects
    warns = [line for line in log_lines(capsys) if line["level"] == "WARN"]
    assert any(line.get("key") == "output/sprite-0.jpg" for line in warns)


# ---------------------------------------------------------------- 4. failed jobs

FAILED_JOB = "j68427030f84611ecb8546d80f2baf56f"


def failed_transcode() -> bytes:
    """Transcode-xml-1 as CI sends it when the job fails."""
    body = corpus_file("Transcode-xml-1.xml").decode("utf-8")
    for old, new in [("<State>Success</State>", "<State>Failed</State>"),
                     ("<Code>Success</Code>", "<Code>InvalidArgument</Code>"),
                     ("<Message>success</Message>", "<Message>the input media has no video stream</Message>")]:
        assert old in body
        body = body.replace(old, new)
    return body.encode("utf-8")


def test_failed_job_writes_a_failure_record_and_nothing_else(store, settings, capsys):
    seed(store, MEDIA_BUCKET, ["input/demo.mp4", "output/transcode.mp4"])
    store.reset_requests()
    capsys.readouterr()

    status, payload = deliver(failed_transcode(), settings)
    requests = store.requests

    assert (status, payload["status"], payload["state"]) == (200, "processed", "Failed")
    assert payload["handlers"] == ["job_failed"]
    record = read_json(store, MEDIA_BUCKET, f"ci-index/failures/{FAILED_JOB}.json")
    assert record == {
        "schema": 1,
        "kind": "job",
        "job_id": FAILED_JOB,
        "tag": "Transcode",
        "state": "Failed",
        "code": "InvalidArgument",
        "message": "the input media has no video stream",
        "input": {"bucket": MEDIA_BUCKET, "region": "ap-chongqing", "object": "input/demo.mp4"},
        "workflow": None,
        "created_at": "2022-06-30T15:29:42+08:00",
        "ended_at": "2022-06-30T15:30:08+08:00",
    }
    # No job index, no tags: the failure record is the only index object.
    assert list_keys(store, MEDIA_BUCKET, "ci-index/") == [f"ci-index/failures/{FAILED_JOB}.json"]
    assert tags_of(store, MEDIA_BUCKET, "output/transcode.mp4") == {}
    assert tagging_requests(requests) == []
    errors = [line for line in log_lines(capsys) if line["level"] == "ERROR"]
    assert len(errors) == 1
    error = errors[0]
    assert (error["job_id"], error["tag"], error["state"], error["code"]) == (FAILED_JOB, "Transcode", "Failed", "InvalidArgument")
    assert error["message"] == "the input media has no video stream"
    assert error["input"]["object"] == "input/demo.mp4"


def test_sample_failed_event_writes_its_failure_record(cos, settings):
    status, payload = deliver_event("apigw-transcode-failed-xml.json", settings)

    assert (status, payload["status"]) == (200, "processed")
    record = read_json(cos, BUCKET, "ci-index/failures/j1a2b3c4d5e6f11ee9f0a525400000008.json")
    assert (record["code"], record["message"]) == ("InvalidArgument", "the input media has no video stream")
    assert record["input"]["object"] == "videos/broken.mp4"


# ---------------------------------------------------------------- 5. WorkflowFinish

RUN_ID = "i166ee19017b011eda8a5525400c540df"
WORKFLOW_BASE = f"ci-index/{PIC_BUCKET}/wk-test/game.mp4"
RUN_CREATED = "<CreateTime>2022-08-09 14:54:17+0800</CreateTime>"


def other_run(run_id: str, create_time: str) -> bytes:
    """WorkflowFinish-xml-1 as another run of the same workflow on the same input."""
    body = corpus_file("WorkflowFinish-xml-1.xml").decode("utf-8")
    assert body.count(RUN_ID) == 1 and body.count(RUN_CREATED) == 1
    body = body.replace(RUN_ID, run_id).replace(RUN_CREATED, f"<CreateTime>{create_time}</CreateTime>")
    return body.encode("utf-8")


@pytest.mark.parametrize("sample", ["WorkflowFinish-xml-1.xml", "WorkflowFinish-json-1.json"])
def test_workflow_run_manifest_lists_every_task_and_points_latest_run(store, settings, sample):
    body = corpus_file(sample)

    status, payload = deliver(body, settings)

    assert (status, payload["status"], payload["kind"]) == (200, "processed", "workflow")
    manifest_key = f"{WORKFLOW_BASE}/run-{RUN_ID}.json"
    manifest = read_json(store, PIC_BUCKET, manifest_key)
    assert (manifest["schema"], manifest["run_id"], manifest["workflow_id"], manifest["workflow_name"]) == (
        1, RUN_ID, "web6ac56c1ef54dbfa44d7f4103203be9", "workflow-3")
    assert manifest["state"] == "Success"
    assert manifest["input"] == {"bucket": PIC_BUCKET, "object": "wk-test/game.mp4"}
    assert [(t["type"], t["job_id"], t["state"]) for t in manifest["tasks"]] == [
        ("Snapshot", "j23c11e1e17b011edaab4ab15ec33d076", "Success"),
        ("Transcode", "j168668b217b011ed8efb27bb229e2d11", "Success"),
    ]
    assert [t["name"] for t in manifest["tasks"]] == ["Snapshot_1581665960536", "Transcode_1581665960537"]
    assert manifest["tasks"][0]["template_name"] == "snapshot_1280*720_3"
    assert {k: v for k, v in manifest.items() if k != "schema"} == parsed(body)
    pointer = read_json(store, PIC_BUCKET, f"{WORKFLOW_BASE}/latest-run.json")
    assert pointer == {
        "schema": 1,
        "run_id": RUN_ID,
        "workflow_id": "web6ac56c1ef54dbfa44d7f4103203be9",
        "state": "Success",
        "created_at": "2022-08-09T14:54:17+08:00",
        "manifest": {"bucket": PIC_BUCKET, "key": manifest_key},
    }
    assert sorted(list_keys(store, PIC_BUCKET, "ci-index/")) == sorted([manifest_key, f"{WORKFLOW_BASE}/latest-run.json"])


def test_an_older_run_delivered_later_does_not_replace_the_latest_run_pointer(store, settings):
    older_id = "i0000000017b011eda8a5525400c540df"
    newer_id = "i9999999917b011eda8a5525400c540df"
    pointer_key = f"{WORKFLOW_BASE}/latest-run.json"

    assert deliver(corpus_file("WorkflowFinish-xml-1.xml"), settings)[0] == 200
    assert deliver(other_run(older_id, "2022-08-08 09:00:00+0800"), settings)[0] == 200

    # The older run's manifest is written, but the pointer keeps the newer run.
    assert read_json(store, PIC_BUCKET, f"{WORKFLOW_BASE}/run-{older_id}.json")["run_id"] == older_id
    assert read_json(store, PIC_BUCKET, pointer_key)["run_id"] == RUN_ID

    # A genuinely newer run moves it.
    assert deliver(other_run(newer_id, "2022-08-10 08:00:00+0800"), settings)[0] == 200
    pointer = read_json(store, PIC_BUCKET, pointer_key)
    assert (pointer["run_id"], pointer["created_at"]) == (newer_id, "2022-08-10T08:00:00+08:00")
    assert pointer["manifest"]["key"] == f"{WORKFLOW_BASE}/run-{newer_id}.json"


def test_latest_run_compares_instants_not_strings_across_offsets(store, settings):
    """14:54:17+08:00 is 06:54:17Z, so a run at 07:30:00Z is newer though its text sorts lower."""
    later_id = "i7777777717b011eda8a5525400c540df"
    earlier_id = "i1111111117b011eda8a5525400c540df"
    pointer_key = f"{WORKFLOW_BASE}/latest-run.json"

    assert deliver(corpus_file("WorkflowFinish-xml-1.xml"), settings)[0] == 200
    assert deliver(other_run(later_id, "2022-08-09T07:30:00Z"), settings)[0] == 200
    assert read_json(store, PIC_BUCKET, pointer_key)["run_id"] == later_id

    # And one at 06:00:00Z (14:00+08:00, text sorts lower too) is older: no change.
    assert deliver(other_run(earlier_id, "2022-08-09T06:00:00Z"), settings)[0] == 200
    assert read_json(store, PIC_BUCKET, pointer_key)["run_id"] == later_id


def test_sample_failed_workflow_run_is_recorded(cos, settings):
    status, payload = deliver_event("function-url-workflow-json.json", settings)

    assert (status, payload["status"]) == (200, "processed")
    base = f"ci-index/{BUCKET}/photos/鹿 deer+1.jpg"
    manifest = read_json(cos, BUCKET, f"{base}/run-i1a2b3c4d5e6f11ee9f0a52540000000e.json")
    assert manifest["state"] == "Failed"
    assert [(t["job_id"], t["state"], t["code"]) for t in manifest["tasks"]] == [
        ("c1a2b3c4d5e6f11ee9f0a525400000010", "Failed", "InvalidArgument")]
    assert read_json(cos, BUCKET, f"{base}/latest-run.json")["state"] == "Failed"


# ---------------------------------------------------------------- 6. moderation


def test_review_image_detail_record(store, settings):
    body = corpus_file("ReviewImage-json-5.json")

    status, payload = deliver(body, settings)

    assert (status, payload["status"], payload["kind"]) == (200, "processed", "moderation")
    key = f"ci-index/{REVIEW_BUCKET}/ftest.jpg/review-ReviewImage-ia70a9f88b131911eda2d7525400000000d.json"
    record = read_json(store, REVIEW_BUCKET, key)
    assert (record["schema"], record["event"], record["job_id"]) == (1, "ReviewImage", "ia70a9f88b131911eda2d7525400000000d")
    assert (record["result"], record["label"], record["score"]) == (0, "Normal", 56)
    assert record["input"] == {"bucket": REVIEW_BUCKET, "region": "ap-guangzhou", "object": "ftest.jpg"}
    assert record["categories"]["Politics"]["score"] == 56
    assert {k: v for k, v in record.items() if k != "schema"} == parsed(body)
    assert list_keys(store, REVIEW_BUCKET, "ci-index/") == [key]


@pytest.mark.parametrize(
    ("event", "key", "result", "label", "score"),
    [
        ("function-url-review-detail-json.json",
         "photos/鹿 deer+1.jpg/review-ReviewImage-si1a2b3c4d5e6f11ee9f0a525400000011.json", 2, "Ads", 72),
        ("apigw-review-simple-json.json",
         "uploads/avatar 1.png/review-ReviewImage-si1a2b3c4d5e6f11ee9f0a525400000012.json", 1, "Porn", 91),
    ],
)
def test_review_record_from_sample_events(cos, settings, event, key, result, label, score):
    status, payload = deliver_event(event, settings)

    assert (status, payload["status"]) == (200, "processed")
    record = read_json(cos, BUCKET, f"ci-index/{BUCKET}/{key}")
    assert (record["result"], record["label"], record["score"]) == (result, label, score)
    assert record["input"]["bucket"] == BUCKET


def test_console_test_request_answers_test_and_writes_nothing(cos, settings):
    cos.reset_requests()

    status, payload = deliver_event("function-url-console-test-json.json", settings)

    assert (status, payload["status"]) == (200, "test")
    assert cos.request_count == 0
    assert list_keys(cos, BUCKET) == []


# ---------------------------------------------------------------- 7. concurrency

SEGMENT_JOB = "jd0c0da74f86511ec8a5a87e016101404"
SEGMENT_OUTPUTS = [f"output/segment-{i}" for i in range(9)]
DELAY = 0.2


def _deliver_segment(fanout: int, delay: float = 0.0) -> dict:
    """Deliver Segment-xml-1 (9 outputs) to a fresh local COS; measure wall time and requests."""
    body = corpus_file("Segment-xml-1.xml")
    with LocalCOS() as server:
        server.create_bucket(MEDIA_BUCKET)
        seed(server, MEDIA_BUCKET, SEGMENT_OUTPUTS)
        settings = Settings(tokens=(TOKEN,), cos_endpoint=server.endpoint, region=REGION, fanout=fanout)
        if delay:
            server.inject(Fault(delay=delay), when=lambda r: r.query.startswith("tagging"), times=None)
        server.reset_requests()
        started = time.perf_counter()
        status, payload = deliver(body, settings)
        wall = time.perf_counter() - started
        records = server.requests
        server.clear_faults()
        tags = {key: tags_of(server, MEDIA_BUCKET, key) for key in SEGMENT_OUTPUTS}
    assert (status, payload["status"]) == (200, "processed")
    return {"wall": wall, "requests": len(records), "records": records, "tags": tags}


def test_nine_outputs_are_tagged_concurrently(capsys):
    want = expected_tags(SEGMENT_JOB, "Segment")
    runs = {
        (fanout, delay): _deliver_segment(fanout, delay)
        for fanout in (10, 1)
        for delay in (0.0, DELAY)
    }
    for (fanout, delay), run in runs.items():
        assert run["tags"] == {key: want for key in SEGMENT_OUTPUTS}, (fanout, delay)
        # archive and its delivery record, lease, 9 × (get + put tags), index, done marker
        assert run["requests"] == 23, (fanout, delay, [(r.method, r.path, r.query) for r in run["records"]])
        assert len(tagging_requests(run["records"], "GET")) == 9
        assert len(tagging_requests(run["records"], "PUT")) == 9

    concurrent, sequential = runs[(10, DELAY)], runs[(1, DELAY)]
    # Each output costs two delayed requests (read tags, write tags): 9 × 2 × 0.2 s = 3.6 s in a row.
    assert sequential["wall"] >= 9 * 2 * DELAY
    # With the pool they overlap: well under even 9 × 0.2 s.
    assert concurrent["wall"] < 9 * DELAY * 0.75
    # Concurrency shows in the log too: the workers all asked for tags before the first PUT arrived.
    first_put = next(r.n for r in concurrent["records"] if r.method == "PUT" and r.query.startswith("tagging"))
    gets_before = [r for r in concurrent["records"] if r.n < first_put and r.method == "GET" and r.query.startswith("tagging")]
    assert len(gets_before) >= 8

    with capsys.disabled():
        print()
        for (fanout, delay), run in runs.items():
            mode = "concurrent (fanout 10)" if fanout == 10 else "sequential (fanout 1)"
            print(f"[figures] Segment-xml-1, 9 outputs, {mode}, tagging delay {delay:.1f} s: "
                  f"{run['requests']} COS requests, wall {run['wall'] * 1000:.0f} ms")


# ---------------------------------------------------------------- 8. tag merging and limits


def _user_tags(n: int) -> dict[str, str]:
    return {f"user-{i}": f"value {i}" for i in range(n)}


def test_object_with_eight_user_tags_gets_only_what_fits(store, settings, capsys):
    seed(store, MEDIA_BUCKET, ["output/transcode.mp4"], tags=_user_tags(8))
    capsys.readouterr()

    status, _ = deliver(corpus_file("Transcode-xml-1.xml"), settings)

    assert status == 200
    tags = tags_of(store, MEDIA_BUCKET, "output/transcode.mp4")
    assert len(tags) == MAX_TAGS == 10
    assert {k: tags[k] for k in _user_tags(8)} == _user_tags(8)  # every user tag kept, unchanged
    assert (tags["ci-job-id"], tags["ci-tag"]) == ("j68427030f84611ecb8546d80f2baf56f", "Transcode")
    assert "ci-source" not in tags
    warns = [line for line in log_lines(capsys) if line["level"] == "WARN" and "skipped" in line]
    assert [w["skipped"] for w in warns] == [["ci-source"]]


def test_object_with_ten_user_tags_is_left_alone(store, settings, capsys):
    seed(store, MEDIA_BUCKET, ["output/transcode.mp4"], tags=_user_tags(10))
    store.reset_requests()
    capsys.readouterr()

    status, payload = deliver(corpus_file("Transcode-xml-1.xml"), settings)
    requests = store.requests

    assert (status, payload["status"]) == (200, "processed")
    assert tags_of(store, MEDIA_BUCKET, "output/transcode.mp4") == _user_tags(10)
    assert tagging_requests(requests, "PUT") == []  # nothing changes, nothing is written
    assert next(a for a in payload["actions"] if a["action"] == "tag")["unchanged"] == 1
    warns = [line for line in log_lines(capsys) if line["level"] == "WARN" and "skipped" in line]
    assert [sorted(w["skipped"]) for w in warns] == [sorted(OUR_TAG_KEYS)]
    # The index is still written.
    assert list_keys(store, MEDIA_BUCKET, f"ci-index/{MEDIA_BUCKET}/")


@pytest.mark.parametrize(
    ("job_id", "reason"),
    [
        ("j任务#0001", "characters COS does not allow in tag values"),
        ("j" + "a" * MAX_TAG_VALUE, "longer than 256 characters"),
    ],
)
def test_tag_values_cos_would_refuse_are_skipped(store, settings, capsys, job_id, reason):
    body = corpus_file("Transcode-xml-1.xml").decode("utf-8").replace(
        "<JobId>j68427030f84611ecb8546d80f2baf56f</JobId>", f"<JobId>{escape(job_id)}</JobId>").encode("utf-8")
    seed(store, MEDIA_BUCKET, ["output/transcode.mp4"], tags={"owner": "me"})
    capsys.readouterr()

    status, payload = deliver(body, settings)

    assert (status, payload["status"]) == (200, "processed"), reason
    assert tags_of(store, MEDIA_BUCKET, "output/transcode.mp4") == {
        "owner": "me", "ci-tag": "Transcode", "ci-source": "ci-callback"}
    warns = [line for line in log_lines(capsys) if line["level"] == "WARN" and "skipped" in line]
    assert [w["skipped"] for w in warns] == [["ci-job-id"]]
    # The index still names the job exactly.
    index_keys = list_keys(store, MEDIA_BUCKET, f"ci-index/{MEDIA_BUCKET}/input/demo.mp4/")
    assert len(index_keys) == 1
    assert read_json(store, MEDIA_BUCKET, index_keys[0])["job_id"] == job_id


def test_valid_tag_follows_cos_limits():
    assert valid_tag("ci-job-id", "j68427030f84611ecb8546d80f2baf56f")
    assert valid_tag("k", "")  # an empty value is allowed
    assert valid_tag("A-Z a-z 0-9 +-=._:/", "A-Z a-z 0-9 +-=._:/")
    assert valid_tag("k" * MAX_TAG_KEY, "v" * MAX_TAG_VALUE)
    assert not valid_tag("", "v")
    assert not valid_tag("k" * (MAX_TAG_KEY + 1), "v")
    assert not valid_tag("k", "v" * (MAX_TAG_VALUE + 1))
    assert MAX_TAG_KEY == 127 and MAX_TAG_VALUE == 255  # "key < 128 bytes, value < 256 bytes" on PUT
    for bad in ("鹿", "a#b", "a,b", "a&b", "a\nb", "a%b", "a*b", "a?b", "tab\t", "a@b", "user@example.com"):
        assert not valid_tag("k", bad), bad
        assert not valid_tag(bad, "v"), bad


def test_merge_tags_keeps_existing_and_adds_what_fits(capsys):
    ours = {"ci-job-id": "j1", "ci-tag": "Transcode", "ci-source": "ci-callback"}
    assert merge_tags({}, ours) == ours
    assert merge_tags({"owner": "me"}, ours) == {"owner": "me", **ours}
    assert log_lines(capsys) == []  # nothing skipped, nothing logged

    eight = _user_tags(8)
    assert merge_tags(eight, ours) == {**eight, "ci-job-id": "j1", "ci-tag": "Transcode"}
    ten = _user_tags(10)
    assert merge_tags(ten, ours) == ten
    # Our own key already present (an earlier job) is updated in place, even when full.
    full = {**_user_tags(9), "ci-job-id": "j0"}
    assert merge_tags(full, ours) == {**_user_tags(9), "ci-job-id": "j1"}
    # A user's tag that our charset would refuse is still theirs to keep.
    odd = {"标签": "值"}
    assert merge_tags(odd, ours) == {**odd, **ours}
    # Invalid ones of ours are skipped; the inputs are never modified.
    existing = {"owner": "me"}
    assert merge_tags(existing, {"ci-job-id": "j#1", "ci-tag": "T"}) == {"owner": "me", "ci-tag": "T"}
    assert existing == {"owner": "me"}
    warns = [line for line in log_lines(capsys) if line["level"] == "WARN"]
    assert [w["skipped"] for w in warns] == [
        ["ci-source"], ["ci-job-id", "ci-tag", "ci-source"], ["ci-tag", "ci-source"], ["ci-job-id"]]


# ---------------------------------------------------------------- 9. unicode and special keys

ODD_OUTPUTS = ["a/../b.jpg", "50% off+more 鹿.jpg", "dir with space/鹿+1.jpg", "x/./y.jpg", "c//d.jpg"]


def odd_smartcover(input_key: str) -> bytes:
    """SmartCover-xml-1 with an odd input key and five odd output names."""
    body = corpus_file("SmartCover-xml-1.xml").decode("utf-8")
    body = body.replace("<Object>input/demo.mp4</Object>", f"<Object>{escape(input_key)}</Object>")
    for old, new in zip(SMARTCOVER_COVERS, ODD_OUTPUTS):
        body = body.replace(f"<ObjectName>{old}</ObjectName>", f"<ObjectName>{escape(new)}</ObjectName>")
    return body.encode("utf-8")


@pytest.mark.parametrize(
    ("input_key", "index_base"),
    [
        # Readable: only % is escaped.
        ("videos/50% off+more 鹿.mp4", f"ci-index/{MEDIA_BUCKET}/videos/50%25 off+more 鹿.mp4"),
        # Dot segments: the whole key is percent-encoded into one segment.
        ("a/../b.mp4", f"ci-index/{MEDIA_BUCKET}/a%2F..%2Fb.mp4"),
        ("in put//鹿.mp4", f"ci-index/{MEDIA_BUCKET}/in%20put%2F%2F%E9%B9%BF.mp4"),
    ],
)
def test_odd_keys_are_tagged_exactly_and_named_exactly(store, settings, input_key, index_base):
    body = odd_smartcover(input_key)
    seed(store, MEDIA_BUCKET, [input_key, *ODD_OUTPUTS])
    seed(store, MEDIA_BUCKET, ["b.jpg", "y.jpg", "c/d.jpg", "x/y.jpg"])  # where a normalised path would land
    assert set(ODD_OUTPUTS) <= set(list_keys(store, MEDIA_BUCKET))  # the SDK kept the keys as given

    status, payload = deliver(body, settings)

    assert (status, payload["status"]) == (200, "processed")
    for key in ODD_OUTPUTS:
        assert tags_of(store, MEDIA_BUCKET, key) == expected_tags(SMARTCOVER_JOB, "SmartCover"), key
    for decoy in ("b.jpg", "y.jpg", "c/d.jpg", "x/y.jpg", input_key):
        assert tags_of(store, MEDIA_BUCKET, decoy) == {}, decoy
    index_key = f"{index_base}/job-{SMARTCOVER_JOB}.json"
    assert list_keys(store, MEDIA_BUCKET, "ci-index/") == [index_key]
    segments = index_key.split("/")
    assert ".." not in segments and "." not in segments and "" not in segments
    index = read_json(store, MEDIA_BUCKET, index_key)
    assert index["input"]["object"] == input_key
    assert [o["object"] for o in index["outputs"]] == ODD_OUTPUTS
    assert [c["object"] for c in index["covers"]] == ODD_OUTPUTS


# ---------------------------------------------------------------- 10. re-delivery


def test_redelivery_leaves_what_one_delivery_left_and_is_cheap(store, settings, capsys):
    body = corpus_file("SmartCover-xml-1.xml")
    seed(store, MEDIA_BUCKET, SMARTCOVER_COVERS)
    assert deliver(body, settings)[1]["status"] == "processed"
    once = snapshot(store, MEDIA_BUCKET)
    store.reset_requests()

    status, payload = deliver(body, settings)

    duplicate_requests = store.requests
    assert (status, payload["status"], payload["reason"]) == (200, "duplicate", "already processed")
    assert "handlers" not in payload and "actions" not in payload  # no handler ran
    again = snapshot(store, MEDIA_BUCKET)
    assert without_deliveries(again) == without_deliveries(once)
    assert (deliveries_in(once), deliveries_in(again)) == (1, 2)
    # Archive (same key, same bytes) beside its delivery record, one refused lease write, one HEAD
    # of the done marker.
    assert len(duplicate_requests) <= 4, [(r.method, r.path, r.status) for r in duplicate_requests]
    assert [r.status for r in duplicate_requests if "/lease-" in r.path and r.method == "PUT"] == [409]
    assert tagging_requests(duplicate_requests) == []
    assert not [r for r in duplicate_requests if r.path.startswith("/ci-index/")]
    with capsys.disabled():
        print(f"\n[figures] duplicate delivery of SmartCover-xml-1: {len(duplicate_requests)} COS requests")


def _normalised(snap):
    """Lease markers are per-delivery bookkeeping (expiry time, a random nonce): only their
    key and status must match. Everything else must match byte for byte."""
    out = {}
    for key, (data, tags) in snap.items():
        if "/lease-" in key:
            data = json.loads(data)["status"].encode()
        out[key] = (data, tags)
    return out


def _fresh_delivery(body: bytes, copies: int) -> tuple[list, dict]:
    with LocalCOS() as server:
        server.create_bucket(MEDIA_BUCKET)
        seed(server, MEDIA_BUCKET, SMARTCOVER_COVERS)
        settings = Settings(tokens=(TOKEN,), cos_endpoint=server.endpoint, region=REGION)
        results: list = [None] * copies
        barrier = threading.Barrier(copies)

        def one(i: int) -> None:
            barrier.wait()
            results[i] = deliver(body, settings)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(copies)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        return results, snapshot(server, MEDIA_BUCKET)


def test_concurrent_duplicates_leave_what_one_delivery_left():
    body = corpus_file("SmartCover-xml-1.xml")
    single, once = _fresh_delivery(body, 1)
    results, five = _fresh_delivery(body, 5)

    assert [r[1]["status"] for r in single] == ["processed"]
    statuses = sorted((status, payload["status"]) for status, payload in results)
    assert statuses == [(200, "duplicate")] * 4 + [(200, "processed")]
    assert _normalised(without_deliveries(five)) == _normalised(without_deliveries(once))
    assert sorted(without_deliveries(five)) == sorted(without_deliveries(once))
    assert (deliveries_in(once), deliveries_in(five)) == (1, 5)
    for key in SMARTCOVER_COVERS:
        assert five[key][1] == expected_tags(SMARTCOVER_JOB, "SmartCover")


# ---------------------------------------------------------------- 11. notify


@pytest.fixture
def scf():
    from fake_scf import FakeSCF

    with FakeSCF("AKIDlocaltest", "localtestkey", token="localtesttoken") as fake:
        yield fake


def test_processed_callback_notifies_once_and_duplicates_do_not(store, settings, scf):
    notifying = settings.replace(notify_function="downstream", scf_endpoint=scf.endpoint)
    body = corpus_file("SmartCover-xml-1.xml")
    seed(store, MEDIA_BUCKET, SMARTCOVER_COVERS)

    status, payload = deliver(body, notifying)

    assert (status, payload["status"]) == (200, "processed")
    assert scf.rejections == []
    [call] = scf.invocations
    assert (call.function_name, call.invocation_type, call.namespace) == ("downstream", "Event", "default")
    assert call.token == "localtesttoken"
    assert call.client_context["callback"] == parsed(body)
    assert call.client_context["written"] == [{"bucket": MEDIA_BUCKET, "key": SMARTCOVER_INDEX}]
    notify = next(a for a in payload["actions"] if a["action"] == "notify")
    assert notify["function"] == "downstream"
    # The notified function's own request id (its logs carry it), not the Invoke API call's.
    assert notify["request_id"] == call.function_request_id != call.request_id

    status, payload = deliver(body, notifying)

    assert (status, payload["status"]) == (200, "duplicate")
    assert len(scf.invocations) == 1


def test_failure_notify_names_the_failure_record(store, settings, scf):
    notifying = settings.replace(notify_function="downstream", scf_endpoint=scf.endpoint)

    status, _ = deliver(failed_transcode(), notifying)

    assert status == 200
    [call] = scf.invocations
    assert call.client_context["callback"]["state"] == "Failed"
    assert call.client_context["written"] == [{"bucket": MEDIA_BUCKET, "key": f"ci-index/failures/{FAILED_JOB}.json"}]


# ---------------------------------------------------------------- 12. extension (README example)


def test_readme_handler_example_runs_beside_the_built_in_one(store, settings):
    from ci_callback.app import router

    r = router.copy()

    @r.on_job("Transcode", state="Success")
    def publish_rendition(callback, inv):
        for output in callback.outputs:
            inv.services.storage.put_json(output.bucket, f"published/{output.key}.json",
                                          {"job_id": callback.job_id, "source": callback.input.key})
        inv.record("publish", objects=len(callback.outputs))

    seed(store, MEDIA_BUCKET, ["output/transcode.mp4"])

    status, payload = deliver(corpus_file("Transcode-xml-1.xml"), settings, router=r)

    assert (status, payload["status"]) == (200, "processed")
    assert payload["handlers"] == ["publish_rendition", "job_succeeded"]  # the Tag beats the state
    assert {"action": "publish", "objects": 1} in payload["actions"]
    assert read_json(store, MEDIA_BUCKET, "published/output/transcode.mp4.json") == {
        "job_id": "j68427030f84611ecb8546d80f2baf56f", "source": "input/demo.mp4"}
    # The built-in actions still ran; the default router is untouched.
    assert tags_of(store, MEDIA_BUCKET, "output/transcode.mp4") == expected_tags(
        "j68427030f84611ecb8546d80f2baf56f", "Transcode")
    assert [route.name for route in router.resolve(parse_callback(corpus_file("Transcode-xml-1.xml")))] == [
        "job_succeeded"]


# ---------------------------------------------------------------- 13. settings switches


def _settings_from_env(cos, actions_value: str) -> Settings:
    return Settings.from_env({
        "CI_CALLBACK_TOKENS": TOKEN,
        "CI_CALLBACK_COS_ENDPOINT": cos.endpoint,
        "CI_CALLBACK_ACTIONS": actions_value,
        "TENCENTCLOUD_REGION": REGION,
    })


def test_actions_without_tag_write_the_index_but_no_tags(store):
    settings = _settings_from_env(store, "archive,dedupe,index,failure,notify")
    assert not settings.enabled("tag")
    seed(store, MEDIA_BUCKET, SMARTCOVER_COVERS)
    store.reset_requests()

    status, payload = deliver(corpus_file("SmartCover-xml-1.xml"), settings)
    requests = store.requests

    assert (status, payload["status"]) == (200, "processed")
    assert read_json(store, MEDIA_BUCKET, SMARTCOVER_INDEX)["job_id"] == SMARTCOVER_JOB
    assert tagging_requests(requests) == []
    assert all(tags_of(store, MEDIA_BUCKET, key) == {} for key in SMARTCOVER_COVERS)


def test_actions_without_index_tag_but_write_no_index(store):
    settings = _settings_from_env(store, "archive, dedupe, tag, failure, notify")
    assert not settings.enabled("index")
    seed(store, MEDIA_BUCKET, SMARTCOVER_COVERS)

    status, payload = deliver(corpus_file("SmartCover-xml-1.xml"), settings)

    assert (status, payload["status"]) == (200, "processed")
    assert list_keys(store, MEDIA_BUCKET, "ci-index/") == []
    for key in SMARTCOVER_COVERS:
        assert tags_of(store, MEDIA_BUCKET, key) == expected_tags(SMARTCOVER_JOB, "SmartCover")
