"""Property tests: whatever an HTTP trigger hands over, ``handle`` answers well-formed.

Arbitrary events (methods, headers, query shapes, text / base64 / binary bodies) and
mutated real callback bodies go through ``handle``. It must never raise and always
return an integrated response whose statusCode is 2xx or 4xx (a 5xx means "retry",
which only a failing COS/CI/network may ask for, and none is involved here), whose
body is JSON with a one-line "reason", and whose log lines are single-line JSON that a
strict UTF-8 stdout accepts.

The pure pipeline is exercised: a token is configured (most events carry it) and the
COS actions are switched off, so ``services`` is a stub that is never touched.
"""

from __future__ import annotations

import base64
import json
import random
import types
from contextlib import contextmanager

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from ci_callback import log
from ci_callback.app import handle
from ci_callback.settings import Settings
from ci_callback_dev.events import body_of
from conftest import CALLBACKS, EVENTS

TOKEN = "prop-token"
SETTINGS = Settings(tokens=(TOKEN,), actions=frozenset(), max_body_bytes=64 * 1024)
SMALL = Settings(tokens=(TOKEN,), actions=frozenset(), max_body_bytes=512)
SERVICES = types.SimpleNamespace(storage=types.SimpleNamespace(learn_regions=lambda named: None))  # actions are off: no I/O
CONTEXT = {"request_id": "prop-0", "time_limit_in_ms": 3000}

PROFILE = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


# ---------------------------------------------------------------- real bodies to mutate


def _real_bodies() -> list:
    bodies = []
    for path in sorted(EVENTS.glob("*.json")):
        event = json.loads(path.read_text(encoding="utf-8"))
        if "body" not in event:
            continue
        bodies.append(body_of(event))
    if CALLBACKS.is_dir():
        samples = sorted(p for p in CALLBACKS.iterdir() if p.suffix in (".xml", ".json"))
        # A fixed, spread-out selection keeps the strategy small and the run reproducible.
        bodies.extend(p.read_bytes() for p in random.Random(0).sample(samples, min(24, len(samples))))
    return bodies


REAL_BODIES = _real_bodies()
assert REAL_BODIES, "events/*.json should provide bodies"


@st.composite
def mutated(draw) -> bytes:
    body = bytearray(draw(st.sampled_from(REAL_BODIES)))
    for _ in range(draw(st.integers(0, 3))):  # 0: the real body as is
        op = draw(st.sampled_from(["flip", "delete", "insert", "truncate", "duplicate", "swap-tag", "inject"]))
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
        elif op == "duplicate":
            body[j:j] = body[i:j]
        elif op == "swap-tag":
            body[i:j] = draw(st.sampled_from([b"<JobsDetail>", b"</Response>", b"<![CDATA[", b"&amp;", b"&#0;",
                                              b"<!DOCTYPE x>", b"<Tag>Transcode</Tag>", b"<State>Failed</State>"]))
        else:  # inject JSON-level oddities
            body[i:i] = draw(st.sampled_from([b'"\\ud800"', b"1e999", b"-0", b"null", b"[]", b"{}", b"\\u0000",
                                              b'"JobId":"x",', b"99999999999999999999999999", b"\xef\xbb\xbf"]))
    return bytes(body)


# ---------------------------------------------------------------- arbitrary events

# Includes lone surrogates: JSON bodies can carry them as \udXXX escapes and events are
# plain dicts, so nothing upstream guarantees well-formed Unicode.
ANY_CHAR = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, blacklist_categories=())
TEXT = st.text(ANY_CHAR, max_size=40)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), TEXT)
VALUE = st.one_of(SCALAR, st.lists(SCALAR, max_size=3))
METHOD = st.one_of(st.sampled_from(["POST", "post", "Post", "GET", "PUT", "HEAD", "OPTIONS", "", " POST"]), TEXT,
                   st.none(), st.integers(), st.lists(st.just("POST"), max_size=2))

HEADER_NAMES = st.sampled_from(["content-type", "Content-Type", "CONTENT-TYPE", "x-api-requestid", "X-Api-RequestId",
                                "x-ci-callback-token", "x-scf-remote-addr", "host", "accept"])
HEADERS = st.one_of(
    st.none(),
    st.dictionaries(st.one_of(HEADER_NAMES, TEXT), VALUE, max_size=6),
    st.dictionaries(st.just("content-type"), st.sampled_from(["application/xml", "application/json", "text/plain",
                                                               "application/json; charset=utf-8", ""])),
    st.lists(TEXT, max_size=2),
    TEXT,
)

JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(TEXT, children, max_size=4)),
    max_leaves=20,
)
CALLBACK_KEYS = st.sampled_from(["EventName", "JobsDetail", "WorkflowExecution", "Response", "code", "data", "message"])
CALLBACK_LIKE = st.dictionaries(CALLBACK_KEYS, JSON_VALUE, max_size=4)


