"""The HTTP edge: either SCF trigger's event in, one integrated response out.

API Gateway events carry ``requestContext``, ``queryStringParameters`` and
``isBase64Encoded``; Function URL events are the same shape minus those keys.
Every key is optional and header names arrive in any case.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from .. import jsonsafe
from ..errors import HttpError

APIGW = "apigw"
FUNCTION_URL = "function_url"
_JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"}


class HttpRequest:
    """One POST, whichever trigger delivered it. Headers have lower-case names; the
    query holds the first value per name."""

    __slots__ = ("method", "path", "headers", "query", "body", "source", "request_id", "source_ip")

    def __init__(self, method: str, path: str, headers: Mapping[str, str], query: Mapping[str, str], body: bytes,
                 source: str = APIGW, request_id: str | None = None, source_ip: str | None = None) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.query = query
        self.body = body
        self.source = source
        self.request_id = request_id
        self.source_ip = source_ip

    def __repr__(self) -> str:  # the query may hold the token: never show it
        return f"HttpRequest({self.method} {self.path}, {len(self.body)} bytes, source={self.source})"

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")


class HttpResponse:
    __slots__ = ("status", "payload", "headers")

    def __init__(self, status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        self.status = status
        self.payload = payload
        self.headers = headers or {}

    def __repr__(self) -> str:
        return f"HttpResponse({self.status}, {self.payload.get('status')!r})"

    @classmethod
    def error(cls, status: int, reason: str, **extra: Any) -> HttpResponse:
        return cls(status, {"ok": False, "status": "rejected", "reason": reason, **extra})

    def to_integrated(self) -> dict[str, Any]:
        """The dict API Gateway (isIntegratedResponse) and Function URLs turn into HTTP."""
        headers = dict(_JSON_HEADERS)
        headers.update(self.headers)
        return {
            "isBase64Encoded": False,
            "statusCode": self.status,
            "headers": headers,
            "body": jsonsafe.dumps(self.payload),
        }


def _first_text(value: Any) -> str | None:
    """A query or context value as text: the first of a list, ``str()`` of a scalar."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _query(event: Mapping[str, Any]) -> dict[str, str]:
    """Merge every place a trigger may put the query; the full query string wins."""
    merged: dict[str, str] = {}
    sources = (event.get("queryStringParameters"), event.get("rawQueryString"), event.get("queryString"))
    for source in sources:
        if isinstance(source, str):
            source = parse_qs(source.lstrip("?"), keep_blank_values=True)
        if isinstance(source, dict):
            for name, value in source.items():
                text = _first_text(value)
                if text is not None:
                    merged[str(name)] = text
    return merged


def _headers(raw: Any) -> dict[str, str]:
    headers: dict[str, str] = {}
    if isinstance(raw, dict):
        for name, value in raw.items():
            if isinstance(value, (list, tuple)):
                value = ",".join(str(v) for v in value)
            headers[str(name).lower()] = "" if value is None else str(value)
    return headers


def _body(event: Mapping[str, Any], max_bytes: int) -> bytes:
    raw = event.get("body")
    if raw is None:
        return b""
    if isinstance(raw, (dict, list)):  # some gateways hand over parsed JSON
        raw = json.dumps(raw, ensure_ascii=False)
    if isinstance(raw, (bytes, bytearray)):
        data = bytes(raw)
    elif isinstance(raw, str):
        if event.get("isBase64Encoded") is True or str(event.get("isBase64Encoded")).lower() == "true":
            # Check the size before decoding: base64 grows by 4/3.
            if len(raw) * 3 // 4 > max_bytes + 3:
                raise HttpError(413, f"body exceeds the {max_bytes}-byte limit")
            try:
                data = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise HttpError(400, "body is marked base64 but is not valid base64") from None
        else:
            if len(raw) > max_bytes:  # cheap bound first: UTF-8 is never shorter than len()
                raise HttpError(413, f"body exceeds the {max_bytes}-byte limit")
            data = raw.encode("utf-8", "surrogatepass")
    else:
        raise HttpError(400, "body is not a string")
    if len(data) > max_bytes:
        raise HttpError(413, f"body exceeds the {max_bytes}-byte limit")
    return data


def request_from_event(event: Any, max_body_bytes: int, context: Mapping[str, Any] | None = None) -> HttpRequest:
    """Read either trigger's event into one request. Raises HttpError for 400/405/413."""
    if not isinstance(event, dict):
        raise HttpError(400, "event is not an HTTP trigger event")
    raw_context = event.get("requestContext")
    request_context: dict[str, Any] = raw_context if isinstance(raw_context, dict) else {}
    method = str(event.get("httpMethod") or request_context.get("httpMethod") or "").upper()
    headers = _headers(event.get("headers"))
    is_apigw = bool(request_context) or "queryStringParameters" in event or "isBase64Encoded" in event
    request_id = None
    if isinstance(context, dict):
        request_id = _first_text(context.get("request_id"))
    request_id = request_id or headers.get("x-api-requestid") or _first_text(request_context.get("requestId"))
    if method != "POST":
        shown = " ".join(method.split())[:16] or "unknown"  # untrusted: one short line
        raise HttpError(405, f"method {shown} not allowed; CI callbacks are POSTed")
    return HttpRequest(
        method=method,
        path=str(event.get("path") or request_context.get("path") or "/"),
        headers=headers,
        query=_query(event),
        body=_body(event, max_body_bytes),
        source=APIGW if is_apigw else FUNCTION_URL,
        request_id=request_id,
        source_ip=_first_text(request_context.get("sourceIp")) or headers.get("x-scf-remote-addr"),
    )
