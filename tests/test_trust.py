"""Trust, durability and the status-code contract (README: "Trust, durability and the
status-code contract"), end to end on a real local COS (``LocalCOS``), a local CI query
endpoint (``fake_ci.FakeCI``) and a local SCF Invoke endpoint (``fake_scf.FakeSCF``).

* hostile input and refused requests answer 4xx with a one-line reason and write nothing;
* a refused request never imports the COS SDK;
* tokens rotate, and are compared in constant time;
* verification against CI's record (403 + WARN on any mismatch, nothing acted on);
* lease markers: a stale lease is taken over, a fresh one makes a cheap duplicate;
* 20 concurrent duplicates: one notify, one set of tags, the same objects as one delivery;
* a COS fault at every request position of a real callback (503 / reset / timeout, once
  and persistent): 200 with everything done, or 503 with the body archived, and replay
  finishes it;
* the SCF deadline bounds every COS call;
* one JSON log line per decision, never a token or a key.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from ci_callback import keys, log
from ci_callback import settings as settings_module
from ci_callback.adapters import cos as storage_module
from ci_callback.adapters.cos import CosStorage
from ci_callback.app import main_handler, replay
from ci_callback.durable import idempotency
from ci_callback.durable.replay import select
from ci_callback.model.parse import parse_callback
from ci_callback.settings import Credentials, Settings
from ci_callback.trust import auth
from ci_callback_dev.localcos import Fault, LocalCOS
from conftest import BUCKET, EVENTS, REGION, ROOT, TOKEN, apigw_event, invoke
from fake_scf import FakeSCF

# ---------------------------------------------------------------- the SmartCover callback under test

SMARTCOVER_EVENT = json.loads((EVENTS / "apigw-smartcover-xml.json").read_text(encoding="utf-8"))
SMARTCOVER_BODY: str = SMARTCOVER_EVENT["body"]
JOB_ID = "j1a2b3c4d5e6f11ee9f0a525400000001"
INPUT_KEY = "videos/launch day.mp4"
COVERS = [f"covers/launch-{i}.jpg" for i in range(5)]
OTHER_BUCKET = "otherbucket-1250000000"
SECRET_ID = "AKIDlocaltest"  # what conftest's autouse fixture puts in the environment
SECRET_KEY = "localtestkey"
CONTEXT = {"request_id": "trust", "time_limit_in_ms": 10000}

assert JOB_ID in SMARTCOVER_BODY and INPUT_KEY in SMARTCOVER_BODY


def smartcover(job_id: str = JOB_ID) -> str:
    return SMARTCOVER_BODY.replace(JOB_ID, job_id)


def index_key(job_id: str = JOB_ID) -> str:
    return keys.job_index_key("ci-index/", BUCKET, INPUT_KEY, job_id)


# ---------------------------------------------------------------- helpers


pytestmark = pytest.mark.usefixtures("logs_at_info")  # conftest: logs to stdout at INFO


@pytest.fixture(autouse=True)
def _fresh_cos_clients(monkeypatch):
    """Each LocalCOS gets its own SDK client (a port may be reused; timeouts are patched)."""
    monkeypatch.setattr(storage_module, "_clients", {})


def all_keys(cos: LocalCOS, bucket: str = BUCKET) -> list:
    client, keys_, marker = cos.client(), [], ""
    while True:
        page = client.list_objects(Bucket=bucket, Marker=marker, MaxKeys=1000)
        contents = page.get("Contents") or []
        contents = [contents] if isinstance(contents, dict) else contents
        keys_ += [c["Key"] for c in contents]
        if str(page.get("IsTruncated", "false")).lower() != "true" or not contents:
            return sorted(keys_)
        marker = page.get("NextMarker") or contents[-1]["Key"]


def get_text(cos: LocalCOS, key: str, bucket: str = BUCKET) -> bytes:
    return cos.client().get_object(Bucket=bucket, Key=key)["Body"].get_raw_stream().read()


def tags_of(cos: LocalCOS, key: str, bucket: str = BUCKET) -> dict:
    items = (cos.client().get_object_tagging(Bucket=bucket, Key=key).get("TagSet") or {}).get("Tag") or []
    items = [items] if isinstance(items, dict) else items
    return {t["Key"]: t.get("Value") or "" for t in items}


def seed_covers(cos: LocalCOS) -> None:
    client = cos.client()
    for key in COVERS:
        client.put_object(Bucket=BUCKET, Key=key, Body=b"cover " + key.encode())


def our_tags(job_id: str = JOB_ID) -> dict:
    return {"ci-job-id": job_id, "ci-tag": "SmartCover", "ci-source": "ci-callback"}


def assert_fully_processed(cos: LocalCOS, job_id: str = JOB_ID) -> None:
    present = set(all_keys(cos))
    assert index_key(job_id) in present, f"index object missing; bucket holds {sorted(present)}"
    document = json.loads(get_text(cos, index_key(job_id)))
    assert document["job_id"] == job_id and len(document["covers"]) == 5
    for key in COVERS:
        assert tags_of(cos, key) == our_tags(job_id), key


def assert_not_acted(cos: LocalCOS, job_id: str = JOB_ID) -> None:
    present = set(all_keys(cos))
    assert index_key(job_id) not in present
    assert not [k for k in present if k.startswith("ci-index/")], present
    for key in COVERS:
        if key in present:
            assert tags_of(cos, key) == {}, key


def log_records(text: str) -> list:
    """Every stdout line is one JSON object (CLS parses single-line JSON)."""
    records = []
    for line in text.splitlines():
        if line.strip():
            records.append(json.loads(line))
    return records


def decision_lines(records: list) -> list:
    return [r for r in records if r.get("msg") == "callback"]


def one_line_reason(payload: dict) -> str:
    reason = payload["reason"]
    assert isinstance(reason, str) and reason and "\n" not in reason and "\r" not in reason
    assert len(reason) <= 300
    return reason


# ================================================================ hostile input and refusals


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(f' <!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">\n' for i in range(1, 10))
    + "]>\n<Response><EventName>TaskFinish</EventName><JobsDetail><JobId>&lol9;</JobId>"
    "<Tag>SmartCover</Tag><State>Success</State><Input><BucketId>" + BUCKET + "</BucketId>"
    "<Object>a.mp4</Object></Input></JobsDetail></Response>"
)
XXE = (
    '<?xml version="1.0"?>\n<!DOCTYPE Response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    "<Response><EventName>TaskFinish</EventName><JobsDetail><JobId>j1</JobId><Tag>SmartCover</Tag>"
    "<State>Success</State><Message>&xxe;</Message><Input><BucketId>" + BUCKET + "</BucketId>"
    "<Object>a.mp4</Object></Input></JobsDetail></Response>"
)
EXTERNAL_DTD = '<?xml version="1.0"?>\n<!DOCTYPE Response SYSTEM "file:///etc/passwd">\n' + SMARTCOVER_BODY
PARAMETER_ENTITY = (
    '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY % ext SYSTEM "file:///etc/passwd"> %ext;]>\n' + SMARTCOVER_BODY
)
HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n"
)
HTML_NO_DOCTYPE = "<html><head><title>Login</title></head><body><form action='/login'></form></body></html>"
SEVEN_MB = "<Response><JobsDetail><Message>" + "A" * (7 * 1024 * 1024) + "</Message></JobsDetail></Response>"

# name -> (body, content type, token, environment changes, status)
HOSTILE = {
    "billion-laughs": (BILLION_LAUGHS, "application/xml", TOKEN, {}, 400),
    "external-entity": (XXE, "application/xml", TOKEN, {}, 400),
    "external-dtd": (EXTERNAL_DTD, "application/xml", TOKEN, {}, 400),
    "parameter-entity": (PARAMETER_ENTITY, "application/xml", TOKEN, {}, 400),
    "seven-megabytes": (SEVEN_MB, "application/xml", TOKEN, {}, 413),
    "truncated-xml": (SMARTCOVER_BODY[: len(SMARTCOVER_BODY) // 2], "application/xml", TOKEN, {}, 400),
    "truncated-one-byte": (SMARTCOVER_BODY.rstrip()[:-1], "application/xml", TOKEN, {}, 400),
    "empty-body": ("", "application/xml", TOKEN, {}, 400),
    "html-page": (HTML_PAGE, "text/html", TOKEN, {}, 400),
    "html-without-doctype": (HTML_NO_DOCTYPE, "application/xml", TOKEN, {}, 400),
    "bucket-not-allowed": (SMARTCOVER_BODY, "application/xml", TOKEN,
                           {"CI_CALLBACK_ALLOWED_BUCKETS": OTHER_BUCKET}, 403),
    "output-bucket-not-allowed": (SMARTCOVER_BODY.replace(
        "<Output><Bucket>examplebucket-1250000000</Bucket>", f"<Output><Bucket>{OTHER_BUCKET}</Bucket>").replace(
        "<OutputFile>\n          <Bucket>examplebucket-1250000000</Bucket>",
        f"<OutputFile>\n          <Bucket>{OTHER_BUCKET}</Bucket>"),
        "application/xml", TOKEN, {"CI_CALLBACK_ALLOWED_BUCKETS": BUCKET}, 403),
    "missing-token": (SMARTCOVER_BODY, "application/xml", None, {}, 401),
    "empty-token": (SMARTCOVER_BODY, "application/xml", "", {}, 401),
    "wrong-token": (SMARTCOVER_BODY, "application/xml", "wrong-" + TOKEN, {}, 403),
    "no-token-configured": (SMARTCOVER_BODY, "application/xml", TOKEN, {"CI_CALLBACK_TOKENS": None}, 403),
}


@pytest.fixture
def env(monkeypatch, cos):
    """main_handler as SCF calls it: settings from the environment, COS = the local server."""
    for name in list(os.environ):
        if name.startswith("CI_CALLBACK_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CI_CALLBACK_TOKENS", TOKEN)
    monkeypatch.setenv("CI_CALLBACK_COS_ENDPOINT", cos.endpoint)
    monkeypatch.setenv("TENCENTCLOUD_REGION", REGION)
    settings_module.reset_settings()
    yield monkeypatch
    settings_module.reset_settings()


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_input_is_refused_and_nothing_is_written(name, env, cos, capsys):
    body, content_type, token, changes, expected = HOSTILE[name]
    for variable, value in changes.items():
        if value is None:
            env.delenv(variable, raising=False)
        else:
            env.setenv(variable, value)
    settings_module.reset_settings()
    cos.reset_requests()

    response = main_handler(apigw_event(body, token=token, content_type=content_type), dict(CONTEXT))

    requests = cos.requests
    assert response["statusCode"] == expected, response["body"]
    payload = json.loads(response["body"])
    assert payload["ok"] is False and payload["status"] == "rejected"
    reason = one_line_reason(payload)
    out = capsys.readouterr().out
    records = log_records(out)
    [decision] = decision_lines(records)
    assert decision["status"] == expected and decision["reason"] == reason
    # Nothing was written, nothing was even asked of COS, and no entity was expanded.
    assert requests == []
    assert all_keys(cos) == []
    assert "root:" not in response["body"] + out
    assert "lollollol" not in response["body"] + out
    if name == "no-token-configured":
        assert any(r["level"] == "ERROR" and "CI_CALLBACK_TOKENS" in r["msg"] for r in records)
    if name in ("wrong-token",):
        assert "wrong-" + TOKEN not in out + response["body"]


def _run_refused(code: str, tokens: str) -> tuple[dict, str]:
    """Run CODE in a fresh interpreter with handler/ on the path; (its last JSON line, all output)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CI_CALLBACK_")}
    environment.update(PYTHONPATH=str(ROOT / "handler"), CI_CALLBACK_TOKENS=tokens)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], input=SMARTCOVER_BODY, capture_output=True,
                          text=True, env=environment, cwd=str(ROOT), timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stdout + done.stderr


