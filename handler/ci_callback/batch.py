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
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Mapping

from . import cmq, inbox, keys, log, policy
from .context import Invocation
from .errors import HttpError, RetryBatch, StorageError
from .http import HttpRequest, HttpResponse
from .pipeline import process

if TYPE_CHECKING:
    from .router import Router

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
    item = Invocation(request_id=f"{parent.request_id or 'cmq'}:{record.label}", settings=parent.settings,
                      attached=parent.attached, deadline=parent.deadline, source="queue", scf=parent.scf)
    item.fields.update(request_id=item.request_id, msg_id=record.msg_id, topic=record.topic,
                       envelope=",".join(record.envelope) or None)
    started = time.monotonic()
    if record.problem is not None:
        response = HttpResponse.error(400, record.problem)
    else:
        request = HttpRequest("POST", PATH, {}, {}, record.body, request_id=item.request_id)
        try:
            response = process(request, item, router)
        except HttpError as exc:  # the allow-list refused a bucket
            response = HttpResponse.error(exc.status, exc.reason)
        except Exception as exc:  # noqa: BLE001 - a bug in one record must not lose the others
            log.unhandled(exc, **item.fields)
            response = HttpResponse.error(500, "internal error; the record was not processed")
    if 400 <= response.status < 500:
        _keep_rejected(record, str(response.payload.get("reason")), item)
    parent.attached = parent.attached or item.attached  # the first record built them: share them
    log.info("callback", status=response.status, reason=response.payload.get("reason"), source="queue",
             outcome=response.payload.get("status"), duration_ms=round((time.monotonic() - started) * 1000, 2),
             **{k: v for k, v in item.fields.items() if k != "outcome"})
    return response


def _keep_rejected(record: cmq.QueueRecord, reason: str, item: Invocation) -> None:
    """Archive a refused record for a human (``keys.rejected_key``); the sweep never re-drives it."""
    settings = item.settings
    bucket = policy.rejects_bucket(settings)
    if bucket is None or not settings.enabled("archive"):
        log.warn("rejected queue record not archived: no index bucket (CI_CALLBACK_INDEX_BUCKET)",
                 msg_id=record.msg_id)
        return
    if item.attached is None:
        from .services import Services  # noqa: PLC0415 - adapters load on first use

        item.services = Services.from_env(settings, item.deadline)
    digest = inbox.body_digest(record.body)
    key = keys.rejected_key(settings.archive_prefix, datetime.now(timezone.utc), record.label, digest[:16])
    document = inbox.rejected_document(record.body, reason, digest, source="queue", msg_id=record.msg_id,
                                       topic=record.topic, publish_time=record.publish_time)
    try:
        item.services.storage.put_json(bucket, key, document, policy.bucket_region(settings, bucket))
    except StorageError as exc:
        log.warn("rejected queue record not archived", msg_id=record.msg_id, error=str(exc))
        return
    item.fields["archive_key"] = key
