"""The HTTP edge: both SCF trigger shapes in, one integrated response out.

Real trigger samples come from the shared corpus's scf-events (skipped when absent); everything
else is built inline so each quirk of the documented events (SCF docs 583/12513, 583/96099,
583/11637) has its own test.
"""

from __future__ import annotations

import base64
import copy
import json

import pytest

from ci_callback.edge.http import APIGW, FUNCTION_URL, HttpError, HttpResponse, request_from_event
from conftest import SCF_EVENTS, scf_event

LIMIT = 1024
XML = b"<Response><EventName>TaskFinish</EventName></Response>"


shared_event = scf_event


def apigw(body=None, **overrides) -> dict:
    """An APIGW integration-request event shaped like the real captured one."""
    event = {
        "headerParameters": {},
        "headers": {"content-type": "application/xml", "x-api-requestid": "hdr-id", "requestsource": "APIGW"},
        "httpMethod": "POST",
        "isBase64Encoded": False,
        "path": "/ci-callback",
        "pathParameters": {},
        "queryString": {},
        "queryStringParameters": {},
        "requestContext": {
            "httpMethod": "POST",
            "identity": {},
            "path": "/ci-callback",
            "requestId": "ctx-id",
            "serviceId": "service-x",
            "sourceIp": "203.0.113.7",
            "stage": "release",
        },
    }
    if body is not None:
        event["body"] = body
    event.update(overrides)
    return event


def function_url(body=None, **overrides) -> dict:
    """A Function URL event: the APIGW shape minus requestContext, isBase64Encoded, … (SCF doc 583/96099)."""
    event = {
        "headers": {"content-type": "application/json", "x-scf-remote-addr": "198.51.100.9"},
        "httpMethod": "POST",
        "path": "/",
        "queryString": {},
    }
    if body is not None:
        event["body"] = body
    event.update(overrides)
    return event


def rejected(event, limit=LIMIT, context=None) -> HttpError:
    with pytest.raises(HttpError) as info:
        request_from_event(event, limit, context)
    return info.value


# ---------------------------------------------------------------- shared real samples


def test_apigw_doc_sample():
    event = shared_event("apigw-event-doc.json")
    req = request_from_event(event, LIMIT)
    assert req.method == "POST"
    assert req.source == APIGW
    assert req.body == b'{"test":"body"}'
    assert req.path == "/test/value"  # the actual path, not requestContext's template
    # Title-Case names in the doc sample are read case-insensitively.
    assert req.header("user-agent") == "User Agent String"
    assert req.header("USER-AGENT") == "User Agent String"
    assert req.headers["accept-language"] == "en-US,en,cn"
    # queryString is the full query and wins; queryStringParameters only the declared ones.
    assert dict(req.query) == {"foo": "bar", "bob": "alice"}
    assert req.request_id == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    assert req.source_ip == "10.0.2.14"


def test_apigw_captured_sample_is_a_get():
    event = shared_event("apigw-event-captured.json")
    err = rejected(event)
    assert err.status == 405
    assert "GET" in err.reason


def test_apigw_captured_sample_as_post_without_body():
    event = shared_event("apigw-event-captured.json")
    assert "body" not in event
    event["httpMethod"] = "POST"
    req = request_from_event(event, LIMIT)
    assert req.body == b""
    assert req.source == APIGW
    # No requestContext.requestId in reality: the x-api-requestid header stands in.
    assert req.request_id == "73837518616af99bbeace99522926399"
    assert req.source_ip == "20.197.69.95"
    assert req.header("X-Api-Scheme") == "https"
    assert dict(req.query) == {}


def test_function_url_sample():
    event = shared_event("function-url-event.json")
    req = request_from_event(event, LIMIT)
    assert req.source == FUNCTION_URL
    assert req.body == b'{"test":"hello world"}'
    assert dict(req.query) == {"a": "1", "b": "2"}
    assert req.source_ip == "111.206.96.145"  # x-scf-remote-addr
    assert req.request_id is None
    assert req.content_type is None


def test_function_url_sample_request_id_from_context():
    event = shared_event("function-url-event.json")
    context_path = SCF_EVENTS / "scf-context.json"
    context = json.loads(context_path.read_text()) if context_path.exists() else {"request_id": "f03dc946"}
    req = request_from_event(event, LIMIT, context)
    assert req.request_id == context["request_id"]


# ---------------------------------------------------------------- shapes and headers


@pytest.mark.parametrize("make", [apigw, function_url], ids=["apigw", "function-url"])
def test_both_shapes_read_the_same_body(make):
    req = request_from_event(make(XML.decode()), LIMIT)
    assert req.method == "POST"
    assert req.body == XML


