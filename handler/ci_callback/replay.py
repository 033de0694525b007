"""Re-run archived callbacks through the same pipeline (``ci-callback replay``).

This is how a user recovers from a bad deploy or a COS outage: every accepted
callback was archived before any action ran, so it can be fed through again.
Selection: by key prefix, by time range (the archive object's LastModified), or by
the failure records the actions wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List, Optional

from . import inbox, keys
from .settings import Settings


@dataclass
class ReplayResult:
    key: str
    status: int
    outcome: str
    reason: str


def _modified(value: Optional[str]) -> Optional[datetime]:
    if not value:
        return None
    text = value.replace("Z", "+00:00")
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def select(storage: Any, bucket: str, settings: Settings, prefix: str = "", since: Optional[datetime] = None,
           until: Optional[datetime] = None, failures: bool = False) -> Iterator[str]:
    """Archive keys to replay, in key order."""
    if failures:
        for failure_key, _ in storage.list_keys(bucket, f"{settings.index_prefix}failures/"):
            record = storage.get_json(bucket, failure_key) or {}
            job_id = record.get("job_id")
            if job_id:
                for key, _ in storage.list_keys(bucket, f"{settings.archive_prefix}job/{keys.encode_id(job_id)}/"):
                    yield key
        return
    for key, modified in storage.list_keys(bucket, settings.archive_prefix + prefix):
        stamp = _modified(modified)
        if since and stamp and stamp < since:
            continue
        if until and stamp and stamp > until:
            continue
        yield key


def event_for(document: Dict[str, Any], token: Optional[str]) -> Dict[str, Any]:
    """An API Gateway event carrying the archived body, as CI would have sent it."""
    body = inbox.body_of(document)
    import base64

    return {
        "httpMethod": "POST",
        "path": "/replay",
        "headers": dict(document.get("headers") or {}),
        "queryString": {"token": token} if token else {},
        "body": base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": True,
        "requestContext": {"httpMethod": "POST", "path": "/replay", "stage": "replay"},
    }


def replay(storage: Any, bucket: str, settings: Settings, selected: List[str], force: bool = False,
           services: Any = None) -> List[ReplayResult]:
    import json

    from .app import handle

    run_settings = settings
    if force:  # ignore processed markers: re-run actions even for callbacks marked done
        run_settings = settings.replace(actions=frozenset(a for a in settings.actions if a != "dedupe"))
    token = settings.tokens[0] if settings.tokens else None
    results = []
    for key in selected:
        document = storage.get_json(bucket, key)
        if document is None:
            results.append(ReplayResult(key, 0, "missing", "archive object not found or not JSON"))
            continue
        response = handle(event_for(document, token), {"request_id": f"replay:{key}"},
                          settings=run_settings, services=services)
        payload = json.loads(response["body"])
        results.append(ReplayResult(key, response["statusCode"], payload.get("status", ""), payload.get("reason", "")))
    return results
