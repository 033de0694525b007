"""Replay's runtime half: choose archived callbacks and rebuild their requests.

This is how a user recovers from a bad deploy or a COS outage: every accepted
callback was archived before any action ran, so it can be fed through again
(``ci_callback.app.replay``, run by ``ci-callback replay``). Selection: by key
prefix, by time range (the archive object's LastModified), or by the failure
records the actions wrote.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .. import keys
from ..edge.http import APIGW, HttpRequest
from ..settings import Settings
from ..times import parse_time
from . import inbox

if TYPE_CHECKING:
    from ..adapters.cos import CosStorage

REPLAY_PATH = "/replay"


def select(storage: CosStorage, bucket: str, settings: Settings, prefix: str = "", since: datetime | None = None,
           until: datetime | None = None, failures: bool = False) -> Iterator[str]:
    """Archive keys to replay, in key order (the delivery records beside them are skipped)."""
    if failures:
        for failure_key, _ in storage.list_keys(bucket, keys.failures_prefix(settings.index_prefix)):
            record = storage.get_json(bucket, failure_key) or {}
            job_id = record.get("job_id")
            if job_id:
                for key, _ in storage.list_keys(bucket, keys.archive_prefix_of(settings.archive_prefix, "job", job_id)):
                    if not keys.is_delivery_key(settings.archive_prefix, key):
                        yield key
        return
    for key, modified in storage.list_keys(bucket, settings.archive_prefix + prefix):
        if keys.is_delivery_key(settings.archive_prefix, key):  # a count, not a body to replay
            continue
        stamp = parse_time(modified, naive=timezone.utc)  # COS stamps are UTC
        if since and stamp and stamp < since:
            continue
        if until and stamp and stamp > until:
            continue
        yield key


def archived_request(document: Mapping[str, Any], token: str | None, request_id: str) -> HttpRequest:
    """The POST CI made, rebuilt from its archive document (with a token we accept)."""
    headers = {str(name).lower(): str(value) for name, value in (document.get("headers") or {}).items()}
    return HttpRequest("POST", REPLAY_PATH, headers, {"token": token} if token else {}, inbox.body_of(document),
                       source=APIGW, request_id=request_id)
