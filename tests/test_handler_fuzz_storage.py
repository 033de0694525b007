"""Fuzz the whole handler with storage switched on, against a real local COS.

``test_handler_properties`` fuzzes the pure pipeline with the COS actions off. Here every
built-in action runs (archive, dedupe, index, tag, failure) against one ``LocalCOS`` for
the module, so fuzzed bodies that parse as callbacks reach real S3 requests with odd ids,
keys, states and Tags. Whatever the body: ``handle`` never raises, answers 2xx or 4xx (a
5xx would mean COS failed, and the local COS does not), and the body is JSON with a
one-line "reason".
"""

from __future__ import annotations

import base64
import json
import random
import re

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ci_callback import log
from ci_callback.app import handle
from ci_callback.settings import Settings
from ci_callback_dev import events
from conftest import BUCKET, CALLBACKS, EVENTS, REGION, TOKEN, apigw_event

PROFILE = hsettings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture],
)
_BUCKET_LIKE = re.compile(rb"[a-z0-9][a-z0-9-]*-\d{10}")


def _real_bodies() -> list:
    """The project's events and a fixed selection of corpus samples, all pointed at BUCKET."""
    bodies = []
    for path in sorted(EVENTS.glob("*.json")):
        event = json.loads(path.read_text(encoding="utf-8"))
        if "body" in event:
            bodies.append(events.body_of(event))
    if CALLBACKS.is_dir():
        samples = sorted(p for p in CALLBACKS.iterdir() if p.suffix in (".xml", ".json"))
        bodies.extend(p.read_bytes() for p in random.Random(1).sample(samples, min(20, len(samples))))
    return [_BUCKET_LIKE.sub(BUCKET.encode(), body) for body in bodies]


REAL_BODIES = _real_bodies()
assert REAL_BODIES

# Values that stress keys, ids and tags on their way to COS.
ODD_TEXT = st.one_of(
    st.sampled_from(["", " ", "..", "../../etc/passwd", "a//b", "/leading", "trailing/", "%2e%2e/x", "%", "+ +",
                     "中文/视频.mp4", "emoji-😀.jpg", "tab\there", "new\nline", "a" * 900, "?x=1&y=2", "#frag",
                     "${Number}.jpg", "ci-markers/job/x/Success/done.json", "nul\x00byte", "\x7f", "é" * 300]),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=60),
)
TAGS = st.sampled_from(["SmartCover", "Transcode", "Snapshot", "PicProcess", "Segment", "Animation", "Concat",
                        "VideoMontage", "NewTagNobodyKnows", "", "<x>"])
STATES = st.sampled_from(["Success", "Failed", "Cancel", "Running", "Submitted", "Pause", "", "success"])