def test_source_detection():
    assert request_from_event(apigw(""), LIMIT).source == APIGW
    assert request_from_event(function_url(""), LIMIT).source == FUNCTION_URL
    # Any APIGW-only key marks the APIGW shape, even without requestContext.
    assert request_from_event(function_url("", isBase64Encoded=False), LIMIT).source == APIGW
    assert request_from_event(function_url("", queryStringParameters={}), LIMIT).source == APIGW


@pytest.mark.parametrize("name", ["content-type", "Content-Type", "CONTENT-TYPE", "cOnTeNt-TyPe"])
@pytest.mark.parametrize("make", [apigw, function_url], ids=["apigw", "function-url"])
def test_header_names_in_any_case(make, name):
    req = request_from_event(make("", headers={name: "application/json", "X-Scf-Remote-Addr": "192.0.2.1"}), LIMIT)
    assert req.content_type == "application/json"
    assert req.header("Content-Type") == "application/json"
    assert req.header("content-type") == "application/json"
    assert all(key == key.lower() for key in req.headers)
    assert req.source_ip in ("203.0.113.7", "192.0.2.1")  # requestContext.sourceIp first


def test_header_values_list_none_and_numbers():
    req = request_from_event(
        apigw("", headers={"Accept": ["text/xml", "application/json"], "X-Empty": None, "Content-Length": 12}),
        LIMIT,
    )
    assert req.header("accept") == "text/xml,application/json"
    assert req.header("x-empty") == ""
    assert req.header("content-length") == "12"


@pytest.mark.parametrize("headers", [None, [], "content-type: text/xml", 7])
def test_headers_not_a_dict_are_ignored(headers):
    req = request_from_event(apigw("", headers=headers), LIMIT)
    assert dict(req.headers) == {}
    assert req.content_type is None


def test_method_from_request_context_and_case():
    event = function_url("")
    del event["httpMethod"]
    assert rejected(event).status == 405
    event["requestContext"] = {"httpMethod": "post"}
    assert request_from_event(event, LIMIT).method == "POST"
    assert request_from_event(function_url("", httpMethod="post"), LIMIT).method == "POST"


def test_path_defaults():
    event = function_url("")
    del event["path"]
    assert request_from_event(event, LIMIT).path == "/"
    event = apigw("")
    del event["path"]
    assert request_from_event(event, LIMIT).path == "/ci-callback"  # requestContext.path


# ---------------------------------------------------------------- body


@pytest.mark.parametrize("make", [apigw, function_url], ids=["apigw", "function-url"])
def test_body_absent_or_null(make):
    event = make()
    assert "body" not in event
    assert request_from_event(event, LIMIT).body == b""
    event["body"] = None
    assert request_from_event(event, LIMIT).body == b""


def test_body_unicode_is_utf8():
    text = '{"Object":"photos/鹿 deer+1.jpg"}'
    assert request_from_event(function_url(text), LIMIT).body == text.encode("utf-8")


def test_body_already_parsed_json():
    req = request_from_event(function_url(body={"EventName": "TaskFinish"}), LIMIT)
    assert json.loads(req.body) == {"EventName": "TaskFinish"}


@pytest.mark.parametrize("body", [12, 1.5, True])
def test_body_of_another_type_is_400(body):
    err = rejected(apigw(body=body))
    assert err.status == 400


@pytest.mark.parametrize("flag", [True, "true", "True", "TRUE"])
def test_base64_body_decoded(flag):
    raw = XML + b"\x00\xff binary tail"
    req = request_from_event(apigw(base64.b64encode(raw).decode(), isBase64Encoded=flag), LIMIT)
    assert req.body == raw


@pytest.mark.parametrize("flag", [False, "false", None, 0])
def test_base64_flag_false_leaves_body_alone(flag):
    encoded = base64.b64encode(XML).decode()
    req = request_from_event(apigw(encoded, isBase64Encoded=flag), LIMIT)
    assert req.body == encoded.encode()


def test_base64_empty_body():
    assert request_from_event(apigw("", isBase64Encoded=True), LIMIT).body == b""


@pytest.mark.parametrize(
    "bad",
    ["not base64!", "PFJlc3BvbnNl\nPg==", "abc", "====", "PFJlc3BvbnNlPg==" + "é"],
    ids=["punctuation", "newline", "bad-padding", "only-padding", "non-ascii"],
)
def test_invalid_base64_is_400(bad):
    err = rejected(apigw(bad, isBase64Encoded=True))
    assert err.status == 400
    assert "base64" in err.reason
    assert "\n" not in err.reason