def _query_with(token: bool):
    """Every place a trigger may put the query; with ``token`` one of them carries ours."""
    if token:
        return st.one_of(
            st.fixed_dictionaries({"queryString": st.just({"token": TOKEN})}),
            st.fixed_dictionaries({"queryString": st.just({"token": [TOKEN, "other"], "a": ["1", "2"]})}),
            st.fixed_dictionaries({"queryStringParameters": st.just({"token": TOKEN}), "queryString": st.just({})}),
            st.fixed_dictionaries({"queryString": st.just(f"token={TOKEN}&a=1&a=2")}),
            st.fixed_dictionaries({"rawQueryString": st.just(f"?token={TOKEN}")}),
            st.fixed_dictionaries({"queryString": st.dictionaries(TEXT, VALUE, max_size=2).map(
                lambda q: dict(q, token=TOKEN))}),
        )
    return st.one_of(
        st.just({}),
        st.fixed_dictionaries({"queryString": st.one_of(st.none(), st.lists(TEXT, max_size=2), st.integers(), TEXT)}),
        st.fixed_dictionaries({"queryString": st.dictionaries(st.one_of(st.just("token"), TEXT), VALUE, max_size=3)}),
        st.fixed_dictionaries({"queryStringParameters": st.one_of(st.none(), st.dictionaries(TEXT, VALUE, max_size=2))}),
    )


@st.composite
def bodies(draw):
    """(body value, isBase64Encoded value or a 'missing' marker)."""
    kind = draw(st.sampled_from(["absent", "text", "json", "callback-like", "base64", "bad-base64", "real",
                                 "real-base64", "other-type", "surrogates"]))
    flag = draw(st.sampled_from([False, None, "false", "missing"]))
    if kind == "absent":
        return "missing", flag
    if kind == "text":
        return draw(TEXT), flag
    if kind == "json":
        return json.dumps(draw(JSON_VALUE), ensure_ascii=draw(st.booleans())), flag
    if kind == "callback-like":
        return json.dumps(draw(CALLBACK_LIKE)), flag
    if kind == "base64":
        return base64.b64encode(draw(st.binary(max_size=200))).decode(), draw(st.sampled_from([True, "true", "TRUE"]))
    if kind == "bad-base64":
        return draw(TEXT), True
    if kind == "real":
        return draw(mutated()).decode("utf-8", "replace"), flag
    if kind == "real-base64":
        return base64.b64encode(draw(mutated())).decode(), True
    if kind == "surrogates":
        return draw(st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=5)), flag
    return draw(st.one_of(st.integers(), st.floats(), st.booleans(), st.lists(SCALAR, max_size=2),
                          st.dictionaries(TEXT, SCALAR, max_size=2), st.binary(max_size=20))), flag


@st.composite
def events(draw):
    event = {}
    roll = draw(st.integers(0, 9))  # mostly POST, so most events get past the method check
    if roll < 7:
        event["httpMethod"] = draw(st.sampled_from(["POST", "post"]))
    elif roll < 9:
        event["httpMethod"] = draw(METHOD)
    shape = draw(st.sampled_from(["apigw", "function-url", "bare"]))
    if shape == "apigw":
        event["requestContext"] = draw(st.one_of(
            st.fixed_dictionaries({"httpMethod": METHOD, "requestId": st.one_of(TEXT, st.none(), st.integers()),
                                   "sourceIp": st.one_of(TEXT, st.none()), "path": st.one_of(TEXT, st.none())}),
            st.just({}), TEXT, st.lists(SCALAR, max_size=2), st.none(),
        ))
        event.setdefault("httpMethod", "POST")
    headers = draw(HEADERS)
    if headers is not None or draw(st.booleans()):
        event["headers"] = headers
    event.update(draw(_query_with(draw(st.integers(0, 9)) < 8)))
    body, flag = draw(bodies())
    if body != "missing":
        event["body"] = body
    if flag != "missing":
        event["isBase64Encoded"] = flag
    if draw(st.booleans()):
        event["path"] = draw(st.one_of(TEXT, st.none(), st.integers()))
    return event


# ---------------------------------------------------------------- checks


class StrictUtf8:
    """A stdout that refuses what a real UTF-8 stdout refuses (lone surrogates)."""

    def __init__(self):
        self.lines = []

    def write(self, text):
        text.encode("utf-8")  # raises like a strict TextIOWrapper would
        self.lines.append(text)
        return len(text)

    def flush(self):
        pass


@contextmanager
def strict_log():
    stream = StrictUtf8()
    previous = log._stream
    log.set_stream(stream)
    try:
        yield stream
    finally:
        log.set_stream(previous)


def run(event, settings_=SETTINGS, context=CONTEXT):
    with strict_log() as stream:
        out = handle(event, context, settings=settings_, services=SERVICES)
    check(out)
    for chunk in stream.lines:
        assert chunk.endswith("\n") and chunk.count("\n") == 1
        record = json.loads(chunk)
        assert record["level"] in ("DEBUG", "INFO", "WARN", "ERROR")
    return out


