"""Queue delivery: CI → TDMQ for CMQ (topic) → SCF cmq trigger → the same pipeline.

Each record of a batch runs decode → model → allow-list → (verify) → archive → claim →
route → actions on its own, with source ``queue``. No token is involved: trust comes from
the topic's access policy (who may publish), so ``CI_CALLBACK_VERIFY_JOBS=true`` is
recommended on this path. A record that is no callback is logged and archived as
rejected, and does not block the others. If any record failed transiently the
invocation raises ``RetryBatch`` after the rest were processed: SCF's async retry
redelivers the batch, and the records already processed come back as cheap duplicates.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .. import keys, log
from ..context import Invocation
from ..durable import inbox
from ..edge.http import HttpRequest, HttpResponse
from ..errors import HttpError, RetryBatch, StorageError
from ..pipeline import process
from ..runner import refused, run_item
from ..trust import policy
from . import records as cmq

if TYPE_CHECKING:
    from ..routing.router import Router

PATH = "/cmq"
RESERVE_SECONDS = 3.0  # do not start a record with less left: it would be cut mid-pipeline


def handle_batch(event: Mapping[str, Any], inv: Invocation, router: Router) -> dict[str, Any]:
    settings = inv.settings
    records = cmq.records(event, settings.max_body_bytes)
    results: list[dict[str, Any]] = []
    retry: list[str] = []
    for record in records:
        if inv.deadline is not None and inv.deadline - time.monotonic() < RESERVE_SECONDS:
            retry.append(record.label)  # not started: the redelivered batch brings it back
            results.append({"msg_id": record.label, "status": 503, "outcome": "not-started"})
            continue
        response = _one(record, inv, router)
        results.append({"msg_id": record.label, "status": response.status, "outcome": response.payload.get("status")})
        if response.status >= 500:
            retry.append(record.label)
    if retry:
        log.error("queue batch: records failed transiently; raising so SCF redelivers the batch",
                  failed=retry, records=len(records), request_id=inv.request_id)
        raise RetryBatch(f"{len(retry)} of {len(records)} records failed transiently; SCF retries the batch")
    return {"ok": True, "status": "processed", "records": results}


def _one(record: cmq.QueueRecord, parent: Invocation, router: Router) -> HttpResponse:
    item = parent.child(f"{parent.request_id or 'cmq'}:{record.label}", "queue")
    item.fields.update(msg_id=record.msg_id, topic=record.topic, envelope=",".join(record.envelope) or None)

    def work() -> HttpResponse:
        if record.problem is not None:
            response = HttpResponse.error(400, record.problem)
        else:
            request = HttpRequest("POST", PATH, {}, {}, record.body, request_id=item.request_id)
            try:
                response = process(request, item, router)
            except HttpError as exc:  # the allow-list refused a bucket
                response = refused(exc)
        if 400 <= response.status < 500:
            _keep_rejected(record, str(response.payload.get("reason")), item)
        return response

    return run_item(item, work, what="the record")


def _keep_rejected(record: cmq.QueueRecord, reason: str, item: Invocation) -> None:
    """Archive a refused record for a human (``keys.rejected_key``); the sweep never re-drives it."""
    settings = item.settings
    bucket = policy.rejects_bucket(settings)
    if bucket is None or not settings.enabled("archive"):
        log.warn("rejected queue record not archived: no index bucket (CI_CALLBACK_INDEX_BUCKET)",
                 msg_id=record.msg_id)
        return
    digest = inbox.body_digest(record.body)
    key = keys.rejected_key(settings.archive_prefix, datetime.now(timezone.utc), record.label, digest[:16])
    document = inbox.rejected_document(record.body, reason, digest, source="queue", msg_id=record.msg_id,
                                       topic=record.topic, publish_time=record.publish_time)
    try:
        item.services.storage.put_json(bucket, key, document)
    except StorageError as exc:
        log.warn("rejected queue record not archived", msg_id=record.msg_id, error=str(exc))
        return
    item.fields["archive_key"] = key