# ---------------------------------------------------------------- size limit


@pytest.mark.parametrize("make", [apigw, function_url], ids=["apigw", "function-url"])
def test_plain_body_at_and_over_the_limit(make):
    assert len(request_from_event(make("x" * LIMIT), LIMIT).body) == LIMIT
    err = rejected(make("x" * (LIMIT + 1)))
    assert err.status == 413
    assert str(LIMIT) in err.reason


def test_plain_body_counts_utf8_bytes_not_characters():
    text = "鹿" * (LIMIT // 3 + 1)  # fewer characters than LIMIT, more bytes
    assert len(text) <= LIMIT < len(text.encode())
    assert rejected(function_url(text)).status == 413


@pytest.mark.parametrize("size", [LIMIT - 2, LIMIT - 1, LIMIT])
def test_base64_body_at_the_limit_passes(size):
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    req = request_from_event(apigw(base64.b64encode(data).decode(), isBase64Encoded=True), LIMIT)
    assert req.body == data


@pytest.mark.parametrize("size", [LIMIT + 1, LIMIT + 2, LIMIT + 3, LIMIT + 4, 10 * LIMIT])
def test_base64_body_over_the_limit_is_413(size):
    encoded = base64.b64encode(b"\x01" * size).decode()
    err = rejected(apigw(encoded, isBase64Encoded=True))
    assert err.status == 413


def test_huge_base64_is_refused_before_decoding(monkeypatch):
    def explode(*args, **kwargs):  # pragma: no cover - must not be reached
        raise AssertionError("b64decode called on an oversized body")

    import base64  # the edge imports it lazily, from the module itself

    monkeypatch.setattr(base64, "b64decode", explode)
    huge = "A" * (64 * 1024 * 1024)  # 64 MiB of text would decode to 48 MiB
    err = rejected(apigw(huge, isBase64Encoded=True))
    assert err.status == 413
    # Not even valid base64: the size is judged first, so still 413, never 400.
    err = rejected(apigw("!" * (LIMIT * 2), isBase64Encoded=True))
    assert err.status == 413


def test_method_is_checked_before_the_body():
    # 405 comes first: a GET with a huge body is refused for its method.
    err = rejected(apigw("x" * (LIMIT * 10), httpMethod="GET"))
    assert err.status == 405


# ---------------------------------------------------------------- query


def test_apigw_query_string_wins_over_declared_parameters():
    req = request_from_event(
        apigw("", queryString={"token": "full", "extra": "1"}, queryStringParameters={"token": "declared", "p": "2"}),
        LIMIT,
    )
    assert dict(req.query) == {"token": "full", "extra": "1", "p": "2"}


def test_apigw_only_declared_parameters():
    req = request_from_event(apigw("", queryString=None, queryStringParameters={"token": "t1"}), LIMIT)
    assert dict(req.query) == {"token": "t1"}


def test_list_valued_query_takes_the_first_value():
    req = request_from_event(
        apigw("", queryString={"token": ["a", "b"], "empty": [], "n": 5, "none": None}), LIMIT
    )
    assert req.query["token"] == "a"
    assert req.query["n"] == "5"
    assert "empty" not in req.query
    assert "none" not in req.query


@pytest.mark.parametrize("raw", ["token=abc&x=1&x=2&blank=", "?token=abc&x=1&x=2&blank="])
def test_function_url_raw_query_string(raw):
    req = request_from_event(function_url("", queryString=raw), LIMIT)
    assert dict(req.query) == {"token": "abc", "x": "1", "blank": ""}


def test_function_url_raw_query_key_and_dict():
    req = request_from_event(function_url("", rawQueryString="token=r%20aw"), LIMIT)
    assert req.query["token"] == "r aw"
    req = request_from_event(function_url("", queryString={"token": "d"}), LIMIT)
    assert dict(req.query) == {"token": "d"}


@pytest.mark.parametrize("query", [None, [], ["a=1"], 42, ""])
def test_odd_query_shapes_are_empty(query):
    req = request_from_event(function_url("", queryString=query), LIMIT)
    assert dict(req.query) == {}


# ---------------------------------------------------------------- method and event type


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD", "OPTIONS", "", None])
@pytest.mark.parametrize("make", [apigw, function_url], ids=["apigw", "function-url"])
def test_non_post_is_405_with_allow(make, method):
    event = make("x", httpMethod=method)
    if "requestContext" in event:
        event["requestContext"] = dict(event["requestContext"], httpMethod=method)
    err = rejected(event)
    assert err.status == 405
    assert "POSTed" in err.reason  # the Allow header is the runner's (refused), tested through handle()


def test_405_reason_quotes_the_method_on_one_short_line():
    err = rejected(function_url("", httpMethod="GET\r\nX-Injected: 1" + "A" * 1000))
    assert err.status == 405
    assert "\n" not in err.reason and "\r" not in err.reason
    assert len(err.reason) < 100


@pytest.mark.parametrize("event", [None, [], [apigw("x")], "POST", 42, b"{}"], ids=repr)
def test_non_dict_event_is_400(event):
    err = rejected(event)
    assert err.status == 400


# ---------------------------------------------------------------- request id


def test_request_id_precedence():
    event = apigw("")
    assert request_from_event(event, LIMIT, {"request_id": "scf-ctx"}).request_id == "scf-ctx"
    assert request_from_event(event, LIMIT).request_id == "hdr-id"  # x-api-requestid
    event["headers"] = {"X-Api-RequestId": "HDR"}
    assert request_from_event(event, LIMIT, {}).request_id == "HDR"
    del event["headers"]
    assert request_from_event(event, LIMIT).request_id == "ctx-id"  # requestContext.requestId
    del event["requestContext"]
    assert request_from_event(event, LIMIT).request_id is None


def test_request_id_context_that_is_not_a_dict_is_ignored():
    assert request_from_event(apigw(""), LIMIT, "not-a-dict").request_id == "hdr-id"  # type: ignore[arg-type]


def test_request_context_not_a_dict():
    req = request_from_event(function_url("", requestContext=["junk"]), LIMIT)
    assert req.request_id is None
    assert req.source_ip == "198.51.100.9"


def test_event_is_not_mutated():
    event = apigw(base64.b64encode(XML).decode(), isBase64Encoded=True, queryString="a=1")
    before = copy.deepcopy(event)
    request_from_event(event, LIMIT, {"request_id": "x"})
    assert event == before


# ---------------------------------------------------------------- integrated response


def _check_integrated(out: dict, status: int) -> dict:
    assert set(out) == {"isBase64Encoded", "statusCode", "headers", "body"}
    assert out["isBase64Encoded"] is False
    assert out["statusCode"] == status
    assert isinstance(out["body"], str)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in out["headers"].items())
    assert out["headers"]["Content-Type"].startswith("application/json")
    payload = json.loads(out["body"])
    assert isinstance(payload, dict)
    assert "reason" in payload
    json.dumps(out)  # the platform JSON-encodes the whole dict
    return payload