REFUSED_EVENT = """
        event = {"httpMethod": "POST", "path": "/", "headers": {"content-type": "application/xml"},
                 "body": sys.stdin.read(), "queryString": {"token": "not-the-token"},
                 "requestContext": {"httpMethod": "POST", "path": "/"}}
        response = main_handler(event, {"request_id": "sub", "time_limit_in_ms": 3000})
"""


def test_refused_request_does_not_import_the_cos_sdk():
    result, output = _run_refused(
        """
        import json, sys
        from index import main_handler
        """ + REFUSED_EVENT + """
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("qcloud_cos", "tencentcloud"))
        print(json.dumps({"status": response["statusCode"], "heavy": heavy}))
        """, "the-real-token,the-next-token")
    assert result == {"status": 403, "heavy": []}
    assert "not-the-token" not in output


def test_refused_request_with_a_user_handler_loads_no_cos_machinery():
    # A handler registered the way the README and index.py show, then a wrong token.
    result, _ = _run_refused(
        """
        import json, sys
        from ci_callback.app import main_handler, router

        @router.on_job("Transcode", state="Success")
        def publish_rendition(callback, inv):
            inv.record("publish", objects=len(callback.outputs))
        """ + REFUSED_EVENT + """
        machinery = ("ci_callback.adapters.cos", "ci_callback.adapters.services", "ci_callback.adapters.scf", "ci_callback.pipeline",
                     "ci_callback.model.parse", "xmltodict")
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("qcloud_cos", "tencentcloud", "requests")
                       or m in machinery)
        print(json.dumps({"status": response["statusCode"], "heavy": heavy}))
        """, "the-real-token")
    assert result == {"status": 403, "heavy": []}


