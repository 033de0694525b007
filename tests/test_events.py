"""The one SCF event builder (dev): what it builds, the runtime's edge reads back."""

from __future__ import annotations

import conftest  # noqa: F401  (puts handler/ and dev/ on sys.path)
from ci_callback.edge.http import APIGW, FUNCTION_URL, request_from_event
from ci_callback_dev.events import apigw_event, body_of, function_url_event, with_body, with_token


def test_apigw_event_round_trips_text_and_binary_bodies() -> None:
    for body in (b"<Response/>", "鹿".encode(), b"\xff\xfe\x00binary"):
        event = apigw_event(body, token="t", headers={"Content-Type": "application/xml"})
        request = request_from_event(event, 1024)
        assert (request.body, request.source, request.query["token"]) == (body, APIGW, "t")
        assert request.content_type == "application/xml" and body_of(event) == body


def test_function_url_event_is_read_as_a_function_url() -> None:
    request = request_from_event(function_url_event("{}", token="t", query={"a": "1"}), 1024)
    assert (request.source, request.query, request.path) == (FUNCTION_URL, {"a": "1", "token": "t"}, "/")


def test_with_token_and_with_body_copy_the_event() -> None:
    event = apigw_event(b"\xffold", query={"x": "1"})
    tokened = with_token(event, "new")
    assert tokened["queryString"] == tokened["queryStringParameters"] == {"x": "1", "token": "new"}
    assert event["queryString"] == {"x": "1"}  # untouched
    rebodied = with_body(event, b"\xffnew")
    assert body_of(rebodied) == b"\xffnew" and body_of(event) == b"\xffold"
