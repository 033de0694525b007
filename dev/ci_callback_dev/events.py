"""The one builder of SCF trigger events, for the tests, the demo, the local server and the CLI.

``apigw_event`` is what an API Gateway trigger delivers (``requestContext``,
``queryStringParameters``, ``isBase64Encoded``); ``function_url_event`` is a Function
URL's, the same shape minus those keys. The runtime never builds events: it reads them
(``ci_callback.edge.http``).
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Mapping
from typing import Any

TOKEN_PARAM = "token"


def _text(body: bytes | str) -> tuple[str, bool]:
    """(body as the event carries it, whether it is base64)."""
    if isinstance(body, str):
        return body, False
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def _query(token: str | None, query: Mapping[str, str] | None) -> dict[str, str]:
    merged = dict(query or {})
    if token is not None:
        merged[TOKEN_PARAM] = token
    return merged


def apigw_event(body: bytes | str, *, token: str | None = None, headers: Mapping[str, str] | None = None,
                method: str = "POST", path: str = "/ci-callback", query: Mapping[str, str] | None = None,
                stage: str = "release", source_ip: str = "127.0.0.1") -> dict[str, Any]:
    """A callback body wrapped as an API Gateway trigger delivers it (binary bodies as base64)."""
    text, encoded = _text(body)
    merged = _query(token, query)
    return {
        "requestContext": {"httpMethod": method, "path": path, "stage": stage, "sourceIp": source_ip},
        "headers": {name.lower(): value for name, value in (headers or {}).items()},
        "body": text,
        "isBase64Encoded": encoded,
        "httpMethod": method,
        "path": path,
        "queryString": merged,
        "queryStringParameters": dict(merged),
    }


def function_url_event(body: bytes | str, *, token: str | None = None, headers: Mapping[str, str] | None = None,
                       method: str = "POST", path: str = "/", query: Mapping[str, str] | None = None,
                       remote_addr: str | None = None) -> dict[str, Any]:
    """The same as a Function URL delivers it (doc 583/96099): no requestContext, no base64 flag.

    A body that is not UTF-8 is undocumented for Function URLs (CI bodies are UTF-8 text); it
    is carried as base64 with the API Gateway flag, which the edge also reads.
    """
    text, encoded = _text(body)
    lowered = {name.lower(): value for name, value in (headers or {}).items()}
    if remote_addr is not None:
        lowered["x-scf-remote-addr"] = remote_addr  # the client's IP, as the doc sample shows
    event: dict[str, Any] = {
        "httpMethod": method,
        "path": path,
        "headers": lowered,
        "body": text,
        "queryString": _query(token, query),
    }
    if encoded:
        event["isBase64Encoded"] = True
    return event


def with_token(event: Mapping[str, Any], token: str) -> dict[str, Any]:
    """A deep copy of EVENT carrying ``?token=TOKEN`` (whatever query it had)."""
    copied = copy.deepcopy(dict(event))
    query = copied.get("queryString")
    copied["queryString"] = {**(query if isinstance(query, dict) else {}), TOKEN_PARAM: token}
    if isinstance(copied.get("queryStringParameters"), dict):
        copied["queryStringParameters"] = dict(copied["queryString"])
    return copied


def is_base64(event: Mapping[str, Any]) -> bool:
    return str(event.get("isBase64Encoded")).lower() == "true"


def body_of(event: Mapping[str, Any]) -> bytes:
    """The raw body an event carries (base64 undone; parsed JSON written back as text)."""
    raw = event.get("body")
    if raw is None:
        return b""
    if not isinstance(raw, str):
        raw = json.dumps(raw)
    return base64.b64decode(raw) if is_base64(event) else raw.encode("utf-8")


def with_body(event: Mapping[str, Any], body: bytes) -> dict[str, Any]:
    """A deep copy of EVENT carrying BODY, encoded the way EVENT's body was."""
    copied = copy.deepcopy(dict(event))
    copied["body"] = base64.b64encode(body).decode("ascii") if is_base64(copied) else body.decode("utf-8")
    return copied