# ================================================================ tokens


def test_token_rotation_accepts_every_configured_token(cos, settings):
    seed_covers(cos)
    rotated = settings.replace(tokens=("old-token-aaaa", "new-token-bbbb"))
    status, payload = invoke(apigw_event(smartcover("j-old"), token="old-token-aaaa"), rotated)
    assert (status, payload["status"]) == (200, "processed")
    status, payload = invoke(apigw_event(smartcover("j-new"), token="new-token-bbbb"), rotated)
    assert (status, payload["status"]) == (200, "processed")
    # The token may also travel in a header.
    status, payload = invoke(apigw_event(smartcover("j-hdr"), token=None,
                                         headers={"x-ci-callback-token": "new-token-bbbb"}), rotated)
    assert (status, payload["status"]) == (200, "processed")
    assert {index_key("j-old"), index_key("j-new"), index_key("j-hdr")} <= set(all_keys(cos))


@pytest.mark.parametrize("presented", [
    "old-token-aaa",  # a prefix
    "old-token-aaaaa",  # one character more
    "OLD-TOKEN-AAAA",  # another case
    "old-token-aaaa,new-token-bbbb",  # the whole setting
    " old-token-aaaa",  # padding
    "old-token-aaaa\x00",
    "ölD-töken-äaaa",  # not ASCII
    "\ud800",  # not even encodable
])
def test_near_miss_tokens_are_refused(presented, settings):
    rotated = settings.replace(tokens=("old-token-aaaa", "new-token-bbbb"))
    status, payload = invoke(apigw_event(SMARTCOVER_BODY, token=presented), rotated)
    assert status == 403 and payload["reason"] == "wrong token"


def test_tokens_are_compared_in_constant_time_against_every_token(monkeypatch, settings):
    calls = []
    real = auth.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth, "compare_digest", spy)
    rotated = settings.replace(tokens=("tok-1", "tok-2", "tok-3"), actions=frozenset())
    for presented, expected in (("tok-1", 200), ("tok-3", 200), ("tok-4", 403)):
        calls.clear()
        status, _ = invoke(apigw_event(SMARTCOVER_BODY, token=presented), rotated)
        assert status == expected
        # No early exit on a match: every configured token is compared, as bytes.
        assert [b for _, b in calls] == [b"tok-1", b"tok-2", b"tok-3"]
        assert all(a == presented.encode() for a, _ in calls)


# ================================================================ verification with CI


@pytest.fixture
def verifying(settings, fake_ci):
    return settings.replace(verify_jobs=True, ci_endpoint=fake_ci.url)


