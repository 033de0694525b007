"""The queue edge: a CMQ topic trigger's batch, read into one record per message.

CI delivers to TDMQ for CMQ when a job's ``CallBackType`` is ``TDMQ``
(``CallBackMqConfig{MqRegion, MqMode: Topic, MqName}``; queues and workflows take the
same fields in ``NotifyConfig``). The SCF cmq trigger then invokes us with::

    {"Records": [{"CMQ": {"type": "topic", "topicName": …, "msgId": …,
                          "publishTime": …, "msgBody": "<callback body>", …}}]}

(doc 583/11517 and the trigger event summary 583/31439; a batch may hold several).
That ``msgBody`` is the callback body exactly as CI would POST it is not documented,
so an envelope is unwrapped if one turns up: a JSON object with no callback key whose
``msgBody``/``Message``/``body`` holds the body, or a base64 text of an XML/JSON body.
Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

_CALLBACK_KEYS = frozenset({"JobsDetail", "WorkflowExecution", "EventName", "Response", "code", "data"})
_ENVELOPE_KEYS = ("msgBody", "MsgBody", "Message", "message", "body", "Body")
_MAX_UNWRAP = 3
_SPACE = b" \t\r\n"


@dataclass(frozen=True)
class QueueRecord:
    """One message of a batch. ``problem`` says why it cannot be a callback (``body`` is then
    what there was, possibly empty)."""

    index: int
    body: bytes
    msg_id: str | None = None
    topic: str | None = None
    publish_time: str | None = None
    envelope: tuple[str, ...] = ()  # what was unwrapped, outermost first
    problem: str | None = None

    @property
    def label(self) -> str:
        return self.msg_id or f"record-{self.index}"


def _text(value: object) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return " ".join(value.split())[:128] or None
    return None


def _head(body: bytes) -> bytes:
    stripped = body[3:] if body.startswith(b"\xef\xbb\xbf") else body
    return stripped.lstrip(_SPACE)[:1]


def unwrap(body: bytes) -> tuple[bytes, tuple[str, ...]]:
    """The callback body inside BODY, and the envelopes taken off (none: ``()``)."""
    taken: list[str] = []
    for _ in range(_MAX_UNWRAP):
        head = _head(body)
        if head == b"{":
            try:
                document = json.loads(body)
            except (ValueError, RecursionError):
                break  # malformed JSON: the parser will say so
            if not isinstance(document, dict) or _CALLBACK_KEYS & set(document):
                break
            key = next((k for k in _ENVELOPE_KEYS if k in document), None)
            if key is None:
                break
            inner = document[key]
            if isinstance(inner, str):
                body = inner.encode("utf-8", "surrogatepass")
            elif isinstance(inner, dict):
                body = json.dumps(inner, ensure_ascii=False).encode("utf-8", "surrogatepass")
            else:
                break
            taken.append(key)
        elif head and head not in (b"<", b"["):
            try:
                decoded = base64.b64decode(body.strip(), validate=True)
            except (binascii.Error, ValueError):
                break
            if _head(decoded) not in (b"<", b"{"):
                break
            body = decoded
            taken.append("base64")
        else:
            break
    return body, tuple(taken)


def records(event: Mapping[str, Any], max_body_bytes: int) -> list[QueueRecord]:
    """Every record of a batch, in order; each either has a body or says what is wrong."""
    found: list[QueueRecord] = []
    raw = event.get("Records")
    for index, entry in enumerate(raw if isinstance(raw, list) else []):
        message = entry.get("CMQ") if isinstance(entry, dict) else None
        if not isinstance(message, dict):
            found.append(QueueRecord(index, b"", problem="record is not a CMQ message"))
            continue
        record = QueueRecord(index, b"", _text(message.get("msgId")), _text(message.get("topicName")),
                             _text(message.get("publishTime")))
        payload = message.get("msgBody")
        if isinstance(payload, dict):  # a trigger that hands over parsed JSON
            payload = json.dumps(payload, ensure_ascii=False)
        if not isinstance(payload, str) or not payload.strip():
            found.append(replace(record, problem="message has no msgBody"))
            continue
        data = payload.encode("utf-8", "surrogatepass")
        if len(data) > max_body_bytes:
            found.append(replace(record, problem=f"msgBody exceeds the {max_body_bytes}-byte limit"))
            continue
        body, envelope = unwrap(data)
        found.append(replace(record, body=body, envelope=envelope))
    return found
