"""The durable inbox: the raw body, stored before any action runs, for replay.

Keys and content are deterministic, so a re-delivery rewrites the same object; each
delivery also leaves one small record beside it (``keys.delivery_key``), so deliveries,
duplicates and their sources can be counted.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import keys
from ..model.models import Callback
from ..times import iso

if TYPE_CHECKING:  # the edge's request type, for annotations only
    from ..edge.http import HttpRequest

KEPT_HEADERS = ("content-type", "x-ci-content-version")


def body_digest(body: bytes) -> str:
    """The body's SHA-256 (hex): in the archive key (first 16) and in the document."""
    return hashlib.sha256(body).hexdigest()


def archive_key(prefix: str, callback: Callback, body: bytes, digest: str | None = None) -> str:
    return keys.archive_key(prefix, callback.kind, callback.id, callback.state, (digest or body_digest(body))[:16])


def archive_document(request: HttpRequest, callback: Callback, digest: str | None = None,
                     source: str = "url") -> dict[str, Any]:
    document: dict[str, Any] = {
        "schema": 1,
        "kind": callback.kind,
        "id": callback.id,
        "tag": callback.tag,
        "state": callback.state,
        "event": callback.event,
        "created_at": iso(callback.created_at),  # as in to_dict(), without building all of it
        "headers": {h: request.headers[h] for h in KEPT_HEADERS if h in request.headers},
        "sha256": digest or body_digest(request.body),
        "source": source,  # url, queue, reconcile, replay, continuation (the Invocation's)
    }
    return _with_body(document, request.body)


def _with_body(document: dict[str, Any], body: bytes) -> dict[str, Any]:
    try:
        document["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        document["body_base64"] = base64.b64encode(body).decode("ascii")
    return document


def delivery_document(callback: Callback, source: str, request_id: str | None, received_at: datetime,
                      digest: str, archive_key: str) -> dict[str, Any]:
    """One delivery: an identical re-delivery rewrites the archived body, but adds one of these."""
    return {
        "schema": 1,
        "kind": callback.kind,
        "id": callback.id,
        "state": callback.state,
        "received_at": iso(received_at),
        "source": source,
        "request_id": request_id,
        "sha256": digest,
        "archive_key": archive_key,
    }


def rejected_document(body: bytes, reason: str, digest: str, source: str, **meta: str | None) -> dict[str, Any]:
    """A delivery refused as no callback (``keys.rejected_key``), kept for a human."""
    document: dict[str, Any] = {"schema": 1, "rejected": reason, "source": source, "sha256": digest,
                                **{k: v for k, v in meta.items() if v is not None}}
    return _with_body(document, body)


def body_of(document: Mapping[str, Any]) -> bytes:
    if "body_base64" in document:
        return base64.b64decode(document["body_base64"])
    return str(document.get("body", "")).encode("utf-8")