def test_fake_ci_refuses_unsigned_and_badly_signed_requests(fake_ci):
    import urllib.error
    import urllib.request

    fake_ci.add_job(JOB_ID, "SmartCover", "Success", BUCKET, INPUT_KEY)
    for authorization in (None, "Bearer x", "q-sign-algorithm=sha1&q-ak=AKIDlocaltest&q-sign-time=1;2"
                          "&q-key-time=1;2&q-header-list=host&q-url-param-list=&q-signature=00"):
        request = urllib.request.Request(f"{fake_ci.url}/jobs/{JOB_ID}")
        if authorization:
            request.add_header("Authorization", authorization)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 403
        assert b"AccessDenied" in refused.value.read()
    # The real SDK, signing with the role's key, gets CI's record; with another key it does not.
    from qcloud_cos import CosConfig, CosS3Client
    from qcloud_cos.cos_exception import CosServiceError

    def client(key):
        return CosS3Client(CosConfig(Region=REGION, SecretId=SECRET_ID, SecretKey=key, Scheme="http",
                                     IP="127.0.0.1", Port=fake_ci.port), retry=0)

    record = client(SECRET_KEY).ci_get_media_jobs(Bucket=BUCKET, JobIDs=JOB_ID)
    assert record["JobsDetail"][0]["JobId"] == JOB_ID
    assert record["JobsDetail"][0]["Input"]["Object"] == INPUT_KEY
    with pytest.raises(CosServiceError) as denied:
        client("another-key").ci_get_media_jobs(Bucket=BUCKET, JobIDs=JOB_ID)
    assert denied.value.get_status_code() == 403
    unknown = client(SECRET_KEY).ci_get_media_jobs(Bucket=BUCKET, JobIDs="jnope")
    assert unknown["NonExistJobIds"] == "jnope" and not any(unknown.get("JobsDetail") or [])


def test_callback_matching_cis_record_is_processed(cos, verifying, fake_ci, capsys):
    seed_covers(cos)
    fake_ci.add_job(JOB_ID, "SmartCover", "Success", BUCKET, INPUT_KEY,
                    outputs=[(BUCKET, REGION, key) for key in COVERS])
    status, payload = invoke(apigw_event(SMARTCOVER_BODY), verifying)
    assert (status, payload["status"]) == (200, "processed"), payload
    assert "verify" in [a["action"] for a in payload["actions"]]
    assert_fully_processed(cos)
    [query] = fake_ci.requests
    assert (query.method, query.path, query.status) == ("GET", f"/jobs/{JOB_ID}", 200)
    assert query.authorization.startswith("q-sign-algorithm=sha1&q-ak=" + SECRET_ID)
    [decision] = decision_lines(log_records(capsys.readouterr().out))
    assert decision["outcome"] == "processed" and "verify" in decision["actions"]


# name -> what CI's record says instead (None: CI has no such job)
MISMATCHES = {
    "state": dict(tag="SmartCover", state="Failed", object=INPUT_KEY),
    "still-running": dict(tag="SmartCover", state="Running", object=INPUT_KEY),
    "tag": dict(tag="Transcode", state="Success", object=INPUT_KEY),
    "input-object": dict(tag="SmartCover", state="Success", object="videos/another.mp4"),
    "unknown-job": None,
}


@pytest.mark.parametrize("name", list(MISMATCHES))
def test_callback_not_matching_cis_record_is_refused(name, cos, verifying, fake_ci, capsys):
    seed_covers(cos)
    record = MISMATCHES[name]
    if record is not None:
        fake_ci.add_job(JOB_ID, record["tag"], record["state"], BUCKET, record["object"])
    before = set(all_keys(cos))

    status, payload = invoke(apigw_event(SMARTCOVER_BODY), verifying)

    assert (status, payload["status"]) == (403, "rejected"), payload
    assert one_line_reason(payload).startswith("verification failed")
    records = log_records(capsys.readouterr().out)
    warnings = [r for r in records if r["level"] == "WARN" and r["msg"] == "callback does not match CI's record"]
    assert len(warnings) == 1 and warnings[0]["id"] == JOB_ID and warnings[0]["reason"]
    [decision] = decision_lines(records)
    assert decision["status"] == 403 and decision["outcome"] == "rejected"
    # The raw body may be archived (that happens before verification), nothing else.
    new = set(all_keys(cos)) - before
    assert all(k.startswith("ci-inbox/") for k in new), new
    assert_not_acted(cos)
    assert not [k for k in all_keys(cos) if k.startswith("ci-markers/")]
    assert len(fake_ci.requests) == 1 and fake_ci.requests[0].status == 200


def test_pic_jobs_are_verified_on_the_pic_jobs_route(cos, verifying, fake_ci):
    event = json.loads((EVENTS / "function-url-picprocess-json.json").read_text(encoding="utf-8"))
    callback = parse_callback(event["body"] if isinstance(event["body"], str) else json.dumps(event["body"]))
    event["queryString"] = {"token": TOKEN}
    fake_ci.add_job(callback.job_id, "PicProcess", callback.state, callback.input.bucket, callback.input.key)
    status, payload = invoke(event, verifying)
    assert (status, payload["status"]) == (200, "processed"), payload
    assert [r.path for r in fake_ci.requests] == [f"/pic_jobs/{callback.job_id}"]


@pytest.mark.parametrize("ci_state, expected", [("same", 200), ("Failed", 403), ("unknown", 403)])
def test_workflow_runs_are_verified(ci_state, expected, cos, verifying, fake_ci):
    event = json.loads((EVENTS / "apigw-workflow-xml.json").read_text(encoding="utf-8"))
    callback = parse_callback(event["body"])
    event["queryString"] = {"token": TOKEN}
    if ci_state != "unknown":
        fake_ci.add_run(callback.run_id, callback.state if ci_state == "same" else ci_state, callback.input.key)
    status, payload = invoke(event, verifying)
    assert status == expected, payload
    assert [r.path for r in fake_ci.requests] == [f"/workflowexecution/{callback.run_id}"]
    manifests = [k for k in all_keys(cos) if k.startswith("ci-index/")]
    assert bool(manifests) is (expected == 200)