def check(out) -> dict:
    assert isinstance(out, dict)
    assert set(out) == {"isBase64Encoded", "statusCode", "headers", "body"}
    assert out["isBase64Encoded"] is False
    status = out["statusCode"]
    assert isinstance(status, int) and not isinstance(status, bool)
    assert 200 <= status < 300 or 400 <= status < 500, out["body"]
    assert isinstance(out["headers"], dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in out["headers"].items())
    assert out["headers"]["Content-Type"].startswith("application/json")
    if status == 405:
        assert out["headers"]["Allow"] == "POST"
    body = out["body"]
    assert isinstance(body, str)
    body.encode("utf-8")  # must go over the wire as UTF-8
    payload = json.loads(body)
    assert isinstance(payload, dict)
    assert isinstance(payload.get("reason"), str) and payload["reason"]
    assert "\n" not in payload["reason"] and "\r" not in payload["reason"]
    assert payload.get("ok") is (status < 400)
    assert isinstance(payload.get("status"), str)
    json.dumps(out)  # the platform JSON-encodes the return value
    return payload


# ---------------------------------------------------------------- properties


@PROFILE
@given(events())
@example({"httpMethod": "POST", "queryString": {"token": TOKEN},
          "body": '{"EventName":"TaskFinish","JobsDetail":{"JobId":"j\\ud800","Tag":"T\\udfff","State":"Success"}}'})
@example({"httpMethod": "\ud800", "queryString": {"token": TOKEN}})
@example({"httpMethod": "GET\r\nX: y" + "A" * 500})
@example({"httpMethod": "POST", "queryString": {"token": TOKEN}, "isBase64Encoded": True, "body": "A" * 100000})
@example({"httpMethod": "POST", "queryString": {"token": TOKEN}, "body": "[" * 100000})
@example({"httpMethod": "POST", "queryString": {"token": TOKEN}, "body": "<a>" * 20000})
@example({"httpMethod": "POST", "queryString": {"token": TOKEN},
          "body": '<?xml version="1.0" encoding="utf-9"?><Response><JobsDetail/></Response>'})
def test_arbitrary_events_get_a_well_formed_2xx_or_4xx(event):
    run(event)


@PROFILE
@given(events())
def test_arbitrary_events_with_a_small_body_limit(event):
    out = run(event, SMALL)
    if isinstance(event.get("body"), str) and len(event["body"].encode("utf-8", "surrogatepass")) > 4 * SMALL.max_body_bytes:
        assert out["statusCode"] in (400, 405, 413)


@PROFILE
@given(body=mutated(), as_base64=st.booleans(), content_type=st.sampled_from(
    ["application/xml", "application/json", "text/plain", None]))
def test_mutated_real_bodies_in_apigw_events(body, as_base64, content_type):
    headers = {"x-api-requestid": "prop-req"}
    if content_type:
        headers["Content-Type"] = content_type
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if as_base64 or text is None:
        payload, encoded = base64.b64encode(body).decode(), True
    else:
        payload, encoded = text, False
    event = {
        "requestContext": {"httpMethod": "POST", "path": "/cb", "requestId": "ctx", "sourceIp": "203.0.113.7",
                           "stage": "release", "identity": {}, "serviceId": "service-x"},
        "headers": headers,
        "httpMethod": "POST",
        "isBase64Encoded": encoded,
        "path": "/cb",
        "queryString": {"token": TOKEN},
        "queryStringParameters": {},
        "body": payload,
    }
    out = run(event)
    result = json.loads(out["body"])
    if out["statusCode"] == 200:
        assert result["status"] in ("processed", "ignored", "test")
        assert result["kind"] in ("job", "workflow", "moderation")
    else:
        assert out["statusCode"] in (400, 413), result


@PROFILE
@given(body=mutated())
def test_mutated_real_bodies_in_function_url_events(body):
    text = body.decode("utf-8", "replace")
    event = {"headers": {"x-scf-remote-addr": "198.51.100.1"}, "httpMethod": "POST", "path": "/",
             "queryString": f"token={TOKEN}", "body": text}
    out = run(event, context=None)
    assert out["statusCode"] in (200, 400, 413)


@settings(max_examples=50, deadline=None)
@given(st.one_of(st.none(), TEXT, st.integers(), st.floats(), st.binary(max_size=20), st.lists(SCALAR, max_size=3),
                 st.tuples(SCALAR)))
def test_non_dict_events_are_400(event):
    assume(not isinstance(event, dict))
    out = run(event)
    assert out["statusCode"] == 400


@settings(max_examples=50, deadline=None)
@given(context=st.one_of(st.none(), TEXT, st.integers(), st.lists(SCALAR, max_size=2),
                         st.dictionaries(st.sampled_from(["request_id", "time_limit_in_ms", "function_name"]), VALUE,
                                         max_size=3)))
def test_any_context_is_tolerated(context):
    event = {"httpMethod": "POST", "queryString": {"token": TOKEN}, "body": REAL_BODIES[0].decode("utf-8", "replace")}
    run(event, context=context)