def _xml(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


@st.composite
def generated_job(draw) -> bytes:
    """A structurally valid job callback with drawn ids, Tag, State and object names."""
    job_id = draw(st.one_of(st.from_regex(r"j[0-9a-f]{32}", fullmatch=True), ODD_TEXT))
    outputs = draw(st.lists(ODD_TEXT, max_size=4))
    names = "".join(f"<ObjectName>{_xml(o)}</ObjectName>" for o in outputs)
    body = (
        f"<Response><EventName>TaskFinish</EventName><JobsDetail><Code>{_xml(draw(ODD_TEXT))}</Code>"
        f"<Message>{_xml(draw(ODD_TEXT))}</Message><JobId>{_xml(job_id)}</JobId><Tag>{_xml(draw(TAGS))}</Tag>"
        f"<State>{_xml(draw(STATES))}</State><CreationTime>{_xml(draw(st.sampled_from(['2026-11-20T10:00:00+0800', '', 'x', '2026-13-45T99:99:99Z'])))}</CreationTime>"
        f"<Input><BucketId>{BUCKET}</BucketId><Object>{_xml(draw(ODD_TEXT))}</Object><Region>{REGION}</Region></Input>"
        f"<Operation><Output><Bucket>{BUCKET}</Bucket><Region>{REGION}</Region>"
        f"<Object>{_xml(draw(ODD_TEXT))}</Object></Output>"
        f"<MediaResult><OutputFile><Bucket>{BUCKET}</Bucket><Region>{REGION}</Region>{names}"
        f"</OutputFile></MediaResult></Operation></JobsDetail></Response>"
    )
    return body.encode("utf-8", "surrogatepass")


@st.composite
def mutated(draw) -> bytes:
    body = bytearray(draw(st.sampled_from(REAL_BODIES)))
    for _ in range(draw(st.integers(0, 3))):  # 0: the real body as is (processed, then duplicates)
        op = draw(st.sampled_from(["flip", "delete", "insert", "truncate", "swap", "rename-id", "odd-object"]))
        n = len(body)
        if n == 0:
            body.extend(draw(st.binary(min_size=1, max_size=8)))
            continue
        i = draw(st.integers(0, n - 1))
        j = draw(st.integers(i, min(n, i + 64)))
        if op == "flip":
            body[i] = draw(st.integers(0, 255))
        elif op == "delete":
            del body[i:j]
        elif op == "insert":
            body[i:i] = draw(st.binary(max_size=16))
        elif op == "truncate":
            del body[i:]
        elif op == "swap":
            body[i:j] = draw(st.sampled_from([b"<State>Failed</State>", b"<State>Running</State>", b"</Response>",
                                              b"<Tag>PicProcess</Tag>", b"&amp;", b"<![CDATA[x]]>", b'"State":"Cancel"',
                                              b'"JobId":"', b"null", b"[]"]))
        elif op == "rename-id":  # fresh ids: new objects, not just duplicates of the first run
            suffix = draw(st.text("0123456789abcdef", min_size=1, max_size=6)).encode()
            body = bytearray(re.sub(rb"([\">])([jic][0-9a-f]{8})", lambda m: m.group(0) + suffix, bytes(body), count=2))  # noqa: B023 - called at once
        else:
            odd = _xml(draw(ODD_TEXT)).encode("utf-8", "surrogatepass")
            body = bytearray(re.sub(rb"<Object>[^<]*</Object>", lambda m: b"<Object>" + odd + b"</Object>",  # noqa: B023
                                    bytes(body), count=1))
    return bytes(body)


BODIES = st.one_of(
    mutated(),
    generated_job(),
    st.binary(max_size=512),
    st.text(max_size=512).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
CONTENT_TYPES = st.sampled_from(["application/xml", "application/json", "text/plain", "", "text/html"])


@pytest.fixture(scope="module")
def local_cos():
    from ci_callback_dev.localcos import LocalCOS

    with LocalCOS() as server:
        server.create_bucket(BUCKET)
        yield server


@pytest.fixture(scope="module")
def storage_settings(local_cos):
    # The allow-list keeps mutated bucket names from reaching COS (they would be a 403 there too).
    return Settings(tokens=(TOKEN,), cos_endpoint=local_cos.endpoint, region=REGION,
                    allowed_buckets=frozenset({BUCKET}))


def _check(response: dict) -> tuple:
    assert set(response) == {"isBase64Encoded", "statusCode", "headers", "body"}
    status = response["statusCode"]
    payload = json.loads(response["body"])
    assert 200 <= status < 300 or 400 <= status < 500, (status, payload)
    reason = payload.get("reason")
    assert isinstance(reason, str) and reason and "\n" not in reason, payload
    assert payload["ok"] is (status < 400)
    return status, payload


@PROFILE
@given(body=BODIES, content_type=CONTENT_TYPES, as_base64=st.booleans())
@example(body=REAL_BODIES[0], content_type="application/xml", as_base64=False)
@example(body=b"", content_type="application/xml", as_base64=False)
def test_fuzzed_bodies_through_the_handler_with_storage(body, content_type, as_base64, storage_settings, capsys):
    log.set_stream(None)
    if as_base64:
        event = apigw_event("", content_type=content_type)
        event.update(body=base64.b64encode(body).decode("ascii"), isBase64Encoded=True)
    else:
        event = apigw_event(body.decode("utf-8", "replace"), content_type=content_type)
    response = handle(event, {"request_id": "fuzz", "time_limit_in_ms": 10000}, settings=storage_settings)
    status, payload = _check(response)
    out = capsys.readouterr().out
    for line in out.splitlines():
        json.loads(line)  # every log line is one JSON object
    actions = payload.get("actions") or []
    if any("key" in a or a["action"] == "tag" for a in actions):
        # Something was written: the raw body was archived first (README: the durable inbox).
        assert actions[0]["action"] == "archive", payload


def test_fuzz_reached_storage(local_cos):
    """The fuzz above is only worth something if callbacks really got to COS."""
    client = local_cos.client()
    listed = client.list_objects(Bucket=BUCKET, Prefix="ci-inbox/", MaxKeys=1000).get("Contents") or []
    assert listed, "no fuzzed callback was archived: the strategies never produced a valid callback"
    indexed = client.list_objects(Bucket=BUCKET, Prefix="ci-index/", MaxKeys=1000).get("Contents") or []
    assert indexed