def test_ci_query_failure_is_a_retryable_503_after_archiving(cos, verifying, fake_ci):
    seed_covers(cos)
    fake_ci.add_job(JOB_ID, "SmartCover", "Success", BUCKET, INPUT_KEY)
    fake_ci.fail_next(500, times=3)  # the first try and both retries
    status, payload = invoke(apigw_event(SMARTCOVER_BODY), verifying)
    assert (status, payload["status"]) == (503, "retry"), payload
    assert [k for k in all_keys(cos) if k.startswith("ci-inbox/")]
    assert_not_acted(cos)
    # CI retries: now it goes through.
    status, payload = invoke(apigw_event(SMARTCOVER_BODY), verifying)
    assert (status, payload["status"]) == (200, "processed"), payload
    assert_fully_processed(cos)


# ================================================================ idempotency markers


def _lease(cos: LocalCOS, settings: Settings, number: int, expires_at: float) -> str:
    base = idempotency.marker_base(settings.marker_prefix, parse_callback(SMARTCOVER_BODY))
    key = f"{base}lease-{number}.json"
    document = {"status": "in-progress", "owner": "crashed-run", "expires_at": expires_at}
    cos.client().put_object(Bucket=BUCKET, Key=key, Body=json.dumps(document).encode())
    return base


def test_stale_lease_is_taken_over(cos, settings):
    seed_covers(cos)
    base = _lease(cos, settings, 1, time.time() - 5)  # a crashed run's lease, already expired
    status, payload = invoke(apigw_event(SMARTCOVER_BODY), settings)
    assert (status, payload["status"]) == (200, "processed"), payload
    assert_fully_processed(cos)
    present = set(all_keys(cos))
    assert {f"{base}lease-1.json", f"{base}lease-2.json", f"{base}done.json"} <= present
    lease2 = json.loads(get_text(cos, f"{base}lease-2.json"))
    assert lease2["status"] == "in-progress" and lease2["owner"] == "test"


def test_six_killed_invocations_then_a_healthy_delivery_processes_every_output(cos, settings, env, capsys):
    """SCF kills a timed-out container mid-tagging: its lease is never released. However many
    such attempts there were, once their leases expired the next healthy delivery runs."""
    from ci_callback_dev.cli import main

    seed_covers(cos)
    env.setenv("TENCENTCLOUD_SECRETID", "AKIDlocaltest")
    env.setenv("TENCENTCLOUD_SECRETKEY", "localtestkey")
    storage = CosStorage(settings, Credentials("AKIDlocaltest", "localtestkey"), REGION)
    callback = parse_callback(SMARTCOVER_BODY)
    for attempt in range(1, 7):  # each killed invocation took the next lease (TTL 0: expired at once)
        claim = idempotency.claim(storage, BUCKET, settings.marker_prefix, callback, 0, f"killed-{attempt}")
        assert claim.lease is not None and claim.lease.number == attempt, claim
    capsys.readouterr()
    assert main(["inspect", JOB_ID, "--bucket", BUCKET]) == 0
    log.set_stream(None)
    assert "stuck: 6 attempts, last " in capsys.readouterr().out

    status, payload = invoke(apigw_event(SMARTCOVER_BODY), settings)
    assert (status, payload["status"]) == (200, "processed"), payload
    assert_fully_processed(cos)
    base = idempotency.marker_base(settings.marker_prefix, callback)
    assert {f"{base}lease-7.json", f"{base}done.json"} <= set(all_keys(cos))
    [warning] = [r for r in log_records(capsys.readouterr().out) if r.get("msg", "").startswith("stuck: ")]
    assert warning["level"] == "WARN" and warning["attempts"] == 6, warning


@pytest.mark.parametrize("code", ["ObjectAlreadyExists", "Conflict", "PathConflict"])
def test_a_conflict_answered_with_another_409_code_is_still_a_duplicate(code, cos, settings):
    """No Tencent page names the code forbid-overwrite answers: whatever it is, the key decides."""
    seed_covers(cos)
    status, _ = invoke(apigw_event(SMARTCOVER_BODY), settings)
    assert status == 200
    cos.inject(Fault(status=409, code=code),
               when=lambda r: r.method == "PUT" and r.path.endswith("/lease-1.json"), times=None)
    for _ in range(2):
        status, payload = invoke(apigw_event(SMARTCOVER_BODY), settings)
        assert (status, payload["status"], payload["reason"]) == (200, "duplicate", "already processed"), payload


def test_a_409_for_a_lease_that_does_not_exist_is_a_retry(cos, settings):
    seed_covers(cos)
    cos.inject(Fault(status=409, code="Conflict"),
               when=lambda r: r.method == "PUT" and r.path.endswith("/lease-1.json"), times=None)
    status, payload = invoke(apigw_event(SMARTCOVER_BODY), settings)
    assert (status, payload["status"]) == (503, "retry"), payload
    assert_not_acted(cos)
    cos.clear_faults()
    status, payload = invoke(apigw_event(SMARTCOVER_BODY), settings)
    assert (status, payload["status"]) == (200, "processed"), payload
    assert_fully_processed(cos)