@pytest.mark.parametrize("status", [400, 405, 413, 500])
def test_error_response_is_json_with_reason(status):
    payload = _check_integrated(HttpResponse.error(status, "nope", detail=1).to_integrated(), status)
    assert payload == {"ok": False, "status": "rejected", "reason": "nope", "detail": 1}


def test_response_headers_merge_over_defaults():
    out = HttpResponse(405, {"reason": "r"}, {"Allow": "POST", "Cache-Control": "max-age=1"}).to_integrated()
    payload = _check_integrated(out, 405)
    assert out["headers"]["Allow"] == "POST"
    assert out["headers"]["Cache-Control"] == "max-age=1"
    assert payload == {"reason": "r"}


def test_response_body_keeps_unicode_and_stringifies_the_rest():
    import datetime

    when = datetime.datetime(2026, 11, 20, 10, 0)
    out = HttpResponse(200, {"reason": "ok", "object": "鹿.jpg", "when": when}).to_integrated()
    assert "鹿.jpg" in out["body"]
    assert _check_integrated(out, 200)["when"] == str(when)


def test_response_body_with_lone_surrogate_is_still_utf8():
    # A JSON callback may carry "\ud800"; the body must still encode for the wire.
    out = HttpResponse(200, {"reason": "ok", "id": "a\ud800b", "ok": "鹿"}).to_integrated()
    out["body"].encode("utf-8")
    assert json.loads(out["body"]) == {"reason": "ok", "id": "a\ud800b", "ok": "鹿"}


@pytest.mark.parametrize(
    "event",
    [None, apigw("x", httpMethod="GET"), apigw("x" * (LIMIT + 1)), apigw("%%%", isBase64Encoded=True)],
    ids=["not-dict", "get", "too-big", "bad-base64"],
)
def test_every_edge_error_becomes_an_integrated_response(event):
    with pytest.raises(HttpError) as info:
        request_from_event(event, LIMIT)
    err = info.value
    out = HttpResponse.error(err.status, err.reason).to_integrated()
    assert _check_integrated(out, err.status)["reason"] == err.reason