def test_fresh_in_progress_lease_makes_a_cheap_duplicate(cos, settings, capsys):
    seed_covers(cos)
    base = _lease(cos, settings, 1, time.time() + 600)  # somebody is working on it right now
    cos.reset_requests()
    status, payload = invoke(apigw_event(SMARTCOVER_BODY), settings)
    deliveries = [r for r in cos.requests if "/deliveries/" in r.path]
    requests = [(r.method, r.path.rsplit("/", 1)[-1], r.query, r.status) for r in cos.requests if r not in deliveries]
    assert (status, payload["status"]) == (200, "duplicate"), payload
    assert "actions" not in payload
    assert [(r.method, r.status) for r in deliveries] == [("PUT", 200)]  # beside the archive, in parallel
    # Cheap: the archive (in parallel), the refused lease write, one listing of the markers
    # (done marker, highest lease), the highest lease's read. No tagging calls.
    listing = next(q for _, n, q, _ in requests if q.startswith("prefix="))
    assert "max-keys=1000" in listing and "Success%2F" in listing
    archive = [r for r in requests if r[1].startswith("Success-")]
    assert [(m, q, s) for m, _, q, s in archive] == [("PUT", "", 200)], requests
    assert [(m, q, s) for (m, n, q, s) in requests if (m, n, q, s) not in archive] == [
        ("PUT", "", 409), ("GET", listing, 200), ("GET", "", 200)], requests
    assert_not_acted(cos)
    assert f"{base}lease-2.json" not in all_keys(cos) and f"{base}done.json" not in all_keys(cos)
    [decision] = decision_lines(log_records(capsys.readouterr().out))
    assert decision["outcome"] == "duplicate" and decision["actions"] == []


def test_done_marker_makes_a_duplicate_even_with_an_expired_lease(cos, settings):
    seed_covers(cos)
    status, _ = invoke(apigw_event(SMARTCOVER_BODY), settings)
    assert status == 200
    base = _lease(cos, settings, 1, time.time() - 5)  # the finished run's lease has expired since
    status, payload = invoke(apigw_event(SMARTCOVER_BODY), settings)
    assert (status, payload["status"], payload["reason"]) == (200, "duplicate", "already processed")
    assert f"{base}lease-2.json" not in all_keys(cos)


# ================================================================ a storm of duplicates


def _snapshot(cos: LocalCOS) -> dict:
    """Every object, its content (markers: only their status) and its tags."""
    result = {}
    for key in all_keys(cos):
        if "/deliveries/" in key:  # one per delivery by design: counted apart
            continue
        data = get_text(cos, key)
        if key.startswith("ci-markers/"):
            data = json.loads(data)["status"]
        result[key] = (data, tags_of(cos, key))
    return result


@pytest.fixture
def notify_env(monkeypatch):
    with FakeSCF() as scf:
        from fake_scf import SECRET_ID as SCF_ID
        from fake_scf import SECRET_KEY as SCF_KEY

        monkeypatch.setenv("TENCENTCLOUD_SECRETID", SCF_ID)
        monkeypatch.setenv("TENCENTCLOUD_SECRETKEY", SCF_KEY)
        monkeypatch.delenv("TENCENTCLOUD_SESSIONTOKEN", raising=False)
        yield scf


def test_duplicate_storm_notifies_once_and_writes_what_one_delivery_writes(notify_env):
    scf = notify_env

    def notifying(server):
        return Settings(tokens=(TOKEN,), cos_endpoint=server.endpoint, region=REGION,
                        notify_function="downstream", scf_endpoint=scf.endpoint)

    # One delivery on its own COS: the reference. (Bucket names are global while a server runs.)
    with LocalCOS() as single:
        single.create_bucket(BUCKET)
        seed_covers(single)
        status, payload = invoke(apigw_event(SMARTCOVER_BODY), notifying(single))
        assert (status, payload["status"]) == (200, "processed")
        assert [a["action"] for a in payload["actions"]] == ["archive", "index", "tag", "notify"]
        reference = _snapshot(single)
    assert len(scf.invocations) == 1
    scf.clear()

    # Twenty concurrent deliveries of the same callback.
    cos = LocalCOS().start()
    try:
        cos.create_bucket(BUCKET)
        seed_covers(cos)
        barrier = threading.Barrier(20)
        answers: list = []
        errors: list = []

        def deliver(n):
            try:
                barrier.wait(timeout=10)
                answers.append(invoke(apigw_event(SMARTCOVER_BODY), notifying(cos),
                                      {"request_id": f"storm-{n}", "time_limit_in_ms": 30000}))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=deliver, args=(n,)) for n in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        assert len(answers) == 20
        assert all(200 <= status < 300 for status, _ in answers), [(s, p.get("reason")) for s, p in answers]
        outcomes = sorted(p["status"] for _, p in answers)
        assert outcomes.count("processed") == 1 and outcomes.count("duplicate") == 19, outcomes
        storm = _snapshot(cos)
        assert len([k for k in all_keys(cos) if "/deliveries/" in k]) == 20  # every delivery counted
    finally:
        cos.stop()

    [notified] = scf.invocations
    assert notified.function_name == "downstream" and notified.invocation_type == "Event"
    assert notified.client_context["callback"]["job_id"] == JOB_ID
    for key in COVERS:
        assert storm[key][1] == our_tags()
    assert storm == reference


# ================================================================ a COS fault at every request position


def _fresh_cos() -> LocalCOS:
    server = LocalCOS().start()
    server.create_bucket(BUCKET)
    seed_covers(server)
    server.reset_requests()
    return server


def _persistent_at(k: int):
    """Fault request number k, and every retry of that same request (same method, path, query)."""
    hit = {}

    def when(r):
        if r.n == k:
            hit["sig"] = (r.method, r.path, r.query)
            return True
        return hit.get("sig") == (r.method, r.path, r.query)

    return when


# With the patched client timeout (0.25 s) and backoff (0.1 s): a "slow" answer times out
# and lands on the server after the retries went out; a "slow-lands" one times out but lands
# (0.3 s) before the retry is sent (0.35 s), so the retry finds its own write.
FAULTS = {
    "503": Fault(status=503),
    "reset": Fault(reset=True),
    "slow": Fault(delay=0.8),
    "slow-lands": Fault(delay=0.3),
}


@pytest.fixture
def short_timeouts(monkeypatch):
    monkeypatch.setattr(storage_module, "TIMEOUT_SECONDS", 0.25)
    monkeypatch.setattr(storage_module, "BACKOFF_SECONDS", (0.1, 0.1))


@pytest.fixture(scope="module")
def clean_run_requests():
    """The COS requests of one clean run of the SmartCover callback (method, path, query)."""
    with LocalCOS() as server:
        server.create_bucket(BUCKET)
        seed_covers(server)
        server.reset_requests()
        settings = Settings(tokens=(TOKEN,), cos_endpoint=server.endpoint, region=REGION)
        old = {k: os.environ.get(k) for k in ("TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY")}
        os.environ.update(TENCENTCLOUD_SECRETID=SECRET_ID, TENCENTCLOUD_SECRETKEY=SECRET_KEY)
        try:
            status, payload = invoke(apigw_event(SMARTCOVER_BODY), settings)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        assert (status, payload["status"]) == (200, "processed")
        return [(r.method, r.path, r.query) for r in server.requests]


def test_clean_run_request_count(clean_run_requests):
    methods = [m for m, _, _ in clean_run_requests]
    # archive ∥ its delivery record ∥ lease, 5 × (get tags, put tags), index, done marker
    assert len(clean_run_requests) == 15, clean_run_requests
    first = sorted(path.split("/", 2)[1] for _, path, _ in clean_run_requests[:3])
    assert methods[:3] == ["PUT", "PUT", "PUT"] and first == ["ci-inbox", "ci-inbox", "ci-markers"]
    assert methods.count("PUT") == 10 and methods.count("GET") == 5


def _is_archive_body(path: str) -> bool:
    return path.startswith("/ci-inbox/") and "/deliveries/" not in path


def _run_with_fault(k: int, fault: Fault, persistent: bool, when=None) -> dict:
    """Deliver once with the fault armed, then recover; return what happened for the matrix.
    ``when`` (persistent only) picks the faulted requests by what they are instead of by number."""
    server = _fresh_cos()
    try:
        settings = Settings(tokens=(TOKEN,), cos_endpoint=server.endpoint, region=REGION)
        if persistent:
            server.inject(fault, when=when or _persistent_at(k), times=None)
        else:
            server.inject_at(k, fault)
        status, payload = invoke(apigw_event(SMARTCOVER_BODY), settings)
        faulted = [r for r in server.requests if r.fault is not None]
        server.clear_faults()
        if fault.delay:
            time.sleep(fault.delay + 0.1)  # let late (timed-out) requests land before looking
        target = (faulted[0].method, faulted[0].path) if faulted else None
        present = all_keys(server)
        archived = [key for key in present if key.startswith("ci-inbox/") and "/deliveries/" not in key]
        outcome = {"k": k, "status": status, "outcome": payload.get("status"), "target": target,
                   "archived": bool(archived), "problems": []}
        problems = outcome["problems"]

        def check(condition, message):
            if not condition:
                problems.append(message)

        archive_write = target is not None and target[0] == "PUT" and _is_archive_body(target[1])
        if status == 200:
            check(payload["status"] == "processed", f"200 but {payload['status']}: {payload.get('reason')}")
            try:
                assert_fully_processed(server)
            except AssertionError as exc:
                check(False, f"200 but not everything done: {exc}")
        elif status == 503:
            check(persistent, "a single fault should be absorbed by the retries")
            if archive_write:
                # Nothing else changed (a slow write may still land late: the archive alone).
                others = [key for key in present if key not in COVERS and not key.startswith("ci-inbox/")]
                check(others == [], f"archive write failed but other objects exist: {others}")
                check(all(tags_of(server, c) == {} for c in COVERS), "archive write failed but covers tagged")
            else:
                check(bool(archived), "503 without the raw body archived")
        else:
            check(False, f"unexpected status {status}: {payload.get('reason')}")

        # Recovery with the faults gone: replay the archive (or, if nothing was archived,
        # CI's own retry of the 503), then everything is done.
        if archived:
            storage = CosStorage(settings, Credentials.from_env(), REGION)
            selected = list(select(storage, BUCKET, settings))
            results = replay(storage, BUCKET, settings, selected)
            outcome["replay"] = [(r.status, r.outcome) for r in results]
            check(results and all(r.status == 200 for r in results), f"replay answered {outcome['replay']}")
            if status == 503:
                check(any(r.outcome == "processed" for r in results), f"replay did not process: {outcome['replay']}")
        else:
            retry_status, retry_payload = invoke(apigw_event(SMARTCOVER_BODY), settings)
            outcome["retry"] = (retry_status, retry_payload["status"])
            check(retry_status == 200, f"CI's retry answered {outcome['retry']}")
        try:
            assert_fully_processed(server)
        except AssertionError as exc:
            check(False, f"not finished after recovery: {exc}")
        return outcome
    finally:
        server.clear_faults()
        server.stop()


@pytest.mark.parametrize("kind", list(FAULTS))
def test_persistent_fault_at_every_request_position(kind, clean_run_requests, short_timeouts):
    matrix = [_run_with_fault(k, FAULTS[kind], persistent=True) for k in range(1, len(clean_run_requests) + 1)]
    failures = [m for m in matrix if m["problems"]]
    assert not failures, json.dumps(failures, indent=1, default=str)
    statuses = {m["status"] for m in matrix}
    assert statuses <= {200, 503}
    assert 503 in statuses  # the persistent fault really reached the 503 path
    # The archive body, its delivery record and the lease go out together, in any order, as
    # requests 1 to 3: fault the first two by what they are. A lost archive write is a 503 with nothing else written
    # (checked in _run_with_fault); a lost delivery record only a WARN.
    for what, expected in ((lambda r: r.method == "PUT" and _is_archive_body(r.path), 503),
                           (lambda r: r.method == "PUT" and "/deliveries/" in r.path, 200)):
        run = _run_with_fault(0, FAULTS[kind], persistent=True, when=what)
        assert not run["problems"] and run["status"] == expected, json.dumps(run, indent=1, default=str)


@pytest.mark.parametrize("kind", list(FAULTS))
def test_single_fault_at_every_request_position_is_absorbed_by_the_retries(kind, clean_run_requests,
                                                                           short_timeouts):
    matrix = [_run_with_fault(k, FAULTS[kind], persistent=False) for k in range(1, len(clean_run_requests) + 1)]
    failures = [m for m in matrix if m["problems"] or m["status"] != 200]
    assert not failures, json.dumps(failures, indent=1, default=str)


# ================================================================ the SCF deadline


@pytest.mark.parametrize("slow", ["every-request", "tagging-only"])
def test_handler_answers_before_the_function_time_limit(slow, cos, settings):
    seed_covers(cos)
    when = None if slow == "every-request" else (lambda r: "tagging" in r.query)
    cos.inject(Fault(delay=4), when=when, times=None)  # slower than COS's client timeout (5 s) allows
    limit_ms = 1500
    started = time.monotonic()
    status, payload = invoke(apigw_event(SMARTCOVER_BODY), settings,
                             {"request_id": "deadline", "time_limit_in_ms": limit_ms})
    elapsed = time.monotonic() - started
    cos.clear_faults()
    assert (status, payload["status"]) == (503, "retry"), payload
    assert elapsed < limit_ms / 1000, f"answered after {elapsed:.2f} s, the limit is {limit_ms} ms"
    if slow == "tagging-only":
        assert [k for k in all_keys(cos) if k.startswith("ci-inbox/")]


# ================================================================ structured logs


def test_one_json_line_per_decision_and_no_secrets(monkeypatch, cos, settings, capsys, fake_ci):
    secret_key = "sEcReT-kEy-9f8e7d6c5b4a"
    session_token = "sEsSiOn-ToKeN-0a1b2c3d"
    token = "cAlLbAcK-tOkEn-77aa88bb"
    monkeypatch.setenv("TENCENTCLOUD_SECRETKEY", secret_key)
    monkeypatch.setenv("TENCENTCLOUD_SESSIONTOKEN", session_token)
    fake_ci.secret_key = secret_key
    base = settings.replace(tokens=(token,))
    seed_covers(cos)

    deliveries = [
        ("processed", base, apigw_event(SMARTCOVER_BODY, token=token), 200),
        ("duplicate", base, apigw_event(SMARTCOVER_BODY, token=token), 200),
        ("wrong token", base, apigw_event(SMARTCOVER_BODY, token=token + "x"), 403),
        ("no token", base, apigw_event(SMARTCOVER_BODY, token=None), 401),
        ("malformed", base, apigw_event("<Response><JobsDetail>", token=token), 400),
        ("ignored", base, apigw_event(smartcover("j-running").replace("<State>Success</State>",
                                                                      "<State>Running</State>"), token=token), 200),
        ("verify failed", base.replace(verify_jobs=True, ci_endpoint=fake_ci.url),
         apigw_event(smartcover("j-unknown"), token=token), 403),
    ]
    records_seen = []
    for name, run_settings, event, expected in deliveries:
        status, payload = invoke(event, run_settings, {"request_id": f"req-{len(records_seen)}",
                                                      "time_limit_in_ms": 10000})
        assert status == expected, (name, payload)
        captured = capsys.readouterr()
        records = log_records(captured.out)
        [decision] = decision_lines(records)
        for field in ("request_id", "status", "reason", "duration_ms", "outcome"):
            assert field in decision, (name, field, decision)
        assert decision["request_id"] == f"req-{len(records_seen)}"
        assert isinstance(decision["duration_ms"], (int, float)) and decision["duration_ms"] >= 0
        if status < 400 or name == "verify failed":
            for field in ("kind", "id", "tag", "state"):
                assert field in decision, (name, field, decision)
        if name in ("processed", "duplicate", "ignored"):
            assert isinstance(decision["actions"], list)
        records_seen.append((name, decision, captured))

    names = {name: decision for name, decision, _ in records_seen}
    assert names["processed"]["outcome"] == "processed"
    assert names["processed"]["actions"] == ["archive", "index", "tag"]
    assert (names["processed"]["id"], names["processed"]["tag"], names["processed"]["state"]) == (
        JOB_ID, "SmartCover", "Success")
    assert names["duplicate"]["outcome"] == "duplicate" and names["duplicate"]["actions"] == []
    assert names["ignored"]["outcome"] == "ignored"
    assert names["wrong token"]["outcome"] == "rejected"

    # Also a failing COS: the 503 path logs the error, still without secrets.
    cos.inject(Fault(status=503), when=lambda r: "tagging" in r.query, times=None)
    status, _ = invoke(apigw_event(smartcover("j-fails"), token=token), base)
    cos.clear_faults()
    assert status == 503
    captured = capsys.readouterr()
    [decision] = decision_lines(log_records(captured.out))
    assert decision["outcome"] == "retry" and decision["archived"] is True

    everything = "".join(c.out + c.err for _, _, c in records_seen) + captured.out + captured.err
    for secret in (token, secret_key, session_token):
        assert secret not in everything
